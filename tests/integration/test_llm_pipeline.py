"""Real traffic: the factory's service and aggregators in a real Pipecat pipeline (PipelineWorker +
WorkerRunner) against the loopback OpenAI-compatible fake, reached through the base URL override.

What the fake records is what went over the wire: model, bearer key, system instruction, user
message, tools and tool results.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pipecat.frames.frames import EndFrame, LLMMessagesAppendFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.base_llm import BaseOpenAILLMService
from pipecat.workers.runner import WorkerRunner

from aiassistant_contract.engines import BUILTIN
from aiassistant_runner.llm_factory import create_llm_service, drop_rejected_settings
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.text_pipeline import TEXT_WORKER_OPTIONS, TextCallback, TextSink, text_user_params

SYSTEM = "You are the ACME support assistant."
QUESTION = {"role": "user", "content": "What are your opening hours?"}
TIMEOUT = 10.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(default_text="We are open from nine to five.") as server:
        yield server


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Distinct values per target: a test passes only if the right env var was read.
    monkeypatch.setenv("XAI_API_KEY", "xai-test-key-7f3a")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-91c2")


@asynccontextmanager
async def running(
    llm: BaseOpenAILLMService,
    pair: LLMContextAggregatorPair,
    *,
    text_options: bool = True,
    on_text: TextCallback | None = None,
) -> AsyncIterator[tuple[PipelineWorker, TextSink]]:
    """Run [user aggregator, LLM, sink, assistant aggregator] until the block ends."""
    sink = TextSink(on_text)
    pipeline = Pipeline([pair.user(), llm, sink, pair.assistant()])
    worker = PipelineWorker(pipeline, **(TEXT_WORKER_OPTIONS if text_options else {}))
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker: PipelineWorker, _frame: Any) -> None:
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(started.wait(), TIMEOUT)
        yield worker, sink
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(asyncio.shield(task), TIMEOUT)
    finally:
        if not task.done():
            await runner.cancel()
            await asyncio.wait_for(task, TIMEOUT)


async def ask(worker: PipelineWorker, sink: TextSink, message: Any) -> str:
    await worker.queue_frame(LLMMessagesAppendFrame(messages=[message], run_llm=True))
    return await asyncio.wait_for(sink.responses.get(), TIMEOUT)


@pytest.mark.parametrize(
    ("engine_model", "model", "key"),
    [("grok.grok-3", "grok-3", "xai-test-key-7f3a"), ("openai.gpt-4o", "gpt-4o", "sk-test-key-91c2")],
)
async def test_text_turn_over_the_wire(fake: FakeOpenAI, engine_model: str, model: str, key: str) -> None:
    llm, pair = create_llm_service(
        engine_model,
        None,  # the key comes from the target's env var
        [],
        None,
        base_url=fake.base_url,
        system_instruction=SYSTEM,
        user_params=text_user_params(),
    )
    streamed: list[str] = []
    async with running(llm, pair, on_text=streamed.append) as (worker, sink):
        answer = await ask(worker, sink, QUESTION)

    assert answer == "We are open from nine to five."
    assert len(streamed) > 1  # it streamed, chunk by chunk
    [request] = fake.chat_requests()
    assert request.headers["Authorization"] == f"Bearer {key}"
    assert request.body["model"] == model
    assert request.body["stream"] is True
    assert request.body["messages"] == [{"role": "system", "content": SYSTEM}, QUESTION]
    # The assistant aggregator keeps the answer for the next turn.
    assert pair.assistant().context.messages[-1] == {"role": "assistant", "content": answer}


async def test_pipecat_defaults_also_work_and_keep_the_conversation(fake: FakeOpenAI) -> None:
    # The factory's default aggregators (voice turn detection) under a default worker.
    llm, pair = create_llm_service("grok:grok-3-mini", None, [], None, base_url=fake.base_url)
    fake.script(Reply(text="First answer."), Reply(text="Second answer."))
    async with running(llm, pair, text_options=False) as (worker, sink):
        assert await ask(worker, sink, QUESTION) == "First answer."
        assert await ask(worker, sink, {"role": "user", "content": "And on Sunday?"}) == "Second answer."
    first, second = fake.chat_requests()
    assert first.body["model"] == "grok-3-mini"
    assert first.headers["Authorization"] == "Bearer xai-test-key-7f3a"
    assert second.body["messages"] == [
        QUESTION,
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "And on Sunday?"},
    ]


async def test_function_calling_round(fake: FakeOpenAI) -> None:
    calls: list[dict[str, Any]] = []

    async def get_weather(params: FunctionCallParams) -> None:
        calls.append(dict(params.arguments))
        await params.result_callback({"city": params.arguments["city"], "celsius": 21})

    tool = {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "handler": get_weather,
    }
    fake.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w1")]),
        Reply(text="It is 21 degrees in Paris."),
    )
    llm, pair = create_llm_service(
        "grok.grok-3",
        None,
        [],
        [tool],
        base_url=fake.base_url,
        system_instruction=SYSTEM,
        user_params=text_user_params(),
    )
    async with running(llm, pair) as (worker, sink):
        first = await ask(worker, sink, {"role": "user", "content": "Weather in Paris?"})
        final = await asyncio.wait_for(sink.responses.get(), TIMEOUT)

    assert first == ""  # the tool call's response carries no text
    assert final == "It is 21 degrees in Paris."
    assert calls == [{"city": "Paris"}]
    call_request, answer_request = fake.chat_requests()
    [advertised] = call_request.body["tools"]
    assert advertised["function"]["name"] == "get_weather"
    assert advertised["function"]["parameters"]["required"] == ["city"]
    messages = answer_request.body["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assistant_call = next(m for m in messages if m.get("tool_calls"))
    assert assistant_call["tool_calls"][0]["id"] == "call_w1"
    assert assistant_call["tool_calls"][0]["function"]["name"] == "get_weather"
    [tool_result] = [m for m in messages if m["role"] == "tool"]
    assert tool_result["tool_call_id"] == "call_w1"
    assert json.loads(tool_result["content"]) == {"city": "Paris", "celsius": 21}
    assert answer_request.headers["Authorization"] == "Bearer xai-test-key-7f3a"


@pytest.mark.parametrize(
    ("engine_model", "effort"),
    [
        ("grok.grok-4.3", "high"),  # GrokLLMService.Settings.reasoning_effort
        ("grok.grok-4.6", "xhigh"),
        ("openai.gpt-5.2", "none"),  # OpenAILLMService: through the settings' extra request keys
        ("grok.grok-3", None),  # unset: nothing is sent, the provider's default applies
        ("openai.gpt-4o", None),
    ],
)
async def test_reasoning_effort_goes_through_pipecat(
    fake: FakeOpenAI, engine_model: str, effort: str | None
) -> None:
    """The voice path: Pipecat's own request building (get_chat_completions over the OpenAI client)."""
    llm, pair = create_llm_service(
        engine_model,
        None,
        [],
        None,
        base_url=fake.base_url,
        user_params=text_user_params(),
        reasoning_effort=effort,
    )
    async with running(llm, pair) as (worker, sink):
        assert await ask(worker, sink, QUESTION)
    [request] = fake.chat_requests()
    assert request.body.get("reasoning_effort") == effort
    rejected = BUILTIN.parse(engine_model).facts.rejected_parameters
    assert not rejected & set(request.body), request.body


async def test_rejected_settings_are_unset_before_pipecat_builds_a_request(fake: FakeOpenAI) -> None:
    """drop_rejected_settings: a setting the model rejects is unset, so Pipecat never sends it."""
    from pipecat.services.xai.llm import GrokLLMService

    settings: Any = GrokLLMService.Settings(model="grok-4.3", system_instruction="Be brief.")
    settings.presence_penalty, settings.frequency_penalty, settings.extra = 0.5, 0.5, {"stop": ["\n"]}
    settings.temperature = 0.3  # grok-4.3 takes temperature: it stays
    drop_rejected_settings(settings, BUILTIN.parse("grok.grok-4.3").facts.rejected_parameters)
    llm = GrokLLMService(api_key="xai-test", base_url=fake.base_url, settings=settings)
    pair = LLMContextAggregatorPair(LLMContext(messages=[]), user_params=text_user_params())
    async with running(llm, pair) as (worker, sink):
        assert await ask(worker, sink, QUESTION)
    [request] = fake.chat_requests()
    assert not {"presence_penalty", "frequency_penalty", "stop"} & set(request.body), request.body
    assert request.body["temperature"] == 0.3


@pytest.mark.parametrize(
    ("engine_model", "effort", "message"),
    [
        (
            "grok.grok-4.3",
            "xhigh",
            "'xhigh' is not accepted by grok.grok-4.3 (it takes none, low, medium, high)",
        ),
        ("grok.grok-3", "low", "'low' is not accepted by grok.grok-3 (it is not a reasoning model"),
        ("grok.grok-99", "low", "the operator knows nothing of this model's reasoning"),  # not strict: plain
    ],
)
def test_the_factory_refuses_an_effort_the_model_does_not_take(
    engine_model: str, effort: str, message: str
) -> None:
    with pytest.raises(ValueError, match=r"^reasoning_effort: ") as err:
        create_llm_service(engine_model, None, [], None, reasoning_effort=effort)
    assert message in str(err.value)
