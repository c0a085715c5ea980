"""A loopback stand-in for xAI's realtime voice API (WS /v1/realtime?model=...), written from xAI's
documentation (docs.x.ai, "Voice": Realtime) and the event models of
pipecat/services/xai/realtime/events.py, not from our client code.

Handshake: `Authorization: Bearer <key>` (a wrong one gets 401). The server sends
`session.created` and `conversation.created`; the client configures the session with
`session.update` (answered by `session.updated`), adds items with `conversation.item.create`
(`conversation.item.added`), streams base64 audio with `input_audio_buffer.append` in the session's
input format (audio/pcm at its rate, or audio/pcmu), and asks for answers with `response.create`.
With `turn_detection: server_vad` the server finds the caller's turn itself (energy of 20 ms frames,
`silence_duration_ms` of silence, default 500): `input_audio_buffer.speech_started`,
`speech_stopped`, `committed`, the transcription (`conversation.item.input_audio_transcription.
completed`), then a response. A response is scripted (`RealtimeReply`): spoken text
(`response.output_audio_transcript.delta`, `response.output_audio.delta` chunks of a tone in the
output format, `response.output_audio.done`) and/or function calls (`response.output_item.added`
with a function_call item, `response.function_call_arguments.done`), closed by `response.done`
with usage. A `function_call_output` item is recorded; the client asks for the next response.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_server import tone
from tests.voice.clients import ulaw_decode, ulaw_encode

FRAME_SECONDS = 0.02
VOICED_RMS = 300.0
CHUNK_SECONDS = 0.1


@dataclass
class RealtimeReply:
    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, arguments)
    speech_ms: int | None = None  # length of the spoken audio; default: the server's speech_ms


@dataclass
class Session:
    query: dict[str, str]
    headers: dict[str, str]
    received: list[dict[str, Any]] = field(default_factory=list)  # client events but audio appends
    audio_bytes: int = 0  # PCM bytes heard
    config: dict[str, Any] = field(default_factory=dict)  # the session as last updated
    responses: int = 0
    cancelled: int = 0  # responses cancelled while being generated
    closed: bool = False  # the client closed the socket
    active: asyncio.Task[None] | None = None  # the response being generated

    def busy(self) -> bool:
        return self.active is not None and not self.active.done()

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class FakeXAIRealtime(LoopbackServer):
    """`async with FakeXAIRealtime(key=...) as fake:` -> fake.ws_url is ws://127.0.0.1:<port>."""

    def __init__(
        self, *, key: str, transcript: str = "What are your opening hours?", speech_ms: int = 400
    ) -> None:
        self.key = key
        self.transcript = transcript
        self.speech_ms = speech_ms
        self.default_text = "Hello from Grok."
        self.sessions: list[Session] = []
        self.refused = 0
        self._script: deque[RealtimeReply] = deque()
        app = web.Application()
        app.router.add_get("/v1/realtime", self._realtime)
        super().__init__(app)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def script(self, *replies: RealtimeReply) -> None:
        self._script.extend(replies)

    async def _realtime(self, request: web.Request) -> web.WebSocketResponse:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            self.refused += 1
            raise web.HTTPUnauthorized(text=json.dumps({"error": "Incorrect API key provided"}))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = Session(dict(request.query), dict(request.headers))
        self.sessions.append(session)
        await self._send(ws, "session.created", session={"id": _id("sess"), "object": "realtime.session"})
        await self._send(
            ws, "conversation.created", conversation={"id": _id("conv"), "object": "realtime.conversation"}
        )
        pending = b""
        speaking, silence, item = False, 0.0, ""
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            kind = event.get("type")
            if kind != "input_audio_buffer.append":
                session.received.append(event)
            if kind == "session.update":
                session.config.update(event["session"])
                await self._send(ws, "session.updated", session=session.config)
            elif kind == "conversation.item.create":
                added = {"id": _id("item"), **event["item"]}
                await self._send(ws, "conversation.item.added", item=added)
            elif kind == "response.create":
                await self._respond(ws, session)
            elif kind == "response.cancel":
                if session.busy():
                    assert session.active is not None
                    session.active.cancel()
                    session.cancelled += 1
                else:
                    await self._error(
                        ws, "response_cancel_not_active", "Cancellation failed: no active response found"
                    )
            elif kind == "input_audio_buffer.append":
                pcm = self._decode(session, base64.b64decode(event["audio"]))
                session.audio_bytes += len(pcm)
                pending += pcm
                frame_bytes = int(self._rate(session, "input") * FRAME_SECONDS) * 2
                while len(pending) >= frame_bytes:
                    frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                    if _rms(frame) > VOICED_RMS:
                        silence = 0.0
                        if not speaking:
                            speaking, item = True, _id("item")
                            await self._send(ws, "input_audio_buffer.speech_started", item_id=item)
                        continue
                    silence += FRAME_SECONDS
                    vad = session.config.get("turn_detection") or {}
                    if speaking and vad.get("type") == "server_vad":
                        if silence >= (vad.get("silence_duration_ms") or 500) / 1000:
                            speaking = False
                            await self._turn(ws, session, item)
        if session.busy():
            assert session.active is not None
            session.active.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session.active
        session.closed = True
        await ws.close()
        return ws

    async def _turn(self, ws: web.WebSocketResponse, session: Session, item: str) -> None:
        await self._send(ws, "input_audio_buffer.speech_stopped", item_id=item)
        await self._send(ws, "input_audio_buffer.committed", item_id=item, previous_item_id=None)
        await self._send(
            ws,
            "conversation.item.input_audio_transcription.completed",
            item_id=item,
            content_index=0,
            transcript=self.transcript,
        )
        await self._respond(ws, session)

    async def _respond(self, ws: web.WebSocketResponse, session: Session) -> None:
        """Start a response (server VAD or response.create); one at a time, as the API allows."""
        if session.busy():
            await self._error(
                ws, "conversation_already_has_active_response", "Conversation already has an active response"
            )
            return
        reply = self._script.popleft() if self._script else RealtimeReply(text=self.default_text)
        session.responses += 1
        session.active = asyncio.create_task(self._generate(ws, session, reply))

    async def _generate(self, ws: web.WebSocketResponse, session: Session, reply: RealtimeReply) -> None:
        response_id = _id("resp")
        output: list[dict[str, Any]] = []
        await self._send(
            ws,
            "response.created",
            response={
                "id": response_id,
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
            },
        )
        if reply.text:
            item = {
                "id": _id("msg"),
                "object": "realtime.item",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            await self._send(
                ws, "response.output_item.added", response_id=response_id, output_index=0, item=item
            )
            ids = {"response_id": response_id, "item_id": item["id"]}
            await self._send(ws, "response.output_audio_transcript.delta", **ids, delta=reply.text)
            audio = self._encode(
                session, tone(reply.speech_ms or self.speech_ms, self._rate(session, "output"))
            )
            step = int(self._rate(session, "output") * CHUNK_SECONDS) * (
                1 if self._pcmu(session, "output") else 2
            )
            for i in range(0, len(audio), step):
                chunk = base64.b64encode(audio[i : i + step]).decode()
                await self._send(
                    ws, "response.output_audio.delta", **ids, output_index=0, content_index=0, delta=chunk
                )
                await asyncio.sleep(CHUNK_SECONDS / 4)  # generated faster than real time, not at once
            await self._send(ws, "response.output_audio.done", **ids)
            await self._send(ws, "response.output_audio_transcript.done", **ids)
            output.append(
                {
                    **item,
                    "status": "completed",
                    "content": [{"type": "output_audio", "transcript": reply.text}],
                }
            )
        for index, (name, arguments) in enumerate(reply.calls, start=len(output)):
            call = {
                "id": _id("fc"),
                "object": "realtime.item",
                "type": "function_call",
                "status": "in_progress",
                "call_id": _id("call"),
                "name": name,
                "arguments": "",
            }
            await self._send(
                ws, "response.output_item.added", response_id=response_id, output_index=index, item=call
            )
            encoded = json.dumps(arguments)
            await self._send(
                ws,
                "response.function_call_arguments.done",
                response_id=response_id,
                item_id=call["id"],
                call_id=call["call_id"],
                name=name,
                arguments=encoded,
            )
            output.append({**call, "status": "completed", "arguments": encoded})
        await asyncio.sleep(0.01)
        usage = {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10}
        await self._send(
            ws,
            "response.done",
            response={
                "id": response_id,
                "object": "realtime.response",
                "status": "completed",
                "output": output,
                "usage": usage,
            },
            usage=usage,
        )

    def _format(self, session: Session, direction: str) -> dict[str, Any]:
        return ((session.config.get("audio") or {}).get(direction) or {}).get("format") or {}

    def _pcmu(self, session: Session, direction: str) -> bool:
        return self._format(session, direction).get("type") == "audio/pcmu"

    def _rate(self, session: Session, direction: str) -> int:
        return (
            8000
            if self._pcmu(session, direction)
            else int(self._format(session, direction).get("rate") or 24000)
        )

    def _decode(self, session: Session, data: bytes) -> bytes:
        return ulaw_decode(data) if self._pcmu(session, "input") else data

    def _encode(self, session: Session, pcm: bytes) -> bytes:
        return ulaw_encode(pcm) if self._pcmu(session, "output") else pcm

    async def _error(self, ws: web.WebSocketResponse, code: str, message: str) -> None:
        await self._send(
            ws, "error", error={"type": "invalid_request_error", "code": code, "message": message}
        )

    async def _send(self, ws: web.WebSocketResponse, kind: str, **fields: Any) -> None:
        await ws.send_json({"event_id": _id("event"), "type": kind, **fields})
