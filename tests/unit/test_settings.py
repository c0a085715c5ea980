"""Operator settings from env vars: defaults, overrides, and errors that name the env var."""

from __future__ import annotations

import json

import pytest

from aiassistant_contract.assistant import SecretRef
from aiassistant_operator.settings import (
    BUILTIN_DEFAULT_SECRETS,
    DEFAULT_RUNNER_RESOURCES,
    Settings,
    SettingsError,
)


def test_defaults_without_env() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.runner_image == "aiassistant-runner:0.1.0"
    assert settings.image_pull_policy == "IfNotPresent"
    assert settings.default_secret("grok") == SecretRef(name="xai-key", key="api-key")
    assert settings.default_secret("openai") == SecretRef(name="openai-key", key="api-key")
    assert set(settings.default_secrets) == {"grok", "openai", "deepgram", "elevenlabs", "cartesia", "xai"}
    assert settings.default_secret("xai") == settings.default_secret("grok")  # one xAI key
    assert settings.watch_namespaces == ()
    assert settings.runner_resources == DEFAULT_RUNNER_RESOURCES
    assert (settings.health_port, settings.metrics_port, settings.runner_drain_seconds) == (8080, 9090, 25)
    assert (settings.log_level, settings.log_format) == ("INFO", "text")
    assert not settings.registry().is_valid("grok.grok-99")


def test_every_env_var_is_read() -> None:
    env = {
        "AIASSISTANT_RUNNER_IMAGE": "registry.example/runner:9",
        "AIASSISTANT_RUNNER_IMAGE_PULL_POLICY": "Always",
        "AIASSISTANT_DEFAULT_SECRETS": json.dumps(
            {"grok": {"name": "grok-creds", "key": "token"}, "cartesia": None}
        ),
        "AIASSISTANT_EXTRA_MODELS": "grok.grok-99, openai.gpt-6",
        "AIASSISTANT_WATCH_NAMESPACES": "bots, support",
        "AIASSISTANT_RUNNER_RESOURCES": json.dumps({"limits": {"memory": "2Gi"}}),
        "AIASSISTANT_RUNNER_DRAIN_SECONDS": "50",
        "AIASSISTANT_LOG_LEVEL": "debug",
        "AIASSISTANT_LOG_FORMAT": "JSON",
        "AIASSISTANT_HEALTH_PORT": "8181",
        "AIASSISTANT_METRICS_PORT": "9191",
    }
    settings = Settings.from_env(env)
    assert settings.runner_image == "registry.example/runner:9"
    assert settings.image_pull_policy == "Always"
    assert settings.default_secret("grok") == SecretRef(name="grok-creds", key="token")
    assert settings.default_secret("openai") == BUILTIN_DEFAULT_SECRETS["openai"]  # merged, not replaced
    assert settings.default_secret("cartesia") is None  # null removes a default
    assert settings.extra_models == ("grok.grok-99", "openai.gpt-6")
    assert settings.registry().is_valid("grok.grok-99") and settings.registry().is_valid("openai.gpt-6")
    assert settings.watch_namespaces == ("bots", "support")
    assert settings.runner_resources == {"limits": {"memory": "2Gi"}}
    assert settings.runner_drain_seconds == 50
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert (settings.health_port, settings.metrics_port) == (8181, 9191)


def test_empty_values_mean_the_default() -> None:
    assert Settings.from_env({"AIASSISTANT_RUNNER_IMAGE": " ", "AIASSISTANT_HEALTH_PORT": ""}) == Settings()


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("AIASSISTANT_RUNNER_IMAGE_PULL_POLICY", "Sometimes", "is not one of Always, IfNotPresent, Never"),
        ("AIASSISTANT_DEFAULT_SECRETS", "{grok", "not valid JSON"),
        ("AIASSISTANT_DEFAULT_SECRETS", "[]", "expected an object like"),
        (
            "AIASSISTANT_DEFAULT_SECRETS",
            '{"anthropic": {"name": "a", "key": "b"}}',
            "unknown provider 'anthropic'",
        ),
        ("AIASSISTANT_DEFAULT_SECRETS", '{"grok": {"name": "xai-key"}}', "grok: key: Field required"),
        ("AIASSISTANT_EXTRA_MODELS", "anthropic.claude-3", "Unsupported LLM service: anthropic"),
        ("AIASSISTANT_EXTRA_MODELS", "grok", "Wrong LLM format"),
        ("AIASSISTANT_WATCH_NAMESPACES", "bots,Not_A_Namespace", "'Not_A_Namespace' is not a namespace name"),
        ("AIASSISTANT_RUNNER_RESOURCES", '{"limits": {"memory": "lots"}}', "not a Kubernetes quantity"),
        ("AIASSISTANT_RUNNER_RESOURCES", '{"limit": {}}', "limit: unknown field"),
        ("AIASSISTANT_RUNNER_DRAIN_SECONDS", "soon", "'soon' is not an integer"),
        ("AIASSISTANT_LOG_LEVEL", "loud", "is not one of DEBUG, INFO, WARNING, ERROR"),
        ("AIASSISTANT_LOG_FORMAT", "xml", "is not one of text, json"),
        ("AIASSISTANT_HEALTH_PORT", "http", "'http' is not an integer"),
        ("AIASSISTANT_HEALTH_PORT", "70000", "out of range 1..65535"),
        ("AIASSISTANT_METRICS_PORT", "-1", "out of range 0..65535"),
    ],
)
def test_bad_values_name_the_env_var(env: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    message = str(err.value)
    assert message.startswith(f"{env}: "), message
    assert expected in message, message


def test_from_env_reads_the_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIASSISTANT_RUNNER_IMAGE", "from-process-env:1")
    assert Settings.from_env().runner_image == "from-process-env:1"


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.runner_image = "other"  # type: ignore[misc]
