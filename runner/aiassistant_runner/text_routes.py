"""The text endpoints' POSTs (`/v1/chat/completions`, `/v1/tasks`), served ahead of FastAPI's router.

A pure ASGI middleware (Starlette's documented kind), inside the app's ServerErrorMiddleware and
the access check: a POST to one of `endpoints` goes straight to its handler, which takes the
Starlette Request and returns a Response, as a Starlette route's endpoint does. What it skips are
the layers between (the exception middleware, FastAPI's exit stack, the router's matching, the
route's wrapper): 8-10 % of a text turn's CPU and a dozen objects per request in flight, which every
young garbage collection scans (docs/performance.md). The handlers raise no HTTPException for those
layers to turn into responses: they answer their own errors, OpenAI-shaped; an unhandled exception
still reaches ServerErrorMiddleware (500, logged). Other methods and paths go on to the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class TextRoutes:
    def __init__(self, app: ASGIApp, endpoints: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)
