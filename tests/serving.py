"""Serve an ASGI app (the runner's FastAPI app) with uvicorn on a free loopback port, in this loop.

Tests and benchmarks talk to the runner over real HTTP/WebSocket this way without a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn


class Served:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], port: int) -> None:
        self.server, self.task, self.port = server, task, port

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve(app: Any, **config: Any) -> Served:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on", **config)
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # the caller owns signals
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return Served(server, task, server.servers[0].sockets[0].getsockname()[1])
