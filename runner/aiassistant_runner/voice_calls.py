"""Voice calls: `WS /v1/calls/{serializer}` — one Pipecat pipeline per accepted socket.

app.py accepts the socket and checks the serializer is enabled and the caller's credentials at
the upgrade; `handle_call` reads the telephony provider's `start` message where there is one (it
carries the stream id the serializer must echo, and possibly the stream token) within
`limits.callStartSeconds`, and only then admits the session: a socket that never sends `start`
never holds a session slot. Then it builds the pipeline (voice_pipeline.py) and runs it until the call ends:
  - the client closes the socket (the pipeline is cancelled, the session ends cleanly),
  - the model calls the built-in `end_call` tool (after its goodbye is spoken),
  - `maxCallSeconds` passes (the pipeline ends gracefully),
  - the pod's drain grace runs out (the server's shutdown closes the socket, code 1012),
  - the provider sends its `stop` event (media_streams.py: the pipeline is cancelled at once and
    nothing more is sent).

One log line when a call is admitted (`call started`) and one when it ends (`call ended`), with the
serializer, the provider's stream and call ids (a generated id for protobuf), and at the end the
duration, the reason (`client hung up`, `stop event`, `end_call tool`, `maxCallSeconds`, `drain`,
`error`) and what the caller heard of the bot's utterances (`Playback`: heard, cut, unconfirmed).
Nothing else from the start message is logged (its custom parameters may carry the stream token).

Serializers: `protobuf` (Pipecat's own frames, 16 kHz PCM, what the seed's clients speak) and the
telephony media streams `twilio`, `telnyx`, `plivo`, `exotel` (8 kHz mu-law on the wire). The runner
holds no telephony credentials, so it never hangs up through the provider's REST API
(`auto_hang_up=False`): closing the media stream socket ends the call on the provider's side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocketDisconnect, WebSocketState

from aiassistant_contract.errors import MissingKeyError

from .access import Access, Refused
from .sessions import Sessions

if TYPE_CHECKING:
    from fastapi import WebSocket
    from pipecat.observers.base_observer import BaseObserver
    from pipecat.serializers.base_serializer import FrameSerializer

    from .sessions import Session
    from .voice_parts import CallServices

log = logging.getLogger(__name__)

WS_POLICY_VIOLATION = 1008
WS_INTERNAL_ERROR = 1011

# Pipeline audio rate per serializer: protobuf clients send and receive 16 kHz PCM; telephony is
# 8 kHz on the wire, so the pipeline runs at 8 kHz and the serializer resamples nothing.
SAMPLE_RATES: Mapping[str, int] = {
    "protobuf": 16_000,
    "twilio": 8000,
    "telnyx": 8000,
    "plivo": 8000,
    "exotel": 8000,
}

HANDSHAKE_MESSAGES = 5  # messages read while looking for `start`
HANDSHAKE_MESSAGE_BYTES = 65_536  # a `start` message is a few hundred bytes


MAX_DURATION_REASON = "max call duration"
# The reasons Pipecat's ending frames carry (ours and Pipecat's) -> the reason the call log names.
FRAME_REASONS: Mapping[str, str] = {
    "end_call": "end_call tool",  # voice_pipeline.end_call
    MAX_DURATION_REASON: "maxCallSeconds",
    "client disconnected": "client hung up",
    "stop event": "stop event",  # media_streams.STOP_REASON
}


class HandshakeError(ValueError):
    """The telephony stream did not open with a usable `start` message."""


@dataclass
class CallRecord:
    """The ids, start time and end reason of one call, for its two log lines. The first reason
    given wins (a stop event is followed by the socket's close, which is not the reason)."""

    serializer: str
    stream_id: str
    call_id: str | None
    started: float = field(default_factory=time.monotonic)
    reason: str | None = None

    def end(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def end_by_frame(self, frame_reason: Any) -> None:
        text = str(frame_reason) if frame_reason is not None else ""
        if text.startswith("fatal error"):
            self.end("error")
        elif text:
            self.end(FRAME_REASONS.get(text, _printable(text[:80])))

    def ids(self) -> str:
        call = f" call={_printable(self.call_id)}" if self.call_id else ""
        return f"serializer={self.serializer} stream={_printable(self.stream_id)}{call}"


def _printable(value: str) -> str:
    """A client-chosen id as it goes into a log line: no newline or control character."""
    return value if value.isprintable() else repr(value)


async def handle_call(
    websocket: WebSocket,
    serializer: str,
    services: CallServices,
    sessions: Sessions,
    access: Access,
    *,
    observers: Sequence[BaseObserver] = (),
    authenticated: bool = True,
) -> None:
    """Run one call on an accepted socket until it ends. Raises CapacityError when not admitted.

    `authenticated=False`: the upgrade carried no credential, so the telephony `start` message must
    carry the stream token (access.py). `observers` are added to the pipeline's (the voice benchmark
    times VAD stop with one).
    """
    config = services.config
    if not config.voice_ready():  # a pipeline without stt or tts (realtime needs neither)
        await _close(websocket, WS_POLICY_VIOLATION, "voice calls need stt and tts in the assistant spec")
        return
    try:
        frame_serializer = await create_serializer(
            websocket, serializer, config.limits.call_start_seconds, access, authenticated
        )
    except (HandshakeError, Refused) as err:
        log.warning("call refused: %s", err)
        await _close(websocket, WS_POLICY_VIOLATION, str(err)[:120])
        return
    except WebSocketDisconnect:
        return
    async with sessions.open("call") as session:
        record = call_record(serializer, frame_serializer)
        log.info("call started: %s", record.ids())
        try:
            await _run(websocket, frame_serializer, record, services, sessions, observers, session)
        except Exception:
            record.end("error")
            raise
        finally:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the server cancelled the call
                record.end("drain" if sessions.draining else "cancelled")
            _log_end(record, frame_serializer)


def call_record(serializer: str, frame_serializer: FrameSerializer) -> CallRecord:
    """The call's record: the provider's ids from the stream's `start` (a generated id for
    protobuf, which has none)."""
    from .media_streams import MediaStream

    if isinstance(frame_serializer, MediaStream):
        return CallRecord(serializer, frame_serializer.stream_id, frame_serializer.call_id)
    return CallRecord(serializer, f"generated-{uuid.uuid4().hex}", None)


def _log_end(record: CallRecord, frame_serializer: FrameSerializer) -> None:
    from .media_streams import MediaStream

    heard = ""  # protobuf calls have no marks
    if isinstance(frame_serializer, MediaStream):
        heard = " " + " ".join(f"{k}={v}" for k, v in frame_serializer.playback.counts().items())
    log.info(
        "call ended: %s reason=%s duration=%.1fs%s",
        record.ids(),
        record.reason or "ended",
        time.monotonic() - record.started,
        heard,
    )


async def _run(
    websocket: WebSocket,
    frame_serializer: FrameSerializer,
    record: CallRecord,
    services: CallServices,
    sessions: Sessions,
    observers: Sequence[BaseObserver],
    session: Session,
) -> None:
    from pipecat.frames.frames import CancelFrame
    from pipecat.workers.runner import WorkerRunner

    from .media_streams import MediaStream
    from .playground_events import wants_playground_events
    from .voice_pipeline import build_call_pipeline

    try:
        # Building costs ~150 ms of CPU (ONNX models for the VAD, TLS contexts of the HTTP clients,
        # and the first call's imports): off the event loop, so other sessions do not stall.
        call = await asyncio.to_thread(
            build_call_pipeline,
            websocket,
            frame_serializer,
            services,
            sample_rate=SAMPLE_RATES[record.serializer],
            observers=observers,
            events=wants_playground_events(websocket, record.serializer, services.config),
        )
    except MissingKeyError as err:
        log.error("call refused: %s", err)  # names the env var, never a value
        record.end("error")
        session.fail()
        await _close(websocket, WS_INTERNAL_ERROR, "the runner is missing an API key")
        return
    except ValueError as err:  # e.g. an Origin not in PIPECAT_ALLOWED_ORIGINS
        log.warning("call refused: %s", err)
        record.end("error")
        session.fail()
        await _close(websocket, WS_POLICY_VIOLATION, str(err)[:120])  # a close reason is <= 123 bytes
        return
    worker = call.worker
    stream = frame_serializer if isinstance(frame_serializer, MediaStream) else None

    @call.transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        # After a stop event the provider closes the socket: the stop is the reason.
        if stream is not None and stream.stopped:
            record.end("stop event")
        # At the end of the drain grace the server's shutdown closes the sockets still open.
        record.end("drain" if sessions.grace_over else "client hung up")
        await worker.cancel(reason="client disconnected")

    # The reason the pipeline ended, from the frame that ended it (end_call, maxCallSeconds, the
    # stop event, a fatal error).
    @worker.event_handler("on_pipeline_finished")
    async def on_finished(worker: Any, frame: Any) -> None:
        record.end_by_frame(getattr(frame, "reason", None))

    worker.add_reached_downstream_filter((CancelFrame,))

    @worker.event_handler("on_frame_reached_downstream")
    async def on_cancelled(worker: Any, frame: Any) -> None:
        if isinstance(frame, CancelFrame):
            record.end_by_frame(frame.reason)

    async def max_duration() -> None:
        await asyncio.sleep(services.config.max_call_seconds)
        log.info("call reached maxCallSeconds (%ss); ending it", services.config.max_call_seconds)
        record.end("maxCallSeconds")  # the runner ends the worker with its own reason
        await worker.end(reason=MAX_DURATION_REASON)

    # The server's uvicorn owns the signals; SIGTERM drains through the session admission instead.
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    timer = asyncio.create_task(max_duration())
    try:
        await runner.run()
    finally:
        timer.cancel()
    await _close(websocket, 1000, "call ended")


async def create_serializer(
    websocket: WebSocket,
    name: str,
    start_seconds: float = 5.0,
    access: Access | None = None,
    authenticated: bool = True,
) -> FrameSerializer:
    """The Pipecat serializer for `name`; telephony ones read the stream's `start` message first
    (within `start_seconds`) and, if not `authenticated` at the upgrade, check its stream token."""
    if name == "protobuf":
        from pipecat.serializers.protobuf import ProtobufFrameSerializer

        return ProtobufFrameSerializer()
    start = await read_start_message(websocket, start_seconds)
    if not authenticated and access is not None:
        access.check_stream_token(websocket.scope, name, start)
    from .media_streams import DIALECTS, MediaStream

    inner = telephony_serializer(name, start)  # validates the ids stream_ids reads
    stream_id, call_id = stream_ids(name, start)
    return MediaStream(inner, DIALECTS[name], stream_id, call_id)


def stream_ids(name: str, message: Mapping[str, Any]) -> tuple[str, str | None]:
    """The provider's (stream id, call id) in a `start` message telephony_serializer accepted."""
    start = message.get("start") or {}
    if name == "twilio":
        return start["streamSid"], start.get("callSid")
    if name == "telnyx":
        return message["stream_id"], start.get("call_control_id")
    if name == "plivo":
        return start["streamId"], start.get("callId")
    return start["stream_sid"], start.get("call_sid")  # exotel


async def read_start_message(websocket: WebSocket, seconds: float = 5.0) -> dict[str, Any]:
    """The first `{"event": "start", ...}` JSON message (providers may send `connected` before it)."""

    async def read() -> dict[str, Any]:
        for _ in range(HANDSHAKE_MESSAGES):
            text = await websocket.receive_text()
            if len(text) > HANDSHAKE_MESSAGE_BYTES:
                raise HandshakeError(f"handshake message over {HANDSHAKE_MESSAGE_BYTES} bytes")
            try:
                message = json.loads(text)
            except (ValueError, RecursionError):
                continue
            if isinstance(message, dict) and message.get("event") == "start":
                return message
        raise HandshakeError(f"no 'start' event in the first {HANDSHAKE_MESSAGES} messages")

    try:
        return await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        raise HandshakeError(f"no 'start' event within {seconds:g}s") from None
    except KeyError:  # a binary frame where text was expected
        raise HandshakeError("expected the provider's JSON 'start' message, got binary data") from None


def telephony_serializer(name: str, message: Mapping[str, Any]) -> FrameSerializer:
    """The serializer of a telephony media stream, from its `start` message; HandshakeError (close
    1008 with its message) for any message that is not the provider's shape."""
    start = message.get("start") or {}
    if not isinstance(start, Mapping):
        raise HandshakeError(f"{name} 'start' message: start must be an object")

    def need(value: Any, field: str) -> str:
        if not value or not isinstance(value, str) or len(value) > 256:
            raise HandshakeError(f"{name} 'start' message lacks {field} (a string)")
        return value

    def optional(value: Any, field: str) -> str | None:
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise HandshakeError(f"{name} 'start' message: {field} must be a string")
        return value

    if name == "twilio":
        from pipecat.serializers.twilio import TwilioFrameSerializer

        return TwilioFrameSerializer(
            stream_sid=need(start.get("streamSid"), "start.streamSid"),
            call_sid=optional(start.get("callSid"), "start.callSid"),
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if name == "telnyx":
        from pipecat.serializers.telnyx import TelnyxFrameSerializer

        media_format = start.get("media_format") or {}
        if not isinstance(media_format, Mapping):
            raise HandshakeError("telnyx 'start' message: start.media_format must be an object")
        encoding = optional(media_format.get("encoding"), "start.media_format.encoding") or "PCMU"
        if encoding not in ("PCMU", "PCMA"):
            raise HandshakeError(f"telnyx 'start' message: encoding {encoding[:20]!r} is not PCMU or PCMA")
        return TelnyxFrameSerializer(
            stream_id=need(message.get("stream_id"), "stream_id"),
            outbound_encoding=encoding,
            inbound_encoding="PCMU",
            call_control_id=optional(start.get("call_control_id"), "start.call_control_id"),
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if name == "plivo":
        from pipecat.serializers.plivo import PlivoFrameSerializer

        return PlivoFrameSerializer(
            stream_id=need(start.get("streamId"), "start.streamId"),
            call_id=optional(start.get("callId"), "start.callId"),
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    if name == "exotel":
        from pipecat.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(
            stream_sid=need(start.get("stream_sid"), "start.stream_sid"),
            call_sid=optional(start.get("call_sid"), "start.call_sid"),
        )
    raise HandshakeError(f"unknown serializer {name!r}")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        try:
            await websocket.close(code, reason)
        except (RuntimeError, WebSocketDisconnect):  # the close raced the client's own
            pass
