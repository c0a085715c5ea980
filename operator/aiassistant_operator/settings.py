"""Operator settings: what the platform team chooses in helm values, read from env vars.

Every env var is read in one place, `Settings.from_env`; a bad value is an error naming the env var
and what it accepts, raised at start rather than at the first reconcile.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from aiassistant_contract.assistant import DNS_SUBDOMAIN, Resources, SecretRef
from aiassistant_contract.engines import (
    BUILTIN,
    EXTRA_MODELS_ENV,
    EngineModelError,
    Registry,
    parse_extra_models,
)
from aiassistant_contract.errors import describe
from aiassistant_contract.speech import STT_PROVIDERS, TTS_PROVIDERS

RUNNER_IMAGE_ENV = "AIASSISTANT_RUNNER_IMAGE"
PULL_POLICY_ENV = "AIASSISTANT_RUNNER_IMAGE_PULL_POLICY"
DEFAULT_SECRETS_ENV = "AIASSISTANT_DEFAULT_SECRETS"
WATCH_NAMESPACES_ENV = "AIASSISTANT_WATCH_NAMESPACES"
RUNNER_RESOURCES_ENV = "AIASSISTANT_RUNNER_RESOURCES"
RUNNER_DRAIN_SECONDS_ENV = "AIASSISTANT_RUNNER_DRAIN_SECONDS"
LOG_LEVEL_ENV = "AIASSISTANT_LOG_LEVEL"
LOG_FORMAT_ENV = "AIASSISTANT_LOG_FORMAT"
HEALTH_PORT_ENV = "AIASSISTANT_HEALTH_PORT"
METRICS_PORT_ENV = "AIASSISTANT_METRICS_PORT"
MODEL_PRICES_ENV = "AIASSISTANT_MODEL_PRICES"
ALLOWED_IMAGES_ENV = "AIASSISTANT_ALLOWED_IMAGES"
ALLOWED_HTTP_HOSTS_ENV = "AIASSISTANT_ALLOWED_HTTP_HOSTS"
NETWORK_POLICY_ENV = "AIASSISTANT_NETWORK_POLICY"
METRICS_NAMESPACE_ENV = "AIASSISTANT_METRICS_NAMESPACE"

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")

# Every provider a key can be for: the LLM targets and the speech providers.
KEY_PROVIDERS = tuple(sorted(set(BUILTIN.targets) | set(STT_PROVIDERS) | set(TTS_PROVIDERS)))

# Convention: the key of provider P is in Secret "<P>-key" (grok: "xai-key"), key "api-key", in the
# assistant's namespace. AIASSISTANT_DEFAULT_SECRETS overrides per provider; null removes one.
BUILTIN_DEFAULT_SECRETS: Mapping[str, SecretRef] = {
    p: SecretRef(name="xai-key" if p == "grok" else f"{p}-key", key="api-key") for p in KEY_PROVIDERS
}
DEFAULT_RUNNER_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"memory": "1Gi"},
}


class SettingsError(ValueError):
    """A bad operator setting; the message names the env var and what it accepts."""


@dataclass(frozen=True)
class Settings:
    """The operator's settings (defaults = the helm chart's defaults)."""

    runner_image: str = "aiassistant-runner:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    default_secrets: Mapping[str, SecretRef] = field(default_factory=lambda: dict(BUILTIN_DEFAULT_SECRETS))
    extra_models: tuple[str, ...] = ()
    watch_namespaces: tuple[str, ...] = ()  # empty: cluster-wide
    runner_resources: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_RUNNER_RESOURCES))
    # The least time a runner gets after SIGTERM to finish its sessions; a pod gets more when its
    # assistant's maxCallSeconds or taskTimeoutSeconds is longer (render.drain_seconds).
    runner_drain_seconds: int = 25
    # USD per 1M input, output tokens by engineModel, over the registry's list prices (contracts,
    # extra models).
    model_prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    log_level: str = "INFO"
    log_format: str = "text"
    health_port: int = 8080
    metrics_port: int = 9090
    # spec.image must match one of these (policy.py); empty: the runner image's repository only.
    allowed_images: tuple[str, ...] = ()
    allowed_http_hosts: tuple[str, ...] = ()  # hosts assistants may name over http:// (urls.py)
    network_policy: bool = True  # render a NetworkPolicy per assistant
    metrics_namespace: str = ""  # the Prometheus scraper's namespace, allowed to the runner port

    def image_patterns(self) -> tuple[str, ...]:
        """The allowed image list: the setting, or the runner image's repository."""
        return self.allowed_images or (image_repository(self.runner_image),)

    @cached_property
    def _registry(self) -> Registry:
        return BUILTIN.with_extra_models(self.extra_models)

    def registry(self) -> Registry:
        """The engine registry (the runner's too), extended with the models this operator allows."""
        return self._registry

    def price(self, engine_model: str) -> tuple[float, float] | None:
        """The price the operator was told for this engineModel, if any (else the registry's)."""
        return self.model_prices.get(engine_model)

    def default_secret(self, provider: str) -> SecretRef | None:
        """The default key Secret of a provider (LLM target or STT/TTS type), if any."""
        return self.default_secrets.get(provider)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        settings = cls(
            runner_image=get(RUNNER_IMAGE_ENV) or cls.runner_image,
            image_pull_policy=_choice(
                PULL_POLICY_ENV, get(PULL_POLICY_ENV), PULL_POLICIES, cls.image_pull_policy
            ),
            default_secrets=_default_secrets(get(DEFAULT_SECRETS_ENV)),
            extra_models=tuple(parse_extra_models(get(EXTRA_MODELS_ENV))),
            watch_namespaces=_namespaces(get(WATCH_NAMESPACES_ENV)),
            runner_resources=_resources(get(RUNNER_RESOURCES_ENV)),
            runner_drain_seconds=_int(RUNNER_DRAIN_SECONDS_ENV, get(RUNNER_DRAIN_SECONDS_ENV), 25, 0, 3600),
            log_level=_choice(LOG_LEVEL_ENV, (get(LOG_LEVEL_ENV) or "INFO").upper(), LOG_LEVELS, "INFO"),
            log_format=_choice(LOG_FORMAT_ENV, (get(LOG_FORMAT_ENV) or "text").lower(), LOG_FORMATS, "text"),
            health_port=_int(HEALTH_PORT_ENV, get(HEALTH_PORT_ENV), 8080, 1, 65535),
            metrics_port=_int(METRICS_PORT_ENV, get(METRICS_PORT_ENV), 9090, 0, 65535),
            model_prices=_prices(get(MODEL_PRICES_ENV)),
            allowed_images=_list(get(ALLOWED_IMAGES_ENV)),
            allowed_http_hosts=_hosts(get(ALLOWED_HTTP_HOSTS_ENV)),
            network_policy=_bool(NETWORK_POLICY_ENV, get(NETWORK_POLICY_ENV), True),
            metrics_namespace=(_namespaces(get(METRICS_NAMESPACE_ENV), METRICS_NAMESPACE_ENV) or ("",))[0],
        )
        try:
            settings.registry()
        except EngineModelError as err:
            raise SettingsError(f"{EXTRA_MODELS_ENV}: {err}") from None
        for engine_model in settings.model_prices:
            try:
                settings.registry().parse(engine_model)
            except EngineModelError as err:
                raise SettingsError(f"{MODEL_PRICES_ENV}: {engine_model!r}: {err}") from None
        return settings


def _choice(env: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise SettingsError(f"{env}: {value!r} is not one of {', '.join(choices)}")
    return value


def _int(env: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{env}: {value!r} is not an integer") from None
    if not low <= number <= high:
        raise SettingsError(f"{env}: {number} is out of range {low}..{high}")
    return number


def _json(env: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{env}: not valid JSON ({err.msg} at position {err.pos})") from None


def _default_secrets(value: str | None) -> dict[str, SecretRef]:
    secrets = dict(BUILTIN_DEFAULT_SECRETS)
    if value is None:
        return secrets
    data = _json(DEFAULT_SECRETS_ENV, value)
    if not isinstance(data, dict):
        raise SettingsError(
            f'{DEFAULT_SECRETS_ENV}: expected an object like {{"grok": {{"name": "xai-key", "key": "api-key"}}}}'
        )
    for provider, ref in data.items():
        if provider not in KEY_PROVIDERS:
            raise SettingsError(
                f"{DEFAULT_SECRETS_ENV}: unknown provider {provider!r} (known: {', '.join(KEY_PROVIDERS)})"
            )
        if ref is None:
            secrets.pop(provider, None)
            continue
        try:
            secrets[provider] = SecretRef.model_validate(ref)
        except ValidationError as err:
            raise SettingsError(f"{DEFAULT_SECRETS_ENV}: {provider}: {describe(err)}") from None
    return secrets


def _namespaces(value: str | None, env: str = WATCH_NAMESPACES_ENV) -> tuple[str, ...]:
    names = tuple(n.strip() for n in (value or "").split(",") if n.strip())
    for name in names:
        if len(name) > 63 or not re.match(DNS_SUBDOMAIN, name) or "." in name:
            raise SettingsError(f"{env}: {name!r} is not a namespace name")
    return names


def image_repository(image: str) -> str:
    """`registry/repo` of `registry/repo:tag` or `registry/repo@sha256:...`."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)
    if ":" in last[-1]:
        image = image[: len(image) - len(last[-1]) + last[-1].index(":")]
    return image


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def _hosts(value: str | None) -> tuple[str, ...]:
    hosts = tuple(h.lower() for h in _list(value))
    for host in hosts:
        if not re.match(DNS_SUBDOMAIN, host) or len(host) > 253:
            raise SettingsError(f"{ALLOWED_HTTP_HOSTS_ENV}: {host!r} is not a host name")
    return hosts


def _bool(env: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise SettingsError(f"{env}: {value!r} is not true or false")
    return value.lower() == "true"


def _resources(value: str | None) -> dict[str, Any]:
    if value is None:
        return dict(DEFAULT_RUNNER_RESOURCES)
    data = _json(RUNNER_RESOURCES_ENV, value)
    try:
        return Resources.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as err:
        raise SettingsError(
            f"{RUNNER_RESOURCES_ENV}: {describe(err)} (expected {{limits: {{...}}, requests: {{...}}}})"
        ) from None


def _prices(value: str | None) -> dict[str, tuple[float, float]]:
    if value is None:
        return {}
    data = _json(MODEL_PRICES_ENV, value)
    shape = '{"grok.grok-4.3": {"input": 1.25, "output": 2.5}} (USD per 1M tokens)'
    if not isinstance(data, dict):
        raise SettingsError(f"{MODEL_PRICES_ENV}: expected an object like {shape}")
    prices = {}
    for engine_model, price in data.items():
        numbers = [price.get(k) if isinstance(price, dict) else None for k in ("input", "output")]
        if set(price if isinstance(price, dict) else ()) != {"input", "output"} or not all(
            isinstance(n, int | float) and not isinstance(n, bool) and 0 <= n <= 10_000 for n in numbers
        ):
            raise SettingsError(
                f"{MODEL_PRICES_ENV}: {engine_model!r}: expected {{input, output}}, numbers 0..10000, "
                f"like {shape}"
            )
        prices[engine_model] = (float(numbers[0]), float(numbers[1]))  # type: ignore[arg-type]
    return prices
