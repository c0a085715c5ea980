"""KeysAccepted on the real control plane: a runner pod whose key its provider refused makes the
AIAssistant say KeyRejected, with the runner's termination message, within 30 s.

Under kwok no runner code runs, so the test writes what the kubelet would after the runner exited 3
on a refused key: the container's lastState.terminated.message (the runner's --termination-log),
state waiting in CrashLoopBackOff, not ready — through the pods/status subresource, as an identity
allowed to (the admin; the operator itself can only list and watch pods).
"""

from __future__ import annotations

import time
from typing import Any

from aiassistant_devtools.kubeapi import Kube, path
from tests.integration.conftest import assistant, eventually, secret
from tests.integration.test_operator import KEY_VALUE, conditions, events, phase, pods

WHY = (
    "XAI_API_KEY was rejected by grok (GET https://api.x.ai/v1/models: 400 Incorrect API key "
    "provided: xa***89. You can obtain an API key from https://console.x.ai.)"
)


def crashed(container: dict[str, Any]) -> dict[str, Any]:
    return {
        **container,
        "ready": False,
        "started": False,
        "restartCount": 1,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}},
        "lastState": {
            "terminated": {
                "exitCode": 3,
                "reason": "Error",
                "message": f"KeyRejected: {WHY}",
                "startedAt": "2026-12-01T10:00:00Z",
                "finishedAt": "2026-12-01T10:00:01Z",
            }
        },
    }


async def test_a_refused_key_shows_key_rejected(operator: None, kube: Kube, namespace: str) -> None:
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY_VALUE}))
    await kube.create(assistant("wrongkey", ns, secretRef={"name": "xai-key", "key": "api-key"}))
    await eventually(lambda: _is(phase(kube, ns, "wrongkey"), "Ready"), seconds=30)
    assert (await conditions(kube, ns, "wrongkey"))["KeysAccepted"]["status"] == "True"
    (pod,) = await pods(kube, ns, "wrongkey")
    container = pod["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"  # where the runner writes it

    started = time.monotonic()
    statuses = [crashed(c) if c["name"] == "runner" else c for c in pod["status"]["containerStatuses"]]
    ready = [
        {**c, "status": "False"} if c["type"] in ("Ready", "ContainersReady") else c
        for c in pod["status"]["conditions"]
    ]
    await kube.patch(
        path("Pod", ns, pod["metadata"]["name"], "status"),
        {"status": {"containerStatuses": statuses, "conditions": ready}},
    )

    async def rejected() -> dict[str, Any] | None:
        conds = await conditions(kube, ns, "wrongkey")
        keys = conds.get("KeysAccepted") or {}
        return conds if (keys.get("status"), keys.get("reason")) == ("False", "KeyRejected") else None

    conds = await eventually(rejected, seconds=30)
    assert time.monotonic() - started < 30
    assert conds["KeysAccepted"]["message"] == WHY
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "KeyRejected")
    warned = await eventually(lambda: _reasons(events(kube, ns, "wrongkey"), {"KeyRejected"}))
    assert warned
    assert KEY_VALUE not in str(conds)


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _reasons(found: Any, wanted: set[str]) -> bool:
    return wanted <= {e["reason"] for e in await found}
