"""The Pipecat LLM factory: `create_llm_service(type, key, messages, tools)` -> (llm, aggregator pair).

The engine model (`"grok.grok-3"`, `"openai:gpt-4o"`) is parsed with the contract's registry, the
one the operator validates against, so what the operator accepts is what this builds; the Pipecat
service class is the one the registry names for the target (no second table here). Runner-only
(imports Pipecat).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from openai import NOT_GIVEN as OPENAI_NOT_GIVEN
from openai import AsyncOpenAI, Timeout
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.services.openai.base_llm import BaseOpenAILLMService
from pipecat.services.xai.llm import GrokLLMService
from pipecat.utils.types import NOT_GIVEN, NotGiven

from aiassistant_contract.engines import (
    REASONING_EFFORT_PARAMETER,
    Target,
    reasoning_effort_error,
    registry_from_env,
)
from aiassistant_contract.errors import require_env

from .http_clients import LLM_LIMITS, call_http_client
from .llm_policy import LLMPolicy


def service_class(target: Target) -> type[BaseOpenAILLMService]:
    """The Pipecat service class the registry names for `target` ("module:Class")."""
    module, _, name = target.service.partition(":")
    return cast(type[BaseOpenAILLMService], getattr(importlib.import_module(module), name))


def tools_schema(tools: Sequence[Mapping[str, Any] | FunctionSchema] | None) -> ToolsSchema | NotGiven:
    """The seed's `[{name, description, parameters}]` dicts (or FunctionSchemas) -> a ToolsSchema.

    `parameters` is a JSON schema object; its `properties` and `required` carry over. A dict may also
    hold a `handler` (Pipecat function-call handler), which Pipecat registers for the context.
    """
    if not tools:
        return NOT_GIVEN
    functions: list[FunctionSchema] = []
    for i, tool in enumerate(tools):
        if isinstance(tool, FunctionSchema):
            functions.append(tool)
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"tools[{i}].name: a non-empty string is required")
        parameters = tool.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise ValueError(f"tools[{i}].parameters: a JSON schema object is required")
        functions.append(
            FunctionSchema(
                name=name,
                description=str(tool.get("description") or ""),
                properties=dict(parameters.get("properties") or {}),
                required=list(parameters.get("required") or []),
                handler=tool.get("handler"),
            )
        )
    return ToolsSchema(standard_tools=functions)


def drop_rejected_settings(settings: Any, rejected: Iterable[str]) -> None:
    """Unset, in a service's Settings before the service is built, every setting (and extra request
    key) the model rejects, so that Pipecat's request building never sends one. Unset is the OpenAI
    client's NOT_GIVEN, as Pipecat initialises them (None would be sent as null); Grok's
    reasoning_effort stays None, which Pipecat does not send."""
    for name in rejected:
        settings.extra.pop(name, None)
        if name != REASONING_EFFORT_PARAMETER and hasattr(settings, name):
            setattr(settings, name, OPENAI_NOT_GIVEN)


S = TypeVar("S", bound=BaseOpenAILLMService)


@functools.cache
def bounded(service: type[S], policy: LLMPolicy) -> type[S]:
    """`service`, whose OpenAI client follows `policy` (llm_policy.py) and makes its connections on
    the process's one TLS context (http_clients.py). Pipecat builds the client in its public
    `create_client` hook with the SDK's 600 s timeout and 2 retries, and has no setting for either
    (a caller on the phone cannot wait that long), and with a new TLS context per client (~0.8 MB
    per call); this hook builds the same client (Pipecat's arguments and pool limits) with both."""
    timeout = Timeout(policy.read_seconds, connect=policy.connect_seconds)

    def create_client(
        self: Any,
        api_key: Any = None,
        base_url: Any = None,
        organization: Any = None,
        project: Any = None,
        default_headers: Any = None,
        **kwargs: Any,
    ) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            default_headers=default_headers,
            http_client=call_http_client(LLM_LIMITS),
            timeout=timeout,
            max_retries=policy.max_retries,
        )

    return cast(type[S], type(service.__name__, (service,), {"create_client": create_client}))


def create_llm(
    type: str,  # engine model, as in create_llm_service
    key: str | None,
    *,
    base_url: str | None = None,
    system_instruction: str | None = None,
    strict: bool = False,
    policy: LLMPolicy | None = None,
    reasoning_effort: str | None = None,
) -> BaseOpenAILLMService:
    """The service alone, for callers that drive it without aggregators (see create_llm_service)."""
    engine = registry_from_env().parse(type, strict=strict)
    target = engine.target
    service = service_class(target)
    why = f"no key was passed for LLM service {target.name} (the runner pod gets it from the assistant's secretRef)"
    api_key = key or require_env(os.environ, target.key_env, why)
    settings = service.Settings(model=engine.model, system_instruction=system_instruction)
    effort_error = reasoning_effort_error(engine, reasoning_effort)
    if effort_error:  # RunnerConfig refuses it first; a direct caller gets the same words
        raise ValueError(f"reasoning_effort: {effort_error}")
    if reasoning_effort is not None:
        if isinstance(settings, GrokLLMService.Settings):
            settings.reasoning_effort = reasoning_effort  # type: ignore[assignment]  # checked above
        else:  # OpenAILLMService has no setting of its own: the request's extra keys carry it
            settings.extra[REASONING_EFFORT_PARAMETER] = reasoning_effort
    drop_rejected_settings(settings, engine.facts.rejected_parameters)
    if policy is not None:
        service = bounded(service, policy)
    return service(api_key=api_key, base_url=base_url or target.base_url, settings=settings)


def create_llm_service(
    type: str,  # the seed's parameter name (shadows the builtin on purpose)
    key: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    tools: Sequence[Mapping[str, Any] | FunctionSchema] | None,
    *,
    base_url: str | None = None,
    system_instruction: str | None = None,
    user_params: LLMUserAggregatorParams | None = None,
    strict: bool = False,
    policy: LLMPolicy | None = None,
    reasoning_effort: str | None = None,
) -> tuple[BaseOpenAILLMService, LLMContextAggregatorPair]:
    """Build the Pipecat LLM service for an engine model and the context aggregators around it.

    `type`: engine model, `"<target>.<model>"` or `"<target>:<model>"` (raises the registry's
    `EngineModelError`s: "Wrong LLM format", "Unsupported LLM service").
    `strict`: also require a known model (built-ins + AIASSISTANT_EXTRA_MODELS). Off by default: the
    model policy is enforced where it lives, at the operator and in RunnerConfig, which passes the
    operator-approved models the runner pod's registry does not list (allowUnlistedModels).
    `key`: API key, or None/"" to use the target's env var (`XAI_API_KEY`, `OPENAI_API_KEY`).
    `base_url`: overrides the target's default (gateways, local OpenAI-compatible servers).
    `user_params`: the user aggregator's parameters; Pipecat's default (voice turn detection) when
    None.
    `policy`: timeouts and retries of each request (llm_policy.py); None keeps the OpenAI SDK's.
    `reasoning_effort`: sent as `reasoning_effort` (Pipecat's GrokLLMSettings.reasoning_effort for
    grok); a value the model does not take is a ValueError, and unset sends nothing (the provider's
    default). The service never holds a setting for a parameter the model rejects.
    """
    llm = create_llm(
        type,
        key,
        base_url=base_url,
        system_instruction=system_instruction,
        strict=strict,
        policy=policy,
        reasoning_effort=reasoning_effort,
    )
    context = LLMContext(
        messages=[dict(m) for m in messages or []],  # type: ignore[misc]
        tools=tools_schema(tools),
    )
    return llm, LLMContextAggregatorPair(context, user_params=user_params)
