"""The engine model registry: what `engineModel: "<target>.<model>"` may name.

One registry for both processes: the operator validates an AIAssistant against it at apply time,
and the runner builds its Pipecat LLM service from it (the service class a target names here is the
one the runner imports), so the operator never accepts a model the runner cannot serve. Pure Python:
no Pipecat import here (the operator image has no Pipecat).

Per model it also knows the facts both need (MODELS, one table): current or retired (when, and which
model serves it now), reasoning or not, the `reasoning_effort` values it takes, the request parameters
it rejects, its context window and price. `retirement_warning` and `reasoning_effort_error` turn
them into the messages the operator and the runner show.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

# The seed's model constants.
ENGINE_MODEL_GROK_3 = "grok.grok-3"
ENGINE_MODEL_GROK_3_MINI = "grok.grok-3-mini"
ENGINE_MODEL_OPENAI_GPT_4O = "openai.gpt-4o"
ENGINE_MODEL_OPENAI_GPT_4O_MINI = "openai.gpt-4o-mini"
# Current ones (grok-3 was retired on 2026-05-15: grok-4.3 serves it).
ENGINE_MODEL_GROK_4_3 = "grok.grok-4.3"

SEPARATORS = (".", ":")

# Operators extend the known models without a release through this env var (set from helm values):
# a comma-separated list of engine models, e.g. "grok.grok-4.7,openai.gpt-5.5".
EXTRA_MODELS_ENV = "AIASSISTANT_EXTRA_MODELS"


class EngineModelError(ValueError):
    """Base of every engine model error; the message is safe to show in status and Events."""


class WrongFormatError(EngineModelError):
    """The string is not `<target>.<model>` (or `<target>:<model>`)."""


class UnsupportedTargetError(EngineModelError):
    """The target names no engine the runner can serve."""


class UnknownModelError(EngineModelError):
    """The target is known but the model is not in its allowed list."""


# What `reasoningEffort` may say (the spec's and the runner config's enum, and Pipecat's
# GrokLLMSettings.reasoning_effort); which of them a model takes is in the model table below.
ReasoningEffort = Literal["none", "low", "medium", "high", "xhigh"]
REASONING_EFFORTS: tuple[str, ...] = get_args(ReasoningEffort)
REASONING_EFFORT_PARAMETER = "reasoning_effort"


@dataclass(frozen=True)
class Retirement:
    """A model the provider retired: its name still answers, but another model serves it."""

    date: str  # ISO date the provider retired it
    replacement: str  # model of the same target that serves its requests now (and to move to)
    effort: str | None = None  # the reasoning effort the replacement serves them with, if it matters


@dataclass(frozen=True)
class ModelFacts:
    """What the registry knows of one model. A model without facts (one an operator allowed through
    AIASSISTANT_EXTRA_MODELS) is a plain, current, non-reasoning model: `ModelFacts(target, name,
    facts_known=False)`."""

    target: str
    name: str
    reasoning: bool = False
    efforts: tuple[str, ...] = ()  # the `reasoning_effort` values the provider accepts; (): it rejects it
    rejects: frozenset[str] = frozenset()  # request parameters the provider rejects (besides that one)
    context_window: int | None = None  # tokens
    price: tuple[float, float] | None = None  # USD per 1M input, output tokens; None: not listed here
    retired: Retirement | None = None
    alias_of: str | None = None  # the provider's name this one is an alias of
    facts_known: bool = True

    @property
    def current(self) -> bool:
        return self.retired is None

    @property
    def rejected_parameters(self) -> frozenset[str]:
        """Every request parameter the model rejects: the runner never sends one of these."""
        return self.rejects if self.efforts else self.rejects | {REASONING_EFFORT_PARAMETER}

    @property
    def reasoning_efforts(self) -> tuple[str, ...]:
        """The `reasoningEffort` values (of REASONING_EFFORTS, in that order) this model takes."""
        return tuple(e for e in REASONING_EFFORTS if e in self.efforts)


# -- the model table: ONE row per model name ---------------------------------------------------------
# Sources (checked 2026-12): xAI docs.x.ai/developers/migration/may-15-retirement (retired names, their
# redirect to grok-4.3 with low/none effort, billed at its price), .../model-capabilities/text/reasoning
# (grok-4.3 efforts; "presencePenalty, frequencyPenalty, and stop cannot be used with reasoning models";
# reasoning_effort rejected by grok-3/grok-4/grok-4-fast-reasoning, grok-3-mini takes low/high),
# .../models/grok-4.20-0309 (1M tokens, aliases, price), .../grok-4-5 and .../grok-4-6 (500K tokens,
# efforts low/medium/high, xhigh for 4.6), pipecat.services.xai.llm (efforts vary per model; 1.14's
# default model grok-4.20-non-reasoning). OpenAI: the API's ReasoningEffort reference (gpt-5 and
# gpt-5-mini: minimal..high, gpt-5.2: none..xhigh), its 400 "Unsupported parameter: 'stop'" for the
# GPT-5 models, and their published context windows and list prices.
XAI_RETIREMENT = "2026-05-15"
XAI_REASONING_REJECTS = frozenset({"presence_penalty", "frequency_penalty", "stop"})
OPENAI_REASONING_REJECTS = frozenset(
    {"temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "max_tokens"}
)
_TO_4_3_LOW = Retirement(XAI_RETIREMENT, "grok-4.3", "low")  # retired reasoning models
_TO_4_3_NONE = Retirement(XAI_RETIREMENT, "grok-4.3", "none")  # retired non-reasoning models
_REJECTS = {"grok": XAI_REASONING_REJECTS, "openai": OPENAI_REASONING_REJECTS}  # of reasoning models
R, N = True, False

# Columns: target, model, reasoning, the reasoning_effort values it takes ("": it rejects the
# parameter), context window (tokens), price (USD per 1M input, output tokens), retirement.
# An alias row is (target, model, "=<the name it is an alias of>") and has that model's facts.
# fmt: off
_TABLE: tuple[tuple[Any, ...], ...] = (
    # xAI, current
    ("grok",   "grok-4.6",                     R, "low medium high xhigh",         500_000, (2.00, 6.00)),
    ("grok",   "grok-4.5",                     R, "low medium high",               500_000, (2.00, 6.00)),
    ("grok",   "grok-4.3",                     R, "none low medium high",        1_000_000, (1.25, 2.50)),
    ("grok",   "grok-4.20-0309-reasoning",     R, "",                            1_000_000, (1.25, 2.50)),
    ("grok",   "grok-4.20-reasoning",          "=grok-4.20-0309-reasoning"),
    ("grok",   "grok-4.20-0309-non-reasoning", N, "",                            1_000_000, (1.25, 2.50)),
    ("grok",   "grok-4.20-non-reasoning",      "=grok-4.20-0309-non-reasoning"),  # Pipecat 1.14's default
    ("grok",   "grok-3-mini",                  R, "low high",                      131_072, (0.30, 0.50)),
    ("grok",   "grok-3-mini-fast",             "=grok-3-mini"),
    # xAI, retired on 2026-05-15: the names still answer, served by grok-4.3 and billed at its price
    ("grok",   "grok-3",                       N, "",                              131_072, None, _TO_4_3_NONE),
    ("grok",   "grok-3-fast",                  "=grok-3"),
    ("grok",   "grok-4-0709",                  R, "",                              256_000, None, _TO_4_3_LOW),
    ("grok",   "grok-4",                       "=grok-4-0709"),
    ("grok",   "grok-4-fast-reasoning",        R, "",                            2_000_000, None, _TO_4_3_LOW),
    ("grok",   "grok-4-fast",                  "=grok-4-fast-reasoning"),
    ("grok",   "grok-4-fast-non-reasoning",    N, "",                            2_000_000, None, _TO_4_3_NONE),
    ("grok",   "grok-4-1-fast-reasoning",      R, "",                            2_000_000, None, _TO_4_3_LOW),
    ("grok",   "grok-4-1-fast-non-reasoning",  N, "",                            2_000_000, None, _TO_4_3_NONE),
    ("grok",   "grok-code-fast-1",             R, "",                              256_000, None, _TO_4_3_LOW),
    # OpenAI
    ("openai", "gpt-4o",                       N, "",                              128_000, (2.50, 10.00)),
    ("openai", "gpt-4o-mini",                  N, "",                              128_000, (0.15, 0.60)),
    ("openai", "gpt-4.1",                      N, "",                            1_047_576, (2.00, 8.00)),
    ("openai", "gpt-4.1-mini",                 N, "",                            1_047_576, (0.40, 1.60)),
    ("openai", "gpt-4.1-nano",                 N, "",                            1_047_576, (0.10, 0.40)),
    ("openai", "gpt-5",                        R, "minimal low medium high",       400_000, (1.25, 10.00)),
    ("openai", "gpt-5-mini",                   R, "minimal low medium high",       400_000, (0.25, 2.00)),
    ("openai", "gpt-5.2",                      R, "none low medium high xhigh",    400_000, (1.75, 14.00)),
)
# fmt: on


def _models(table: Iterable[tuple[Any, ...]]) -> tuple[ModelFacts, ...]:
    rows: dict[tuple[str, str], ModelFacts] = {}
    for target, name, *facts in table:
        if isinstance(facts[0], str):  # an alias: the facts of the model it names
            of = facts[0].removeprefix("=")
            rows[(target, name)] = replace(rows[(target, of)], name=name, alias_of=of)
            continue
        reasoning, efforts, context, price, retired = (*facts, None)[:5]
        rows[(target, name)] = ModelFacts(
            target,
            name,
            reasoning=reasoning,
            efforts=tuple(efforts.split()),
            rejects=_REJECTS[target] if reasoning else frozenset(),
            context_window=context,
            price=price,
            retired=retired,
        )
    return tuple(rows.values())


MODELS = _models(_TABLE)


@dataclass(frozen=True)
class Target:
    """One LLM provider the runner can serve through Pipecat, and the facts of its models."""

    name: str
    provider: str  # how the provider calls itself, for messages ("xAI")
    service: str  # Pipecat service class, "module:Class" (the runner imports it lazily, llm_factory.py)
    base_url: str | None  # None: the client library's own default
    key_env: str  # env var holding the API key inside the runner pod
    catalog: tuple[ModelFacts, ...] = ()
    _by_name: Mapping[str, ModelFacts] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {m.name: m for m in self.catalog})

    @property
    def models(self) -> frozenset[str]:
        """The model names the registry allows for this target."""
        return frozenset(self._by_name)

    def facts(self, model: str) -> ModelFacts:
        """The model's facts; a model the table does not know is a plain, current, non-reasoning one."""
        return self._by_name.get(model) or ModelFacts(self.name, model, facts_known=False)

    def with_models(self, names: Iterable[str]) -> Target:
        """This target, also allowing `names` (as plain models where the table does not know them)."""
        added = tuple(self.facts(n) for n in sorted(set(names)) if n not in self._by_name)
        return replace(self, catalog=self.catalog + added) if added else self


GROK = Target(
    name="grok",
    provider="xAI",
    service="pipecat.services.xai.llm:GrokLLMService",
    base_url="https://api.x.ai/v1",
    key_env="XAI_API_KEY",
    catalog=tuple(m for m in MODELS if m.target == "grok"),
)
OPENAI = Target(
    name="openai",
    provider="OpenAI",
    service="pipecat.services.openai.llm:OpenAILLMService",
    base_url=None,
    key_env="OPENAI_API_KEY",
    catalog=tuple(m for m in MODELS if m.target == "openai"),
)


@dataclass(frozen=True)
class EngineModel:
    """A parsed, validated engine model."""

    target: Target
    model: str

    def __str__(self) -> str:
        return f"{self.target.name}.{self.model}"

    @property
    def facts(self) -> ModelFacts:
        return self.target.facts(self.model)

    @property
    def billed_price(self) -> tuple[float, float] | None:
        """USD per 1M input, output tokens the provider bills for this name: a retired model is
        billed at its replacement's price. None: no price known (an operator-allowed extra model)."""
        facts = self.facts
        if facts.price is None and facts.retired is not None:
            return self.target.facts(facts.retired.replacement).price
        return facts.price


def split_engine_model(engine_model: str) -> tuple[str, str]:
    """Split on the FIRST separator: `openai.gpt-5.2` -> ("openai", "gpt-5.2"). Target lowercased."""
    if not isinstance(engine_model, str):
        raise WrongFormatError(f"Wrong LLM format: {engine_model!r} (expected a string '<target>.<model>')")
    positions = [i for i in (engine_model.find(sep) for sep in SEPARATORS) if i >= 0]
    if not positions:
        raise WrongFormatError(
            f"Wrong LLM format: {engine_model!r} (expected '<target>.<model>', e.g. 'grok.grok-4.3')"
        )
    cut = min(positions)
    target, model = engine_model[:cut].strip().lower(), engine_model[cut + 1 :].strip()
    if not target or not model:
        raise WrongFormatError(
            f"Wrong LLM format: {engine_model!r} (target and model must both be non-empty, e.g. 'grok.grok-4.3')"
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
            current = ", ".join(sorted(m.name for m in target.catalog if m.current))
            retired = ", ".join(sorted(m.name for m in target.catalog if not m.current))
            known = f"known: {current}" + (f"; retired, still served: {retired}" if retired else "")
            raise UnknownModelError(
                f"Unknown model {model!r} for LLM service {target.name} ({known}); "
                f"an operator can allow it with {EXTRA_MODELS_ENV} / helm value extraModels"
            )
        return EngineModel(target=target, model=model)

    def is_valid(self, engine_model: str) -> bool:
        try:
            self.parse(engine_model)
        except EngineModelError:
            return False
        return True

    def with_extra_models(self, extra: Iterable[str]) -> Registry:
        """Allow more models of known targets (unknown targets still fail: nothing could serve them).
        A model the table does not know gets no facts: a plain, current, non-reasoning model."""
        added: dict[str, set[str]] = {}
        for item in extra:
            if not item.strip():
                continue
            target_name, model = split_engine_model(item.strip())
            added.setdefault(self.target(target_name).name, set()).add(model)
        return Registry(t.with_models(added.get(t.name, ())) for t in self._targets.values())


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


# -- what the facts mean for an assistant ------------------------------------------------------------


def retirement_warning(engine_model: str, registry: Registry = BUILTIN) -> str | None:
    """The warning for an engine model its provider retired (None for a current or unparseable one):
    `grok-3 was retired by xAI on 2026-05-15; requests are served by grok-4.3 at its price: move to
    grok.grok-4.3`. The model stays valid: its name still answers, served by the replacement."""
    try:
        engine = registry.parse(engine_model, strict=False)
    except EngineModelError:
        return None
    retired = engine.facts.retired
    if retired is None:
        return None
    target = engine.target
    message = (
        f"{engine.model} was retired by {target.provider} on {retired.date}; requests are served by "
        f"{retired.replacement} at its price: move to {target.name}.{retired.replacement}"
    )
    if retired.effort == "none":  # served without reasoning: say how to keep it that way
        message += " with reasoningEffort: none (as the redirect serves it)"
    return message


def reasoning_effort_error(engine: EngineModel, effort: str | None) -> str | None:
    """Why `reasoningEffort: <effort>` is wrong for this model (None if it is fine, or unset). The
    message names the values the model takes; callers put the field in front of it."""
    facts = engine.facts
    if effort is None or effort in facts.reasoning_efforts:
        return None
    if facts.reasoning_efforts:
        why = f"it takes {', '.join(facts.reasoning_efforts)}"
    elif not facts.facts_known:
        why = (
            "the operator knows nothing of this model's reasoning, so it is a plain non-reasoning model "
            "that takes no reasoning effort: omit reasoningEffort"
        )
    elif facts.reasoning:
        why = (
            f"{engine.target.provider} sets this model's reasoning itself and rejects a reasoning effort: "
            "omit reasoningEffort"
        )
    else:
        why = "it is not a reasoning model and takes no reasoning effort: omit reasoningEffort"
    message = f"{effort!r} is not accepted by {engine} ({why})"
    if facts.retired is not None:
        replacement = engine.target.facts(facts.retired.replacement)
        message += (
            f"; {engine.model} is retired: move to {engine.target.name}.{replacement.name}, which takes "
            f"{', '.join(replacement.reasoning_efforts) or 'no reasoning effort'}"
        )
    return message
