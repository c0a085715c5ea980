"""A loopback OpenAI-compatible server for tests and benchmarks (it stands in for xAI and OpenAI).

Speaks the real wire protocol over HTTP on 127.0.0.1:
  POST /v1/chat/completions    JSON or SSE streaming (`stream_options.include_usage` honoured),
                               text replies and streamed tool_calls; `response_format` as the
                               providers' structured outputs: json_object and json_schema answer
                               JSON (see `structured`), a malformed one is a 400
  POST /v1/audio/transcriptions multipart upload -> {"text": ...}
  POST /v1/audio/speech        -> raw 16-bit PCM (24 kHz mono) of a tone, length set per reply
  GET  /v1/models
Every request is recorded (path, headers, JSON body) so tests assert what the client really sent.

Replies are scripted: push `Reply` objects with `fake.script(...)`; when the script is empty the
default text reply is used. Self-contained (aiohttp only) so the kind e2e can run it in a pod:
`python openai_server.py --host 0.0.0.0 --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import struct
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

SPEECH_SAMPLE_RATE = 24_000


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = "call_1"


@dataclass
class Reply:
    """One scripted chat completion reply."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: int = 200  # non-200: answer with an OpenAI-style error body
    garbled: bool = False  # stream a broken SSE line after the first chunk
    first_token_delay: float = 0.0  # seconds before the first chunk
    chunk_delay: float = 0.0  # seconds between chunks
    chunks: int = 0  # split text into this many chunks (0: one chunk per word)
    raw: tuple[str, str] | None = None  # (content type, body): a 200 that is not the protocol
    keepalive_seconds: float = 0.0  # send SSE comments this long before the first chunk
    no_finish: bool = False  # the stream ends after the text: no finish_reason, no [DONE]
    finish_reason: str = ""  # "" : tool_calls or stop; "length" when max_(completion_)tokens cut it


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeOpenAI(LoopbackServer):
    """`async with FakeOpenAI() as fake:` -> fake.base_url is http://127.0.0.1:<port>/v1."""

    def __init__(
        self,
        *,
        default_text: str = "Hello from the fake model.",
        transcript: str = "What are your opening hours?",
        speech_ms: int = 300,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str | None = None,
        rejects_as: str = "openai",
    ) -> None:
        # key: the only Bearer token accepted (None: any). A wrong one is answered as the provider
        # does: OpenAI 401 {"error": {..., "code": "invalid_api_key"}}; xAI 400 {"code", "error"}
        # with "Incorrect API key provided: <masked>" (what api.x.ai answers, masked key included).
        self.key, self.rejects_as = key, rejects_as
        self.models_status = 200  # another status: GET /v1/models answers it (an outage)
        self.default_text = default_text
        self.transcript = transcript
        self.speech_ms = speech_ms
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/healthz", self._healthz)
        super().__init__(app, host=host, port=port)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting and inspection ------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        self.requests.append(Recorded(request.path, dict(request.headers), body, time.monotonic()))

    # -- handlers ----------------------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _refused(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.key is None or token == self.key:
            return None
        masked = f"{token[:2]}***{token[-2:]}"
        if self.rejects_as == "xai":
            return web.json_response(
                {
                    "code": "Client specified an invalid argument",
                    "error": f"Incorrect API key provided: {masked}. You can obtain an API key from https://console.x.ai.",
                },
                status=400,
            )
        return web.json_response(
            {
                "error": {
                    "message": f"Incorrect API key provided: {masked}.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            status=401,
        )

    async def _models(self, request: web.Request) -> web.Response:
        self._record(request, {})
        if refused := self._refused(request):
            return refused
        if self.models_status != 200:
            return _error(self.models_status, f"scripted failure {self.models_status}")
        models = [
            {"id": m, "object": "model", "owned_by": "fake"} for m in ("grok-3", "grok-3-mini", "gpt-4o")
        ]
        return web.json_response({"object": "list", "data": models})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "request body is not JSON")
        self._record(request, body)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "missing bearer token")
        if refused := self._refused(request):
            return refused
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return _error(400, "model and messages are required")
        fmt = body.get("response_format")
        if (problem := response_format_problem(fmt)) is not None:
            return _error(400, problem)
        reply = self._script.popleft() if self._script else Reply(text=self.default_text)
        if isinstance(fmt, dict) and fmt["type"] != "text" and not reply.tool_calls:
            reply = replace(reply, text=structured(reply.text, fmt))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")  # a token is a word here
        if isinstance(limit, int) and len(reply.text.split()) > limit:
            reply = replace(reply, text=" ".join(reply.text.split()[:limit]), finish_reason="length")
        if reply.status != 200:
            return _error(reply.status, f"scripted failure {reply.status}")
        if reply.raw is not None:
            return web.Response(status=200, content_type=reply.raw[0], text=reply.raw[1])
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        created, model = int(time.time()), body["model"]
        usage = {
            "prompt_tokens": _count_tokens(body["messages"]),
            "completion_tokens": len(reply.text.split()),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            return web.json_response(_completion(reply, created, model, usage))
        return await self._stream(request, body, reply, created, model, usage)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        reply: Reply,
        created: int,
        model: str,
        usage: dict[str, int],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        deadline = time.monotonic() + reply.keepalive_seconds
        while time.monotonic() < deadline:  # a proxy or a stuck upstream keeping the stream open
            await response.write(b": keep-alive\n\n")
            await asyncio.sleep(0.1)
        await send({"role": "assistant", "content": ""})
        for i, piece in enumerate(_split(reply.text, reply.chunks)):
            if i and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await send({"content": piece})
            if reply.garbled:
                await response.write(b"data: {not json\n\n")
                await response.write_eof()
                return response
        if reply.no_finish:
            await response.write_eof()
            return response
        for index, call in enumerate(reply.tool_calls):
            arguments = json.dumps(call.arguments)
            half = len(arguments) // 2
            head = {"index": index, "id": call.id, "type": "function"}
            await send(
                {"tool_calls": [{**head, "function": {"name": call.name, "arguments": arguments[:half]}}]}
            )
            await send({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]})
        await send({}, _finish(reply))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
            await response.write(f"data: {json.dumps({**final, 'choices': [], 'usage': usage})}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _transcriptions(self, request: web.Request) -> web.Response:
        fields: dict[str, Any] = {}
        async for part in await request.multipart():
            data = await part.read()  # type: ignore[union-attr]
            fields[part.name or ""] = len(data) if part.name == "file" else data.decode()  # type: ignore[union-attr]
        self._record(request, fields)
        if not fields.get("file"):
            return _error(400, "file is required")
        return web.json_response({"text": self.transcript})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._record(request, body)
        if not body.get("input"):
            return _error(400, "input is required")
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        await response.write(tone(self.speech_ms, SPEECH_SAMPLE_RATE))
        await response.write_eof()
        return response


# -- structured outputs (OpenAI's and xAI's `response_format`) -----------------------------------------
# Both take {"type": "text"} (the default), {"type": "json_object"} (any JSON object) and
# {"type": "json_schema", "json_schema": {"name", "schema", "strict"?, "description"?}}, whose answer
# matches the schema; `name` is required, of a-z, A-Z, 0-9, _ and -, at most 64 characters.


def response_format_problem(fmt: Any) -> str | None:
    """What the provider would answer 400 for in a response_format (None: it is fine)."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        return "Invalid value for 'response_format.type': expected text, json_object or json_schema"
    if fmt["type"] != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        return "Missing required parameter: 'response_format.json_schema'"
    name = spec.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        return "Missing required parameter: 'response_format.json_schema.name'"
    if not isinstance(spec.get("schema"), dict):
        return "Invalid 'response_format.json_schema.schema': expected an object"
    return None


def structured(text: str, fmt: dict[str, Any]) -> str:
    """The answer to a JSON response_format: `text` itself when it is JSON (a test scripts the JSON
    reply), else JSON built from it: {"answer": text} for json_object, an instance of the schema
    (strings say `text`) for json_schema."""
    try:
        json.loads(text)
        return text
    except ValueError:
        pass
    if fmt["type"] == "json_object":
        return json.dumps({"answer": text})
    schema = fmt["json_schema"]["schema"]
    return json.dumps(example_of(schema, schema, text))


def example_of(schema: Any, root: dict[str, Any], text: str, depth: int = 0) -> Any:
    """A value valid against `schema` (the subset of JSON Schema structured outputs support:
    object, array, string, number, integer, boolean, null, enum, const, anyOf/oneOf/allOf,
    $ref into $defs/definitions)."""
    if not isinstance(schema, dict) or depth > 32:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_of(target, root, text, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_of(schema[key][0], root, text, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_of(sub, root, text, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [example_of(schema.get("items", {}), root, text, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        value = schema.get(
            "minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0)
        )
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def tone(ms: int, sample_rate: int, hz: float = 440.0) -> bytes:
    """16-bit little-endian mono PCM of a sine tone."""
    n = sample_rate * ms // 1000
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * hz * i / sample_rate)) for i in range(n))
    )


def _split(text: str, chunks: int) -> list[str]:
    if not text:
        return []
    if chunks <= 0:
        words = text.split(" ")
        return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]
    size = max(1, math.ceil(len(text) / chunks))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _count_tokens(messages: list[Any]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages if isinstance(m, dict))


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _completion(reply: Reply, created: int, model: str, usage: dict[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
        "usage": usage,
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "fake_error", "code": status}}, status=status
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--text", default="Hello from the fake model.", help="default chat reply")
    args = parser.parse_args()
    fake = FakeOpenAI(default_text=args.text, host=args.host, port=args.port)
    web.run_app(fake.app, host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
