"""reasoningEffort over the wire: what the runner's text conversations and tasks send to the model.

The runner is served on a real socket and pointed at the loopback FakeOpenAI, which records every
request body: `reasoning_effort` goes out exactly when the assistant sets it, and a parameter the
model rejects never goes out, even if something put it into the service's settings.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from aiassistant_contract.engines import BUILTIN
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import StartRunner

QUESTION = [{"role": "user", "content": "When do you open?"}]


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="client-side-key", max_retries=0)


async def ask(url: str, **kwargs: Any) -> str:
    answer = await client(url).chat.completions.create(model="anything", messages=QUESTION, **kwargs)  # type: ignore[arg-type]
    return answer.choices[0].message.content or ""


@pytest.mark.parametrize(
    ("engine", "engine_model", "effort"),
    [
        ("grok", "grok.grok-4.3", "high"),
        ("grok", "grok.grok-4.3", "none"),
        ("grok", "grok.grok-4.6", "xhigh"),
        ("grok", "grok.grok-3-mini", "low"),
        ("openai", "openai.gpt-5.2", "xhigh"),  # OpenAILLMService has no setting: the extra keys carry it
        ("openai", "openai.gpt-5", "medium"),
    ],
)
async def test_conversation_and_task_send_the_reasoning_effort(
    engine: str, engine_model: str, effort: str, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(engine, engineModel=engine_model, reasoningEffort=effort)
    fake.script(Reply(text="At nine."), Reply(text="Done."))
    assert await ask(runner.url) == "At nine."
    task = await runner.client.post("/v1/tasks", json={"input": "Say done."})
    assert task.status_code == 200, task.text
    conversation, task_request = fake.chat_requests()
    for sent in (conversation.body, task_request.body):
        assert sent["model"] == engine_model.split(".", 1)[1]
        assert sent["reasoning_effort"] == effort
        assert not set(sent) & BUILTIN.parse(engine_model).facts.rejected_parameters


@pytest.mark.parametrize(
    ("engine", "engine_model"),
    [("grok", "grok.grok-3"), ("grok", "grok.grok-4.3"), ("openai", "openai.gpt-4o")],
)
async def test_unset_effort_sends_none(
    engine: str, engine_model: str, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(engine, engineModel=engine_model)
    assert await ask(runner.url)
    (sent,) = fake.chat_requests()
    assert "reasoning_effort" not in sent.body  # the provider's default applies


async def test_client_sampling_parameters_reach_a_reasoning_model_that_takes_them(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(engineModel="grok.grok-4.3", reasoningEffort="low")
    taken = {"temperature": 0.2, "top_p": 0.9, "seed": 7, "max_completion_tokens": 50}
    assert await ask(runner.url, **taken)
    (sent,) = fake.chat_requests()
    assert {name: sent.body[name] for name in taken} == taken
    assert sent.body["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("name", "value"), [("stop", ["\n"]), ("presence_penalty", 0.5), ("frequency_penalty", 0.5)]
)
async def test_a_parameter_the_model_rejects_is_a_400_naming_it_and_the_model(
    name: str, value: Any, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    """grok-4.3 is a reasoning model: xAI rejects stop and the penalties. The client is told, rather
    than getting an answer that silently ignored what it asked for."""
    runner = await start_runner(engineModel="grok.grok-4.3", reasoningEffort="low")
    with pytest.raises(openai.BadRequestError) as refused:
        await ask(runner.url, temperature=0.2, **{name: value})
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == name, error
    assert "grok.grok-4.3" in error["message"] and name in error["message"]
    assert fake.chat_requests() == []


async def test_a_parameter_a_fallback_rejects_is_a_400_naming_the_fallback(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    """grok-3 takes a stop sequence, its fallback grok-4.3 does not: a turn the fallback answers
    would not honour it, so it is refused up front."""
    runner = await start_runner(
        engineModel="grok.grok-3",
        fallbacks=[{"engineModel": "grok.grok-4.3", "baseURL": fake.base_url}],
        environ={"AIASSISTANT_FALLBACK_1_API_KEY": "xai-fallback-key-1"},
    )
    response = await runner.client.post("/v1/chat/completions", json={"messages": QUESTION, "stop": "\n"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "stop" and "grok.grok-4.3 (its fallbacks[0])" in error["message"]
    assert (await runner.client.post("/v1/chat/completions", json={"messages": QUESTION})).status_code == 200


@pytest.mark.parametrize(
    ("engine", "engine_model", "rejected"),
    [
        ("grok", "grok.grok-4.3", {"presence_penalty": 0.5, "frequency_penalty": 0.5, "stop": ["x"]}),
        ("grok", "grok.grok-3", {"reasoning_effort": "high"}),
        ("openai", "openai.gpt-5", {"temperature": 0.2, "top_p": 0.9, "stop": ["x"], "max_tokens": 9}),
    ],
)
async def test_a_rejected_parameter_is_never_sent_whatever_asks_for_it(
    engine: str, engine_model: str, rejected: dict[str, Any], start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    """Whatever asks for a parameter (a client's request options, a future knob): the request body
    the text engine builds leaves out what the model rejects."""
    runner = await start_runner(engine, engineModel=engine_model)
    result = await runner.state.text.run([{"role": "user", "content": "hi"}], options=rejected)
    assert result.finish == "stop" and result.text
    (sent,) = fake.chat_requests()
    assert not set(rejected) & set(sent.body), sent.body
    assert sent.body["model"] == engine_model.split(".", 1)[1]
