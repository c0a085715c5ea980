"""The text turns' LLM client: one streamed OpenAI-compatible `POST {endpoint}/chat/completions`.

Built from public inputs only: the model (models.py: provider name, endpoint, key, reasoning effort,
rejected parameters), the turn's instruction, messages and tools, and the client's request options.
The body is the one Pipecat's service class of the target builds for the same context in a voice
call, so text and voice ask the same question (tests/runner/test_llm_request_contract.py fails when
the pinned Pipecat changes its request):

    {"model", "stream": true, "stream_options": {"include_usage": true},
     "messages": [{"role": "system", "content": instruction}, *messages], "tools"?, "reasoning_effort"?}

`options` (response_format, temperature, ... — validated by chat_completions.py) are added on top; a
parameter the model rejects is never sent, whatever asked for it.
Timeouts and retries are llm_policy.py's. Failures raise LLMTurnError, whose message is safe to log
(type and HTTP status; never a body, which may echo the request, nor the key); a 200 that is not the
protocol (an HTML page, a stream without finish_reason or [DONE]) raises LLMProtocolError.
Why not the OpenAI client: its request building, httpx transport and per-chunk pydantic models cost
about 5.5 ms CPU per turn against 0.8 ms here (benchmarks/llm_turn.py, docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp

from aiassistant_contract.engines import REASONING_EFFORT_PARAMETER

from .fallbacks import failover_status
from .llm_policy import LLMPolicy
from .models import Model


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
) -> dict[str, Any]:
    """The JSON body of one streamed chat completion request (see the module docstring)."""
    body: dict[str, Any] = {
        "model": model.name,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": instruction}, *messages],
    }
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
    """Streams chat completions; one connection pool for every text turn of the process."""

    def __init__(self, policy: LLMPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None  # created on the event loop, first use

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=self.policy.connect_seconds, sock_read=self.policy.read_seconds
                ),
            )
        return self._session

    async def stream(self, model: Model, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any]]:
        """POST `body` to the model's endpoint, retrying per the policy; yield the parsed SSE chunks."""
        url = f"{model.endpoint}/chat/completions"
        headers = {"Authorization": f"Bearer {model.key}"}
        policy = self.policy
        for attempt in range(policy.max_retries + 1):
            last = attempt == policy.max_retries
            try:
                response = await self._http().post(url, json=body, headers=headers)
            except (aiohttp.ClientConnectionError, TimeoutError) as err:
                if last:
                    raise LLMTurnError(type(err).__name__, failover=True) from None
                await asyncio.sleep(policy.retry_delay_seconds)
                continue
            async with response:
                if response.status >= 300:
                    await response.read()  # never logged: an error body may echo the request
                    if last or not policy.retryable(response.status):
                        raise LLMTurnError(
                            f"HTTP {response.status}", failover=failover_status(response.status)
                        )
                    await asyncio.sleep(policy.retry_delay_seconds)
                    continue
                content_type = response.headers.get("Content-Type", "")
                if content_type and not content_type.startswith(("text/event-stream", "application/")):
                    raise LLMProtocolError(
                        f"HTTP 200 with {content_type.split(';')[0][:40]}, not an event stream"
                    )
                finished = False
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue  # blank separators, comments, event names
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        return
                    try:
                        chunk = json.loads(data)
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
                return

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
