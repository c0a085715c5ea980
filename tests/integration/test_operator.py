"""The real kopf operator (our handlers) against the API emulator over real HTTP."""

from __future__ import annotations

import asyncio
import collections
import json
import re
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from aiassistant_operator import rbac
from aiassistant_operator.cli_dev import running_operator
from aiassistant_operator.emulator import Emulator
from aiassistant_operator.settings import Settings
from tests.integration.conftest import AIA, assistant, create, eventually, secret

KEY_VALUE = "xai-test-KEY-never-shown-0123456789"
MERGE = {"Content-Type": "application/merge-patch+json"}


def get(emu: Emulator, plural: str, name: str, group: str = "", ns: str = "default") -> dict[str, Any] | None:
    return emu.get_object(plural, ns, name, group=group)


def deployment(emu: Emulator, name: str, ns: str = "default") -> dict[str, Any] | None:
    return get(emu, "deployments", f"{name}-runner", "apps", ns)


def status(emu: Emulator, name: str, ns: str = "default") -> dict[str, Any]:
    obj = get(emu, "aiassistants", name, "aiassistant.dev", ns) or {}
    return dict(obj.get("status") or {})


def conditions(emu: Emulator, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status(emu, name).get("conditions", [])}


def events(emu: Emulator, name: str, kind: str = "Warning") -> list[dict[str, Any]]:
    return [
        e
        for e in emu.list_objects("events", "default")
        if e["involvedObject"]["name"] == name and e["type"] == kind
    ]


def set_ready(emu: Emulator, name: str, ready: int) -> None:
    dep = deployment(emu, name)
    assert dep is not None
    emu.put_object({**dep, "status": {"replicas": ready, "readyReplicas": ready}})


def pod_annotations(emu: Emulator, name: str) -> dict[str, str]:
    dep = deployment(emu, name) or {}
    return dict(dep["spec"]["template"]["metadata"]["annotations"])


async def patch(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with http.patch(url, json=body, headers=MERGE) as rsp:
        assert rsp.status == 200, await rsp.text()


def no_key_outside_the_secret(emu: Emulator) -> None:
    for plural, group in [
        ("aiassistants", "aiassistant.dev"),
        ("configmaps", ""),
        ("events", ""),
        ("deployments", "apps"),
    ]:
        dumped = json.dumps(emu.list_objects(plural, group=group))
        assert KEY_VALUE not in dumped, plural
        assert "eGFpLXRlc3Qt" not in dumped, plural  # nor its base64


async def test_valid_grok_assistant_becomes_ready(operator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    created = await create(http, assistant("support", secretRef={"name": "xai-key", "key": "api-key"}))
    dep = await eventually(lambda: deployment(operator, "support"))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["XAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "xai-key", "key": "api-key"}
    assert dep["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    config = get(operator, "configmaps", "support-runner")
    assert config is not None and json.loads(config["data"]["config.json"])["engineModel"] == "grok.grok-3"
    service = get(operator, "services", "support-runner")
    assert service is not None and service["spec"]["ports"][0]["port"] == 8000
    await eventually(lambda: status(operator, "support").get("phase") == "Pending")
    st = status(operator, "support")
    assert (st["engineTarget"], st["engineModelName"], st["readyReplicas"]) == ("grok", "grok-3", 0)
    assert st["endpoint"] == "http://support-runner.default.svc:8000"
    assert st["observedGeneration"] == 1

    set_ready(operator, "support", 1)  # no kubelet: the test plays it
    await eventually(lambda: status(operator, "support").get("phase") == "Ready")
    conds = conditions(operator, "support")
    assert {t: c["status"] for t, c in conds.items()} == {
        "ModelValid": "True",
        "SecretResolved": "True",
        "Ready": "True",
    }
    assert all(c["reason"] and c["message"] and c["lastTransitionTime"] for c in conds.values())
    assert status(operator, "support")["readyReplicas"] == 1
    assert {e["reason"] for e in events(operator, "support", "Normal")} >= {"Applied", "Ready"}
    assert not events(operator, "support")
    set_ready(operator, "support", 0)
    await eventually(lambda: status(operator, "support").get("phase") == "Pending")
    no_key_outside_the_secret(operator)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("grok.grok-99", "Unknown model 'grok-99'"),
        ("anthropic.claude-3", "Unsupported LLM service: anthropic"),
    ],
)
async def test_invalid_model_is_reported_not_run(
    operator: Emulator, http: aiohttp.ClientSession, model: str, message: str
) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("bad", engineModel=model))
    await eventually(lambda: status(operator, "bad").get("phase") == "Invalid")
    model_valid = conditions(operator, "bad")["ModelValid"]
    assert model_valid["status"] == "False" and message in model_valid["message"]
    warnings = await eventually(lambda: events(operator, "bad"))
    assert message in warnings[0]["message"]
    await asyncio.sleep(1.5)  # no endless retry: still one Warning, still no workload
    assert len(events(operator, "bad")) == 1
    assert deployment(operator, "bad") is None and get(operator, "configmaps", "bad-runner") is None
    # Fixing the spec is an update: the workload appears and the status turns valid.
    await patch(http, f"{AIA}/namespaces/default/aiassistants/bad", {"spec": {"engineModel": "grok.grok-3"}})
    await eventually(lambda: deployment(operator, "bad"))
    await eventually(lambda: status(operator, "bad").get("phase") == "Pending")
    assert conditions(operator, "bad")["ModelValid"]["status"] == "True"


async def test_format_errors_stop_at_the_api_and_at_the_operator(
    operator: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{AIA}/namespaces/default/aiassistants", json=assistant("nodot", engineModel="nodot")
    ) as rsp:
        assert rsp.status == 422 and "engineModel" in (await rsp.json())["message"]  # the CRD's CEL rule
    # Where the CRD's rules are not enforced (e.g. an older CRD), the operator still refuses it.
    operator.put_object(assistant("nodot", engineModel="nodot"))
    await eventually(lambda: status(operator, "nodot").get("phase") == "Invalid")
    assert "Wrong LLM format" in conditions(operator, "nodot")["ModelValid"]["message"]
    assert deployment(operator, "nodot") is None


async def test_missing_secret_then_created_converges(operator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, assistant("late", secretRef={"name": "late-key", "key": "token"}))
    await eventually(lambda: conditions(operator, "late").get("SecretResolved", {}).get("status") == "False")
    message = conditions(operator, "late")["SecretResolved"]["message"]
    assert "late-key" in message and "default" in message
    assert status(operator, "late")["phase"] == "Pending"
    assert deployment(operator, "late") is None
    assert (await eventually(lambda: events(operator, "late")))[0]["reason"] == "SecretMissing"
    # The Secret exists but lacks the key: the message names the key.
    await create(http, secret("late-key", other="x"))
    await eventually(lambda: "no key 'token'" in conditions(operator, "late")["SecretResolved"]["message"])
    await patch(http, "/api/v1/namespaces/default/secrets/late-key", {"stringData": {"token": KEY_VALUE}})
    dep = await eventually(
        lambda: deployment(operator, "late"), seconds=5
    )  # event-driven, not the 10 s retry
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["XAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "late-key", "key": "token"}
    await eventually(lambda: conditions(operator, "late")["SecretResolved"]["status"] == "True")
    no_key_outside_the_secret(operator)


async def test_default_key_secret_without_secret_ref(operator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("plain"))
    dep = await eventually(lambda: deployment(operator, "plain"))
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["XAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "xai-key", "key": "api-key"}


async def test_spec_update_patches_the_workload(operator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("grow"))
    first = await eventually(lambda: deployment(operator, "grow"))
    url = f"{AIA}/namespaces/default/aiassistants/grow"
    await patch(http, url, {"spec": {"replicas": 2, "initPrompt": "Be brief."}})
    dep = await eventually(lambda: (d := deployment(operator, "grow")) and d["spec"]["replicas"] == 2 and d)
    assert dep["metadata"]["uid"] == first["metadata"]["uid"]  # patched, not replaced
    assert (
        pod_annotations(operator, "grow")["aiassistant.dev/config-hash"]
        != (first["spec"]["template"]["metadata"]["annotations"]["aiassistant.dev/config-hash"])
    )
    assert await eventually(lambda: get(operator, "poddisruptionbudgets", "grow-runner", "policy"))
    await eventually(lambda: status(operator, "grow").get("observedGeneration") == 2)
    await patch(http, url, {"spec": {"replicas": 1}})
    await eventually(lambda: get(operator, "poddisruptionbudgets", "grow-runner", "policy") is None)


async def test_secret_rotation_rolls_the_pods(operator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("rot"))
    await eventually(lambda: deployment(operator, "rot"))
    before = pod_annotations(operator, "rot")
    await patch(http, "/api/v1/namespaces/default/secrets/xai-key", {"stringData": {"api-key": "rotated"}})
    await eventually(
        lambda: (
            pod_annotations(operator, "rot")["aiassistant.dev/secrets-hash"]
            != before["aiassistant.dev/secrets-hash"]
        )
    )
    assert (
        pod_annotations(operator, "rot")["aiassistant.dev/config-hash"]
        == before["aiassistant.dev/config-hash"]
    )


async def test_degraded_when_pods_or_key_go_missing(operator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("half", replicas=2))
    await eventually(lambda: deployment(operator, "half"))
    set_ready(operator, "half", 1)
    await eventually(lambda: status(operator, "half").get("phase") == "Degraded")
    assert conditions(operator, "half")["Ready"]["message"] == "1/2 runner pods ready"
    set_ready(operator, "half", 2)
    await eventually(lambda: status(operator, "half").get("phase") == "Ready")
    async with http.delete("/api/v1/namespaces/default/secrets/xai-key") as rsp:
        assert rsp.status == 200
    await eventually(lambda: conditions(operator, "half")["SecretResolved"]["status"] == "False")
    assert status(operator, "half")["phase"] == "Degraded"  # running pods are kept, the status says why
    assert deployment(operator, "half") is not None
    assert [e["reason"] for e in events(operator, "half")] == ["SecretMissing"]


async def test_status_edited_by_someone_else_is_restored(
    operator: Emulator, http: aiohttp.ClientSession
) -> None:
    """Also what heals a handler's status (sent by kopf after the handler) landing after a newer
    readiness write."""
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("kept"))
    await eventually(lambda: status(operator, "kept").get("phase") == "Pending")
    url = f"{AIA}/namespaces/default/aiassistants/kept/status"
    await patch(http, url, {"status": {"phase": "Ready", "readyReplicas": 3}})
    await eventually(
        lambda: (
            (status(operator, "kept").get("phase"), status(operator, "kept").get("readyReplicas"))
            == ("Pending", 0)
        )
    )
    assert "Ready" not in [e["reason"] for e in events(operator, "kept", "Normal")]


async def test_restart_midway_creates_no_duplicates(emulator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    names = [f"bot-{i}" for i in range(6)]
    for name in names:
        await create(http, assistant(name))
    async with running_operator(emulator.base_url, Settings()):  # stopped after the first Deployment
        await eventually(lambda: emulator.list_objects("deployments", group="apps"))
    await patch(http, f"{AIA}/namespaces/default/aiassistants/bot-0", {"spec": {"replicas": 3}})
    async with running_operator(emulator.base_url, Settings()):
        await eventually(
            lambda: all(status(emulator, n).get("observedGeneration") for n in names), seconds=20
        )
        await eventually(lambda: (deployment(emulator, "bot-0") or {}).get("spec", {}).get("replicas") == 3)
        versions = {
            d["metadata"]["name"]: d["metadata"]["resourceVersion"]
            for d in emulator.list_objects("deployments", group="apps")
        }
    for plural, group in [("deployments", "apps"), ("configmaps", ""), ("services", "")]:
        assert sorted(o["metadata"]["name"] for o in emulator.list_objects(plural, group=group)) == [
            f"{n}-runner" for n in names
        ]
    async with running_operator(emulator.base_url, Settings()):  # a third start: nothing to write
        await asyncio.sleep(1.0)
        again = {
            d["metadata"]["name"]: d["metadata"]["resourceVersion"]
            for d in emulator.list_objects("deployments", group="apps")
        }
    assert again == versions


async def test_restart_repeats_no_events(emulator: Emulator, http: aiohttp.ClientSession) -> None:
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("fine"))
    await create(http, assistant("broken", engineModel="grok.grok-99"))
    for _ in range(2):  # the second operator resumes both and has nothing new to say
        async with running_operator(emulator.base_url, Settings()):
            await eventually(lambda: events(emulator, "broken") and deployment(emulator, "fine"))
            set_ready(emulator, "fine", 1)
            await eventually(lambda: status(emulator, "fine").get("phase") == "Ready")
            await asyncio.sleep(0.5)
    assert len(events(emulator, "broken")) == 1
    assert [e["reason"] for e in events(emulator, "fine", "Normal")] == ["Applied", "Ready"]


async def test_converges_through_api_conflicts_and_errors(
    operator: Emulator, http: aiohttp.ClientSession
) -> None:
    operator.fail("create", "deployments", status=500, times=2)
    operator.fail("create", "configmaps", status=409, times=1)
    # kopf writes the handler's status with its own bookkeeping: a merge patch, which the apiserver
    # never answers with 409 (no resourceVersion in it), but may with 5xx (kopf retries those).
    operator.fail("patch", "aiassistants", status=500, times=2, subresource="status")
    operator.fail("create", "services", status=503, times=1)
    await create(http, secret("xai-key", **{"api-key": KEY_VALUE}))
    await create(http, assistant("rough"))
    await eventually(lambda: deployment(operator, "rough"), seconds=15)
    await eventually(lambda: get(operator, "services", "rough-runner"), seconds=15)
    await eventually(lambda: status(operator, "rough").get("phase") == "Pending", seconds=15)
    operator.fail("patch", "aiassistants", status=409, times=2, subresource="status")  # readiness write
    set_ready(operator, "rough", 1)
    await eventually(lambda: status(operator, "rough").get("phase") == "Ready")
    operator.fail("patch", "deployments", status=409, times=2)
    await patch(http, f"{AIA}/namespaces/default/aiassistants/rough", {"spec": {"replicas": 2}})
    await eventually(lambda: (deployment(operator, "rough") or {})["spec"]["replicas"] == 2, seconds=15)


# ---------------------------------------------------------------------- random specs

MODELS = [
    "grok.grok-3",
    "grok.grok-3-mini",
    "openai.gpt-4o-mini",
    "grok.grok-99",
    "anthropic.claude-3",
    "GROK:grok-3",
    "openai.gpt-5.2",
]
SPECS = st.fixed_dictionaries(
    # Mostly plausible values, some the API or the operator must refuse.
    {
        "engineModel": st.integers(0, 5).flatmap(
            lambda i: st.text(max_size=12) if i == 0 else st.sampled_from(MODELS)
        )
    },
    optional={
        "replicas": st.integers(0, 3),
        "initPrompt": st.text(max_size=40),
        "secretRef": st.fixed_dictionaries(
            {
                "name": st.sampled_from(["xai-key", "missing-key"]),
                "key": st.sampled_from(["api-key", "nokey"]),
            }
        ),
        "stt": st.fixed_dictionaries({"type": st.sampled_from(["deepgram", "openai"] * 3 + ["whisper"])}),
        "tts": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["elevenlabs", "cartesia", "openai"]),
                "voiceId": st.text(min_size=1, max_size=8),
            }
        ),
        "parameters": st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=2),
        "tools": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                    "url": st.sampled_from(["http://tools:8080/x"] * 5 + ["not a url"]),
                }
            ),
            max_size=2,
        ),
        "maxSessionsPerPod": st.integers(1, 200),
    },
)


def random_specs(count: int) -> list[dict[str, Any]]:
    """`count` specs drawn by hypothesis (reproducible: derandomized, no database)."""
    drawn: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(SPECS)
    def collect(spec: dict[str, Any]) -> None:
        drawn.append(spec)

    collect()
    return drawn


async def test_random_specs_converge_or_explain(operator: Emulator, http: aiohttp.ClientSession) -> None:
    for provider in ("xai", "openai", "deepgram", "elevenlabs", "cartesia"):
        await create(http, secret(f"{provider}-key", **{"api-key": KEY_VALUE}))
    accepted: dict[str, dict[str, Any]] = {}
    refused = 0
    for index, spec in enumerate(random_specs(100)):
        name = f"r{index}"
        async with http.post(
            f"{AIA}/namespaces/default/aiassistants", json={**assistant(name), "spec": spec}
        ) as rsp:
            body = await rsp.json()
            if rsp.status == 422:  # the API's schema/CEL refusal names the field
                assert re.search(r"spec\.\w+", body["message"]), body["message"]
                refused += 1
            else:
                assert rsp.status == 201, body
                accepted[name] = spec
    assert accepted, "no random spec got through the CRD's schema"

    def settled(name: str) -> bool:
        st_ = status(operator, name)
        return bool(st_.get("observedGeneration") == 1 and st_.get("phase"))

    await eventually(lambda: all(settled(n) for n in accepted), seconds=60)
    seen: collections.Counter[str] = collections.Counter()
    for name in accepted:
        st_ = status(operator, name)
        conds = {c["type"]: c for c in st_["conditions"]}
        seen[st_["phase"] if conds["SecretResolved"]["status"] != "False" else "SecretMissing"] += 1
        if st_["phase"] == "Invalid":
            assert re.match(r"spec(\.\w+|\b)", conds["Ready"]["message"]), conds
            assert deployment(operator, name) is None
        elif conds["SecretResolved"]["status"] == "False":
            assert "Secret" in conds["SecretResolved"]["message"]
        else:
            # No kubelet here: nothing gets ready, except that zero replicas are all ready.
            assert st_["phase"] == ("Ready" if accepted[name].get("replicas") == 0 else "Pending"), st_
            assert deployment(operator, name) is not None
    assert refused and seen["Invalid"] and seen["SecretMissing"] and seen["Pending"], (refused, seen)
    print(f"random specs: {refused} refused by the API, operator outcomes {dict(seen)}")
    no_key_outside_the_secret(operator)


async def test_operator_uses_only_granted_permissions(
    operator: Emulator, http: aiohttp.ClientSession
) -> None:
    """Every request the operator made in a full life cycle is granted by rbac.RULES."""
    await create(http, assistant("waiting", secretRef={"name": "perm-key", "key": "api-key"}))
    await eventually(
        lambda: conditions(operator, "waiting").get("SecretResolved", {}).get("status") == "False"
    )
    await create(http, secret("perm-key", **{"api-key": KEY_VALUE}))
    await eventually(lambda: deployment(operator, "waiting"))
    await create(http, assistant("perm", replicas=2, secretRef={"name": "perm-key", "key": "api-key"}))
    await eventually(lambda: get(operator, "poddisruptionbudgets", "perm-runner", "policy"))
    set_ready(operator, "perm", 2)
    await eventually(lambda: status(operator, "perm").get("phase") == "Ready")
    # Someone edits the Service and the PDB; a config change re-applies everything: all patched.
    drifted = {"metadata": {"labels": {"app.kubernetes.io/part-of": "someone-else"}}}
    await patch(http, "/api/v1/namespaces/default/services/perm-runner", drifted)
    await patch(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets/perm-runner", drifted)
    await patch(http, f"{AIA}/namespaces/default/aiassistants/perm", {"spec": {"initPrompt": "Be brief."}})

    def repaired(plural: str, group: str = "") -> bool:
        labels = (get(operator, plural, "perm-runner", group) or {}).get("metadata", {}).get("labels", {})
        return labels.get("app.kubernetes.io/part-of") == "aiassistant"

    await eventually(lambda: repaired("services") and repaired("poddisruptionbudgets", "policy"))
    await eventually(
        lambda: "Be brief." in (get(operator, "configmaps", "perm-runner") or {})["data"]["config.json"]
    )
    await patch(http, f"{AIA}/namespaces/default/aiassistants/perm", {"spec": {"replicas": 1}})
    await eventually(lambda: get(operator, "poddisruptionbudgets", "perm-runner", "policy") is None)
    await create(http, assistant("perm-bad", engineModel="grok.grok-99"))
    await eventually(lambda: events(operator, "perm-bad"))
    used = {
        (verb, group, resource) for agent, verb, group, resource in operator.audit if agent.startswith("kopf")
    }
    assert ("create", "apps", "deployments") in used and (
        "patch",
        "aiassistant.dev",
        "aiassistants/status",
    ) in used
    assert sorted(u for u in used if not rbac.allows(u[1], u[2], u[0])) == []
    # ...and least privilege the other way: every write the rules grant, the operator made.
    granted_writes = {
        (verb, group, resource)
        for rule in rbac.RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if verb not in ("get", "list", "watch")
    }
    assert sorted(granted_writes - used) == []
