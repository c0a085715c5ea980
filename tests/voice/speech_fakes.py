"""Loopback stand-ins for the WebSocket speech providers, speaking the wire protocols Pipecat's
services speak (as far as the runner uses them):

  WS /v1/listen                                   Deepgram live STT: binary audio in; on `Finalize`
                                                  a final `Results` message with the transcript
  WS /v1/text-to-speech/{voice}/multi-stream-input ElevenLabs multi-context TTS: text per context in,
                                                  base64 PCM `audio` out, `isFinal` on close_context
  WS /tts/websocket                               Cartesia TTS: `transcript` messages in, `chunk`
                                                  (base64 PCM) out, `done` when `continue` is false;
                                                  with `add_timestamps`, a chunk per word, each
                                                  followed by its `timestamps` (seconds into the
                                                  context), as Cartesia streams them

Every connection is recorded (path, query, headers, JSON messages, audio bytes) for the tests.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_server import tone


@dataclass
class Connection:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio_bytes: int = 0


class FakeSpeechProviders(LoopbackServer):
    """`async with FakeSpeechProviders() as fake:` -> fake.ws_url is ws://127.0.0.1:<port>."""

    def __init__(self, *, transcript: str = "What are your opening hours?", speech_ms: int = 400) -> None:
        self.transcript = transcript
        self.speech_ms = speech_ms
        self.connections: list[Connection] = []
        app = web.Application()
        app.router.add_get("/v1/listen", self._deepgram)
        app.router.add_get("/v1/text-to-speech/{voice}/multi-stream-input", self._elevenlabs)
        app.router.add_get("/tts/websocket", self._cartesia)
        super().__init__(app)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def connections_to(self, path_start: str) -> list[Connection]:
        return [c for c in self.connections if c.path.startswith(path_start)]

    async def _open(self, request: web.Request) -> tuple[web.WebSocketResponse, Connection]:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(request.path, dict(request.query), dict(request.headers))
        self.connections.append(connection)
        return ws, connection

    def _speech(self, rate: int) -> str:
        return base64.b64encode(tone(self.speech_ms, rate)).decode()

    async def _deepgram(self, request: web.Request) -> web.WebSocketResponse:
        ws, connection = await self._open(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                connection.audio_bytes += len(message.data)
                continue
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            connection.messages.append(data)
            if data.get("type") == "CloseStream":
                break
            if data.get("type") == "Finalize" and connection.audio_bytes:
                seconds = connection.audio_bytes / 2 / int(connection.query.get("sample_rate", "16000"))
                await ws.send_json(
                    {
                        "type": "Results",
                        "channel_index": [0, 1],
                        "duration": seconds,
                        "start": 0.0,
                        "is_final": True,
                        "speech_final": True,
                        "from_finalize": True,
                        "channel": {
                            "alternatives": [{"transcript": self.transcript, "confidence": 0.99, "words": []}]
                        },
                        "metadata": {
                            "request_id": "fake-request",
                            "model_info": {"name": "fake", "version": "1", "arch": "fake"},
                            "model_uuid": "fake-model",
                        },
                    }
                )
        await ws.close()
        return ws

    async def _elevenlabs(self, request: web.Request) -> web.WebSocketResponse:
        ws, connection = await self._open(request)
        rate = int(connection.query.get("output_format", "pcm_16000").split("_")[1])
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            connection.messages.append(data)
            context = data.get("context_id")
            if data.get("close_socket"):
                break
            if data.get("text", "").strip():
                await ws.send_json({"audio": self._speech(rate), "contextId": context, "alignment": None})
            if data.get("close_context"):
                await ws.send_json({"isFinal": True, "contextId": context})
        await ws.close()
        return ws

    async def _cartesia(self, request: web.Request) -> web.WebSocketResponse:
        ws, connection = await self._open(request)
        spoken: dict[str, float] = {}  # context -> seconds of audio sent in it
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            connection.messages.append(data)
            context = data.get("context_id")
            if data.get("cancel"):
                continue
            if data.get("transcript", "").strip():
                rate = int(data["output_format"]["sample_rate"])
                words = data["transcript"].split() if data.get("add_timestamps") else [None]
                share = self.speech_ms // len(words)
                for word in words:
                    chunk = {"type": "chunk", "context_id": context, "done": False}
                    await ws.send_json({**chunk, "data": base64.b64encode(tone(share, rate)).decode()})
                    start = spoken.get(context, 0.0)
                    spoken[context] = start + share / 1000
                    if word is not None:
                        stamps = {"words": [word], "start": [start], "end": [spoken[context]]}
                        await ws.send_json({**chunk, "type": "timestamps", "word_timestamps": stamps})
            if data.get("continue") is False:
                await ws.send_json({"type": "done", "context_id": context, "done": True})
        await ws.close()
        return ws
