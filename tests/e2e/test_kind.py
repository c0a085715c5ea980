"""End to end on a kind cluster: the chart-installed operator turns a grok AIAssistant into runner
pods that answer through the in-cluster fake LLM; a rotated key rolls the pods; deleting the
assistant garbage-collects its workload.

Run with `make e2e` (Docker, kind; helm and kubectl from `make install`). Where `docker info`
fails the suite is skipped with that reason. The tests run in file order and share one assistant.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from tests.e2e.cluster import ROOT, RUNNER_IMAGE, Cluster
from tests.e2e.conftest import OPERATOR_NAMESPACE, RELEASE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

NAMESPACE = "e2e-bots"
NAME = "support-bot"
WORKLOAD = f"{NAME}-runner"
FAKE_TEXT = "Hello from the in-cluster fake."
FIRST_KEY, SECOND_KEY = "e2e-xai-key-1", "e2e-xai-key-2"
SELECTOR = f"app.kubernetes.io/name=aiassistant-runner,app.kubernetes.io/instance={NAME}"


def example_manifest(filename: str) -> tuple[str, str]:
    """(name, JSON manifest) of an AIAssistant in examples/, its LLM pointed at the in-cluster fake."""
    document = yaml.safe_load((ROOT / "examples" / filename).read_text())
    document["metadata"]["namespace"] = NAMESPACE
    document["spec"]["baseURL"] = f"http://fake-llm.{NAMESPACE}.svc:8080/v1"
    return document["metadata"]["name"], json.dumps(document)


ACCESS_TOKEN = "e2e-access-token-0123456789abcdef"
LABELS = {"aiassistant.dev/credentials": "true"}  # the operator uses only labelled Secrets


def secret_manifest(value: str, name: str = "xai-key", key: str = "api-key") -> str:
    data = base64.b64encode(value.encode()).decode()
    metadata = {"name": name, "labels": LABELS}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": {key: data}})


def diagnostics(kube: Cluster) -> str:
    """What to read when a step fails: the operator's log, the assistant, the runner pods."""
    parts = []
    for args in (
        ("logs", "-n", OPERATOR_NAMESPACE, f"deployment/{RELEASE}", "--tail=200"),
        ("get", "aiassistants,deployments,pods,services,configmaps,events", "-n", NAMESPACE, "-o", "wide"),
        ("describe", "aiassistant", NAME, "-n", NAMESPACE),
        ("logs", "-n", NAMESPACE, "-l", SELECTOR, "--tail=100", "--all-containers"),
    ):
        try:
            parts.append(f"$ kubectl {' '.join(args)}\n{kube.kubectl(*args)}")
        except RuntimeError as err:
            parts.append(str(err))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def assistant(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """The fake LLM, the xAI key Secret and a Ready grok assistant in namespace e2e-bots."""
    kube = cluster
    kube.apply(
        json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}), NAMESPACE
    )
    source = (ROOT / "tests" / "fakes" / "openai_server.py").read_text()
    kube.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "fake-llm-source"},
                "data": {"openai_server.py": source},
            }
        ),
        NAMESPACE,
    )
    fake = (ROOT / "tests" / "e2e" / "manifests" / "fake-llm.yaml").read_text()
    kube.apply(fake.replace("__RUNNER_IMAGE__", RUNNER_IMAGE), NAMESPACE)
    kube.kubectl("rollout", "status", "deployment/fake-llm", "-n", NAMESPACE, "--timeout=180s", timeout=200)
    kube.apply(secret_manifest(FIRST_KEY), NAMESPACE)
    kube.apply(secret_manifest(ACCESS_TOKEN, "support-bot-access", "tokens"), NAMESPACE)
    name, manifest = example_manifest("grok-assistant.yaml")
    assert name == NAME
    kube.apply(manifest, NAMESPACE)
    try:
        kube.kubectl(
            "wait", f"aiassistant/{NAME}", "-n", NAMESPACE,
            "--for=jsonpath={.status.phase}=Ready", "--timeout=300s",
            timeout=320,
        )  # fmt: skip
    except RuntimeError as err:
        pytest.fail(f"{NAME} never became Ready: {err}\n{diagnostics(kube)}")
    yield kube.get("aiassistant", NAME, NAMESPACE)


@pytest.fixture
def runner_url(cluster: Cluster, assistant: dict[str, Any]) -> Iterator[str]:
    with cluster.port_forward(f"service/{WORKLOAD}", NAMESPACE, 8000) as port:
        yield f"http://127.0.0.1:{port}"


def test_ready_assistant_reports_its_model_and_endpoint(cluster: Cluster, assistant: dict[str, Any]) -> None:
    status = assistant["status"]
    assert status["phase"] == "Ready"
    assert (status["engineTarget"], status["engineModelName"]) == ("grok", "grok-4.3")
    assert status["endpoint"] == f"http://{WORKLOAD}.{NAMESPACE}.svc:8000"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    for condition in ("ModelValid", "SecretResolved", "Ready"):
        assert conditions.get(condition) == "True", status["conditions"]
    deployment = cluster.get("deployment", WORKLOAD, NAMESPACE)
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("AIAssistant", NAME, assistant["metadata"]["uid"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["XAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "xai-key", "key": "api-key"}


def test_text_conversation_through_the_openai_client(runner_url: str) -> None:
    client = OpenAI(base_url=f"{runner_url}/v1", api_key=ACCESS_TOKEN, timeout=60)
    history: list[Any] = [{"role": "user", "content": "What are your opening hours?"}]
    first = client.chat.completions.create(model="grok-4.3", messages=history)
    assert (first.choices[0].message.content or "").strip() == FAKE_TEXT
    history += [{"role": "assistant", "content": FAKE_TEXT}, {"role": "user", "content": "And on Sunday?"}]
    chunks = client.chat.completions.create(model="grok-4.3", messages=history, stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed.strip() == FAKE_TEXT


def test_task(runner_url: str) -> None:
    response = httpx.post(
        f"{runner_url}/v1/tasks",
        json={"input": "Summarise ticket 42.", "parameters": {"ticket": "42"}},
        headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["result"]) == ("completed", FAKE_TEXT)


def test_invalid_model_gets_no_workload(cluster: Cluster, assistant: dict[str, Any]) -> None:
    bad, manifest = example_manifest("invalid-assistant.yaml")
    cluster.apply(manifest, NAMESPACE)

    def invalid_status() -> dict[str, Any] | None:
        status = cluster.get("aiassistant", bad, NAMESPACE).get("status", {})
        return status if status.get("phase") == "Invalid" else None

    status = cluster.wait_until(f"{bad} to be Invalid", invalid_status)
    valid = next(c for c in status["conditions"] if c["type"] == "ModelValid")
    assert valid["status"] == "False" and "grok-99" in valid["message"]
    assert not cluster.kubectl(
        "get", "deployment", f"{bad}-runner", "-n", NAMESPACE, "--ignore-not-found", "-o", "name"
    )
    cluster.kubectl("delete", "aiassistant", bad, "-n", NAMESPACE, "--wait=true")


def runner_pods(cluster: Cluster) -> set[str]:
    out = cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", SELECTOR, "-o", "name")
    return set(out.split())


def test_rotated_key_rolls_the_pods(cluster: Cluster, assistant: dict[str, Any]) -> None:
    def template_hash() -> str:
        deployment = cluster.get("deployment", WORKLOAD, NAMESPACE)
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["aiassistant.dev/secrets-hash"])

    old_hash, old_pods = template_hash(), runner_pods(cluster)
    assert old_pods
    cluster.apply(secret_manifest(SECOND_KEY), NAMESPACE)
    new_hash = cluster.wait_until(
        "a new secrets-hash on the pod template", lambda: (h := template_hash()) != old_hash and h
    )
    assert new_hash != old_hash
    cluster.kubectl(
        "rollout", "status", f"deployment/{WORKLOAD}", "-n", NAMESPACE, "--timeout=240s", timeout=260
    )
    new_pods = cluster.wait_until(
        "the old runner pods to be gone", lambda: (p := runner_pods(cluster)) and not (p & old_pods) and p
    )
    # The new pods hold the new key (read inside the pod: the key never leaves the cluster's Secret).
    pod = sorted(new_pods)[0]
    cluster.kubectl("exec", "-n", NAMESPACE, pod, "--", "sh", "-c", f'test "$XAI_API_KEY" = "{SECOND_KEY}"')


def test_deleting_the_assistant_collects_its_workload(cluster: Cluster, assistant: dict[str, Any]) -> None:
    cluster.kubectl("delete", "aiassistant", NAME, "-n", NAMESPACE, "--wait=true", timeout=120)

    def leftovers() -> str:
        return cluster.kubectl(
            "get", "deployments,services,configmaps,poddisruptionbudgets,pods", "-n", NAMESPACE,
            "-l", SELECTOR, "--ignore-not-found", "-o", "name",
        ).strip()  # fmt: skip

    cluster.wait_until(
        "the runner workload to be garbage-collected", lambda: leftovers() == "" or None, timeout=180
    )
    assert leftovers() == ""
