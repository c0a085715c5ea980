"""A loopback tool webhook for tests: what an assistant's spec tool `url` points at.

Speaks plain HTTP on 127.0.0.1: `POST /tools/<anything>` receives the runner's tool call
`{"id", "type": "function", "function": {"name", "arguments"}}`, records it, and answers with the
next scripted `ToolReply` (JSON body, status, delay), else `{"ok": true, "tool": <name>}`.
`async with ToolServer() as tools:` -> `tools.url("lookup")` is the webhook URL.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


@dataclass
class ToolReply:
    body: Any = field(default_factory=lambda: {"ok": True})
    status: int = 200
    delay: float = 0.0  # seconds before answering (a slow or hung tool)
    raw: str | None = None  # send this text instead of JSON


@dataclass
class ToolRequest:
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def name(self) -> str:
        return str(self.body["function"]["name"])

    @property
    def arguments(self) -> Any:
        """The call's arguments, decoded from the JSON string the runner sends."""
        return json.loads(self.body["function"]["arguments"])


class ToolServer(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[ToolRequest] = []
        self._script: deque[ToolReply] = deque()
        app = web.Application()
        app.router.add_post("/tools/{name}", self._call)
        super().__init__(app)

    def script(self, *replies: ToolReply) -> None:
        self._script.extend(replies)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/tools/{name}"

    async def _call(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(ToolRequest(request.path, dict(request.headers), body))
        reply = self._script.popleft() if self._script else None
        if reply is None:
            return web.json_response({"ok": True, "tool": body["function"]["name"]})
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.raw is not None:
            return web.Response(text=reply.raw, status=reply.status)
        return web.json_response(reply.body, status=reply.status)
