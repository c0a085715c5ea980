"""spec.reasoningEffort: in the CRD (enum), validated against the model by the operator (parse_spec)
and by the runner (RunnerConfig), carried into the runner config; `render` and retired models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from aiassistant_contract.assistant import parse_spec, to_runner_config
from aiassistant_contract.engines import BUILTIN, REASONING_EFFORTS, registry_from_env
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_operator import __main__ as cli
from aiassistant_operator.crdgen import crd
from aiassistant_runner.__main__ import ConfigError, config_from_assistant, load_config_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def spec(**fields: Any) -> dict[str, Any]:
    return {"secretRef": {"name": "xai-key", "key": "api-key"}, **fields}


def test_crd_offers_the_five_values() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    field = schema["properties"]["reasoningEffort"]
    assert field["type"] == "string"
    assert field["enum"] == list(REASONING_EFFORTS) == ["none", "low", "medium", "high", "xhigh"]
    assert "reasoningEffort" not in schema.get("required", [])


@pytest.mark.parametrize(
    ("engine_model", "effort"),
    [
        ("grok.grok-4.3", "none"),
        ("grok.grok-4.3", "high"),
        ("grok.grok-4.6", "xhigh"),
        ("grok.grok-4.5", "low"),
        ("grok.grok-3-mini", "high"),
        ("openai.gpt-5", "low"),
        ("openai.gpt-5.2", "xhigh"),
        ("grok.grok-3", None),  # unset is fine for every model
        ("openai.gpt-4o", None),
    ],
)
def test_efforts_the_model_takes_are_accepted_and_reach_the_runner(
    engine_model: str, effort: str | None
) -> None:
    fields = {"engineModel": engine_model} | ({"reasoningEffort": effort} if effort else {})
    parsed = parse_spec(spec(**fields), BUILTIN)
    assert parsed.reasoning_effort == effort
    config = to_runner_config("bot", "default", parsed, BUILTIN)
    assert config.reasoning_effort == effort
    dumped = json.loads(config.to_json())
    assert dumped.get("reasoningEffort") == effort  # camelCase in the ConfigMap, absent when unset
    assert RunnerConfig.model_validate(dumped) == config


@pytest.mark.parametrize(
    ("engine_model", "effort", "takes"),
    [
        ("grok.grok-4.3", "xhigh", "(it takes none, low, medium, high)"),
        ("grok.grok-4.6", "none", "(it takes low, medium, high, xhigh)"),
        ("grok.grok-3-mini", "medium", "(it takes low, high)"),
        ("openai.gpt-5", "none", "(it takes low, medium, high)"),
        ("grok.grok-4.20-0309-non-reasoning", "low", "(it is not a reasoning model"),
        ("openai.gpt-4o", "high", "(it is not a reasoning model"),
        ("grok.grok-4.20-0309-reasoning", "low", "(xAI sets this model's reasoning itself"),
        (
            "grok.grok-3",
            "low",
            "grok-3 is retired: move to grok.grok-4.3, which takes none, low, medium, high",
        ),
    ],
)
def test_an_effort_the_model_does_not_take_is_invalid_naming_the_field(
    engine_model: str, effort: str, takes: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(spec(engineModel=engine_model, reasoningEffort=effort), BUILTIN)
    message = str(err.value)
    assert message.startswith(f"spec.reasoningEffort: {effort!r} is not accepted by {engine_model} "), message
    assert takes in message
    # The runner refuses the same config with the same words.
    with pytest.raises(ValidationError) as runner_err:
        RunnerConfig.model_validate({"engineModel": engine_model, "reasoningEffort": effort})
    assert f"reasoningEffort: {message.removeprefix('spec.reasoningEffort: ')}" in str(runner_err.value)


def test_a_value_outside_the_enum_is_a_shape_error() -> None:
    with pytest.raises(SpecError, match=r"^spec\.reasoningEffort: Input should be 'none', 'low'"):
        parse_spec(spec(engineModel="grok.grok-4.3", reasoningEffort="max"), BUILTIN)
    with pytest.raises(SpecError, match=r"^spec\.reasoningEffort: Input should be"):
        parse_spec(spec(engineModel="openai.gpt-5", reasoningEffort="minimal"), BUILTIN)


def test_extra_models_are_plain_so_they_take_no_effort() -> None:
    registry = registry_from_env({"AIASSISTANT_EXTRA_MODELS": "grok.grok-5"})
    assert parse_spec(spec(engineModel="grok.grok-5"), registry).reasoning_effort is None
    with pytest.raises(
        SpecError, match=r"^spec\.reasoningEffort: 'low' is not accepted by grok\.grok-5"
    ) as err:
        parse_spec(spec(engineModel="grok.grok-5", reasoningEffort="low"), registry)
    assert "knows nothing of this model's reasoning" in str(err.value)
    # The runner with an operator-approved unlisted model: the same rule.
    with pytest.raises(ValidationError, match=r"reasoningEffort: 'low' is not accepted by grok\.grok-5"):
        RunnerConfig.model_validate(
            {"engineModel": "grok.grok-5", "allowUnlistedModels": True, "reasoningEffort": "low"}
        )


def test_the_runners_own_loaders_name_the_field(tmp_path: Path) -> None:
    document = {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "bot"},
        "spec": {"engineModel": "grok.grok-4.3", "reasoningEffort": "xhigh"},
    }
    with pytest.raises(
        ConfigError, match=r"spec\.reasoningEffort: 'xhigh' is not accepted by grok\.grok-4\.3"
    ):
        config_from_assistant(document)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"engineModel": "grok.grok-3", "reasoningEffort": "high"}))
    with pytest.raises(ConfigError, match=r"\n  reasoningEffort: 'high' is not accepted by grok\.grok-3"):
        load_config_file(path)


# --- render ---------------------------------------------------------------------------------------


def assistant_file(tmp_path: Path, name: str, **fields: Any) -> str:
    path = tmp_path / f"{name}.yaml"
    document = {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name},
        "spec": spec(**fields),
    }
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_render_warns_of_a_retired_model_on_stderr_and_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = assistant_file(tmp_path, "old-bot", engineModel="grok.grok-4-fast")
    assert cli.main(["render", "-f", path]) == 0
    out, err = capsys.readouterr()
    assert [d["kind"] for d in yaml.safe_load_all(out) if d] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "NetworkPolicy",
    ]
    assert err == (
        f"aiassistant-operator render: warning: {path}: AIAssistant default/old-bot: spec.engineModel: "
        "grok-4-fast was retired by xAI on 2026-05-15; requests are served by grok-4.3 at its price: "
        "move to grok.grok-4.3\n"
    )


def test_render_is_silent_for_current_models_and_refuses_a_wrong_effort(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = assistant_file(tmp_path, "new-bot", engineModel="grok.grok-4.3", reasoningEffort="high")
    assert cli.main(["render", "-f", good]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    config = json.loads(
        next(d for d in yaml.safe_load_all(out) if d["kind"] == "ConfigMap")["data"]["config.json"]
    )
    assert config["reasoningEffort"] == "high"
    bad = assistant_file(tmp_path, "bad-bot", engineModel="grok.grok-3", reasoningEffort="high")
    assert cli.main(["render", "-f", good, "-f", bad]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "AIAssistant default/bad-bot: spec.reasoningEffort: 'high' is not accepted by grok.grok-3" in err


def test_examples_are_on_current_models() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "AIAssistant"
                and path.name != "invalid-assistant.yaml"
            ):
                engine = BUILTIN.parse(doc["spec"]["engineModel"])
                assert engine.facts.current, f"{path.name} names a retired model"
