"""Voice calls over the real WebSocket, end to end against the loopback fakes.

Real audio (the espeak-ng fixture) goes through the runner's real Silero VAD, the OpenAI STT client
(to the fake's /v1/audio/transcriptions), the grok LLM service (to the fake's chat completions, as
xAI would be called) and the OpenAI TTS client; the tests read the audio frames that come back.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aiassistant_runner.voice_pipeline import VOICE_APOLOGY, prewarm
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.fakes.tool_server import ToolReply, ToolServer
from tests.runner.process import free_port
from tests.voice.clients import (
    CallClient,
    ExotelCall,
    PlivoCall,
    ProtobufCall,
    TelnyxCall,
    TwilioCall,
    speech_pcm,
)
from tests.voice.conftest import (
    OPENAI_KEY,
    PROMPT,
    XAI_KEY,
    StartRunner,
    VoiceRunner,
    voice_config,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def requests(fake: FakeOpenAI, path: str) -> list:
    return [r for r in fake.requests if r.path == f"/v1/{path}"]


CLIENTS: dict[str, type[CallClient]] = {
    "protobuf": ProtobufCall,
    "twilio": TwilioCall,
    "telnyx": TelnyxCall,
    "plivo": PlivoCall,
    "exotel": ExotelCall,
}


def client(kind: str, runner: VoiceRunner) -> CallClient:
    return CLIENTS[kind](f"{runner.ws_url}/v1/calls/{kind}", 16_000 if kind == "protobuf" else 8000)


@pytest.mark.parametrize("kind", ["protobuf", "twilio"])
async def test_call_transcript_to_grok_to_tts_audio(
    kind: str,
    fake: FakeOpenAI,
    start_runner: StartRunner,
    capfd: pytest.CaptureFixture[str],
    pipecat_log: list[str],
) -> None:
    runner = await start_runner()
    async with client(kind, runner) as call:
        await wait_until(lambda: runner.state.sessions.active == 1)  # the call, the only session
        spoke_until = await call.speak(speech_pcm(call.rate))
        await call.wait_for(lambda c: c.audio_seconds() >= 0.3)

        # STT: the caller's speech reached the fake's transcription endpoint as a WAV upload.
        (stt,) = requests(fake, "audio/transcriptions")
        assert stt.headers["Authorization"] == "Bearer sk-voice-test-key-7b2d40"
        assert stt.body["file"] > 16_000  # bytes: about a second of 16-bit audio or more
        # LLM: the grok request, with the xAI key, the system prompt and the transcript.
        (chat,) = fake.chat_requests()
        assert chat.headers["Authorization"] == f"Bearer {XAI_KEY}"
        assert chat.body["model"] == "grok-3"
        assert chat.body["stream"] is True
        messages = chat.body["messages"]
        assert messages[0] == {"role": "system", "content": PROMPT}
        assert messages[-1] == {"role": "user", "content": fake.transcript}
        assert "end_call" in [t["function"]["name"] for t in chat.body.get("tools", [])]
        # TTS: the reply was synthesised and its audio came back over the socket, after the turn.
        (tts,) = requests(fake, "audio/speech")
        assert tts.body["input"].strip() == fake.default_text
        assert stt.at < chat.at < tts.at
        assert call.audio()[0].at > spoke_until
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38)  # the fake's 400 ms, resampled
        assert 0.38 <= call.audio_seconds() <= 0.45
        assert any(abs(s) > 1000 for s in memoryview(call.audio()[0].audio).cast("h"))  # a tone, not silence
    await wait_until(lambda: runner.state.sessions.active == 0)
    # Metrics: STT and TTS time, LLM time to first token, tokens, from Pipecat's metrics frames.
    text = metrics(runner)
    for service in ("stt", "llm", "tts"):
        assert (
            f'aiassistant_service_seconds_count{{assistant="default/assistant",metric="ttfb",service="{service}"}} 1.0'
            in text
        )
    assert 'aiassistant_llm_time_to_first_token_seconds_count{assistant="default/assistant"} 1.0' in text
    assert 'aiassistant_llm_completion_tokens_total{assistant="default/assistant"} 5.0' in text
    # The keys never reach a log line (Pipecat's loguru and ours both write to stderr).
    logged = capfd.readouterr().err + "".join(pipecat_log)
    assert "GrokLLMService" in logged
    assert XAI_KEY not in logged and OPENAI_KEY not in logged


@pytest.mark.parametrize("kind", ["protobuf", "twilio"])
async def test_caller_speech_interrupts_the_bot(
    kind: str, fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    fake.speech_ms = 6000  # the first answer would take 6 s to play
    interruption = "interruption" if kind == "protobuf" else "clear"  # the clients' name for it
    async with client(kind, runner) as call:
        await call.speak(speech_pcm(call.rate))
        await call.wait_for(lambda c: c.audio_seconds() >= 0.2)
        fake.speech_ms = 300  # the answer to the interrupting turn is short
        await call.speak(speech_pcm(call.rate))
        await call.wait_for(lambda c: len(requests(fake, "audio/speech")) == 2)
        await call.wait_for(lambda c: c.audio_seconds(since=requests(fake, "audio/speech")[1].at) >= 0.29)

        # Pipecat also sends one at the start of every user turn; the one that counts follows the
        # bot's first audio.
        first_audio = call.audio()[0].at
        stopped = next(r for r in call.received if r.kind == interruption and r.at > first_audio)
        second_answer = requests(fake, "audio/speech")[1].at
        assert stopped.at < second_answer
        # The first answer stopped at the interruption: well short of its 6 s, and nothing of it
        # arrived after the interruption (bar a frame in flight).
        assert call.audio_seconds(until=stopped.at) < 4.0
        assert call.audio_seconds(since=stopped.at, until=second_answer) <= 0.05
        # The interrupting turn reached the model.
        assert fake.chat_requests()[1].body["messages"][-1] == {"role": "user", "content": fake.transcript}


async def test_end_call_tool_says_goodbye_then_hangs_up(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner()
    fake.script(Reply(text="Goodbye!", tool_calls=[ToolCall("end_call", {"reason": "caller is done"})]))
    async with client("twilio", runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: c.closed_at is not None)
        (tts,) = requests(fake, "audio/speech")
        assert tts.body["input"].strip() == "Goodbye!"
        assert call.audio_seconds() >= 0.38  # the goodbye was played before the hang-up
        assert call.close_code == 1000
    assert len(fake.chat_requests()) == 1  # the tool result did not start another answer
    await wait_until(lambda: runner.state.sessions.active == 0)
    assert failed_calls(runner) == 0


async def test_caller_hang_up_ends_the_session_cleanly(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner()
    fake.speech_ms = 5000
    dialled = time.monotonic()
    async with client("protobuf", runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: c.audio_seconds() > 0)
    # Closed while the bot speaks: the pipeline is cancelled and the session ends, not failed.
    await wait_until(lambda: runner.state.sessions.active == 0, timeout=5)
    lasted = time.monotonic() - dialled
    assert failed_calls(runner) == 0
    assert 'aiassistant_sessions_total{assistant="default/assistant",kind="call"} 1.0' in metrics(runner)
    # Call seconds (what telephony bills by) count the call once it ended.
    counted = next(
        float(line.rsplit(" ", 1)[1])
        for line in metrics(runner).splitlines()
        if line.startswith('aiassistant_call_seconds_total{assistant="default/assistant"}')
    )
    assert 1.0 < counted <= lasted


async def test_greeting_first_and_max_duration(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    # maxCallSeconds is at least 10 in the spec; the test shortens it past validation.
    config = voice_config(fake, greeting="Hello, ACME here.").model_copy(update={"max_call_seconds": 1.5})
    runner = await start_runner(config)
    async with client("protobuf", runner) as call:
        opened = time.monotonic()
        await call.wait_for(lambda c: c.closed_at is not None, timeout=10)
        assert call.closed_at is not None
        assert 1.5 <= call.closed_at - opened < 4
        (tts,) = requests(fake, "audio/speech")
        assert tts.body["input"] == "Hello, ACME here."
        assert call.audio_seconds() >= 0.38
        assert fake.chat_requests() == []  # the greeting is spoken, not generated
    await wait_until(lambda: runner.state.sessions.active == 0)


async def test_llm_failure_mid_call_is_an_apology(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner()
    fake.script(*[Reply(status=500)] * 2)  # the attempt and its one retry
    async with client("protobuf", runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: len(requests(fake, "audio/speech")) == 1)
        assert requests(fake, "audio/speech")[0].body["input"] == VOICE_APOLOGY
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
        assert call.closed_at is None  # the call goes on
    assert 'aiassistant_llm_errors_total{assistant="default/assistant"} 1.0' in metrics(runner)


async def test_llm_stall_mid_call_is_an_apology(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner(llm_timeout=0.5)
    fake.script(*[Reply(first_token_delay=5.0)] * 2)  # the attempt and its one retry both stall
    async with client("protobuf", runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: len(requests(fake, "audio/speech")) == 1)
        assert requests(fake, "audio/speech")[0].body["input"] == VOICE_APOLOGY
        assert len(fake.chat_requests()) == 2
        assert call.closed_at is None  # the call goes on
    assert 'aiassistant_llm_errors_total{assistant="default/assistant"} 1.0' in metrics(runner)


async def test_openai_engine_call(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner(engineModel="openai.gpt-4o")
    async with client("protobuf", runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
    (chat,) = fake.chat_requests()
    assert chat.body["model"] == "gpt-4o"
    assert chat.headers["Authorization"] == f"Bearer {OPENAI_KEY}"


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"event": "connected"}, {"event": "start", "start": {"callSid": "CA1"}}], "lacks start.streamSid"),
        ([b"\x00\x01"], "got binary data"),
    ],
)
async def test_telephony_stream_without_a_start_is_refused(
    messages: list, reason: str, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    async with connect(f"{runner.ws_url}/v1/calls/twilio") as ws:
        for message in messages:
            await ws.send(message if isinstance(message, bytes) else json.dumps(message))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1008
    assert ws.close_reason is not None and reason in ws.close_reason
    assert runner.state.sessions.active == 0


async def test_no_speech_config_is_refused(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner(voice_config(fake).model_copy(update={"tts": None}))
    async with connect(f"{runner.ws_url}/v1/calls/protobuf") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == (1008, "voice calls need stt and tts in the assistant spec")


def metrics(runner: VoiceRunner) -> str:
    return runner.state.metrics.render().decode()


def failed_calls(runner: VoiceRunner) -> float:
    line = next(
        line
        for line in metrics(runner).splitlines()
        if line.startswith("aiassistant_sessions_failed_total") and 'kind="call"' in line
    )
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("kind", ["telnyx", "plivo", "exotel"])
async def test_other_telephony_streams(kind: str, fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner()
    async with client(kind, runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
    assert fake.chat_requests()[0].body["messages"][-1] == {"role": "user", "content": fake.transcript}
    await wait_until(lambda: runner.state.sessions.active == 0)


async def test_smart_turn_call(fake: FakeOpenAI, start_runner: StartRunner, pipecat_log: list[str]) -> None:
    # smartTurn: Pipecat's local smart-turn model judges the end of the turn at each pause (it
    # finds the synthetic voice's question unfinished, so Pipecat's 5 s turn timeout ends it).
    runner = await start_runner(smartTurn=True)
    async with client("protobuf", runner) as call:
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38, timeout=10)
    assert fake.chat_requests()[0].body["messages"][-1] == {"role": "user", "content": fake.transcript}
    assert "End of Turn result" in "".join(pipecat_log)  # the model ran


async def test_origin_not_allowed_is_refused(
    start_runner: StartRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pipecat's own origin check (PIPECAT_ALLOWED_ORIGINS) refuses a browser from elsewhere.
    monkeypatch.setenv("PIPECAT_ALLOWED_ORIGINS", "https://app.example")
    runner = await start_runner()
    async with connect(f"{runner.ws_url}/v1/calls/protobuf", origin="https://evil.example") as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1008
    assert ws.close_reason is not None and "https://evil.example" in ws.close_reason
    await wait_until(lambda: runner.state.sessions.active == 0)


def test_prewarm_imports_the_voice_stack() -> None:
    prewarm()
    assert {"pipecat.audio.vad.silero", "pipecat.transports.websocket.fastapi"} <= set(sys.modules)


async def test_drain_and_capacity_refuse_new_calls_not_active_ones(
    fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner(maxSessionsPerPod=1)
    async with client("protobuf", runner) as call:
        await wait_until(lambda: runner.state.sessions.active == 1)
        for reason in ("at capacity", "draining"):
            if reason == "draining":
                runner.state.sessions.begin_drain()  # what SIGTERM does
            async with connect(f"{runner.ws_url}/v1/calls/protobuf") as refused:
                with pytest.raises(ConnectionClosed):
                    await refused.recv()
            assert (refused.close_code, refused.close_reason) == (1013, f"runner is {reason}")
        # The call admitted before goes on while the pod drains.
        await call.speak(speech_pcm(call.rate), silence=0.4)
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
    await wait_until(lambda: runner.state.sessions.active == 0)


async def test_spec_tool_round_in_a_call(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    async with ToolServer() as tools:
        tools.script(ToolReply({"hours": "nine to five"}))
        lookup = {
            "name": "opening_hours",
            "description": "Opening hours of a store.",
            "parameters": {"type": "object", "properties": {"store": {"type": "string"}}},
            "url": tools.url("opening_hours"),
        }
        runner = await start_runner(tools=[lookup])
        fake.script(
            Reply(tool_calls=[ToolCall("opening_hours", {"store": "main"}, id="call_7")]),
            Reply(text="We are open from nine to five."),
        )
        async with client("twilio", runner) as call:
            await call.speak(speech_pcm(call.rate), silence=0.4)
            await call.wait_for(lambda c: len(requests(fake, "audio/speech")) == 1)
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
        (webhook,) = tools.requests
        assert (webhook.name, webhook.arguments, webhook.body["id"]) == (
            "opening_hours",
            {"store": "main"},
            "call_7",
        )
        first, second = fake.chat_requests()
        assert [t["function"]["name"] for t in first.body["tools"]] == ["opening_hours", "end_call"]
        result = second.body["messages"][-1]
        assert result["role"] == "tool" and result["tool_call_id"] == "call_7"
        assert json.loads(result["content"]) == {"hours": "nine to five"}
        assert requests(fake, "audio/speech")[0].body["input"].strip() == "We are open from nine to five."
        await wait_until(lambda: runner.state.sessions.active == 0)


async def test_a_dead_primary_falls_over_to_the_fallback_in_a_call(start_runner: StartRunner) -> None:
    # The engine model's endpoint is down; the call switches to the fallback (Pipecat's LLMSwitcher,
    # failover strategy) and the turn that failed is answered by it.
    fallback_key = "sk-voice-fallback-9a7c"
    async with FakeOpenAI(speech_ms=400, default_text="Fallback speaking.", key=fallback_key) as backup:
        config = voice_config(
            backup,
            engineModel="grok.grok-4.3",
            baseURL=f"http://127.0.0.1:{free_port()}/v1",
            fallbacks=[{"engineModel": "openai.gpt-4o", "baseURL": backup.base_url}],
        )
        runner = await start_runner(config, environ={"AIASSISTANT_FALLBACK_1_API_KEY": fallback_key})
        async with client("twilio", runner) as call:
            await call.speak(speech_pcm(call.rate), silence=0.4)
            await call.wait_for(lambda c: len(requests(backup, "audio/speech")) == 1)
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
            assert call.closed_at is None
        (chat,) = backup.chat_requests()
        assert chat.body["model"] == "gpt-4o" and chat.headers["Authorization"] == f"Bearer {fallback_key}"
        assert chat.body["messages"][-1] == {"role": "user", "content": backup.transcript}
        assert requests(backup, "audio/speech")[0].body["input"].strip() == "Fallback speaking."
        text = metrics(runner)
        assert (
            'aiassistant_llm_failovers_total{assistant="default/assistant",from_model="grok.grok-4.3",'
            'to_model="openai.gpt-4o"} 1.0' in text
        )
        assert 'aiassistant_llm_answers_total{assistant="default/assistant",model="gpt-4o"} 1.0' in text
        assert 'aiassistant_llm_errors_total{assistant="default/assistant"} 0.0' in text  # no apology


async def test_every_model_failing_in_a_call_is_the_apology(start_runner: StartRunner) -> None:
    async with FakeOpenAI(speech_ms=400, key="sk-fb") as backup:
        config = voice_config(
            backup,
            baseURL=f"http://127.0.0.1:{free_port()}/v1",
            fallbacks=[{"engineModel": "openai.gpt-4o", "baseURL": backup.base_url}],
        )
        runner = await start_runner(config, environ={"AIASSISTANT_FALLBACK_1_API_KEY": "sk-fb"})
        backup.script(Reply(status=503), Reply(status=503))  # the fallback's attempt and its retry
        async with client("protobuf", runner) as call:
            await call.speak(speech_pcm(call.rate), silence=0.4)
            await call.wait_for(lambda c: len(requests(backup, "audio/speech")) == 1)
            assert requests(backup, "audio/speech")[0].body["input"] == VOICE_APOLOGY
            assert call.closed_at is None  # the call goes on
        assert len(backup.chat_requests()) == 2
        assert 'aiassistant_llm_errors_total{assistant="default/assistant"} 1.0' in metrics(runner)
