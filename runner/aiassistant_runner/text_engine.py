"""One assistant turn of a text conversation or a task: ask the model, run its tool calls, repeat.

A turn asks the chain's models (models.py) through llm_client.py — streamed when the caller reads
the answer as it comes (`on_text`: a `stream: true` request), else for the whole answer at once —
with the assistant's instruction first, the spec tools (and `stop_service`, for tasks) offered,
until the model answers without tool calls (or calls `stop_service`), or the round limit cuts it
off. Tool calls of one round run concurrently through the ToolRunner. System messages at the head
of the history (a client's, a task's parameters) are appended to the assistant's instruction for
that request: one system message, ours first.
Why no Pipecat pipeline here: a text turn has no audio, interruptions or aggregation to schedule;
one pipeline per request costs several tasks, a StartFrame round and a new HTTP client, where one
client shared by every conversation serves the same request at a fraction of the cost.

Upstream failures (5xx, timeouts, a garbled stream) end the turn with a short apology appended to
whatever was said, and count in `aiassistant_llm_errors`; the key never appears in a log or reply.
So does a 200 that is not the protocol (also counted in `aiassistant_llm_protocol_errors`): never a
successful empty answer. With fallbacks, a model round that fails before anything streamed
(connection error, timeout, 429, 5xx, 401) is asked of the next model (fallbacks.py);
`TurnResult.model` says which answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from aiassistant_contract.runner_config import STOP_SERVICE, RunnerConfig

from .llm_client import LLMClient, LLMProtocolError, LLMTurnError, chat_body, token_usage
from .metrics import Metrics
from .models import Model
from .tools import ToolRunner

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer right now. Please try again in a moment."
TEXT_MAX_ROUNDS = 8  # model calls in one text turn: a model looping on tools gets cut off
TASK_MAX_ROUNDS = 32

Finish = Literal["stop", "stop_service", "error", "max_rounds"]
OnText = Callable[[str], Awaitable[None]]


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
    finish_reason: str | None = None  # the model's, of its final answer ("stop", "length", ...)

    @property
    def failed(self) -> bool:
        return self.finish == "error"


@dataclass
class _Round:
    """One model response (streamed, or whole as one chunk): text and accumulated tool calls."""

    text: str = ""
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None

    def add_tool_delta(self, delta: dict[str, Any]) -> None:
        call = self.calls.setdefault(delta.get("index", 0), {"id": "", "name": "", "arguments": ""})
        if delta.get("id"):
            call["id"] = delta["id"]
        function = delta.get("function") or {}
        call["name"] += function.get("name") or ""
        call["arguments"] += function.get("arguments") or ""


class TextEngine:
    """Runs the turns of every text conversation and task of the process."""

    def __init__(
        self,
        config: RunnerConfig,
        models: Sequence[Model],
        tools: ToolRunner,
        metrics: Metrics,
        client: LLMClient,
    ) -> None:
        self._instruction = config.system_instruction()
        self._models = tuple(models)
        self._tools = tools
        self._metrics = metrics
        self._llm = client
        self._tools_text = tools.openai_tools()
        self._tools_task = tools.openai_tools((STOP_SERVICE,))

    @property
    def model(self) -> str:
        """The engine model's provider name (what a response says answered, unless a fallback did)."""
        return self._models[0].name

    @property
    def models(self) -> tuple[Model, ...]:
        return self._models

    async def run(
        self,
        messages: list[dict[str, Any]],
        *,
        on_text: OnText | None = None,
        task: bool = False,
        result: TurnResult | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TurnResult:
        """Answer `messages` (OpenAI-format history; the assistant's instruction goes first). Text
        deltas go to `on_text` as they stream. `task=True` offers the `stop_service` built-in.
        `options`: request parameters the client asked for (validated by the endpoint). `result` is
        filled in place, so a caller that cancels the turn (a task timeout) keeps what was done.
        Never raises for upstream or tool failures."""
        tools = self._tools_task if task else self._tools_text
        head = 0
        while head < len(messages) and messages[head].get("role") == "system":
            head += 1
        instruction = "\n\n".join(
            [self._instruction, *(str(m.get("content") or "") for m in messages[:head])]
        )
        history: list[dict[str, Any]] = list(messages[head:])
        result = TurnResult() if result is None else result
        for _ in range(TASK_MAX_ROUNDS if task else TEXT_MAX_ROUNDS):
            try:
                round_ = await self._ask(instruction, history, tools, options, result, on_text)
            except LLMTurnError as err:
                self._metrics.llm_error()
                if isinstance(err, LLMProtocolError):
                    self._metrics.llm_protocol_errors.labels(self._metrics.assistant).inc()
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
                result.finish, result.finish_reason = "stop", round_.finish_reason
                return result
            calls = [round_.calls[i] for i in sorted(round_.calls)]
            for call in calls:
                call["id"] = call["id"] or f"call_{uuid.uuid4().hex[:12]}"
            history.append(
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
                history.append(
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
        instruction: str,
        history: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        options: Mapping[str, Any] | None,
        result: TurnResult,
        on_text: OnText | None,
    ) -> _Round:
        """One model round on the first model that answers (the engine model, then the fallbacks)."""
        for i, model in enumerate(self._models):
            # Streamed only for a caller that reads the answer as it comes (llm_client.py).
            body = chat_body(model, instruction, history, tools, options, stream=on_text is not None)
            try:
                round_ = await self._model_round(model, body, result, on_text)
            except LLMTurnError as err:
                if not err.failover or i + 1 == len(self._models):
                    raise
                following = self._models[i + 1].engine_model
                log.warning("LLM %s failed (%s); asking fallback %s", model.engine_model, err, following)
                self._metrics.llm_failover(model.engine_model, following)
                continue
            result.model = model.engine_model
            self._metrics.llm_answer(model.name)
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
        return ToolCallRecord(name, arguments, await self._tools.call(name, arguments, call["id"]))

    async def _model_round(
        self, model: Model, body: dict[str, Any], result: TurnResult, on_text: OnText | None
    ) -> _Round:
        round_ = _Round()
        metrics = self._metrics
        started = time.perf_counter()
        first = True
        try:
            async with contextlib.aclosing(self._llm.chunks(model, body)) as chunks:
                async for chunk in chunks:
                    usage = chunk.get("usage")
                    if isinstance(usage, dict):
                        prompt, completion = token_usage(model.target, usage)
                        result.prompt_tokens += prompt
                        result.completion_tokens += completion
                        metrics.llm_usage(prompt, completion)
                    choices = chunk.get("choices")
                    if not choices:
                        continue
                    if first:
                        metrics.llm_first_token(time.perf_counter() - started)
                        result.model = model.engine_model  # streamed text says who answers
                        first = False
                    round_.finish_reason = choices[0].get("finish_reason") or round_.finish_reason
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


def _as_content(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)
