"""OpenAI-shaped errors for every 4xx/5xx the runner's HTTP API answers.

The body is OpenAI's, so any OpenAI client (Python, npm, LangChain...) raises its own error class
with the message, instead of "404 status code (no body)":

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": null}}

`install_error_handlers(app)` makes FastAPI/Starlette answer this way too, so their default
`{"detail": ...}` never reaches a client:
- an unknown route: 404 `Invalid URL (GET /v1/nope)`, naming the endpoints the runner serves;
- a known route with a wrong method: 405 `Invalid method for URL (GET /v1/chat/completions)` with
  the `Allow` header;
- any other HTTPException (e.g. the playground's unknown asset): its status and detail;
- a request FastAPI's validation refuses: 400 naming the field (`param`);
- an unhandled exception: 500 `internal error` (the traceback goes to the log, not the client).
The endpoints' own errors (400 naming the field, 413, 503, 504) and access.py's 401/403/429 are
built with the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .json_codec import JSONResponse

log = logging.getLogger(__name__)

# What an unknown URL's message points to (the probes are not listed: clients do not need them).
ENDPOINTS = "POST /v1/chat/completions, GET /v1/models, POST /v1/tasks, WS /v1/calls/{serializer}"
MAX_PATH_SHOWN = 200  # an echoed path is cut here


class RequestError(ValueError):
    """Bad input (a 400); `param` is the offending field, e.g. `messages[1].role`."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


def error_body(
    message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    type_: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error response any OpenAI client understands (it raises BadRequestError etc. from it).
    A 503 says `Retry-After: 1` (the Service sends the retry to a ready pod)."""
    if status == 503:
        headers = {"Retry-After": "1", **(headers or {})}
    return JSONResponse(error_body(message, type_, param, code), status_code=status, headers=headers)


def _where(request: Request) -> str:
    path = request.url.path
    return f"{request.method} {path[:MAX_PATH_SHOWN]}{'...' if len(path) > MAX_PATH_SHOWN else ''}"


async def http_error(request: Request, exc: Exception) -> Response:
    """A Starlette/FastAPI HTTPException (the router's 404 and 405 included), OpenAI-shaped."""
    assert isinstance(exc, StarletteHTTPException)
    status, headers = exc.status_code, dict(exc.headers or {})
    if status == 404:
        message = f"Invalid URL ({_where(request)}); the runner serves {ENDPOINTS}"
    elif status == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        message = f"Invalid method for URL ({_where(request)}); allowed: {allowed}"
    else:
        message = str(exc.detail)
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return openai_error(status, message, type_=type_, headers=headers or None)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's request validation (422 by default): 400 naming the first offending field."""
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = next(iter(exc.errors()), {})
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(loc) or None
    return openai_error(400, str(first.get("msg") or "invalid request"), param=param)


async def server_error(request: Request, exc: Exception) -> Response:
    """An unhandled exception: 500 with no detail (Starlette re-raises it, so the server logs it)."""
    return openai_error(500, "internal error", type_="server_error")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error FastAPI/Starlette would answer with `{"detail": ...}` OpenAI-shaped."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)
