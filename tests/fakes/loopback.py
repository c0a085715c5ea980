"""The life cycle every loopback fake shares: an aiohttp app served on 127.0.0.1, on a free port
unless one is asked for. Subclasses build `self.app` and call `super().__init__(app, ...)`."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LoopbackServer:
    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> Self:
        # handler_cancellation: a handler stops when its client goes away (a runner cancelling a
        # turn), as a provider stops generating; a slow reply does not outlive its test.
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
