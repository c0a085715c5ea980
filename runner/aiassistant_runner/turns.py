"""One assistant turn for text conversations and tasks: the model, its server-side tools, repeat.

The turn drives the factory's Pipecat LLM service directly: the service's adapter and
`build_chat_completion_params` build the provider request exactly as in the voice pipeline (model,
system instruction, tools, provider quirks), and this module reads the stream, runs the tool calls
through the ToolRunner and asks again, until the model answers without tool calls (or calls
`stop_service`, for tasks). System messages at the head of the history (a client's, a task's
parameters) are appended to the assistant's instruction for that request: one system message,
ours first (Pipecat deprecates system messages inside the context).
Why not a Pipeline per request: a text turn has no audio, no interruptions and no aggregation to
schedule, and one PipelineWorker per request costs several tasks, a StartFrame round and a new
HTTP client; a single service (one connection pool) shared by every conversation of the process
serves the same request with a fraction of the overhead (see benchmarks/runner.py, section b).

Upstream failures (5xx, timeouts, a garbled stream) end the turn with a short apology appended to
whatever was said, and count in `aiassistant_llm_errors`; the key never appears in a log or reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .tools import STOP_SERVICE

if TYPE_CHECKING:
    from pipecat.services.openai.base_llm import BaseOpenAILLMService

    from .state import RunnerState

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer right now. Please try again in a moment."
# The OpenAI client waits 600 s for a read and retries twice by default: a stuck upstream would hold
# a conversation for half an hour. One retry (5xx, connection error) and a bounded read instead.
LLM_MAX_RETRIES = 1
DEFAULT_LLM_TIMEOUT_SECONDS = 30.0
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

    @property
    def failed(self) -> bool:
        return self.finish == "error"


@dataclass
class _Round:
    """One streamed model response: text and accumulated tool calls."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)

    def add_tool_delta(self, delta: Any) -> None:
        call = self.calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
        if delta.id:
            call["id"] = delta.id
        if delta.function is not None:
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""


class LLMTurnError(Exception):
    """The upstream LLM failed; the message is safe to log (status and type, no body, no key)."""


class TurnEngine:
    """Runs turns on one LLM service shared by every text conversation and task of the process."""

    def __init__(self, state: RunnerState, *, timeout: float = DEFAULT_LLM_TIMEOUT_SECONDS) -> None:
        self._state = state
        self._timeout = timeout
        self._llm: BaseOpenAILLMService | None = None
        self._tools_text: Any = None
        self._tools_task: Any = None
        self._lock = threading.Lock()  # warm() may run in a thread while a first request arrives

    def _service(self) -> BaseOpenAILLMService:
        with self._lock:
            if self._llm is None:
                self._tools_text = self._tools_schema(())
                self._tools_task = self._tools_schema((STOP_SERVICE,))
                self._llm = self._create_service()
            return self._llm

    def _create_service(self) -> BaseOpenAILLMService:
        import httpx

        from .llm import create_llm_service

        state = self._state
        llm, _ = create_llm_service(
            state.config.engine_model,
            state.llm_key(),
            [],
            None,
            base_url=state.llm_base_url,
            system_instruction=state.config.system_instruction(),
        )
        # with_options keeps the service's HTTP client (its connection pool) and only changes policy.
        llm._client = llm._client.with_options(
            max_retries=LLM_MAX_RETRIES, timeout=httpx.Timeout(self._timeout, connect=5.0)
        )
        return llm

    def _tools_schema(self, builtins: tuple[str, ...]) -> Any:
        from pipecat.utils.types import NOT_GIVEN

        schema = self._state.tools.schema(builtins)
        return schema if schema.standard_tools else NOT_GIVEN

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm._client.close()

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
        llm = self._llm if self._llm is not None else await asyncio.to_thread(self._service)
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
                round_ = await self._stream(llm, context, instruction, result, on_text)
            except LLMTurnError as err:
                self._state.metrics.llm_error()
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
        llm: BaseOpenAILLMService,
        context: Any,
        instruction: str,
        result: TurnResult,
        on_text: TextSink | None,
    ) -> _Round:
        round_ = _Round()
        metrics = self._state.metrics
        started = time.perf_counter()
        first = True
        try:
            # What llm.get_chat_completions does, with this request's system instruction.
            params = await llm.get_llm_adapter().get_llm_invocation_params(
                context,
                system_instruction=instruction,
                convert_developer_to_user=not llm.supports_developer_role,
            )
            stream = await llm._client.chat.completions.create(**llm.build_chat_completion_params(params))
            async with stream:
                async for chunk in stream:
                    if chunk.usage:
                        result.prompt_tokens += chunk.usage.prompt_tokens
                        result.completion_tokens += chunk.usage.completion_tokens
                        metrics.llm_usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    if not chunk.choices:
                        continue
                    if first:
                        metrics.llm_ttft.labels(metrics.assistant).observe(time.perf_counter() - started)
                        first = False
                    delta = chunk.choices[0].delta
                    if delta is None:
                        continue
                    for tool_delta in delta.tool_calls or ():
                        round_.add_tool_delta(tool_delta)
                    if delta.content:
                        round_.text += delta.content
                        result.text += delta.content
                        if on_text is not None:
                            await on_text(delta.content)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            raise LLMTurnError(_describe(err)) from None
        return round_


def _as_content(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)


def _describe(err: Exception) -> str:
    """Type and HTTP status of an upstream error; never its body or request (headers hold the key)."""
    status = getattr(err, "status_code", None)
    return f"{type(err).__name__}" + (f" (HTTP {status})" if status else "")
