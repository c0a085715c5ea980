"""Probes, metrics, admission (capacity, drain) and input errors of the runner's HTTP API."""

from __future__ import annotations

import asyncio
import re

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import StartRunner

ASK = {"messages": [{"role": "user", "content": "hi"}]}


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", metrics, re.M)
    assert match, f"no sample {name}{{{wanted}}}"
    return float(match.group(1))


async def test_probes(start_runner: StartRunner) -> None:
    runner = await start_runner()
    assert (await runner.client.get("/healthz")).json() == {"status": "ok"}
    ready = await runner.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "activeSessions": 0, "maxSessions": 20}


async def test_capacity_readiness_and_503(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(maxSessionsPerPod=1)
    fake.script(Reply(text="slow answer", first_token_delay=1))
    held = asyncio.create_task(runner.client.post("/v1/chat/completions", json=ASK))
    while runner.state.sessions.active == 0:
        await asyncio.sleep(0.01)
    ready = await runner.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"] == "at capacity"
    metrics = (await runner.client.get("/metrics")).text
    assert sample(metrics, "aiassistant_active_sessions", assistant="default/assistant", kind="text") == 1
    for stream in (False, True):
        refused = await runner.client.post("/v1/chat/completions", json={**ASK, "stream": stream})
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "at_capacity"
    refused = await runner.client.post("/v1/tasks", json={"input": "x"})
    assert refused.status_code == 503
    assert (await held).json()["choices"][0]["message"]["content"] == "slow answer"
    assert (await runner.client.get("/readyz")).status_code == 200
    metrics = (await runner.client.get("/metrics")).text
    rejected = "aiassistant_sessions_rejected_total"
    assert sample(metrics, rejected, assistant="default/assistant", kind="text", reason="at capacity") == 2
    assert sample(metrics, rejected, assistant="default/assistant", kind="task", reason="at capacity") == 1


async def test_draining_refuses_new_sessions(start_runner: StartRunner) -> None:
    runner = await start_runner()
    runner.state.sessions.begin_drain()
    ready = await runner.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"] == "draining"
    ai = openai.AsyncOpenAI(base_url=f"{runner.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.APIStatusError) as refused:
        await ai.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 503 and "draining" in refused.value.message


async def test_metrics_after_traffic(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(name="support-bot", namespace="bots")
    fake.script(Reply(text="a b c", first_token_delay=0.3))
    for stream in (False, True):
        response = await runner.client.post("/v1/chat/completions", json={**ASK, "stream": stream})
        assert response.status_code == 200
    await runner.client.post("/v1/tasks", json={"input": "x"})
    metrics = (await runner.client.get("/metrics")).text
    a = {"assistant": "bots/support-bot"}
    assert sample(metrics, "aiassistant_sessions_total", **a, kind="text") == 2
    assert sample(metrics, "aiassistant_sessions_total", **a, kind="task") == 1
    assert sample(metrics, "aiassistant_sessions_total", **a, kind="call") == 0
    assert sample(metrics, "aiassistant_sessions_failed_total", **a, kind="text") == 0
    assert sample(metrics, "aiassistant_active_sessions", **a, kind="text") == 0
    assert sample(metrics, "aiassistant_llm_time_to_first_token_seconds_count", **a) == 3
    # The slow first reply lands above the 0.2 s bucket; the two quick ones below it.
    assert sample(metrics, "aiassistant_llm_time_to_first_token_seconds_bucket", **a, le="0.2") == 2
    assert sample(metrics, "aiassistant_llm_completion_tokens_total", **a) == 3 + 2 * 5
    assert sample(metrics, "aiassistant_llm_prompt_tokens_total", **a) > 0
    # Cost at the model's list price (the engine's registry facts), USD per 1M tokens.
    prompt, completion = (
        sample(metrics, f"aiassistant_llm_{kind}_tokens_total", **a) for kind in ("prompt", "completion")
    )
    price_in, price_out = runner.state.config.billed_price() or (0, 0)
    assert price_in > 0 and price_out > 0
    cost = sample(metrics, "aiassistant_llm_cost_usd_total", **a, model=runner.state.config.engine_model)
    assert cost == pytest.approx((prompt * price_in + completion * price_out) / 1e6)
    assert sample(metrics, "aiassistant_call_seconds_total", **a) == 0  # no call yet


async def test_cost_at_the_operators_price(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    """The operator renders a contract price (AIASSISTANT_MODEL_PRICES) into the config: it wins."""
    runner = await start_runner(price={"inputPerMillion": 10_000, "outputPerMillion": 5_000})
    fake.script(Reply(text="a b c"))
    assert (await runner.client.post("/v1/chat/completions", json=ASK)).status_code == 200
    metrics = (await runner.client.get("/metrics")).text
    a = {"assistant": "default/assistant"}
    prompt = sample(metrics, "aiassistant_llm_prompt_tokens_total", **a)
    completion = sample(metrics, "aiassistant_llm_completion_tokens_total", **a)
    cost = sample(metrics, "aiassistant_llm_cost_usd_total", **a, model=runner.state.config.engine_model)
    assert cost == pytest.approx(prompt * 0.01 + completion * 0.005) and cost > 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({**ASK, "stream": "yes"}, "stream"),
        ({**ASK, "model": 3}, "model"),
        ({**ASK, "n": 2}, "n"),
        ({**ASK, "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)
async def test_bad_chat_input_names_the_field(
    start_runner: StartRunner, body: dict[str, object], param: str
) -> None:
    runner = await start_runner()
    response = await runner.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


async def test_body_that_is_not_json(start_runner: StartRunner) -> None:
    runner = await start_runner()
    for path in ("/v1/chat/completions", "/v1/tasks"):
        response = await runner.client.post(path, content=b"{nope")
        assert response.status_code == 400
        assert "JSON object" in response.json()["error"]["message"]


async def test_openai_client_sees_a_bad_request(start_runner: StartRunner) -> None:
    runner = await start_runner()
    ai = openai.AsyncOpenAI(base_url=f"{runner.url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        await ai.chat.completions.create(model="x", messages=[{"role": "wizard", "content": "x"}])  # type: ignore[misc,list-item]
    assert "messages[0].role" in str(bad.value.body)


async def test_client_gone_mid_stream_ends_the_session(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    fake.script(Reply(text="a long story " * 20, chunk_delay=0.05))
    async with runner.client.stream("POST", "/v1/chat/completions", json={**ASK, "stream": True}) as response:
        async for line in response.aiter_lines():
            if '"content": "a' in line:
                break  # leave mid-answer: the connection closes
    for _ in range(200):
        if runner.state.sessions.active == 0:
            break
        await asyncio.sleep(0.01)
    assert runner.state.sessions.active == 0
    assert (await runner.client.get("/readyz")).json()["activeSessions"] == 0
