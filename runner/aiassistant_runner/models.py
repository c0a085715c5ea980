"""The models a runner asks: the engine model, then `spec.fallbacks` in order, each resolved once at
start with its provider name, key, endpoint and the request parameters it rejects.

Keys come from the pod's env (the engine model's from its target's var, e.g. XAI_API_KEY; fallback
i's from `fallback_key_env(i)`); a missing one is a MissingKeyError naming the variable, raised at
start. `Model.key` is never part of a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiassistant_contract.engines import Registry
from aiassistant_contract.errors import require_env
from aiassistant_contract.runner_config import RunnerConfig, fallback_key_env

OPENAI_BASE_URL = "https://api.openai.com/v1"  # the OpenAI client's default, for targets with none


@dataclass(frozen=True)
class Model:
    """One model of the chain."""

    engine_model: str  # as the spec names it, e.g. "grok.grok-4.3"
    target: str  # "grok", "openai"
    name: str  # the provider's model name, e.g. "grok-4.3"
    key: str = field(repr=False)
    base_url: str | None  # the spec's override, else None (the target's default)
    default_base_url: str  # the target's endpoint
    reasoning_effort: str | None = None
    rejected: frozenset[str] = frozenset()  # request parameters the model rejects: never sent

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (the override, else the target's)."""
        return (self.base_url or self.default_base_url).rstrip("/")


def chain(config: RunnerConfig, environ: Mapping[str, str], registry: Registry) -> tuple[Model, ...]:
    """The engine model, then the fallbacks. Raises MissingKeyError naming an unset env var."""
    entries: list[tuple[str, str | None, str | None, int | None]] = [
        (config.engine_model, config.base_url, config.reasoning_effort, None)
    ]
    entries += [(f.engine_model, f.base_url, None, i) for i, f in enumerate(config.fallbacks)]
    models = []
    for engine_model, base_url, effort, index in entries:
        engine = registry.parse(engine_model, strict=False)  # the policy was applied by RunnerConfig
        target = engine.target
        if index is None:
            why = f"the {target.name} API key comes from this env var"
            key = require_env(environ, target.key_env, why)
        else:
            why = f"fallbacks[{index}] ({engine_model}) reads its API key from this env var"
            key = require_env(environ, fallback_key_env(index), why)
        models.append(
            Model(
                engine_model=engine_model,
                target=target.name,
                name=engine.model,
                key=key,
                base_url=base_url,
                default_base_url=target.base_url or OPENAI_BASE_URL,
                reasoning_effort=effort,
                rejected=engine.facts.rejected_parameters,
            )
        )
    return tuple(models)
