"""Realtime (speech-to-speech) calls: `voice.mode: realtime` around Pipecat's GrokRealtimeLLMService,
against the loopback fake of xAI's realtime protocol, over every serializer we serve: real speech
in, Grok's audio out; a webhook tool round; end_call; a greeting."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from aiassistant_contract.runner_config import RunnerConfig
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.tool_server import ToolReply, ToolServer
from tests.voice.clients import speech_pcm
from tests.voice.conftest import PROMPT, XAI_KEY, StartRunner, wait_until
from tests.voice.test_calls import client, metrics
from tests.voice.xai_realtime_fake import FakeXAIRealtime, RealtimeReply

pytestmark = pytest.mark.timeout(60)


def realtime_config(fake: FakeOpenAI, rt: FakeXAIRealtime, **fields: Any) -> RunnerConfig:
    return RunnerConfig.model_validate(
        {
            "engineModel": "grok.grok-4.3",
            "reasoningEffort": "high",
            "baseURL": fake.base_url,
            "initPrompt": PROMPT,
            "voice": {
                "mode": "realtime",
                "model": "grok-voice-think-fast-1.0",
                "voice": "rex",
                "baseURL": rt.ws_url,
            },
            "transport": {"serializers": ["protobuf", "twilio", "telnyx", "plivo", "exotel"]},
            "access": {"anonymous": True},  # access has its own tests (test_call_access.py)
            **fields,
        }
    )


@pytest.mark.parametrize("kind", ["protobuf", "twilio", "telnyx", "plivo", "exotel"])
async def test_realtime_call_speech_in_grok_audio_out(
    kind: str, fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    async with FakeXAIRealtime(key=XAI_KEY) as rt:
        runner = await start_runner(realtime_config(fake, rt), environ={"OPENAI_API_KEY": ""})
        rt.script(RealtimeReply(text="ACME, how can I help?"), RealtimeReply(text="We open at nine."))
        async with client(kind, runner) as call:
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38, timeout=15)  # the bot opens the call
            opening = call.audio_seconds()
            spoke_until = await call.speak(speech_pcm(call.rate), silence=0.8)
            await call.wait_for(lambda c: c.audio_seconds() >= opening + 0.38, timeout=15)
            answer = call.audio(since=spoke_until - 0.8)
            assert answer and any(abs(s) > 1000 for s in memoryview(answer[-1].audio).cast("h"))
        await wait_until(lambda: runner.state.sessions.active == 0, timeout=5)

        (session,) = rt.sessions
        assert session.headers["Authorization"] == f"Bearer {XAI_KEY}"
        assert session.query == {"model": "grok-voice-think-fast-1.0"}
        config = session.config
        assert config["voice"] == "rex" and config["instructions"] == PROMPT
        assert config["turn_detection"]["type"] == "server_vad"
        # No resampling: the session's audio is the pipeline's rate (8 kHz for telephony).
        pcm = {"type": "audio/pcm", "rate": call.rate}
        assert config["audio"] == {"input": {"format": pcm}, "output": {"format": pcm}}
        assert session.audio_bytes > call.rate  # over half a second of the caller's 16-bit audio
        assert [t["name"] for t in config["tools"]] == ["end_call"]
        assert session.responses == 2  # the opening and the answer to the caller's turn
        assert session.events("response.create")  # the opening was asked for; the answer came on VAD
    assert fake.chat_requests() == []  # calls are speech-to-speech: engineModel is for text
    text = metrics(runner)
    assert 'aiassistant_llm_completion_tokens_total{assistant="default/assistant"} 20.0' in text
    assert (
        'aiassistant_llm_answers_total{assistant="default/assistant",model="grok-voice-think-fast-1.0"} 2.0'
        in text
    )


async def test_realtime_tool_round_then_end_call(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    async with FakeXAIRealtime(key=XAI_KEY) as rt, ToolServer() as tools:
        tools.script(ToolReply({"hours": "nine to five"}))
        lookup = {
            "name": "opening_hours",
            "description": "Opening hours of a store.",
            "parameters": {"type": "object", "properties": {"store": {"type": "string"}}},
            "url": tools.url("opening_hours"),
        }
        runner = await start_runner(realtime_config(fake, rt, tools=[lookup]))
        rt.script(
            RealtimeReply(text="ACME, how can I help?"),
            RealtimeReply(calls=[("opening_hours", {"store": "main"})]),
            RealtimeReply(text="We are open from nine to five."),
            RealtimeReply(text="Goodbye!", calls=[("end_call", {"reason": "caller is done"})]),
        )
        async with client("twilio", runner) as call:
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38, timeout=15)  # the opening
            await call.speak(speech_pcm(call.rate), silence=0.8)
            await call.wait_for(lambda c: c.audio_seconds() >= 0.76, timeout=15)  # the tool's answer
            (webhook,) = tools.requests
            assert (webhook.name, webhook.arguments) == ("opening_hours", {"store": "main"})
            (session,) = rt.sessions
            outputs = [e["item"] for e in session.events("conversation.item.create")]
            (result,) = [i for i in outputs if i["type"] == "function_call_output"]
            assert json.loads(result["output"]) == {"hours": "nine to five"}
            assert [t["name"] for t in session.config["tools"]] == ["opening_hours", "end_call"]
            heard = call.audio_seconds()
            await call.speak(speech_pcm(call.rate), silence=0.8)  # the caller says goodbye
            await call.wait_for(lambda c: c.closed_at is not None, timeout=15)
            assert call.close_code == 1000
            assert call.audio_seconds() - heard >= 0.38  # the goodbye was played before the hang-up
        assert session.responses == 4  # opening, tool call, its answer, goodbye (end_call asks no more)
        await wait_until(lambda: runner.state.sessions.active == 0, timeout=5)


async def test_realtime_greeting_is_the_first_response(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    async with FakeXAIRealtime(key=XAI_KEY) as rt:
        runner = await start_runner(realtime_config(fake, rt, greeting="Hello, ACME here."))
        rt.script(RealtimeReply(text="Hello, ACME here."))
        async with client("protobuf", runner) as call:
            opened = time.monotonic()
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38, timeout=15)
            assert call.audio()[0].at - opened < 5  # nobody spoke: the bot did
        (session,) = rt.sessions
        asked = [e["item"] for e in session.events("conversation.item.create")]
        assert any("Hello, ACME here." in json.dumps(i) for i in asked)
        assert session.events("response.create")


def test_realtime_needs_a_grok_engine_and_no_speech() -> None:
    from pydantic import ValidationError

    voice = {"mode": "realtime"}
    with pytest.raises(ValidationError, match="needs a grok engineModel"):
        RunnerConfig.model_validate({"engineModel": "openai.gpt-4o", "voice": voice})
    with pytest.raises(ValidationError, match="remove stt and tts"):
        RunnerConfig.model_validate({"engineModel": "grok.grok-4.3", "voice": voice, "stt": {"type": "xai"}})
    with pytest.raises(ValidationError, match="is not an xAI voice"):
        RunnerConfig.model_validate({"engineModel": "grok.grok-4.3", "voice": {**voice, "voice": "alloy"}})


async def test_realtime_caller_speech_interrupts_the_bot(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    async with FakeXAIRealtime(key=XAI_KEY) as rt:
        runner = await start_runner(realtime_config(fake, rt))
        rt.script(RealtimeReply(text="A very long opening.", speech_ms=6000), RealtimeReply(text="Yes?"))
        async with client("twilio", runner) as call:
            await call.wait_for(lambda c: c.audio_seconds() >= 0.3, timeout=15)
            spoke = time.monotonic()
            await call.speak(speech_pcm(call.rate), silence=0.8)
            (session,) = rt.sessions
            await call.wait_for(lambda c: session.responses == 2, timeout=15)
            await call.wait_for(lambda c: c.audio_seconds(since=spoke + 1.0) >= 0.38, timeout=15)
            first_audio = call.audio()[0].at
            cleared = next(r for r in call.received if r.kind == "clear" and r.at > first_audio)
            # The opening stopped at the caller's speech: far short of its 6 s.
            assert call.audio_seconds(until=cleared.at) < 4.0
            # Pipecat told Grok: the response being generated was cancelled when the caller cut in.
            assert session.cancelled == 1


async def test_realtime_call_ends_at_max_call_seconds(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    async with FakeXAIRealtime(key=XAI_KEY) as rt:
        # maxCallSeconds is at least 10 in the spec; the test shortens it past validation.
        config = realtime_config(fake, rt).model_copy(update={"max_call_seconds": 1.5})
        runner = await start_runner(config)
        async with client("plivo", runner) as call:
            opened = time.monotonic()
            await call.wait_for(lambda c: c.closed_at is not None, timeout=10)
            assert call.closed_at is not None and 1.5 <= call.closed_at - opened < 4
            assert call.close_code == 1000
        await wait_until(lambda: runner.state.sessions.active == 0, timeout=5)
        (session,) = rt.sessions
        await wait_until(lambda: session.closed, timeout=5)  # the realtime socket is closed too
