"""Fallback models for text and tasks, over real HTTP: a failing primary fake (5xx, 429, 401, dead)
and a working fallback fake. The request is asked of the fallback, with the fallback's own key;
the X-AIAssistant-Model header, the body's model and the metrics say which model answered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import XAI_KEY, Runner, StartRunner
from tests.runner.process import free_port

FALLBACK_KEY = "sk-fallback-key-4e21c9"
ENV = {"AIASSISTANT_FALLBACK_1_API_KEY": FALLBACK_KEY}
ASK = {"messages": [{"role": "user", "content": "Opening hours?"}]}


@pytest.fixture
async def backup() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(default_text="Answer from the fallback.", key=FALLBACK_KEY) as server:
        yield server


async def start(start_runner: StartRunner, backup: FakeOpenAI, **fields: object) -> Runner:
    fallbacks = [{"engineModel": "openai.gpt-4o", "baseURL": backup.base_url}]
    return await start_runner("grok", environ=ENV, engineModel="grok.grok-4.3", fallbacks=fallbacks, **fields)


def metric(runner: Runner, name: str) -> dict[str, float]:
    found = {}
    for line in runner.state.metrics.render().decode().splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            found[labels[len(name) :]] = float(value)
    return found


@pytest.mark.parametrize("failure", [Reply(status=503), Reply(status=429), Reply(status=401)])
async def test_a_failing_primary_falls_over_to_the_fallback(
    failure: Reply, fake: FakeOpenAI, backup: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start(start_runner, backup)
    fake.script(failure, failure)  # the attempt and, for 5xx/429, its one retry
    response = await runner.client.post("/v1/chat/completions", json=ASK)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Answer from the fallback."
    assert response.json()["model"] == "gpt-4o"
    assert response.headers["X-AIAssistant-Model"] == "openai.gpt-4o"
    tried = fake.chat_requests()
    assert len(tried) == (1 if failure.status == 401 else 2)
    assert tried[0].headers["Authorization"] == f"Bearer {XAI_KEY}" and tried[0].body["model"] == "grok-4.3"
    (answered,) = backup.chat_requests()
    assert (
        answered.headers["Authorization"] == f"Bearer {FALLBACK_KEY}" and answered.body["model"] == "gpt-4o"
    )
    assert answered.body["messages"][-1] == ASK["messages"][0]
    assert metric(runner, "aiassistant_llm_failovers_total") == {
        '{assistant="default/assistant",from_model="grok.grok-4.3",to_model="openai.gpt-4o"}': 1.0
    }
    assert metric(runner, "aiassistant_llm_answers_total") == {
        '{assistant="default/assistant",model="gpt-4o"}': 1.0
    }
    assert metric(runner, "aiassistant_llm_errors_total") == {'{assistant="default/assistant"}': 0.0}


async def test_a_dead_primary_falls_over_while_streaming(
    backup: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start(start_runner, backup, baseURL=f"http://127.0.0.1:{free_port()}/v1")
    async with runner.client.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as response:
        assert response.status_code == 200
        chunks = [json.loads(line[6:]) async for line in response.aiter_lines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Answer from the fallback."
    assert {c["model"] for c in chunks[1:]} == {"gpt-4o"}
    assert len(backup.chat_requests()) == 1


async def test_a_healthy_primary_answers_and_the_fallback_is_not_asked(
    fake: FakeOpenAI, backup: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start(start_runner, backup)
    response = await runner.client.post("/v1/chat/completions", json=ASK)
    assert response.headers["X-AIAssistant-Model"] == "grok.grok-4.3"
    assert response.json()["model"] == "grok-4.3"
    assert backup.chat_requests() == [] and len(fake.chat_requests()) == 1
    assert metric(runner, "aiassistant_llm_answers_total") == {
        '{assistant="default/assistant",model="grok-4.3"}': 1.0
    }


async def test_a_bad_request_is_not_a_reason_to_fall_over(
    fake: FakeOpenAI, backup: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start(start_runner, backup)
    fake.script(Reply(status=400))
    response = await runner.client.post("/v1/chat/completions", json=ASK)
    assert response.status_code == 200 and "Sorry" in response.json()["choices"][0]["message"]["content"]
    assert "X-AIAssistant-Model" not in response.headers
    assert backup.chat_requests() == []


async def test_a_task_falls_over_too(fake: FakeOpenAI, backup: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start(start_runner, backup)
    fake.script(Reply(status=500), Reply(status=500))
    response = await runner.client.post("/v1/tasks", json={"input": "Summarise"})
    assert response.status_code == 200 and response.json()["status"] == "completed", response.json()
    assert response.json()["output"] == "Answer from the fallback."
    assert response.headers["X-AIAssistant-Model"] == "openai.gpt-4o"


async def test_every_model_failing_is_the_usual_apology(
    fake: FakeOpenAI, backup: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start(start_runner, backup)
    fake.script(Reply(status=503), Reply(status=503))
    backup.script(Reply(status=503), Reply(status=503))
    response = await runner.client.post("/v1/chat/completions", json=ASK)
    assert "Sorry" in response.json()["choices"][0]["message"]["content"]
    assert len(backup.chat_requests()) == 2
    assert metric(runner, "aiassistant_llm_errors_total") == {'{assistant="default/assistant"}': 1.0}
