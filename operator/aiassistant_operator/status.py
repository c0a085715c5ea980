"""An AIAssistant's status, computed (pure): phase, conditions, and which Events a change deserves.

`Findings` is what one reconcile found about the spec and its keys; with the runner Deployment's
readiness and the status on the server, `status()` gives the status to write and `events()` the
Events worth posting: only transitions, decided from the server's status, so a restarted operator
says nothing it has said before.
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
    "observedGeneration",
    "conditions",
)


@dataclass(frozen=True)
class Findings:
    generation: int
    model: Cond
    secret: Cond
    replicas: int = 1
    target: str | None = None
    model_name: str | None = None
    endpoint: str | None = None
    invalid: str | None = None  # the spec error, if any


def status(found: Findings, ready: int, previous: Mapping[str, Any]) -> dict[str, Any]:
    if found.invalid is not None:
        phase, cond = "Invalid", ("False", "InvalidSpec", found.invalid)
    elif found.secret[0] == "False":
        phase = "Degraded" if ready else "Pending"
        cond = ("False", "SecretMissing", found.secret[2])
    elif ready >= found.replicas:
        phase, cond = "Ready", ("True", "ReplicasReady", f"{ready}/{found.replicas} runner pods ready")
    else:
        phase = "Degraded" if ready else "Pending"
        cond = ("False", "ReplicasNotReady", f"{ready}/{found.replicas} runner pods ready")
    return {
        "phase": phase,
        "engineTarget": found.target,
        "engineModelName": found.model_name,
        "endpoint": found.endpoint,
        "readyReplicas": None if found.invalid is not None else ready,
        "observedGeneration": found.generation,
        "conditions": _conditions(
            {"ModelValid": found.model, "SecretResolved": found.secret, "Ready": cond},
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
            cond["status"] == "False" and cond["reason"] in ("InvalidSpec", "SecretMissing")
        )
        if problem and news and warning not in found:  # SecretResolved and Ready say it both
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
