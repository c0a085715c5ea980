"""The engine model registry: what `engineModel: "<target>.<model>"` may name.

One registry for both processes: the operator validates an AIAssistant against it at apply time,
and the runner builds its Pipecat LLM service from it, so the operator never accepts a model the
runner cannot serve. Pure Python: no Pipecat import here (the operator image has no Pipecat).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

# The seed's model constants.
ENGINE_MODEL_GROK_3 = "grok.grok-3"
ENGINE_MODEL_GROK_3_MINI = "grok.grok-3-mini"
ENGINE_MODEL_OPENAI_GPT_4O = "openai.gpt-4o"
ENGINE_MODEL_OPENAI_GPT_4O_MINI = "openai.gpt-4o-mini"

SEPARATORS = (".", ":")

# Operators extend the known models without a release through this env var (set from helm values):
# a comma-separated list of engine models, e.g. "grok.grok-4,openai.gpt-5.2".
EXTRA_MODELS_ENV = "AIASSISTANT_EXTRA_MODELS"


class EngineModelError(ValueError):
    """Base of every engine model error; the message is safe to show in status and Events."""


class WrongFormatError(EngineModelError):
    """The string is not `<target>.<model>` (or `<target>:<model>`)."""


class UnsupportedTargetError(EngineModelError):
    """The target names no engine the runner can serve."""


class UnknownModelError(EngineModelError):
    """The target is known but the model is not in its allowed list."""


@dataclass(frozen=True)
class Target:
    """One LLM provider the runner can serve through Pipecat."""

    name: str
    service: str  # Pipecat service class, "module:Class" (imported lazily by llm.py)
    base_url: str | None  # None: the client library's own default
    key_env: str  # env var holding the API key inside the runner pod
    models: frozenset[str] = field(default_factory=frozenset)


GROK = Target(
    name="grok",
    service="pipecat.services.xai.llm:GrokLLMService",
    base_url="https://api.x.ai/v1",
    key_env="XAI_API_KEY",
    models=frozenset({"grok-3", "grok-3-mini", "grok-3-fast", "grok-3-mini-fast", "grok-4", "grok-4-fast"}),
)
OPENAI = Target(
    name="openai",
    service="pipecat.services.openai.llm:OpenAILLMService",
    base_url=None,
    key_env="OPENAI_API_KEY",
    models=frozenset(
        {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5.2"}
    ),
)


@dataclass(frozen=True)
class EngineModel:
    """A parsed, validated engine model."""

    target: Target
    model: str

    def __str__(self) -> str:
        return f"{self.target.name}.{self.model}"


def split_engine_model(engine_model: str) -> tuple[str, str]:
    """Split on the FIRST separator: `openai.gpt-5.2` -> ("openai", "gpt-5.2"). Target lowercased."""
    if not isinstance(engine_model, str):
        raise WrongFormatError(f"Wrong LLM format: {engine_model!r} (expected a string '<target>.<model>')")
    positions = [i for i in (engine_model.find(sep) for sep in SEPARATORS) if i >= 0]
    if not positions:
        raise WrongFormatError(
            f"Wrong LLM format: {engine_model!r} (expected '<target>.<model>', e.g. 'grok.grok-3')"
        )
    cut = min(positions)
    target, model = engine_model[:cut].strip().lower(), engine_model[cut + 1 :].strip()
    if not target or not model:
        raise WrongFormatError(
            f"Wrong LLM format: {engine_model!r} (target and model must both be non-empty, e.g. 'grok.grok-3')"
        )
    return target, model


class Registry:
    """Targets and their allowed models. Immutable; `with_extra_models` returns a new one."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self._targets: Mapping[str, Target] = {t.name: t for t in targets}

    @property
    def targets(self) -> Mapping[str, Target]:
        return self._targets

    def target(self, name: str) -> Target:
        try:
            return self._targets[name.strip().lower()]
        except KeyError:
            supported = ", ".join(sorted(self._targets))
            raise UnsupportedTargetError(
                f"Unsupported LLM service: {name} (supported: {supported})"
            ) from None

    def parse(self, engine_model: str, *, strict: bool = True) -> EngineModel:
        """Parse and validate. `strict=False` accepts any model of a known target."""
        target_name, model = split_engine_model(engine_model)
        target = self.target(target_name)
        if strict and model not in target.models:
            known = ", ".join(sorted(target.models))
            raise UnknownModelError(
                f"Unknown model {model!r} for LLM service {target.name} (known: {known}); "
                f"an operator can allow it with {EXTRA_MODELS_ENV} / helm value extraModels"
            )
        return EngineModel(target=target, model=model)

    def is_valid(self, engine_model: str) -> bool:
        try:
            self.parse(engine_model)
        except EngineModelError:
            return False
        return True

    def engine_models(self) -> list[str]:
        return sorted(f"{t.name}.{m}" for t in self._targets.values() for m in t.models)

    def with_extra_models(self, extra: Iterable[str]) -> Registry:
        """Allow more models of known targets (unknown targets still fail: nothing could serve them)."""
        added: dict[str, set[str]] = {}
        for item in extra:
            if not item.strip():
                continue
            target_name, model = split_engine_model(item.strip())
            added.setdefault(self.target(target_name).name, set()).add(model)
        return Registry(
            replace(t, models=t.models | frozenset(added.get(t.name, ()))) for t in self._targets.values()
        )


def parse_extra_models(value: str | None) -> list[str]:
    """`"grok.grok-4, openai.gpt-5.2"` -> ["grok.grok-4", "openai.gpt-5.2"]."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


BUILTIN = Registry([GROK, OPENAI])


def registry_from_env(environ: Mapping[str, str] | None = None) -> Registry:
    """The built-in registry plus the models an operator allowed through AIASSISTANT_EXTRA_MODELS."""
    env = os.environ if environ is None else environ
    return BUILTIN.with_extra_models(parse_extra_models(env.get(EXTRA_MODELS_ENV)))


# The seed's lookups, on the built-in registry.
def get_target(engine_model: str) -> str:
    """Target name of an engine model: `grok.grok-3` -> `grok`."""
    return BUILTIN.target(split_engine_model(engine_model)[0]).name


def get_model_name(engine_model: str) -> str:
    """Model name of an engine model: `grok.grok-3` -> `grok-3`."""
    return split_engine_model(engine_model)[1]


def is_valid_engine_model(engine_model: str) -> bool:
    return BUILTIN.is_valid(engine_model)
