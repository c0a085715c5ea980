"""The text turns' LLM client: one OpenAI-compatible `POST {endpoint}/chat/completions`.

Built from public inputs only: the model (models.py: provider name, endpoint, key, reasoning effort,
rejected parameters), the turn's instruction, messages and tools, and the client's request options.
The body is the one Pipecat's service class of the target builds for the same context in a voice
call, so text and voice ask the same question (tests/runner/test_llm_request_contract.py fails when
the pinned Pipecat changes its request):

    {"model", "stream": true, "stream_options": {"include_usage": true},
     "messages": [{"role": "system", "content": instruction}, *messages], "tools"?, "reasoning_effort"?}

`stream=False` leaves out the two stream fields: the model answers in one JSON completion, which
costs the runner one read and one parse instead of a read and a parse per token (docs/performance.md).
Text turns stream exactly when their caller reads the answer as it comes (text_engine.py).
`options` (response_format, temperature, ... — validated by chat_completions.py) are added on top; a
parameter the model rejects is never sent, whatever asked for it.
Either way `LLMClient.chunks` yields streamed chunks: a whole answer comes as one chunk whose
`delta` is the answer's message, so one consumer reads both.
Timeouts and retries are llm_policy.py's. Failures raise LLMTurnError, whose message is safe to log
(type and HTTP status; never a body, which may echo the request, nor the key); a 200 that is not the
protocol (an HTML page, a stream without finish_reason or [DONE], a completion without a message)
raises LLMProtocolError.
Why not the OpenAI client: its request building, httpx transport and per-chunk pydantic models cost
about 5.5 ms CPU per turn against 0.8 ms here (benchmarks/llm_turn.py, docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp

from aiassistant_contract.engines import REASONING_EFFORT_PARAMETER

from . import json_codec
from .fallbacks import failover_status
from .llm_policy import LLMPolicy
from .models import Model

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a whole (non-streamed) answer; a model's longest is far less


class LLMTurnError(Exception):
    """The upstream LLM failed; the message is safe to log (status and type, no body, no key).
    `failover`: nothing was answered and the failure is one the next model may not share."""

    def __init__(self, message: str, *, failover: bool = False) -> None:
        super().__init__(message)
        self.failover = failover


class LLMProtocolError(LLMTurnError):
    """The upstream answered 200 with something that is not an OpenAI-compatible stream."""


def chat_body(
    model: Model,
    instruction: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
    options: Mapping[str, Any] | None = None,
    *,
    stream: bool = True,
) -> dict[str, Any]:
    """The JSON body of one chat completion request (see the module docstring)."""
    body: dict[str, Any] = {"model": model.name}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body["messages"] = [{"role": "system", "content": instruction}, *messages]
    if tools:
        body["tools"] = list(tools)
    if model.reasoning_effort is not None:
        body[REASONING_EFFORT_PARAMETER] = model.reasoning_effort
    for name, value in (options or {}).items():
        body[name] = value
    for name in model.rejected & body.keys():
        del body[name]
    return body


def token_usage(target: str, usage: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens of a usage object, by the provider's rules: OpenAI counts
    reasoning inside completion_tokens; xAI reports it apart (completion_tokens_details) with
    total_tokens covering both, so it is added — unless the total shows it is already included."""
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    if target == "grok":
        details = usage.get("completion_tokens_details") or {}
        reasoning = int(details.get("reasoning_tokens") or 0) if isinstance(details, Mapping) else 0
        if reasoning and usage.get("total_tokens") == prompt + completion + reasoning:
            completion += reasoning
    return prompt, completion


class LLMClient:
    """Asks for chat completions; one connection pool for every text turn of the process."""

    def __init__(self, policy: LLMPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None  # created on the event loop, first use
        # A stream's every wait for bytes is bounded (a stall); a whole answer shows no progress
        # until it is complete, so only the turn's deadline bounds it (llm_policy.py).
        self._stream_timeout = aiohttp.ClientTimeout(
            sock_connect=policy.connect_seconds, sock_read=policy.read_seconds
        )
        self._whole_answer_timeout = aiohttp.ClientTimeout(sock_connect=policy.connect_seconds)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No cookie jar: a provider's cookies (e.g. a CDN's) must not pass between conversations.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def chunks(self, model: Model, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any]]:
        """POST `body` to the model's endpoint, retrying per the policy; yield the answer as
        streamed chunks: the SSE chunks of a streamed body, else the whole answer as one chunk."""
        url = f"{model.endpoint}/chat/completions"
        headers = {"Authorization": f"Bearer {model.key}", "Content-Type": "application/json"}
        data = json_codec.dumps(body)
        streamed = bool(body.get("stream"))
        timeout = self._stream_timeout if streamed else self._whole_answer_timeout
        policy = self.policy
        for attempt in range(policy.max_retries + 1):
            last = attempt == policy.max_retries
            try:
                response = await self._http().post(url, data=data, headers=headers, timeout=timeout)
            except (aiohttp.ClientConnectionError, TimeoutError) as err:
                if last:
                    raise LLMTurnError(type(err).__name__, failover=True) from None
                await asyncio.sleep(policy.retry_delay_seconds)
                continue
            async with response:
                if response.status >= 300:
                    await _read_bounded(response)  # never logged: an error body may echo the request
                    if last or not policy.retryable(response.status):
                        raise LLMTurnError(
                            f"HTTP {response.status}", failover=failover_status(response.status)
                        )
                    await asyncio.sleep(policy.retry_delay_seconds)
                    continue
                content_type = response.headers.get("Content-Type", "")
                if content_type and not content_type.startswith(("text/event-stream", "application/")):
                    raise LLMProtocolError(
                        f"HTTP 200 with {content_type.split(';')[0][:40]}, not "
                        + ("an event stream" if streamed else "JSON")
                    )
                if streamed:
                    async for chunk in _sse_chunks(response):
                        yield chunk
                else:
                    yield as_chunk(await _read_json(response))
                return

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _sse_chunks(response: aiohttp.ClientResponse) -> AsyncGenerator[dict[str, Any]]:
    """The chunks of an SSE chat completion stream, up to its `data: [DONE]`."""
    finished = False
    async for line in response.content:
        if not line.startswith(b"data:"):
            continue  # blank separators, comments, event names
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        try:
            chunk = json_codec.loads(data)
        except (ValueError, RecursionError):
            raise LLMProtocolError("a stream event that is not JSON") from None
        if not isinstance(chunk, dict) or "error" in chunk:
            raise LLMTurnError("error event in the stream")
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            finished = finished or bool(choices[0].get("finish_reason"))
        yield chunk
    if not finished:
        raise LLMProtocolError("the stream ended without a finish_reason or [DONE]")


async def _read_bounded(response: aiohttp.ClientResponse) -> bytearray:
    """A response's body, at most MAX_ANSWER_BYTES (LLMProtocolError past that)."""
    if (response.content_length or 0) > MAX_ANSWER_BYTES:
        raise LLMProtocolError(f"an answer over {MAX_ANSWER_BYTES} bytes")
    data = bytearray()
    while piece := await response.content.read(65_536):
        data += piece
        if len(data) > MAX_ANSWER_BYTES:
            raise LLMProtocolError(f"an answer over {MAX_ANSWER_BYTES} bytes")
    return data


async def _read_json(response: aiohttp.ClientResponse) -> Any:
    """A whole answer's JSON, at most MAX_ANSWER_BYTES."""
    data = await _read_bounded(response)
    try:
        return json_codec.loads(data)
    except (ValueError, RecursionError):
        raise LLMProtocolError("an answer that is not JSON") from None


def as_chunk(completion: Any) -> dict[str, Any]:
    """A whole chat completion as the one streamed chunk saying the same: its message is the delta
    (tool calls numbered by position, as streamed ones are); usage is kept."""
    if not isinstance(completion, dict):
        raise LLMProtocolError("a completion without a message")
    if "error" in completion:
        raise LLMTurnError("error object in the answer")
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise LLMProtocolError("a completion without a message")
    delta = dict(choice["message"])
    if isinstance(delta.get("tool_calls"), list):
        delta["tool_calls"] = [
            {"index": i, **call} if isinstance(call, dict) else call
            for i, call in enumerate(delta["tool_calls"])
        ]
    chunk: dict[str, Any] = {
        "choices": [{"index": 0, "delta": delta, "finish_reason": choice.get("finish_reason")}]
    }
    if isinstance(completion.get("usage"), dict):
        chunk["usage"] = completion["usage"]
    return chunk
