"""maxSessionsPerPod against the runner's memory limit, on the real control plane with the real
operator: calls that cannot fit the pod's memory limit are Invalid, the status naming both fields and
what fits, and nothing is run; raising the limit the status names makes it run, with that limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiassistant_contract.capacity import RUNNER_BASE_MIB, VOICE_CALL_MIB
from aiassistant_devtools.kubeapi import Kube, KubeError, path
from tests.integration.conftest import assistant, eventually, secret

KEYS = {"secretRef": {"name": "xai-key", "key": "api-key"}}
OPENAI = {"type": "openai", "secretRef": {"name": "openai-key", "key": "api-key"}}
ACCESS = {"access": {"anonymous": True}}


async def test_calls_that_cannot_fit_the_memory_limit_are_invalid_until_it_is_raised(
    operator: None, kube: Kube, namespace: str
) -> None:
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": "xai-capacity-test-key-0123456789"}))
    await kube.create(secret("openai-key", ns, **{"api-key": "sk-capacity-test-key-0123456789"}))
    calls = 500
    await kube.create(
        assistant("callcenter", ns, **KEYS, **ACCESS, stt=OPENAI, tts=OPENAI, maxSessionsPerPod=calls)
    )

    async def invalid() -> dict[str, Any] | None:
        obj = await kube.get(path("AIAssistant", ns, "callcenter")) or {}
        st = obj.get("status") or {}
        return st if st.get("phase") == "Invalid" else None

    st = await eventually(invalid)
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    fit = (1024 - RUNNER_BASE_MIB) // VOICE_CALL_MIB
    needed = RUNNER_BASE_MIB + calls * VOICE_CALL_MIB
    assert ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith(f"spec.maxSessionsPerPod: {calls} concurrent calls do not fit")
    assert f"so 1Gi fits at most {fit}" in ready["message"], ready["message"]
    assert f"spec.resources.limits.memory to at least {needed}Mi" in ready["message"], ready["message"]
    assert await kube.get(path("Deployment", ns, "callcenter-runner")) is None

    # What the status says: the memory limit those calls need. The assistant runs, with it.
    resources = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": f"{needed}Mi"}}
    await kube.patch(path("AIAssistant", ns, "callcenter"), {"spec": {"resources": resources}})
    deployment = await eventually(lambda: kube.get(path("Deployment", ns, "callcenter-runner")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == f"{needed}Mi"


async def test_workers_count_in_the_memory_check_and_stop_at_the_api(
    operator: None, kube: Kube, namespace: str
) -> None:
    """spec.workers: the apiserver refuses more than 16; 2 workers take a base each (and the
    supervisor's), so calls that fit one worker's pod are Invalid with two, naming spec.workers."""
    ns = namespace
    with pytest.raises(KubeError) as refused:
        await kube.create(assistant("many", ns, **KEYS, **ACCESS, workers=17))
    assert refused.value.status == 422 and "spec.workers" in refused.value.message

    await kube.create(secret("xai-key", ns, **{"api-key": "xai-capacity-test-key-0123456789"}))
    await kube.create(secret("openai-key", ns, **{"api-key": "sk-capacity-test-key-0123456789"}))
    one_worker_fit = (1024 - RUNNER_BASE_MIB) // VOICE_CALL_MIB
    await kube.create(
        assistant(
            "pair", ns, **KEYS, **ACCESS, stt=OPENAI, tts=OPENAI, maxSessionsPerPod=one_worker_fit, workers=2
        )
    )

    async def invalid() -> dict[str, Any] | None:
        obj = await kube.get(path("AIAssistant", ns, "pair")) or {}
        st = obj.get("status") or {}
        return st if st.get("phase") == "Invalid" else None

    ready = next(c for c in (await eventually(invalid))["conditions"] if c["type"] == "Ready")
    assert "in each of its 2 worker processes (spec.workers)" in ready["message"], ready["message"]
    assert await kube.get(path("Deployment", ns, "pair-runner")) is None
    # One worker again: it fits, and the runner's config says 1.
    await kube.patch(path("AIAssistant", ns, "pair"), {"spec": {"workers": 1}})
    await eventually(lambda: kube.get(path("Deployment", ns, "pair-runner")))
    config_map = await kube.get(path("ConfigMap", ns, "pair-runner"))
    assert config_map is not None
    (config,) = config_map["data"].values()
    assert json.loads(config)["workers"] == 1
