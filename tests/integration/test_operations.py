"""Operations on the real control plane: `kubectl scale` and an HPA acting on the AIAssistant's
scale subresource, Ready that waits until the new spec serves, rollouts (a spec change, a key
rotation) that bring new pods before old ones go, and the Reason/Message columns of `kubectl get`.

The rollout tests watch the AIAssistant and its pods from one resourceVersion and compare the
revisions of the events: on this control plane's single etcd, resourceVersions are etcd revisions,
one sequence for every object, so "Ready was written after the last old pod went" is a comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiassistant_devtools.controlplane import ControlPlane
from aiassistant_devtools.kubeapi import Kube, path
from tests.integration.conftest import assistant, eventually, secret
from tests.integration.test_cli import kubectl

KEY = "xai-test-KEY-never-shown-0123456789"
INSTANCE = "app.kubernetes.io/instance"


async def status(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    return ((await kube.get(path("AIAssistant", ns, name))) or {}).get("status") or {}


async def ready(kube: Kube, ns: str, name: str, count: int) -> bool:
    shown = await status(kube, ns, name)
    return shown.get("phase") == "Ready" and shown.get("readyReplicas") == count


async def replica_sets(kube: Kube, ns: str, name: str) -> list[dict[str, Any]]:
    return await kube.list(path("ReplicaSet", ns), labelSelector=f"{INSTANCE}={name}")


async def test_kubectl_scale_carries_replicas_without_a_rollout(
    operator: None, kube: Kube, namespace: str, cluster: ControlPlane, tmp_path: Path
) -> None:
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    await kube.create(assistant("sc", ns))
    await eventually(lambda: ready(kube, ns, "sc", 1), seconds=30)
    admin = cluster.write_kubeconfig(tmp_path / "admin.kubeconfig", namespace=ns)

    kubectl(admin, "scale", "aia/sc", "--replicas=3")
    await eventually(lambda: ready(kube, ns, "sc", 3), seconds=30)
    sets = await replica_sets(kube, ns, "sc")
    assert len(sets) == 1, "replicas alone must not roll the pods"
    scale = await kube.get(path("AIAssistant", ns, "sc", "scale"))
    assert scale is not None
    assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == f"{INSTANCE}=sc,app.kubernetes.io/name=aiassistant-runner"
    pdb = await kube.get(path("PodDisruptionBudget", ns, "sc-runner"))
    assert pdb is not None  # three pods: a disruption budget

    kubectl(admin, "scale", "aia/sc", "--replicas=1")
    await eventually(lambda: ready(kube, ns, "sc", 1), seconds=30)
    assert len(await replica_sets(kube, ns, "sc")) == 1
    assert await kube.get(path("PodDisruptionBudget", ns, "sc-runner")) is None


async def test_get_shows_why_an_assistant_is_not_ready(
    operator: None, kube: Kube, namespace: str, cluster: ControlPlane, tmp_path: Path
) -> None:
    ns = namespace
    await kube.create(assistant("nokey", ns, secretRef={"name": "absent", "key": "api-key"}))
    await eventually(lambda: _phase_is(kube, ns, "nokey", "Pending"))
    admin = cluster.write_kubeconfig(tmp_path / "admin.kubeconfig", namespace=ns)
    table = kubectl(admin, "get", "aia", "nokey").splitlines()
    assert table[0].split() == ["NAME", "MODEL", "TARGET", "PHASE", "READY", "REASON", "AGE"]
    assert table[1].split()[:6] == ["nokey", "grok.grok-4.3", "grok", "Pending", "0", "SecretMissing"]
    wide = kubectl(admin, "get", "aia", "nokey", "-o", "wide")
    assert "Secret 'absent' not found in namespace" in wide


async def _phase_is(kube: Kube, ns: str, name: str, phase: str) -> bool:
    return (await status(kube, ns, name)).get("phase") == phase


async def test_an_hpa_scales_the_assistant_within_its_range(
    operator: None, kube: Kube, namespace: str
) -> None:
    """The HPA targets the AIAssistant (not the Deployment): the HPA controller of
    kube-controller-manager writes spec.replicas through the scale subresource (the operator may
    not write the spec at all: its RBAC has only aiassistants/status), the operator carries it on."""
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    scaling = {"minReplicas": 2, "maxReplicas": 4, "targetSessionsPerPod": 5}
    await kube.create(assistant("auto", ns, replicas=1, autoscaling=scaling))
    hpa = await eventually(lambda: kube.get(path("HorizontalPodAutoscaler", ns, "auto-runner")))
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "name": "auto",
    }

    async def spec_replicas() -> int | None:
        found = await kube.get(path("AIAssistant", ns, "auto"))
        replicas = (found or {}).get("spec", {}).get("replicas")
        return replicas if replicas == 2 else None

    await eventually(spec_replicas, seconds=30)  # raised to minReplicas by the HPA controller
    found = await kube.get(path("AIAssistant", ns, "auto"))
    assert found is not None
    writers = {(m["manager"], m.get("subresource")) for m in found["metadata"]["managedFields"]}
    assert ("kube-controller-manager", "scale") in writers
    await eventually(lambda: ready(kube, ns, "auto", 2), seconds=30)

    async def able_to_scale() -> bool:
        now = await kube.get(path("HorizontalPodAutoscaler", ns, "auto-runner")) or {}
        conditions = {c["type"]: c for c in now.get("status", {}).get("conditions") or []}
        return conditions.get("AbleToScale", {}).get("status") == "True"

    await eventually(able_to_scale, seconds=30)  # it reads the AIAssistant's scale subresource

    await kube.patch(path("AIAssistant", ns, "auto"), {"spec": {"autoscaling": None}})

    async def hpa_gone() -> bool:
        return await kube.get(path("HorizontalPodAutoscaler", ns, "auto-runner")) is None

    await eventually(hpa_gone)


@dataclass
class History:
    """What the watches saw, by resourceVersion (etcd revision)."""

    statuses: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    old_gone: dict[str, int] = field(default_factory=dict)  # old pod -> when it stopped serving
    new_ready: dict[str, int] = field(default_factory=dict)  # new pod -> when it was first Ready

    def ready_after_rollout(self) -> int | None:
        """The revision of the first Ready status after a RollingOut one, if seen yet."""
        rolling = False
        for revision, shown in self.statuses:
            rolling = rolling or shown.get("phase") == "RollingOut"
            if rolling and shown.get("phase") == "Ready":
                return revision
        return None


async def rollout_history(
    kube: Kube, ns: str, name: str, change: Callable[[], Awaitable[Any]], seconds: float = 60
) -> History:
    """Watch the assistant and its pods from now, make `change`, until Ready follows a RollingOut
    status and every pod that served before has gone."""
    _, listed = await kube.request("GET", path("Pod", ns), params={"labelSelector": f"{INSTANCE}={name}"})
    old = {p["metadata"]["name"] for p in listed["items"]}
    since = listed["metadata"]["resourceVersion"]
    history = History()

    async def watch_assistant() -> None:
        url = path("AIAssistant", ns)
        async for _, obj in kube.watch(url, since, fieldSelector=f"metadata.name={name}"):
            history.statuses.append((int(obj["metadata"]["resourceVersion"]), obj.get("status") or {}))

    async def watch_pods() -> None:
        async for kind, pod in kube.watch(path("Pod", ns), since, labelSelector=f"{INSTANCE}={name}"):
            meta, revision = pod["metadata"], int(pod["metadata"]["resourceVersion"])
            if meta["name"] in old and (kind == "DELETED" or meta.get("deletionTimestamp")):
                history.old_gone.setdefault(meta["name"], revision)
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
            if meta["name"] not in old and conditions.get("Ready") == "True":
                history.new_ready.setdefault(meta["name"], revision)

    tasks = [asyncio.create_task(watch_assistant()), asyncio.create_task(watch_pods())]
    try:
        await asyncio.sleep(0.2)  # both watches established
        await change()

        async def settled() -> bool:
            return history.ready_after_rollout() is not None and set(history.old_gone) == old

        await eventually(settled, seconds=seconds)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return history


def check_rollout(history: History, replicas: int) -> None:
    ready_at = history.ready_after_rollout()
    assert ready_at is not None
    assert ready_at > max(history.old_gone.values()), "Ready was shown while old pods still served"
    assert len(history.new_ready) >= replicas
    # maxUnavailable 0: the first new pod was Ready before any old pod stopped serving.
    assert min(history.new_ready.values()) < min(history.old_gone.values())
    rolling = [s for _, s in history.statuses if s.get("phase") == "RollingOut"]
    ready_cond = {c["type"]: c for c in rolling[0]["conditions"]}["Ready"]
    assert ready_cond["status"] == "False" and ready_cond["reason"] == "RollingOut"
    assert ready_cond["message"].startswith("rolling out: ")
    final = next(s for revision, s in history.statuses if revision == ready_at)
    assert final["updatedReplicas"] == final["replicas"] == final["readyReplicas"] == replicas


async def test_ready_waits_until_the_new_spec_serves(operator: None, kube: Kube, namespace: str) -> None:
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    await kube.create(assistant("roll", ns, replicas=2))
    await eventually(lambda: ready(kube, ns, "roll", 2), seconds=30)
    url = path("AIAssistant", ns, "roll")
    history = await rollout_history(
        kube, ns, "roll", lambda: kube.patch(url, {"spec": {"initPrompt": "New."}})
    )
    check_rollout(history, 2)
    generation = (await kube.get(url) or {})["metadata"]["generation"]
    assert (await status(kube, ns, "roll"))["observedGeneration"] == generation


async def test_a_key_rotation_rolls_new_pods_in_before_old_ones_go(
    operator: None, kube: Kube, namespace: str
) -> None:
    """A rotated key changes no spec (same generation), yet the status says RollingOut until the
    pods with the new key serve."""
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    await kube.create(assistant("keys", ns, replicas=2))
    await eventually(lambda: ready(kube, ns, "keys", 2), seconds=30)
    rotate = path("Secret", ns, "xai-key")
    history = await rollout_history(
        kube, ns, "keys", lambda: kube.patch(rotate, {"stringData": {"api-key": "rotated"}})
    )
    check_rollout(history, 2)


async def test_kubectl_wait_for_ready_waits_for_the_new_pods(
    operator: None, kube: Kube, namespace: str, cluster: ControlPlane, tmp_path: Path
) -> None:
    """What the docs tell users to run after a change: `kubectl wait --for=condition=Ready` returns
    only once the new spec serves (kubectl skips a condition whose observedGeneration is behind the
    object's generation, so a status from before the change does not count)."""
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    await kube.create(assistant("waited", ns, replicas=2))
    await eventually(lambda: ready(kube, ns, "waited", 2), seconds=30)
    old = {
        p["metadata"]["name"] for p in await kube.list(path("Pod", ns), labelSelector=f"{INSTANCE}=waited")
    }
    admin = cluster.write_kubeconfig(tmp_path / "admin.kubeconfig", namespace=ns)
    await kube.patch(path("AIAssistant", ns, "waited"), {"spec": {"initPrompt": "Changed."}})
    await asyncio.to_thread(kubectl, admin, "wait", "aia/waited", "--for=condition=Ready", "--timeout=60s")
    serving = {
        p["metadata"]["name"]
        for p in await kube.list(path("Pod", ns), labelSelector=f"{INSTANCE}=waited")
        if not p["metadata"].get("deletionTimestamp")
    }
    assert len(serving) == 2 and not serving & old, (serving, old)
