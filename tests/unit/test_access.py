"""Access pieces on their own: Twilio's signature (its documented worked example), the stream token
of each provider's `start`, the token file, the failure limiter, the URL policy, the image policy,
and what the operator's status says about access."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiassistant_contract.assistant import parse_spec
from aiassistant_contract.engines import BUILTIN
from aiassistant_contract.errors import SpecError
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_contract.urls import url_problem
from aiassistant_operator.access import access_condition
from aiassistant_operator.policy import image_allowed
from aiassistant_operator.render import render
from aiassistant_operator.settings import Settings, SettingsError, image_repository
from aiassistant_runner.access import Access, FailureLimiter, parse_tokens, stream_token, twilio_signature
from aiassistant_runner.metrics import Metrics


def test_twilio_signature_matches_twilios_worked_example() -> None:
    # https://www.twilio.com/docs/usage/security#validating-requests
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature("12345", url, {**params, "Digits": "9"}) != "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature("54321", url, params) != "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_tokens_one_per_line() -> None:
    assert parse_tokens("a1\n\n  b2 \r\nc3") == (b"a1", b"b2", b"c3")
    assert parse_tokens("") == ()


@pytest.mark.parametrize(
    ("serializer", "message", "token"),
    [
        ("twilio", {"start": {"customParameters": {"aiassistantToken": "t1"}}}, "t1"),
        ("telnyx", {"start": {"custom_parameters": {"aiassistantToken": "t2"}}}, "t2"),
        ("plivo", {"start": {}, "extra_headers": "userId=1;aiassistantToken=t3"}, "t3"),
        ("plivo", {"start": {}, "extra_headers": "aiassistantToken=t4,x=1"}, "t4"),
        ("exotel", {"start": {"custom_parameters": "a=1&aiassistantToken=t5"}}, "t5"),
        ("twilio", {"start": {"customParameters": {}}}, None),
        ("twilio", {"start": ["not", "an", "object"]}, None),
        ("telnyx", {"start": {"custom_parameters": {"aiassistantToken": 7}}}, None),
    ],
)
def test_stream_token_where_each_provider_puts_parameters(
    serializer: str, message: dict[str, Any], token: str | None
) -> None:
    assert stream_token(serializer, message) == token


def test_failure_limiter_is_per_address_and_forgets_after_a_minute() -> None:
    now = [0.0]
    limiter = FailureLimiter(2, clock=lambda: now[0])
    limiter.fail("10.0.0.1")
    limiter.fail("10.0.0.1")
    assert limiter.blocked("10.0.0.1") and not limiter.blocked("10.0.0.2")
    now[0] = 61
    assert not limiter.blocked("10.0.0.1")


@pytest.mark.parametrize(("workers", "limit", "share"), [(1, 20, 20), (2, 20, 10), (3, 20, 6), (16, 5, 1)])
def test_each_worker_limits_failures_to_its_share(workers: int, limit: int, share: int) -> None:
    """With several worker processes (workers.py) each counts its own failures: together they
    never allow more than the pod's limit."""
    config = RunnerConfig.model_validate(
        {
            "name": "a",
            "engineModel": "grok.grok-3",
            "workers": workers,
            "limits": {"authFailuresPerMinute": limit},
        }
    )
    assert Access(config, {}, Metrics("ns/a")).limiter.per_minute == share


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.x.ai/v1", None),
        ("http://fake-llm.bots.svc:8080/v1", None),
        ("http://tools.bots.svc.cluster.local/x", None),
        ("http://gateway.corp.example/v1", None),  # in the allow-list below
        ("http://attacker.example/v1", "http:// to 'attacker.example' is not allowed"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://x.svc", "scheme 'gopher' is not allowed"),
        ("http://169.254.169.254/latest", "link-local"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://127.0.0.1:8080/v1", "loopback"),
        ("https://localhost/v1", "loopback"),
        ("https://[::1]/v1", "loopback"),
        ("https://[::ffff:127.0.0.1]/v1", "loopback"),
        ("https://0.0.0.0/v1", "link-local, unspecified"),
        ("https://2852039166/latest", "link-local"),  # 169.254.169.254 in the forms resolvers accept
        ("https://0xa9fea9fe/latest", "link-local"),
        ("https://0251.0376.0251.0376/latest", "link-local"),
        ("https://169.254.43518/latest", "link-local"),
        ("https://2130706433/v1", "loopback"),  # 127.0.0.1
        ("https://deadbeef.example/v1", None),  # a name, not an address
        ("https://metadata.google.internal/computeMetadata", "metadata"),
        ("https://user:pass@api.x.ai/v1", "credentials"),
        ("http://svc/x", "http:// to 'svc' is not allowed"),  # a bare .svc-less name
        ("https://api.x.ai:99999/v1", "not a valid URL"),
    ],
)
def test_url_policy(url: str, problem: str | None) -> None:
    found = url_problem(url, ("gateway.corp.example",))
    assert found == problem if problem is None else (found is not None and problem in found), found


def test_local_runs_may_name_loopback_but_never_metadata() -> None:
    assert url_problem("http://127.0.0.1:8099/v1", allow_loopback=True) is None
    assert url_problem("http://localhost:8099/v1", allow_loopback=True) is None
    assert url_problem("http://169.254.169.254/", allow_loopback=True) is not None
    assert url_problem("file:///x", allow_loopback=True) is not None


def test_images() -> None:
    assert image_repository("reg.example:5000/team/runner:1.2") == "reg.example:5000/team/runner"
    assert image_repository("runner@sha256:abc") == "runner"
    assert image_allowed("aiassistant-runner:0.2", ("aiassistant-runner",))
    assert image_allowed("aiassistant-runner@sha256:ab", ("aiassistant-runner",))
    assert not image_allowed("aiassistant-runner-evil:1", ("aiassistant-runner",))
    assert not image_allowed("evil.example.com/x:1", ("aiassistant-runner",))
    assert image_allowed("reg.example/team/anything:1", ("reg.example/team/*",))


def cr(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "bot", "namespace": "bots", "uid": "u"},
        "spec": {"engineModel": "grok.grok-4.3", **spec},
    }


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"image": "evil.example.com/x:1"},
            "spec.image: 'evil.example.com/x:1' is not an allowed runner image",
        ),
        ({"baseURL": "https://attacker.example/v1"}, None),  # https anywhere is the provider's choice
        (
            {"baseURL": "http://169.254.169.254/latest"},
            "spec.baseURL: host '169.254.169.254' is a link-local",
        ),
        ({"baseURL": "file:///etc/passwd"}, "spec.baseURL: scheme 'file' is not allowed"),
        (
            {"stt": {"type": "openai", "baseURL": "http://127.0.0.1/v1"}},
            "spec.stt.baseURL: host '127.0.0.1' is a loopback",
        ),
        ({"tts": {"type": "openai", "baseURL": "ftp://x"}}, "spec.tts.baseURL: scheme 'ftp'"),
        (
            {"tools": [{"name": "t", "url": "http://example.com/hook"}]},
            "spec.tools[0].url: http:// to 'example.com'",
        ),
        (
            {"fallbacks": [{"engineModel": "openai.gpt-4o", "baseURL": "http://169.254.169.254/v1"}]},
            "spec.fallbacks[0].baseURL: host '169.254.169.254' is a link-local",
        ),
        (
            {"voice": {"mode": "realtime", "baseURL": "ws://realtime.attacker.example"}},
            "spec.voice.baseURL: ws:// to 'realtime.attacker.example' is not allowed",
        ),
        (
            {"voice": {"mode": "realtime", "baseURL": "https://api.x.ai"}},
            "spec.voice.baseURL: scheme 'https' is not allowed (wss or ws)",
        ),
        ({"voice": {"mode": "realtime", "baseURL": "wss://api.x.ai"}}, None),
    ],
)
def test_the_operator_refuses_deputy_and_ssrf_attempts_naming_the_field(
    spec: dict[str, Any], field: str | None
) -> None:
    settings = Settings()
    if field is None:
        render(cr(**spec), settings)
        return
    with pytest.raises(SpecError) as err:
        render(cr(**spec), settings)
    assert field in str(err.value)


def test_twilio_needs_the_public_url() -> None:
    with pytest.raises(SpecError, match=r"access\.twilio needs access\.publicBaseURL"):
        parse_spec(
            {
                "engineModel": "grok.grok-4.3",
                "access": {"twilio": {"authTokenSecretRef": {"name": "t", "key": "k"}}},
            },
            BUILTIN,
        )
    with pytest.raises(SpecError, match=r"spec.access.allowFrom\[0\]"):
        parse_spec({"engineModel": "grok.grok-4.3", "access": {"allowFrom": [{}]}}, BUILTIN)


def test_access_condition() -> None:
    def of(access: dict[str, Any]) -> tuple[str, str, str]:
        return access_condition(parse_spec({"engineModel": "grok.grok-4.3", "access": access}, BUILTIN))

    ref = {"name": "a", "key": "tokens"}
    assert of({"tokenSecretRef": ref})[:2] == ("True", "CredentialsRequired")
    assert of({})[:2] == ("False", "NoCredentials") and "refuses every request" in of({})[2]
    assert of({"anonymous": True})[:2] == ("False", "Anonymous")


def test_settings_of_the_policy() -> None:
    settings = Settings.from_env(
        {
            "AIASSISTANT_ALLOWED_IMAGES": "reg/a, reg/b*",
            "AIASSISTANT_ALLOWED_HTTP_HOSTS": "Gateway.Corp",
            "AIASSISTANT_NETWORK_POLICY": "false",
            "AIASSISTANT_METRICS_NAMESPACE": "monitoring",
        }
    )
    assert settings.allowed_images == ("reg/a", "reg/b*") and settings.allowed_http_hosts == ("gateway.corp",)
    assert (settings.network_policy, settings.metrics_namespace) == (False, "monitoring")
    assert Settings().image_patterns() == ("aiassistant-runner",)
    with pytest.raises(SettingsError, match="AIASSISTANT_NETWORK_POLICY: 'maybe' is not true or false"):
        Settings.from_env({"AIASSISTANT_NETWORK_POLICY": "maybe"})
    with pytest.raises(SettingsError, match="AIASSISTANT_ALLOWED_HTTP_HOSTS"):
        Settings.from_env({"AIASSISTANT_ALLOWED_HTTP_HOSTS": "http://x"})


def test_access_credentials_reach_the_pod_from_secrets_and_roll_it_when_rotated() -> None:
    from aiassistant_operator.render import referenced_secrets, secrets_hash

    spec = parse_spec(
        {
            "engineModel": "grok.grok-4.3",
            "access": {
                "tokenSecretRef": {"name": "bot-access", "key": "tokens"},
                "publicBaseURL": "wss://voice.example.com",
                "twilio": {"authTokenSecretRef": {"name": "twilio", "key": "auth-token"}},
            },
        },
        BUILTIN,
    )
    refs = {r.env: (r.name, r.key) for r in referenced_secrets(spec, Settings())}
    assert refs["AIASSISTANT_ACCESS_TOKENS"] == ("bot-access", "tokens")
    assert refs["TWILIO_AUTH_TOKEN"] == ("twilio", "auth-token")
    data = {"xai-key": {"api-key": "a"}, "bot-access": {"tokens": "old"}, "twilio": {"auth-token": "t"}}
    before = secrets_hash(referenced_secrets(spec, Settings()), data)
    data["bot-access"] = {"tokens": "old\nnew"}  # a rotation adds a token: the pods roll
    assert secrets_hash(referenced_secrets(spec, Settings()), data) != before
    objects = render(cr(access=spec.access.model_dump(by_alias=True, exclude_none=True)), Settings())
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]["config.json"]
    assert json.loads(config)["access"] == {"anonymous": False, "publicBaseURL": "wss://voice.example.com"}
    assert "bot-access" not in config and "SecretRef" not in config  # no Secret reference in the ConfigMap


def test_network_policy_egress_opens_the_ports_the_assistant_names() -> None:
    spec = {
        "baseURL": "https://gateway.example:8443/v1",  # https off 443: its port, anywhere
        "tools": [
            {"name": "a", "url": "http://orders.shop.svc:8080/a"},  # in-cluster: towards its namespace
            {"name": "b", "url": "https://hooks.example/b"},  # 443: the general rule
        ],
    }
    objects = render(cr(**spec), Settings())
    egress = next(o for o in objects if o["kind"] == "NetworkPolicy")["spec"]["egress"]
    assert egress == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 443}]},
        {"ports": [{"protocol": "TCP", "port": 8443}]},
        {
            "ports": [{"protocol": "TCP", "port": 8080}],
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}],
        },
    ]
    assert not any(o["kind"] == "NetworkPolicy" for o in render(cr(), Settings(network_policy=False)))
