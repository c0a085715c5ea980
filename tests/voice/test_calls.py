"""Voice calls over the real WebSocket, end to end against the loopback fakes.

Real audio (the espeak-ng fixture) goes through the runner's real Silero VAD, the OpenAI STT client
(to the fake's /v1/audio/transcriptions), the grok LLM service (to the fake's chat completions, as
xAI would be called) and the OpenAI TTS client; the tests read the audio frames that come back.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.voice.clients import CallClient, ProtobufCall, TwilioCall, speech_pcm
from tests.voice.conftest import PROMPT, XAI_KEY, StartRunner, VoiceRunner

pytestmark = pytest.mark.timeout(60)


def requests(fake: FakeOpenAI, path: str) -> list:
    return [r for r in fake.requests if r.path == f"/v1/{path}"]


async def wait_until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def client(kind: str, runner: VoiceRunner) -> CallClient:
    if kind == "protobuf":
        return ProtobufCall(f"{runner.ws_url}/v1/calls/protobuf", 16_000)
    return TwilioCall(f"{runner.ws_url}/v1/calls/twilio", 8000)


@pytest.mark.parametrize("kind", ["protobuf", "twilio"])
async def test_call_transcript_to_grok_to_tts_audio(
    kind: str, fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    async with client(kind, runner) as call:
        await wait_until(lambda: runner.state.sessions.active_by_kind()["call"] == 1)
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
