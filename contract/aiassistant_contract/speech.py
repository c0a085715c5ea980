"""Which STT and TTS types the runner serves: one list, used by the runner's factories
(aiassistant_runner.speech) and by the operator's validation, so a type the runner cannot serve is
rejected at apply time. Pure Python: no Pipecat import here.
"""

from __future__ import annotations

from dataclasses import dataclass


class SpeechTypeError(ValueError):
    """An STT/TTS type the runner cannot serve; the message is safe for status and Events."""


@dataclass(frozen=True)
class SpeechProvider:
    name: str
    service: str  # Pipecat service class, "module:Class" (imported lazily by the runner's speech.py)
    key_env: str  # env var holding the API key inside the runner pod
    # Voice used when the spec names none (TTS only): a stock voice of the provider, so an
    # assistant without `voiceId` still speaks instead of failing on every call.
    default_voice: str | None = None


STT_PROVIDERS: dict[str, SpeechProvider] = {
    p.name: p
    for p in (
        SpeechProvider("deepgram", "pipecat.services.deepgram.stt:DeepgramSTTService", "DEEPGRAM_API_KEY"),
        SpeechProvider("openai", "pipecat.services.openai.stt:OpenAISTTService", "OPENAI_API_KEY"),
    )
}

TTS_PROVIDERS: dict[str, SpeechProvider] = {
    p.name: p
    for p in (
        SpeechProvider(
            "elevenlabs",
            "pipecat.services.elevenlabs.tts:ElevenLabsTTSService",
            "ELEVENLABS_API_KEY",
            default_voice="EXAVITQu4vr4xnSDxMaL",  # "Sarah", a premade voice
        ),
        SpeechProvider(
            "cartesia",
            "pipecat.services.cartesia.tts:CartesiaTTSService",
            "CARTESIA_API_KEY",
            default_voice="71a7ad14-091c-4e8e-a314-022ece01c121",  # Pipecat's example voice
        ),
        SpeechProvider(
            "openai", "pipecat.services.openai.tts:OpenAITTSService", "OPENAI_API_KEY", default_voice="alloy"
        ),
    )
}


def _lookup(kind: str, providers: dict[str, SpeechProvider], name: str) -> SpeechProvider:
    try:
        return providers[name.strip().lower()]
    except KeyError:
        supported = ", ".join(sorted(providers))
        raise SpeechTypeError(f"Unsupported {kind} type: {name} (supported: {supported})") from None


def stt_provider(name: str) -> SpeechProvider:
    return _lookup("STT", STT_PROVIDERS, name)


def tts_provider(name: str) -> SpeechProvider:
    return _lookup("TTS", TTS_PROVIDERS, name)
