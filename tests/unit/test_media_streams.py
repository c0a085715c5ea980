"""media_streams.py on its own, with Pipecat's real Twilio and Plivo serializers inside: which
provider messages end the call or count as an echo, and what Playback makes of echoes and
interruptions. (The served runner with real clients: tests/voice/test_telephony.py.)"""

from __future__ import annotations

import json

from pipecat.frames.frames import (
    CancelWorkerFrame,
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.tests.utils import run_test

from aiassistant_runner.media_streams import DIALECTS, MarkFrame, MediaStream, Playback, UtteranceMarks

SID = "MZ00000000000000000000000000000001"


def twilio() -> MediaStream:
    inner = TwilioFrameSerializer(SID, params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    return MediaStream(inner, DIALECTS["twilio"], SID, "CA1")


async def test_stop_cancels_the_worker_and_nothing_is_sent_after_it() -> None:
    stream = twilio()
    assert json.loads(await stream.serialize(InterruptionFrame()) or "") == {
        "event": "clear",
        "streamSid": SID,
    }
    stop = {"event": "stop", "sequenceNumber": "9", "streamSid": SID, "stop": {"callSid": "CA1"}}
    frame = await stream.deserialize(json.dumps(stop))
    assert isinstance(frame, CancelWorkerFrame) and frame.reason == "stop event"
    assert stream.stopped
    assert await stream.serialize(InterruptionFrame()) is None
    assert await stream.deserialize(json.dumps({"event": "dtmf", "dtmf": {"digit": "1"}})) is None


async def test_other_messages_go_to_pipecats_serializer() -> None:
    stream = twilio()
    dtmf = await stream.deserialize(json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "5"}}))
    assert isinstance(dtmf, InputDTMFFrame)
    # Not JSON, or a stop word only inside a value: not a stop.
    assert await stream.deserialize('{"event": "stop"') is None
    assert await stream.deserialize(json.dumps({"event": "dtmf", "note": "stop"})) is None
    assert not stream.stopped


async def test_echoes_of_any_shape_are_counted_and_never_raise() -> None:
    stream = twilio()
    name = stream.playback.begin()
    stream.playback.sent(name)
    for odd in ({"event": "mark"}, {"event": "mark", "mark": "x"}, {"event": "mark", "mark": {"name": 7}}):
        assert await stream.deserialize(json.dumps(odd)) is None
    assert stream.playback.counts()["heard"] == 0
    await stream.deserialize(json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": name}}))
    assert stream.playback.counts() == {"utterances": 1, "heard": 1, "cut": 0, "unconfirmed": 0}


async def test_plivo_has_no_stop_event_and_echoes_checkpoints_as_played_stream() -> None:
    inner = PlivoFrameSerializer("s-1", params=PlivoFrameSerializer.InputParams(auto_hang_up=False))
    stream = MediaStream(inner, DIALECTS["plivo"], "s-1")
    assert await stream.deserialize(json.dumps({"event": "stop"})) is None
    assert not stream.stopped
    name = stream.playback.begin()
    stream.playback.sent(name)
    await stream.deserialize(json.dumps({"event": "playedStream", "streamId": "s-1", "name": name}))
    assert stream.playback.counts()["heard"] == 1


def test_playback_states() -> None:
    playback = Playback()
    playback.begin()  # still speaking when interrupted
    sent = playback.begin()
    playback.sent(sent)
    playback.interrupted()  # no echo yet: what was sent may have been heard
    assert playback.counts() == {"utterances": 2, "heard": 0, "cut": 1, "unconfirmed": 1}
    heard, lost = playback.begin(), playback.begin()
    playback.sent(heard)
    playback.echoed(heard)
    playback.sent(lost)
    playback.interrupted()  # the provider echoes marks: an unconfirmed one was cut
    playback.echoed(lost)  # ... and the echo the clear returns does not make it heard
    assert playback.counts() == {"utterances": 4, "heard": 1, "cut": 2, "unconfirmed": 1}


def test_pieces_are_heard_by_their_own_marks_and_an_interruption_hands_over_the_cut_once() -> None:
    playback = Playback()
    greeting = playback.begin()
    playback.echoed(playback.piece("Hello."))
    playback.sent(greeting)
    playback.echoed(greeting)
    answer = playback.begin()
    first, second = playback.piece("Nine. "), playback.piece("Five.")
    assert (first, second) == (f"{answer}.1", f"{answer}.2")
    playback.echoed(first)
    playback.interrupted()
    playback.echoed(second)  # returned by the clear: not heard
    assert [(p.text, p.heard) for p in playback.take_cut()] == [("Nine. ", True), ("Five.", False)]
    assert playback.take_cut() == []  # once
    assert playback.counts() == {"utterances": 2, "heard": 1, "cut": 1, "unconfirmed": 0}


def test_nothing_is_handed_over_when_the_provider_never_echoed() -> None:
    playback = Playback()
    playback.begin()
    playback.piece("Nine.")
    playback.interrupted()
    assert playback.take_cut() == []
    assert playback.counts()["cut"] == 1  # still cut: it was being spoken


async def utterance_frames(pieces: bool) -> list[Frame]:
    """What UtteranceMarks passes on for one spoken utterance of two sentences (Pipecat's own
    test pipeline)."""
    stream = twilio()
    sentences = [TTSTextFrame(text, text_type="sentence") for text in ("Nine.", " Then five.")]
    for sentence in sentences:
        sentence.context_id = "c1"
    down, _ = await run_test(
        UtteranceMarks(stream, pieces),
        frames_to_send=[TTSStartedFrame(context_id="c1"), *sentences, TTSStoppedFrame(context_id="c1")],
    )
    return list(down)


async def test_a_mark_follows_each_sentence_and_the_utterance() -> None:
    down = await utterance_frames(pieces=True)
    names = [(type(f).__name__, getattr(f, "mark_name", None)) for f in down]
    assert names == [
        ("TTSStartedFrame", None),
        ("TTSTextFrame", None),
        ("MarkFrame", "utterance-1.1"),
        ("TTSTextFrame", None),
        ("MarkFrame", "utterance-1.2"),
        ("TTSStoppedFrame", None),
        ("MarkFrame", "utterance-1"),
    ]
    assert isinstance(down[2], MarkFrame)
    assert down[2].message == {"event": "mark", "streamSid": SID, "mark": {"name": "utterance-1.1"}}


async def test_without_pieces_only_the_utterance_has_a_mark() -> None:
    down = await utterance_frames(pieces=False)
    assert [f.mark_name for f in down if isinstance(f, MarkFrame)] == ["utterance-1"]
