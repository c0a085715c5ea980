"""A loopback stand-in for xAI's voice APIs, written from xAI's documentation (docs.x.ai, "Voice":
Speech to Text, Streaming text to speech) and the message shapes Pipecat models:

  WS /v1/stt   streaming STT. Configured by query (sample_rate, encoding pcm|mulaw|alaw, language,
               interim_results, endpointing ms); `Authorization: Bearer <key>`. The server says
               `transcript.created` when ready; the client streams binary audio; the server detects
               the end of an utterance after `endpointing` ms of silence (default 400) and sends
               `transcript.partial` with is_final and speech_final true; on `{"type": "audio.done"}`
               it sends `transcript.done` and closes.
  WS /v1/tts   streaming TTS. Configured by query (voice, language, codec pcm|mulaw, sample_rate,
               with_timestamps); the client sends `text.delta` {delta} messages and `text.done`; the
               server answers `audio.delta` {delta: base64 audio} chunks then `audio.done`;
               `text.clear` drops the utterance (`audio.clear`).

A wrong key is refused at the handshake with 401, as xAI does. Every connection is recorded (path,
query, headers, JSON messages, audio bytes) for the tests.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_server import tone
from tests.voice.clients import ulaw_decode, ulaw_encode
from tests.voice.speech_fakes import Connection

FRAME_SECONDS = 0.02
VOICED_RMS = 300.0  # a 20 ms frame louder than this is speech
CHUNK_SECONDS = 0.1  # audio.delta size


def _pcm(data: bytes, encoding: str) -> bytes:
    if encoding == "pcm":
        return data
    if encoding == "mulaw":
        return ulaw_decode(data)
    raise web.HTTPBadRequest(text=f"unsupported encoding {encoding}")


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


class FakeXAIVoice(LoopbackServer):
    """`async with FakeXAIVoice(key=...) as fake:` -> fake.ws_url is ws://127.0.0.1:<port>."""

    def __init__(
        self, *, key: str, transcript: str = "What are your opening hours?", speech_ms: int = 400
    ) -> None:
        self.key = key
        self.transcript = transcript
        self.speech_ms = speech_ms
        self.connections: list[Connection] = []
        self.refused: list[dict[str, str]] = []  # handshake headers of refused connections
        app = web.Application()
        app.router.add_get("/v1/stt", self._stt)
        app.router.add_get("/v1/tts", self._tts)
        super().__init__(app)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def connections_to(self, path: str) -> list[Connection]:
        return [c for c in self.connections if c.path == path]

    async def _open(self, request: web.Request) -> tuple[web.WebSocketResponse, Connection]:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            self.refused.append(dict(request.headers))
            raise web.HTTPUnauthorized(
                text=json.dumps({"code": "unauthorized", "error": "Incorrect API key provided"}),
                content_type="application/json",
            )
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(request.path, dict(request.query), dict(request.headers))
        self.connections.append(connection)
        return ws, connection

    async def _stt(self, request: web.Request) -> web.WebSocketResponse:
        rate = int(request.query.get("sample_rate", "16000"))
        encoding = request.query.get("encoding", "pcm")
        endpointing = int(request.query.get("endpointing", "400")) / 1000
        frame_bytes = int(rate * FRAME_SECONDS) * 2
        ws, connection = await self._open(request)
        await ws.send_json({"type": "transcript.created"})
        pending = b""
        heard = 0.0  # seconds of audio received
        speech_start: float | None = None
        silence = 0.0
        sent = False
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                connection.audio_bytes += len(message.data)
                pending += _pcm(message.data, encoding)
                while len(pending) >= frame_bytes:
                    frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                    heard += FRAME_SECONDS
                    if _rms(frame) > VOICED_RMS:
                        speech_start = heard if speech_start is None else speech_start
                        silence = 0.0
                        continue
                    silence += FRAME_SECONDS
                    if speech_start is not None and silence >= endpointing:
                        await ws.send_json(
                            {
                                "type": "transcript.partial",
                                "text": self.transcript,
                                "words": [],
                                "is_final": True,
                                "speech_final": True,
                                "start": speech_start,
                                "duration": heard - silence - speech_start,
                            }
                        )
                        speech_start, sent = None, True
                continue
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            connection.messages.append(data)
            if data.get("type") == "audio.done":
                text = self.transcript if speech_start is not None and not sent else ""
                await ws.send_json({"type": "transcript.done", "text": text, "duration": heard})
                break
        await ws.close()
        return ws

    def _audio(self, rate: int, codec: str) -> bytes:
        pcm = tone(self.speech_ms, rate)
        if codec == "pcm":
            return pcm
        if codec in ("mulaw", "ulaw"):
            return ulaw_encode(pcm)
        raise web.HTTPBadRequest(text=f"unsupported codec {codec}")

    async def _tts(self, request: web.Request) -> web.WebSocketResponse:
        rate = int(request.query.get("sample_rate", "24000"))
        codec = request.query.get("codec", "mp3")
        timestamps = request.query.get("with_timestamps") == "true"
        ws, connection = await self._open(request)
        text = ""
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            connection.messages.append(data)
            kind = data.get("type")
            if kind == "text.delta":
                text += data.get("delta", "")
            elif kind == "text.clear":
                text = ""
                await ws.send_json({"type": "audio.clear"})
            elif kind == "text.done":
                if text.strip():
                    await self._speak(ws, text, rate, codec, timestamps)
                await ws.send_json({"type": "audio.done"})
                text = ""
        await ws.close()
        return ws

    async def _speak(
        self, ws: web.WebSocketResponse, text: str, rate: int, codec: str, timestamps: bool
    ) -> None:
        audio = self._audio(rate, codec)
        width = 2 if codec == "pcm" else 1
        step = int(rate * CHUNK_SECONDS) * width
        chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
        for i, chunk in enumerate(chunks):
            event: dict[str, Any] = {"type": "audio.delta", "delta": base64.b64encode(chunk).decode()}
            if timestamps and i == 0:  # the characters' [start, end] seconds, spread over the audio
                per_char = self.speech_ms / 1000 / max(1, len(text))
                event["audio_timestamps"] = {
                    "graph_chars": list(text),
                    "graph_times": [
                        [round(n * per_char, 3), round((n + 1) * per_char, 3)] for n in range(len(text))
                    ],
                }
            await ws.send_json(event)
