"""The STT/TTS factories: every registered type builds the Pipecat service the contract's table names,
from its key env var; a missing key names the variable (never a value), an unknown type lists the
supported ones."""

from __future__ import annotations

import importlib

import pytest

from aiassistant_contract.errors import MissingKeyError
from aiassistant_contract.runner_config import RunnerConfig, STTConfig, TTSConfig
from aiassistant_contract.speech import (
    STT_PROVIDERS,
    TTS_PROVIDERS,
    SpeechProvider,
    SpeechTypeError,
    stt_provider,
    tts_provider,
)
from aiassistant_runner import speech

KEYS = {
    "DEEPGRAM_API_KEY": "dg-key-0a1b2c3d4e",
    "OPENAI_API_KEY": "sk-key-5f6a7b8c9d",
    "ELEVENLABS_API_KEY": "el-key-1e2f3a4b5c",
    "CARTESIA_API_KEY": "ca-key-6d7e8f9a0b",
    "XAI_API_KEY": "xai-key-2b3c4d5e6f",
}


def service_class(provider: SpeechProvider) -> type:
    module, name = provider.service.split(":")
    return getattr(importlib.import_module(module), name)


def api_key_of(service: object) -> str:
    """The key a built service will send: its SDK client's (OpenAI, Deepgram), else its own."""
    client = getattr(service, "_client", None)
    if client is not None and hasattr(client, "api_key"):
        return str(client.api_key)
    if client is not None and hasattr(client, "_client_wrapper"):  # Deepgram's SDK
        return str(client._client_wrapper.api_key)
    return str(service._api_key)  # type: ignore[attr-defined]


def test_the_registry_serves_these_types() -> None:
    assert set(STT_PROVIDERS) == {"deepgram", "openai", "xai"}
    assert set(TTS_PROVIDERS) == {"elevenlabs", "cartesia", "openai", "xai"}


@pytest.mark.parametrize("name", sorted(STT_PROVIDERS))
def test_every_stt_type_builds_with_its_key(name: str) -> None:
    provider = STT_PROVIDERS[name]
    service = speech.create_stt(STTConfig(type=name, language="en-US"), KEYS)
    assert type(service) is service_class(provider)
    assert api_key_of(service) == KEYS[provider.key_env]


@pytest.mark.parametrize("name", sorted(TTS_PROVIDERS))
def test_every_tts_type_builds_with_its_key_and_a_voice(name: str) -> None:
    provider = TTS_PROVIDERS[name]
    service = speech.create_tts(TTSConfig(type=name), KEYS)
    assert type(service) is service_class(provider)
    assert api_key_of(service) == KEYS[provider.key_env]
    assert service._settings.voice == provider.default_voice  # type: ignore[attr-defined]
    voice = provider.voices[-1] if provider.voices else "my-voice"  # xai: a closed set of voices
    chosen = speech.create_tts(TTSConfig(type=name, voiceId=voice, model="my-model"), KEYS)
    assert (chosen._settings.voice, chosen._settings.model) == (voice, "my-model")  # type: ignore[attr-defined]


def test_openai_speech_takes_the_base_url_and_model() -> None:
    stt = speech.create_stt(
        STTConfig(type="openai", baseURL="http://127.0.0.1:9/v1", model="whisper-1"), KEYS
    )
    assert str(stt._client.base_url) == "http://127.0.0.1:9/v1/"  # type: ignore[attr-defined]
    assert stt._settings.model == "whisper-1"  # type: ignore[attr-defined]
    tts = speech.create_tts(TTSConfig(type="openai", baseURL="http://127.0.0.1:9/v1"), KEYS)
    assert str(tts._client.base_url) == "http://127.0.0.1:9/v1/"  # type: ignore[attr-defined]
    # OpenAI speech is 24 kHz PCM whatever the call's rate; the frames must say so.
    assert tts._init_sample_rate == TTS_PROVIDERS["openai"].sample_rate == 24_000  # type: ignore[attr-defined]


def test_websocket_providers_take_the_base_url() -> None:
    tts = speech.create_tts(TTSConfig(type="elevenlabs", baseURL="ws://127.0.0.1:9"), KEYS)
    assert tts._url == "ws://127.0.0.1:9"  # type: ignore[attr-defined]
    tts = speech.create_tts(TTSConfig(type="cartesia", baseURL="ws://127.0.0.1:9"), KEYS)
    assert tts._url == "ws://127.0.0.1:9/tts/websocket"  # type: ignore[attr-defined]
    tts = speech.create_tts(TTSConfig(type="cartesia", baseURL="wss://gw.example/cartesia/ws"), KEYS)
    assert tts._url == "wss://gw.example/cartesia/ws"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "name"),
    [("stt", n) for n in sorted(STT_PROVIDERS)] + [("tts", n) for n in sorted(TTS_PROVIDERS)],
)
def test_missing_key_names_the_env_var_not_a_value(kind: str, name: str) -> None:
    provider = (STT_PROVIDERS if kind == "stt" else TTS_PROVIDERS)[name]
    others = {k: v for k, v in KEYS.items() if k != provider.key_env}
    with pytest.raises(MissingKeyError) as err:
        if kind == "stt":
            speech.create_stt(STTConfig(type=name), others)
        else:
            speech.create_tts(TTSConfig(type=name), others)
    message = str(err.value)
    assert provider.key_env in message and name in message
    assert not any(value in message for value in KEYS.values())


def test_unsupported_types_list_the_supported_ones() -> None:
    with pytest.raises(
        SpeechTypeError, match=r"Unsupported STT type: whisperx \(supported: deepgram, openai, xai\)"
    ):
        stt_provider("whisperx")
    with pytest.raises(
        SpeechTypeError, match=r"Unsupported TTS type: azure \(supported: cartesia, elevenlabs, openai, xai\)"
    ):
        tts_provider("azure")
    # The config (what the operator writes and validates) refuses them with the field named.
    with pytest.raises(ValueError, match=r"tts\.type[\s\S]*Unsupported TTS type: azure"):
        RunnerConfig.model_validate({"engineModel": "grok.grok-3", "tts": {"type": "azure"}})


def test_types_are_case_insensitive() -> None:
    assert STTConfig(type="OpenAI").type == "openai"
    assert type(speech.create_tts(TTSConfig(type="ElevenLabs"), KEYS)).__name__ == "ElevenLabsTTSService"


def test_the_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-from-environ-1234")
    assert api_key_of(speech.create_stt(STTConfig(type="deepgram"))) == "dg-from-environ-1234"
