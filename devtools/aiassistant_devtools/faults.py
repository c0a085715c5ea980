"""A loopback proxy in front of the apiserver that injects faults: error statuses and stalls.

    async with FaultProxy.running(cluster.server, cluster.ca_file) as proxy:
        proxy.fail("create", "deployments", status=500, times=2)
        proxy.stall("patch", "aiassistants", seconds=15, subresource="status")
        ... point the operator at proxy.url (plain http on 127.0.0.1; its token passes through)

Every other request, watches included, streams through unchanged. Verbs are the apiserver's
(get, list, watch, create, update, patch, delete), resources are plurals.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"}


@dataclass
class Rule:
    verb: str
    resource: str
    subresource: str | None
    times: int
    status: int = 0  # answer with this status...
    seconds: float = 0.0  # ...or hold the request this long, then forward it


def describe(method: str, url_path: str, watch: bool) -> tuple[str, str, str | None]:
    """(verb, plural, subresource) of a REST request path."""
    parts = [p for p in url_path.split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:]  # drop /api/v1 or /apis/group/version
    if len(parts) >= 3 and parts[0] == "namespaces":
        parts = parts[2:]
    resource = parts[0] if parts else ""
    named = len(parts) >= 2
    sub = parts[2] if len(parts) >= 3 else None
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if verb is None:
        verb = "watch" if watch else ("get" if named else "list")
    return verb, resource, sub


class FaultProxy:
    def __init__(self, upstream: str, ca_file: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.ca_file = ca_file
        self.rules: list[Rule] = []
        self.injected: list[tuple[str, str, str | None, str]] = []  # what was done, for the test log
        self.url = ""

    def fail(
        self, verb: str, resource: str, status: int, times: int = 1, subresource: str | None = None
    ) -> None:
        self.rules.append(Rule(verb, resource, subresource, times, status=status))

    def stall(
        self, verb: str, resource: str, seconds: float, times: int = 1, subresource: str | None = None
    ) -> None:
        self.rules.append(Rule(verb, resource, subresource, times, seconds=seconds))

    def _take(self, verb: str, resource: str, sub: str | None) -> Rule | None:
        for rule in self.rules:
            if rule.times > 0 and (rule.verb, rule.resource, rule.subresource) == (verb, resource, sub):
                rule.times -= 1
                return rule
        return None

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, upstream: str, ca_file: Path) -> AsyncIterator[FaultProxy]:
        proxy = cls(upstream, ca_file)
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(ca_file)), limit=0)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as client:
            app = web.Application(client_max_size=64 * 1024 * 1024)

            async def forward(request: web.Request) -> web.StreamResponse:
                return await proxy._forward(client, request)

            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            try:
                yield proxy
            finally:
                await runner.cleanup()

    async def _forward(self, client: aiohttp.ClientSession, request: web.Request) -> web.StreamResponse:
        verb, resource, sub = describe(
            request.method, request.path, request.query.get("watch") in ("1", "true")
        )
        rule = self._take(verb, resource, sub)
        if rule is not None and rule.status:
            self.injected.append((verb, resource, sub, str(rule.status)))
            reason = {
                409: "Conflict",
                429: "TooManyRequests",
                500: "InternalError",
                503: "ServiceUnavailable",
            }
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "message": f"injected {rule.status} for {verb} {resource}",
                    "reason": reason.get(rule.status, "InternalError"),
                    "code": rule.status,
                },
                status=rule.status,
            )
        if rule is not None:
            self.injected.append((verb, resource, sub, f"stall {rule.seconds}s"))
            await asyncio.sleep(rule.seconds)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with client.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS},
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
