"""The runner's HTTP/WebSocket API (FastAPI): probes, metrics, text conversations, tasks, voice calls.

The routes are listed once, in endpoints.py (ENDPOINTS; also printed by `aiassistant-runner --help`);
a test fails when a route here is missing there or the other way round.

Access (access.py): every /v1 request needs credentials unless the assistant is anonymous; HTTP is
checked by `AccessMiddleware` (401, OpenAI-shaped), calls by the route below (close 1008).
Every HTTP error is OpenAI-shaped (openai_errors.py): an unknown route 404, a wrong method 405
(with Allow), FastAPI's validation 400, an unhandled exception 500 — never `{"detail": ...}`.

Calls: the route accepts the socket (selecting the `aiassistant` subprotocol if offered), refuses an
unknown or not-enabled serializer (close 1008), a caller without credentials (close 1008) or a pod
that is not ready (close 1013, "try again later"), then hands the accepted socket to
`voice_calls.handle_call`, which reads the telephony `start` message (and
checks a stream token) within `limits.callStartSeconds` and only then admits the session with
`async with sessions.open("call")`; a CapacityError from there also closes with 1013.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketState

from aiassistant_contract.runner_config import SERIALIZERS

from . import __version__
from .access import SUBPROTOCOL, AccessMiddleware, Refused
from .chat_completions import chat_completions
from .json_codec import JSONResponse
from .model_list import ModelList
from .openai_errors import install_error_handlers, openai_error
from .sessions import CapacityError
from .tasks import run_task
from .text_routes import TextRoutes
from .voice_calls import WS_POLICY_VIOLATION, handle_call  # light: the voice stack loads on the first call
from .wiring import Runner

log = logging.getLogger(__name__)

WS_TRY_AGAIN_LATER = 1013


def create_app(runner: Runner, *, prewarm: bool = True) -> FastAPI:
    """The app serving one assistant, on the objects `runner` wired (wiring.py).

    `prewarm`: for an assistant that takes calls, import the voice stack in a thread once serving
    (readiness does not wait; the first call would otherwise pay about a second of CPU). Text turns
    need no Pipecat at all.
    """
    config, sessions, metrics, access = runner.config, runner.sessions, runner.metrics, runner.access

    def warm() -> None:
        if config.voice_ready():
            from .voice_pipeline import prewarm as import_voice_stack

            import_voice_stack()
        # Long-lived objects of the imports (Pipecat's: ~130k) made full collections take ~130 ms,
        # the p99 of concurrent conversations; frozen objects are never scanned.
        gc.freeze()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warming = asyncio.get_running_loop().run_in_executor(None, warm) if prewarm else None
        yield
        if warming is not None:
            await warming
        await runner.aclose()

    app = FastAPI(
        title=f"aiassistant-runner {metrics.assistant}",
        version=__version__,
        lifespan=lifespan,
        # No OpenAPI: the API is OpenAI's (and the text routes take no FastAPI parameters to describe).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # The runner reports through its Prometheus metrics and logs. FastAPI's own OpenTelemetry
        # would record exception messages outside the runner's redaction, and asks on every request
        # whether a provider is configured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    model_list = ModelList(runner.text.models, created=int(time.time()))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        reason = sessions.not_ready_reason()
        body = {
            "status": "ready" if reason is None else "not ready",
            "activeSessions": sessions.pod_active,
            "maxSessions": sessions.max_sessions,
        }
        if reason is not None:
            body["reason"] = reason
        return JSONResponse(body, status_code=200 if reason is None else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def chat(request: Request) -> Response:
        return await chat_completions(request, runner.text, sessions, config.limits)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse(model_list.listing())

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> JSONResponse:
        found = model_list.get(model_id)
        if found is None:
            return openai_error(
                404,
                f"The model {model_id[:100]!r} does not exist here (this assistant's: {', '.join(model_list.ids)})",
                param="model",
                code="model_not_found",
            )
        return JSONResponse(found)

    async def tasks(request: Request) -> Response:
        return await run_task(request, runner.text, sessions, config)

    # The text endpoints' POSTs are answered ahead of the router (text_routes.py); the routes are
    # also the router's, for its 405 to other methods and for the endpoint list.
    text_routes = {"/v1/chat/completions": chat, "/v1/tasks": tasks}
    for path, endpoint in text_routes.items():
        app.add_route(path, endpoint, methods=["POST"])
    # Added last, so it runs first: access, then the text endpoints, then the rest of the app.
    app.add_middleware(TextRoutes, endpoints=text_routes)
    app.add_middleware(AccessMiddleware, access=access)
    install_error_handlers(app)

    @app.websocket("/v1/calls/{serializer}")
    async def calls(websocket: WebSocket, serializer: str) -> None:
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        enabled = config.transport.serializers
        if serializer not in enabled:
            what = "not enabled for this assistant" if serializer in SERIALIZERS else "unknown"
            reason = f"serializer {serializer[:40]!r} is {what} (served: {', '.join(enabled)})"
            await websocket.close(WS_POLICY_VIOLATION, reason[:120])
            return
        try:
            authenticated = access.check_call(websocket.scope, serializer)
        except Refused as refused:
            await websocket.close(WS_POLICY_VIOLATION, str(refused)[:120])
            return
        not_ready = sessions.not_ready_reason()
        if not_ready is not None:
            await websocket.close(WS_TRY_AGAIN_LATER, f"runner is {not_ready}")
            return
        try:
            await handle_call(
                websocket, serializer, runner.calls, sessions, access, authenticated=authenticated
            )
        except CapacityError as err:
            if websocket.application_state != WebSocketState.DISCONNECTED:
                await websocket.close(WS_TRY_AGAIN_LATER, str(err))

    if config.playground:
        from .playground import mount_playground

        mount_playground(app, config)
    return app
