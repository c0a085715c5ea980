"""What the playground page shows of a call besides its audio: a Pipecat observer that sends the
call's transcript and turn events to the client as transport messages.

Only calls that ask for it get it (the playground opens `/v1/calls/protobuf?events=playground`, and
only on a runner with `playground: true`): other protobuf clients keep receiving audio and
interruptions only. The protobuf serializer wraps each message as a `MessageFrame` whose `data` is
the JSON below, one of:

    {"type": "user-transcript", "text": "..."}   the STT's final transcript of the caller
    {"type": "user-stopped-speaking"}            the caller's turn ended (the latency clock starts)
    {"type": "bot-text", "text": "..."}          text the bot speaks, as the TTS speaks it
    {"type": "bot-started-speaking"} / {"type": "bot-stopped-speaking"}

Why not RTVI (Pipecat's client protocol): its processor also takes client requests (send-text,
send-file, function-call results) that a playground does not need and that would widen what a
caller can do to a call; this observer only sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    TTSTextFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

if TYPE_CHECKING:
    from fastapi import WebSocket
    from pipecat.pipeline.worker import PipelineWorker

    from aiassistant_contract.runner_config import RunnerConfig

EVENTS_QUERY = "playground"  # ?events=playground on the call socket
MAX_TEXT = 2000  # characters of one transcript message


def wants_playground_events(websocket: WebSocket, serializer: str, config: RunnerConfig) -> bool:
    """A playground call (`?events=playground` on a runner serving the playground) also gets the
    events; every other call only audio and interruptions."""
    return (
        config.playground
        and serializer == "protobuf"
        and websocket.query_params.get("events") == EVENTS_QUERY
    )


def event_of(frame: Frame) -> dict[str, Any] | None:
    """The message the page gets for `frame`, or None."""
    if isinstance(frame, TranscriptionFrame):
        return {"type": "user-transcript", "text": frame.text[:MAX_TEXT]}
    if isinstance(frame, TTSTextFrame):
        return {"type": "bot-text", "text": frame.text[:MAX_TEXT]}
    if isinstance(frame, UserStoppedSpeakingFrame):
        return {"type": "user-stopped-speaking"}
    if isinstance(frame, BotStartedSpeakingFrame):
        return {"type": "bot-started-speaking"}
    if isinstance(frame, BotStoppedSpeakingFrame):
        return {"type": "bot-stopped-speaking"}
    return None


class PlaygroundEvents(BaseObserver):
    """Queue one transport message per event frame (its first downstream push) on `worker`.

    Set `worker` before the worker runs (the observer is passed to the worker's constructor)."""

    def __init__(self) -> None:
        super().__init__()
        self.worker: PipelineWorker | None = None

    async def on_push_frame(self, data: FramePushed) -> None:
        # A frame is pushed again by every processor that passes it on, and the speaking frames
        # are broadcast both ways: the first downstream push is the one to report. A transcript
        # goes one way only: downstream from an STT, upstream (to the user aggregator) from a
        # speech-to-speech service.
        if not data.first_push or self.worker is None:
            return
        if data.direction != FrameDirection.DOWNSTREAM and not isinstance(data.frame, TranscriptionFrame):
            return
        event = event_of(data.frame)
        if event is not None:
            await self.worker.queue_frame(OutputTransportMessageUrgentFrame(message=event))
