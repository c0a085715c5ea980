"""Calls through the WebSocket speech providers (Deepgram STT, ElevenLabs and Cartesia TTS) against
loopback fakes of their protocols: the key travels in each provider's own header, the caller's
audio reaches Deepgram, its transcript reaches the LLM, and the provider's audio comes back; with
Cartesia's word timestamps a telephony call gets a mark per word, and an interrupted answer is
remembered as far as the words the caller heard."""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.voice.clients import ProtobufCall, TwilioCall, speech_pcm
from tests.voice.conftest import StartRunner, voice_config, wait_until
from tests.voice.speech_fakes import FakeSpeechProviders

pytestmark = pytest.mark.timeout(60)

KEYS = {
    "DEEPGRAM_API_KEY": "dg-voice-key-51ab",
    "ELEVENLABS_API_KEY": "el-voice-key-62cd",
    "CARTESIA_API_KEY": "ca-voice-key-73ef",
}


@pytest.mark.parametrize(("kind", "tts"), [("protobuf", "elevenlabs"), ("twilio", "cartesia")])
async def test_deepgram_and_websocket_tts_call(
    kind: str, tts: str, fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    async with FakeSpeechProviders() as providers:
        config = voice_config(
            fake,
            stt={"type": "deepgram", "baseURL": providers.ws_url, "language": "en-US"},
            tts={"type": tts, "baseURL": providers.ws_url, "voiceId": "voice-1"},
        )
        runner = await start_runner(config, environ=KEYS)
        rate = 16_000 if kind == "protobuf" else 8000
        call_class = ProtobufCall if kind == "protobuf" else TwilioCall
        async with call_class(f"{runner.ws_url}/v1/calls/{kind}", rate) as call:
            await call.speak(speech_pcm(rate), silence=0.4)
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38, timeout=15)
        # The call's end closes the provider sockets; the providers stay up until it has.
        await wait_until(lambda: runner.state.sessions.active == 0, timeout=5)

        (stt,) = providers.connections_to("/v1/listen")
        assert stt.headers["Authorization"] == f"Token {KEYS['DEEPGRAM_API_KEY']}"
        assert stt.query["sample_rate"] == str(rate) and stt.query["encoding"] == "linear16"
        assert stt.query["language"] == "en-US"
        assert stt.audio_bytes > rate  # more than half a second of 16-bit audio
        assert {"type": "Finalize"} in stt.messages
        (chat,) = fake.chat_requests()
        assert chat.body["messages"][-1] == {"role": "user", "content": providers.transcript}

        if tts == "elevenlabs":
            (speech,) = providers.connections_to("/v1/text-to-speech/voice-1/")
            assert speech.headers["xi-api-key"] == KEYS["ELEVENLABS_API_KEY"]
            spoken = "".join(m.get("text", "") for m in speech.messages)
        else:
            (speech,) = providers.connections_to("/tts/websocket")
            assert speech.headers["X-API-Key"] == KEYS["CARTESIA_API_KEY"]
            assert {m["voice"]["id"] for m in speech.messages if "voice" in m} == {"voice-1"}
            spoken = "".join(m.get("transcript", "") for m in speech.messages)
        assert spoken.split() == fake.default_text.split()


WORDS = "One two three four five six seven eight."


async def test_word_timestamps_give_a_mark_per_word_and_an_interruption_keeps_the_words_heard(
    fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    # Cartesia streams each word's audio with its timestamps; a mark follows each word. The caller
    # (0.5 s a word, behind a 1 s jitter buffer) talks once two words have been heard.
    async with FakeSpeechProviders(speech_ms=4000) as providers:
        config = voice_config(fake, tts={"type": "cartesia", "baseURL": providers.ws_url})
        runner = await start_runner(config, environ=KEYS)
        fake.script(Reply(text=WORDS), Reply(text="Anything else?"))
        async with TwilioCall(f"{runner.ws_url}/v1/calls/twilio", 8000, latency=1.0) as call:
            await call.speak(speech_pcm(8000), silence=0.4)
            await call.wait_for(lambda c: len([n for _, n in c.echoed]) >= 2, timeout=15)
            providers.speech_ms = 300
            await call.speak(speech_pcm(8000))
            await wait_until(lambda: len(fake.chat_requests()) == 2)
            answered = call.piece_marks()[0].at
            clear = next(r.at for r in call.received if r.kind == "clear" and r.at > answered)
        names = [call.mark_name(m.raw) for m in call.piece_marks()]
        sent = [name for name in names if name.startswith("utterance-1.")]
        assert sent == [f"utterance-1.{k}" for k in range(1, len(sent) + 1)]  # a mark per word spoken
        heard_before_clear = len([n for at, n in call.echoed if at < clear and n.startswith("utterance-1.")])
        remembered = [
            m["content"] for m in fake.chat_requests()[1].body["messages"] if m["role"] == "assistant"
        ]
        words = WORDS.split()
        # What the runner counts as heard is what was echoed before it sent the clear (an echo on
        # the wire meanwhile may miss it): the answer is cut after those words.
        assert 2 <= heard_before_clear <= len(sent) < len(words)
        assert remembered in (
            [" ".join(words[:heard_before_clear])],
            [" ".join(words[: heard_before_clear - 1])],
        ), (remembered, heard_before_clear)
