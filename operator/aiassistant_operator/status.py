"""An AIAssistant's status, computed (pure): phase, conditions, and which Events a change deserves.

`Findings` is what one reconcile found about the spec and its keys; with the runner Deployment's
`Rollout` and the status on the server, `status()` gives the status to write and `events()` the
Events worth posting: only transitions, decided from the server's status, so a restarted operator
says nothing it has said before.

Ready means the current spec serves: the Deployment has seen its latest template
(observedGeneration) and every pod, none of them old, runs it and is ready. Until then a rollout is
`RollingOut` with its counts, so `kubectl wait --for=jsonpath={.status.phase}=Ready` after a change
waits for the change.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Cond = tuple[str, str, str]  # status, reason, message

# status fields this module owns; anything else on the server (e.g. an old operator's) is left alone.
OWN_FIELDS = (
    "phase",
    "engineTarget",
    "engineModelName",
    "endpoint",
    "readyReplicas",
    "updatedReplicas",
    "replicas",
    "selector",
    "observedGeneration",
    "conditions",
)


@dataclass(frozen=True)
class Findings:
    generation: int
    model: Cond
    secret: Cond
    replicas: int = 1  # the runner pods the spec asks for
    target: str | None = None
    model_name: str | None = None
    endpoint: str | None = None
    selector: str | None = None  # of the runner pods, for the scale subresource
    invalid: str | None = None  # the spec error, if any
    keys: Cond | None = None  # KeysAccepted from the runner pods (keys.py); None: not shown
    access: Cond | None = None  # AccessRestricted (access.py of the operator), None if not checked


@dataclass(frozen=True)
class Rollout:
    """The runner Deployment's progress, from its status (all zero when there is none yet)."""

    pods: int = 0  # status.replicas: old and new
    updated: int = 0  # running the Deployment's current template
    ready: int = 0  # old and new
    observed: bool = False  # the Deployment controller has seen the current template and replicas

    @classmethod
    def of(cls, deployment: Mapping[str, Any] | None) -> Rollout:
        if not deployment:
            return cls()
        state = deployment.get("status") or {}
        generation = (deployment.get("metadata") or {}).get("generation")
        return cls(
            pods=int(state.get("replicas") or 0),
            updated=int(state.get("updatedReplicas") or 0),
            ready=int(state.get("readyReplicas") or 0),
            observed=generation is not None and int(state.get("observedGeneration") or 0) >= int(generation),
        )

    def done(self, desired: int) -> bool:
        """Every pod runs the current template (none is old), and there are as many as desired."""
        return self.observed and self.updated == self.pods == desired

    def summary(self, desired: int) -> str:
        old = self.pods - self.updated
        return f"rolling out: {self.updated}/{desired} runner pods updated, {self.ready} ready" + (
            f", {old} old still serving" if old > 0 else ""
        )


def status(found: Findings, rollout: Rollout, previous: Mapping[str, Any]) -> dict[str, Any]:
    ready, desired = rollout.ready, found.replicas
    if found.invalid is not None:
        phase, cond = "Invalid", ("False", "InvalidSpec", found.invalid)
    elif found.secret[0] == "False":
        phase = "Degraded" if ready else "Pending"
        cond = ("False", "SecretMissing", found.secret[2])
    elif found.keys is not None and found.keys[0] == "False":
        phase = "Degraded" if ready else "Pending"
        cond = ("False", "KeyRejected", found.keys[2])
    elif ready == 0 and desired > 0:
        phase, cond = "Pending", ("False", "ReplicasNotReady", f"0/{desired} runner pods ready")
    elif not rollout.done(desired):
        phase, cond = "RollingOut", ("False", "RollingOut", rollout.summary(desired))
    elif ready >= desired:
        phase, cond = "Ready", ("True", "ReplicasReady", f"{ready}/{desired} runner pods ready")
    else:
        phase, cond = "Degraded", ("False", "ReplicasNotReady", f"{ready}/{desired} runner pods ready")
    invalid = found.invalid is not None
    return {
        "phase": phase,
        "engineTarget": found.target,
        "engineModelName": found.model_name,
        "endpoint": found.endpoint,
        "readyReplicas": None if invalid else ready,
        "updatedReplicas": None if invalid else rollout.updated,
        "replicas": None if invalid else rollout.pods,
        "selector": found.selector,
        "observedGeneration": found.generation,
        "conditions": _conditions(
            {
                "ModelValid": found.model,
                "SecretResolved": found.secret,
                **({"KeysAccepted": found.keys} if found.keys is not None else {}),
                "Ready": cond,
                **({"AccessRestricted": found.access} if found.access is not None else {}),
            },
            previous.get("conditions") or [],
            found.generation,
        ),
    }


def own(server_status: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a status on the server that `status()` computes (to compare the two)."""
    return {key: server_status.get(key) for key in OWN_FIELDS}


def events(new: Mapping[str, Any], previous: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events for going from `previous` to `new`."""
    before = {c.get("type"): c for c in previous.get("conditions") or []}
    found: list[tuple[str, str, str]] = []
    for cond in new["conditions"]:
        old = before.get(cond["type"]) or {}
        news = (old.get("status"), old.get("message")) != (cond["status"], cond["message"])
        warning = ("Warning", cond["reason"], cond["message"])
        retired = cond["reason"] == "ModelRetired"  # valid, but worth one Warning
        problem = retired or (
            cond["status"] == "False"
            and cond["reason"] in ("InvalidSpec", "SecretMissing", "KeyRejected", "Anonymous")
        )
        if problem and news and warning not in found:  # SecretResolved (KeysAccepted) and Ready say it both
            found.append(warning)
    if new["phase"] == "Ready" and previous.get("phase") != "Ready":
        ready = next(c for c in new["conditions"] if c["type"] == "Ready")
        found.append(("Normal", "Ready", ready["message"]))
    return found


def _conditions(
    wanted: Mapping[str, Cond], previous: Iterable[Mapping[str, Any]], generation: int
) -> list[Any]:
    """Conditions keep their lastTransitionTime while their status stays the same."""
    before = {c.get("type"): c for c in previous}
    now = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = []
    for kind, (state, reason, message) in wanted.items():
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == state else None
        result.append(
            {
                "type": kind,
                "status": state,
                "reason": reason,
                "message": message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return result
