"""The operator's Kubernetes writes, through kr8s's public async API: create, patch, delete a runner
object, and the conditional status write. Transient failures (429, 5xx, timeouts) are retried with
backoff here; what is left (409, 404, 403) goes back to the caller, which is level-triggered and
will see the next watch event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import kr8s
from kr8s.asyncio.objects import (
    APIObject,
    ConfigMap,
    Deployment,
    HorizontalPodAutoscaler,
    NetworkPolicy,
    PodDisruptionBudget,
    Service,
    new_class,
)

from aiassistant_contract.assistant import API_VERSION, KIND, PLURAL

AIAssistant = new_class(KIND, version=API_VERSION, namespaced=True, plural=PLURAL)
KINDS: Mapping[str, type[APIObject]] = {
    "ConfigMap": ConfigMap,
    "Service": Service,
    "Deployment": Deployment,
    "PodDisruptionBudget": PodDisruptionBudget,
    "HorizontalPodAutoscaler": HorizontalPodAutoscaler,
    "NetworkPolicy": NetworkPolicy,
    KIND: AIAssistant,
}
BACKOFFS = (0.2, 0.5, 1.0, 2.0, 4.0)  # then the error goes to the caller
IN_FLIGHT = 16  # requests at once (see Client)
T = TypeVar("T")


@dataclass(frozen=True)
class Client:
    """kr8s's API and a bound on the requests in flight. httpx's connection pool matches every
    queued request against every connection: with hundreds queued (a bulk of new assistants) that
    cost 85 s of CPU in a 150-assistant run (yappi); at 16 in flight it is negligible."""

    api: kr8s.asyncio.Api
    slots: asyncio.Semaphore

    @classmethod
    async def connect(cls, kubeconfig: str | None, request_timeout: float | None) -> Client:
        """In-cluster, $KUBECONFIG, or `kubeconfig`: the credentials kopf logs in with."""
        api = await kr8s.asyncio.api(kubeconfig=kubeconfig)
        api.timeout = request_timeout  # httpx: None would wait forever
        return cls(api, asyncio.Semaphore(IN_FLIGHT))


def status_code(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return int(response.status_code) if isinstance(response, httpx.Response) else None


async def _retrying(client: Client, call: Callable[[], Awaitable[T]], conflicts: bool = False) -> T:
    """`call()`, again after 429, 5xx, timeouts (and 409 if `conflicts`: a merge patch without a
    resourceVersion has no precondition to fail, so a 409 there is the server's transient one)."""
    for delay in (*BACKOFFS, None):
        try:
            async with client.slots:
                return await call()
        except (kr8s.ServerError, httpx.TransportError, kr8s.APITimeoutError) as err:
            code = status_code(err)
            transient = code is None or code == 429 or code >= 500 or (conflicts and code == 409)
            if not transient or delay is None:
                raise
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def _object(client: Client, obj: Mapping[str, Any]) -> APIObject:
    return KINDS[obj["kind"]](dict(obj), api=client.api)


async def create(client: Client, obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """Create it and return it as the server made it; None if it already exists (its watch event
    will bring it to the caller)."""
    target = _object(client, obj)
    try:
        await _retrying(client, target.create)
    except kr8s.ServerError as err:
        if status_code(err) == 409:
            return None
        raise
    return dict(target.raw)


async def patch(client: Client, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-patch the object to `obj` (fields it does not name are left as they are); return it as
    the server has it now."""
    target = _object(client, obj)
    await _retrying(client, lambda: target.patch(dict(obj)), conflicts=True)
    return dict(target.raw)


async def get(client: Client, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object as the server has it now (None if there is none): fresher than any watch."""
    try:
        found = await _retrying(client, lambda: KINDS[kind].get(name, namespace=namespace, api=client.api))
    except kr8s.NotFoundError:
        return None
    return dict(found.raw)


async def delete(client: Client, obj: Mapping[str, Any]) -> bool:
    """Delete it; False if it was already gone."""
    try:
        await _retrying(client, _object(client, obj).delete)
    except kr8s.NotFoundError:
        return False
    return True


async def write_status(client: Client, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Merge-patch the status, only if the object is still the version the status was computed
    from (resourceVersion precondition); False if it changed or went meanwhile: its next watch
    event reconciles it again."""
    meta = body["metadata"]
    target = AIAssistant(
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        },
        api=client.api,
    )
    payload = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": dict(status)}
    try:
        await _retrying(client, lambda: target.patch(payload, subresource="status"))
    except kr8s.NotFoundError:
        return False
    except kr8s.ServerError as err:
        if status_code(err) == 409:
            return False
        raise
    return True
