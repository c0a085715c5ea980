"""kopf handlers, thin: validate -> render -> apply -> status and Events.

One `Reconciler` (created at operator start, kept in kopf's memo) converges an AIAssistant to its
rendered objects and writes its status. Three event sources call it:

- the AIAssistant itself (create / update of spec / resume after a restart);
- a referenced Secret (created, rotated, deleted): indexed by name, and each assistant's last
  reconcile remembers the Secrets it uses, so a late Secret converges at once and a rotated key
  changes the pod template's secrets hash (the pods roll);
- the owned Deployment's readiness: only the status is recomputed, nothing is re-applied.

Invalid spec -> phase Invalid, a Warning Event, no workload, no retry (kopf.PermanentError) until the
spec changes. Missing Secret/key -> SecretResolved=False, retried (kopf.TemporaryError). Key values
never leave kopf's watch events: the index keeps only a SHA-256 per key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from . import kube, metrics, persistence
from .render import (
    INSTANCE_LABEL,
    MANAGED_BY,
    SecretKeyRef,
    endpoint,
    referenced_secrets,
    render_parsed,
    runner_name,
    secrets_hash,
)
from .settings import Settings
from .spec import GROUP, PLURAL, VERSION, SpecError, check_name, parse_spec

SECRET_RETRY_SECONDS = 10.0
API_TIMEOUT_SECONDS = 30.0  # one API request; kopf retries it (networking.error_backoffs)

Key = tuple[str, str]  # namespace, name
Cond = tuple[str, str, str]  # status, reason, message
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclass
class Outcome:
    """What the last reconcile found: enough to recompute the status when readiness changes."""

    ref: kopf.Body  # apiVersion/kind/metadata(name, namespace, uid) for Events
    generation: int
    replicas: int
    model: Cond
    secret: Cond
    target: str | None = None
    model_name: str | None = None
    endpoint: str | None = None
    secrets_hash: str | None = None  # None: no workload applied (invalid spec or missing Secret)
    invalid: str | None = None  # the spec error, if any

    def status(self, ready: int, previous: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        if self.invalid is not None:
            phase, cond = "Invalid", ("False", "InvalidSpec", self.invalid)
        elif self.secret[0] == "False":
            phase = "Degraded" if ready else "Pending"
            cond = ("False", "SecretMissing", self.secret[2])
        elif ready >= self.replicas:
            phase, cond = "Ready", ("True", "ReplicasReady", f"{ready}/{self.replicas} runner pods ready")
        else:
            phase = "Degraded" if ready else "Pending"
            cond = ("False", "ReplicasNotReady", f"{ready}/{self.replicas} runner pods ready")
        return {
            "phase": phase,
            "engineTarget": self.target,
            "engineModelName": self.model_name,
            "endpoint": self.endpoint,
            "readyReplicas": None if self.invalid is not None else ready,
            "observedGeneration": self.generation,
            "conditions": _conditions(
                {"ModelValid": self.model, "SecretResolved": self.secret, "Ready": cond},
                previous,
                self.generation,
            ),
        }


def _conditions(
    wanted: Mapping[str, Cond], previous: Iterable[Mapping[str, Any]], generation: int
) -> list[Any]:
    """Conditions keep their lastTransitionTime while their status stays the same."""
    before = {c.get("type"): c for c in previous}
    now = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = []
    for kind, (status, reason, message) in wanted.items():
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        result.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return result


@dataclass
class Reconciler:
    """Per-operator state: settings, per-assistant locks, the last outcome/status per assistant."""

    settings: Settings
    kopf_settings: kopf.OperatorSettings
    # kopf's indexes, created once before the startup handler: Secret key digests, and readyReplicas
    # of the runner Deployments (complete before any handler runs, so a restarted operator does not
    # flap a Ready assistant to Pending).
    secrets: kopf.Index[Key, dict[str, str]]
    readiness: kopf.Index[Key, int]
    locks: collections.defaultdict[Key, asyncio.Lock] = field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )
    outcomes: dict[Key, Outcome] = field(default_factory=dict)
    written: dict[Key, dict[str, Any]] = field(default_factory=dict)  # last status written
    # Which assistants use which Secret, as of their last reconcile, and their last body (metadata
    # and spec): a Secret event reconciles its users. Kept here, not in a kopf index, which would
    # run on every write of every assistant (its status writes included).
    users: dict[Key, set[Key]] = field(default_factory=dict)  # (namespace, Secret) -> assistants
    bodies: dict[Key, dict[str, Any]] = field(default_factory=dict)
    _uses: dict[Key, list[SecretKeyRef]] = field(default_factory=dict)

    def _remember(self, key: Key, body: Mapping[str, Any], refs: list[SecretKeyRef]) -> None:
        namespace = key[0]
        meta = body["metadata"]
        self.bodies[key] = {
            "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
            "kind": body.get("kind", "AIAssistant"),
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "generation") if k in meta},
            "spec": body.get("spec"),
        }
        before = {r.name for r in self._uses.get(key, [])}
        after = {r.name for r in refs}
        for secret in before - after:
            users = self.users.get((namespace, secret), set())
            users.discard(key)
            if not users:
                self.users.pop((namespace, secret), None)
        for secret in after - before:
            self.users.setdefault((namespace, secret), set()).add(key)
        self._uses[key] = refs

    async def secret_changed(self, key: Key, logger: Logger) -> None:
        """Reconcile an assistant that uses a changed Secret if its view of the Secret changed."""
        async with self.locks[key]:
            outcome, body = self.outcomes.get(key), self.bodies.get(key)
            if outcome is None or body is None:
                return  # not reconciled yet: its own handler will see the Secret
            refs, namespace = self._uses.get(key, []), key[0]
            digests = {r.name: _one(self.secrets, (namespace, r.name)) for r in refs}
            if (
                not _missing(refs, namespace, self.secrets)
                and secrets_hash(refs, digests) == outcome.secrets_hash
            ):
                return
            logger.info(f"A Secret of AIAssistant {key[1]!r} changed: reconciling it")
            with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
                # Still missing or invalid: the status says so; the assistant's own handler retries.
                with metrics.RECONCILE_SECONDS.time():
                    await self._reconcile(key, body, logger, False, None)

    async def reconcile(
        self,
        body: Mapping[str, Any],
        logger: Logger,
        create: bool,
        patch: kopf.Patch | None = None,
    ) -> None:
        """`patch`: kopf's patch of the assistant being handled; the status goes into it (one
        /status request with kopf's own bookkeeping). Without it, the status is patched here."""
        meta = body["metadata"]
        key: Key = (meta["namespace"], meta["name"])
        async with self.locks[key]:
            with metrics.RECONCILE_SECONDS.time():
                await self._reconcile(key, body, logger, create, patch)

    async def _reconcile(
        self,
        key: Key,
        body: Mapping[str, Any],
        logger: Logger,
        create: bool,
        patch: kopf.Patch | None,
    ) -> None:
        namespace, name = key
        meta = body["metadata"]
        ref = kopf.Body(
            {
                "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": body.get("kind", "AIAssistant"),
                "metadata": {"name": name, "namespace": namespace, "uid": meta.get("uid")},
            }
        )
        previous = self.outcomes.get(key)
        outcome = Outcome(
            ref=ref,
            generation=int(meta.get("generation") or 0),
            replicas=1,
            model=("Unknown", "Pending", ""),
            secret=("Unknown", "Pending", ""),
        )
        registry = self.settings.registry()
        raw_spec = body.get("spec")
        try:
            check_name(name)  # an older CRD without the name rule may have let it in
            spec = parse_spec(raw_spec, registry)
            refs = referenced_secrets(spec, self.settings)
        except SpecError as err:
            self._remember(key, body, [])
            message = outcome.invalid = str(err)
            if "spec.engineModel" in message or not isinstance(raw_spec, Mapping):
                outcome.model = ("False", "UnsupportedModel", message)
            else:
                outcome.model = (
                    "True",
                    "ModelSupported",
                    f"{raw_spec.get('engineModel')} is served by the runner",
                )
            outcome.secret = ("Unknown", "InvalidSpec", "not checked: the spec is invalid")
            await self._finish(key, body, outcome, logger, patch)
            if _news(previous.invalid if previous else _UNSEEN, message, body):
                kopf.warn(ref, reason="InvalidSpec", message=message)
            metrics.RECONCILES.labels(result="invalid").inc()
            raise kopf.PermanentError(message) from None

        engine = spec.engine(registry)
        outcome.model = ("True", "ModelSupported", f"{engine} is served by the runner")
        outcome.target, outcome.model_name = engine.target.name, engine.model
        outcome.endpoint = endpoint(name, namespace)
        outcome.replicas = spec.replicas
        self._remember(key, body, refs)
        missing = _missing(refs, namespace, self.secrets)
        if missing:
            outcome.secret = ("False", "SecretMissing", missing)
            await self._finish(key, body, outcome, logger, patch)
            if _news(previous.secret[2] if previous else _UNSEEN, missing, body):
                kopf.warn(ref, reason="SecretMissing", message=missing)
            metrics.RECONCILES.labels(result="secret_missing").inc()
            raise kopf.TemporaryError(missing, delay=SECRET_RETRY_SECONDS)
        outcome.secret = ("True", "SecretFound", ", ".join(f"{r.name}/{r.key}" for r in refs) + " found")

        digests = {r.name: _one(self.secrets, (namespace, r.name)) for r in refs}
        outcome.secrets_hash = secrets_hash(refs, digests)
        objects = render_parsed(meta, spec, refs, self.settings, outcome.secrets_hash)
        # Independent objects: applied concurrently (a pod waits for its ConfigMap anyway).
        written = await asyncio.gather(*(kube.apply(obj, self.kopf_settings, logger) for obj in objects))
        changed = [obj["kind"] for obj, wrote in zip(objects, written, strict=True) if wrote]
        # A PDB left from when replicas were > 1. A first creation has none, unless a Secret
        # event applied the workload while the creation waited for its retry.
        had_pdb = previous is not None and previous.secrets_hash is not None and previous.replicas > 1
        if spec.replicas <= 1 and (not create or had_pdb):
            if await kube.delete(
                "PodDisruptionBudget", namespace, runner_name(name), self.kopf_settings, logger
            ):
                changed.append("PodDisruptionBudget (deleted)")
        await self._finish(key, body, outcome, logger, patch)
        if changed:
            kopf.info(ref, reason="Applied", message=f"{', '.join(changed)} {runner_name(name)} applied")
        metrics.RECONCILES.labels(result="applied" if changed else "unchanged").inc()

    async def _finish(
        self,
        key: Key,
        body: Mapping[str, Any],
        outcome: Outcome,
        logger: Logger,
        patch: kopf.Patch | None,
    ) -> None:
        self.outcomes[key] = outcome
        await self.write_status(key, outcome, body.get("status") or {}, logger, patch)

    async def write_status(
        self,
        key: Key,
        outcome: Outcome,
        on_server: Mapping[str, Any],
        logger: Logger,
        patch: kopf.Patch | None = None,
        force: bool = False,
    ) -> None:
        """Write the status unless it is what we last wrote (or `force`). `on_server`: the status as
        last seen (after a restart, nothing was written by this process yet). With kopf's `patch`,
        the status joins it: kopf sends it with its own bookkeeping when the handler returns."""
        last = self.written.get(key) or {k: v for k, v in on_server.items() if k != persistence.FIELD}
        ready = next(iter(self.readiness.get(key, [])), 0)
        status = outcome.status(ready, last.get("conditions") or [])
        if last == status and not force:
            self.written[key] = status  # as on the server (e.g. after a restart): nothing to write
            return
        namespace, name = key
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
        if patch is not None:
            patch.setdefault("status", {}).update(status)
            wrote = True  # kopf retries 5xx; a 404 means the assistant is gone
        else:
            wrote = await kube.patch_status(path, status, self.kopf_settings, logger)
        if wrote:
            became_ready = status["phase"] == "Ready" and last.get("phase") != "Ready"
            self.written[key] = status
            if became_ready:
                kopf.info(outcome.ref, reason="Ready", message=status["conditions"][2]["message"])

    async def readiness_changed(self, key: Key, logger: Logger) -> None:
        async with self.locks[key]:
            outcome = self.outcomes.get(key)
            if outcome is not None and outcome.invalid is None:
                await self.write_status(key, outcome, {}, logger)

    async def restore_status(self, key: Key, logger: Logger) -> None:
        """Write the status again: the server's lost the phase or readiness last written."""
        async with self.locks[key]:
            outcome = self.outcomes.get(key)
            if outcome is not None:
                logger.info("The status differs from the last one written: writing it again")
                await self.write_status(key, outcome, {}, logger, force=True)

    def forget(self, key: Key) -> None:
        self._remember(key, {"metadata": {}}, [])
        for cache in (self.outcomes, self.written, self.locks, self.bodies, self._uses):
            cache.pop(key, None)


_UNSEEN = object()  # this process has not reconciled the assistant yet


def _news(before: object, message: str, body: Mapping[str, Any]) -> bool:
    """Whether a problem is new: not what this process saw last, nor (after a restart) what the
    status already says. Keeps Warning Events to transitions."""
    if before is not _UNSEEN:
        return before != message
    conditions = (body.get("status") or {}).get("conditions") or []
    return not any(c.get("status") == "False" and c.get("message") == message for c in conditions)


def _one(index: kopf.Index[Key, dict[str, str]], key: Key) -> dict[str, str]:
    for value in index.get(key, []):
        return value
    return {}


def _missing(refs: Iterable[SecretKeyRef], namespace: str, secrets: kopf.Index[Key, dict[str, str]]) -> str:
    """A message naming each missing Secret or key (never a value); "" if all are there."""
    problems = []
    for ref in refs:
        if (namespace, ref.name) not in secrets:
            problems.append(
                f"Secret {ref.name!r} not found in namespace {namespace!r} (needed for {ref.env})"
            )
        elif ref.key not in _one(secrets, (namespace, ref.name)):
            problems.append(f"Secret {ref.name!r} has no key {ref.key!r} (needed for {ref.env})")
    return "; ".join(problems)


def _reconciler(memo: Any) -> Reconciler:
    reconciler: Reconciler = memo.reconciler
    return reconciler


# ------------------------------------------------------------------------- kopf wiring


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """kopf settings shared by `run`, `dev` and the tests, and the per-operator Reconciler."""
    persistence.configure(settings)  # kopf's bookkeeping in status.kopf: one /status PATCH
    settings.posting.reporting_component = "aiassistant-operator"
    # The apiserver is near (in-cluster): retry transient 5xx soon, then back off.
    settings.networking.error_backoffs = (0.2, 0.5, 1, 2, 5, 10)
    settings.watching.server_timeout = settings.watching.server_timeout or 300
    # kopf's default is aiohttp's 5 minutes: a stalled request would hold a reconcile that long.
    timeout = settings.networking.request_timeout
    if timeout is None or timeout > API_TIMEOUT_SECONDS:
        settings.networking.request_timeout = API_TIMEOUT_SECONDS
    settings.networking.connect_timeout = settings.networking.connect_timeout or 10
    our_settings = memo.get("settings") or Settings.from_env()
    memo["reconciler"] = Reconciler(
        settings=our_settings,
        kopf_settings=settings,
        # kopf passes every index by its name, to startup handlers too; the objects stay the same.
        secrets=kwargs["secret_keys"],
        readiness=kwargs["runner_readiness"],
    )


# Handlers and indexers are all `async def`: kopf runs sync ones in a thread pool, a thread hop
# per watch event.


@kopf.index("v1", "secrets")
async def secret_keys(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[Key, dict[str, str]]:
    """(namespace, Secret name) -> {key: sha256 of the value}: presence and rotation, no values."""
    data = body.get("data") or {}
    return {
        (namespace or "", name): {k: hashlib.sha256(str(v).encode()).hexdigest() for k, v in data.items()}
    }


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def assistant_changed(
    body: kopf.Body, reason: str, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
) -> None:
    await _reconciler(memo).reconcile(body, logger, create=reason == "create", patch=patch)


def _deleted_or_drifted(
    type: str, namespace: str | None, name: str, status: kopf.Status, memo: Any, **_: Any
) -> bool:
    """Deleted, or the status lost the phase/readiness this process wrote last. A handler's status
    goes out with kopf's own patch after the handler returns; a readiness write made meanwhile can
    land first, and kopf's would then leave an older readyReplicas (or someone edited the status)."""
    if type == "DELETED":
        return True
    written = _reconciler(memo).written.get((namespace or "", name))
    return written is not None and (status.get("phase"), status.get("readyReplicas")) != (
        written.get("phase"),
        written.get("readyReplicas"),
    )


def _used_secret(namespace: str | None, name: str, memo: Any, **_: Any) -> bool:
    return (namespace or "", name) in _reconciler(memo).users


@kopf.on.event(GROUP, VERSION, PLURAL, when=_deleted_or_drifted)
async def assistant_event(
    type: str, namespace: str | None, name: str, memo: Any, logger: Logger, **_: Any
) -> None:
    rec = _reconciler(memo)
    if type == "DELETED":  # owned objects go by ownerReferences; drop our caches
        rec.forget((namespace or "", name))
    else:
        await rec.restore_status((namespace or "", name), logger)


@kopf.on.event("v1", "secrets", when=_used_secret)  # quiet about the Secrets no assistant uses
async def secret_changed(
    type: str, namespace: str | None, name: str, memo: Any, logger: Logger, **_: Any
) -> None:
    """Reconcile the assistants that use this Secret if their view of it changed."""
    if type is None:
        return  # the initial listing: resume handlers take care of every assistant
    rec = _reconciler(memo)
    for key in sorted(rec.users.get((namespace or "", name), ())):
        await rec.secret_changed(key, logger)


@kopf.index("apps", "v1", "deployments", labels=MANAGED_BY)
async def runner_readiness(
    namespace: str | None, labels: Mapping[str, str], status: kopf.Status, **_: Any
) -> dict[Key, int]:
    """(namespace, assistant) -> readyReplicas of its runner Deployment."""
    instance = labels.get(INSTANCE_LABEL)
    return {(namespace or "", instance): int(status.get("readyReplicas") or 0)} if instance else {}


def _readiness_news(namespace: str | None, labels: Mapping[str, str], memo: Any, **_: Any) -> bool:
    """Whether an owned Deployment's readiness differs from the assistant's written status: most
    Deployment events (its creation, rollouts) change nothing there, and skip the handler."""
    key = (namespace or "", labels.get(INSTANCE_LABEL) or "")
    rec = _reconciler(memo)
    written = rec.written.get(key)
    ready = next(iter(rec.readiness.get(key, [])), 0)
    return written is not None and written.get("readyReplicas") != ready


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED_BY, when=_readiness_news)
async def deployment_changed(
    namespace: str | None, labels: Mapping[str, str], memo: Any, logger: Logger, **_: Any
) -> None:
    """Readiness of an owned Deployment -> the assistant's readyReplicas, phase and Ready condition."""
    instance = labels.get(INSTANCE_LABEL)
    if instance:
        await _reconciler(memo).readiness_changed((namespace or "", instance), logger)


@kopf.on.probe(id="assistants")
async def probe_assistants(memo: Any, **_: Any) -> int:
    """Shown on the liveness endpoint: how many assistants this operator tracks."""
    return len(_reconciler(memo).outcomes)
