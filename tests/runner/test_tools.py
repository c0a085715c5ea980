"""Spec tools as webhooks: the request the tool server receives, results and errors, and the
registration on a Pipecat LLM service that voice calls use (its handler driven by hand)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiassistant_contract.runner_config import ToolConfig
from aiassistant_runner.llm_factory import create_llm_service
from aiassistant_runner.metrics import Metrics
from aiassistant_runner.tools import ToolRunner
from tests.fakes.tool_server import ToolReply, ToolServer


def tool(server: ToolServer, name: str = "lookup", **extra: Any) -> ToolConfig:
    return ToolConfig.model_validate(
        {
            "name": name,
            "description": "Look something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            "url": server.url(name),
            **extra,
        }
    )


async def test_call_posts_the_seed_shape(tool_server: ToolServer) -> None:
    runner = ToolRunner([tool(tool_server)])
    tool_server.script(ToolReply({"answer": 42}))
    try:
        assert await runner.call("lookup", {"q": "life"}, "call_9") == {"answer": 42}
    finally:
        await runner.close()
    (request,) = tool_server.requests
    assert request.body == {
        "id": "call_9",
        "type": "function",
        "function": {"name": "lookup", "arguments": json.dumps({"q": "life"})},
    }
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            ToolReply({"detail": "nope"}, status=404),
            {"error": 'tool lookup failed: HTTP 404: {"detail": "nope"}'},
        ),
        (ToolReply(delay=1), {"error": "tool lookup timed out after 0.2s"}),
        (ToolReply(raw="plain text answer"), "plain text answer"),
        (ToolReply([1, 2]), [1, 2]),
    ],
)
async def test_results_and_errors(tool_server: ToolServer, reply: ToolReply, expected: Any) -> None:
    metrics = Metrics("ns/a")
    runner = ToolRunner([tool(tool_server, timeoutSeconds=0.2)], metrics)
    tool_server.script(reply)
    try:
        assert await runner.call("lookup", {"q": "x"}, "c") == expected
    finally:
        await runner.close()
    outcome = "error" if isinstance(expected, dict) else "ok"
    assert metrics.tool_calls.labels("ns/a", "lookup", outcome)._value.get() == 1


async def test_registered_on_a_pipecat_service(tool_server: ToolServer) -> None:
    """What voice_pipeline.py does: register the spec tools and end_call on the factory's LLM service."""
    llm, _ = create_llm_service("grok.grok-3", "xai-key-for-test", [], None, base_url="http://127.0.0.1:9/v1")
    runner = ToolRunner([tool(tool_server)])
    seen: list[tuple[str, Any, Any]] = []
    ended: list[str] = []

    async def end_call(params: Any) -> None:
        ended.append(params.function_name)

    schema = runner.register(llm, builtins={"end_call": end_call}, on_call=lambda *a: seen.append(a))
    assert [f.name for f in schema.standard_tools] == ["lookup", "end_call"]
    assert schema.standard_tools[0].required == ["q"]
    assert set(llm._functions) == {"lookup", "end_call"}

    results: list[Any] = []

    class Params:  # the fields of FunctionCallParams the handler reads
        function_name = "lookup"
        tool_call_id = "call_1"
        arguments = {"q": "hours"}

        @staticmethod
        async def result_callback(result: Any, **_: Any) -> None:
            results.append(result)

    tool_server.script(ToolReply({"hours": "9-5"}))
    try:
        await llm._functions["lookup"].handler(Params())
    finally:
        await runner.close()
    assert results == [{"hours": "9-5"}]
    assert seen == [("lookup", {"q": "hours"}, {"hours": "9-5"})]
    with pytest.raises(ValueError, match="unknown built-in tool 'hang_up'"):
        runner.schema(["hang_up"])
