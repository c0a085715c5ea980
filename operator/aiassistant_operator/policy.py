"""What an assistant's author may ask of the operator beyond the spec's own schema (no confused deputy).

Whoever may create an AIAssistant must not get, through the operator, what they could not do
themselves: run an image of their choosing in a pod that holds provider keys, or have the runner send
a key to a host of their choosing. So:
- `spec.image` must match the operator's allowed image list (settings: AIASSISTANT_ALLOWED_IMAGES;
  default: the chart's runner repository only);
- every URL (`baseURL`, `fallbacks[].baseURL`, `stt.baseURL`, `tts.baseURL`, `voice.baseURL`, tool
  `url`) passes the contract's URL policy
  (urls.py: https, or http to in-cluster Services or the operator's allowed HTTP hosts).
And what the operator will not run because it cannot work: an assistant that takes calls whose
`maxSessionsPerPod` calls do not fit its pod's memory limit (capacity.py's measured costs). It is
refused, not capped: the spec says what the pod admits (/readyz turns 503 at that many), and a
silently lower cap would leave autoscaling targets and the author's capacity planning wrong, while
the error says both ways out (fewer sessions, more memory). Text-only assistants are not checked.
Which Secrets an assistant may use is decided by a label (handlers.py watches only labelled ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiassistant_contract.assistant import AIAssistantSpec
from aiassistant_contract.capacity import (
    SUPERVISOR_MIB,
    base_mib,
    call_mib,
    calls_that_fit,
    memory_needed_mib,
)
from aiassistant_contract.errors import SpecError
from aiassistant_contract.urls import check_urls

from .settings import ALLOWED_IMAGES_ENV, RUNNER_RESOURCES_ENV, Settings


def image_allowed(image: str, patterns: tuple[str, ...]) -> bool:
    """`repo` allows `repo`, `repo:<tag>` and `repo@<digest>`; `prefix*` allows what starts with it."""
    for pattern in patterns:
        if pattern.endswith("*"):
            if image.startswith(pattern[:-1]):
                return True
        elif image == pattern or image.startswith((f"{pattern}:", f"{pattern}@")):
            return True
    return False


def runner_resources(spec: AIAssistantSpec, settings: Settings) -> Mapping[str, Any]:
    """The runner container's resources: spec.resources as a whole, else the operator's default."""
    if spec.resources is not None:
        return spec.resources.model_dump(exclude_none=True)
    return settings.runner_resources


def takes_calls(spec: AIAssistantSpec) -> bool:
    """Whether the assistant answers voice calls (a pipeline with stt and tts, or realtime)."""
    realtime = spec.voice is not None and spec.voice.mode == "realtime"
    return realtime or (spec.stt is not None and spec.tts is not None)


def capacity_problem(spec: AIAssistantSpec, settings: Settings) -> str | None:
    """Why `maxSessionsPerPod` calls do not fit the runner's memory limit (None: they do, the
    assistant takes no calls, or the pod has no memory limit)."""
    limit = (runner_resources(spec, settings).get("limits") or {}).get("memory")
    if limit is None or not takes_calls(spec):
        return None
    calls, workers = spec.max_sessions_per_pod, spec.workers
    fit = calls_that_fit(limit, spec.smart_turn, workers)
    if calls <= fit:
        return None
    where = (
        "spec.resources.limits.memory"
        if spec.resources is not None
        else f"the operator's default runner memory limit ({RUNNER_RESOURCES_ENV}, helm value runnerResources)"
    )
    smart = " with smartTurn" if spec.smart_turn else ""
    base = f"{base_mib(spec.smart_turn)} MiB"
    if workers > 1:
        base = f"{base} in each of its {workers} worker processes (spec.workers) and {SUPERVISOR_MIB} MiB for their supervisor,"
    return (
        f"spec.maxSessionsPerPod: {calls} concurrent calls do not fit the runner's memory limit {limit} "
        f"({where}): a runner{smart} takes {base} plus "
        f"{call_mib(spec.smart_turn)} MiB per call, so {limit} fits at most {fit}; set "
        f"spec.maxSessionsPerPod to at most {fit} or spec.resources.limits.memory to at least "
        f"{memory_needed_mib(calls, spec.smart_turn, workers)}Mi"
    )


def check_policy(spec: AIAssistantSpec, settings: Settings) -> None:
    """Raise SpecError naming each field the operator's policy refuses (image, URLs, sessions that
    do not fit the memory limit)."""
    problems = []
    if spec.image is not None and not image_allowed(spec.image, settings.image_patterns()):
        allowed = ", ".join(settings.image_patterns())
        problems.append(
            f"spec.image: {spec.image[:200]!r} is not an allowed runner image (allowed: {allowed}; "
            f"the operator's {ALLOWED_IMAGES_ENV} setting, helm value allowedImages)"
        )
    problems += check_urls(spec, settings.allowed_http_hosts)
    capacity = capacity_problem(spec, settings)
    if capacity:
        problems.append(capacity)
    if problems:
        raise SpecError("; ".join(problems))
