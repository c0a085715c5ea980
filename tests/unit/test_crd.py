"""The AIAssistant CRD: generated from the contract's models without drift, structural, described, its
enums equal to the registries, its CEL rules right (cel-python), and the examples valid against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, get_args

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from aiassistant_contract.assistant import (
    AIAssistantSpec,
    AIAssistantStatus,
    ConditionStatus,
    ConditionType,
    Phase,
    parse_spec,
)
from aiassistant_contract.engines import BUILTIN
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import SERIALIZERS
from aiassistant_contract.speech import STT_PROVIDERS, TTS_PROVIDERS
from aiassistant_operator import crdgen

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "aiassistants.aiassistant.dev.yaml"
ENGINE_MODELS = sorted(f"{t.name}.{m}" for t in BUILTIN.targets.values() for m in t.models)
CHART_CRD_PATH = ROOT / "charts" / "aiassistant-operator" / "crds" / "aiassistants.aiassistant.dev.yaml"
EXAMPLES = ROOT / "examples"

CRD = yaml.safe_load(CRD_PATH.read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]
STATUS = SCHEMA["properties"]["status"]
CEL = celpy.Environment()


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return CEL.program(CEL.compile(rule))


def cel_errors(schema: dict[str, Any], value: Any, path: str = "spec") -> list[str]:
    """Evaluate every x-kubernetes-validations rule of `schema` on `value`, as the apiserver does,
    and its list-type uniqueness (sets, maps by key), which jsonschema does not know."""
    errors = []
    for rule in schema.get("x-kubernetes-validations", []):
        result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if not isinstance(result, celpy.celtypes.BoolType) or not result:
            errors.append(f"{path}: {rule['message']}")
    if isinstance(value, list) and schema.get("x-kubernetes-list-type") in ("set", "map"):
        keys = schema.get("x-kubernetes-list-map-keys")
        seen = [json.dumps([item.get(k) for k in keys] if keys else item, sort_keys=True) for item in value]
        if len(set(seen)) != len(seen):
            errors.append(f"{path}: Duplicate value")
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += cel_errors(sub, value[name], f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += cel_errors(schema["items"], item, f"{path}[{i}]")
    return errors


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """OpenAPI v3.0 keywords (boolean exclusiveMinimum) are draft 4's; x-kubernetes-* are ignored."""
    validator = jsonschema.Draft4Validator(SCHEMA)
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(resource)]
    return found + cel_errors(SPEC, resource.get("spec", {}))


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        nodes += walk(sub, f"{path}.{name}")
    if "items" in schema:
        nodes += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += walk(schema["additionalProperties"], f"{path}.*")
    return nodes


# --- generated, no drift -------------------------------------------------------------------------


def test_committed_crd_is_generated_from_the_models() -> None:
    assert CRD_PATH.read_text() == crdgen.crd_yaml(), "run: python -m aiassistant_operator.crdgen"


def test_chart_crd_is_byte_identical() -> None:
    assert CHART_CRD_PATH.read_bytes() == CRD_PATH.read_bytes()


def test_check_mode_reports_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text("old")
    monkeypatch.setattr(crdgen, "CRD_FILES", (stale,))
    assert crdgen.main(["--check"]) == 1
    assert crdgen.main([]) == 0
    assert crdgen.main(["--check"]) == 0
    assert stale.read_text() == crdgen.crd_yaml()


def test_a_field_without_description_fails_generation() -> None:
    class Bad(BaseModel):
        """A model with one undocumented field."""

        undocumented: int = 1

    with pytest.raises(crdgen.SchemaError, match=r"spec\.undocumented: no description"):
        crdgen.model_schema(Bad, "spec")  # type: ignore[arg-type]


# --- the resource ---------------------------------------------------------------------------------


def test_names_scope_subresource_and_printer_columns() -> None:
    assert CRD["metadata"]["name"] == "aiassistants.aiassistant.dev"
    spec = CRD["spec"]
    assert spec["group"] == "aiassistant.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "AIAssistant",
        "listKind": "AIAssistantList",
        "plural": "aiassistants",
        "singular": "aiassistant",
        "shortNames": ["aia"],
    }
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1"]
    assert VERSION["served"] and VERSION["storage"]
    assert VERSION["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "Model": ".spec.engineModel",
        "Target": ".status.engineTarget",
        "Phase": ".status.phase",
        "Ready": ".status.readyReplicas",
        "Reason": '.status.conditions[?(@.type=="Ready")].reason',
        "Age": ".metadata.creationTimestamp",
        "Message": '.status.conditions[?(@.type=="Ready")].message',
    }
    wide_only = [c["name"] for c in VERSION["additionalPrinterColumns"] if c.get("priority")]
    assert wide_only == ["Message"]  # `kubectl get -o wide`


def test_crd_object_is_valid_for_kubernetes_1_35() -> None:
    kubernetes_validate.validate(CRD, "1.35.0", strict=True)


def test_every_field_has_a_description() -> None:
    missing = [
        path for path, node in walk(SCHEMA) if "description" not in node and not path.endswith(("[]", ".*"))
    ]
    # ObjectMeta: the apiserver refuses a description (or anything but name/generateName) on it.
    assert missing == [".metadata"]


def test_schema_is_structural() -> None:
    for path, node in walk(SCHEMA):
        assert "$ref" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert not ({"properties", "additionalProperties"} <= node.keys()), path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node and "type" in node, path
        if node.get("type") == "object" and path not in ("", ".metadata"):
            assert node.keys() & {
                "properties",
                "additionalProperties",
                "x-kubernetes-preserve-unknown-fields",
            }, path
        for rule in node.get("x-kubernetes-validations", []):
            if path and node.get("type") == "string":  # the root's reads metadata.name, bounded by Kubernetes
                assert node.get("maxLength"), f"{path}: a CEL rule on an unbounded string is too costly"
            assert rule["message"], path


def _aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside `X | None`, `list[X]`, ... if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize(("model", "schema"), [(AIAssistantSpec, SPEC), (AIAssistantStatus, STATUS)])
def test_crd_and_models_agree_field_by_field(model: type[BaseModel], schema: dict[str, Any]) -> None:
    """Independent of the generator: every pydantic field is a CRD property and vice versa, required
    exactly when pydantic requires it, recursively through the sub-models."""

    def check(model: type[BaseModel], schema: dict[str, Any], path: str) -> None:
        if schema.get("type") == "array":
            schema = schema["items"]
        assert set(schema["properties"]) == _aliases(model), path
        required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
        assert set(schema.get("required", [])) == required, path
        for name, field in model.model_fields.items():
            sub = _submodel(field.annotation)
            if sub is not None:
                check(sub, schema["properties"][field.alias or name], f"{path}.{field.alias or name}")

    check(model, schema, model.__name__)


def test_enums_are_the_registries() -> None:
    props = SPEC["properties"]
    assert props["stt"]["properties"]["type"]["enum"] == sorted(STT_PROVIDERS)
    assert props["tts"]["properties"]["type"]["enum"] == sorted(TTS_PROVIDERS)
    assert props["transport"]["properties"]["serializers"]["items"]["enum"] == list(SERIALIZERS)
    assert STATUS["properties"]["phase"]["enum"] == list(get_args(Phase))
    condition = STATUS["properties"]["conditions"]["items"]["properties"]
    assert condition["type"]["enum"] == list(get_args(ConditionType))
    assert condition["status"]["enum"] == list(get_args(ConditionStatus))


def test_lists_with_keys_are_maps_and_sets() -> None:
    tools = SPEC["properties"]["tools"]
    assert (tools["x-kubernetes-list-type"], tools["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    assert SPEC["properties"]["transport"]["properties"]["serializers"]["x-kubernetes-list-type"] == "set"
    conditions = STATUS["properties"]["conditions"]
    assert (conditions["x-kubernetes-list-type"], conditions["x-kubernetes-list-map-keys"]) == (
        "map",
        ["type"],
    )
    assert SPEC["properties"]["tools"]["items"]["properties"]["parameters"][
        "x-kubernetes-preserve-unknown-fields"
    ]


# --- CEL ------------------------------------------------------------------------------------------

ENGINE_MODEL = SPEC["properties"]["engineModel"]


# The engineModel rule's examples; tests/integration/test_crd_apiserver.py sends them to a real apiserver.
CEL_ACCEPTED = [
    "grok.grok-3",
    "grok:grok-3-mini",
    "openai.gpt-5.2",
    "OpenAI.gpt-4o",
    "anthropic.claude-3",
    "grok.grok-99",
]
CEL_REJECTED = [
    ("nodot", "expected '<target>.<model>'"),
    ("", "expected '<target>.<model>'"),
    (".grok-3", "expected '<target>.<model>'"),
    ("gr ok.grok-3", "expected '<target>.<model>'"),
    ("grok.", "expected a model after the target"),
    ("grok:", "expected a model after the target"),
    ("grok. grok-3", "expected a model after the target"),
    ("grok.grok 3", "expected a model after the target"),
]


@pytest.mark.parametrize("value", CEL_ACCEPTED)
def test_cel_accepts_the_format(value: str) -> None:
    assert cel_errors(ENGINE_MODEL, value) == []


@pytest.mark.parametrize(("value", "message"), CEL_REJECTED)
def test_cel_rejects_with_a_message(value: str, message: str) -> None:
    errors = cel_errors(ENGINE_MODEL, value)
    assert errors and any(message in e for e in errors), errors


def test_cel_accepts_every_model_the_registry_serves() -> None:
    for engine_model in ENGINE_MODELS:
        assert cel_errors(ENGINE_MODEL, engine_model) == [], engine_model
        assert cel_errors(ENGINE_MODEL, engine_model.replace(".", ":", 1)) == [], engine_model


@pytest.mark.parametrize(
    "value",
    [
        "nodot",
        "grok.",
        ".grok-3",
        "grok.grok 3",
        "grok. grok-3",
        " grok.grok-3",
        "gr ok.grok-3",
        "grok.grok-3\n",
    ],
)
def test_cel_rejections_are_model_rejections_too(value: str) -> None:
    """The apiserver (CEL) and the operator (model) agree on the format; the registry is stricter."""
    assert cel_errors(ENGINE_MODEL, value)
    with pytest.raises(SpecError, match=r"^spec\.engineModel: Wrong LLM format"):
        parse_spec({"engineModel": value}, BUILTIN)


# --- examples and CRs against the schema -----------------------------------------------------------


def _example_assistants() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "AIAssistant":
                found.append((path.name, doc))
    return found


def test_examples_hold_the_advertised_resources() -> None:
    names = {name for name, _ in _example_assistants()}
    assert {
        "grok-assistant.yaml",
        "openai-assistant.yaml",
        "voice-assistant.yaml",
        "grok-voice-assistant.yaml",
        "invalid-assistant.yaml",
    } <= names
    secrets = [
        doc
        for path in EXAMPLES.glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "Secret"
    ]
    assert {s["metadata"]["name"] for s in secrets} >= {"xai-key", "openai-key"}
    assert all(set(s["stringData"].values()) == {"replace-me"} for s in secrets)


@pytest.mark.parametrize(
    ("name", "assistant"), _example_assistants(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_examples_pass_the_crd_schema_and_cel(name: str, assistant: dict[str, Any]) -> None:
    assert schema_errors(assistant) == []
    if name == "invalid-assistant.yaml":  # format-valid, but no model the runner can serve
        with pytest.raises(SpecError, match=r"^spec\.engineModel: Unknown model 'grok-99'"):
            parse_spec(assistant["spec"], BUILTIN)
    else:
        parse_spec(assistant["spec"], BUILTIN)


def _cr(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "bot"},
        "spec": {"engineModel": "grok.grok-3", **spec},
    }


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"engineModel": "nodot"}, "spec.engineModel"),
        ({"stt": {"type": "whisper"}}, "spec.stt.type"),
        ({"tts": {"type": "openai", "voiceId": 3}}, "spec.tts.voiceId"),
        ({"transport": {"serializers": ["smoke"]}}, "spec.transport.serializers.0"),
        ({"transport": {"serializers": []}}, "spec.transport.serializers"),
        ({"replicas": -1}, "spec.replicas"),
        ({"vad": {"confidence": 2}}, "spec.vad.confidence"),
        ({"tools": [{"name": "bad name", "url": "https://x"}]}, "spec.tools.0.name"),
        ({"tools": [{"name": "t", "url": "ftp://x"}]}, "spec.tools.0.url"),
        ({"tools": [{"name": "t", "url": "https://x", "timeoutSeconds": 0}]}, "spec.tools.0.timeoutSeconds"),
        ({"secretRef": {"name": "Key_With_Caps", "key": "k"}}, "spec.secretRef.name"),
        ({"secretRef": {"name": "xai-key"}}, "spec.secretRef"),
        ({"resources": {"limits": {"memory": "lots"}}}, "spec.resources.limits.memory"),
        ({"parameters": {"n": 1}}, "spec.parameters.n"),
    ],
)
def test_bad_crs_are_rejected_by_schema_and_by_the_model(spec: dict[str, Any], where: str) -> None:
    errors = schema_errors(_cr(**spec))
    assert any(e.startswith(where) for e in errors), errors
    with pytest.raises(SpecError):
        parse_spec(_cr(**spec)["spec"], BUILTIN)


def test_missing_spec_and_engine_model_are_rejected() -> None:
    no_spec = {k: v for k, v in _cr().items() if k != "spec"}
    assert any("'spec' is a required property" in e for e in schema_errors(no_spec))
    assert any("'engineModel' is a required property" in e for e in schema_errors({**_cr(), "spec": {}}))


def test_quantities_are_int_or_string() -> None:
    assert (
        schema_errors(_cr(resources={"limits": {"cpu": 2, "memory": "1Gi"}, "requests": {"cpu": "250m"}}))
        == []
    )


def test_duplicates_in_sets_and_maps_are_rejected_by_both() -> None:
    twice = {"name": "t", "url": "https://x"}
    for spec in (
        {"tools": [twice, {**twice, "url": "https://y"}]},
        {"transport": {"serializers": ["twilio", "twilio"]}},
    ):
        assert any("Duplicate value" in e for e in schema_errors(_cr(**spec)))
        with pytest.raises(SpecError, match="unique"):
            parse_spec(_cr(**spec)["spec"], BUILTIN)


# --- the CRD and the model agree on random specs ---------------------------------------------------

SECRET_REF = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["xai-key", "Bad_Name", "a.b", ""]),
        "key": st.sampled_from(["api-key", "bad key"]),
    }
)
QUANTITY = st.one_of(st.integers(-1, 4), st.sampled_from(["250m", "1Gi", "lots", "1.5", "-1", ""]))
FLOAT = functools.partial(st.floats, allow_nan=False, allow_infinity=False)
SPECS = st.fixed_dictionaries(
    {"engineModel": st.one_of(st.sampled_from(ENGINE_MODELS), st.text("grokpenai.:-3 ", max_size=14))},
    optional={
        "secretRef": SECRET_REF,
        "replicas": st.integers(-1, 101),
        "maxSessionsPerPod": st.integers(0, 10_001),
        "maxCallSeconds": st.integers(9, 86_401),
        "taskTimeoutSeconds": st.one_of(st.integers(-1, 3601), FLOAT(-1, 3601)),
        "smartTurn": st.booleans(),
        "greeting": st.one_of(st.text(max_size=5), st.integers()),
        "parameters": st.dictionaries(
            st.sampled_from(["a", "b"]), st.one_of(st.text(max_size=3), st.integers()), max_size=2
        ),
        "vad": st.fixed_dictionaries({}, optional={"confidence": FLOAT(-0.5, 1.5), "stopSecs": FLOAT(-1, 6)}),
        "stt": st.fixed_dictionaries(
            {"type": st.sampled_from(["deepgram", "openai", "whisper"])},
            optional={"language": st.just("de-DE"), "secretRef": SECRET_REF},
        ),
        "tts": st.fixed_dictionaries(
            {"type": st.sampled_from(["elevenlabs", "cartesia", "openai", "polly"])},
            optional={"voiceId": st.sampled_from(["alloy", ""]), "secretRef": SECRET_REF},
        ),
        "transport": st.fixed_dictionaries(
            {"serializers": st.lists(st.sampled_from([*SERIALIZERS, "smoke"]), max_size=3)}
        ),
        "tools": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["lookup", "book", "bad name"]),
                    "url": st.sampled_from(["https://x", "ftp://z"]),
                },
                optional={"timeoutSeconds": st.integers(-1, 301)},
            ),
            max_size=2,
        ),
        "resources": st.fixed_dictionaries(
            {}, optional={"limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), QUANTITY, max_size=2)}
        ),
        "image": st.sampled_from(["runner:1", ""]),
    },
)
# What only the operator can judge: the registry's lists and the one-key-per-env-var rule.
OPERATOR_ONLY_CHECKS = ("Unknown model", "Unsupported LLM service", "is already taken from")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_crd_and_model_agree_on_random_specs(spec: dict[str, Any]) -> None:
    crd_errors = schema_errors(_cr(**spec) | {"spec": spec})
    try:
        parse_spec(spec, BUILTIN)
    except SpecError as err:
        if not crd_errors:
            assert any(check in str(err) for check in OPERATOR_ONLY_CHECKS), (
                f"CRD accepts, model rejects: {err}"
            )
    else:
        assert crd_errors == [], "model accepts, CRD rejects"
