"""The status an assistant gets and the Events a change deserves (status.py, pure)."""

from __future__ import annotations

from aiassistant_operator import status

FOUND = status.Findings(
    generation=3,
    model=("True", "ModelSupported", "grok/grok-4.3 is served by the runner"),
    secret=("True", "SecretFound", "xai-key/api-key found"),
    replicas=2,
    target="grok",
    model_name="grok-4.3",
    endpoint="http://bot-runner.bots.svc:8000",
)


def settled(ready: int, pods: int = 2) -> status.Rollout:
    """A Deployment whose rollout is done: every pod runs the current template."""
    return status.Rollout(pods=pods, updated=pods, ready=ready, observed=True)


def phase_and_ready(found: status.Findings, ready: int | status.Rollout) -> tuple[str, str, str]:
    rollout = settled(ready) if isinstance(ready, int) else ready
    new = status.status(found, rollout, {})
    cond = next(c for c in new["conditions"] if c["type"] == "Ready")
    return new["phase"], cond["reason"], cond["message"]


def test_phases_follow_readiness_and_keys() -> None:
    assert phase_and_ready(FOUND, 0) == ("Pending", "ReplicasNotReady", "0/2 runner pods ready")
    assert phase_and_ready(FOUND, 1) == ("Degraded", "ReplicasNotReady", "1/2 runner pods ready")
    assert phase_and_ready(FOUND, 2) == ("Ready", "ReplicasReady", "2/2 runner pods ready")
    missing = status.Findings(3, FOUND.model, ("False", "SecretMissing", "Secret 'k' not found"), 2)
    assert phase_and_ready(missing, 0)[:2] == ("Pending", "SecretMissing")
    assert phase_and_ready(missing, 2)[:2] == ("Degraded", "SecretMissing")  # pods kept, status says why
    invalid = status.Findings(
        3, ("False", "UnsupportedModel", "spec.engineModel: x"), FOUND.secret, invalid="spec.engineModel: x"
    )
    new = status.status(invalid, settled(2), {})
    assert (new["phase"], new["readyReplicas"], new["observedGeneration"]) == ("Invalid", None, 3)


def test_transition_times_stay_while_a_condition_holds() -> None:
    first = status.status(FOUND, settled(2), {})
    for cond in first["conditions"]:
        cond["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    again = status.status(FOUND, settled(2), first)
    assert again == first  # nothing changed: nothing to write
    worse = status.status(FOUND, settled(1), first)
    times = {c["type"]: c["lastTransitionTime"] for c in worse["conditions"]}
    assert times["ModelValid"] == "2026-01-01T00:00:00Z" and times["Ready"] != "2026-01-01T00:00:00Z"


def test_own_keeps_only_what_status_computes() -> None:
    server = {**status.status(FOUND, settled(2), {}), "kopf": {"progress": {}}, "other": 1}
    assert status.own(server) == status.status(FOUND, settled(2), server)


def test_events_only_on_transitions() -> None:
    pending = status.status(FOUND, settled(0), {})
    ready = status.status(FOUND, settled(2), pending)
    assert status.events(pending, {}) == []
    assert status.events(ready, pending) == [("Normal", "Ready", "2/2 runner pods ready")]
    assert status.events(ready, ready) == []  # a restart, or a resync: nothing new to say
    missing = status.Findings(3, FOUND.model, ("False", "SecretMissing", "Secret 'k' not found"), 2)
    gone = status.status(missing, settled(2), ready)
    assert status.events(gone, ready) == [("Warning", "SecretMissing", "Secret 'k' not found")]  # once
    assert status.events(status.status(missing, settled(2), gone), gone) == []


def test_a_retired_model_is_valid_and_said_once() -> None:
    retired = status.Findings(3, ("True", "ModelRetired", "grok-3 was retired by xAI"), FOUND.secret, 2)
    first = status.status(retired, settled(2), {})
    assert first["phase"] == "Ready"
    assert status.events(first, {}) == [
        ("Warning", "ModelRetired", "grok-3 was retired by xAI"),
        ("Normal", "Ready", "2/2 runner pods ready"),
    ]
    assert status.events(status.status(retired, settled(2), first), first) == []


def test_ready_only_when_the_new_spec_serves() -> None:
    """After a spec change the old pods still count as ready: Ready waits for the rollout."""
    stale = status.Rollout(pods=2, updated=2, ready=2, observed=False)  # controller not caught up
    assert phase_and_ready(FOUND, stale) == (
        "RollingOut",
        "RollingOut",
        "rolling out: 2/2 runner pods updated, 2 ready",
    )
    surge = status.Rollout(pods=3, updated=1, ready=2, observed=True)  # 1 new + 2 old pods
    assert phase_and_ready(FOUND, surge) == (
        "RollingOut",
        "RollingOut",
        "rolling out: 1/2 runner pods updated, 2 ready, 2 old still serving",
    )
    assert phase_and_ready(FOUND, status.Rollout(pods=2, updated=2, ready=2, observed=True))[0] == "Ready"
    assert phase_and_ready(FOUND, status.Rollout())[0] == "Pending"  # no Deployment yet
    scaling = status.Rollout(pods=1, updated=1, ready=1, observed=True)  # asked for 2, 1 so far
    assert phase_and_ready(FOUND, scaling)[0] == "RollingOut"
    new = status.status(FOUND, surge, {})
    assert (new["readyReplicas"], new["updatedReplicas"], new["replicas"]) == (2, 1, 3)
    ready = status.status(FOUND, settled(2), new)
    assert status.events(ready, new) == [("Normal", "Ready", "2/2 runner pods ready")]


def test_rollout_from_a_deployment() -> None:
    deployment = {
        "metadata": {"generation": 4},
        "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2},
    }
    assert status.Rollout.of(deployment) == status.Rollout(pods=2, updated=2, ready=2, observed=False)
    deployment["status"]["observedGeneration"] = 4
    assert status.Rollout.of(deployment).done(2) and not status.Rollout.of(deployment).done(3)
    assert status.Rollout.of(None) == status.Rollout() and not status.Rollout().done(1)
    assert status.Rollout.of({"metadata": {}, "status": {}}).observed is False
