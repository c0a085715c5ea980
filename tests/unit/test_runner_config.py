"""RunnerConfig: the operator -> runner contract (camelCase JSON, no secrets, clear errors)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from aiassistant_contract.runner_config import RunnerConfig


def _config(**overrides: object) -> dict[str, object]:
    return {"engineModel": "grok.grok-3", **overrides}


def _error_text(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as err:
        RunnerConfig.model_validate(data)
    return str(err.value)


def test_round_trip_is_camel_case_and_lossless() -> None:
    data = _config(
        baseURL="http://127.0.0.1:9/v1",
        initPrompt="Be brief.",
        parameters={"company": "ACME"},
        stt={"type": "deepgram", "language": "de-DE"},
        tts={"type": "elevenlabs", "voiceId": "EXAVITQu4vr4xnSDxMaL"},
        vad={"stopSecs": 0.5},
        tools=[{"name": "lookup_order", "url": "https://tools.example/order", "timeoutSeconds": 3}],
        transport={"serializers": ["protobuf", "twilio"]},
        maxSessionsPerPod=7,
    )
    config = RunnerConfig.model_validate(data)
    dumped = json.loads(config.to_json())
    assert dumped["baseURL"] == "http://127.0.0.1:9/v1"
    assert dumped["tts"]["voiceId"] == "EXAVITQu4vr4xnSDxMaL"
    assert dumped["vad"]["stopSecs"] == 0.5
    assert dumped["tools"][0]["timeoutSeconds"] == 3
    assert RunnerConfig.model_validate(dumped) == config


def test_defaults_are_pipecat_vad_defaults_and_protobuf() -> None:
    config = RunnerConfig.model_validate(_config())
    assert (config.vad.confidence, config.vad.start_secs, config.vad.stop_secs, config.vad.min_volume) == (
        0.7,
        0.2,
        0.2,
        0.6,
    )
    assert config.transport.serializers == ["protobuf"]
    assert config.stt is None and config.tts is None


def test_system_instruction_appends_parameters_sorted() -> None:
    config = RunnerConfig.model_validate(_config(initPrompt="Hi.", parameters={"b": "2", "a": "1"}))
    assert config.system_instruction() == "Hi.\n\na: 1\nb: 2"
    assert RunnerConfig.model_validate(_config(initPrompt="Hi.")).system_instruction() == "Hi."


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_config(engineModel="anthropic.claude-3"), "Unsupported LLM service: anthropic"),
        (_config(engineModel="grok3"), "Wrong LLM format"),
        (_config(engineModel="grok.grok-99"), "Unknown model 'grok-99'"),
        (_config(stt={"type": "whisperx"}), "Unsupported STT type: whisperx"),
        (
            _config(tts={"type": "polly"}),
            "Unsupported TTS type: polly (supported: cartesia, elevenlabs, openai, xai)",
        ),
        (_config(tools=[{"name": "bad name", "url": "http://x"}]), "tools.0.name"),
        (_config(tools=[{"name": "end_call", "url": "http://x"}]), "reserved for a built-in tool"),
        (_config(tools=[{"name": "t", "url": "ftp://x"}]), "tools.0.url"),
        (_config(tools=[{"name": "t", "url": "http://x", "parameters": {"type": "array"}}]), "type: object"),
        (
            _config(tools=[{"name": "t", "url": "http://x"}, {"name": "t", "url": "http://y"}]),
            "repeated: t",
        ),
        (_config(transport={"serializers": ["vonage"]}), "transport.serializers.0"),
        (_config(vad={"confidence": 2}), "vad.confidence"),
        (_config(maxSessionsPerPod=0), "maxSessionsPerPod"),
        (_config(engineModell="grok.grok-3"), "engineModell"),
    ],
)
def test_bad_input_names_the_field_and_what_is_accepted(data: dict[str, object], words: str) -> None:
    assert words in _error_text(data)


def test_unlisted_model_needs_the_operators_permission() -> None:
    assert "Unknown model" in _error_text(_config(engineModel="grok.grok-5"))
    config = RunnerConfig.model_validate(_config(engineModel="grok.grok-5", allowUnlistedModels=True))
    assert str(config.engine()) == "grok.grok-5"
    # Even with permission, a target nothing can serve is refused.
    assert "Unsupported LLM service" in _error_text(
        _config(engineModel="anthropic.claude-3", allowUnlistedModels=True)
    )


def test_config_carries_no_key_fields() -> None:
    fields = set(RunnerConfig.model_json_schema(by_alias=True)["properties"])
    assert not {f for f in fields if "key" in f.lower() or "secret" in f.lower()}
