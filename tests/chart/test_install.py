"""The chart installed for real: `helm install --wait` into the session's control plane (real
kube-apiserver, controllers, scheduler; kwok makes the operator's pod Running/Ready), the real kopf
operator run in-process as the ServiceAccount the release made, with the settings of the release's
Deployment, until an assistant is Ready; then `helm uninstall` leaves nothing of the release but
the CRD (crds/ is never deleted by helm) and the assistants, which are the users', not the chart's.

Both RBAC modes: cluster-wide (default values) and per-namespace (`watchNamespaces`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiassistant_devtools.controlplane import ControlPlane, ControlPlaneError
from aiassistant_devtools.kubeapi import Kube, object_path, path
from aiassistant_devtools.operator import running_operator
from aiassistant_operator.settings import Settings
from tests.helm import CHART, helm
from tests.integration.conftest import assistant, ensure_namespace_sync, eventually, identity_of, secret

CRD = "aiassistants.aiassistant.dev"
RELEASE_KINDS = (
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Deployment",
    "Service",
)
# What the release's Deployment makes through kube-controller-manager (gone by garbage collection).
DEPENDENT_KINDS = ("ReplicaSet", "Pod")
KEY = {"name": "xai-key", "key": "api-key"}


@dataclass
class Release:
    """One release of the chart, with namespaces of its own: its release namespace, and the
    namespaces its assistants live in (the watched ones, or one of its own when cluster-wide)."""

    name: str
    namespace: str
    watch: list[str]
    apps: list[str]
    kubeconfig: Path
    tmp: Path

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name}"

    @property
    def record_selector(self) -> str:  # helm's record of the release: a Secret per revision
        return f"owner=helm,name={self.name}"

    def helm(self, *args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            **{f"HELM_{d}_HOME": str(self.tmp / f"helm-{d.lower()}") for d in ("CACHE", "CONFIG", "DATA")},
        }
        common = ("--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace)
        return helm(*args, *common, values=values, tmp=self.tmp, env=env)


def _release(cluster: ControlPlane, tmp: Path, namespaced: bool) -> Iterator[Release]:
    name = f"chart-{uuid.uuid4().hex[:6]}"
    watch = [f"{name}-a", f"{name}-b"] if namespaced else []
    release = Release(name, f"{name}-system", watch, watch or [f"{name}-app"], cluster.kubeconfig, tmp)
    for ns in release.apps:  # the watched namespaces exist before the install (the Roles go there)
        ensure_namespace_sync(cluster, ns)
    yield release
    release.helm("uninstall", name, "--ignore-not-found", "--wait")  # a no-op when the test got that far
    for ns in [release.namespace, *release.apps]:
        with contextlib.suppress(ControlPlaneError):
            cluster.request("DELETE", f"/api/v1/namespaces/{ns}")


@pytest.fixture
def cluster_wide(cluster: ControlPlane, tmp_path: Path) -> Iterator[Release]:
    yield from _release(cluster, tmp_path, namespaced=False)


@pytest.fixture
def per_namespace(cluster: ControlPlane, tmp_path: Path) -> Iterator[Release]:
    yield from _release(cluster, tmp_path, namespaced=True)


@pytest.fixture
async def admin(cluster: ControlPlane) -> AsyncIterator[Kube]:
    async with Kube(cluster.server, cluster.admin_token, cluster.ca_file) as client:
        yield client


def install(release: Release) -> list[dict[str, Any]]:
    """`helm install --wait`; the objects of the release, as helm recorded them.

    helm 4 server-side applies crds/ even when the CRD exists (the session installed it): a no-op
    while the chart's CRD equals crds/ (tests/chart/test_chart.py checks it), a conflict otherwise."""
    values = {"watchNamespaces": release.watch} if release.watch else {}
    result = release.helm(
        "install",
        release.name,
        str(CHART),
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
        values=values,
    )
    assert result.returncode == 0, result.stderr
    assert "STATUS: deployed" in result.stdout, result.stdout
    manifest = release.helm("get", "manifest", release.name)
    assert manifest.returncode == 0, manifest.stderr
    return [doc for doc in yaml.safe_load_all(manifest.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def where(objects: list[dict[str, Any]]) -> Counter[tuple[str, str | None]]:
    return Counter((o["kind"], o["metadata"].get("namespace")) for o in objects)


async def check_live(admin: Kube, release: Release, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Every object of the release exists, labelled as the release's; returns its Deployment,
    which `--wait` waited for: its one pod (kwok's) is Ready."""
    for obj in objects:
        live = await admin.get(object_path(obj))
        assert live is not None, object_path(obj)
        assert live["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
    records = await admin.list(path("Secret", release.namespace), labelSelector=release.record_selector)
    assert [r["metadata"]["labels"]["status"] for r in records] == ["deployed"]  # helm's own record
    [deployment] = by_kind(objects, "Deployment")
    live = await admin.get(object_path(deployment)) or {}
    assert live["status"].get("readyReplicas") == 1, live["status"]
    return live


async def phase(admin: Kube, ns: str, name: str) -> str | None:
    obj = await admin.get(path("AIAssistant", ns, name)) or {}
    return (obj.get("status") or {}).get("phase")


async def run_operator(
    cluster: ControlPlane,
    admin: Kube,
    release: Release,
    objects: list[dict[str, Any]],
    deployment: dict[str, Any],
) -> None:
    """The operator, as the release's ServiceAccount and with the env of the release's Deployment,
    makes an assistant Ready in each of the release's app namespaces."""
    [account] = by_kind(objects, "ServiceAccount")
    sa = account["metadata"]["name"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["run"]
    settings = Settings.from_env({e["name"]: e.get("value", "") for e in container["env"]})
    assert settings.watch_namespaces == tuple(release.watch)
    identity = identity_of(cluster, sa, release.tmp, namespace=release.namespace)
    async with running_operator(
        identity.kubeconfig, settings, namespaces=settings.watch_namespaces
    ):  # as `run` does
        for ns in release.apps:
            await admin.create(secret(KEY["name"], ns, **{KEY["key"]: "xai-test-key"}))
            await admin.create(assistant("support", ns, secretRef=KEY))
        for ns in release.apps:
            await eventually(functools.partial(_is_ready, admin, ns), seconds=30)

    user = f"system:serviceaccount:{release.namespace}:{sa}"
    # The audit log: the operator was that account; nothing it asked of our namespaces, nor of the
    # cluster scope, was forbidden (a cluster-wide operator also sees other tests' namespaces).
    mine = {None, *release.apps}
    audited = [e for e in cluster.audit_events(user) if (e.get("objectRef") or {}).get("namespace") in mine]
    created = {
        (e["objectRef"]["resource"], e["objectRef"]["namespace"])
        for e in audited
        if e["verb"] == "create" and e["responseStatus"]["code"] == 201
    }
    assert {("deployments", ns) for ns in release.apps} <= created, created
    forbidden = [(e["verb"], e["requestURI"]) for e in audited if e["responseStatus"]["code"] == 403]
    assert forbidden == []


async def _is_ready(admin: Kube, ns: str) -> bool:
    return await phase(admin, ns, "support") == "Ready"


async def uninstall_leaves_only_the_crd(
    cluster: ControlPlane, admin: Kube, release: Release, objects: list[dict[str, Any]]
) -> None:
    [account] = by_kind(objects, "ServiceAccount")
    # Minted now and unused until the account is gone: the apiserver caches a token's successful
    # authentication for 10 s, so a token used just before would still pass for that long.
    token = cluster.service_account_token(release.namespace, account["metadata"]["name"])
    result = release.helm("uninstall", release.name, "--wait", "--timeout", "60s")
    assert result.returncode == 0, result.stderr
    assert f'release "{release.name}" uninstalled' in result.stdout
    for obj in objects:  # by name
        assert await admin.get(object_path(obj)) is None, object_path(obj)
    for kind in RELEASE_KINDS:  # by label, in every namespace
        assert await admin.list(path(kind), labelSelector=release.selector) == [], kind

    async def no_dependents() -> bool:
        return not any(
            [await admin.list(path(kind), labelSelector=release.selector) for kind in DEPENDENT_KINDS]
        )

    assert await eventually(no_dependents, seconds=20)
    # Nor helm's own record of the release.
    assert await admin.list(path("Secret", release.namespace), labelSelector=release.record_selector) == []
    status = release.helm("status", release.name)
    assert status.returncode != 0 and "not found" in status.stderr
    # Kept: the CRD (crds/ is install-only in helm), so the users' assistants survive.
    assert await admin.get(path("CustomResourceDefinition", name=CRD)) is not None
    for ns in release.apps:
        assert await admin.get(path("AIAssistant", ns, "support")) is not None
    # The account's token dies with the account.
    async with Kube(cluster.server, token, cluster.ca_file) as former:

        async def refused() -> bool:
            code, _ = await former.request("GET", path("AIAssistant", release.apps[0]))
            return code == 401

        assert await eventually(refused, seconds=10)


async def test_cluster_wide_install_runs_the_operator_and_uninstalls_clean(
    cluster: ControlPlane, admin: Kube, cluster_wide: Release
) -> None:
    release = cluster_wide
    objects = install(release)
    ns = release.namespace
    assert where(objects) == {
        ("ServiceAccount", ns): 1,
        ("ClusterRole", None): 1,
        ("ClusterRoleBinding", None): 1,
        ("Deployment", ns): 1,
        ("Service", ns): 1,
    }
    [role] = by_kind(objects, "ClusterRole")
    assert {"aiassistants", "secrets", "deployments"} <= {
        r for rule in role["rules"] for r in rule["resources"]
    }
    deployment = await check_live(admin, release, objects)
    await run_operator(cluster, admin, release, objects, deployment)
    await uninstall_leaves_only_the_crd(cluster, admin, release, objects)


async def test_per_namespace_install_runs_the_operator_and_uninstalls_clean(
    cluster: ControlPlane, admin: Kube, per_namespace: Release
) -> None:
    release = per_namespace
    objects = install(release)
    ns, (a, b) = release.namespace, release.watch
    assert where(objects) == {
        ("ServiceAccount", ns): 1,
        ("ClusterRole", None): 1,
        ("ClusterRoleBinding", None): 1,
        ("Role", a): 1,
        ("RoleBinding", a): 1,
        ("Role", b): 1,
        ("RoleBinding", b): 1,
        ("Deployment", ns): 1,
        ("Service", ns): 1,
    }
    [role] = by_kind(objects, "ClusterRole")  # only the cluster-scoped reads
    assert [r for rule in role["rules"] for r in rule["resources"]] == ["customresourcedefinitions"]
    deployment = await check_live(admin, release, objects)
    await run_operator(cluster, admin, release, objects, deployment)

    token = cluster.service_account_token(ns, by_kind(objects, "ServiceAccount")[0]["metadata"]["name"])
    async with Kube(cluster.server, token, cluster.ca_file) as operator:
        # Least privilege: the watched namespaces only.
        for url in (path("Secret", ns), path("Secret"), path("AIAssistant")):
            code, _ = await operator.request("GET", url)
            assert code == 403, url
        code, _ = await operator.request("GET", path("Secret", a))
        assert code == 200
    await uninstall_leaves_only_the_crd(cluster, admin, release, objects)
