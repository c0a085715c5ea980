"""Text conversations: POST /v1/chat/completions, driven by the `openai` package itself.

Every test runs against a grok assistant and an openai assistant, both pointed at the loopback
FakeOpenAI through baseURL; the fake records what the runner's Pipecat LLM service really sent.
"""

from __future__ import annotations

import json

import openai
import pytest

from aiassistant_runner.text_engine import APOLOGY
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.fakes.tool_server import ToolReply, ToolServer
from tests.runner.conftest import PROMPT, StartRunner

pytestmark = pytest.mark.parametrize("engine", ["grok", "openai"])


def client(url: str) -> openai.AsyncOpenAI:
    # The client's key is ignored by the runner: it must never be what reaches the LLM.
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="client-side-key", max_retries=0)


async def test_non_streaming(engine: str, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(engine, parameters={"store": "Berlin"})
    fake.script(Reply(text="We open at nine."))
    answer = await client(runner.url).chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "When do you open?"}]
    )
    assert answer.choices[0].message.content == "We open at nine."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == runner.model
    assert answer.usage is not None and answer.usage.completion_tokens == 4 and answer.usage.prompt_tokens > 0
    (sent,) = fake.chat_requests()
    assert sent.body["model"] == runner.model
    assert sent.headers["Authorization"] == f"Bearer {runner.key}"
    assert sent.body["messages"][0] == {"role": "system", "content": f"{PROMPT}\n\nstore: Berlin"}
    assert sent.body["messages"][-1] == {"role": "user", "content": "When do you open?"}
    assert "tools" not in sent.body  # no tools configured: none advertised


async def test_streaming_with_usage(engine: str, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(engine)
    fake.script(Reply(text="one two three four"))
    stream = await client(runner.url).chat.completions.create(
        model=runner.model,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "count"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "to four"}]},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert len([p for p in pieces if p]) == 4  # streamed word by word, as the fake sent it
    assert "".join(pieces) == "one two three four"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 4
    sent = fake.chat_requests()[0].body["messages"]
    # One system message: ours, then the client's; the history as sent.
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == f"{PROMPT}\n\nAnswer briefly."
    assert sent[3]["content"] == "to four"


@pytest.mark.parametrize("stream", [True, False])
async def test_server_side_tool_round(
    stream: bool, engine: str, start_runner: StartRunner, fake: FakeOpenAI, tool_server: ToolServer
) -> None:
    """Streamed, the model's tool call comes in deltas; whole, in the answer's message."""
    tool = {
        "name": "lookup_order",
        "description": "Find an order",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        "url": tool_server.url("lookup_order"),
    }
    runner = await start_runner(engine, tools=[tool])
    fake.script(
        Reply(tool_calls=[ToolCall("lookup_order", {"id": "A-17"}, id="call_a17")]),
        Reply(text="Order A-17 has shipped."),
    )
    tool_server.script(ToolReply({"status": "shipped"}))
    ask = [{"role": "user", "content": "Where is A-17?"}]
    if stream:
        chunks = await client(runner.url).chat.completions.create(model="x", messages=ask, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        answer = await client(runner.url).chat.completions.create(model="x", messages=ask)
        text = answer.choices[0].message.content or ""
    assert text == "Order A-17 has shipped."
    assert [r.body.get("stream") for r in fake.chat_requests()] == [stream or None] * 2
    (call,) = tool_server.requests
    assert call.body == {
        "id": "call_a17",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": json.dumps({"id": "A-17"})},
    }
    first, second = fake.chat_requests()
    assert first.body["tools"][0]["function"]["name"] == "lookup_order"
    assert [t["function"]["name"] for t in first.body["tools"]] == ["lookup_order"]  # no stop_service
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_a17",
        "content": json.dumps({"status": "shipped"}),
    }
    assert second.body["messages"][-2]["tool_calls"][0]["function"]["name"] == "lookup_order"


async def test_llm_failures_become_an_apology(
    engine: str, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(engine)
    ai = client(runner.url)
    ask = [{"role": "user", "content": "hi"}]
    # 5xx (the client retries once), then a garbled stream after a first word.
    fake.script(Reply(status=500), Reply(status=500), Reply(text="Partial answer", garbled=True))
    answer = await ai.chat.completions.create(model="x", messages=ask)
    assert answer.choices[0].message.content == APOLOGY
    stream = await ai.chat.completions.create(model="x", messages=ask, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == f"Partial {APOLOGY}"
    # The session continues: the next request is answered normally.
    answer = await ai.chat.completions.create(model="x", messages=ask)
    assert answer.choices[0].message.content == "Hello from the fake model."
    metrics = (await runner.client.get("/metrics")).text
    assert 'aiassistant_llm_errors_total{assistant="default/assistant"} 2.0' in metrics
    assert 'aiassistant_sessions_failed_total{assistant="default/assistant",kind="text"} 2.0' in metrics


async def test_a_stalled_stream_becomes_an_apology_a_slow_whole_answer_does_not(
    engine: str, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    """A streamed answer silent for the read timeout is a stall: retried once, then an apology. A
    whole answer (a request that did not ask to stream) is silent until it is done: only the turn's
    deadline bounds it (llm_policy.py)."""
    runner = await start_runner(engine, llm_timeout=0.3)
    ai = client(runner.url)
    ask = [{"role": "user", "content": "hi"}]
    fake.script(Reply(text="too late", first_token_delay=1), Reply(text="too late", first_token_delay=1))
    stream = await ai.chat.completions.create(model="x", messages=ask, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == APOLOGY
    fake.script(Reply(text="Slow but whole.", first_token_delay=1))
    answer = await ai.chat.completions.create(model="x", messages=ask)
    assert answer.choices[0].message.content == "Slow but whole."
    assert [r.body.get("stream") for r in fake.chat_requests()] == [True, True, None]
