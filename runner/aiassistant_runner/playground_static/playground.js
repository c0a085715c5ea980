// The playground page: talk to the assistant (microphone over WS /v1/calls/protobuf, Pipecat's
// protobuf frames) and chat with it (POST /v1/chat/completions, streamed).
//
// Hand-written rather than @pipecat-ai/client-js: that client needs a bundler and speaks the RTVI
// protocol, while the runner's call socket speaks plain Pipecat protobuf frames (audio in and out,
// interruptions, and with ?events=playground the transcript as JSON messages). The frames are five
// small messages (pipecat/frames/frames.proto), encoded and decoded here by hand.
//
// The access token, if the assistant needs one, lives only in this module's memory: never in
// localStorage, sessionStorage, a cookie or a URL. HTTP sends it as `Authorization: Bearer`; the
// WebSocket, which a browser cannot give headers, offers it as the subprotocol
// `aiassistant.bearer.<token>` next to `aiassistant` (the runner selects `aiassistant`).

const RATE = 16000;
const $ = (id) => document.getElementById(id);

// What the page shows, also read by the browser tests.
const state = {
  info: null,
  voice: "idle", // idle | connecting | live | ended
  transcript: [], // {who: "user" | "assistant", text}
  audioChunks: 0, // audio frames received and scheduled for playback
  audioSeconds: 0,
  audioChunksPlayed: 0, // of those, played to the end
  interruptions: 0,
  audioChunksDropped: 0, // queued audio the page dropped when the runner signalled an interruption
  audioSecondsAtInterruption: null, // audio received when the last interruption came
  firstAudioMs: null, // end of the caller's turn (or the call's start) -> first audio of the answer
  chat: [], // {role, content}
  answeredBy: null,
  firstTokenMs: null,
  error: null,
};
window.playground = { state };

let token = null; // memory only

// ---- errors in plain words ---------------------------------------------------------------------

function showError(message) {
  state.error = message;
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

function askForToken(message) {
  $("token-panel").hidden = false;
  showError(message);
  $("token").focus();
}

// An HTTP refusal of the runner, in plain words. `body` is the parsed error body, if any.
function httpProblem(status, body) {
  const err = (body && body.error) || {};
  const text = err.message || "";
  if (status === 401) {
    return token
      ? "The access token was not accepted. Check it (no spaces, the whole line) and try again."
      : "This assistant needs an access token. Paste it above.";
  }
  if (status === 403 && err.code === "no_credentials_configured") {
    return "This assistant has no access credentials configured, so it serves nobody. Its owner must set spec.access.";
  }
  if (status === 429) return "Too many failed attempts from this address. Wait a minute and try again.";
  if (status === 503) return "The assistant is busy or shutting down. Try again in a moment.";
  if (status === 413) return "That message is too long for this assistant.";
  if (status === 400) return `The runner refused the request: ${text || "bad request"}.`;
  if (status === 404) return "The runner does not serve this (is the playground enabled for this assistant?).";
  return `The runner answered ${status}${text ? `: ${text}` : ""}.`;
}

// Why a call socket closed, in plain words (close code and reason from the runner).
function callProblem(code, reason) {
  const r = (reason || "").toLowerCase();
  if (code === 1000 || code === 1005) return null;
  if (r.includes("no credentials configured")) {
    return "This assistant has no access credentials configured, so it serves nobody. Its owner must set spec.access.";
  }
  if (r.includes("invalid bearer token")) {
    return "The access token was not accepted. Check it and try again.";
  }
  if (r.includes("missing credentials")) {
    return "This assistant needs an access token. Paste it above.";
  }
  if (r.includes("too many failed")) return "Too many failed attempts from this address. Wait a minute and try again.";
  if (r.includes("stt and tts")) return "This assistant has no speech configured (spec.stt and spec.tts): it can only chat.";
  if (r.includes("serializer")) return "Browser calls are not enabled for this assistant (spec.transport.serializers lacks protobuf).";
  if (code === 1013) return `The assistant cannot take a call right now (${reason || "busy"}). Try again in a moment.`;
  if (code === 1011) return "The runner could not start the call: it is missing an API key for the model or speech.";
  if (code === 1006) return "The connection to the runner was lost. Is the port-forward still running?";
  return `The call ended: ${reason || `code ${code}`}.`;
}

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// ---- the assistant's facts ---------------------------------------------------------------------

async function loadInfo() {
  let res;
  try {
    res = await fetch("/playground/info", { headers: authHeaders(), cache: "no-store" });
  } catch {
    showError("Cannot reach the runner. Is the port-forward still running?");
    return false;
  }
  if (!res.ok) {
    const problem = httpProblem(res.status, await res.json().catch(() => null));
    if (res.status === 401) askForToken(problem);
    else showError(problem);
    return false;
  }
  state.info = await res.json();
  $("assistant-name").textContent = `${state.info.namespace}/${state.info.name}`;
  $("model").textContent = state.info.engineModel;
  $("speech").textContent = !state.info.voice
    ? "· no browser calls (no speech, or protobuf not served): chat only"
    : state.info.realtime
      ? `· voice: ${state.info.realtime} (speech-to-speech)`
      : `· speech ${state.info.stt} → ${state.info.tts}`;
  $("voice-start").disabled = !state.info.voice;
  return true;
}

$("token-panel").addEventListener("submit", async (event) => {
  event.preventDefault();
  token = $("token").value.trim() || null;
  $("token").value = "";
  if (await loadInfo()) {
    $("token-panel").hidden = true;
    showError(null);
  }
});

// ---- transcript ----------------------------------------------------------------------------------

function addLine(list, who, text) {
  const li = document.createElement("li");
  li.className = who;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who === "user" ? "You" : "Assistant";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(label, body);
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return body;
}

// The voice transcript: consecutive bot-text messages of one answer go on one line.
let botLine = null;
function voiceLine(who, text) {
  if (who === "assistant" && botLine) {
    botLine.el.textContent += ` ${text}`;
    botLine.entry.text += ` ${text}`;
    return;
  }
  const entry = { who, text };
  state.transcript.push(entry);
  const el = addLine($("voice-transcript"), who, text);
  botLine = who === "assistant" ? { el, entry } : null;
}

// ---- protobuf frames (pipecat/frames/frames.proto) ----------------------------------------------

function pushVarint(out, n) {
  while (n > 127) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function readVarint(bytes, i) {
  let n = 0;
  let scale = 1;
  for (;;) {
    if (i >= bytes.length) throw new Error("truncated varint");
    const b = bytes[i++];
    n += (b & 127) * scale;
    if (b < 128) return [n, i];
    scale *= 128;
  }
}

// A message's fields: number -> value (a number for varints, a Uint8Array for length-delimited).
function fields(bytes) {
  const out = {};
  let i = 0;
  while (i < bytes.length) {
    let key;
    [key, i] = readVarint(bytes, i);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      [out[number], i] = readVarint(bytes, i);
    } else if (wire === 2) {
      let len;
      [len, i] = readVarint(bytes, i);
      out[number] = bytes.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

// Frame{audio: AudioRawFrame{audio, sample_rate: 16000, num_channels: 1}}
function audioFrame(pcm) {
  const head = [26];
  pushVarint(head, pcm.length);
  const tail = [32];
  pushVarint(tail, RATE);
  tail.push(40, 1);
  const innerLength = head.length + pcm.length + tail.length;
  const outer = [18];
  pushVarint(outer, innerLength);
  const frame = new Uint8Array(outer.length + innerLength);
  frame.set(outer, 0);
  frame.set(head, outer.length);
  frame.set(pcm, outer.length + head.length);
  frame.set(tail, outer.length + head.length + pcm.length);
  return frame;
}

const utf8 = new TextDecoder();

// ---- voice ---------------------------------------------------------------------------------------

let call = null; // {ws, mic, micCtx, playCtx, sources, nextTime, turnEnded}

function setVoice(status, label) {
  state.voice = status;
  const el = $("voice-state");
  el.textContent = label;
  el.classList.toggle("live", status === "live");
  $("voice-start").disabled = status === "connecting" || status === "live" || !(state.info && state.info.voice);
  $("voice-stop").disabled = !(status === "connecting" || status === "live");
}

function showAudio() {
  $("audio-played").textContent = `${state.audioChunks} chunks (${state.audioSeconds.toFixed(1)} s)`;
}

function playAudio(pcmBytes, sampleRate) {
  const samples = Math.floor(pcmBytes.length / 2);
  if (!samples) return;
  const view = new DataView(pcmBytes.buffer, pcmBytes.byteOffset, samples * 2);
  const buffer = call.playCtx.createBuffer(1, samples, sampleRate || RATE);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < samples; i++) data[i] = view.getInt16(i * 2, true) / 0x8000;
  const source = call.playCtx.createBufferSource();
  source.buffer = buffer;
  source.connect(call.playCtx.destination);
  const now = call.playCtx.currentTime;
  call.nextTime = Math.max(call.nextTime, now + 0.05);
  source.start(call.nextTime);
  call.nextTime += buffer.duration;
  call.sources.add(source);
  source.onended = () => {
    if (call && call.sources.delete(source)) state.audioChunksPlayed += 1;
  };
  if (call.turnEnded !== null) {
    state.firstAudioMs = Math.round(performance.now() - call.turnEnded);
    $("first-audio").textContent = `${state.firstAudioMs} ms`;
    call.turnEnded = null;
  }
  state.audioChunks += 1;
  state.audioSeconds += buffer.duration;
  showAudio();
}

// The runner heard the caller over the bot: drop what is queued, so the bot stops at once.
function interrupt() {
  for (const source of call.sources) {
    source.onended = null;
    try {
      source.stop();
    } catch {
      // not started yet
    }
  }
  state.audioChunksDropped += call.sources.size;
  call.sources.clear();
  call.nextTime = 0;
  state.interruptions += 1;
  state.audioSecondsAtInterruption = state.audioSeconds;
  $("interruptions").textContent = String(state.interruptions);
  botLine = null;
}

function onEvent(event) {
  if (event.type === "user-transcript" && event.text) {
    voiceLine("user", event.text);
  } else if (event.type === "bot-text" && event.text) {
    voiceLine("assistant", event.text);
  } else if (event.type === "user-stopped-speaking") {
    call.turnEnded = performance.now();
    botLine = null;
  } else if (event.type === "bot-stopped-speaking") {
    botLine = null;
  }
}

function onFrame(bytes) {
  const frame = fields(bytes);
  if (frame[2]) {
    const audio = fields(frame[2]);
    if (audio[3]) playAudio(audio[3], audio[4]);
  } else if (frame[5]) {
    interrupt();
  } else if (frame[4]) {
    const message = fields(frame[4]);
    try {
      onEvent(JSON.parse(utf8.decode(message[1] || new Uint8Array())));
    } catch {
      // not one of ours
    }
  } else if (frame[1] || frame[3]) {
    const text = fields(frame[1] || frame[3]);
    if (text[3]) voiceLine(frame[3] ? "user" : "assistant", utf8.decode(text[3]));
  }
}

async function openMicrophone() {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    throw new Error(
      "The microphone needs https or localhost: open the page through kubectl port-forward at http://localhost:8000/playground.",
    );
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (err) {
    throw new Error(
      err && err.name === "NotAllowedError"
        ? "The browser did not allow the microphone. Allow it for this page (the icon in the address bar) and try again."
        : "No microphone could be opened. Check that one is connected and not used by another program.",
    );
  }
}

async function startCall() {
  showError(null);
  setVoice("connecting", "Connecting…");
  let mic;
  try {
    mic = await openMicrophone();
  } catch (err) {
    showError(err.message);
    setVoice("idle", "Not connected");
    return;
  }
  const playCtx = new AudioContext();
  const micCtx = new AudioContext();
  let ws;
  try {
    await micCtx.audioWorklet.addModule("/playground/mic-worklet.js");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/v1/calls/protobuf?events=playground`;
    // A subprotocol is a token of letters, digits and a few symbols: another token throws here.
    ws = token ? new WebSocket(url, ["aiassistant", `aiassistant.bearer.${token}`]) : new WebSocket(url);
  } catch (err) {
    for (const track of mic.getTracks()) track.stop();
    micCtx.close();
    playCtx.close();
    showError(
      err && err.name === "SyntaxError"
        ? "This token cannot be sent by a browser call: use a token of letters and digits only."
        : "The browser could not start the call's audio processing.",
    );
    setVoice("idle", "Not connected");
    return;
  }
  ws.binaryType = "arraybuffer";
  call = { ws, mic, micCtx, playCtx, sources: new Set(), nextTime: 0, turnEnded: null, node: null };
  const current = call;

  ws.onopen = () => {
    if (call !== current) return;
    setVoice("live", "Live: speak now");
    // With a greeting the bot speaks first: time its first audio from the call's start.
    if (state.info && state.info.greeting) current.turnEnded = performance.now();
    const node = new AudioWorkletNode(micCtx, "mic-processor");
    node.port.onmessage = (msg) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(audioFrame(new Uint8Array(msg.data)));
    };
    micCtx.createMediaStreamSource(mic).connect(node);
    current.node = node;
  };
  ws.onmessage = (msg) => {
    if (call === current && msg.data instanceof ArrayBuffer) onFrame(new Uint8Array(msg.data));
  };
  ws.onclose = (close) => {
    if (call !== current) return;
    const problem = callProblem(close.code, close.reason);
    if (problem) {
      if (problem.includes("access token")) askForToken(problem);
      else showError(problem);
    }
    endCall(problem ? "Not connected" : "Call ended");
  };
}

function endCall(label) {
  if (!call) return;
  const ended = call;
  call = null;
  if (ended.ws.readyState <= WebSocket.OPEN) ended.ws.close(1000, "hung up");
  for (const track of ended.mic.getTracks()) track.stop();
  if (ended.node) ended.node.disconnect();
  ended.micCtx.close();
  // Let the queued audio finish, then free the playback context (browsers allow only a few).
  const left = Math.max(0, ended.nextTime - ended.playCtx.currentTime);
  setTimeout(() => ended.playCtx.close(), left * 1000 + 100);
  setVoice("ended", label);
}

$("voice-start").addEventListener("click", () => startCall());
$("voice-stop").addEventListener("click", () => endCall("Call ended"));

// ---- text chat -----------------------------------------------------------------------------------

// Yields the parsed `data:` payloads of a server-sent event stream.
async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

async function sendChat(text) {
  showError(null);
  state.chat.push({ role: "user", content: text });
  addLine($("chat-log"), "user", text);
  const started = performance.now();
  let res;
  try {
    res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ messages: state.chat, stream: true }),
    });
  } catch {
    showError("Cannot reach the runner. Is the port-forward still running?");
    state.chat.pop();
    return;
  }
  if (!res.ok) {
    const problem = httpProblem(res.status, await res.json().catch(() => null));
    if (res.status === 401) askForToken(problem);
    else showError(problem);
    state.chat.pop();
    return;
  }
  const header = res.headers.get("X-AIAssistant-Model");
  const answer = { role: "assistant", content: "" };
  const line = addLine($("chat-log"), "assistant", "");
  let bodyModel = null;
  state.firstTokenMs = null;
  try {
    for await (const chunk of sseEvents(res.body)) {
      if (chunk.error) {
        showError(`The assistant could not answer: ${chunk.error.message || "error"}.`);
        break;
      }
      if (chunk.model) bodyModel = chunk.model; // the last chunk's: a fallback may take over
      const delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta) || {};
      if (delta.content) {
        if (state.firstTokenMs === null) {
          state.firstTokenMs = Math.round(performance.now() - started);
          $("first-token").textContent = `${state.firstTokenMs} ms`;
        }
        answer.content += delta.content;
        line.textContent = answer.content;
      }
    }
  } catch {
    showError("The answer was cut off: the connection to the runner broke.");
  }
  if (res.headers.get("X-AIAssistant-Finish") === "error") {
    showError("The model failed to answer; the runner replied with an apology instead.");
  }
  state.answeredBy = header || bodyModel;
  $("answered-by").textContent = state.answeredBy || "–";
  state.chat.push(answer);
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  $("chat-send").disabled = true;
  try {
    await sendChat(text);
  } finally {
    $("chat-send").disabled = false;
  }
});
$("chat-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("chat-form").requestSubmit();
  }
});

setVoice("idle", "Not connected");
loadInfo();
