"""All-Grok voice calls in pipeline mode: xAI STT -> grok LLM -> xAI TTS, one XAI_API_KEY.

Real speech (the fixture) goes over each serializer we serve through the runner's VAD, Pipecat's
XAISTTService (to the fake's WS /v1/stt), GrokLLMService (to the OpenAI-compatible fake, as xAI's
chat completions) and XAITTSService (to the fake's WS /v1/tts); the caller gets the audio back.
"""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.voice.clients import speech_pcm
from tests.voice.conftest import XAI_KEY, StartRunner, voice_config, wait_until
from tests.voice.test_calls import client
from tests.voice.xai_fakes import FakeXAIVoice

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kind", ["protobuf", "twilio", "telnyx", "plivo", "exotel"])
async def test_all_grok_pipeline_call(kind: str, fake: FakeOpenAI, start_runner: StartRunner) -> None:
    async with FakeXAIVoice(key=XAI_KEY) as xai:
        config = voice_config(
            fake,
            engineModel="grok.grok-4.3",
            reasoningEffort="high",
            stt={"type": "xai", "baseURL": xai.ws_url},
            tts={"type": "xai", "baseURL": xai.ws_url, "voiceId": "ara"},
        )
        runner = await start_runner(config, environ={"XAI_API_KEY": XAI_KEY, "OPENAI_API_KEY": ""})
        async with client(kind, runner) as call:
            await call.speak(speech_pcm(call.rate), silence=0.8)
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38, timeout=15)
            assert any(abs(s) > 1000 for s in memoryview(call.audio()[0].audio).cast("h"))  # a tone
        await wait_until(lambda: runner.state.sessions.active == 0, timeout=5)

        rate = call.rate
        (stt,) = xai.connections_to("/v1/stt")
        assert stt.headers["Authorization"] == f"Bearer {XAI_KEY}"
        assert (stt.query["sample_rate"], stt.query["encoding"]) == (str(rate), "pcm")
        assert stt.query["model"] == "grok-voice-transcribe-2.0" and stt.query["language"] == "en"
        assert stt.audio_bytes > rate  # more than half a second of 16-bit audio
        (chat,) = fake.chat_requests()
        assert chat.headers["Authorization"] == f"Bearer {XAI_KEY}"
        assert chat.body["model"] == "grok-4.3" and chat.body["reasoning_effort"] == "high"
        assert chat.body["messages"][-1] == {"role": "user", "content": xai.transcript}
        (tts,) = xai.connections_to("/v1/tts")
        assert tts.headers["Authorization"] == f"Bearer {XAI_KEY}"
        assert (tts.query["voice"], tts.query["sample_rate"], tts.query["codec"]) == ("ara", str(rate), "pcm")
        spoken = "".join(m.get("delta", "") for m in tts.messages if m["type"] == "text.delta")
        assert spoken.split() == fake.default_text.split()
        assert {"type": "text.done"} in tts.messages
        assert xai.refused == []


async def test_wrong_xai_key_is_refused_by_the_fake(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    # The fake holds xAI's line: a handshake with another key gets 401 and no session.
    async with FakeXAIVoice(key="xai-the-right-key") as xai:
        config = voice_config(
            fake, stt={"type": "xai", "baseURL": xai.ws_url}, tts={"type": "xai", "baseURL": xai.ws_url}
        )
        runner = await start_runner(config)
        async with client("protobuf", runner):
            await wait_until(lambda: len(xai.refused) >= 2)  # STT and TTS both tried
        assert xai.connections == []
        assert {r["Authorization"] for r in xai.refused} == {f"Bearer {XAI_KEY}"}
