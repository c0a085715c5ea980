"""The contract package's shared pieces: the one pydantic error formatter, the one missing-key error,
and `aiassistant-runner --assistant` running the operator's own spec -> RunnerConfig conversion."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aiassistant_contract.assistant import OPERATOR_ONLY_FIELDS, AIAssistantSpec, parse_spec, to_runner_config
from aiassistant_contract.engines import BUILTIN, registry_from_env
from aiassistant_contract.errors import MissingKeyError, SpecError, describe, error_lines, require_env
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.__main__ import ConfigError, config_from_assistant


def errors_of(model: type[RunnerConfig] | type[AIAssistantSpec], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return err.value


def test_error_lines_name_the_field_as_written() -> None:
    err = errors_of(
        RunnerConfig,
        {"engineModel": "grok.grok-3", "tools": [{"name": "t", "url": "ftp://x"}], "sttt": {}},
    )
    assert error_lines(err) == [
        "tools[0].url: String should match pattern '^https?://'",
        "sttt: unknown field",
    ]
    assert describe(err, "spec") == (
        "spec.tools[0].url: String should match pattern '^https?://'; spec.sttt: unknown field"
    )


def test_a_validator_message_loses_pydantics_prefix_and_a_model_check_names_its_field() -> None:
    err = errors_of(RunnerConfig, {"engineModel": "grok.grok-3", "tts": {"type": "polly"}})
    assert error_lines(err) == [
        "tts.type: Unsupported TTS type: polly (supported: cartesia, elevenlabs, openai, xai)"
    ]
    whole = errors_of(RunnerConfig, {"engineModel": "grok.grok-99"})  # the model check has no location
    assert error_lines(whole)[0].startswith("engineModel: Unknown model 'grok-99' for LLM service grok")


def test_the_missing_key_error_names_the_variable_only() -> None:
    assert require_env({"XAI_API_KEY": "xai-secret"}, "XAI_API_KEY", "why") == "xai-secret"
    with pytest.raises(MissingKeyError, match=r"^XAI_API_KEY is not set: the reason$") as err:
        require_env({"XAI_API_KEY": "", "OPENAI_API_KEY": "sk-secret"}, "XAI_API_KEY", "the reason")
    assert "secret" not in str(err.value) and isinstance(err.value, ValueError)


def assistant(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "bot", "namespace": "bots"},
        "spec": {"engineModel": "grok.grok-4.3", **spec},
    }


@pytest.mark.parametrize(
    "spec",
    [
        {"replicas": 1000},  # operator-only fields are validated too
        {"secretRef": {"name": "Not A Secret", "key": "k"}},
        {"transport": {"serializers": ["twilio", "twilio"]}},
        {  # two different explicit OPENAI_API_KEY sources
            "engineModel": "openai.gpt-4o",
            "secretRef": {"name": "a", "key": "k"},
            "tts": {"type": "openai", "secretRef": {"name": "b", "key": "k"}},
        },
    ],
)
def test_the_runner_refuses_what_the_operator_refuses_in_its_words(spec: dict[str, Any]) -> None:
    document = assistant(**spec)
    with pytest.raises(SpecError) as operator:
        parse_spec(document["spec"], BUILTIN)
    with pytest.raises(ConfigError) as runner:
        config_from_assistant(document, "bot.yaml", BUILTIN)
    assert str(runner.value) == f"invalid AIAssistant bot.yaml: {operator.value}"


def test_the_runner_runs_the_config_the_operator_renders() -> None:
    document = assistant(
        secretRef={"name": "xai-key", "key": "api-key"},
        replicas=3,
        image="registry.example/runner:1",
        stt={"type": "deepgram", "secretRef": {"name": "dg", "key": "k"}},
    )
    config = config_from_assistant(document, registry=BUILTIN)
    assert config == to_runner_config("bot", "bots", parse_spec(document["spec"], BUILTIN), BUILTIN)
    text = config.to_json()
    assert not any(word in text for word in ("secretRef", "replicas", "registry.example", "xai-key"))
    assert set(OPERATOR_ONLY_FIELDS) == {"secret_ref", "replicas", "autoscaling", "resources", "image"}


def test_the_runner_allows_the_extra_models_the_operator_would(monkeypatch: pytest.MonkeyPatch) -> None:
    document = assistant(engineModel="grok.grok-5")
    with pytest.raises(ConfigError, match=r"spec\.engineModel: Unknown model 'grok-5'"):
        config_from_assistant(document, registry=BUILTIN)
    monkeypatch.setenv("AIASSISTANT_EXTRA_MODELS", "grok.grok-5")
    config = config_from_assistant(document)  # the default registry reads the env, as the operator does
    assert config.allow_unlisted_models and config.engine(registry_from_env()).model == "grok-5"


def test_a_metadata_name_that_is_no_string_names_the_field() -> None:
    document = assistant()
    document["metadata"]["name"] = 7
    with pytest.raises(ConfigError, match=r"^invalid AIAssistant assistant: metadata\.name: Input should be"):
        config_from_assistant(document, registry=BUILTIN)
