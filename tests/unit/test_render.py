"""render.py: golden files, Kubernetes validity (kubernetes-validate strict, 1.35), key injection,
hashes, security, ownership, purity.

Golden cases: tests/unit/golden/<case>.input.yaml holds the AIAssistant (and optional operator
settings env and secrets hash); <case>.yaml beside it is the expected output. After an intended
change, regenerate and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_render.py
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aiassistant_contract.assistant import parse_spec
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_operator.cli_render import dump_yaml
from aiassistant_operator.render import (
    CONFIG_HASH_ANNOTATION,
    SECRETS_HASH_ANNOTATION,
    SecretKeyRef,
    endpoint,
    referenced_secrets,
    render,
    secrets_hash,
)
from aiassistant_operator.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
K8S_VERSION = "1.35.0"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in GOLDEN.glob("*.input.yaml"))
DEFAULT = Settings()


def load_case(case: str) -> tuple[dict[str, Any], Settings, str]:
    data = yaml.safe_load((GOLDEN / f"{case}.input.yaml").read_text())
    return data["assistant"], Settings.from_env(data.get("settingsEnv", {})), data.get("secretsHash", "")


def assistant(name: str = "bot", namespace: str = "bots", uid: str = "uid-1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {"engineModel": "grok.grok-3", **spec},
    }


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = by_kind(objects)["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    return containers[0]


def key_env(objects: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """env var -> (Secret name, key) of every secretKeyRef."""
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container(objects)["env"]
        if "valueFrom" in e
    }


# --- golden ---------------------------------------------------------------------------------------


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 4


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    cr, settings, hash_ = load_case(case)
    rendered = dump_yaml(render(cr, settings, hash_))
    expected = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(rendered)
    assert rendered == expected.read_text(), f"golden {expected.name} differs (UPDATE_GOLDEN=1 to regenerate)"


def _all_rendered() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for case in CASES:
        cr, settings, hash_ = load_case(case)
        out += [(f"{case}:{o['kind']}", o) for o in render(cr, settings, hash_)]
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc.get("kind") == "AIAssistant" and path.name != "invalid-assistant.yaml":
                doc["metadata"]["uid"] = "uid-x"
                out += [(f"{path.name}:{o['kind']}", o) for o in render(doc, DEFAULT, "h")]
    return out


@pytest.mark.parametrize(("label", "obj"), _all_rendered(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_rendered_object_is_valid_kubernetes(label: str, obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_kubernetes_validate_would_catch_a_bad_object() -> None:
    deployment = by_kind(render(assistant(), DEFAULT))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# --- objects, names, labels, ownership -----------------------------------------------------------


def test_objects_and_names() -> None:
    objects = render(assistant(), DEFAULT)
    assert [(o["apiVersion"], o["kind"]) for o in objects] == [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ]
    assert {(o["metadata"]["name"], o["metadata"]["namespace"]) for o in objects} == {("bot-runner", "bots")}
    assert endpoint("bot", "bots") == "http://bot-runner.bots.svc:8000"


@pytest.mark.parametrize(("replicas", "pdb"), [(0, False), (1, False), (2, True), (5, True)])
def test_pdb_only_with_more_than_one_replica(replicas: int, pdb: bool) -> None:
    objects = by_kind(render(assistant(replicas=replicas), DEFAULT))
    assert objects["Deployment"]["spec"]["replicas"] == replicas
    assert ("PodDisruptionBudget" in objects) is pdb
    if pdb:
        budget = objects["PodDisruptionBudget"]
        assert budget["apiVersion"] == "policy/v1"
        assert budget["spec"]["minAvailable"] == 1


def test_labels_and_selectors() -> None:
    objects = by_kind(render(assistant(replicas=2), DEFAULT))
    expected = {
        "app.kubernetes.io/name": "aiassistant-runner",
        "app.kubernetes.io/instance": "bot",
        "app.kubernetes.io/component": "runner",
        "app.kubernetes.io/part-of": "aiassistant",
        "app.kubernetes.io/managed-by": "aiassistant-operator",
    }
    selector = {"app.kubernetes.io/name": "aiassistant-runner", "app.kubernetes.io/instance": "bot"}
    for obj in objects.values():
        assert obj["metadata"]["labels"] == expected
    deployment = objects["Deployment"]["spec"]
    assert deployment["selector"]["matchLabels"] == selector
    assert deployment["template"]["metadata"]["labels"] == expected
    assert objects["Service"]["spec"]["selector"] == selector
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector


def test_owner_references_point_at_the_assistant() -> None:
    for obj in render(assistant(uid="1f0c-uid"), DEFAULT):
        assert obj["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "aiassistant.dev/v1alpha1",
                "kind": "AIAssistant",
                "name": "bot",
                "uid": "1f0c-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_no_uid_no_owner_reference() -> None:
    cr = assistant()
    del cr["metadata"]["uid"]
    assert all("ownerReferences" not in o["metadata"] for o in render(cr, DEFAULT))


def test_missing_namespace_defaults_and_missing_name_fails() -> None:
    cr = assistant()
    del cr["metadata"]["namespace"]
    assert {o["metadata"]["namespace"] for o in render(cr, DEFAULT)} == {"default"}
    del cr["metadata"]["name"]
    with pytest.raises(SpecError, match=r"^metadata\.name: required"):
        render(cr, DEFAULT)


def test_service_exposes_http_8000() -> None:
    service = by_kind(render(assistant(), DEFAULT))["Service"]["spec"]
    assert service["type"] == "ClusterIP"
    assert service["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert container(render(assistant(), DEFAULT))["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"}
    ]


# --- config and keys ------------------------------------------------------------------------------


def test_configmap_holds_the_runner_config_and_no_key_reference() -> None:
    cr = assistant(
        secretRef={"name": "xai-key", "key": "api-key"},
        stt={"type": "deepgram", "secretRef": {"name": "dg-key", "key": "k"}},
        tts={"type": "openai", "voiceId": "alloy"},
    )
    data = by_kind(render(cr, DEFAULT))["ConfigMap"]["data"]
    assert list(data) == ["config.json"]
    config = RunnerConfig.model_validate_json(data["config.json"])  # what the runner will read
    assert (config.name, config.namespace, config.engine_model) == ("bot", "bots", "grok.grok-3")
    assert "secretRef" not in data["config.json"] and "dg-key" not in data["config.json"]
    env = {e["name"]: e.get("value") for e in container(render(cr, DEFAULT))["env"]}
    assert env["AIASSISTANT_CONFIG"] == "/etc/aiassistant/config.json"
    mounts = {m["mountPath"]: m for m in container(render(cr, DEFAULT))["volumeMounts"]}
    assert mounts["/etc/aiassistant"] == {"name": "config", "mountPath": "/etc/aiassistant", "readOnly": True}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"secretRef": {"name": "my-xai", "key": "token"}}, {"XAI_API_KEY": ("my-xai", "token")}),
        ({}, {"XAI_API_KEY": ("xai-key", "api-key")}),
        ({"engineModel": "openai.gpt-4o"}, {"OPENAI_API_KEY": ("openai-key", "api-key")}),
        (
            {
                "engineModel": "openai.gpt-4o",
                "secretRef": {"name": "oa", "key": "k"},
                "stt": {"type": "openai"},
            },
            {"OPENAI_API_KEY": ("oa", "k")},
        ),
        (
            {"stt": {"type": "openai"}, "tts": {"type": "openai", "secretRef": {"name": "oa", "key": "k"}}},
            {"XAI_API_KEY": ("xai-key", "api-key"), "OPENAI_API_KEY": ("oa", "k")},
        ),
        (
            {
                "stt": {"type": "deepgram"},
                "tts": {"type": "cartesia", "secretRef": {"name": "ca", "key": "k"}},
            },
            {
                "XAI_API_KEY": ("xai-key", "api-key"),
                "DEEPGRAM_API_KEY": ("deepgram-key", "api-key"),
                "CARTESIA_API_KEY": ("ca", "k"),
            },
        ),
        (
            {"tts": {"type": "elevenlabs"}},
            {"XAI_API_KEY": ("xai-key", "api-key"), "ELEVENLABS_API_KEY": ("elevenlabs-key", "api-key")},
        ),
        (  # each fallback has its own env var, resolved like the primary's (explicit or default)
            {
                "fallbacks": [
                    {"engineModel": "openai.gpt-4o"},
                    {
                        "engineModel": "grok.grok-4.20-0309-non-reasoning",
                        "secretRef": {"name": "x2", "key": "k"},
                    },
                ]
            },
            {
                "XAI_API_KEY": ("xai-key", "api-key"),
                "AIASSISTANT_FALLBACK_1_API_KEY": ("openai-key", "api-key"),
                "AIASSISTANT_FALLBACK_2_API_KEY": ("x2", "k"),
            },
        ),
        (  # all-Grok voice: the engine's one XAI_API_KEY feeds xAI STT and TTS too
            {
                "secretRef": {"name": "my-xai", "key": "token"},
                "stt": {"type": "xai"},
                "tts": {"type": "xai", "voiceId": "eve"},
            },
            {"XAI_API_KEY": ("my-xai", "token")},
        ),
    ],
)
def test_keys_come_from_secret_key_refs(spec: dict[str, Any], expected: dict[str, tuple[str, str]]) -> None:
    objects = render(assistant(**spec), DEFAULT)
    assert key_env(objects) == expected
    parsed = parse_spec(assistant(**spec)["spec"], DEFAULT.registry())
    assert [(r.env, r.name, r.key) for r in referenced_secrets(parsed, DEFAULT)] == [
        (env, name, key) for env, (name, key) in expected.items()
    ]


def test_default_key_secret_comes_from_settings() -> None:
    settings = Settings.from_env(
        {"AIASSISTANT_DEFAULT_SECRETS": '{"grok": {"name": "team-grok", "key": "t"}}'}
    )
    assert key_env(render(assistant(), settings)) == {"XAI_API_KEY": ("team-grok", "t")}


def test_no_default_and_no_secret_ref_is_a_field_named_error() -> None:
    settings = Settings.from_env({"AIASSISTANT_DEFAULT_SECRETS": '{"grok": null}'})
    with pytest.raises(SpecError, match=r"^spec\.secretRef: required, because the operator has no default"):
        render(assistant(), settings)
    render(assistant(secretRef={"name": "x", "key": "k"}), settings)  # an explicit ref still works


def test_extra_models_from_settings_reach_the_runner_config() -> None:
    with pytest.raises(SpecError, match="Unknown model 'grok-99'"):
        render(assistant(engineModel="grok.grok-99"), DEFAULT)
    settings = Settings.from_env({"AIASSISTANT_EXTRA_MODELS": "grok.grok-99"})
    config = json.loads(
        by_kind(render(assistant(engineModel="grok.grok-99"), settings))["ConfigMap"]["data"]["config.json"]
    )
    assert config["allowUnlistedModels"] is True
    RunnerConfig.model_validate(config)  # the runner accepts it


# --- hashes ---------------------------------------------------------------------------------------


def annotations(objects: list[dict[str, Any]]) -> dict[str, str]:
    result: dict[str, str] = by_kind(objects)["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    return result


def test_config_hash_follows_the_config_only() -> None:
    base = annotations(render(assistant(), DEFAULT))[CONFIG_HASH_ANNOTATION]
    assert annotations(render(assistant(), DEFAULT))[CONFIG_HASH_ANNOTATION] == base
    assert annotations(render(assistant(initPrompt="Other."), DEFAULT))[CONFIG_HASH_ANNOTATION] != base
    assert annotations(render(assistant(replicas=3), DEFAULT))[CONFIG_HASH_ANNOTATION] == base


def test_secrets_hash_is_put_on_the_pod_template() -> None:
    assert annotations(render(assistant(), DEFAULT, "abc123"))[SECRETS_HASH_ANNOTATION] == "abc123"
    assert annotations(render(assistant(), DEFAULT))[SECRETS_HASH_ANNOTATION] == ""


def test_secrets_hash_changes_when_a_key_rotates_and_hides_the_value() -> None:
    refs = [SecretKeyRef("xai-key", "api-key", "XAI_API_KEY")]
    old = secrets_hash(refs, {"xai-key": {"api-key": "c2stb2xk", "unrelated": "eA=="}})
    assert old == secrets_hash(refs, {"xai-key": {"api-key": "c2stb2xk", "unrelated": "eQ=="}})
    assert old != secrets_hash(refs, {"xai-key": {"api-key": "c2stbmV3"}})
    assert old != secrets_hash(refs, {})  # a missing key is a state of its own
    assert "c2stb2xk" not in old and len(old) == 16
    assert secrets_hash(list(reversed(refs * 2)), {"xai-key": {"api-key": "c2stb2xk"}}) != ""


# --- pod hardening and lifecycle ------------------------------------------------------------------


def test_pod_is_hardened() -> None:
    objects = render(assistant(), DEFAULT)
    pod = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container(objects)["volumeMounts"]


def drain_and_grace(objects: list[dict[str, Any]]) -> tuple[str, int]:
    env = {e["name"]: e.get("value") for e in container(objects)["env"]}
    pod = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    return env["AIASSISTANT_DRAIN_SECONDS"], pod["terminationGracePeriodSeconds"]


def test_probes_and_drain() -> None:
    objects = render(assistant(), Settings())
    runner = container(objects)
    assert runner["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert runner["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert runner["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    # A rollout never cuts a call: the drain lasts as long as the longest call may (maxCallSeconds).
    assert drain_and_grace(objects) == ("1800", 5 + 1800 + 10)  # preStop + drain + margin
    assert drain_and_grace(render(assistant(maxCallSeconds=120), Settings())) == ("120", 135)
    # ... or a task, or the operator's floor, whichever is longest.
    longest_task = assistant(maxCallSeconds=60, taskTimeoutSeconds=300.5)
    assert drain_and_grace(render(longest_task, Settings())) == ("301", 316)
    floor = Settings.from_env({"AIASSISTANT_RUNNER_DRAIN_SECONDS": "900"})
    assert drain_and_grace(render(assistant(maxCallSeconds=60), floor)) == ("900", 915)
    strategy = by_kind(objects)["Deployment"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 1, "maxUnavailable": 0}  # new pods first, then old ones drain


def test_image_and_resources_from_spec_else_settings() -> None:
    settings = Settings.from_env(
        {"AIASSISTANT_RUNNER_IMAGE": "reg/runner:2", "AIASSISTANT_RUNNER_IMAGE_PULL_POLICY": "Always"}
    )
    runner = container(render(assistant(), settings))
    assert (runner["image"], runner["imagePullPolicy"]) == ("reg/runner:2", "Always")
    assert runner["resources"] == settings.runner_resources
    runner = container(
        render(assistant(image="reg/runner:3", resources={"limits": {"memory": "3Gi"}}), settings)
    )
    assert runner["image"] == "reg/runner:3"
    assert runner["resources"] == {"limits": {"memory": "3Gi"}}
    runner = container(render(assistant(), Settings.from_env({"AIASSISTANT_RUNNER_RESOURCES": "{}"})))
    assert "resources" not in runner


# --- purity ---------------------------------------------------------------------------------------


def test_render_is_pure_and_deterministic() -> None:
    cr, settings, hash_ = load_case(CASES[0])
    before, settings_before = copy.deepcopy(cr), copy.deepcopy(settings)
    first = render(cr, settings, hash_)
    assert cr == before
    assert render(cr, settings, hash_) == first
    # the caller may mutate what it got (e.g. a handler adding a field) without touching the inputs
    for obj in first:
        obj["metadata"]["labels"]["x"] = "y"
    container(first)["resources"]["requests"]["cpu"] = "9"
    assert cr == before and settings == settings_before
    assert render(cr, settings, hash_) != first


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"engineModel": "anthropic.claude-3"}, "spec.engineModel: Unsupported LLM service: anthropic"),
        ({"engineModel": "grok.grok-99"}, "spec.engineModel: Unknown model 'grok-99'"),
        ({"stt": {"type": "whisper"}}, "spec.stt.type: Unsupported STT type: whisper"),
    ],
)
def test_invalid_spec_renders_nothing(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as err:
        render(assistant(**spec), DEFAULT)
    assert str(err.value).startswith(message)
