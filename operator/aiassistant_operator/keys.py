"""KeysAccepted, from the runner pods (pure): did the providers accept the pods' keys?

The runner checks each key at start and, when a provider refuses one, exits with a termination
message starting with `KeyRejected:` (runner/aiassistant_runner/key_check.py) that names the env var
and the provider's answer, never the key. The kubelet copies it into the container's status
(`state.terminated.message`, then `lastState.terminated.message` while it restarts). A runner
container that is running and ready has passed the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .status import Cond

MARKER = "KeyRejected:"  # the runner's key_check.MARKER (the operator imports nothing of the runner)
CONTAINER = "runner"
MESSAGE_CHARS = 1024


def pod_keys(pod_status: Mapping[str, Any]) -> tuple[str, str] | None:
    """("accepted", "") for a runner container running and ready, ("rejected", message) for one
    whose (last) termination was a refused key, None while neither is known."""
    for container in pod_status.get("containerStatuses") or []:
        if container.get("name") != CONTAINER:
            continue
        if container.get("ready") and "running" in (container.get("state") or {}):
            return ("accepted", "")
        for state in (container.get("state") or {}, container.get("lastState") or {}):
            message = str((state.get("terminated") or {}).get("message") or "")
            if message.startswith(MARKER):
                return ("rejected", message.removeprefix(MARKER).strip()[:MESSAGE_CHARS])
    return None


def keys_condition(verdicts: Iterable[tuple[str, str] | None]) -> Cond:
    """KeysAccepted over an assistant's runner pods: False (KeyRejected) if any pod's key was
    refused, True once a pod started with its keys, else Unknown."""
    seen = [v for v in verdicts if v is not None]
    rejected = sorted({message for verdict, message in seen if verdict == "rejected"})
    if rejected:
        return ("False", "KeyRejected", "; ".join(rejected))
    if seen:
        return ("True", "KeysAccepted", "runner pods started with their keys accepted")
    return ("Unknown", "NoPodStarted", "no runner pod has checked its keys yet")
