"""One assistant turn for text conversations and tasks: the model, its server-side tools, repeat.

The turn drives the factory's Pipecat LLM service class directly: the service's adapter and
`build_chat_completion_params` build the provider request exactly as in the voice pipeline (model,
system instruction, tools, provider quirks) and its `_token_usage` counts the tokens; this module
POSTs it, reads the SSE stream, runs the tool calls through the ToolRunner and asks again, until the
model answers without tool calls (or calls `stop_service`, for tasks).
Why aiohttp and not the service's OpenAI client for the POST: measured on loopback, the client's
request building, httpx transport and per-chunk pydantic models cost about 4.5 ms of CPU per turn,
aiohttp and json.loads about 0.3 ms; at 200 concurrent conversations that is the difference between
a saturated core and an idle one (benchmarks/runner.py, section b). System messages at the head of the history (a client's, a task's
parameters) are appended to the assistant's instruction for that request: one system message,
ours first (Pipecat deprecates system messages inside the context).
Why not a Pipeline per request: a text turn has no audio, no interruptions and no aggregation to
schedule, and one PipelineWorker per request costs several tasks, a StartFrame round and a new
HTTP client; a single service (one connection pool) shared by every conversation of the process
serves the same request with a fraction of the overhead (see benchmarks/runner.py, section b).

Upstream failures (5xx, timeouts, a garbled stream) end the turn with a short apology appended to
whatever was said, and count in `aiassistant_llm_errors`; the key never appears in a log or reply.
So does a 200 that is not the protocol — an HTML page, a stream that ends without a finish_reason
or `[DONE]` — (also counted in `aiassistant_llm_protocol_errors`): never a successful empty answer.
With `fallbacks`, a model round that fails before anything streamed (connection error, timeout, 429,
5xx, 401) is asked of the next model first (fallbacks.py); `TurnResult.model` says which answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from aiassistant_contract.runner_config import STOP_SERVICE

from .fallbacks import Model, chain, failover_status

if TYPE_CHECKING:
    from pipecat.services.openai.base_llm import BaseOpenAILLMService

    from .state import RunnerState

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer right now. Please try again in a moment."
# Like the OpenAI client, retry a failed request (connection error, 408/409/429/5xx), but once, and
# bound each read (the client's default is 600 s: a stuck upstream would hold a conversation).
LLM_MAX_RETRIES = 1
RETRY_STATUSES = frozenset({408, 409, 429})
RETRY_DELAY_SECONDS = 0.5
TEXT_MAX_ROUNDS = 8  # model calls in one text turn: a model looping on tools gets cut off
TASK_MAX_ROUNDS = 32

Finish = Literal["stop", "stop_service", "error", "max_rounds"]
TextSink = Callable[[str], Awaitable[None]]


@dataclass
class ToolCallRecord:
    name: str
    arguments: Any
    result: Any

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "result": self.result}


@dataclass
class TurnResult:
    """What a turn produced: the answer text, the tool calls made, and how it ended."""

    text: str = ""
    finish: Finish = "stop"
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    result: Any = None  # the `result` argument of stop_service, for tasks
    error: str | None = None  # how the LLM failed (type and HTTP status only)
    model: str | None = None  # the engine model that gave the last answer (the primary or a fallback)

    @property
    def failed(self) -> bool:
        return self.finish == "error"


@dataclass
class _Round:
    """One streamed model response: text and accumulated tool calls."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)

    def add_tool_delta(self, delta: dict[str, Any]) -> None:
        call = self.calls.setdefault(delta.get("index", 0), {"id": "", "name": "", "arguments": ""})
        if delta.get("id"):
            call["id"] = delta["id"]
        function = delta.get("function") or {}
        call["name"] += function.get("name") or ""
        call["arguments"] += function.get("arguments") or ""


class LLMTurnError(Exception):
    """The upstream LLM failed; the message is safe to log (status and type, no body, no key).
    `failover`: nothing was answered and the failure is one the next model may not share."""

    def __init__(self, message: str, *, failover: bool = False) -> None:
        super().__init__(message)
        self.failover = failover


@dataclass(frozen=True)
class _Candidate:
    """One model of the chain, its service, and the parameters it rejects (never sent)."""

    engine_model: str
    model: str
    llm: BaseOpenAILLMService
    rejected: frozenset[str]


class LLMProtocolError(LLMTurnError):
    """The upstream answered 200 with something that is not an OpenAI-compatible stream."""


class TurnEngine:
    """Runs turns on one LLM service shared by every text conversation and task of the process."""

    def __init__(self, state: RunnerState, *, timeout: float) -> None:
        self._state = state
        self._timeout = timeout
        self._chain: list[_Candidate] | None = None
        self._tools_text: Any = None
        self._tools_task: Any = None
        self._session: aiohttp.ClientSession | None = None  # created on the event loop, first turn
        self._lock = threading.Lock()  # warm() may run in a thread while a first request arrives

    def _service(self) -> list[_Candidate]:
        with self._lock:
            if self._chain is None:
                self._tools_text = self._tools_schema(())
                self._tools_task = self._tools_schema((STOP_SERVICE,))
                self._chain = [self._candidate(model) for model in chain(self._state)]
            return self._chain

    def _candidate(self, model: Model) -> _Candidate:
        """The factory's service alone: its context aggregator pair is for pipelines, and a text turn
        needs neither the aggregators nor the models they load. What the model rejects is never
        sent, whatever the service's settings say."""
        from aiassistant_contract.engines import registry_from_env

        from .llm_factory import create_llm

        config = self._state.config
        engine = registry_from_env(self._state.environ).parse(model.engine_model, strict=False)
        llm = create_llm(
            model.engine_model,
            model.key,
            base_url=model.base_url,
            system_instruction=config.system_instruction(),
            reasoning_effort=model.reasoning_effort,
        )
        return _Candidate(model.engine_model, engine.model, llm, engine.facts.rejected_parameters)

    def _tools_schema(self, builtins: tuple[str, ...]) -> Any:
        from pipecat.utils.types import NOT_GIVEN

        schema = self._state.tools.schema(builtins)
        return schema if schema.standard_tools else NOT_GIVEN

    def warm(self) -> None:
        """Build the LLM service now (imports Pipecat, creates the HTTP client). Thread-safe."""
        self._service()

    async def run(
        self,
        messages: list[dict[str, Any]],
        *,
        on_text: TextSink | None = None,
        task: bool = False,
        result: TurnResult | None = None,
    ) -> TurnResult:
        """Answer `messages` (OpenAI-format history; the assistant's instruction is the service's
        and goes first). Text deltas go to `on_text` as they stream. `task=True` offers the
        `stop_service` built-in. `result` is filled in place, so a caller that cancels the turn
        (a task timeout) keeps what was done. Never raises for upstream or tool failures."""
        # The first turn imports Pipecat and builds the service off the event loop.
        candidates = self._chain if self._chain is not None else await asyncio.to_thread(self._service)
        from pipecat.processors.aggregators.llm_context import LLMContext

        tools = self._tools_task if task else self._tools_text
        head = 0
        while head < len(messages) and messages[head].get("role") == "system":
            head += 1
        instruction = "\n\n".join(
            [self._state.config.system_instruction(), *(str(m.get("content") or "") for m in messages[:head])]
        )
        context = LLMContext(messages=list(messages[head:]), tools=tools)  # type: ignore[arg-type]
        result = TurnResult() if result is None else result
        for _ in range(TASK_MAX_ROUNDS if task else TEXT_MAX_ROUNDS):
            try:
                round_ = await self._ask(candidates, context, instruction, result, on_text)
            except LLMTurnError as err:
                self._state.metrics.llm_error()
                if isinstance(err, LLMProtocolError):
                    self._state.metrics.llm_protocol_errors.labels(self._state.metrics.assistant).inc()
                log.warning("LLM request failed: %s", err)
                result.finish, result.error = "error", str(err)
                if not task:  # a conversation goes on: the user reads an apology, not an error
                    apology = (
                        f" {APOLOGY}" if result.text.strip() and not result.text[-1].isspace() else APOLOGY
                    )
                    result.text += apology
                    if on_text is not None:
                        await on_text(apology)
                return result
            if not round_.calls:
                result.finish = "stop"
                return result
            calls = [round_.calls[i] for i in sorted(round_.calls)]
            for call in calls:
                call["id"] = call["id"] or f"call_{uuid.uuid4().hex[:12]}"
            context.add_message(
                {
                    "role": "assistant",
                    "content": round_.text or None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"] or "{}"},
                        }
                        for c in calls
                    ],
                }
            )
            outcomes = await asyncio.gather(*(self._run_tool(c, task) for c in calls))
            for call, record in zip(calls, outcomes, strict=True):
                result.tool_calls.append(record)
                context.add_message(
                    {"role": "tool", "tool_call_id": call["id"], "content": _as_content(record.result)}
                )
            stop = next((r for r in outcomes if r.name == STOP_SERVICE and task), None)
            if stop is not None:
                result.finish = "stop_service"
                result.result = stop.arguments.get("result") if isinstance(stop.arguments, dict) else None
                return result
        result.finish = "max_rounds"
        if not task and not result.text:  # a text answer is never empty
            result.text = APOLOGY
            if on_text is not None:
                await on_text(APOLOGY)
        return result

    async def _ask(
        self,
        candidates: list[_Candidate],
        context: Any,
        instruction: str,
        result: TurnResult,
        on_text: TextSink | None,
    ) -> _Round:
        """One model round on the first model that answers (the engine model, then the fallbacks)."""
        metrics = self._state.metrics
        for i, candidate in enumerate(candidates):
            try:
                round_ = await self._stream(candidate, context, instruction, result, on_text)
            except LLMTurnError as err:
                if not err.failover or i + 1 == len(candidates):
                    raise
                following = candidates[i + 1].engine_model
                log.warning("LLM %s failed (%s); asking fallback %s", candidate.engine_model, err, following)
                metrics.llm_failover(candidate.engine_model, following)
                continue
            result.model = candidate.engine_model
            metrics.llm_answer(candidate.model)
            return round_
        raise AssertionError("a chain has at least the engine model")

    async def _run_tool(self, call: Mapping[str, str], task: bool) -> ToolCallRecord:
        name = call["name"]
        try:
            arguments = json.loads(call["arguments"] or "{}")
        except ValueError:
            return ToolCallRecord(name, call["arguments"], {"error": "arguments are not valid JSON"})
        if task and name == STOP_SERVICE:
            return ToolCallRecord(name, arguments, {"status": "stopped"})
        if not isinstance(arguments, dict):
            return ToolCallRecord(name, arguments, {"error": "arguments must be a JSON object"})
        return ToolCallRecord(name, arguments, await self._state.tools.call(name, arguments, call["id"]))

    async def _stream(
        self,
        candidate: _Candidate,
        context: Any,
        instruction: str,
        result: TurnResult,
        on_text: TextSink | None,
    ) -> _Round:
        round_ = _Round()
        llm = candidate.llm
        metrics = self._state.metrics
        started = time.perf_counter()
        first = True
        try:
            # What llm.get_chat_completions builds, with this request's system instruction.
            params = await llm.get_llm_adapter().get_llm_invocation_params(
                context,
                system_instruction=instruction,
                convert_developer_to_user=not llm.supports_developer_role,
            )
            body, headers = _request(llm.build_chat_completion_params(params), candidate.rejected)
            async with contextlib.aclosing(self._chunks(llm, body, headers)) as chunks:
                async for chunk in chunks:
                    usage = chunk.get("usage")
                    if usage:
                        tokens = llm._token_usage(_completion_usage(usage))  # provider rules (xAI reasoning)
                        result.prompt_tokens += tokens.prompt_tokens
                        result.completion_tokens += tokens.completion_tokens
                        metrics.llm_usage(tokens.prompt_tokens, tokens.completion_tokens)
                    choices = chunk.get("choices")
                    if not choices:
                        continue
                    if first:
                        metrics.llm_ttft.labels(metrics.assistant).observe(time.perf_counter() - started)
                        result.model = candidate.engine_model  # streamed text says who answers
                        first = False
                    delta = choices[0].get("delta") or {}
                    for tool_delta in delta.get("tool_calls") or ():
                        round_.add_tool_delta(tool_delta)
                    content = delta.get("content")
                    if content:
                        round_.text += content
                        result.text += content
                        if on_text is not None:
                            await on_text(content)
        except asyncio.CancelledError:
            raise
        except LLMTurnError:
            raise
        except Exception as err:
            # A stall or a dropped connection before anything was answered: the next model may do.
            unanswered = not round_.text and not round_.calls
            outage = isinstance(err, TimeoutError | aiohttp.ClientConnectionError)
            raise LLMTurnError(type(err).__name__, failover=outage and unanswered) from None
        return round_

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(sock_connect=5, sock_read=self._timeout),
            )
        return self._session

    async def _chunks(
        self, llm: BaseOpenAILLMService, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncGenerator[dict[str, Any]]:
        """POST the request, retrying once like the OpenAI client; yield the parsed SSE chunks."""
        url = f"{str(llm._client.base_url).rstrip('/')}/chat/completions"
        headers = {"Authorization": f"Bearer {llm._client.api_key}", **headers}
        for attempt in range(LLM_MAX_RETRIES + 1):
            last = attempt == LLM_MAX_RETRIES
            try:
                response = await self._http().post(url, json=body, headers=headers)
            except (aiohttp.ClientConnectionError, TimeoutError) as err:
                if last:
                    raise LLMTurnError(type(err).__name__, failover=True) from None
                await asyncio.sleep(RETRY_DELAY_SECONDS)
                continue
            async with response:
                if response.status >= 300:
                    await response.read()  # never logged: an error body may echo the request
                    if last or (response.status not in RETRY_STATUSES and response.status < 500):
                        raise LLMTurnError(
                            f"HTTP {response.status}", failover=failover_status(response.status)
                        )
                    await asyncio.sleep(RETRY_DELAY_SECONDS)
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


def _request(
    params: dict[str, Any], rejected: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, str]]:
    """The OpenAI client's keyword arguments -> (JSON body, extra headers): unset values dropped,
    `extra_body` merged in, as the client itself would send them; parameters the model rejects
    (`rejected`) never go out."""
    unset = _unset_types()
    body = {
        k: v
        for k, v in params.items()
        if not isinstance(v, unset) and not k.startswith("extra_") and k not in rejected
    }
    extra = params.get("extra_body")
    if extra:
        body.update((k, v) for k, v in extra.items() if k not in rejected)
    return body, dict(params.get("extra_headers") or {})


@functools.cache
def _unset_types() -> tuple[type, ...]:
    # Imported once, not per request parameter: this runs on every model round.
    from openai import NotGiven, Omit
    from pipecat.utils.types import NotGiven as PipecatNotGiven

    return (NotGiven, Omit, PipecatNotGiven)


def _completion_usage(usage: dict[str, Any]) -> Any:
    from openai.types.completion_usage import CompletionUsage

    return CompletionUsage.model_validate(usage)


def _as_content(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)
