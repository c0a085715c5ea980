"""Voice calls: `WS /v1/calls/{serializer}` — one Pipecat pipeline per accepted socket.

server.py accepts the socket and checks the serializer is enabled; `handle_call` admits the session,
reads the telephony provider's `start` message where there is one (it carries the stream id the
serializer must echo), builds the pipeline (pipelines.py) and runs it until the call ends:
  - the client closes the socket (the pipeline is cancelled, the session ends cleanly),
  - the model calls the built-in `end_call` tool (after its goodbye is spoken),
  - `maxCallSeconds` passes (the pipeline ends gracefully),
  - the pod's drain grace runs out (the server cancels the task).

Serializers: `protobuf` (Pipecat's own frames, 16 kHz PCM, what the seed's clients speak) and the
telephony media streams `twilio`, `telnyx`, `plivo`, `exotel` (8 kHz mu-law on the wire). The runner
holds no telephony credentials, so it never hangs up through the provider's REST API
(`auto_hang_up=False`): closing the media stream socket ends the call on the provider's side.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocketDisconnect, WebSocketState

from aiassistant_contract.errors import MissingKeyError

if TYPE_CHECKING:
    from fastapi import WebSocket
    from pipecat.observers.base_observer import BaseObserver
    from pipecat.serializers.base_serializer import FrameSerializer

    from .sessions import Session
    from .state import RunnerState

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

HANDSHAKE_SECONDS = 10.0  # a telephony stream sends `connected`/`start` right away
HANDSHAKE_MESSAGES = 5  # messages read while looking for `start`


class HandshakeError(ValueError):
    """The telephony stream did not open with a usable `start` message."""


async def handle_call(
    websocket: WebSocket,
    serializer: str,
    state: RunnerState,
    *,
    observers: Sequence[BaseObserver] = (),
) -> None:
    """Run one call on an accepted socket until it ends. Raises CapacityError when not admitted.

    `observers` are added to the pipeline's (the voice benchmark times VAD stop with one).
    """
    config = state.config
    if not config.voice_ready():  # a pipeline without stt or tts (realtime needs neither)
        await _close(websocket, WS_POLICY_VIOLATION, "voice calls need stt and tts in the assistant spec")
        return
    async with state.sessions.open("call") as session:
        try:
            frame_serializer = await create_serializer(websocket, serializer)
        except HandshakeError as err:
            log.warning("call refused: %s", err)
            session.fail()
            await _close(websocket, WS_POLICY_VIOLATION, str(err))
            return
        except WebSocketDisconnect:
            return
        await _run(websocket, frame_serializer, serializer, state, observers, session)


async def _run(
    websocket: WebSocket,
    frame_serializer: FrameSerializer,
    serializer: str,
    state: RunnerState,
    observers: Sequence[BaseObserver],
    session: Session,
) -> None:
    from pipecat.workers.runner import WorkerRunner

    from .pipelines import build_call_pipeline
    from .playground_events import wants_playground_events

    try:
        # Building costs ~150 ms of CPU (ONNX models for the VAD, TLS contexts of the HTTP clients,
        # and the first call's imports): off the event loop, so other sessions do not stall.
        call = await asyncio.to_thread(
            build_call_pipeline,
            websocket,
            frame_serializer,
            state,
            sample_rate=SAMPLE_RATES[serializer],
            observers=observers,
            events=wants_playground_events(websocket, serializer, state),
        )
    except MissingKeyError as err:
        log.error("call refused: %s", err)  # names the env var, never a value
        session.fail()
        await _close(websocket, WS_INTERNAL_ERROR, "the runner is missing an API key")
        return
    except ValueError as err:  # e.g. an Origin not in PIPECAT_ALLOWED_ORIGINS
        log.warning("call refused: %s", err)
        session.fail()
        await _close(websocket, WS_POLICY_VIOLATION, str(err)[:120])  # a close reason is <= 123 bytes
        return
    worker = call.worker

    @call.transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await worker.cancel(reason="client disconnected")

    async def max_duration() -> None:
        await asyncio.sleep(state.config.max_call_seconds)
        log.info("call reached maxCallSeconds (%ss); ending it", state.config.max_call_seconds)
        await worker.end(reason="max call duration")

    # The server's uvicorn owns the signals; SIGTERM drains through the session admission instead.
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    timer = asyncio.create_task(max_duration())
    try:
        await runner.run()
    finally:
        timer.cancel()
    await _close(websocket, 1000, "call ended")


async def create_serializer(websocket: WebSocket, name: str) -> FrameSerializer:
    """The Pipecat serializer for `name`; telephony ones read the stream's `start` message first."""
    if name == "protobuf":
        from pipecat.serializers.protobuf import ProtobufFrameSerializer

        return ProtobufFrameSerializer()
    start = await read_start_message(websocket)
    return telephony_serializer(name, start)


async def read_start_message(websocket: WebSocket) -> dict[str, Any]:
    """The first `{"event": "start", ...}` JSON message (providers may send `connected` before it)."""

    async def read() -> dict[str, Any]:
        for _ in range(HANDSHAKE_MESSAGES):
            text = await websocket.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("event") == "start":
                return message
        raise HandshakeError(f"no 'start' event in the first {HANDSHAKE_MESSAGES} messages")

    try:
        return await asyncio.wait_for(read(), HANDSHAKE_SECONDS)
    except TimeoutError:
        raise HandshakeError(f"no 'start' event within {HANDSHAKE_SECONDS:g}s") from None
    except KeyError:  # a binary frame where text was expected
        raise HandshakeError("expected the provider's JSON 'start' message, got binary data") from None


def telephony_serializer(name: str, message: Mapping[str, Any]) -> FrameSerializer:
    """The serializer of a telephony media stream, from its `start` message."""
    start = message.get("start") or {}

    def need(value: Any, field: str) -> str:
        if not value or not isinstance(value, str):
            raise HandshakeError(f"{name} 'start' message lacks {field}")
        return value

    if name == "twilio":
        from pipecat.serializers.twilio import TwilioFrameSerializer

        return TwilioFrameSerializer(
            stream_sid=need(start.get("streamSid"), "start.streamSid"),
            call_sid=start.get("callSid"),
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
    if name == "telnyx":
        from pipecat.serializers.telnyx import TelnyxFrameSerializer

        return TelnyxFrameSerializer(
            stream_id=need(message.get("stream_id"), "stream_id"),
            outbound_encoding=(start.get("media_format") or {}).get("encoding") or "PCMU",
            inbound_encoding="PCMU",
            call_control_id=start.get("call_control_id"),
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if name == "plivo":
        from pipecat.serializers.plivo import PlivoFrameSerializer

        return PlivoFrameSerializer(
            stream_id=need(start.get("streamId"), "start.streamId"),
            call_id=start.get("callId"),
            params=PlivoFrameSerializer.InputParams(auto_hang_up=False),
        )
    if name == "exotel":
        from pipecat.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(
            stream_sid=need(start.get("stream_sid"), "start.stream_sid"), call_sid=start.get("call_sid")
        )
    raise HandshakeError(f"unknown serializer {name!r}")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        try:
            await websocket.close(code, reason)
        except (RuntimeError, WebSocketDisconnect):  # the close raced the client's own
            pass
