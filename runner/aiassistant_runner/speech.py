"""STT and TTS factories: a Pipecat service from the assistant's `stt`/`tts` config and its key env var.

The types served are exactly those of `aiassistant_contract.speech` (the list the operator validates against);
each has one builder here, and a test keeps the two in step. Keys come only from the provider's env
var (e.g. DEEPGRAM_API_KEY); a missing key is an error naming the variable, never a value.
A `baseURL` override points a provider at a gateway or, in tests, at a loopback fake: the API base
for OpenAI (`http[s]://host/v1`), the host for the WebSocket providers (`ws[s]://host[:port]`;
Deepgram, ElevenLabs, Cartesia; a Cartesia URL with a path is used as is).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiassistant_contract.errors import require_env
from aiassistant_contract.runner_config import STTConfig, TTSConfig
from aiassistant_contract.speech import (
    STT_PROVIDERS,
    TTS_PROVIDERS,
    SpeechProvider,
    stt_provider,
    tts_provider,
)

if TYPE_CHECKING:
    from pipecat.services.stt_service import STTService
    from pipecat.services.tts_service import TTSService

# OpenAI's speech endpoint answers 24 kHz PCM whatever the pipeline's rate; the service must label
# its frames with that rate (the output transport resamples to the call's rate).
OPENAI_TTS_SAMPLE_RATE = 24_000
CARTESIA_TTS_PATH = "/tts/websocket"


def create_stt(config: STTConfig, environ: Mapping[str, str] | None = None) -> STTService:
    """The STT service for `config` (type checked against the registry)."""
    provider = stt_provider(config.type)
    return _STT_BUILDERS[provider.name](config, _key(provider, "stt", environ))


def create_tts(config: TTSConfig, environ: Mapping[str, str] | None = None) -> TTSService:
    """The TTS service for `config` (type checked against the registry)."""
    provider = tts_provider(config.type)
    return _TTS_BUILDERS[provider.name](config, _key(provider, "tts", environ), provider)


def _key(provider: SpeechProvider, field: str, environ: Mapping[str, str] | None) -> str:
    why = f"the {field} type {provider.name} reads its API key from this env var"
    return require_env(os.environ if environ is None else environ, provider.key_env, why)


def _language(value: str) -> Any:
    """Pipecat's Language for a BCP-47 tag; an unknown tag passes through as the provider's own code."""
    from pipecat.transcriptions.language import Language

    try:
        return Language(value)
    except ValueError:
        return value


def _given(**values: Any) -> dict[str, Any]:
    # Pipecat's Settings treat every field passed (even None) as an override: pass only what is set.
    return {k: v for k, v in values.items() if v is not None}


# -- STT ------------------------------------------------------------------------------------------
def _deepgram_stt(config: STTConfig, key: str) -> STTService:
    from pipecat.services.deepgram.stt import DeepgramSTTService

    settings = DeepgramSTTService.Settings(**_given(model=config.model, language=_language(config.language)))
    return DeepgramSTTService(api_key=key, base_url=config.base_url or "", settings=settings)


def _openai_stt(config: STTConfig, key: str) -> STTService:
    from pipecat.services.openai.stt import OpenAISTTService

    settings = OpenAISTTService.Settings(**_given(model=config.model, language=_language(config.language)))
    return OpenAISTTService(api_key=key, base_url=config.base_url, settings=settings)


# -- TTS ------------------------------------------------------------------------------------------
def _tts_settings(settings_class: Any, config: TTSConfig, provider: SpeechProvider) -> Any:
    return settings_class(
        **_given(
            model=config.model,
            voice=config.voice_id or provider.default_voice,
            language=_language(config.language),
        )
    )


def _elevenlabs_tts(config: TTSConfig, key: str, provider: SpeechProvider) -> TTSService:
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

    settings = _tts_settings(ElevenLabsTTSService.Settings, config, provider)
    if config.base_url:
        return ElevenLabsTTSService(api_key=key, url=config.base_url, settings=settings)
    return ElevenLabsTTSService(api_key=key, settings=settings)


def _cartesia_tts(config: TTSConfig, key: str, provider: SpeechProvider) -> TTSService:
    from pipecat.services.cartesia.tts import CartesiaTTSService

    settings = _tts_settings(CartesiaTTSService.Settings, config, provider)
    if config.base_url:
        # Like the other WebSocket providers, a bare ws[s]://host[:port] names the service's host.
        url = config.base_url
        if not urlsplit(url).path.strip("/"):
            url = url.rstrip("/") + CARTESIA_TTS_PATH
        return CartesiaTTSService(api_key=key, url=url, settings=settings)
    return CartesiaTTSService(api_key=key, settings=settings)


def _openai_tts(config: TTSConfig, key: str, provider: SpeechProvider) -> TTSService:
    from pipecat.services.openai.tts import OpenAITTSService

    # OpenAI's speech API takes no language (the voice reads the text's language).
    settings = OpenAITTSService.Settings(
        **_given(model=config.model, voice=config.voice_id or provider.default_voice)
    )
    return OpenAITTSService(
        api_key=key, base_url=config.base_url, sample_rate=OPENAI_TTS_SAMPLE_RATE, settings=settings
    )


_STT_BUILDERS: dict[str, Callable[[STTConfig, str], STTService]] = {
    "deepgram": _deepgram_stt,
    "openai": _openai_stt,
}
_TTS_BUILDERS: dict[str, Callable[[TTSConfig, str, SpeechProvider], TTSService]] = {
    "elevenlabs": _elevenlabs_tts,
    "cartesia": _cartesia_tts,
    "openai": _openai_tts,
}
# The registry and the builders name the same types: the operator accepts nothing the runner lacks.
assert set(_STT_BUILDERS) == set(STT_PROVIDERS), "speech.py and the contract disagree on STT"
assert set(_TTS_BUILDERS) == set(TTS_PROVIDERS), "speech.py and the contract disagree on TTS"
