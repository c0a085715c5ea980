"""The API emulator behaves like the apiserver where kopf, kubectl and our handlers depend on it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aiassistant_operator.emulator import Emulator
from tests.integration.conftest import AIA, assistant

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


async def call(http: aiohttp.ClientSession, method: str, url: str, status: int = 200, **kw: Any) -> Any:
    async with http.request(method, url, **kw) as rsp:
        body = await rsp.json()
        assert rsp.status == status, body
        return body


async def test_server_side_metadata_on_create(http: aiohttp.ClientSession) -> None:
    created = await call(http, "POST", CM, 201, json={"metadata": {"name": "a"}, "data": {"k": "v"}})
    meta = created["metadata"]
    assert meta["namespace"] == "default"  # from the URL
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert meta["generation"] == 1
    assert (created["apiVersion"], created["kind"]) == ("v1", "ConfigMap")
    first = await call(
        http, "POST", "/api/v1/namespaces/default/events", 201, json={"metadata": {"generateName": "x."}}
    )
    second = await call(
        http, "POST", "/api/v1/namespaces/default/events", 201, json={"metadata": {"generateName": "x."}}
    )
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("x.")
    await call(http, "POST", CM, 409, json={"metadata": {"name": "a"}})
    await call(http, "POST", "/api/v1/namespaces/nowhere/configmaps", 404, json={"metadata": {"name": "a"}})


async def test_resource_version_and_generation(http: aiohttp.ClientSession) -> None:
    url = f"{AIA}/namespaces/default/aiassistants"
    created = await call(http, "POST", url, 201, json=assistant("bot"))
    rv = created["metadata"]["resourceVersion"]
    same = await call(
        http, "PATCH", f"{url}/bot", json={"spec": {"engineModel": "grok.grok-3"}}, headers=MERGE
    )
    assert same["metadata"]["resourceVersion"] == rv  # no-op write: nothing changes
    labelled = await call(
        http, "PATCH", f"{url}/bot", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE
    )
    assert labelled["metadata"]["resourceVersion"] != rv
    assert labelled["metadata"]["generation"] == 1  # metadata is not spec
    changed = await call(http, "PATCH", f"{url}/bot", json={"spec": {"replicas": 2}}, headers=MERGE)
    assert changed["metadata"]["generation"] == 2
    # Optimistic locking and JSON patch `test` (kopf tests the resourceVersion before patching).
    await call(
        http,
        "PATCH",
        f"{url}/bot",
        409,
        json={"metadata": {"resourceVersion": rv}, "spec": {"replicas": 3}},
        headers=MERGE,
    )
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    await call(http, "PATCH", f"{url}/bot", 422, json=ops, headers=JSON_PATCH)
    ops[0]["value"] = changed["metadata"]["resourceVersion"]
    patched = await call(http, "PATCH", f"{url}/bot", json=ops, headers=JSON_PATCH)
    assert patched["metadata"]["finalizers"] == ["x"]
    # PUT replaces, keeps identity.
    patched["spec"] = {"engineModel": "openai.gpt-4o"}
    put = await call(http, "PUT", f"{url}/bot", json=patched)
    assert put["spec"] == {"engineModel": "openai.gpt-4o"} | {
        k: v for k, v in put["spec"].items() if k != "engineModel"
    }
    assert put["metadata"]["uid"] == created["metadata"]["uid"]


async def test_status_subresource_is_separate(http: aiohttp.ClientSession) -> None:
    url = f"{AIA}/namespaces/default/aiassistants"
    await call(http, "POST", url, 201, json={**assistant("bot"), "status": {"phase": "Ready"}})
    obj = await call(http, "PATCH", f"{url}/bot", json={"status": {"phase": "Ready"}}, headers=MERGE)
    assert "status" not in obj  # the main endpoint ignores status
    obj = await call(
        http,
        "PATCH",
        f"{url}/bot/status",
        json={"status": {"phase": "Pending"}, "spec": {"replicas": 5}},
        headers=MERGE,
    )
    assert obj["status"]["phase"] == "Pending"
    assert obj["spec"].get("replicas") != 5  # the status endpoint ignores the rest
    assert obj["metadata"]["generation"] == 1


async def test_schema_and_cel_violations_answer_422(http: aiohttp.ClientSession) -> None:
    url = f"{AIA}/namespaces/default/aiassistants"
    bad_cel = await call(http, "POST", url, 422, json=assistant("a", engineModel="nodot"))
    assert bad_cel["reason"] == "Invalid" and "engineModel" in bad_cel["message"]
    assert bad_cel["details"]["causes"][0]["field"] == "spec.engineModel"
    bad_type = await call(http, "POST", url, 422, json=assistant("b", replicas="two"))
    assert "replicas" in bad_type["message"]
    missing = await call(http, "POST", url, 422, json={**assistant("c"), "spec": {}})
    assert "engineModel" in missing["message"]
    # Unknown fields are pruned (the default), or rejected with fieldValidation=Strict (kubectl).
    pruned = await call(http, "POST", url, 201, json=assistant("d", bogus=1))
    assert "bogus" not in pruned["spec"]
    await call(http, "POST", f"{url}?fieldValidation=Strict", 422, json=assistant("e", bogus=1))
    await call(http, "POST", url, 201, json=assistant("f"))
    await call(http, "PATCH", f"{url}/f", 422, json={"spec": {"engineModel": "grok."}}, headers=MERGE)


async def test_watch_resumes_from_resource_version(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", CM, 201, json={"metadata": {"name": "a"}})
    listed = await call(http, "GET", CM)
    assert listed["kind"] == "ConfigMapList" and listed["apiVersion"] == "v1"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]
    await call(http, "POST", CM, 201, json={"metadata": {"name": "b", "labels": {"x": "1"}}})
    await call(http, "POST", CM, 201, json={"metadata": {"name": "c"}})
    since = listed["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "1", "labelSelector": "x=1"}
    async with http.get(CM, params=params) as rsp:
        assert rsp.headers["Content-Type"].startswith("application/json")
        events = [json.loads(line) async for line in rsp.content if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]
    # WatchList (kubectl 1.35): initial events, then a BOOKMARK marking their end.
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "1",
    }
    async with http.get(CM, params=params) as rsp:
        events = [json.loads(line) async for line in rsp.content if line.strip()]
    assert [e["type"] for e in events] == ["ADDED"] * 3 + ["BOOKMARK"]
    assert events[-1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_live_watch_sees_later_writes(http: aiohttp.ClientSession) -> None:
    listed = await call(http, "GET", CM)
    params = {"watch": "true", "resourceVersion": listed["metadata"]["resourceVersion"]}
    async with http.get(CM, params=params) as rsp:
        await call(http, "POST", CM, 201, json={"metadata": {"name": "late"}})
        line = await asyncio.wait_for(rsp.content.readline(), 5)
    assert json.loads(line)["object"]["metadata"]["name"] == "late"


async def test_garbage_collection_by_owner_references(http: aiohttp.ClientSession) -> None:
    url = f"{AIA}/namespaces/default/aiassistants"
    owner = await call(http, "POST", url, 201, json=assistant("bot"))
    ref = {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "name": "bot",
        "uid": owner["metadata"]["uid"],
    }
    await call(http, "POST", CM, 201, json={"metadata": {"name": "owned", "ownerReferences": [ref]}})
    await call(http, "POST", CM, 201, json={"metadata": {"name": "free"}})
    await call(http, "DELETE", f"{url}/bot")
    names = [o["metadata"]["name"] for o in (await call(http, "GET", CM))["items"]]
    assert names == ["free"]


async def test_finalizers_block_deletion(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", CM, 201, json={"metadata": {"name": "f", "finalizers": ["x"]}})
    marked = await call(http, "DELETE", f"{CM}/f")
    assert marked["metadata"]["deletionTimestamp"]
    await call(http, "GET", f"{CM}/f")
    await call(http, "PATCH", f"{CM}/f", json={"metadata": {"finalizers": None}}, headers=MERGE)
    await call(http, "GET", f"{CM}/f", 404)


async def test_strategic_merge_merges_named_lists(http: aiohttp.ClientSession) -> None:
    url = "/apis/apps/v1/namespaces/default/deployments"
    containers = [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
    await call(
        http,
        "POST",
        url,
        201,
        json={"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": containers}}}},
    )
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
    merged = await call(http, "PATCH", f"{url}/d", json=patch, headers=STRATEGIC)
    assert [c["image"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["a:1", "b:2"]
    replaced = await call(http, "PATCH", f"{url}/d", json=patch, headers=MERGE)
    assert [c["name"] for c in replaced["spec"]["template"]["spec"]["containers"]] == ["b"]


async def test_fault_injection(emulator: Emulator, http: aiohttp.ClientSession) -> None:
    emulator.fail("create", "configmaps", status=500, times=2)
    for _ in range(2):
        await call(http, "POST", CM, 500, json={"metadata": {"name": "a"}})
    await call(http, "POST", CM, 201, json={"metadata": {"name": "a"}})
    emulator.fail("patch", "configmaps", status=409)
    await call(http, "PATCH", f"{CM}/a", 409, json={"data": {"k": "v"}}, headers=MERGE)
    assert (await call(http, "PATCH", f"{CM}/a", json={"data": {"k": "v"}}, headers=MERGE))["data"] == {
        "k": "v"
    }


async def test_discovery_names_the_core_group_v1(http: aiohttp.ClientSession) -> None:
    core = await call(http, "GET", "/api/v1")
    assert core["groupVersion"] == "v1"
    names = {r["name"]: r for r in core["resources"]}
    assert {"configmaps", "secrets", "services", "namespaces", "events"} <= set(names)
    assert not [r for r in core["resources"] if "/" in r["name"] and r.get("shortNames")]
    crd = await call(http, "GET", "/apis/aiassistant.dev/v1alpha1")
    aia = next(r for r in crd["resources"] if r["name"] == "aiassistants")
    assert aia["shortNames"] == ["aia"] and aia["namespaced"] is True
    assert [o["metadata"]["name"] for o in (await call(http, "GET", "/api/v1/namespaces"))["items"]] == [
        "default",
        "kube-system",
    ]


@pytest.mark.skipif(not (Path(".venv/bin/kubectl").exists() or shutil.which("kubectl")), reason="no kubectl")
async def test_kubectl_applies_and_prints_columns(emulator: Emulator, tmp_path: Path) -> None:
    kubectl = str(Path(".venv/bin/kubectl").resolve()) if Path(".venv/bin/kubectl").exists() else "kubectl"
    config = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    manifest = tmp_path / "bot.json"
    manifest.write_text(json.dumps(assistant("bot")))

    def run(*args: str) -> str:
        out = subprocess.run(
            [kubectl, "--kubeconfig", str(config), *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "created" in await asyncio.to_thread(run, "apply", "-f", str(manifest))  # server-side validation
    table = await asyncio.to_thread(run, "get", "aia")
    assert table.split("\n")[0].split() == ["NAME", "MODEL", "TARGET", "PHASE", "READY", "AGE"]
    assert "grok.grok-3" in table
    manifest.write_text(json.dumps(assistant("bot", replicas=2)))
    assert "configured" in await asyncio.to_thread(run, "apply", "-f", str(manifest))
    applied = emulator.get_object("aiassistants", "default", "bot", "aiassistant.dev")
    assert applied is not None and applied["spec"]["replicas"] == 2
    assert "kube-system" in await asyncio.to_thread(run, "get", "namespaces")
    assert "deleted" in await asyncio.to_thread(
        run, "delete", "-f", str(manifest), "--wait=true", "--timeout=20s"
    )
    assert emulator.get_object("aiassistants", "default", "bot", "aiassistant.dev") is None
