"""kopf wiring: indexes of what the cluster holds, and the events that reconcile an assistant.

State lives in kopf's indexes only (kopf fills them before any handler runs, keeps them current
from its watches and drops an object's entries when it goes):
- `secret_digests`: (namespace, Secret) -> {key: SHA-256 of the value}: presence and rotation, of
  the Secrets labelled `aiassistant.dev/credentials: "true"` only (access.py: no other is usable);
- `assistants`: (namespace, name) -> the AIAssistant (metadata, spec, status);
- `secret_users`: (namespace, Secret) -> the assistants that use it;
- `runner_<plural>`: (namespace, assistant) -> its ConfigMap, Deployment, Service, PDB, HPA as they are;
- `runner_pods`: (namespace, assistant) -> each runner pod's key verdict (keys.py: KeysAccepted).

Every handler calls the same level-triggered `reconcile` (reconcile.py): the assistant's own events
(its creation, spec changes, status edits, an operator restart's listing), a used Secret's change, a
runner Deployment whose rollout or readiness differs from the status, a runner pod whose key verdict
differs from the status (KeysAccepted), and a periodic resync of all (retries
after an API error, repairs drift of runner objects). kopf writes nothing of its own on the objects
(no progress storage, no finalizers); deletion is left to the garbage collector.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import kopf
import prometheus_client

from aiassistant_contract.assistant import GROUP, PLURAL, VERSION

from . import apply, metrics
from .access import CREDENTIALS_LABEL, CREDENTIALS_SELECTOR
from .keys import keys_condition, pod_keys
from .reconcile import Cluster, Key, reconcile, secret_names
from .render import INSTANCE_LABEL, MANAGED_BY
from .settings import Settings
from .status import Rollout

RESYNC_SECONDS = 60.0
API_TIMEOUT_SECONDS = 30.0  # one API request of kopf's; it retries (networking.error_backoffs)
RUNNERS = {  # kind -> (group, version, plural) of the runner objects
    "ConfigMap": ("", "v1", "configmaps"),
    "Deployment": ("apps", "v1", "deployments"),
    "Service": ("", "v1", "services"),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
}
Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Logger, **indexes: Any) -> None:
    """kopf settings shared by `run`, `dev` and the tests; the API client for our writes."""
    settings.posting.reporting_component = "aiassistant-operator"
    settings.networking.error_backoffs = (0.2, 0.5, 1, 2, 5, 10)  # the apiserver is near
    settings.watching.server_timeout = settings.watching.server_timeout or 300
    # Server-side: the apiserver sends only labelled Secrets, the others never reach the operator
    # (the handlers' `labels=` filters alone would still receive and drop every Secret).
    settings.watching.label_selectors["v1", "secrets"] = f"{CREDENTIALS_LABEL}=true"
    # kopf's default is aiohttp's 5 minutes: a stalled request would hold a handler that long.
    timeout = settings.networking.request_timeout
    if timeout is None or timeout > API_TIMEOUT_SECONDS:
        settings.networking.request_timeout = API_TIMEOUT_SECONDS
    settings.networking.connect_timeout = settings.networking.connect_timeout or 10
    memo.setdefault("settings", Settings.from_env())
    # kr8s finds the same credentials kopf logs in with: in-cluster, $KUBECONFIG, or memo's file.
    memo["api"] = await apply.Client.connect(memo.get("kubeconfig"), settings.networking.request_timeout)
    # kopf passes the indexes to startup handlers too (the same objects, kept current).
    memo["resync"] = asyncio.create_task(_resync(memo, logger, indexes))
    collector = metrics.AssistantCollector(indexes["assistants"])
    try:
        prometheus_client.REGISTRY.register(collector)
        memo["collector"] = collector
    except ValueError:  # another operator in this process (tests) exports them already
        logger.warning("Per-assistant metrics are exported by another operator in this process")


async def _resync(memo: kopf.Memo, logger: Logger, indexes: Mapping[str, Any]) -> None:
    """Every RESYNC_SECONDS, reconcile every assistant: retries after API errors that outlasted
    apply's backoff, and repairs drift of runner objects whose events are not watched for it.
    (A kopf timer would do it per object, but timers make kopf put a finalizer on every object.)"""
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        for bodies in list(indexes["assistants"].values()):
            for body in bodies:
                try:
                    await reconcile(body, memo["settings"], _cluster(indexes), memo["api"], logger)
                except Exception as err:  # one assistant's failure must not stop the others
                    logger.warning(f"Resync of {body['metadata'].get('name')!r} failed: {err}")


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    if "resync" in memo:
        memo["resync"].cancel()
    if "collector" in memo:
        prometheus_client.REGISTRY.unregister(memo["collector"])


def _lean(body: kopf.Body) -> dict[str, Any]:
    """What a reconcile or a comparison reads of an object: its metadata without managedFields (the bulk of it)."""
    meta = body.get("metadata") or {}
    kept = (
        "name",
        "namespace",
        "uid",
        "generation",
        "resourceVersion",
        "labels",
        "annotations",
        "ownerReferences",
    )
    lean = {key: value for key, value in body.items() if key != "metadata"}
    lean["metadata"] = {key: meta[key] for key in kept if key in meta}
    return lean


@kopf.index("v1", "secrets", labels=CREDENTIALS_SELECTOR)
async def secret_digests(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, str]]:
    data = body.get("data") or {}
    return {
        (namespace or "", name): {k: hashlib.sha256(str(v).encode()).hexdigest() for k, v in data.items()}
    }


@kopf.index(GROUP, VERSION, PLURAL)
async def assistants(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, Any]]:
    return {(namespace or "", name): _lean(body)}


@kopf.index(GROUP, VERSION, PLURAL)
async def secret_users(
    namespace: str | None, name: str, spec: kopf.Spec, memo: Any, **_: Any
) -> dict[Key, str]:
    return {(namespace or "", secret): name for secret in secret_names(dict(spec), memo["settings"])}


def _runner_index(kind: str, group: str, version: str, plural: str) -> None:
    async def index(
        namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
    ) -> dict[Key, Any]:
        instance = labels.get(INSTANCE_LABEL)
        return {(namespace or "", instance): _lean(body)} if instance else {}

    kopf.index(group, version, plural, labels=MANAGED_BY, id=f"runner_{plural}")(index)


for _kind, (_group, _version, _plural) in RUNNERS.items():
    _runner_index(_kind, _group, _version, _plural)


@kopf.index("v1", "pods", labels=MANAGED_BY)
async def runner_pods(
    namespace: str | None, labels: Mapping[str, str], status: kopf.Status, **_: Any
) -> dict[Key, tuple[str, str] | None]:
    """(namespace, assistant) -> each runner pod's key verdict (keys.pod_keys)."""
    instance = labels.get(INSTANCE_LABEL)
    return {(namespace or "", instance): pod_keys(status)} if instance else {}


def _cluster(indexes: Mapping[str, Any]) -> Cluster:
    return Cluster(
        secrets=indexes["secret_digests"],
        runners={kind: indexes[f"runner_{plural}"] for kind, (_, _, plural) in RUNNERS.items()},
        pods=indexes["runner_pods"],
    )


async def _reconcile_users(key: Key, memo: Any, logger: Logger, indexes: Mapping[str, Any]) -> None:
    for body in indexes["assistants"].get(key, []):
        await reconcile(body, memo["settings"], _cluster(indexes), memo["api"], logger)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def assistant_event(
    type: str | None, body: kopf.Body, memo: kopf.Memo, logger: Logger, **indexes: Any
) -> None:
    if type != "DELETED":  # the garbage collector removes the runner objects (ownerReferences)
        await reconcile(_lean(body), memo["settings"], _cluster(indexes), memo["api"], logger)


def _used(namespace: str | None, name: str, **indexes: Any) -> bool:
    return (namespace or "", name) in indexes["secret_users"]


@kopf.on.event(
    "v1", "secrets", labels=CREDENTIALS_SELECTOR, when=_used
)  # quiet about the Secrets no assistant uses
async def secret_event(
    type: str | None, namespace: str | None, name: str, memo: Any, logger: Logger, **indexes: Any
) -> None:
    if type is None:
        return  # the initial listing: the assistants' own listing reconciles them
    users = sorted(set(indexes["secret_users"].get((namespace or "", name), [])))
    # Concurrently: a key shared by many assistants rolls them all at once (apply.Client bounds
    # the requests in flight), not one after another.
    await asyncio.gather(
        *(_reconcile_users((namespace or "", user), memo, logger, indexes) for user in users)
    )


def _readiness_news(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **indexes: Any
) -> bool:
    """Whether the Deployment's rollout may change its assistant's status: its pod counts differ
    from the status's, or it is (or is no longer) rolling out while the status says otherwise.
    Most Deployment events (each step of a rollout refreshes its status) change nothing there
    and skip the handler."""
    key = (namespace or "", labels.get(INSTANCE_LABEL) or "")
    rollout = Rollout.of(body)
    counts = (rollout.ready, rollout.updated, rollout.pods)
    rolling = rollout.ready > 0 and not rollout.done(int((body.get("spec") or {}).get("replicas") or 0))
    for assistant in indexes["assistants"].get(key, []):
        shown = assistant.get("status") or {}
        if (shown.get("readyReplicas"), shown.get("updatedReplicas"), shown.get("replicas")) != counts:
            return True
        if (shown.get("phase") == "RollingOut") != rolling:
            return True
    return False


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED_BY, when=_readiness_news)
async def deployment_event(
    namespace: str | None, labels: Mapping[str, str], memo: Any, logger: Logger, **indexes: Any
) -> None:
    await _reconcile_users((namespace or "", labels.get(INSTANCE_LABEL) or ""), memo, logger, indexes)


def _keys_news(namespace: str | None, labels: Mapping[str, str], **indexes: Any) -> bool:
    """Whether the runner pods' KeysAccepted differs from the assistant's status. No news while the
    status is not yet the current generation's (the reconcile writing it reads the pods itself, and
    racing it for that first write would cost its "Applied" Event), nor from pods that have not
    checked their keys yet (Unknown: the reconciles that create and roll the pods say so)."""
    key = (namespace or "", labels.get(INSTANCE_LABEL) or "")
    wanted = keys_condition(indexes["runner_pods"].get(key, []))
    if wanted[0] == "Unknown":
        return False
    for body in indexes["assistants"].get(key, []):
        state = body.get("status") or {}
        if state.get("observedGeneration") != (body.get("metadata") or {}).get("generation"):
            continue
        shown = {c.get("type"): c for c in state.get("conditions") or []}
        now = shown.get("KeysAccepted") or {}
        if (now.get("status"), now.get("reason"), now.get("message")) != wanted:
            return True
    return False


@kopf.on.event("v1", "pods", labels=MANAGED_BY, when=_keys_news)
async def pod_event(
    namespace: str | None, labels: Mapping[str, str], memo: Any, logger: Logger, **indexes: Any
) -> None:
    await _reconcile_users((namespace or "", labels.get(INSTANCE_LABEL) or ""), memo, logger, indexes)


@kopf.on.probe(id="assistants")
async def probe_assistants(memo: Any, **indexes: Any) -> int:
    """Shown on the liveness endpoint: how many assistants this operator watches."""
    return len(indexes["assistants"])
