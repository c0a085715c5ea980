"""Which STT and TTS types the runner serves, and how it builds each one's Pipecat service: ONE
table, read by the runner's factory (runner/aiassistant_runner/speech.py, which has no table of its
own) and by the operator's validation, so a type the runner cannot serve is rejected at apply time.
Pure Python: no Pipecat import here.
"""

from __future__ import annotations

from dataclasses import dataclass

XAI_KEY_ENV = "XAI_API_KEY"  # the grok engine's key env var too (engines.py): one key for all of xAI
# xAI's voices, for its TTS and its realtime (speech-to-speech) API alike.
XAI_VOICES = ("ara", "eve", "leo", "rex", "sal")
# xAI's speech-to-speech models (wss://api.x.ai/v1/realtime, docs.x.ai "Voice": Create client secret).
REALTIME_MODELS = ("grok-voice-think-fast-1.0", "grok-voice-fast-1.0", "grok-voice-latest")


class SpeechTypeError(ValueError):
    """An STT/TTS type the runner cannot serve; the message is safe for status and Events."""


@dataclass(frozen=True)
class SpeechProvider:
    name: str
    service: str  # Pipecat service class, "module:Class" (the runner imports it lazily)
    key_env: str  # env var holding the API key inside the runner pod
    # Voice used when the spec names none (TTS only): a stock voice of the provider, so an
    # assistant without `voiceId` still speaks instead of failing on every call.
    default_voice: str | None = None
    # How the service takes a `baseURL` override: its keyword argument, and the path appended to an
    # override without one (a bare ws[s]://host[:port] names the service's host).
    url_argument: str = "base_url"
    url_path: str = ""
    # The audio rate the provider's API answers with whatever the pipeline's rate (the service must
    # label its frames with it; the output transport resamples); None: the pipeline's rate.
    sample_rate: int | None = None
    takes_language: bool = True  # False: the service's settings take no language
    # The provider's closed set of voices (TTS only; lowercase, matched case-insensitively); empty:
    # any voice id the provider's account may hold (cloned voices, ids).
    voices: tuple[str, ...] = ()
    # The service takes an OpenAI SDK `http_client`: the runner passes one on its shared TLS context
    # (runner/aiassistant_runner/http_clients.py) instead of letting each call build its own.
    http_client: bool = False


STT_PROVIDERS: dict[str, SpeechProvider] = {
    p.name: p
    for p in (
        SpeechProvider("deepgram", "pipecat.services.deepgram.stt:DeepgramSTTService", "DEEPGRAM_API_KEY"),
        SpeechProvider(
            "openai", "pipecat.services.openai.stt:OpenAISTTService", "OPENAI_API_KEY", http_client=True
        ),
        # xAI's streaming STT (wss://api.x.ai/v1/stt), keyed like the grok engine: one XAI_API_KEY.
        SpeechProvider(
            "xai",
            "pipecat.services.xai.stt:XAISTTService",
            XAI_KEY_ENV,
            url_argument="ws_url",
            url_path="/v1/stt",
        ),
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
            url_argument="url",
        ),
        SpeechProvider(
            "cartesia",
            "pipecat.services.cartesia.tts:CartesiaTTSService",
            "CARTESIA_API_KEY",
            default_voice="71a7ad14-091c-4e8e-a314-022ece01c121",  # Pipecat's example voice
            url_argument="url",
            url_path="/tts/websocket",  # a Cartesia URL with a path is used as is
        ),
        SpeechProvider(
            "openai",
            "pipecat.services.openai.tts:OpenAITTSService",
            "OPENAI_API_KEY",
            default_voice="alloy",
            sample_rate=24_000,  # OpenAI's speech endpoint answers 24 kHz PCM
            takes_language=False,  # the voice reads the text's language
            http_client=True,
        ),
        # xAI's streaming TTS (wss://api.x.ai/v1/tts); its five voices (docs.x.ai, "Voices").
        SpeechProvider(
            "xai",
            "pipecat.services.xai.tts:XAITTSService",
            XAI_KEY_ENV,
            default_voice="eve",
            url_path="/v1/tts",
            voices=XAI_VOICES,
        ),
    )
}


def _lookup(kind: str, providers: dict[str, SpeechProvider], name: str) -> SpeechProvider:
    try:
        return providers[name.strip().lower()]
    except KeyError:
        supported = ", ".join(sorted(providers))
        raise SpeechTypeError(f"Unsupported {kind} type: {name} (supported: {supported})") from None


def voice_error(provider: SpeechProvider, voice: str | None) -> str | None:
    """Why `voice` is not one of the provider's voices (None: it is, or the provider has no closed set)."""
    if voice is None or not provider.voices or voice.strip().lower() in provider.voices:
        return None
    return f"{voice!r} is not a {provider.name} voice (supported: {', '.join(provider.voices)})"


def stt_provider(name: str) -> SpeechProvider:
    return _lookup("STT", STT_PROVIDERS, name)


def tts_provider(name: str) -> SpeechProvider:
    return _lookup("TTS", TTS_PROVIDERS, name)
