"""llm_client.as_chunk: a whole chat completion read as the one streamed chunk saying the same (the
HTTP paths, streamed and whole, are tested against the loopback fake in tests/runner)."""

from __future__ import annotations

import pytest

from aiassistant_runner.llm_client import LLMProtocolError, LLMTurnError, as_chunk

CALLS = [
    {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
    {"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"x": 1}'}},
]


def test_a_whole_answer_is_one_chunk_with_its_message_as_the_delta() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    chunk = as_chunk(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}
            ],
            "usage": usage,
        }
    )
    assert chunk == {
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
        "usage": usage,
    }


def test_tool_calls_are_numbered_by_position_as_streamed_deltas_are() -> None:
    message = {"role": "assistant", "content": None, "tool_calls": CALLS}
    chunk = as_chunk({"choices": [{"message": message, "finish_reason": "tool_calls"}]})
    assert [c["index"] for c in chunk["choices"][0]["delta"]["tool_calls"]] == [0, 1]
    assert [c["function"]["name"] for c in chunk["choices"][0]["delta"]["tool_calls"]] == ["a", "b"]
    assert "usage" not in chunk
    assert "index" not in message["tool_calls"][0]  # the answer itself is left as it was


@pytest.mark.parametrize(
    "completion",
    [[], {"choices": []}, {"choices": [{"finish_reason": "stop"}]}, {"choices": [{"message": "hi"}]}, "x"],
)
def test_a_completion_without_a_message_is_a_protocol_error(completion: object) -> None:
    with pytest.raises(LLMProtocolError, match="without a message"):
        as_chunk(completion)


def test_an_error_object_is_an_llm_error_that_does_not_echo_it() -> None:
    with pytest.raises(LLMTurnError) as raised:
        as_chunk({"error": {"message": "Incorrect API key provided: xai-***42"}})
    assert not isinstance(raised.value, LLMProtocolError)
    assert "xai" not in str(raised.value)
