"""KeysAccepted from the runner pods' status (keys.py) and what it does to the status (status.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiassistant_operator import status
from aiassistant_operator.keys import keys_condition, pod_keys
from tests.unit.test_status import FOUND

REFUSED = (
    "KeyRejected: XAI_API_KEY was rejected by grok (GET https://api.x.ai/v1/models: 400 "
    "Incorrect API key provided: xa***YQ.)"
)


def pod(ready: bool, state: dict[str, Any], last: dict[str, Any] | None = None, name: str = "runner") -> dict:
    return {"containerStatuses": [{"name": name, "ready": ready, "state": state, "lastState": last or {}}]}


def test_a_running_ready_runner_accepted_its_keys() -> None:
    assert pod_keys(pod(True, {"running": {}})) == ("accepted", "")
    # It ran before with a refused key, then a fixed Secret: the last state is history.
    assert pod_keys(pod(True, {"running": {}}, {"terminated": {"message": REFUSED}})) == ("accepted", "")


def test_a_refused_key_is_read_from_the_termination_message() -> None:
    why = REFUSED.removeprefix("KeyRejected: ")
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert pod_keys(pod(False, waiting, {"terminated": {"exitCode": 3, "message": REFUSED}})) == (
        "rejected",
        why,
    )
    assert pod_keys(pod(False, {"terminated": {"exitCode": 3, "message": REFUSED}})) == ("rejected", why)
    # A restart that is running but not yet ready still shows the refusal.
    assert pod_keys(pod(False, {"running": {}}, {"terminated": {"message": REFUSED}})) == ("rejected", why)


def test_other_exits_and_other_containers_say_nothing() -> None:
    assert pod_keys(pod(False, {"terminated": {"exitCode": 137, "message": "OOMKilled"}})) is None
    assert pod_keys(pod(False, {"waiting": {"reason": "ContainerCreating"}})) is None
    assert pod_keys(pod(True, {"running": {}}, name="sidecar")) is None
    assert pod_keys({}) is None


def test_keys_condition_over_the_pods() -> None:
    why = REFUSED.removeprefix("KeyRejected: ")
    assert keys_condition([]) == ("Unknown", "NoPodStarted", "no runner pod has checked its keys yet")
    assert keys_condition([None, ("accepted", "")])[:2] == ("True", "KeysAccepted")
    assert keys_condition([("accepted", ""), ("rejected", why), ("rejected", why)]) == (
        "False",
        "KeyRejected",
        why,
    )


def test_a_rejected_key_keeps_ready_false_and_warns_once() -> None:
    why = REFUSED.removeprefix("KeyRejected: ")
    rejected = dataclasses.replace(FOUND, keys=("False", "KeyRejected", why))
    new = status.status(rejected, status.Rollout(), {})
    conds = {c["type"]: c for c in new["conditions"]}
    assert [c["type"] for c in new["conditions"]] == ["ModelValid", "SecretResolved", "KeysAccepted", "Ready"]
    assert (conds["KeysAccepted"]["status"], conds["KeysAccepted"]["reason"]) == ("False", "KeyRejected")
    assert (conds["Ready"]["status"], conds["Ready"]["reason"], conds["Ready"]["message"]) == (
        "False",
        "KeyRejected",
        why,
    )
    assert new["phase"] == "Pending"
    assert status.events(new, {}) == [("Warning", "KeyRejected", why)]
    assert status.events(new, new) == []
    done = status.Rollout(pods=2, updated=2, ready=2, observed=True)
    fixed = status.status(dataclasses.replace(FOUND, keys=("True", "KeysAccepted", "ok")), done, new)
    assert fixed["phase"] == "Ready"


def test_a_rejected_key_during_a_rollout_is_degraded_not_rolling_out() -> None:
    why = REFUSED.removeprefix("KeyRejected: ")
    surge = status.Rollout(pods=3, updated=1, ready=2, observed=True)  # the new pod crashes on its key
    new = status.status(dataclasses.replace(FOUND, keys=("False", "KeyRejected", why)), surge, {})
    ready = next(c for c in new["conditions"] if c["type"] == "Ready")
    assert (new["phase"], ready["reason"]) == ("Degraded", "KeyRejected")
