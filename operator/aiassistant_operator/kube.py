"""Thin async Kubernetes writes for the handlers: apply (create-or-patch), status, delete.

They go through kopf's own authenticated client (the same aiohttp session, credentials from kopf's
login handlers, retries with backoff on 5xx/429/timeouts). That client is kopf-internal, hence pinned
kopf==1.45.2 and kept to this one module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kopf._cogs.clients import api, errors

# Kinds the renderer produces -> (API prefix, plural).
PATHS: Mapping[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
}
ATTEMPTS = 5  # for write conflicts (409) and objects vanishing between calls (404)

Logger = logging.Logger | logging.LoggerAdapter[Any]
NotFound = errors.APINotFoundError
Conflict = errors.APIConflictError


def url(kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = PATHS[kind]
    base = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


def contains(actual: Any, desired: Any) -> bool:
    """Whether `actual` already has every field of `desired` (server defaults may add more)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(contains(actual.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(contains(a, d) for a, d in zip(actual, desired, strict=True))
        )
    return bool(actual == desired)


async def apply(obj: Mapping[str, Any], settings: kopf.OperatorSettings, logger: Logger) -> bool:
    """Create the object or bring the existing one to it; True if anything was written.

    Creating first makes the common case one request; an existing object is read and patched only
    if it differs, so re-applying after a restart writes nothing and creates no duplicates.
    """
    meta = obj["metadata"]
    collection = url(obj["kind"], meta["namespace"])
    item = f"{collection}/{meta['name']}"
    for attempt in range(ATTEMPTS):
        try:
            try:
                await api.post(collection, payload=obj, settings=settings, logger=logger)
                return True
            except Conflict:  # AlreadyExists (or an injected/transient conflict): compare and patch
                pass
            existing = await api.get(item, settings=settings, logger=logger)
            if contains(existing, obj):
                return False
            await api.patch(
                item,
                payload=obj,
                headers={"Content-Type": "application/merge-patch+json"},
                settings=settings,
                logger=logger,
            )
            return True
        except (Conflict, NotFound):
            await asyncio.sleep(0.05 * 2**attempt)
    raise kopf.TemporaryError(f"{obj['kind']} {meta['name']} keeps conflicting; retrying", delay=1)


async def patch_status(
    path: str, status: Mapping[str, Any], settings: kopf.OperatorSettings, logger: Logger
) -> bool:
    """Merge-patch `{path}/status`; False if the object is gone."""
    for attempt in range(ATTEMPTS):
        try:
            await api.patch(
                f"{path}/status",
                payload={"status": status},
                headers={"Content-Type": "application/merge-patch+json"},
                settings=settings,
                logger=logger,
            )
            return True
        except NotFound:
            return False
        except Conflict:
            await asyncio.sleep(0.05 * 2**attempt)
    raise kopf.TemporaryError(f"status of {path} keeps conflicting; retrying", delay=1)


async def delete(
    kind: str, namespace: str, name: str, settings: kopf.OperatorSettings, logger: Logger
) -> bool:
    """Delete if present; True if something was deleted."""
    try:
        await api.delete(url(kind, namespace, name), settings=settings, logger=logger)
        return True
    except NotFound:
        return False
