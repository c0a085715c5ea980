"""The request parameters of `POST /v1/chat/completions` besides the messages: which are honoured
(sent to the model), which the runner uses itself, which are accepted without effect and which are
refused. Every one is validated; a wrong type or value is a 400 naming it. `null` is the same as
leaving a parameter out.

Honoured: validated, then sent with every model request of the turn (llm_client.chat_body):

    temperature            number, 0 to 2
    top_p                  number, 0 to 1
    max_completion_tokens  integer, 1 to 2^31-1 (per model request; reasoning tokens count in it)
    max_tokens             integer, 1 to 2^31-1 (the older name; OpenAI's reasoning models reject it)
    seed                   integer (64-bit)
    stop                   a string, or a list of 1 to 4 strings
    presence_penalty       number, -2 to 2
    frequency_penalty      number, -2 to 2
    user                   string of at most 256 characters (the end user, for the provider's abuse checks)
    response_format        {"type": "text"} (the default: nothing is sent), {"type": "json_object"}, or
                           {"type": "json_schema", "json_schema": {"name": "<1-64 of a-zA-Z0-9_->",
                            "schema": {...}, "description"?: "...", "strict"?: true|false}}
                           (the schema counts in the body's maxBodyBytes and maxJsonDepth)

A parameter that a model of the assistant's chain rejects (the engine registry's facts: e.g. xAI's
grok-4.3 rejects stop, presence_penalty and frequency_penalty; OpenAI's GPT-5 models temperature,
top_p, stop, max_tokens...) is a 400 naming it and the model, not something silently dropped:
whichever model of the chain answers (a fallback may), it would not honour it.

Used by the runner: model (accepted, ignored: the assistant's engine model answers), messages,
stream, stream_options (include_usage).
Accepted without effect, with the only values that ask nothing of the runner: n: 1,
logprobs: false, store: false (the runner stores nothing), parallel_tool_calls (there are no client
tools), metadata (an object of strings), and tools/functions/tool_choice/function_call/
logit_bias/top_logprobs when empty.
Refused (400): client-side tools (the assistant's own tools run server-side), reasoning_effort (the
assistant's spec.reasoningEffort decides it), logit_bias, top_logprobs, n > 1, logprobs: true,
store: true, and any other field: "unrecognized request argument", as OpenAI answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .models import Model
from .openai_errors import RequestError

INT32_MAX = 2**31 - 1
INT64 = 2**63
MAX_STOP = 4
MAX_USER = 256
SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
JSON_SCHEMA_FIELDS = ("name", "schema", "description", "strict")

USED = frozenset({"model", "messages", "stream", "stream_options"})
CLIENT_TOOL_FIELDS = ("tools", "functions", "tool_choice", "function_call")
# Refused when set to anything but an empty value; why, for the message.
REFUSED = {
    **{
        name: "client-side tools are not supported: the assistant's own tools run server-side"
        for name in CLIENT_TOOL_FIELDS
    },
    "reasoning_effort": "the assistant's reasoning effort is its spec's (spec.reasoningEffort); leave it out",
    "logit_bias": "not supported (xAI does not support it either); leave it out",
    "top_logprobs": "log probabilities are not returned by the runner; leave it out",
}
HINTS = {"max_tokens": "; send max_completion_tokens instead"}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # json.loads takes NaN and Infinity
    return isinstance(value, int) and not isinstance(value, bool)  # compared exactly: no float overflow


def _number(low: float, high: float) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not _is_number(value) or not low <= value <= high:
            raise RequestError(
                name, f"{name!r} must be a number from {low:g} to {high:g}; got {_shown(value)}"
            )
        return value

    return check


def _integer(low: int, high: int) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise RequestError(name, f"{name!r} must be an integer from {low} to {high}; got {_shown(value)}")
        return value

    return check


def _stop(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return value
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_STOP
        or not all(isinstance(s, str) for s in value)
    ):
        raise RequestError(
            name, f"{name!r} must be a string or a list of 1 to {MAX_STOP} strings; got {_shown(value)}"
        )
    return value


def _user(name: str, value: Any) -> Any:
    if not isinstance(value, str) or len(value) > MAX_USER:
        raise RequestError(name, f"{name!r} must be a string of at most {MAX_USER} characters")
    return value


def response_format(value: Any) -> dict[str, Any] | None:
    """The `response_format` to send (None for text, the default), or RequestError naming the part."""
    where = "response_format"
    kinds = ", ".join(RESPONSE_FORMATS)
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMATS:
        raise RequestError(where, f"{where!r} must be an object whose type is one of {kinds}")
    kind = value["type"]
    extra = sorted(set(value) - {"type", *(("json_schema",) if kind == "json_schema" else ())})
    if extra:
        raise RequestError(f"{where}.{extra[0]}", f"unknown field of a {kind} response_format")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    spec = value.get("json_schema")
    where = "response_format.json_schema"
    if not isinstance(spec, dict):
        raise RequestError(where, 'a json_schema response_format needs {"name": ..., "schema": {...}}')
    unknown = sorted(set(spec) - set(JSON_SCHEMA_FIELDS))
    if unknown:
        raise RequestError(
            f"{where}.{unknown[0]}", f"unknown field; json_schema takes {', '.join(JSON_SCHEMA_FIELDS)}"
        )
    name = spec.get("name")
    if not isinstance(name, str) or not SCHEMA_NAME.fullmatch(name):
        raise RequestError(f"{where}.name", "must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -")
    if not isinstance(spec.get("schema"), dict):
        raise RequestError(f"{where}.schema", "must be a JSON Schema object")
    if spec.get("description") is not None and not isinstance(spec["description"], str):
        raise RequestError(f"{where}.description", "must be a string")
    if spec.get("strict") is not None and not isinstance(spec["strict"], bool):
        raise RequestError(f"{where}.strict", "must be true or false")
    return {"type": "json_schema", "json_schema": {k: v for k, v in spec.items() if v is not None}}


HONOURED: Mapping[str, Callable[[str, Any], Any]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_completion_tokens": _integer(1, INT32_MAX),
    "max_tokens": _integer(1, INT32_MAX),
    "seed": _integer(-INT64, INT64 - 1),
    "stop": _stop,
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "user": _user,
    "response_format": lambda _, value: response_format(value),
}


def _no_effect(name: str, value: Any) -> None:
    """Accept a field that asks nothing of the runner; refuse it when it would."""
    if name == "n":
        if value != 1 or isinstance(value, bool):
            raise RequestError(name, "only n: 1 is supported (one answer per request)")
    elif name in ("logprobs", "store", "parallel_tool_calls"):
        if not isinstance(value, bool):
            raise RequestError(name, f"{name!r} must be true or false")
        if value and name == "logprobs":
            raise RequestError(name, "log probabilities are not returned by the runner; leave logprobs out")
        if value and name == "store":
            raise RequestError(name, "the runner stores no completions; leave store out")
    elif name == "metadata":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise RequestError(name, "'metadata' must be an object of string values")


NO_EFFECT = frozenset({"n", "logprobs", "store", "parallel_tool_calls", "metadata"})


def request_options(body: Mapping[str, Any], models: Sequence[Model] = ()) -> dict[str, Any]:
    """The honoured parameters of `body`, validated, as the options to send with each model request.
    RequestError (a 400 naming the parameter) for a wrong value, a refused or unknown field, or a
    parameter a model of the chain (`models`: the engine model, then the fallbacks) rejects."""
    options: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or name in USED:
            continue
        check = HONOURED.get(name)
        if check is not None:
            sent = check(name, value)
            if sent is not None:
                options[name] = sent
        elif name in NO_EFFECT:
            _no_effect(name, value)
        elif name in REFUSED:
            if value:
                raise RequestError(name, REFUSED[name])
        else:
            raise RequestError(
                name,
                f"unrecognized request argument supplied: {name[:64]!r} (honoured: {', '.join(HONOURED)})",
            )
    for name in options:
        for i, model in enumerate(models):
            if name in model.rejected:
                role = "the assistant's engine model" if i == 0 else f"its fallbacks[{i - 1}]"
                raise RequestError(
                    name,
                    f"{name!r} is not accepted by {model.engine_model} ({role}); leave it out{HINTS.get(name, '')}",
                )
    return options
