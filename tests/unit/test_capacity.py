"""maxSessionsPerPod and the runner's memory limit (contract capacity.py, operator policy.py): an
assistant that takes calls is refused, naming both fields and what fits, when its calls cannot fit;
the defaults fit; text-only assistants are not held to the voice figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aiassistant_contract.capacity import (
    RUNNER_BASE_MIB,
    SMART_TURN_BASE_MIB,
    SMART_TURN_CALL_MIB,
    SUPERVISOR_MIB,
    VOICE_CALL_MIB,
    calls_that_fit,
    quantity_bytes,
)
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_operator.render import render
from aiassistant_operator.settings import RUNNER_RESOURCES_ENV, Settings

CHART_VALUES = Path(__file__).resolve().parents[2] / "charts" / "aiassistant-operator" / "values.yaml"
VOICE = {"stt": {"type": "openai"}, "tts": {"type": "openai"}}
FIT_1GI = (1024 - RUNNER_BASE_MIB) // VOICE_CALL_MIB  # calls a 1Gi runner holds


def assistant(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "bot", "namespace": "bots", "uid": "uid-1"},
        "spec": {"engineModel": "grok.grok-3", "secretRef": {"name": "k", "key": "k"}, **spec},
    }


def memory_limit(objects: list[dict[str, Any]]) -> str:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("1Gi", 1 << 30),
        ("512Mi", 512 << 20),
        ("1.5Gi", 3 << 29),
        ("1G", 10**9),
        ("1500M", 1_500_000_000),
        ("1e9", 10**9),
        ("2E", 2 * 10**18),
        ("128974848", 128974848),
        (128974848, 128974848),
        ("100m", 1),  # a thousandth of a byte is rounded up, as Kubernetes does
    ],
)
def test_memory_quantities(quantity: int | str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


@pytest.mark.parametrize("bad", ["1GB", "lots", "", "1 Gi"])
def test_not_a_quantity(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity_bytes(bad)


def test_the_defaults_fit_the_operators_default_limit() -> None:
    """The chart's default runner memory limit, the operator's default, holds the default
    maxSessionsPerPod calls, with and without smartTurn."""
    chart = yaml.safe_load(CHART_VALUES.read_text())["runnerResources"]["limits"]["memory"]
    assert chart == Settings().runner_resources["limits"]["memory"]
    default_sessions = RunnerConfig.model_fields["max_sessions_per_pod"].default
    assert calls_that_fit(chart, smart_turn=True) >= default_sessions
    objects = render(assistant(**VOICE, smartTurn=True), Settings())
    assert memory_limit(objects) == chart


def test_calls_that_do_not_fit_the_default_limit_are_refused_naming_both_fields() -> None:
    render(assistant(**VOICE, maxSessionsPerPod=FIT_1GI), Settings())  # the most that fit
    with pytest.raises(SpecError) as err:
        render(assistant(**VOICE, maxSessionsPerPod=FIT_1GI + 1), Settings())
    message = str(err.value)
    assert message.startswith(f"spec.maxSessionsPerPod: {FIT_1GI + 1} concurrent calls do not fit")
    assert (
        f"the runner's memory limit 1Gi (the operator's default runner memory limit ({RUNNER_RESOURCES_ENV}"
        in message
    )
    assert f"so 1Gi fits at most {FIT_1GI};" in message
    needed = RUNNER_BASE_MIB + (FIT_1GI + 1) * VOICE_CALL_MIB
    assert message.endswith(
        f"set spec.maxSessionsPerPod to at most {FIT_1GI} or spec.resources.limits.memory to at least {needed}Mi"
    )


def test_the_spec_memory_limit_is_the_one_checked() -> None:
    more = {"limits": {"memory": "2Gi"}}
    objects = render(assistant(**VOICE, maxSessionsPerPod=400, resources=more), Settings())
    assert memory_limit(objects) == "2Gi"
    with pytest.raises(
        SpecError, match=r"spec\.maxSessionsPerPod: 400 .* limit 512Mi \(spec\.resources\.limits\.memory\)"
    ):
        render(
            assistant(**VOICE, maxSessionsPerPod=400, resources={"limits": {"memory": "512Mi"}}), Settings()
        )
    # spec.resources replaces the default as a whole: no memory limit there, nothing to exceed
    render(assistant(**VOICE, maxSessionsPerPod=10_000, resources={"requests": {"cpu": "1"}}), Settings())


def test_smart_turn_calls_count_its_model() -> None:
    base = RUNNER_BASE_MIB + SMART_TURN_BASE_MIB
    per_call = VOICE_CALL_MIB + SMART_TURN_CALL_MIB
    fit = (1024 - base) // per_call
    render(assistant(**VOICE, smartTurn=True, maxSessionsPerPod=fit), Settings())
    message = (
        rf"a runner with smartTurn takes {base} MiB plus {per_call} MiB per call, so 1Gi fits at most {fit};"
    )
    with pytest.raises(SpecError, match=message):
        render(assistant(**VOICE, smartTurn=True, maxSessionsPerPod=fit + 1), Settings())


def test_realtime_calls_are_counted() -> None:
    realtime = {"voice": {"mode": "realtime", "model": "grok-voice-fast-1.0"}}
    with pytest.raises(SpecError, match=r"^spec\.maxSessionsPerPod: 10000 concurrent calls"):
        render(assistant(**realtime, maxSessionsPerPod=10_000), Settings())


def test_text_only_assistants_are_not_held_to_the_voice_figure() -> None:
    render(assistant(maxSessionsPerPod=10_000), Settings())
    render(assistant(stt={"type": "openai"}, maxSessionsPerPod=10_000), Settings())  # no tts: no calls


def test_an_operator_default_limit_is_checked_too() -> None:
    small = Settings.from_env({RUNNER_RESOURCES_ENV: '{"limits": {"memory": "256Mi"}}'})
    fit = (256 - RUNNER_BASE_MIB) // VOICE_CALL_MIB
    with pytest.raises(SpecError, match=rf"limit 256Mi \(the operator's default .* fits at most {fit};"):
        render(assistant(**VOICE), small)


def test_each_worker_process_counts_its_base() -> None:
    """spec.workers: every worker process loads the voice stack, so a 1Gi runner of 2 holds fewer
    calls, and the message says why; the rendered config carries the workers to the runner."""
    fit = (1024 - 2 * RUNNER_BASE_MIB - SUPERVISOR_MIB) // VOICE_CALL_MIB
    objects = render(assistant(**VOICE, workers=2, maxSessionsPerPod=fit), Settings())
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    (config,) = config_map["data"].values()
    assert RunnerConfig.model_validate_json(config).workers == 2
    with pytest.raises(SpecError) as err:
        render(assistant(**VOICE, workers=2, maxSessionsPerPod=fit + 1), Settings())
    message = str(err.value)
    assert (
        f"a runner takes {RUNNER_BASE_MIB} MiB in each of its 2 worker processes (spec.workers) and "
        f"{SUPERVISOR_MIB} MiB for their supervisor, plus "
        f"{VOICE_CALL_MIB} MiB per call, so 1Gi fits at most {fit};" in message
    )
    needed = 2 * RUNNER_BASE_MIB + SUPERVISOR_MIB + (fit + 1) * VOICE_CALL_MIB
    assert message.endswith(f"spec.resources.limits.memory to at least {needed}Mi")


@pytest.mark.parametrize("workers", [0, 17, "two"])
def test_workers_out_of_range_are_refused_naming_the_field(workers: Any) -> None:
    with pytest.raises(SpecError, match=r"spec\.workers"):
        render(assistant(workers=workers), Settings())
