"""Telephony manners over the real WebSocket: the provider's `stop` ends the call at once, a mark
follows each bot utterance and its echo says the caller heard it, an interruption sends `clear` and
cuts what was not heard, and one log line at the start and one at the end of each call name it.

The clients (tests/voice/clients.py) play what they receive at real time and echo marks when the
audio before them has played, as the providers' players do.
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from aiassistant_runner.app import create_app
from aiassistant_runner.wiring import build_runner
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.serving import serve
from tests.voice.clients import (
    ExotelCall,
    MediaStreamCall,
    PlivoCall,
    ProtobufCall,
    TelnyxCall,
    TwilioCall,
    speech_pcm,
)
from tests.voice.conftest import ENVIRON, StartRunner, VoiceRunner, voice_config, wait_until

pytestmark = pytest.mark.timeout(60)

CALLS: dict[str, type[MediaStreamCall]] = {
    "twilio": TwilioCall,
    "telnyx": TelnyxCall,
    "plivo": PlivoCall,
    "exotel": ExotelCall,
}
GREETING = "Hello, ACME here."


def call(kind: str, runner: VoiceRunner, **fields: object) -> MediaStreamCall:
    return CALLS[kind](f"{runner.ws_url}/v1/calls/{kind}", 8000, **fields)  # type: ignore[arg-type]


@pytest.fixture
def call_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="aiassistant_runner.voice_calls")
    return caplog


def logged(caplog: pytest.LogCaptureFixture, prefix: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]


async def ended(caplog: pytest.LogCaptureFixture) -> str:
    await wait_until(lambda: logged(caplog, "call ended:"), timeout=5)
    (line,) = logged(caplog, "call ended:")
    return line


@pytest.mark.parametrize("kind", ["twilio", "telnyx", "exotel"])
async def test_stop_event_ends_the_call_at_once(
    kind: str, fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    runner = await start_runner(greeting=GREETING)
    fake.speech_ms = 6000  # the greeting would play for 6 s
    async with call(kind, runner) as stream:
        await stream.wait_for(lambda c: c.audio_seconds() >= 0.3)
        stopped = await stream.stop()
        # The runner closes the socket promptly, and sends nothing after it read the stop (bar
        # the chunk already on the wire).
        await stream.wait_for(lambda c: c.closed_at is not None, timeout=2)
        assert stream.closed_at is not None and stream.closed_at - stopped < 0.5
        assert stream.close_code == 1000
        assert stream.audio_seconds(since=stopped + 0.05) == 0
        assert not [r for r in stream.received if r.at > stopped + 0.05]
        assert stream.audio_seconds() < 2.0  # the greeting did not play on
    await wait_until(lambda: runner.state.sessions.active == 0, timeout=1)  # the slot is free
    line = await ended(call_log)
    assert f"serializer={kind} stream={stream.stream_id} call={stream.call_id} reason=stop event" in line
    assert "utterances=1 heard=0 cut=0 unconfirmed=1" in line  # the greeting never finished


@pytest.mark.parametrize("kind", ["twilio", "telnyx", "plivo", "exotel"])
async def test_a_mark_follows_each_utterance_and_its_echo_means_heard(
    kind: str, fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    runner = await start_runner(greeting=GREETING)
    async with call(kind, runner) as stream:
        await stream.wait_for(lambda c: len(c.marks()) == 1)
        await stream.speak(speech_pcm(8000), silence=0.4)
        await stream.wait_for(lambda c: len(c.marks()) == 2)
        await stream.wait_for(lambda c: len(c.echoed_utterances()) == 2, timeout=5)

        first, second = stream.marks()
        if kind == "plivo":
            assert first.raw == {"event": "checkpoint", "streamId": stream.stream_id, "name": "utterance-1"}
        else:
            assert first.raw["mark"] == {"name": "utterance-1"}
            assert second.raw["mark"] == {"name": "utterance-2"}
        # Each mark comes right after its utterance's last audio, before the next utterance's.
        greeting_audio = [r for r in stream.audio() if r.at < first.at]
        answer_audio = [r for r in stream.audio() if first.at < r.at < second.at]
        assert sum(len(r.audio) for r in greeting_audio) / 2 / 8000 >= 0.38
        assert sum(len(r.audio) for r in answer_audio) / 2 / 8000 >= 0.38
        assert stream.audio_seconds(since=second.at) == 0
        # The client echoed each mark once it had played the audio before it (real time).
        assert stream.echoed_utterances() == ["utterance-1", "utterance-2"]
        echoed_at = dict((name, at) for at, name in stream.echoed)
        assert echoed_at["utterance-1"] >= greeting_audio[0].at + 0.38
        # Each sentence has a mark of its own, after its audio (bar what Pipecat's resampler
        # still holds, released by the next audio or the utterance's end), before the utterance's.
        pieces = stream.piece_marks()
        assert [stream.mark_name(p.raw) for p in pieces] == ["utterance-1.1", "utterance-2.1"]
        assert stream.audio_seconds(until=pieces[0].at) >= 0.2 and pieces[0].at < first.at
        assert first.at < pieces[1].at < second.at
    line = await ended(call_log)
    assert f"serializer={kind} stream={stream.stream_id} call={stream.call_id} reason=client hung up" in line
    assert "utterances=2 heard=2 cut=0 unconfirmed=0" in line


async def test_interruption_sends_clear_and_the_cut_utterance_is_not_heard(
    fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    runner = await start_runner()
    fake.speech_ms = 6000  # the first answer would take 6 s to play
    async with call("twilio", runner) as stream:
        await stream.speak(speech_pcm(8000))
        await stream.wait_for(lambda c: c.audio_seconds() >= 0.3)
        fake.speech_ms = 300
        await stream.speak(speech_pcm(8000))  # the caller talks over the bot
        await stream.wait_for(lambda c: len(c.marks()) == 1)
        await stream.wait_for(lambda c: len(c.echoed_utterances()) == 1, timeout=5)

        first_audio = stream.audio()[0].at
        clear = next(r for r in stream.received if r.kind == "clear" and r.at > first_audio)
        (mark,) = stream.marks()
        assert mark.raw["mark"] == {"name": "utterance-2"}  # the cut answer got no mark
        assert clear.at < mark.at
    line = await ended(call_log)
    assert "utterances=2 heard=1 cut=1 unconfirmed=0" in line


async def test_an_echo_that_a_clear_returns_is_not_heard(
    fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    # The answer was sent whole (its mark too) but is still playing at the provider when the
    # caller talks: the clear drops it and Twilio echoes its mark at once. It was not heard.
    runner = await start_runner(greeting=GREETING)
    async with call("twilio", runner) as stream:
        await stream.wait_for(lambda c: len(c.echoed_utterances()) == 1)  # the greeting was heard
        stream.latency = 5.0  # from now on the player lags 5 s behind (a long jitter buffer)
        fake.speech_ms = 2000
        await stream.speak(speech_pcm(8000), silence=0.4)
        await stream.wait_for(lambda c: len(c.marks()) == 2)  # the answer was sent whole
        fake.speech_ms = 300
        await stream.speak(speech_pcm(8000))  # ... and the caller talks before it played
        await stream.wait_for(lambda c: len(c.marks()) == 3, timeout=20)
        await stream.wait_for(lambda c: len(c.echoed_utterances()) == 3, timeout=10)
        assert any(r.kind == "clear" and r.at > stream.marks()[1].at for r in stream.received)
        assert stream.echoed_utterances() == ["utterance-1", "utterance-2", "utterance-3"]
    line = await ended(call_log)
    assert "utterances=3 heard=2 cut=1 unconfirmed=0" in line


ANSWER = "The shop opens at nine. It closes at five. On Sundays it is closed."


def assistant_messages(fake: FakeOpenAI, request: int) -> list[str]:
    return [m["content"] for m in fake.chat_requests()[request].body["messages"] if m["role"] == "assistant"]


@pytest.mark.parametrize("echo_marks", [True, False])
async def test_an_interrupted_answer_is_remembered_as_far_as_the_caller_heard_it(
    echo_marks: bool, fake: FakeOpenAI, start_runner: StartRunner, caplog: pytest.LogCaptureFixture
) -> None:
    # Each sentence plays 1.5 s, behind a 2.5 s jitter buffer: when the caller has heard the first
    # sentence and talks, the second has long gone out (Pipecat's context has it) but not played.
    caplog.set_level(logging.INFO, logger="aiassistant_runner.interruptions")
    runner = await start_runner()
    fake.speech_ms = 1500
    fake.script(Reply(text=ANSWER), Reply(text="Anything else?"))
    async with call("twilio", runner, latency=2.5, echo_marks=echo_marks) as stream:
        await stream.speak(speech_pcm(8000))
        await stream.wait_for(lambda c: len(c.piece_marks()) >= 2)  # the second sentence went out
        if echo_marks:
            await stream.wait_for(lambda c: [n for _, n in c.echoed] == ["utterance-1.1"], timeout=10)
        else:
            await stream.wait_for(lambda c: c.audio_seconds() >= 3.5, timeout=10)
        fake.speech_ms = 300
        await stream.speak(speech_pcm(8000))  # the caller talks over the bot
        await wait_until(lambda: len(fake.chat_requests()) == 2)
        assert any(r.kind == "clear" for r in stream.received)
    if echo_marks:
        assert assistant_messages(fake, 1) == ["The shop opens at nine."]
        assert "the caller heard 23 of its" in caplog.text
    else:  # nothing is known of what was heard: the context keeps what Pipecat put in it
        (remembered,) = assistant_messages(fake, 1)
        assert remembered.startswith("The shop opens at nine. It closes at five.")


async def test_an_answer_cut_before_anything_was_heard_leaves_the_context(
    fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner(greeting=GREETING)
    async with call("twilio", runner, latency=4.0) as stream:
        await stream.wait_for(lambda c: [n for _, n in c.echoed] == ["utterance-1.1", "utterance-1"])
        fake.speech_ms = 1500
        fake.script(Reply(text=ANSWER), Reply(text="Anything else?"))
        await stream.speak(speech_pcm(8000))
        await stream.wait_for(lambda c: len(c.piece_marks()) >= 2)  # sent, but 4 s from playing
        fake.speech_ms = 300
        await stream.speak(speech_pcm(8000))
        await wait_until(lambda: len(fake.chat_requests()) == 2)
    # The greeting was heard and stays; the cut answer is gone, so the model does not believe it
    # told the caller anything.
    assert assistant_messages(fake, 1) == [GREETING]


async def test_a_client_that_never_echoes_marks_still_talks(
    fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    runner = await start_runner(greeting=GREETING)
    async with call("twilio", runner, echo_marks=False) as stream:
        await stream.wait_for(lambda c: len(c.marks()) == 1)
        for turn in (2, 3):
            await stream.speak(speech_pcm(8000), silence=0.4)
            await stream.wait_for(lambda c, n=turn: len(c.marks()) == n)
        assert len(fake.chat_requests()) == 2
        assert stream.echoed == []
    line = await ended(call_log)
    assert "utterances=3 heard=0 cut=0 unconfirmed=3" in line


async def test_call_log_lines_name_the_call_and_never_its_token(
    fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    runner = await start_runner()
    fake.script(Reply(text="Goodbye!", tool_calls=[ToolCall("end_call", {"reason": "done"})]))
    token = "stream-token-do-not-log-5f1e"
    async with call("twilio", runner, parameters={"token": token}) as stream:
        await wait_until(lambda: logged(call_log, "call started:"))
        await stream.speak(speech_pcm(8000), silence=0.4)
        await stream.wait_for(lambda c: c.closed_at is not None)
    (start,) = logged(call_log, "call started:")
    assert start == f"call started: serializer=twilio stream={stream.stream_id} call={stream.call_id}"
    line = await ended(call_log)
    match = re.search(r"reason=end_call tool duration=(\d+\.\d)s", line)
    assert match is not None, line
    assert 1.0 < float(match.group(1)) < 30
    assert token not in call_log.text


async def test_protobuf_call_log_has_a_generated_id_and_max_duration_reason(
    fake: FakeOpenAI, start_runner: StartRunner, call_log: pytest.LogCaptureFixture
) -> None:
    config = voice_config(fake).model_copy(update={"max_call_seconds": 1.0})
    runner = await start_runner(config)
    async with ProtobufCall(f"{runner.ws_url}/v1/calls/protobuf") as client:
        opened = time.monotonic()
        await client.wait_for(lambda c: c.closed_at is not None, timeout=10)
    assert time.monotonic() - opened < 5
    (start,) = logged(call_log, "call started:")
    stream_id = re.fullmatch(r"call started: serializer=protobuf stream=(generated-[0-9a-f]{32})", start)
    assert stream_id is not None, start
    line = await ended(call_log)
    assert line.startswith(
        f"call ended: serializer=protobuf stream={stream_id.group(1)} reason=maxCallSeconds"
    )
    assert "utterances" not in line  # protobuf has no marks


async def test_a_call_cut_at_the_end_of_the_drain_grace_logs_drain(
    fake: FakeOpenAI, call_log: pytest.LogCaptureFixture
) -> None:
    # What DrainingServer (server.py) does on SIGTERM: refuse new sessions, wait the grace, then
    # uvicorn's shutdown closes the sockets still open (code 1012).
    state = build_runner(voice_config(fake), environ=ENVIRON, drain_seconds=5)
    server = await serve(create_app(state))
    try:
        async with call("twilio", VoiceRunner(f"ws://127.0.0.1:{server.port}", state)) as stream:
            await wait_until(lambda: state.sessions.active == 1)
            state.sessions.begin_drain()
            assert not await state.sessions.wait_idle(0.05)  # the grace runs out with the call on
            server.server.should_exit = True
            await stream.wait_for(lambda c: c.closed_at is not None, timeout=10)
            assert stream.close_code == 1012
    finally:
        server.server.should_exit = True
        await server.task
    assert "reason=drain" in await ended(call_log)
