"""Serving one runner process: its listening socket, and uvicorn with a drain on SIGTERM.

`serve` runs the app of a wired `Runner` on an already listening socket, in the CLI's process (one
worker) or in each worker process (workers.py); `listen_socket` binds that socket first, so a taken
port is one clear error before anything claims to serve.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from .sessions import Sessions
from .wiring import Runner

log = logging.getLogger("aiassistant_runner")

WS_MAX_MESSAGE_BYTES = 1_048_576
# The garbage collector's thresholds while serving (Python's default: 700, 10, 10). Requests keep
# hundreds of conversations' objects alive across collections, so they reach the oldest generation
# and, by default, 800 concurrent conversations ran 4-6 full collections per 2,400 turns, up to
# 53 ms each with the loop stopped (docs/performance.md). A full one now waits for 1,000 middle
# collections (tens of thousands of turns); the young and middle ones stay as they are (≤ 8 and
# ≤ 19 ms): a larger young threshold (5,000 or 50,000) made each young collection take up to
# 20-25 ms, which costs more at 200 conversations than it saves at 800.
# The imports' long-lived objects are frozen after the prewarm (app.py).
GC_THRESHOLDS = (700, 10, 1000)


class ListenError(Exception):
    """The listen address cannot be bound; the message names HOST:PORT and the reason."""


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port and listening, for uvicorn to serve on (`Server.run(sockets=)`):
    binding here, before anything says "serving", turns a taken port into one clear error.
    SO_REUSEADDR as uvicorn sets it: a restart may bind while old connections sit in TIME_WAIT
    (Linux still refuses a port another socket listens on)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog; connections queue until it accepts
    except OSError as err:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        reason = (err.strerror or str(err)).lower()
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    return sock


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM/SIGINT drain first: keep serving (readiness 503, new sessions refused)
    while active sessions finish, up to the grace period; then the usual graceful shutdown, exit 0.
    A second signal during the drain stops at once."""

    def __init__(self, config: uvicorn.Config, sessions: Sessions, grace_seconds: float) -> None:
        super().__init__(config)
        self.sessions = sessions
        self.grace_seconds = grace_seconds
        self._drain: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals: uvicorn would re-raise it after shutdown and the
        # process would die by the signal instead of exiting 0.
        if self._drain is not None or self._loop is None:
            log.warning("second %s: stopping now", signal.Signals(sig).name)
            self.should_exit = self.force_exit = True
            return
        self._loop.call_soon_threadsafe(self._start_drain, sig)

    def _start_drain(self, sig: int) -> None:
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._drain_then_exit(sig))

    async def _drain_then_exit(self, sig: int) -> None:
        sessions = self.sessions
        sessions.begin_drain()
        grace = self.grace_seconds
        log.info(
            "%s: draining, %d active session(s), grace %.0fs",
            signal.Signals(sig).name,
            sessions.active,
            grace,
        )
        if await sessions.wait_idle(grace):
            log.info("drained: no active session")
        else:
            log.warning("grace period over with %d active session(s); stopping them", sessions.active)
        self.should_exit = True


def serve(runner: Runner, sock: socket.socket) -> None:
    """Serve `runner`'s app on `sock` until a signal has drained it (DrainingServer)."""
    from .app import create_app

    host, port = sock.getsockname()[:2]
    server = DrainingServer(
        uvicorn.Config(
            create_app(runner),
            host=host,
            port=port,
            log_config=None,  # our logging setup (setup_logging) handles uvicorn's loggers too
            access_log=False,
            timeout_graceful_shutdown=3,  # sessions are already drained when uvicorn shuts down
            # A call's messages are 20 ms of audio (a few hundred bytes to a few KiB): a client may
            # not make the runner buffer uvicorn's default of 16 MiB per WebSocket message.
            ws_max_size=WS_MAX_MESSAGE_BYTES,
            lifespan="on",
            # uvloop and httptools (pinned with the runner): 15-30 % less CPU per text turn than
            # asyncio's loop and h11 (benchmarks/runner.py, docs/performance.md).
            loop="uvloop",
            http="httptools",
        ),
        runner.sessions,
        runner.drain_seconds,
    )
    gc.set_threshold(*GC_THRESHOLDS)
    server.run(sockets=[sock])
