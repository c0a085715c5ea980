"""Bounds of one HTTP request (`limits` of the runner config): body size, JSON depth, and one
deadline that also ends when the client goes away.

- `read_body`: at most `maxBodyBytes` (a larger Content-Length is refused before reading; a body
  that grows past it while streaming is refused at that point): BodyTooLarge -> 413.
- `json_depth`: the nesting depth of parsed JSON, iteratively (a 100,000-deep body must give a
  400, not a RecursionError): the caller refuses deeper than `maxJsonDepth`.
- `until_done`: run a coroutine until it finishes, its deadline passes (TimeoutError -> 504) or the
  client disconnects (ClientGone: the work is cancelled at once and its session freed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request

T = TypeVar("T")


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes (limits.maxBodyBytes)")


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of `value` (a scalar is 0), counting no deeper than `limit` + 1."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def until_done(request: Request, work: Awaitable[T], timeout: float) -> T:  # noqa: ASYNC109
    """`await work`, bounded by `timeout` seconds (TimeoutError) and by the client staying
    connected (ClientGone); in both cases the work is cancelled before this returns.

    The work runs in the caller's task, not a task of its own: under load every task hop waits a
    turn of the event loop, and a text turn's answer took three of them to reach its response
    (docs/performance.md). A watcher task cancels the caller when the client disconnects."""
    caller = asyncio.current_task()
    assert caller is not None, "until_done runs in a task"
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(request)
        gone = True
        caller.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        async with asyncio.timeout(timeout):
            return await work
    except asyncio.CancelledError:
        if not gone:
            raise  # cancelled from outside (the server stopping): not ours to swallow
        caller.uncancel()
        raise ClientGone from None
    finally:
        watcher.cancel()
