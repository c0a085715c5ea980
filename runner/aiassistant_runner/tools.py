"""The assistant's tools: spec tools run as webhooks, plus the built-ins `end_call` and `stop_service`.

A spec tool call is POSTed as JSON to the tool's `url`, in the seed's shape
`{"id": ..., "type": "function", "function": {"name": ..., "arguments": "<JSON string>"}}`,
bounded by its `timeoutSeconds`. The response body (JSON, else text) is the result the LLM sees.
A timeout, a connection error or a non-2xx answer becomes the result `{"error": "..."}`: the model
can apologise or retry; the session never crashes on a tool.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from aiassistant_contract.runner_config import END_CALL, STOP_SERVICE, ToolConfig

from .metrics import Metrics

if TYPE_CHECKING:
    from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
    from pipecat.services.llm_service import FunctionCallParams, LLMService

log = logging.getLogger(__name__)

# A built-in tool handler is a plain Pipecat function-call handler: it answers through
# `params.result_callback` (and may pass FunctionCallResultProperties, e.g. run_llm=False).
BuiltinHandler = Callable[["FunctionCallParams"], Awaitable[None]]
# Told about every finished spec tool call: (name, arguments, result).
ToolCallListener = Callable[[str, Mapping[str, Any], Any], None]

# The built-ins' schemas: (description, properties, required).
BUILTIN_SCHEMAS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    END_CALL: (
        "End the call: hang up after saying goodbye, when the caller asks to or the conversation is over.",
        {"reason": {"type": "string", "description": "Why the call ends."}},
        [],
    ),
    STOP_SERVICE: (
        "Finish the task: call it with the final result when the task is complete.",
        {"result": {"type": "string", "description": "The final result of the task."}},
        ["result"],
    ),
}

_MAX_ERROR_BODY = 200  # characters of an error response quoted back to the model


@dataclass(frozen=True)
class ToolError:
    """The result the LLM sees when a tool failed."""

    message: str

    def as_result(self) -> dict[str, str]:
        return {"error": self.message}


class ToolRunner:
    """Runs spec tools over HTTP with one shared aiohttp session per process."""

    def __init__(self, tools: list[ToolConfig], metrics: Metrics | None = None) -> None:
        self.tools = {tool.name: tool for tool in tools}
        self._metrics = metrics
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # No total timeout here: each call sets its own from the tool's timeoutSeconds.
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self._http

    async def call(self, name: str, arguments: Mapping[str, Any], call_id: str) -> Any:
        """POST one tool call to its webhook; returns the result or `{"error": ...}` (never raises)."""
        tool = self.tools.get(name)
        if tool is None:
            result: Any = ToolError(f"unknown tool {name!r}").as_result()
        else:
            result = await self._post(tool, arguments, call_id)
        if self._metrics:
            self._metrics.tool_call(name if tool else "unknown", ok=not _is_error(result))
        return result

    async def _post(self, tool: ToolConfig, arguments: Mapping[str, Any], call_id: str) -> Any:
        payload = {
            "id": call_id,
            "type": "function",
            "function": {"name": tool.name, "arguments": json.dumps(dict(arguments))},
        }
        timeout = aiohttp.ClientTimeout(total=tool.timeout_seconds)
        try:
            async with self._session().post(tool.url, json=payload, timeout=timeout) as response:
                body = await response.text()
                if response.status >= 300:
                    log.warning("tool %s answered HTTP %s", tool.name, response.status)
                    return ToolError(
                        f"tool {tool.name} failed: HTTP {response.status}: {body[:_MAX_ERROR_BODY]}"
                    ).as_result()
        except TimeoutError:
            log.warning("tool %s timed out after %ss", tool.name, tool.timeout_seconds)
            return ToolError(f"tool {tool.name} timed out after {tool.timeout_seconds:g}s").as_result()
        except aiohttp.ClientError as err:
            log.warning("tool %s unreachable: %s", tool.name, type(err).__name__)
            return ToolError(f"tool {tool.name} unreachable: {type(err).__name__}").as_result()
        try:
            return json.loads(body)
        except ValueError:
            return body

    def register(
        self,
        llm: LLMService[Any],
        *,
        builtins: Mapping[str, BuiltinHandler] | None = None,
        on_call: ToolCallListener | None = None,
    ) -> ToolsSchema:
        """Register every spec tool and the given built-ins on `llm`; return the schema to advertise
        (put it in the LLMContext: `LLMContext(messages, tools=schema)`).

        `builtins` maps a built-in name (`end_call`, `stop_service`) to its Pipecat handler; only the
        built-ins given are advertised. `on_call` is told about each finished spec tool call.
        """
        builtins = builtins or {}
        schema = self.schema(builtins)
        for tool in self.tools.values():
            # Our own HTTP timeout answers first, with a tool error the model can read.
            llm.register_function(tool.name, self._handler(on_call), timeout_secs=tool.timeout_seconds + 5)
        for name, handler in builtins.items():
            llm.register_function(name, handler)
        return schema

    def functions(self, builtins: Iterable[str] = ()) -> list[tuple[str, str, dict[str, Any], list[str]]]:
        """(name, description, properties, required) of the spec tools plus the named built-ins."""
        functions = [
            (
                tool.name,
                tool.description,
                dict(tool.parameters.get("properties", {})),
                list(tool.parameters.get("required", [])),
            )
            for tool in self.tools.values()
        ]
        for name in builtins:
            if name not in BUILTIN_SCHEMAS:
                raise ValueError(f"unknown built-in tool {name!r} (known: {', '.join(BUILTIN_SCHEMAS)})")
            functions.append((name, *BUILTIN_SCHEMAS[name]))
        return functions

    def schema(self, builtins: Iterable[str] = ()) -> ToolsSchema:
        """The spec tools plus the named built-ins, as a Pipecat ToolsSchema (voice calls)."""
        from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
        from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

        return ToolsSchema(standard_tools=[FunctionSchema(*f) for f in self.functions(builtins)])

    def openai_tools(self, builtins: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The same tools in the chat completions request's `tools` format (text turns), as
        Pipecat's OpenAI adapter writes a ToolsSchema."""
        return [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": description,
                    "parameters": {"type": "object", "properties": properties, "required": required},
                },
            }
            for name, description, properties, required in self.functions(builtins)
        ]

    def _handler(self, on_call: ToolCallListener | None) -> BuiltinHandler:
        async def handle(params: FunctionCallParams) -> None:
            try:
                result = await self.call(params.function_name, params.arguments, params.tool_call_id)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug here must not end the session: report it to the model
                log.exception("tool %s crashed", params.function_name)
                result = ToolError(f"tool {params.function_name} failed: {type(err).__name__}").as_result()
            if on_call is not None:
                on_call(params.function_name, dict(params.arguments), result)
            await params.result_callback(result)

        return handle


def _is_error(result: Any) -> bool:
    return isinstance(result, dict) and set(result) == {"error"}
