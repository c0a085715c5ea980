"""One AIAssistant, level-triggered: validate -> render (pure) -> apply what differs -> status.

`reconcile` reads what the cluster holds from kopf's indexes (`Cluster`: the Secrets' key digests and
the runner objects as they are on the server), writes only what differs from the rendered objects,
and writes the status only if it differs from the one on the server — so a restarted operator with
unchanged assistants sends nothing. It keeps no state between calls: any event (the assistant's, a
Secret's, a runner Deployment's) may call it, in any order, and the result is the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from aiassistant_contract.assistant import check_name, parse_spec
from aiassistant_contract.engines import retirement_warning
from aiassistant_contract.errors import SpecError

from . import apply, metrics, status
from .access import CREDENTIALS_LABEL, access_condition
from .keys import keys_condition
from .policy import check_policy
from .render import (
    SecretKeyRef,
    endpoint,
    referenced_secrets,
    render_parsed,
    runner_name,
    secrets_hash,
    selector,
)
from .settings import Settings

Key = tuple[str, str]  # namespace, name
OPTIONAL_KINDS = frozenset({"PodDisruptionBudget", "HorizontalPodAutoscaler"})  # rendered for some specs
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclass(frozen=True)
class Cluster:
    """What kopf's indexes know: Secret key digests by (namespace, Secret), and the runner objects
    by (namespace, assistant) per kind, as lean bodies (metadata, spec/data, status)."""

    secrets: kopf.Index[Key, dict[str, str]]
    runners: Mapping[str, kopf.Index[Key, dict[str, Any]]]  # kind -> index
    pods: kopf.Index[Key, tuple[str, str] | None] | None = None  # keys.pod_keys of each runner pod

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return next(iter(self.secrets.get((namespace, name), [])), None)

    def runner(self, kind: str, key: Key) -> dict[str, Any] | None:
        return next(iter(self.runners[kind].get(key, [])), None)

    def keys(self, key: Key) -> status.Cond | None:
        """KeysAccepted of the assistant's runner pods (None without a pod index)."""
        return None if self.pods is None else keys_condition(self.pods.get(key, []))

    def rollout(self, key: Key) -> status.Rollout:
        return status.Rollout.of(self.runner("Deployment", key))


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


def missing_keys(refs: list[SecretKeyRef], namespace: str, cluster: Cluster) -> str:
    """A message naming each missing Secret or key (never a value); "" if all are there."""
    problems = []
    for ref in refs:
        digests = cluster.secret(namespace, ref.name)
        if digests is None:  # the operator sees only labelled Secrets (handlers.py)
            problems.append(
                f"Secret {ref.name!r} not found in namespace {namespace!r} among the Secrets labelled "
                f"{CREDENTIALS_LABEL}=true (needed for {ref.env}); if it exists, label it: kubectl "
                f"label secret {ref.name} -n {namespace} {CREDENTIALS_LABEL}=true"
            )
        elif ref.key not in digests:
            problems.append(f"Secret {ref.name!r} has no key {ref.key!r} (needed for {ref.env})")
    return "; ".join(problems)


def secret_names(spec: Any, settings: Settings) -> list[str]:
    """The Secrets an assistant's spec uses (none if the spec is invalid): for the users index."""
    try:
        return sorted(
            {ref.name for ref in referenced_secrets(parse_spec(spec, settings.registry()), settings)}
        )
    except SpecError:
        return []


async def reconcile(
    body: Mapping[str, Any], settings: Settings, cluster: Cluster, api: apply.Client, logger: Logger
) -> None:
    with metrics.RECONCILE_SECONDS.time():
        result = await _reconcile(body, settings, cluster, api, logger)
    metrics.RECONCILES.labels(result=result).inc()


async def _reconcile(
    body: Mapping[str, Any], settings: Settings, cluster: Cluster, api: apply.Client, logger: Logger
) -> str:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    key: Key = (namespace, name)
    generation = int(meta.get("generation") or 0)
    pending: status.Cond = ("Unknown", "Pending", "")
    registry = settings.registry()
    try:
        check_name(name)  # an older CRD without the name rule may have let it in
        spec = parse_spec(body.get("spec"), registry)
        check_policy(spec, settings)
        refs = referenced_secrets(spec, settings)
    except SpecError as err:
        message = str(err)
        raw = body.get("spec")
        model = (
            ("False", "UnsupportedModel", message)
            if "spec.engineModel" in message or not isinstance(raw, Mapping)
            else ("True", "ModelSupported", f"{raw.get('engineModel')} is served by the runner")
        )
        secret = ("Unknown", "InvalidSpec", "not checked: the spec is invalid")
        found = status.Findings(generation, model, secret, selector=selector(name), invalid=message)
        await _write_status(body, found, cluster.rollout(key), api)
        return "invalid"

    engine = spec.engine(registry)
    found = status.Findings(
        generation,
        # A retired model still answers (its provider serves it by the replacement): valid, but said.
        model=("True", "ModelRetired", retired)
        if (retired := retirement_warning(spec.engine_model, registry))
        else ("True", "ModelSupported", f"{engine} is served by the runner"),
        secret=pending,
        replicas=spec.desired_replicas,
        target=engine.target.name,
        model_name=engine.model,
        endpoint=endpoint(name, namespace),
        selector=selector(name),
        keys=cluster.keys(key),
        access=access_condition(spec),
    )
    missing = missing_keys(refs, namespace, cluster)
    if missing:  # the running workload (if any) is kept; the status says why it is not Ready
        found = dataclasses.replace(found, secret=("False", "SecretMissing", missing))
        await _write_status(body, found, cluster.rollout(key), api)
        return "secret_missing"
    found = dataclasses.replace(
        found, secret=("True", "SecretFound", ", ".join(f"{r.name}/{r.key}" for r in refs) + " found")
    )

    digests = {r.name: cluster.secret(namespace, r.name) or {} for r in refs}
    objects = render_parsed(meta, spec, refs, settings, secrets_hash(refs, digests))

    async def converge(obj: dict[str, Any]) -> dict[str, Any] | None:
        """The object as the server has it after this reconcile wrote it; None if not written."""
        actual = cluster.runner(obj["kind"], key)
        if actual is None:
            return await apply.create(api, obj)
        if not contains(actual, obj):
            return await apply.patch(api, obj)
        return None

    # Independent objects, written concurrently (a pod waits for its ConfigMap anyway).
    written = dict(
        zip((o["kind"] for o in objects), await asyncio.gather(*map(converge, objects)), strict=True)
    )
    changed = [kind for kind, now in written.items() if now is not None]
    rendered = {o["kind"] for o in objects}
    for kind in OPTIONAL_KINDS - rendered:  # e.g. the PDB after a scale-down to one pod
        stale = cluster.runner(kind, key)
        if stale is not None and await apply.delete(api, stale):
            changed.append(f"{kind} (deleted)")
    if changed:
        applied = f"{', '.join(changed)} {runner_name(name)} applied"
        logger.info(applied)
        # Said by the reconcile that wrote, for a generation the status has not seen: not by
        # whichever reconcile wins the status write (a Deployment event's may win it).
        if (body.get("status") or {}).get("observedGeneration") != generation:
            kopf.info(kopf.Body(cast(kopf.RawBody, dict(body))), reason="Applied", message=applied)
    # Just written, the Deployment in the index is the old one: its status comes from the write.
    await _write_status(body, found, cluster.rollout(key), api, written.get("Deployment"))
    return "applied" if changed else "unchanged"


async def _write_status(
    body: Mapping[str, Any],
    found: status.Findings,
    rollout: status.Rollout,
    api: apply.Client,
    written: Mapping[str, Any] | None = None,
) -> None:
    """The one status writer: a status that differs from the server's, then the Events of its
    transitions. Only the reconcile whose (resourceVersion-conditional) write lands posts them:
    concurrent reconciles of one assistant say each once.

    `rollout` (from the index) only says whether there may be news. The status written is computed
    from the Deployment as the server had it after this reconcile began: as this reconcile wrote
    it (`written`), else read now. The index may lag behind another reconcile's view, and a status
    from an older Deployment must never replace one from a newer (Ready 3/3 back to RollingOut
    1/3); with the assistant's resourceVersion precondition, only a status computed after the last
    one written can land."""
    previous = body.get("status") or {}
    if written is None:
        if status.status(found, rollout, previous) == status.own(previous):
            return
        meta = body["metadata"]
        written = await apply.get(api, "Deployment", meta["namespace"], runner_name(meta["name"]))
    new = status.status(found, status.Rollout.of(written), previous)
    if new == status.own(previous):
        return
    if await apply.write_status(api, body, new):
        for kind, reason, message in status.events(new, previous):
            post = kopf.warn if kind == "Warning" else kopf.info
            post(kopf.Body(cast(kopf.RawBody, dict(body))), reason=reason, message=message)
