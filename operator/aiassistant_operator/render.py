"""PURE rendering: one AIAssistant + the operator settings -> the runner objects to apply.

No I/O, no clock, no randomness: the same input gives the same objects, byte for byte, so the
handlers can apply them idempotently and golden tests can pin them. All objects are named
`<name>-runner`: ConfigMap (runner config, no secrets), Deployment, Service, a NetworkPolicy (unless
the operator's setting turns it off; render_networkpolicy.py), a PodDisruptionBudget when the
assistant never runs fewer than 2 pods, and a HorizontalPodAutoscaler (targeting the AIAssistant's
scale subresource) with spec.autoscaling. API keys and access tokens reach the pod only as
`secretKeyRef` env vars.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiassistant_contract.assistant import (
    API_VERSION,
    KIND,
    RUNNER_SUFFIX,
    AIAssistantSpec,
    SecretRef,
    access_uses,
    check_name,
    key_uses,
    parse_spec,
    to_runner_config,
)
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import (
    CONFIG_ENV,
    DRAIN_SECONDS_ENV,
    LOG_LEVEL_ENV,
    PORT,
    Price,
    RunnerConfig,
)

from .policy import check_policy, runner_resources
from .settings import DEFAULT_SECRETS_ENV, Settings

PORT_NAME = "http"
CONFIG_DIR = "/etc/aiassistant"
CONFIG_KEY = "config.json"
CONFIG_HASH_ANNOTATION = "aiassistant.dev/config-hash"
SECRETS_HASH_ANNOTATION = "aiassistant.dev/secrets-hash"
RUN_AS = 10001
# preStop sleeps (a kubelet sleep action: no shell in the image needed) so that Service endpoints
# drop the pod before SIGTERM; then the runner's own SIGTERM drain lets active calls finish.
PRESTOP_SLEEP_SECONDS = 5
GRACE_MARGIN_SECONDS = 10
SESSIONS_METRIC = "aiassistant_active_sessions"  # per pod, summed over kind by the metrics adapter


@dataclass(frozen=True)
class SecretKeyRef:
    """One key the runner pod reads from a Secret in its namespace, as env var `env`."""

    name: str
    key: str
    env: str


def runner_name(name: str) -> str:
    return f"{name}{RUNNER_SUFFIX}"


def endpoint(name: str, namespace: str) -> str:
    """status.endpoint: the runner Service's in-cluster URL."""
    return f"http://{runner_name(name)}.{namespace}.svc:{PORT}"


INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY = {"app.kubernetes.io/managed-by": "aiassistant-operator"}  # how the operator finds its objects


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "aiassistant-runner", INSTANCE_LABEL: name}


def selector(name: str) -> str:
    """The runner pods' label selector as a string: status.selector, for the scale subresource."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(name).items()))


def labels(name: str) -> dict[str, str]:
    return {
        **selector_labels(name),
        "app.kubernetes.io/component": "runner",
        "app.kubernetes.io/part-of": "aiassistant",
        **MANAGED_BY,
    }


def referenced_secrets(spec: AIAssistantSpec, settings: Settings) -> list[SecretKeyRef]:
    """The Secret keys the runner pod needs, one per env var, in order engine, STT, TTS.

    An explicit secretRef wins; providers sharing an env var (openai engine + openai STT/TTS all
    use OPENAI_API_KEY) share it (parse_spec rejects two different explicit ones). Without any
    explicit ref, the operator's default key Secret for the provider is used.
    """
    uses = key_uses(spec, settings.registry())
    explicit: dict[str, SecretRef] = {}
    for use in uses:
        if use.ref is not None:
            explicit.setdefault(use.env, use.ref)
    refs: dict[str, SecretKeyRef] = {}
    for use in uses:
        if use.env in refs:
            continue
        ref = explicit.get(use.env) or settings.default_secret(use.provider)
        if ref is None:
            raise SpecError(
                f"{use.field}: required, because the operator has no default key Secret for "
                f"{use.provider} ({DEFAULT_SECRETS_ENV})"
            )
        refs[use.env] = SecretKeyRef(name=ref.name, key=ref.key, env=use.env)
    for use in access_uses(spec):  # access credentials: explicit refs only
        assert use.ref is not None
        refs[use.env] = SecretKeyRef(name=use.ref.name, key=use.ref.key, env=use.env)
    return list(refs.values())


def secrets_hash(refs: Iterable[SecretKeyRef], secret_data: Mapping[str, Mapping[str, str]]) -> str:
    """A digest of the referenced keys' current values (Secret `data`, base64 as stored), for the
    pod template: a rotated key changes it and rolls the pods. Values never leave this function."""
    digest = hashlib.sha256()
    for ref in sorted(refs, key=lambda r: (r.env, r.name, r.key)):
        value = secret_data.get(ref.name, {}).get(ref.key, "")
        digest.update(f"{ref.env}\0{ref.name}\0{ref.key}\0".encode())
        digest.update(hashlib.sha256(value.encode()).digest())
    return digest.hexdigest()[:16]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _metadata(name: str, namespace: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": runner_name(name), "namespace": namespace, "labels": labels(name)}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return metadata


def _owner(assistant_metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference to the AIAssistant (garbage collection deletes the runner objects with
    it). An offline render has no uid: then no ownerReference, rather than a made-up uid that the
    garbage collector would take for a deleted owner."""
    uid = assistant_metadata.get("uid")
    if not uid:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": assistant_metadata["name"],
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def drain_seconds(config: RunnerConfig, settings: Settings) -> int:
    """How long a runner may take after SIGTERM: as long as its longest session may last, so a
    rollout or a scale-down lets every call finish; at least the operator's runnerDrainSeconds."""
    return max(settings.runner_drain_seconds, config.longest_session_seconds)


def _container(
    spec: AIAssistantSpec, settings: Settings, refs: list[SecretKeyRef], drain: int
) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": CONFIG_ENV, "value": f"{CONFIG_DIR}/{CONFIG_KEY}"},
        {"name": DRAIN_SECONDS_ENV, "value": str(drain)},
        {"name": LOG_LEVEL_ENV, "value": settings.log_level},
        # The root filesystem is read-only and the image's user has no home: caches go to /tmp.
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - the pod's own emptyDir
    ]
    env += [
        {"name": ref.env, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}} for ref in refs
    ]
    resources = runner_resources(spec, settings)
    container: dict[str, Any] = {
        "name": "runner",
        "image": spec.image or settings.runner_image,
        "imagePullPolicy": settings.image_pull_policy,
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": PORT_NAME},
            "periodSeconds": 2,
            "failureThreshold": 30,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": PORT_NAME},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": PORT_NAME},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 1,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        # A refused key ends the runner with a message here (its --termination-log default); the
        # operator reads it from the pod status (KeysAccepted=False, KeyRejected).
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        ],
    }
    if resources:
        container["resources"] = copy.deepcopy(dict(resources))  # never hand out the settings' dicts
    return container


def render(assistant: Mapping[str, Any], settings: Settings, secrets_hash: str = "") -> list[dict[str, Any]]:
    """The objects the operator applies for one AIAssistant (full CR dict; metadata.uid makes the
    ownerReferences). Raises SpecError, naming the field, for a spec the operator will not run."""
    metadata = assistant.get("metadata") or {}
    check_name(metadata.get("name"))
    spec = parse_spec(assistant.get("spec"), settings.registry())
    check_policy(spec, settings)
    return render_parsed(metadata, spec, referenced_secrets(spec, settings), settings, secrets_hash)


def render_parsed(
    metadata: Mapping[str, Any],
    spec: AIAssistantSpec,
    refs: list[SecretKeyRef],
    settings: Settings,
    secrets_hash: str = "",
) -> list[dict[str, Any]]:
    """`render` for a spec `parse_spec` accepted and its `referenced_secrets`: the operator's
    reconcile has both already, and parsing again would be half of the rendering time."""
    name = metadata["name"]
    namespace = metadata.get("namespace") or "default"
    config = to_runner_config(
        name, namespace, spec, settings.registry(), allowed_http_hosts=settings.allowed_http_hosts
    )
    if (price := settings.price(spec.engine_model)) is not None:
        config = config.model_copy(
            update={"price": Price(input_per_million=price[0], output_per_million=price[1])}
        )
    config_json = config.to_json()
    drain = drain_seconds(config, settings)
    owner = _owner(metadata)
    selector = selector_labels(name)

    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, namespace, owner),
        "data": {CONFIG_KEY: config_json},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, owner),
        "spec": {
            "replicas": spec.desired_replicas,
            "selector": {"matchLabels": selector},
            # Surge, never take a serving pod away first: calls in progress keep their pod.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {
                        CONFIG_HASH_ANNOTATION: _hash(config_json),
                        SECRETS_HASH_ANNOTATION: secrets_hash,
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # preStop sleep + a drain as long as the longest call + a margin to exit: a
                    # rollout or a scale-down never cuts a call.
                    "terminationGracePeriodSeconds": PRESTOP_SLEEP_SECONDS + drain + GRACE_MARGIN_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(spec, settings, refs, drain)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": runner_name(name)}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
    objects: list[dict[str, Any]] = [config_map, deployment, service]
    if settings.network_policy:
        from .render_networkpolicy import network_policy

        objects.append(network_policy(_metadata(name, namespace, owner), selector, spec, settings))
    # On the fewest pods the assistant runs with, not the current count: an autoscaler's changes
    # do not make and delete it.
    if spec.min_replicas > 1:
        objects.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": _metadata(name, namespace, owner),
                "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}},
            }
        )
    if spec.autoscaling is not None:
        objects.append(_autoscaler(name, spec, _metadata(name, namespace, owner)))
    return objects


def _autoscaler(name: str, spec: AIAssistantSpec, metadata: dict[str, Any]) -> dict[str, Any]:
    """An autoscaling/v2 HPA on the runner pods' average live sessions. It scales the AIAssistant
    (its scale subresource sets spec.replicas), not the Deployment: the operator carries the
    replicas on, and nothing else writes the Deployment's."""
    assert spec.autoscaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": API_VERSION, "kind": KIND, "name": name},
            "minReplicas": spec.autoscaling.min_replicas,
            "maxReplicas": spec.autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": SESSIONS_METRIC},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(spec.autoscaling.target_sessions_per_pod),
                        },
                    },
                }
            ],
            # Down slowly, one pod a minute: a pod scaled away drains its calls, taking no new ones.
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }
