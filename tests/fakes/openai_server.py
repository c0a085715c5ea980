"""A loopback OpenAI-compatible server for tests and benchmarks (it stands in for xAI and OpenAI).

Speaks the real wire protocol over HTTP on 127.0.0.1:
  POST /v1/chat/completions    JSON or SSE streaming (`stream_options.include_usage` honoured),
                               text replies and streamed tool_calls
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
from dataclasses import dataclass, field
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
        reply = self._script.popleft() if self._script else Reply(text=self.default_text)
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
        await send({}, "tool_calls" if reply.tool_calls else "stop")
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
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
        ],
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
