"""Fixtures of the operator's integration tests: the session's real control plane (tests/conftest.py),
a fresh namespace per test, an admin client, and the real kopf operator logged in as the chart's
ServiceAccount, bound by the RBAC objects `helm template` renders.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiassistant_devtools.controlplane import ControlPlane, ControlPlaneError
from aiassistant_devtools.kubeapi import Kube, path
from aiassistant_devtools.operator import running_operator
from aiassistant_operator.settings import Settings
from tests.helm import RELEASE_NAMESPACE, template

OPERATOR_ACCOUNT = "aia-aiassistant-operator"  # the chart's ServiceAccount for release "aia"
OPERATOR_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{OPERATOR_ACCOUNT}"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def apply_sync(cluster: ControlPlane, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    try:
        cluster.request("POST", path(obj["kind"], meta.get("namespace"), api_version=obj["apiVersion"]), obj)
    except ControlPlaneError as err:
        if err.status != 409:
            raise
        cluster.request(
            "PUT", path(obj["kind"], meta.get("namespace"), meta["name"], api_version=obj["apiVersion"]), obj
        )


def ensure_namespace_sync(cluster: ControlPlane, name: str) -> None:
    try:
        cluster.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
    except ControlPlaneError as err:
        if err.status != 409:
            raise


def install_rbac(
    cluster: ControlPlane, tmp: Path, values: dict[str, Any] | None = None, release: str = "aia"
) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC objects (helm template), applied; returns them."""
    objects = [o for o in template(tmp, values, release=release) if o["kind"] in RBAC_KINDS]
    ensure_namespace_sync(cluster, RELEASE_NAMESPACE)
    for obj in objects:  # helm writes the namespace of every namespaced object
        if obj["metadata"].get("namespace"):
            ensure_namespace_sync(cluster, obj["metadata"]["namespace"])
        apply_sync(cluster, obj)
    return objects


@dataclass(frozen=True)
class Identity:
    """Credentials of an operator: a ServiceAccount's token, and a kubeconfig file holding it."""

    token: str
    kubeconfig: Path


def identity_of(
    cluster: ControlPlane, account: str, folder: Path, namespace: str = RELEASE_NAMESPACE
) -> Identity:
    token = cluster.service_account_token(namespace, account)
    return Identity(
        token, cluster.write_kubeconfig(folder / f"{account}.kubeconfig", token=token, user=account)
    )


@pytest.fixture(scope="session")
def identity(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Identity:
    """The operator's credentials: a token of the chart's ServiceAccount (cluster-wide RBAC)."""
    folder = tmp_path_factory.mktemp("chart")
    install_rbac(cluster, folder)
    return identity_of(cluster, OPERATOR_ACCOUNT, folder)


@pytest.fixture
def namespace(cluster: ControlPlane) -> Iterator[str]:
    """A namespace of this test's own (deleted afterwards; the namespace controller cleans it)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    ensure_namespace_sync(cluster, name)
    yield name
    cluster.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture
async def kube(cluster: ControlPlane) -> AsyncIterator[Kube]:
    """An admin client (system:masters) for the test's own reads and writes."""
    async with Kube(cluster.server, cluster.admin_token, cluster.ca_file) as client:
        yield client


@pytest.fixture
async def operator(identity: Identity, namespace: str) -> AsyncIterator[None]:
    """The real kopf operator (our handlers) watching the test's namespace, as the chart's account."""
    async with running_operator(identity.kubeconfig, Settings(), namespaces=[namespace]):
        yield


def assistant(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"engineModel": "grok.grok-4.3", **spec},
    }


CREDENTIALS_LABELS = {"aiassistant.dev/credentials": "true"}  # the only Secrets assistants may use


def secret(name: str, namespace: str, labelled: bool = True, **data: str) -> dict[str, Any]:
    """A Secret with `data` (stringData); labelled for assistants' use unless `labelled=False`."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labelled:
        metadata["labels"] = dict(CREDENTIALS_LABELS)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": data}


async def eventually(
    predicate: Callable[[], Awaitable[Any]], seconds: float = 20, interval: float = 0.05
) -> Any:
    """Wait until `await predicate()` is truthy; returns its value."""
    deadline = time.monotonic() + seconds
    while (value := await predicate()) in (None, False, [], {}):
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)
    return value
