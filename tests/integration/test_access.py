"""Access on the real control plane with the real operator: only labelled Secrets are usable (an
unlabelled one says which label to add), every confused-deputy / SSRF attempt is Invalid naming the
field, the status says who may use the assistant, and the NetworkPolicy is accepted by the real
apiserver as rendered."""

from __future__ import annotations

from typing import Any

import pytest

from aiassistant_devtools.kubeapi import Kube, path
from tests.integration.conftest import assistant, eventually, secret

KEY = "xai-access-test-key-0123456789"
ENGINE_KEY = {"secretRef": {"name": "xai-key", "key": "api-key"}}
TOKENS = {"access": {"tokenSecretRef": {"name": "bot-access", "key": "tokens"}}}


async def status(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj = await kube.get(path("AIAssistant", ns, name)) or {}
    return dict(obj.get("status") or {})


async def condition(kube: Kube, ns: str, name: str, kind: str) -> dict[str, Any] | None:
    return next((c for c in (await status(kube, ns, name)).get("conditions", []) if c["type"] == kind), None)


async def warnings(kube: Kube, ns: str, name: str) -> list[str]:
    found = await kube.list(
        path("Event", ns), fieldSelector=f"involvedObject.kind=AIAssistant,involvedObject.name={name}"
    )
    return sorted({e["reason"] for e in found if e["type"] == "Warning"})


async def test_an_unlabelled_secret_is_not_usable_until_labelled(
    operator: None, kube: Kube, namespace: str
) -> None:
    ns = namespace
    # Whoever may create assistants names a Secret they may not read (a database password):
    await kube.create(secret("db-creds", ns, labelled=False, password="hunter2-database"))
    await kube.create(assistant("deputy", ns, secretRef={"name": "db-creds", "key": "password"}, **TOKENS))
    await kube.create(secret("bot-access", ns, tokens="t-1"))

    async def refused() -> dict[str, Any] | None:
        cond = await condition(kube, ns, "deputy", "SecretResolved")
        return cond if cond and cond["status"] == "False" else None

    cond = await eventually(refused)
    assert cond["reason"] == "SecretMissing"
    assert "among the Secrets labelled aiassistant.dev/credentials=true" in cond["message"]
    assert f"kubectl label secret db-creds -n {ns} aiassistant.dev/credentials=true" in cond["message"]
    assert await kube.get(path("Deployment", ns, "deputy-runner")) is None  # nothing runs with it
    assert "SecretMissing" in await eventually(lambda: warnings(kube, ns, "deputy"))

    # The Secret's owner opts it in: the same assistant now resolves and is rendered.
    await kube.patch(
        path("Secret", ns, "db-creds"), {"metadata": {"labels": {"aiassistant.dev/credentials": "true"}}}
    )

    async def found() -> bool:
        cond = await condition(kube, ns, "deputy", "SecretResolved")
        return bool(cond and cond["status"] == "True")

    await eventually(found)
    assert await eventually(lambda: kube.get(path("Deployment", ns, "deputy-runner")))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"image": "evil.example.com/x:1"},
            "spec.image: 'evil.example.com/x:1' is not an allowed runner image",
        ),
        (
            {"baseURL": "http://169.254.169.254/latest"},
            "spec.baseURL: host '169.254.169.254' is a link-local",
        ),
        ({"baseURL": "file:///etc/passwd"}, "spec.baseURL: scheme 'file' is not allowed"),
        (
            {"baseURL": "http://attacker.example/v1"},
            "spec.baseURL: http:// to 'attacker.example' is not allowed",
        ),
        (
            {"tools": [{"name": "t", "url": "http://127.0.0.1:8080/x"}]},
            "spec.tools[0].url: host '127.0.0.1' is a loopback address",
        ),
    ],
)
async def test_deputy_and_ssrf_attempts_are_invalid(
    operator: None, kube: Kube, namespace: str, spec: dict[str, Any], message: str
) -> None:
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    await kube.create(assistant("attempt", ns, **ENGINE_KEY, **TOKENS, **spec))

    async def invalid() -> dict[str, Any] | None:
        st = await status(kube, ns, "attempt")
        return st if st.get("phase") == "Invalid" else None

    st = await eventually(invalid)
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and message in ready["message"], ready["message"]
    assert await kube.get(path("Deployment", ns, "attempt-runner")) is None


async def test_network_policy_is_accepted_and_status_warns_of_anonymous(
    operator: None, kube: Kube, namespace: str
) -> None:
    ns = namespace
    await kube.create(secret("xai-key", ns, **{"api-key": KEY}))
    access = {
        "anonymous": True,
        "allowFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
            {"podSelector": {"matchLabels": {"app": "gateway"}}},
            {"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.1.0/24"]}},
        ],
    }
    tool = {"name": "lookup", "url": f"http://orders.{ns}.svc:8080/lookup"}
    await kube.create(assistant("open-bot", ns, **ENGINE_KEY, access=access, tools=[tool]))
    policy = await eventually(lambda: kube.get(path("NetworkPolicy", ns, "open-bot-runner")))
    spec = policy["spec"]  # as the apiserver stored it: it took every field
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "open-bot"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    peers = spec["ingress"][0]["from"]
    assert peers[0] == {"podSelector": {}} and peers[3] == {
        "ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.1.0/24"]}
    }
    assert spec["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert {"protocol": "TCP", "port": 443} in spec["egress"][1]["ports"]
    assert spec["egress"][2] == {
        "ports": [{"protocol": "TCP", "port": 8080}],
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}],
    }

    async def anonymous() -> dict[str, Any] | None:
        cond = await condition(kube, ns, "open-bot", "AccessRestricted")
        return cond if cond and cond["reason"] == "Anonymous" else None

    cond = await eventually(anonymous)
    assert cond["status"] == "False" and "anyone who can reach the runner" in cond["message"]
    assert "Anonymous" in await eventually(lambda: warnings(kube, ns, "open-bot"))
