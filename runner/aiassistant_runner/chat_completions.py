"""`POST /v1/chat/completions`: an OpenAI-compatible text conversation with the assistant.

Stateless, like the seed's runner: the client sends the whole history each time. Any OpenAI client
works: point its base URL at `http://<runner>:8000/v1`; the API key it sends is the assistant's access
token (checked by access.py before this module sees the request, never forwarded: the runner uses its
own provider key from the pod's env).

- The assistant's init prompt + parameters are the system instruction, sent first. The client's
  leading system messages are appended to it (one system message, ours first): they add to the
  assistant's instruction, they cannot replace it. Later system/developer messages stay in place.
- The assistant's spec tools run server-side; the client never sees a tool call, only the answer.
  Client-side `tools`/`functions` are refused (400): they would mix two tool owners in one turn.
- `model` is accepted and ignored (the assistant's engine model answers and is echoed back; GET
  /v1/models lists the chain's model ids, model_list.py).
- Request parameters (chat_parameters.py has the table): honoured, i.e. validated and sent to the
  model: temperature, top_p, max_completion_tokens, max_tokens, seed, stop, presence_penalty,
  frequency_penalty, user and response_format (text, json_object, json_schema: structured output,
  which xAI's and OpenAI's current models support). Accepted without effect: n: 1, logprobs: false,
  store: false, parallel_tool_calls, metadata. Anything else, a wrong type or an out-of-range value
  is a 400 naming the parameter, and so is a parameter a model of the chain rejects (e.g. stop for
  grok-4.3): never silently dropped. `finish_reason` is the model's (`length` when
  max_(completion_)tokens cut the answer), else `stop`.
- `stream: true` answers with SSE chunks shaped like OpenAI's, then `data: [DONE]`;
  `stream_options.include_usage` adds the usage chunk. Non-streaming answers one chat.completion.
  The model is asked the same way: streamed for `stream: true`, else for the whole answer at once
  (text_engine.py, llm_client.py).
- Bad input: 400 with an OpenAI-style error whose `param` names the field. A draining pod or one at
  maxSessionsPerPod: 503 (Retry-After: 1). Bounds (`limits`, bounds.py): a body over maxBodyBytes
  is 413, more than maxMessages messages or JSON deeper than maxJsonDepth 400, a turn longer than
  turnTimeoutSeconds 504 (streamed: an error event); a client that goes away cancels its turn. An upstream LLM failure is not an HTTP error: the answer
  ends with a short apology (header `X-AIAssistant-Finish: error`) and is counted in metrics.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from aiassistant_contract.runner_config import LimitsConfig

from . import json_codec
from .bounds import BodyTooLarge, ClientGone, json_depth, read_body, until_done
from .chat_parameters import CLIENT_TOOL_FIELDS, request_options
from .json_codec import JSONResponse
from .models import Model
from .openai_errors import RequestError, error_body, openai_error
from .sessions import CapacityError, Sessions
from .text_engine import TextEngine, TurnResult

log = logging.getLogger(__name__)

ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    options: dict[str, Any]  # the honoured parameters, sent with each model request (chat_parameters.py)


def unavailable(err: CapacityError) -> JSONResponse:
    return openai_error(503, str(err), type_="service_unavailable", code=err.reason.replace(" ", "_"))


async def read_json_object(request: Request, limits: LimitsConfig | None = None) -> dict[str, Any]:
    """The request's JSON object, within `limits` (BodyTooLarge past maxBodyBytes; RequestError
    for anything that is not a JSON object no deeper than maxJsonDepth)."""
    limits = limits or LimitsConfig()
    raw = await read_body(request, limits.max_body_bytes)
    try:
        body = json_codec.loads(raw)
    except RecursionError:
        raise RequestError(
            None, f"the request body is nested deeper than {limits.max_json_depth} levels"
        ) from None
    except ValueError:  # also bytes that are not UTF-8
        raise RequestError(None, "the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError(None, "the request body must be a JSON object")
    if json_depth(body, limits.max_json_depth) > limits.max_json_depth:
        raise RequestError(
            None,
            f"the request body is nested deeper than {limits.max_json_depth} levels (limits.maxJsonDepth)",
        )
    return body


def too_large(err: BodyTooLarge) -> JSONResponse:
    return openai_error(413, str(err), code="request_too_large")


def turn_timeout(seconds: float) -> JSONResponse:
    return openai_error(
        504,
        f"the answer did not finish within {seconds:g}s (limits.turnTimeoutSeconds)",
        type_="timeout",
        code="turn_timeout",
    )


def _text_content(content: Any, where: str) -> str | None:
    """A message's content: a string, null, or a list of text parts (joined)."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(where, "must be a string, null or a list of text parts")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise RequestError(
                f"{where}[{j}]", 'only text parts are supported: {"type": "text", "text": "..."}'
            )
        texts.append(part["text"])
    return "".join(texts)


def parse_messages(raw: Any, max_messages: int = 256) -> list[dict[str, Any]]:
    """Validate an OpenAI `messages` list; return plain dicts the LLM context takes."""
    if not isinstance(raw, list) or not raw:
        raise RequestError("messages", "a non-empty list of messages is required")
    if len(raw) > max_messages:
        raise RequestError("messages", f"at most {max_messages} messages per request (limits.maxMessages)")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise RequestError(where, "each message must be an object with role and content")
        role = item.get("role")
        if role not in ROLES:
            raise RequestError(f"{where}.role", f"must be one of {', '.join(ROLES)}; got {role!r}")
        message: dict[str, Any] = {
            "role": role,
            "content": _text_content(item.get("content"), f"{where}.content"),
        }
        if role == "assistant" and item.get("tool_calls"):
            if not isinstance(item["tool_calls"], list):
                raise RequestError(f"{where}.tool_calls", "must be a list of tool calls")
            message["tool_calls"] = item["tool_calls"]
        elif role == "tool":
            if not isinstance(item.get("tool_call_id"), str):
                raise RequestError(f"{where}.tool_call_id", "a tool message needs its tool_call_id")
            message["tool_call_id"] = item["tool_call_id"]
        elif message["content"] is None:
            raise RequestError(f"{where}.content", f"a {role} message needs content")
        messages.append(message)
    return messages


def parse_chat_request(
    body: dict[str, Any], max_messages: int = 256, models: Sequence[Model] = ()
) -> ChatRequest:
    """Validate a chat completion request; `models` (the chain) decide which parameters are accepted."""
    for name in CLIENT_TOOL_FIELDS:
        if body.get(name):
            raise RequestError(
                name, "client-side tools are not supported: the assistant's own tools run server-side"
            )
    if body.get("model") is not None and not isinstance(body["model"], str):
        raise RequestError("model", "must be a string (it is ignored: the assistant's model answers)")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError("stream", "must be true or false")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("stream_options", "must be an object")
    messages = parse_messages(body.get("messages"), max_messages)
    return ChatRequest(
        messages, bool(stream), bool(options.get("include_usage")), request_options(body, models)
    )


def usage(result: TurnResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def finish_reason(result: TurnResult) -> str:
    """The answer's finish_reason: the model's when it cut the answer short, else `stop` (also after
    server-side tool rounds, and for an apology)."""
    return result.finish_reason if result.finish_reason in ("length", "content_filter") else "stop"


def _finish_header(result: TurnResult) -> dict[str, str]:
    return {"X-AIAssistant-Finish": result.finish, **model_header(result)}


def model_header(result: TurnResult) -> dict[str, str]:
    """X-AIAssistant-Model: the engine model that answered (the primary or a fallback)."""
    return {"X-AIAssistant-Model": result.model} if result.model else {}


def answered_by(result: TurnResult, engine: TextEngine) -> str:
    """The body's `model`: the model that answered, else the engine model's."""
    return result.model.partition(".")[2] if result.model else engine.model


async def chat_completions(
    request: Request, engine: TextEngine, sessions: Sessions, limits: LimitsConfig
) -> Response:
    """Answer one chat completion request (see the module docstring)."""
    try:
        body = await read_json_object(request, limits)
        chat = parse_chat_request(body, limits.max_messages, engine.models)
    except RequestError as err:
        return openai_error(400, str(err), param=err.param)
    except BodyTooLarge as err:
        return too_large(err)
    completion_id = f"chatcmpl-{secrets.token_hex(16)}"
    created = int(time.time())
    if chat.stream:
        # Refuse before the 200 goes out; the session itself is held by the stream generator, so
        # it ends however the stream ends (done, client gone, server stopping).
        try:
            sessions.check("text")
        except CapacityError as err:
            return unavailable(err)
        chunks = _stream(engine, sessions, limits, chat, completion_id, created)
        return StreamingResponse(
            chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    try:
        async with sessions.open("text") as session:
            try:
                result = await until_done(
                    request, engine.run(chat.messages, options=chat.options), limits.turn_timeout_seconds
                )
            except (TimeoutError, ClientGone) as err:
                session.fail()
                if isinstance(err, ClientGone):
                    return Response(status_code=499)  # nobody reads it: the session is free now
                log.warning("text turn timed out after %gs", limits.turn_timeout_seconds)
                return turn_timeout(limits.turn_timeout_seconds)
            if result.failed:
                session.fail()
    except CapacityError as err:
        return unavailable(err)
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": answered_by(result, engine),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage(result),
    }
    return JSONResponse(body, headers=_finish_header(result))


async def _stream(
    engine: TextEngine,
    sessions: Sessions,
    limits: LimitsConfig,
    chat: ChatRequest,
    completion_id: str,
    created: int,
) -> AsyncIterator[bytes]:
    head = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": engine.model,
    }
    if chat.include_usage:
        head["usage"] = None  # OpenAI sends usage: null on every chunk but the last when asked for usage

    answer = TurnResult()

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        head["model"] = answered_by(answer, engine)  # a fallback may answer
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return b"data: " + json_codec.dumps(chunk) + b"\n\n"

    try:
        async with sessions.open("text") as session:
            pieces: asyncio.Queue[str | None] = asyncio.Queue()

            async def on_text(text: str) -> None:
                pieces.put_nowait(text)

            turn = asyncio.create_task(
                engine.run(chat.messages, on_text=on_text, result=answer, options=chat.options)
            )
            turn.add_done_callback(lambda _: pieces.put_nowait(None))
            seconds = limits.turn_timeout_seconds
            try:
                yield event({"role": "assistant", "content": ""})
                async with asyncio.timeout(seconds):
                    while (piece := await pieces.get()) is not None:
                        yield event({"content": piece})
                result = turn.result()
            except TimeoutError:
                session.fail()
                log.warning("text turn timed out after %gs", seconds)
                yield _error_event(
                    f"the answer did not finish within {seconds:g}s (limits.turnTimeoutSeconds)", "timeout"
                )
                return
            except Exception:
                session.fail()
                log.exception("text conversation failed")
                yield _error_event("internal error while answering", "server_error")
                return
            finally:
                turn.cancel()  # the client went away (or we failed): stop the model and its tools
            if result.failed:
                session.fail()
            yield event({}, finish_reason(result))
            if chat.include_usage:
                yield b"data: " + json_codec.dumps({**head, "choices": [], "usage": usage(result)}) + b"\n\n"
            yield b"data: [DONE]\n\n"
    except CapacityError as err:  # admitted by the check above, refused a moment later
        yield _error_event(str(err), "service_unavailable")


def _error_event(message: str, type_: str) -> bytes:
    # The openai client raises APIError on an SSE event carrying an `error` object.
    return b"data: " + json_codec.dumps(error_body(message, type_)) + b"\n\n"
