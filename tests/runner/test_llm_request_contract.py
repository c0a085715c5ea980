"""The text turns' request (llm_client.chat_body) is the one the pinned Pipecat builds for the same
context: both go to the same loopback LLM, and the JSON bodies it receives must be equal (a whole
answer's request: without the two stream fields). A Pipecat
upgrade that changes its request (a new default parameter, another tools or messages format, the
reasoning effort's place) fails here, so text and voice keep asking the same question."""

from __future__ import annotations

from typing import Any

import pytest
from pipecat.processors.aggregators.llm_context import LLMContext

from aiassistant_contract.engines import registry_from_env
from aiassistant_contract.runner_config import STOP_SERVICE, RunnerConfig
from aiassistant_runner.llm_client import LLMClient, chat_body, token_usage
from aiassistant_runner.llm_factory import create_llm
from aiassistant_runner.llm_policy import TEXT_POLICY
from aiassistant_runner.models import chain
from aiassistant_runner.tools import ToolRunner
from tests.fakes.openai_server import FakeOpenAI, Reply

INSTRUCTION = "You are the ACME support assistant.\n\nParameters:\ncity: Paris"
LOOKUP = {
    "name": "lookup",
    "description": "Look an order up",
    "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    "url": "http://127.0.0.1:9/lookup",
}
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Where is my order?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"order": "42"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
    {"role": "developer", "content": "Answer in one sentence."},
    {"role": "user", "content": "And when does it arrive?"},
]
KEYS = {"XAI_API_KEY": "xai-contract-key", "OPENAI_API_KEY": "sk-contract-key"}


@pytest.mark.parametrize(
    ("engine_model", "effort", "builtins"),
    [
        ("grok.grok-4.3", "low", ()),
        ("grok.grok-4.3", None, (STOP_SERVICE,)),  # a task's tools
        ("grok.grok-3", None, ()),
        ("openai.gpt-4o", None, ()),
        ("openai.gpt-5", "low", (STOP_SERVICE,)),
    ],
)
async def test_text_request_is_what_pipecat_sends(
    engine_model: str, effort: str | None, builtins: tuple[str, ...]
) -> None:
    async with FakeOpenAI() as fake:
        config = RunnerConfig.model_validate(
            {
                "engineModel": engine_model,
                "baseURL": fake.base_url,
                "reasoningEffort": effort,
                "tools": [LOOKUP],
            }
        )
        (model,) = chain(config, KEYS, registry_from_env({}))
        tools = ToolRunner(config.tools)
        fake.script(*[Reply(text="Tomorrow.")] * 3)

        # Pipecat: the factory's service, as a voice call builds it, asked through its public API.
        llm = create_llm(
            engine_model,
            model.key,
            base_url=fake.base_url,
            system_instruction=INSTRUCTION,
            reasoning_effort=effort,
        )
        context = LLMContext(messages=[dict(m) for m in HISTORY], tools=tools.schema(builtins))  # type: ignore[misc]
        async for _ in await llm.get_chat_completions(context):
            pass

        # The runner's text client, streamed (a caller reading the answer as it comes) and whole.
        client = LLMClient(TEXT_POLICY)
        try:
            for stream in (True, False):
                body = chat_body(model, INSTRUCTION, HISTORY, tools.openai_tools(builtins), stream=stream)
                async for _ in client.chunks(model, body):
                    pass
        finally:
            await client.aclose()
            await tools.close()

        pipecat, streamed, whole = fake.chat_requests()
        assert streamed.body == pipecat.body
        # The whole answer's request is the same question without the two stream fields.
        assert pipecat.body["stream"] is True and pipecat.body["stream_options"] == {"include_usage": True}
        assert whole.body == {k: v for k, v in pipecat.body.items() if k not in ("stream", "stream_options")}
        for ours in (streamed, whole):
            assert ours.headers["Authorization"] == pipecat.headers["Authorization"] == f"Bearer {model.key}"
            assert ours.path == pipecat.path
            assert (effort is None) == ("reasoning_effort" not in ours.body)


def test_a_rejected_option_is_never_in_the_body() -> None:
    config = RunnerConfig.model_validate({"engineModel": "grok.grok-4.3"})
    (model,) = chain(config, KEYS, registry_from_env({}))
    body = chat_body(model, "x", [], options={"stop": ["\n"], "temperature": 0.2})
    assert "stop" not in body and body["temperature"] == 0.2


@pytest.mark.parametrize(
    ("target", "usage", "expected"),
    [
        # xAI: reasoning reported apart, the total covers it -> added to the completion.
        ("grok", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 45,
                  "completion_tokens_details": {"reasoning_tokens": 30}}, (10, 35)),
        # xAI, a total that already includes it in completion_tokens: kept as reported.
        ("grok", {"prompt_tokens": 10, "completion_tokens": 35, "total_tokens": 45,
                  "completion_tokens_details": {"reasoning_tokens": 30}}, (10, 35)),
        # OpenAI counts reasoning inside completion_tokens.
        ("openai", {"prompt_tokens": 10, "completion_tokens": 35, "total_tokens": 45,
                    "completion_tokens_details": {"reasoning_tokens": 30}}, (10, 35)),
        ("openai", {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, (3, 4)),
    ],
)  # fmt: skip
def test_token_usage_follows_the_providers_rules(
    target: str, usage: dict[str, Any], expected: tuple[int, int]
) -> None:
    assert token_usage(target, usage) == expected
