"""AIAssistantSpec: validation with the contract's registries, field-named errors, the shared-key rule,
and the 1:1 mapping onto RunnerConfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiassistant_contract.assistant import (
    OPERATOR_ONLY_FIELDS,
    AIAssistantSpec,
    parse_spec,
    to_runner_config,
)
from aiassistant_contract.engines import BUILTIN
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.__main__ import config_from_assistant

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FULL = {
    "engineModel": "grok.grok-3",
    "secretRef": {"name": "xai-key", "key": "api-key"},
    "baseURL": "http://127.0.0.1:9/v1",
    "initPrompt": "Be brief.",
    "parameters": {"company": "ACME"},
    "greeting": "Hello!",
    "stt": {"type": "deepgram", "language": "de-DE", "secretRef": {"name": "dg", "key": "k"}},
    "tts": {"type": "elevenlabs", "voiceId": "EXAVITQu4vr4xnSDxMaL", "secretRef": {"name": "el", "key": "k"}},
    "vad": {"confidence": 0.5, "startSecs": 0.1, "stopSecs": 0.4, "minVolume": 0.3},
    "smartTurn": True,
    "tools": [
        {
            "name": "lookup_order",
            "description": "Find an order.",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            "url": "https://tools.example/order",
            "timeoutSeconds": 3,
        }
    ],
    "transport": {"serializers": ["protobuf", "twilio"]},
    "replicas": 3,
    "maxSessionsPerPod": 7,
    "maxCallSeconds": 600,
    "taskTimeoutSeconds": 12.5,
    "resources": {"limits": {"memory": "2Gi", "cpu": 2}, "requests": {"cpu": "500m"}},
    "image": "registry.example/runner:1.2.3",
}


def error_of(spec: Any, registry: Any = BUILTIN) -> str:
    with pytest.raises(SpecError) as err:
        parse_spec(spec, registry)
    return str(err.value)


def test_full_spec_parses_and_maps_onto_the_runner_config() -> None:
    spec = parse_spec(FULL, BUILTIN)
    config = to_runner_config("bot", "bots", spec, BUILTIN)
    dumped = json.loads(config.to_json())
    assert dumped["name"] == "bot" and dumped["namespace"] == "bots"
    for field in ("engineModel", "baseURL", "initPrompt", "parameters", "greeting", "vad", "smartTurn"):
        assert dumped[field] == FULL[field], field
    assert dumped["tools"] == FULL["tools"]
    assert dumped["transport"] == FULL["transport"]
    assert (dumped["maxSessionsPerPod"], dumped["maxCallSeconds"], dumped["taskTimeoutSeconds"]) == (
        7,
        600,
        12.5,
    )
    assert dumped["stt"] == {"type": "deepgram", "language": "de-DE"}
    assert dumped["tts"] == {"type": "elevenlabs", "voiceId": "EXAVITQu4vr4xnSDxMaL", "language": "en-US"}
    assert dumped["allowUnlistedModels"] is False


def test_runner_config_holds_no_key_reference_nor_workload_fields() -> None:
    text = to_runner_config("bot", "bots", parse_spec(FULL, BUILTIN), BUILTIN).to_json()
    for word in ("secretRef", "xai-key", "replicas", "resources", "image", "registry.example"):
        assert word not in text


def test_minimal_spec_gets_the_runner_defaults() -> None:
    spec = parse_spec({"engineModel": "grok.grok-3"}, BUILTIN)
    assert spec.replicas == 1 and spec.secret_ref is None and spec.resources is None and spec.image is None
    assert to_runner_config("a", "b", spec, BUILTIN) == RunnerConfig(
        name="a", namespace="b", engine_model="grok.grok-3"
    )


def test_spec_ai_fields_are_exactly_the_runner_fields() -> None:
    """1:1: every spec field but the operator's own is a RunnerConfig field with the same JSON key,
    type and bounds (the runner's own definition is reused)."""
    runner = {f.alias or n: n for n, f in RunnerConfig.model_fields.items()}
    spec = {f.alias or n: n for n, f in AIAssistantSpec.model_fields.items() if n not in OPERATOR_ONLY_FIELDS}
    assert set(spec) == set(runner) - {
        "name",
        "namespace",
        "allowUnlistedModels",
        "price",
        "allowedHttpHosts",
    }
    runner_schema = RunnerConfig.model_json_schema(by_alias=True)["properties"]
    spec_schema = AIAssistantSpec.model_json_schema(by_alias=True)["properties"]
    for key in ("maxSessionsPerPod", "maxCallSeconds", "taskTimeoutSeconds", "smartTurn", "parameters"):
        strip = lambda s: {k: v for k, v in s.items() if k not in ("description", "title")}  # noqa: E731
        assert strip(spec_schema[key]) == strip(runner_schema[key]), key


RUNNABLE_EXAMPLES = sorted(p for p in EXAMPLES.glob("*-assistant.yaml") if p.name != "invalid-assistant.yaml")


@pytest.mark.parametrize("path", RUNNABLE_EXAMPLES, ids=lambda p: p.name)
def test_operator_and_runner_read_an_assistant_alike(path: Path) -> None:
    """The runner's own `--assistant CR.yaml` loader and the operator's rendering give one config."""
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if d.get("kind") == "AIAssistant")
    ours = to_runner_config(doc["metadata"]["name"], "default", parse_spec(doc["spec"], BUILTIN), BUILTIN)
    assert ours == config_from_assistant(doc)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"engineModel": "anthropic.claude-3"},
            "spec.engineModel: Unsupported LLM service: anthropic (supported: grok, openai)",
        ),
        ({"engineModel": "grok.grok-99"}, "spec.engineModel: Unknown model 'grok-99' for LLM service grok"),
        ({"engineModel": "nodot"}, "spec.engineModel: Wrong LLM format: 'nodot'"),
        ({}, "spec.engineModel: Field required"),
        ({"engineModel": "grok.grok-3", "engine": "x"}, "spec.engine: unknown field"),
        (
            {"engineModel": "grok.grok-3", "stt": {"type": "whisper"}},
            "spec.stt.type: Unsupported STT type: whisper",
        ),
        (
            {"engineModel": "grok.grok-3", "tts": {"type": "polly"}},
            "spec.tts.type: Unsupported TTS type: polly",
        ),
        (
            {"engineModel": "grok.grok-3", "tts": {"type": "openai", "voice": "x"}},
            "spec.tts.voice: unknown field",
        ),
        (
            {"engineModel": "grok.grok-3", "tools": [{"name": "t", "url": "ftp://x"}]},
            "spec.tools[0].url: String should match pattern",
        ),
        (
            {"engineModel": "grok.grok-3", "tools": [{"name": "end_call", "url": "https://x"}]},
            "spec.tools[0].name: tool name 'end_call' is reserved",
        ),
        (
            {"engineModel": "grok.grok-3", "replicas": -1},
            "spec.replicas: Input should be greater than or equal to 0",
        ),
        (
            {"engineModel": "grok.grok-3", "transport": {"serializers": ["smoke"]}},
            "spec.transport.serializers[0]: Input should be 'protobuf'",
        ),
        (
            {"engineModel": "grok.grok-3", "secretRef": {"name": "Bad_Name", "key": "k"}},
            "spec.secretRef.name: String should match pattern",
        ),
        (
            {"engineModel": "grok.grok-3", "resources": {"limits": {"memory": "lots"}}},
            "spec.resources.limits: memory: 'lots' is not a Kubernetes quantity",
        ),
        ("grok.grok-3", "spec: must be an object"),
        (None, "spec: must be an object"),
    ],
)
def test_errors_name_the_field(spec: Any, expected: str) -> None:
    assert error_of(spec).startswith(expected)


def test_several_errors_are_all_reported() -> None:
    message = error_of({"engineModel": "grok.grok-3", "replicas": -1, "smartTurn": "sometimes"})
    assert "spec.replicas:" in message and "spec.smartTurn:" in message


def test_extra_models_come_from_the_registry_passed_in() -> None:
    registry = BUILTIN.with_extra_models(["grok.grok-99"])
    assert "Unknown model" in error_of({"engineModel": "grok.grok-99"})
    spec = parse_spec({"engineModel": "grok.grok-99"}, registry)
    config = to_runner_config("a", "b", spec, registry)
    assert config.allow_unlisted_models is True
    assert config.engine(registry).model == "grok-99"
    # extending a registry cannot add a target nothing could serve
    assert "Unsupported LLM service" in error_of({"engineModel": "anthropic.claude-3"}, registry)


def test_speech_types_are_normalised_like_the_runner() -> None:
    spec = parse_spec({"engineModel": "grok.grok-3", "stt": {"type": "OpenAI"}}, BUILTIN)
    assert spec.stt is not None and spec.stt.type == "openai"


REF_A = {"name": "openai-a", "key": "api-key"}
REF_B = {"name": "openai-b", "key": "api-key"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {
                "engineModel": "openai.gpt-4o",
                "secretRef": REF_A,
                "tts": {"type": "openai", "secretRef": REF_B},
            },
            "tts",
        ),
        (
            {
                "engineModel": "openai.gpt-4o",
                "secretRef": REF_A,
                "stt": {"type": "openai", "secretRef": REF_B},
            },
            "stt",
        ),
        (
            {
                "engineModel": "grok.grok-3",
                "stt": {"type": "openai", "secretRef": REF_A},
                "tts": {"type": "openai", "secretRef": REF_B},
            },
            "tts",
        ),
    ],
)
def test_two_different_keys_for_one_env_var_are_rejected(spec: dict[str, Any], field: str) -> None:
    message = error_of(spec)
    assert message.startswith(f"spec.{field}.secretRef: OPENAI_API_KEY is already taken")
    assert "use the same Secret key or omit" in message


@pytest.mark.parametrize(
    "spec",
    [
        {"engineModel": "openai.gpt-4o", "secretRef": REF_A, "tts": {"type": "openai", "secretRef": REF_A}},
        {
            "engineModel": "openai.gpt-4o",
            "secretRef": REF_A,
            "tts": {"type": "openai"},
            "stt": {"type": "openai"},
        },
        {"engineModel": "grok.grok-3", "secretRef": REF_A, "tts": {"type": "openai", "secretRef": REF_B}},
    ],
)
def test_shared_or_distinct_env_vars_are_fine(spec: dict[str, Any]) -> None:
    parse_spec(spec, BUILTIN)


def test_error_messages_never_echo_a_key_value() -> None:
    # a key pasted where a Secret name belongs must not come back in status/Events
    message = error_of(
        {"engineModel": "grok.grok-3", "secretRef": {"name": "xai-SECRETVALUE123", "key": "k"}}
    )
    assert "spec.secretRef.name" in message
    assert "SECRETVALUE123" not in message


@pytest.mark.parametrize("voice", ["eve", "Ara", "rex", "sal", "leo"])
def test_xai_voices_are_accepted(voice: str) -> None:
    parse_spec({"engineModel": "grok.grok-4.3", "tts": {"type": "xai", "voiceId": voice}}, BUILTIN)


def test_an_unknown_xai_voice_names_the_field_and_the_voices() -> None:
    message = error_of({"engineModel": "grok.grok-4.3", "tts": {"type": "xai", "voiceId": "alloy"}})
    assert message == "spec.tts.voiceId: 'alloy' is not a xai voice (supported: ara, eve, leo, rex, sal)"


def test_xai_speech_shares_the_engine_key_and_rejects_another() -> None:
    parse_spec(
        {"engineModel": "grok.grok-4.3", "secretRef": REF_A, "stt": {"type": "xai", "secretRef": REF_A}},
        BUILTIN,
    )
    message = error_of(
        {"engineModel": "grok.grok-4.3", "secretRef": REF_A, "stt": {"type": "xai", "secretRef": REF_B}}
    )
    assert message.startswith("spec.stt.secretRef: XAI_API_KEY is already taken from spec.secretRef")


def test_fallbacks_are_validated_by_the_registry_like_the_primary() -> None:
    message = error_of({"engineModel": "grok.grok-4.3", "fallbacks": [{"engineModel": "anthropic.claude-4"}]})
    assert (
        message
        == "spec.fallbacks[0].engineModel: Unsupported LLM service: anthropic (supported: grok, openai)"
    )
    message = error_of({"engineModel": "grok.grok-4.3", "fallbacks": [{"engineModel": "openai.gpt-9"}]})
    assert message.startswith("spec.fallbacks[0].engineModel: Unknown model 'gpt-9' for LLM service openai")
    too_many = [{"engineModel": "openai.gpt-4o"}] * 4
    assert error_of({"engineModel": "grok.grok-4.3", "fallbacks": too_many}).startswith("spec.fallbacks:")


def test_realtime_voice_is_validated_with_the_field_named() -> None:
    parse_spec({"engineModel": "grok.grok-4.3", "voice": {"mode": "realtime", "voice": "leo"}}, BUILTIN)
    message = error_of({"engineModel": "openai.gpt-4o", "voice": {"mode": "realtime"}})
    assert message.startswith(
        "spec.voice.mode: realtime is Grok speech-to-speech and needs a grok engineModel"
    )
    message = error_of(
        {"engineModel": "grok.grok-4.3", "voice": {"mode": "realtime"}, "tts": {"type": "xai"}}
    )
    assert message == "spec.voice.mode: realtime speaks and listens itself: remove stt and tts"
    message = error_of(
        {"engineModel": "grok.grok-4.3", "voice": {"mode": "realtime", "model": "gpt-realtime"}}
    )
    assert message.startswith("spec.voice.model: 'gpt-realtime' is not an xAI realtime model (supported: ")
    message = error_of({"engineModel": "grok.grok-4.3", "voice": {"mode": "realtime", "voice": "alloy"}})
    assert message == "spec.voice.voice: 'alloy' is not an xAI voice (supported: ara, eve, leo, rex, sal)"
