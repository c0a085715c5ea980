"""A small async client of the Kubernetes REST API for tests, `dev` and benchmarks (aiohttp).

Not the operator's client: this one is for the people and tests that look at a cluster — it returns
raw JSON, raises `KubeError` with the apiserver's status and message, and knows the paths of the
kinds this project touches.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON = "application/json"

# kind -> plural, for the kinds this project creates or reads. Cluster-scoped kinds are listed in CLUSTER.
PLURALS = {
    "AIAssistant": "aiassistants",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "ConfigMap": "configmaps",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Deployment": "deployments",
    "Event": "events",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Namespace": "namespaces",
    "NetworkPolicy": "networkpolicies",
    "Node": "nodes",
    "Pod": "pods",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "ReplicaSet": "replicasets",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Secret": "secrets",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
}
CLUSTER = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace", "Node"}
API_VERSIONS = {
    "AIAssistant": "aiassistant.dev/v1alpha1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "Deployment": "apps/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "NetworkPolicy": "networking.k8s.io/v1",
    "PodDisruptionBudget": "policy/v1",
    "ReplicaSet": "apps/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
}


class KubeError(Exception):
    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body
        self.message = body.get("message", "") if isinstance(body, Mapping) else str(body)
        super().__init__(f"{what}: {status} {self.message}")


def path(
    kind: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    api_version: str | None = None,
) -> str:
    """The REST path of a kind's collection, or of one object (and its subresource)."""
    version = api_version or API_VERSIONS.get(kind, "v1")
    prefix = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    where = "" if kind in CLUSTER or namespace is None else f"/namespaces/{namespace}"
    result = f"{prefix}{where}/{PLURALS[kind]}"
    if name:
        result += f"/{name}"
        if subresource:
            result += f"/{subresource}"
    return result


def object_path(obj: Mapping[str, Any], subresource: str | None = None) -> str:
    meta = obj.get("metadata") or {}
    return path(obj["kind"], meta.get("namespace"), meta.get("name"), subresource, obj.get("apiVersion"))


class Kube:
    """`async with Kube(server, token, ca_file) as kube:` then get/list/create/patch/delete."""

    def __init__(self, server: str, token: str, ca_file: Path | None = None, timeout: float = 30) -> None:
        self.server = server.rstrip("/")
        context: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else False
        self._session = aiohttp.ClientSession(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "Accept": JSON},
            connector=aiohttp.TCPConnector(ssl=context, limit=50),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body) of any request; never raises for an HTTP status."""
        headers = {"Content-Type": content_type} if body is not None else {}
        async with self._session.request(method, url, json=body, headers=headers, params=params) as rsp:
            text = await rsp.text()
            try:
                data = await rsp.json(content_type=None) if text else None
            except ValueError:
                data = text
            return rsp.status, data

    async def _ok(self, method: str, url: str, body: Any = None, content_type: str = JSON, **kw: Any) -> Any:
        status, data = await self.request(method, url, body, content_type, **kw)
        if status >= 400:
            raise KubeError(status, data, f"{method} {url}")
        return data

    async def get(self, url: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        status, data = await self.request("GET", url)
        if status == 404:
            return None
        if status >= 400:
            raise KubeError(status, data, f"GET {url}")
        return dict(data)

    async def list(self, url: str, **params: str) -> list[dict[str, Any]]:
        data = await self._ok("GET", url, params=params or None)
        return list(data.get("items") or [])

    async def create(self, obj: Mapping[str, Any], **params: str) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        url = path(obj["kind"], meta.get("namespace"), api_version=obj.get("apiVersion"))
        return dict(await self._ok("POST", url, dict(obj), params=params or None))

    async def patch(self, url: str, body: Mapping[str, Any], content_type: str = MERGE) -> dict[str, Any]:
        return dict(await self._ok("PATCH", url, dict(body), content_type))

    async def delete(self, url: str, **params: str) -> bool:
        """True if deleted, False if it was not there."""
        status, data = await self.request("DELETE", url, params=params or None)
        if status == 404:
            return False
        if status >= 400:
            raise KubeError(status, data, f"DELETE {url}")
        return True

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create, or merge-patch the existing object to it (like a plain `kubectl apply`)."""
        try:
            return await self.create(obj)
        except KubeError as err:
            if err.status != 409:
                raise
        return await self.patch(object_path(obj), obj)

    async def watch(self, url: str, resource_version: str, **params: str) -> AsyncIterator[tuple[str, Any]]:
        """(type, object) of each change after `resource_version`, as the apiserver streams them
        (ADDED, MODIFIED, DELETED), until the caller stops iterating."""
        query = {"watch": "1", "resourceVersion": resource_version, **params}
        forever = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.get(url, params=query, timeout=forever) as rsp:
            if rsp.status >= 400:
                raise KubeError(rsp.status, await rsp.text(), f"WATCH {url}")
            async for line in rsp.content:  # one JSON event per line
                if line.strip():
                    event = json.loads(line)
                    yield event["type"], event["object"]

    async def ensure_namespace(self, name: str) -> None:
        status, data = await self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise KubeError(status, data, f"create namespace {name}")
