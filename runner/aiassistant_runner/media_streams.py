"""Telephony media-stream manners the Pipecat serializers leave out: the provider's `stop`, and
playback marks (what the caller actually heard).

Pipecat 1.14's telephony serializers turn `media` and `dtmf` into frames and an InterruptionFrame
into the provider's `clear`; every other message (`stop`, the mark echoes) is dropped, and they
never send a mark. `MediaStream` wraps one of them (its public `setup`/`serialize`/`deserialize`):

  - the provider's stop event ends the call at once: deserialize returns a CancelWorkerFrame (the
    worker cancels the pipeline, the transport closes the socket) and, from then on, serialize
    sends nothing more;
  - `UtteranceMarks`, a processor just before the transport's output, asks for a mark after each
    bot utterance (a TTS context: its TTSStoppedFrame) and after each of its pieces (TTSTextFrame:
    a sentence, or a word for a TTS with word timestamps); the transport sends them in order with
    the audio; the provider echoes each once the audio before it has played, and `Playback`
    counts the utterance (or piece) as heard. An interruption (the caller speaks; Pipecat sends
    `clear`) cuts the utterances not yet confirmed: Twilio and Telnyx echo the marks a `clear`
    drops too (Plivo drops its checkpoints), so an echo that arrives after the interruption does
    not count. What was heard of the cut answer goes to interruptions.py, which cuts the model's
    context back to it. (A piece's mark can precede the last ~0.16 s of its audio, which Pipecat's
    output sends only with the next audio or at the utterance's end.)

Provider         stop event    mark sent                         echo
twilio           stop          mark {streamSid, mark.name}       mark (mark.name)
telnyx           stop          mark {mark.name}                  mark (mark.name)
plivo            (none: Plivo  checkpoint {streamId, name}       playedStream (name)
                 closes)
exotel           stop          mark {stream_sid, mark.name}      mark (mark.name)
protobuf         (none)        (none)                            (none)

(Twilio: twilio.com/docs/voice/media-streams/websocket-messages; Telnyx: developers.telnyx.com
api-reference/websockets/stream-call-media-over-websocket; Plivo: plivo.com/docs/voice/xml/
the-stream-element/checkpoint-event; Exotel: developer.exotel.com/docs/agentstream/websocket-protocol.)

A client that never echoes marks loses nothing: its utterances end as "unconfirmed", not "cut"
(`cut` is only counted once the stream has echoed at least one mark, or for an utterance the
interruption stopped before its mark was sent).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import (
    CancelWorkerFrame,
    Frame,
    InterruptionFrame,
    OutputTransportMessageFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

STOP_REASON = "stop event"


@dataclass(frozen=True)
class Dialect:
    """What one provider's media stream says for stop and marks."""

    stop_event: str | None  # the provider's "the stream is over" event, if it has one
    mark: Callable[[str, str], dict[str, Any]] | None  # (stream id, name) -> the message to send
    echo_event: str | None  # the event the provider sends back when the audio before a mark played
    echo_name: Callable[[Mapping[str, Any]], Any]  # the mark's name in an echo

    @property
    def has_marks(self) -> bool:
        return self.mark is not None


def _nested_name(message: Mapping[str, Any]) -> Any:
    mark = message.get("mark")
    return mark.get("name") if isinstance(mark, Mapping) else None


DIALECTS: Mapping[str, Dialect] = {
    "twilio": Dialect(
        "stop",
        lambda sid, name: {"event": "mark", "streamSid": sid, "mark": {"name": name}},
        "mark",
        _nested_name,
    ),
    # Telnyx: Pipecat's serializer addresses media and `clear` without the stream id; marks alike.
    "telnyx": Dialect(
        "stop", lambda sid, name: {"event": "mark", "mark": {"name": name}}, "mark", _nested_name
    ),
    "plivo": Dialect(
        None,
        lambda sid, name: {"event": "checkpoint", "streamId": sid, "name": name},
        "playedStream",
        lambda message: message.get("name"),
    ),
    "exotel": Dialect(
        "stop",
        lambda sid, name: {"event": "mark", "stream_sid": sid, "mark": {"name": name}},
        "mark",
        _nested_name,
    ),
}


@dataclass
class Piece:
    """One piece of an utterance as the TTS spoke it: a sentence, or a word for a TTS with word
    timestamps (a TTSTextFrame's text)."""

    text: str
    heard: bool = False


class Playback:
    """What the caller heard of the bot's utterances, from the provider's mark echoes. One per
    call; written by the call's pipeline (UtteranceMarks, MediaStream) only. Each utterance (by
    its mark name) goes speaking -> sent -> heard | cut | unconfirmed; each of its pieces has a
    mark of its own (`utterance-N.k`), heard once echoed. Only the latest utterance's pieces are
    kept: it is the answer an interruption can cut (an earlier one is already in the context)."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._latest = ""  # the latest utterance's mark name
        self._pieces: list[Piece] = []  # its pieces, in spoken order
        self._piece_marks: dict[str, Piece] = {}  # a piece's mark name -> the piece (until echoed)
        self.echoes = 0  # marks the provider echoed (0: it may not echo at all)
        self._cut: list[Piece] = []  # the pieces of what the last interruption cut

    def begin(self) -> str:
        """A new utterance; returns its mark name."""
        name = self._latest = f"utterance-{len(self._states) + 1}"
        self._states[name] = "speaking"
        self._pieces, self._piece_marks = [], {}
        return name

    def piece(self, text: str) -> str:
        """A piece of the latest utterance went to the transport, after its audio; returns its mark
        name."""
        self._pieces.append(Piece(text))
        name = f"{self._latest}.{len(self._pieces)}"
        self._piece_marks[name] = self._pieces[-1]
        return name

    def sent(self, name: str) -> None:
        """The mark after the utterance's last audio went out."""
        if self._states.get(name) == "speaking":
            self._states[name] = "sent"

    def echoed(self, name: Any) -> None:
        """The provider says the audio before mark `name` has played."""
        self.echoes += 1
        if not isinstance(name, str):
            return
        piece = self._piece_marks.pop(name, None)
        if piece is not None:
            piece.heard = True
        elif self._states.get(name) == "sent":
            self._states[name] = "heard"

    def interrupted(self) -> None:
        """The bot was interrupted (Pipecat sends the provider's `clear`): what was still being
        spoken is cut; what was sent but not confirmed is cut if the provider echoes marks. An
        echo that arrives from now on (a `clear` returns the marks it dropped) is not heard."""
        for name, state in self._states.items():
            if state == "speaking" or (state == "sent" and self.echoes):
                self._states[name] = "cut"
            elif state == "sent":
                self._states[name] = "unconfirmed"
        self._cut = self._pieces if self._states.get(self._latest) == "cut" else []
        self._pieces, self._piece_marks = [], {}

    def take_cut(self) -> list[Piece]:
        """The pieces of the latest utterance if the last interruption cut it, each saying whether
        it was heard; empty when nothing was cut or the provider has echoed no mark (nothing is
        known). Returned once."""
        cut, self._cut = self._cut, []
        return cut if self.echoes else []

    def counts(self) -> dict[str, int]:
        """utterances, heard, cut, unconfirmed (sent, or still speaking at the end, never confirmed)."""
        states = list(self._states.values())
        return {
            "utterances": len(states),
            "heard": states.count("heard"),
            "cut": states.count("cut"),
            "unconfirmed": len(states) - states.count("heard") - states.count("cut"),
        }


@dataclass
class MarkFrame(OutputTransportMessageFrame):
    """The provider's mark message for utterance `mark_name` (in order with the audio, so it is
    sent after the utterance's last chunk)."""

    mark_name: str = ""


class MediaStream(FrameSerializer):
    """A telephony serializer plus the provider's stop event and marks (see the module doc).

    When the provider's stop event arrives, `stopped` is set, deserialize returns a
    CancelWorkerFrame, and serialize returns None for every frame after it: nothing more is sent
    on a stopped stream. `stream_id`/`call_id` are the provider's ids (for the call's log lines).
    """

    def __init__(
        self, inner: FrameSerializer, dialect: Dialect, stream_id: str, call_id: str | None = None
    ) -> None:
        super().__init__()
        self.inner = inner
        self.dialect = dialect
        self.stream_id = stream_id
        self.call_id = call_id
        self.playback = Playback()
        self.stopped = False
        # A quoted word that only a control message has (a base64 payload holds no quote), so
        # the 50 media messages a second skip the extra parse.
        self._control_words = tuple(
            f'"{event}"' for event in (dialect.stop_event, dialect.echo_event) if event is not None
        )

    # Pipecat's FrameSerializer.setup itself narrows BaseObject.setup's argument; same signature.
    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        await self.inner.setup(setup)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if self.stopped:
            return None
        if isinstance(frame, MarkFrame):
            self.playback.sent(frame.mark_name)
            return json.dumps(frame.message)
        return await self.inner.serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if self.stopped:
            return None
        if isinstance(data, str) and any(word in data for word in self._control_words):
            try:
                message = json.loads(data)
            except (ValueError, RecursionError):
                message = None
            if isinstance(message, dict):
                event = message.get("event")
                if event is not None and event == self.dialect.stop_event:
                    self.stopped = True
                    return CancelWorkerFrame(reason=STOP_REASON)
                if event is not None and event == self.dialect.echo_event:
                    self.playback.echoed(self.dialect.echo_name(message))
                    return None
        return await self.inner.deserialize(data)

    def marks(self, pieces: bool) -> list[FrameProcessor]:
        """The processors to put just before the transport's output (none if the provider has no
        marks); `pieces`: a mark after each piece of an utterance too."""
        return [UtteranceMarks(self, pieces)] if self.dialect.has_marks else []


class UtteranceMarks(FrameProcessor):
    """Asks for a mark after each piece of a bot utterance (its TTSTextFrames, which the TTS puts
    after their audio; only if `pieces`) and after the utterance (its TTSStoppedFrame), and tells
    `Playback` when each one began and when the bot was interrupted. Passes every frame on
    unchanged."""

    def __init__(self, stream: MediaStream, pieces: bool) -> None:
        super().__init__()
        self._mark_pieces = pieces
        self._stream = stream
        self._current: str | None = None  # the mark name of the utterance being spoken
        self._context: str | None = None  # its TTS context (a late frame of a cut one is ignored)

    def _ours(self, frame: TTSStoppedFrame | TTSTextFrame) -> bool:
        return self._current is not None and (frame.context_id is None or frame.context_id == self._context)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if direction != FrameDirection.DOWNSTREAM:
            return
        playback = self._stream.playback
        if isinstance(frame, TTSStartedFrame):
            self._current, self._context = playback.begin(), frame.context_id
        elif isinstance(frame, InterruptionFrame):
            playback.interrupted()
            self._current = self._context = None
        elif (
            self._mark_pieces and isinstance(frame, TTSTextFrame) and frame.text.strip() and self._ours(frame)
        ):
            await self._mark(playback.piece(frame.text))
        elif isinstance(frame, TTSStoppedFrame) and self._ours(frame):
            assert self._current is not None
            name, self._current, self._context = self._current, None, None
            await self._mark(name)

    async def _mark(self, name: str) -> None:
        mark = self._stream.dialect.mark
        assert mark is not None  # marks() adds this processor only to streams with marks
        await self.push_frame(MarkFrame(message=mark(self._stream.stream_id, name), mark_name=name))


def playback_marks(serializer: FrameSerializer, *, pieces: bool) -> list[FrameProcessor]:
    """What a call's pipeline puts just before the transport's output for `serializer`: the
    utterance marks of a telephony stream whose provider has them, else nothing. `pieces`: marks
    after each sentence (or word) too, for a pipeline that cuts an interrupted answer to what was
    heard (interruptions.py); a realtime call's provider keeps its own conversation, so it has
    only utterance marks."""
    return serializer.marks(pieces) if isinstance(serializer, MediaStream) else []
