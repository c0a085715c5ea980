"""The engine model registry: the seed's Go table cases plus separators, dots, policy and env extension."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aiassistant_contract import engines
from aiassistant_contract.engines import (
    BUILTIN,
    ENGINE_MODEL_GROK_3,
    ENGINE_MODEL_GROK_3_MINI,
    ENGINE_MODEL_OPENAI_GPT_4O,
    ENGINE_MODEL_OPENAI_GPT_4O_MINI,
    EXTRA_MODELS_ENV,
    EngineModelError,
    UnknownModelError,
    UnsupportedTargetError,
    WrongFormatError,
    get_model_name,
    get_target,
    is_valid_engine_model,
    registry_from_env,
    split_engine_model,
)


def test_model_constants_are_the_seeds() -> None:
    assert ENGINE_MODEL_GROK_3 == "grok.grok-3"
    assert ENGINE_MODEL_GROK_3_MINI == "grok.grok-3-mini"
    assert ENGINE_MODEL_OPENAI_GPT_4O == "openai.gpt-4o"
    assert ENGINE_MODEL_OPENAI_GPT_4O_MINI == "openai.gpt-4o-mini"


@pytest.mark.parametrize(
    ("engine_model", "target", "model"),
    [
        (ENGINE_MODEL_GROK_3, "grok", "grok-3"),
        (ENGINE_MODEL_GROK_3_MINI, "grok", "grok-3-mini"),
        (ENGINE_MODEL_OPENAI_GPT_4O, "openai", "gpt-4o"),
        ("grok:grok-3", "grok", "grok-3"),  # ":" separator
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("openai.gpt-5.2", "openai", "gpt-5.2"),  # dots inside the model: split on the first one
        ("openai:gpt-5.2", "openai", "gpt-5.2"),
        ("GROK.grok-3", "grok", "grok-3"),  # target is case-insensitive
        ("Grok:grok-3-mini", "grok", "grok-3-mini"),
    ],
)
def test_target_and_model_name(engine_model: str, target: str, model: str) -> None:
    assert get_target(engine_model) == target
    assert get_model_name(engine_model) == model
    assert is_valid_engine_model(engine_model)
    parsed = BUILTIN.parse(engine_model)
    assert (parsed.target.name, parsed.model) == (target, model)
    assert str(parsed) == f"{target}.{model}"


def test_first_separator_wins_whichever_it_is() -> None:
    assert split_engine_model("openai:gpt-5.2") == ("openai", "gpt-5.2")
    assert split_engine_model("openai.gpt:5") == ("openai", "gpt:5")


@pytest.mark.parametrize(
    ("engine_model", "valid"),
    [
        (ENGINE_MODEL_GROK_3, True),
        (ENGINE_MODEL_GROK_3_MINI, True),
        (ENGINE_MODEL_OPENAI_GPT_4O, True),
        (ENGINE_MODEL_OPENAI_GPT_4O_MINI, True),
        ("grok.grok-99", False),  # unknown model of a known target
        ("anthropic.claude-3", False),  # the seed validated this, then failed at run time
        ("grok-3", False),  # no separator
        ("", False),
        (".grok-3", False),
        ("grok.", False),
        ("grok:", False),
    ],
)
def test_is_valid_engine_model(engine_model: str, valid: bool) -> None:
    assert is_valid_engine_model(engine_model) is valid
    assert BUILTIN.is_valid(engine_model) is valid


@pytest.mark.parametrize("engine_model", ["grok-3", "", ".grok-3", "grok.", ":x", "  .  "])
def test_wrong_format_has_the_seeds_words(engine_model: str) -> None:
    with pytest.raises(WrongFormatError, match=r"^Wrong LLM format"):
        BUILTIN.parse(engine_model)
    with pytest.raises(WrongFormatError, match=r"^Wrong LLM format"):
        get_target(engine_model)


def test_non_string_is_wrong_format() -> None:
    with pytest.raises(WrongFormatError, match="Wrong LLM format"):
        split_engine_model(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("engine_model", ["anthropic.claude-3", "mistral:large", "azure.gpt-4o"])
def test_unsupported_target_has_the_seeds_words(engine_model: str) -> None:
    target = engine_model.replace(":", ".").split(".")[0]
    with pytest.raises(UnsupportedTargetError, match=f"^Unsupported LLM service: {target}") as err:
        BUILTIN.parse(engine_model)
    assert "grok" in str(err.value) and "openai" in str(err.value)  # says what is accepted
    with pytest.raises(UnsupportedTargetError, match="Unsupported LLM service"):
        get_target(engine_model)


def test_unknown_model_names_it_and_the_way_to_allow_it() -> None:
    with pytest.raises(UnknownModelError) as err:
        BUILTIN.parse("grok.grok-99")
    message = str(err.value)
    assert "grok-99" in message and "grok-3" in message and EXTRA_MODELS_ENV in message
    # Not strict: any model of a known target (the runner with an operator-approved model).
    assert BUILTIN.parse("grok.grok-99", strict=False).model == "grok-99"
    with pytest.raises(UnsupportedTargetError):
        BUILTIN.parse("nope.grok-99", strict=False)


def test_every_error_is_a_value_error() -> None:
    for cls in (WrongFormatError, UnsupportedTargetError, UnknownModelError):
        assert issubclass(cls, EngineModelError)
        assert issubclass(cls, ValueError)


def test_targets_carry_base_url_and_key_env() -> None:
    grok, openai = BUILTIN.target("grok"), BUILTIN.target("OpenAI")
    assert grok.base_url == "https://api.x.ai/v1"
    assert grok.key_env == "XAI_API_KEY"
    assert {"grok-3", "grok-3-mini"} <= grok.models
    assert openai.base_url is None  # the client library's default
    assert openai.key_env == "OPENAI_API_KEY"
    assert BUILTIN.is_valid(ENGINE_MODEL_GROK_3)


def test_extra_models_from_env_extend_known_targets_only() -> None:
    registry = registry_from_env({EXTRA_MODELS_ENV: " grok.grok-5 , openai:gpt-6.1,, "})
    assert registry.parse("grok.grok-5").model == "grok-5"
    assert registry.parse("openai.gpt-6.1").model == "gpt-6.1"
    assert registry.is_valid(ENGINE_MODEL_GROK_3)  # built-ins stay
    assert not BUILTIN.is_valid("grok.grok-5")  # the built-in registry is not mutated
    with pytest.raises(UnsupportedTargetError, match="Unsupported LLM service: anthropic"):
        registry_from_env({EXTRA_MODELS_ENV: "anthropic.claude-3"})
    with pytest.raises(WrongFormatError):
        registry_from_env({EXTRA_MODELS_ENV: "grok5"})


def test_extra_models_read_from_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXTRA_MODELS_ENV, "grok.grok-5")
    assert registry_from_env().is_valid("grok.grok-5")
    monkeypatch.delenv(EXTRA_MODELS_ENV)
    assert not registry_from_env().is_valid("grok.grok-5")


def test_engines_does_not_import_pipecat() -> None:
    # The operator image has no Pipecat: importing the registry must not pull it in.
    code = f"import {engines.__name__}, sys; assert 'pipecat' not in sys.modules, 'pipecat imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".", timeout=30)
