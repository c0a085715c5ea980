"""Admission of sessions (calls, text conversations, tasks): capacity, drain, and their counts.

One `Sessions` per process. A session is admitted with `async with sessions.open(kind)`; it is refused
with `CapacityError` while the pod drains (SIGTERM) or when `maxSessionsPerPod` sessions are active
in the pod (all its worker processes: pod_sessions.py), which the server answers with 503 (HTTP) or
close code 1013 "try again later" (WebSocket).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .metrics import SESSION_KINDS, Metrics, SessionKind
from .pod_sessions import PodSessions

POD_IDLE_POLL_SECONDS = 0.1


class CapacityError(Exception):
    """A session was refused; `reason` is "draining" or "at capacity"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"runner is {reason}; try another replica")
        self.reason = reason


@dataclass
class Session:
    """An admitted session. `fail()` marks it failed even if it ends without raising."""

    kind: SessionKind
    started: float = field(default_factory=time.monotonic)
    failed: bool = False

    def fail(self) -> None:
        self.failed = True


class Sessions:
    """Counts this process's active sessions per kind; refuses new ones when draining or when the
    pod is full. `pod`: the pod's count (default: a pod of this one process)."""

    def __init__(
        self, max_sessions: int, metrics: Metrics | None = None, pod: PodSessions | None = None
    ) -> None:
        self.max_sessions = max_sessions
        self._metrics = metrics
        self._pod = pod if pod is not None else PodSessions.single()
        self._active: dict[SessionKind, int] = dict.fromkeys(SESSION_KINDS, 0)
        self._draining = False
        self._grace_over = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """Sessions active in this process."""
        return sum(self._active.values())

    @property
    def pod_active(self) -> int:
        """Sessions active in the pod (every worker process)."""
        return self._pod.total

    @property
    def draining(self) -> bool:
        return self._draining

    def not_ready_reason(self) -> str | None:
        if self._draining:
            return "draining"
        if self._pod.total >= self.max_sessions:
            return "at capacity"
        return None

    def _refuse(self, kind: SessionKind, reason: str) -> CapacityError:
        if self._metrics:
            self._metrics.session_rejected(kind, reason)
        return CapacityError(reason)

    def check(self, kind: SessionKind) -> None:
        """Raise CapacityError (and count the refusal) if a `kind` session would be refused now;
        for a response that must be refused before it starts (a stream's 200 goes out first)."""
        reason = self.not_ready_reason()
        if reason is not None:
            raise self._refuse(kind, reason)

    @asynccontextmanager
    async def open(self, kind: SessionKind) -> AsyncIterator[Session]:
        """Admit one session for the duration of the block, or raise CapacityError."""
        if self._draining:
            raise self._refuse(kind, "draining")
        if not self._pod.try_add(self.max_sessions):
            raise self._refuse(kind, "at capacity")
        session = Session(kind)
        self._active[kind] += 1
        self._idle.clear()
        if self._metrics:
            self._metrics.session_started(kind)
        try:
            yield session
        except BaseException:
            session.failed = True
            raise
        finally:
            self._pod.remove()
            self._active[kind] -= 1
            if self.active == 0:
                self._idle.set()
            if self._metrics:
                self._metrics.session_ended(
                    kind, failed=session.failed, seconds=time.monotonic() - session.started
                )

    def begin_drain(self) -> None:
        """Refuse new sessions from now on (readiness goes 503); active ones continue."""
        self._draining = True

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 (a deadline, not a cancel scope)
        """Wait until no session is active in the pod, at most `timeout` seconds; True if idle. A
        drain's wait that runs out sets `grace_over`: the sessions still active are then ended by
        the server's shutdown (calls log that as their end reason, `drain`). Waiting for the other
        workers' sessions too keeps this one answering (503) until the pod stops as a whole."""
        try:
            await asyncio.wait_for(self._pod_idle(), timeout)
        except TimeoutError:
            self._grace_over = self._draining
            return False
        return True

    async def _pod_idle(self) -> None:
        await self._idle.wait()
        # The other workers' sessions count in shared memory: no event reaches across processes.
        while self._pod.total:  # noqa: ASYNC110
            await asyncio.sleep(POD_IDLE_POLL_SECONDS)

    @property
    def grace_over(self) -> bool:
        return self._grace_over
