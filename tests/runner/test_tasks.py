"""Headless tasks: POST /v1/tasks with tools, stop_service, the time bound, failures, bad input."""

from __future__ import annotations

import json

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.fakes.tool_server import ToolReply, ToolServer
from tests.runner.conftest import PROMPT, StartRunner


def weather_tool(tool_server: ToolServer, **extra: object) -> dict[str, object]:
    return {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "url": tool_server.url("get_weather"),
        **extra,
    }


@pytest.mark.parametrize("engine", ["grok", "openai"])
async def test_task_with_a_tool_round_then_stop_service(
    engine: str, start_runner: StartRunner, fake: FakeOpenAI, tool_server: ToolServer
) -> None:
    runner = await start_runner(engine, tools=[weather_tool(tool_server)])
    fake.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_w")]),
        Reply(
            text="Done.", tool_calls=[ToolCall("stop_service", {"result": "Oslo: 4 C, rain"}, id="call_s")]
        ),
    )
    tool_server.script(ToolReply({"temp_c": 4, "sky": "rain"}))
    response = await runner.client.post(
        "/v1/tasks", json={"input": "Report the weather", "parameters": {"city": "Oslo", "units": "C"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "stopped"
    assert body["result"] == "Oslo: 4 C, rain"
    assert body["toolCalls"] == [
        {"name": "get_weather", "arguments": {"city": "Oslo"}, "result": {"temp_c": 4, "sky": "rain"}}
    ]
    assert body["usage"]["promptTokens"] > 0 and body["usage"]["totalTokens"] > body["usage"]["promptTokens"]
    first, second = fake.chat_requests()
    assert first.body["model"] == runner.model
    assert first.headers["Authorization"] == f"Bearer {runner.key}"
    assert first.body["messages"][0] == {
        "role": "system",
        "content": f"{PROMPT}\n\nTask parameters:\ncity: Oslo\nunits: C",
    }
    assert first.body["messages"][1] == {"role": "user", "content": "Report the weather"}
    assert sorted(t["function"]["name"] for t in first.body["tools"]) == ["get_weather", "stop_service"]
    assert second.body["messages"][-1]["content"] == json.dumps({"temp_c": 4, "sky": "rain"})
    assert tool_server.requests[0].arguments == {"city": "Oslo"}


async def test_task_completes_on_a_plain_answer(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    fake.script(Reply(text="42"))
    body = (await runner.client.post("/v1/tasks", json={"input": "Answer"})).json()
    assert body["status"] == "completed" and body["result"] == "42" and body["output"] == "42"
    assert body["toolCalls"] == []


async def test_tool_failures_are_results_not_crashes(
    start_runner: StartRunner, fake: FakeOpenAI, tool_server: ToolServer
) -> None:
    runner = await start_runner(tools=[weather_tool(tool_server, timeoutSeconds=0.3)])
    fake.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "A"}, id="c1")]),
        Reply(tool_calls=[ToolCall("get_weather", {"city": "B"}, id="c2")]),
        Reply(tool_calls=[ToolCall("get_weather", {"city": "C"}, id="c3")]),
        Reply(text="Sorry, no weather today."),
    )
    tool_server.script(ToolReply({"boom": 1}, status=500), ToolReply(delay=1), ToolReply(raw="sunny"))
    body = (await runner.client.post("/v1/tasks", json={"input": "weather"})).json()
    assert body["status"] == "completed"
    results = [c["result"] for c in body["toolCalls"]]
    assert results[0]["error"].startswith("tool get_weather failed: HTTP 500")
    assert results[1] == {"error": "tool get_weather timed out after 0.3s"}
    assert results[2] == "sunny"  # a non-JSON answer is passed on as text
    metrics = (await runner.client.get("/metrics")).text
    assert (
        'aiassistant_tool_calls_total{assistant="default/assistant",outcome="error",tool="get_weather"} 2.0'
        in metrics
    )
    assert (
        'aiassistant_tool_calls_total{assistant="default/assistant",outcome="ok",tool="get_weather"} 1.0'
        in metrics
    )


async def test_unreachable_tool_and_unknown_tool(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(tools=[{"name": "gone", "url": "http://127.0.0.1:9/nowhere"}])
    fake.script(
        Reply(tool_calls=[ToolCall("gone", {}, id="c1"), ToolCall("invented", {}, id="c2")]),
        Reply(text="ok"),
    )
    body = (await runner.client.post("/v1/tasks", json={"input": "go"})).json()
    assert body["toolCalls"][0]["result"] == {"error": "tool gone unreachable: ClientConnectorError"}
    assert body["toolCalls"][1]["result"] == {"error": "unknown tool 'invented'"}


async def test_task_timeout(start_runner: StartRunner, fake: FakeOpenAI, tool_server: ToolServer) -> None:
    runner = await start_runner(tools=[weather_tool(tool_server)], taskTimeoutSeconds=0.5)
    fake.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "A"}, id="c1")]),
        Reply(text="never", first_token_delay=1),
    )
    response = await runner.client.post("/v1/tasks", json={"input": "slow"})
    assert response.status_code == 504
    body = response.json()
    assert body["status"] == "timeout" and "taskTimeoutSeconds (0.5s)" in body["error"]
    assert [c["name"] for c in body["toolCalls"]] == ["get_weather"]  # what was done before the bound
    metrics = (await runner.client.get("/metrics")).text
    assert 'aiassistant_sessions_failed_total{assistant="default/assistant",kind="task"} 1.0' in metrics


async def test_task_llm_error(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    fake.script(Reply(status=503), Reply(status=503))
    response = await runner.client.post("/v1/tasks", json={"input": "x"})
    assert response.status_code == 502
    assert response.json()["status"] == "error"
    assert "HTTP 503" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": "  "}, "input"),
        ({"input": "x", "parameters": []}, "parameters"),
        ({"input": "x", "parameters": {"a": {"b": 1}}}, "parameters.a"),
        ({"input": "x", "tools": []}, "tools"),
    ],
)
async def test_bad_task_input_names_the_field(
    start_runner: StartRunner, body: dict[str, object], param: str
) -> None:
    runner = await start_runner()
    response = await runner.client.post("/v1/tasks", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
