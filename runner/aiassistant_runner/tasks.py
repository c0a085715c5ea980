"""`POST /v1/tasks`: a headless run of the assistant with its tools, bounded in time.

Request: `{"input": "<what to do>", "parameters": {"key": "value", ...}}` (parameters optional;
they reach the model as a second system message, `key: value` lines, after the assistant's own
instruction). The model runs with the spec tools plus the built-in `stop_service`, round after
round, until it answers without a tool call or calls `stop_service(result)`, or until the
assistant's `taskTimeoutSeconds` (default 30) is over.

Response (the same shape whatever happened, so the client sees the tool calls already made, which
may have had side effects):

    {"id", "status", "output", "result", "toolCalls": [{"name", "arguments", "result"}],
     "usage": {"promptTokens", "completionTokens", "totalTokens"}, "error"?}

    status      HTTP  meaning
    completed   200   the model answered without calling a tool; result = its answer
    stopped     200   the model called stop_service; result = its `result` argument
    incomplete  200   the model was still calling tools after the round limit
    timeout     504   taskTimeoutSeconds passed; tool calls finished before that are listed
    error       502   the LLM failed (5xx, timeout, broken stream); `error` says how, never a key

Bad input: 400 naming the field; draining or at capacity: 503 (OpenAI-style error bodies).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from aiassistant_contract.runner_config import STOP_SERVICE, RunnerConfig, key_value_lines

from .bounds import BodyTooLarge, ClientGone, until_done
from .chat_completions import (
    RequestError,
    model_header,
    openai_error,
    read_json_object,
    too_large,
    unavailable,
)
from .json_codec import JSONResponse
from .sessions import CapacityError, Sessions
from .text_engine import TextEngine, TurnResult

log = logging.getLogger(__name__)

_STATUS = {"stop": "completed", "stop_service": "stopped", "max_rounds": "incomplete", "error": "error"}
_HTTP = {"completed": 200, "stopped": 200, "incomplete": 200, "timeout": 504, "error": 502}


def parse_task(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's messages: its parameters (if any) as a system message, then the input."""
    unknown = sorted(set(body) - {"input", "parameters"})
    if unknown:
        raise RequestError(unknown[0], "unknown field; a task takes input and parameters")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise RequestError("input", "a non-empty string is required")
    parameters = body.get("parameters")
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, dict):
        raise RequestError("parameters", "must be an object of names to values")
    for key, value in parameters.items():
        if not isinstance(value, str | int | float | bool):
            raise RequestError(f"parameters.{key}", "must be a string, number or boolean")
    messages: list[dict[str, Any]] = []
    if parameters:
        messages.append({"role": "system", "content": f"Task parameters:\n{key_value_lines(parameters)}"})
    messages.append({"role": "user", "content": text})
    return messages


async def run_task(
    request: Request, engine: TextEngine, sessions: Sessions, config: RunnerConfig
) -> Response:
    """Run one task to its end (see the module docstring)."""
    try:
        messages = parse_task(await read_json_object(request, config.limits))
    except RequestError as err:
        return openai_error(400, str(err), param=err.param)
    except BodyTooLarge as err:
        return too_large(err)
    result = TurnResult()
    timeout = config.task_timeout_seconds
    try:
        async with sessions.open("task") as session:
            try:
                await until_done(request, engine.run(messages, task=True, result=result), timeout)
                status = _STATUS[result.finish]
            except ClientGone:
                session.fail()
                return Response(status_code=499)  # nobody reads it: the session is free now
            except TimeoutError:
                status = "timeout"
                log.warning(
                    "task timed out after %gs (%d tool call(s) made)", timeout, len(result.tool_calls)
                )
            if status in ("timeout", "error"):
                session.fail()
    except CapacityError as err:
        return unavailable(err)
    body: dict[str, Any] = {
        "id": f"task_{uuid.uuid4().hex}",
        "status": status,
        "output": result.text,
        "result": result.result if status == "stopped" else result.text,
        "toolCalls": [call.as_dict() for call in result.tool_calls if call.name != STOP_SERVICE],
        "usage": {
            "promptTokens": result.prompt_tokens,
            "completionTokens": result.completion_tokens,
            "totalTokens": result.prompt_tokens + result.completion_tokens,
        },
    }
    if status == "timeout":
        body["error"] = f"the task did not finish within taskTimeoutSeconds ({timeout:g}s)"
    elif status == "error":
        body["error"] = f"the LLM request failed: {result.error}"
    return JSONResponse(body, status_code=_HTTP[status], headers=model_header(result))
