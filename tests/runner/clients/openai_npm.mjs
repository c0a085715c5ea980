// Drives the `openai` npm client against a runner, as a Node.js app would: lists the models, chats
// (plain, streamed, with a JSON schema response_format) and reads the errors of an unknown route,
// a wrong method and a bad parameter. Prints one JSON object of what it saw, for the Python test.
//
// node openai_npm.mjs <base URL, e.g. http://127.0.0.1:8000/v1> <api key>
// The package comes from $AIASSISTANT_NPM_DIR (scripts/install_npm_clients.sh installs it there).
import { createRequire } from "node:module";
import { join } from "node:path";

const [baseURL, apiKey] = process.argv.slice(2);
const require = createRequire(join(process.env.AIASSISTANT_NPM_DIR, "package.json"));
const { OpenAI } = require("openai");
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });
const messages = [{ role: "user", content: "When do you open?" }];

async function failure(call) {
  try {
    await call();
    return null;
  } catch (err) {
    return { name: err.constructor.name, status: err.status, message: err.message, param: err.param ?? null };
  }
}

const models = [];
for await (const model of client.models.list()) models.push(model);
const retrieved = await client.models.retrieve(models[0].id);

const chat = await client.chat.completions.create({ model: "anything", messages });

const stream = await client.chat.completions.create({
  model: "anything",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = "";
let usage = null;
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  usage = chunk.usage ?? usage;
}

const structured = await client.chat.completions.create({
  model: "anything",
  messages,
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "opening_hours",
      strict: true,
      schema: {
        type: "object",
        properties: { opens: { type: "string" }, days: { type: "integer" } },
        required: ["opens", "days"],
        additionalProperties: false,
      },
    },
  },
});

const result = {
  models,
  retrieved,
  chat: { model: chat.model, content: chat.choices[0].message.content, finish: chat.choices[0].finish_reason },
  streamed,
  usage,
  structured: JSON.parse(structured.choices[0].message.content),
  notFound: await failure(() => client.get("/nope")),
  wrongMethod: await failure(() => client.get("/chat/completions")),
  unknownModel: await failure(() => client.models.retrieve("gpt-nope")),
  badTemperature: await failure(() =>
    client.chat.completions.create({ model: "anything", messages, temperature: "hot" }),
  ),
};
console.log(JSON.stringify(result));
