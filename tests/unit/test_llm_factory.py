"""create_llm_service: the seed's factory cases, checked on the real Pipecat service and its real client."""

from __future__ import annotations

import importlib
from typing import Any, cast

import pytest
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.openai.base_llm import BaseOpenAILLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.xai.llm import GrokLLMService
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies

from aiassistant_contract.engines import BUILTIN, EXTRA_MODELS_ENV, UnknownModelError
from aiassistant_contract.errors import MissingKeyError
from aiassistant_runner.llm_factory import create_llm, create_llm_service, service_class, tools_schema
from tests.text_pipeline import TEXT_WORKER_OPTIONS, TextSink, text_user_params

XAI_URL = "https://api.x.ai/v1"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XAI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", EXTRA_MODELS_ENV):
        monkeypatch.delenv(name, raising=False)


def _base_url(llm: object) -> str:
    # The real AsyncOpenAI client the service sends with; httpx normalises a trailing slash.
    return str(llm._client.base_url).rstrip("/")  # type: ignore[attr-defined]


def test_openai_creation_uses_key_and_model() -> None:
    llm, pair = create_llm_service("openai.gpt-4o", "sk-test-openai", [], None)
    assert type(llm) is OpenAILLMService
    assert llm.settings.model == "gpt-4o"
    assert llm._client.api_key == "sk-test-openai"
    assert _base_url(llm) == "https://api.openai.com/v1"
    assert isinstance(pair, LLMContextAggregatorPair)


def test_grok_creation_targets_xai_base_url() -> None:
    llm, _ = create_llm_service("grok.grok-3", "xai-test-key", [], None)
    assert type(llm) is GrokLLMService
    assert llm.settings.model == "grok-3"
    assert llm._client.api_key == "xai-test-key"
    assert _base_url(llm) == XAI_URL  # exactly, with no override


def test_grok_falls_back_to_xai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-from-env")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-one")
    for key in (None, ""):
        llm, _ = create_llm_service("grok.grok-3-mini", key, [], None)
        assert type(llm) is GrokLLMService
        assert llm.settings.model == "grok-3-mini"
        assert llm._client.api_key == "xai-from-env"
        assert _base_url(llm) == XAI_URL


def test_openai_falls_back_to_openai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("XAI_API_KEY", "xai-wrong-one")
    llm, _ = create_llm_service("openai:gpt-4o-mini", None, [], None)
    assert llm._client.api_key == "sk-from-env"
    assert llm.settings.model == "gpt-4o-mini"


def test_explicit_key_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-from-env")
    llm, _ = create_llm_service("grok.grok-3", "xai-explicit", [], None)
    assert llm._client.api_key == "xai-explicit"


def test_base_url_override_wins() -> None:
    llm, _ = create_llm_service("grok.grok-3", "k", [], None, base_url="http://127.0.0.1:9/v1")
    assert _base_url(llm) == "http://127.0.0.1:9/v1"
    llm, _ = create_llm_service("openai.gpt-4o", "k", [], None, base_url="http://gw.local/v1")
    assert _base_url(llm) == "http://gw.local/v1"


def test_unsupported_service() -> None:
    with pytest.raises(ValueError, match="Unsupported LLM service: anthropic"):
        create_llm_service("anthropic.claude-3", "k", [], None)


def test_no_separator_is_wrong_format() -> None:
    with pytest.raises(ValueError, match="Wrong LLM format"):
        create_llm_service("grok-3", "k", [], None)


def test_unknown_model_builds_unless_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner builds what RunnerConfig accepted (operator-approved models included); strict
    # applies the registry's own policy, extended by AIASSISTANT_EXTRA_MODELS.
    llm, _ = create_llm_service("grok.grok-99", "k", [], None)
    assert llm.settings.model == "grok-99"
    with pytest.raises(UnknownModelError, match="grok-99"):
        create_llm_service("grok.grok-99", "k", [], None, strict=True)
    monkeypatch.setenv(EXTRA_MODELS_ENV, "grok.grok-99")
    llm, _ = create_llm_service("grok.grok-99", "k", [], None, strict=True)
    assert llm.settings.model == "grok-99"
    with pytest.raises(ValueError, match="Unsupported LLM service: mistral"):
        create_llm_service("mistral.large", "k", [], None)  # no target, strict or not


@pytest.mark.parametrize(
    ("engine_model", "env"), [("grok.grok-3", "XAI_API_KEY"), ("openai.gpt-4o", "OPENAI_API_KEY")]
)
def test_missing_key_names_the_env_var_and_no_key(
    monkeypatch: pytest.MonkeyPatch, engine_model: str, env: str
) -> None:
    # The other target's key is set: it must neither be used nor leak into the message.
    other = "OPENAI_API_KEY" if env == "XAI_API_KEY" else "XAI_API_KEY"
    monkeypatch.setenv(other, "secret-value-of-the-other-target")
    with pytest.raises(MissingKeyError) as err:
        create_llm_service(engine_model, None, [], None)
    message = str(err.value)
    assert env in message
    assert "secret-value" not in message
    assert isinstance(err.value, ValueError)


def test_context_carries_messages_tools_and_settings_the_system_instruction() -> None:
    messages = [{"role": "user", "content": "hi"}]
    llm, pair = create_llm_service("grok.grok-3", "k", messages, [WEATHER], system_instruction="Be brief.")
    assert cast(Any, llm.settings).system_instruction == "Be brief."
    user, assistant = pair
    context = user.context
    assert context is assistant.context
    assert context.messages == messages
    assert isinstance(context.tools, ToolsSchema)
    [function] = context.tools.standard_tools
    assert function.to_default_dict() == WEATHER


def test_tools_schema_conversion_and_errors() -> None:
    assert not isinstance(tools_schema(None), ToolsSchema)
    assert not isinstance(tools_schema([]), ToolsSchema)
    bare = tools_schema([{"name": "ping"}])
    assert isinstance(bare, ToolsSchema)
    assert bare.standard_tools[0].to_default_dict() == {
        "name": "ping",
        "description": "",
        "parameters": {"type": "object", "properties": {}, "required": []},
    }
    with pytest.raises(ValueError, match=r"tools\[0\]\.name"):
        tools_schema([{"description": "no name"}])
    with pytest.raises(ValueError, match=r"tools\[1\]\.parameters"):
        tools_schema([WEATHER, {"name": "x", "parameters": "not a schema"}])


def test_the_factory_builds_the_class_the_registry_names() -> None:
    # The contract's engines.py names each target's class (no Pipecat there); llm_factory.py imports and
    # builds exactly that class, with no table of its own.
    for target in BUILTIN.targets.values():
        module, _, cls = target.service.partition(":")
        expected = getattr(importlib.import_module(module), cls)
        assert service_class(target) is expected and issubclass(expected, BaseOpenAILLMService)
        llm = create_llm(f"{target.name}.{sorted(target.models)[0]}", "k")
        assert type(llm) is expected


def test_text_user_params_skip_voice_turn_detection() -> None:
    _, pair = create_llm_service("grok.grok-3", "k", [], None, user_params=text_user_params())
    strategies = pair.user()._params.user_turn_strategies
    assert isinstance(strategies, ExternalUserTurnStrategies)
    assert not any(isinstance(s, TurnAnalyzerUserTurnStopStrategy) for s in strategies.stop or [])
    assert pair.user()._params.vad_analyzer is None


async def test_text_worker_options_drop_rtvi_turn_tracking_and_idle() -> None:
    worker = PipelineWorker(Pipeline([TextSink()]), **TEXT_WORKER_OPTIONS)
    with pytest.raises(Exception, match="RTVI is not enabled"):
        worker.rtvi  # noqa: B018 - the property raises when RTVI is off
    assert worker.turn_tracking_observer is None
    default = PipelineWorker(Pipeline([TextSink()]))
    assert default.rtvi is not None  # what the options turn off is on by default
    assert default.turn_tracking_observer is not None


def test_create_llm_is_the_same_service_without_aggregators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-from-env")
    llm = create_llm("grok.grok-3-mini", None, system_instruction="Be brief.")
    assert type(llm) is GrokLLMService
    assert llm.settings.model == "grok-3-mini"
    assert llm._client.api_key == "xai-from-env"
    assert _base_url(llm) == XAI_URL
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        create_llm("openai.gpt-4o", None)


async def test_policy_bounds_each_attempt_and_retries_once() -> None:
    """The voice policy, on the real OpenAI client of the service against a stalling loopback LLM:
    each attempt gives up after read_seconds, and there is exactly one retry."""
    import openai
    from pipecat.processors.aggregators.llm_context import LLMContext

    from aiassistant_runner.llm_policy import LLMPolicy
    from tests.fakes.openai_server import FakeOpenAI, Reply

    async with FakeOpenAI() as fake:
        fake.script(*[Reply(text="late", first_token_delay=3.0)] * 3)
        policy = LLMPolicy(read_seconds=0.3)
        llm = create_llm(
            "grok.grok-3", "xai-test", base_url=fake.base_url, system_instruction="x", policy=policy
        )
        assert isinstance(llm, GrokLLMService)
        context = LLMContext(messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.APITimeoutError):
            stream = await llm.get_chat_completions(context)
            async for _ in stream:
                pass
        sent = fake.chat_requests()
        assert len(sent) == policy.max_retries + 1
        assert all(r.headers["Authorization"] == "Bearer xai-test" for r in sent)
