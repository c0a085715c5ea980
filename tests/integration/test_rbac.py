"""Least privilege, for real: the operator runs as the ServiceAccount bound by the RBAC objects
`helm template` renders, in both modes; the real apiserver authorizes every request and its audit
log records them. A missing permission fails the life cycle (the apiserver answers 403 and the
assistant never converges); an extra one fails the check that every granted write was used.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from aiassistant_devtools.controlplane import ControlPlane
from aiassistant_devtools.kubeapi import Kube, path
from aiassistant_devtools.operator import running_operator
from aiassistant_operator.settings import Settings
from tests.helm import RELEASE_NAMESPACE, triples
from tests.integration.conftest import (
    RBAC_KINDS,
    apply_sync,
    assistant,
    ensure_namespace_sync,
    eventually,
    identity_of,
    install_rbac,
    secret,
)

KEY = "rbac-test-key"


def used(
    cluster: ControlPlane, user: str, namespaces: set[str]
) -> tuple[set[tuple[str, str, str]], list[str]]:
    """(group, resource[/sub], verb) the user's requests in `namespaces` (or cluster-scoped) used,
    and the ones the apiserver refused with 403."""
    seen, forbidden = set(), []
    for event in cluster.audit_events(user):
        ref = event.get("objectRef")
        if not ref or ref.get("namespace") not in namespaces | {None}:  # discovery: open to all
            continue
        resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        key = (ref.get("apiGroup", ""), resource, event["verb"])
        if event.get("responseStatus", {}).get("code") == 403:
            forbidden.append(f"{key}: {event['requestURI']}")
        else:
            seen.add(key)
    return seen, forbidden


async def life_cycle(kube: Kube, ns: str) -> None:
    """Everything the operator does for assistants: waits for a Secret, creates the workload, a PDB,
    repairs drift, patches on a spec change, deletes the PDB, creates, patches and deletes an HPA,
    reports an invalid spec."""
    await kube.create(assistant("waiting", ns, secretRef={"name": "perm-key", "key": "api-key"}))

    async def waiting() -> bool:
        obj = await kube.get(path("AIAssistant", ns, "waiting")) or {}
        return any(
            c["type"] == "SecretResolved" and c["status"] == "False"
            for c in (obj.get("status") or {}).get("conditions", [])
        )

    await eventually(waiting, seconds=30)
    await kube.create(secret("perm-key", ns, **{"api-key": KEY}))
    await eventually(lambda: kube.get(path("Deployment", ns, "waiting-runner")), seconds=30)
    await kube.create(assistant("perm", ns, replicas=2, secretRef={"name": "perm-key", "key": "api-key"}))
    await eventually(lambda: kube.get(path("PodDisruptionBudget", ns, "perm-runner")), seconds=30)

    async def phase(name: str, wanted: str) -> bool:
        obj = await kube.get(path("AIAssistant", ns, name)) or {}
        return (obj.get("status") or {}).get("phase") == wanted

    await eventually(lambda: phase("perm", "Ready"), seconds=30)
    # Someone edits the Service, the PDB and the NetworkPolicy; a config change re-applies
    # everything: all patched.
    drifted = {"metadata": {"labels": {"app.kubernetes.io/part-of": "someone-else"}}}
    await kube.patch(path("Service", ns, "perm-runner"), drifted)
    await kube.patch(path("PodDisruptionBudget", ns, "perm-runner"), drifted)
    await kube.patch(path("NetworkPolicy", ns, "perm-runner"), drifted)
    await kube.patch(path("AIAssistant", ns, "perm"), {"spec": {"initPrompt": "Be brief."}})

    async def repaired() -> bool:
        for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
            labels = (
                ((await kube.get(path(kind, ns, "perm-runner"))) or {}).get("metadata", {}).get("labels", {})
            )
            if labels.get("app.kubernetes.io/part-of") != "aiassistant":
                return False
        config = await kube.get(path("ConfigMap", ns, "perm-runner")) or {}
        return "Be brief." in config.get("data", {}).get("config.json", "")

    await eventually(repaired, seconds=30)
    await kube.patch(path("AIAssistant", ns, "perm"), {"spec": {"replicas": 1}})

    async def no_pdb() -> bool:
        return await kube.get(path("PodDisruptionBudget", ns, "perm-runner")) is None

    await eventually(no_pdb, seconds=30)
    scaling = {"minReplicas": 1, "maxReplicas": 3, "targetSessionsPerPod": 5}
    await kube.patch(path("AIAssistant", ns, "perm"), {"spec": {"autoscaling": scaling}})
    hpa = path("HorizontalPodAutoscaler", ns, "perm-runner")
    await eventually(lambda: kube.get(hpa), seconds=30)
    await kube.patch(
        path("AIAssistant", ns, "perm"), {"spec": {"autoscaling": {**scaling, "maxReplicas": 4}}}
    )

    async def hpa_max(wanted: int | None) -> bool:
        found = await kube.get(hpa)
        return (found or {}).get("spec", {}).get("maxReplicas") == wanted

    await eventually(lambda: hpa_max(4), seconds=30)
    await kube.patch(path("AIAssistant", ns, "perm"), {"spec": {"autoscaling": None}})
    await eventually(lambda: hpa_max(None), seconds=30)
    await kube.create(assistant("perm-bad", ns, engineModel="grok.grok-99"))
    await eventually(lambda: phase("perm-bad", "Invalid"), seconds=30)


MODES = {
    "cluster-wide": lambda namespaces: {},
    "per-namespace": lambda namespaces: {"watchNamespaces": namespaces},
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_the_chart_grants_exactly_what_the_operator_uses(
    cluster: ControlPlane, kube: Kube, tmp_path: Path, mode: str
) -> None:
    suffix = uuid.uuid4().hex[:6]
    release, ns = f"rbac-{suffix}", f"rbac-{suffix}-bots"
    ensure_namespace_sync(cluster, ns)
    objects = install_rbac(cluster, tmp_path, MODES[mode]([ns]), release=release)
    account = f"{release}-aiassistant-operator"
    user = f"system:serviceaccount:{RELEASE_NAMESPACE}:{account}"
    watched = [ns] if mode == "per-namespace" else []
    async with running_operator(
        identity_of(cluster, account, tmp_path).kubeconfig, Settings(), namespaces=watched
    ):
        await life_cycle(kube, ns)
    seen, forbidden = used(cluster, user, {ns})
    assert forbidden == [], forbidden
    # Secrets are listed and watched only with the credentials label: no other reaches the operator.
    secret_reads = [
        e["requestURI"]
        for e in cluster.audit_events(user)
        if (e.get("objectRef") or {}).get("resource") == "secrets" and e["verb"] in ("list", "watch")
    ]
    selectors = {tuple(parse_qs(urlsplit(uri).query).get("labelSelector", [])) for uri in secret_reads}
    assert secret_reads and selectors == {("aiassistant.dev/credentials=true",)}, secret_reads
    granted = set().union(*(triples(o["rules"]) for o in objects if o["kind"] in {"ClusterRole", "Role"}))
    writes = {t for t in granted if t[2] not in ("get", "list", "watch")}
    assert sorted(writes - seen) == [], "granted but never used: least privilege says drop them"
    assert seen <= granted  # (else the apiserver would have said 403)
    if mode == "per-namespace":  # namespaced kinds only through the Role in the watched namespace
        cluster_role = next(o for o in objects if o["kind"] == "ClusterRole")
        assert {resource for _, resource, _ in triples(cluster_role["rules"])} == {
            "customresourcedefinitions"
        }
    for obj in objects:
        if obj["kind"] in RBAC_KINDS - {"ServiceAccount"}:
            cluster.request(
                "DELETE",
                path(
                    obj["kind"],
                    obj["metadata"].get("namespace"),
                    obj["metadata"]["name"],
                    api_version=obj["apiVersion"],
                ),
            )


async def test_a_missing_permission_fails_for_real(cluster: ControlPlane, kube: Kube, tmp_path: Path) -> None:
    """The same life cycle with `patch` on Deployments taken away: refused (403), never converges."""
    suffix = uuid.uuid4().hex[:6]
    release, ns = f"rbac-{suffix}", f"rbac-{suffix}-bots"
    ensure_namespace_sync(cluster, ns)
    objects = install_rbac(cluster, tmp_path, {"watchNamespaces": [ns]}, release=release)
    role = next(o for o in objects if o["kind"] == "Role")
    for rule in role["rules"]:
        if "deployments" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "patch"]
    apply_sync(cluster, role)
    account = f"{release}-aiassistant-operator"
    async with running_operator(
        identity_of(cluster, account, tmp_path).kubeconfig, Settings(), namespaces=[ns]
    ):
        await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
        await kube.create(assistant("stuck", ns))
        await eventually(lambda: kube.get(path("Deployment", ns, "stuck-runner")), seconds=30)
        await kube.patch(path("AIAssistant", ns, "stuck"), {"spec": {"replicas": 2}})

        async def refused() -> list[str]:
            return used(cluster, f"system:serviceaccount:{RELEASE_NAMESPACE}:{account}", {ns})[1]

        assert any("deployments" in line for line in await eventually(refused, seconds=30))
        dep = await kube.get(path("Deployment", ns, "stuck-runner")) or {}
        assert dep["spec"]["replicas"] == 1  # the change never landed
