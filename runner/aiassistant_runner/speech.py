"""STT and TTS factories: a Pipecat service from the assistant's `stt`/`tts` config and its key env var.

Every type is built from its row in the contract's speech table (aiassistant_contract.speech, the
list the operator validates against): the Pipecat service class it names, its key env var, its
default voice, how it takes a `baseURL` override and its fixed audio rate. There is no second table
here, so the operator cannot accept a type this module cannot build. Keys come only from the
provider's env var (e.g. DEEPGRAM_API_KEY); a missing key is an error naming the variable, never a value.
A `baseURL` override points a provider at a gateway or, in tests, at a loopback fake: the API base
for OpenAI (`http[s]://host/v1`), the host for the WebSocket providers (`ws[s]://host[:port]`;
Deepgram, ElevenLabs, Cartesia; a Cartesia URL with a path is used as is).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiassistant_contract.errors import require_env
from aiassistant_contract.runner_config import STTConfig, TTSConfig
from aiassistant_contract.speech import SpeechProvider, stt_provider, tts_provider

from .http_clients import call_http_client

if TYPE_CHECKING:
    from pipecat.services.stt_service import STTService
    from pipecat.services.tts_service import TTSService


def create_stt(config: STTConfig, environ: Mapping[str, str] | None = None) -> STTService:
    """The STT service for `config` (type checked against the registry)."""
    provider = stt_provider(config.type)
    service: STTService = _build(provider, config, _key(provider, "stt", environ))
    return service


def create_tts(config: TTSConfig, environ: Mapping[str, str] | None = None) -> TTSService:
    """The TTS service for `config` (type checked against the registry); the provider's stock voice
    when the config names none."""
    provider = tts_provider(config.type)
    voice = config.voice_id or provider.default_voice
    service: TTSService = _build(provider, config, _key(provider, "tts", environ), voice=voice)
    return service


def _key(provider: SpeechProvider, field: str, environ: Mapping[str, str] | None) -> str:
    why = f"the {field} type {provider.name} reads its API key from this env var"
    return require_env(os.environ if environ is None else environ, provider.key_env, why)


def _build(provider: SpeechProvider, config: STTConfig | TTSConfig, key: str, **settings: Any) -> Any:
    """`provider`'s Pipecat service: its Settings get the model, language and `settings` that are set
    (Pipecat treats every field passed, even None, as an override); the constructor the key, the
    `baseURL` override under the provider's keyword, the provider's fixed audio rate, and for the
    OpenAI SDK services an HTTP client on the shared TLS context (http_clients.py)."""
    module, _, name = provider.service.partition(":")
    service_class = getattr(importlib.import_module(module), name)
    if provider.takes_language:
        settings["language"] = _language(config.language)
    values = {"model": config.model, **settings}
    arguments: dict[str, Any] = {
        "api_key": key,
        "settings": service_class.Settings(**{k: v for k, v in values.items() if v is not None}),
    }
    if config.base_url:
        url = config.base_url
        if provider.url_path and not urlsplit(url).path.strip("/"):
            url = url.rstrip("/") + provider.url_path
        arguments[provider.url_argument] = url
    if provider.sample_rate is not None:
        arguments["sample_rate"] = provider.sample_rate
    if provider.http_client:
        arguments["http_client"] = call_http_client()
    return service_class(**arguments)


def _language(value: str) -> Any:
    """Pipecat's Language for a BCP-47 tag; an unknown tag passes through as the provider's own code."""
    from pipecat.transcriptions.language import Language

    try:
        return Language(value)
    except ValueError:
        return value
