"""`workers: N`: N runner processes serving one listening socket, so one pod uses more than a core.

Python runs one thread of Python code at a time, so one runner process is one event loop on at most
one core; at 800 concurrent conversations the loop's queue sets the p99 (docs/performance.md). The
supervisor (the CLI's process: the container's PID 1) binds the socket, then starts N workers by
`spawn`: each imports afresh, wires its own Runner (wiring.py) and serves the socket (server.py),
and the kernel hands each new connection to one of them.

The workers share:
- the session count, for maxSessionsPerPod (pod_sessions.py);
- the metrics, in prometheus_client's multiprocess mode: a directory made for this run
  (PROMETHEUS_MULTIPROC_DIR, under $TMPDIR); the /metrics of any worker answers for the pod.

Signals: SIGTERM or SIGINT to the supervisor goes on to every worker, which drains as a one-process
runner does (a second signal stops them at once), answering 503 until the pod has no session left,
so all stop together; the supervisor exits 0 once all have drained.
A worker that dies makes the others drain and the supervisor exit 1, so the kubelet restarts the
container (with its back-off) instead of a restart loop in here. A worker whose supervisor dies
drains and exits.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from aiassistant_contract.runner_config import RunnerConfig

from . import key_check
from .logs import setup_logging
from .metrics import MULTIPROCESS_DIR_ENV
from .pod_sessions import PodSessions, shared_slots

log = logging.getLogger("aiassistant_runner")

# How a worker may end while the pod stops: drained (0), or stopped by the forwarded signal
# before it served.
_STOPPED = {0, -signal.SIGTERM, -signal.SIGINT}


@dataclass(frozen=True)
class WorkerPlan:
    """What each worker needs to wire and serve the assistant (pickled to it)."""

    config: RunnerConfig
    log_level: str
    drain_seconds: float | None = None
    # The start's key checks, counted in worker 0's metrics only (the pod's metrics sum workers).
    key_checks: list[key_check.Outcome] = field(default_factory=list)


def worker_main(plan: WorkerPlan, index: int, sock: socket.socket, slots: Any) -> None:
    """One worker process: wire the runner and serve `sock` until drained."""
    from .server import serve
    from .wiring import build_runner

    os.setpgrp()  # the supervisor forwards signals: a terminal's Ctrl-C must not come twice
    setup_logging(plan.log_level, process=f"worker-{index}")
    _drain_when_orphaned()
    runner = build_runner(plan.config, drain_seconds=plan.drain_seconds, pod=PodSessions.shared(slots, index))
    if index == 0:
        key_check.count(plan.key_checks, runner.metrics)
    serve(runner, sock)


def _drain_when_orphaned() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        log.warning("the supervisor is gone; draining")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def supervise(plan: WorkerPlan, sock: socket.socket, workers: int) -> int:
    """Run `workers` worker processes on `sock` until they have drained; the process's exit code."""
    return Supervisor(plan, sock, workers).run()


class Supervisor:
    """Starts the workers, forwards signals to them, and waits for them all to exit."""

    def __init__(self, plan: WorkerPlan, sock: socket.socket, workers: int) -> None:
        self._metrics_dir = tempfile.mkdtemp(prefix="aiassistant-metrics-")
        os.environ[MULTIPROCESS_DIR_ENV] = self._metrics_dir  # the workers import prometheus_client with it
        # Held here: a started Process drops its arguments, and the shared memory would go with them
        # before the workers have unpickled it.
        self._slots = shared_slots(workers)
        context = multiprocessing.get_context("spawn")
        self.processes = [
            context.Process(target=worker_main, args=(plan, i, sock, self._slots), name=f"worker-{i}")
            for i in range(workers)
        ]
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        try:
            for process in self.processes:
                process.start()
            failed = self._wait()
        finally:
            for process in self.processes:
                if process.pid is not None and process.exitcode is None:  # started, still running
                    process.kill()
                    process.join()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
        return 1 if failed else 0

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        self.stopping = True
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):  # exited since
                    os.kill(process.pid, sig)

    def _wait(self) -> bool:
        """Wait for every worker to exit; True if one ended other than by the pod's stop."""
        from prometheus_client import multiprocess

        failed = False
        running = {process.sentinel: process for process in self.processes}
        while running:
            ended = multiprocessing.connection.wait(list(running))
            for sentinel in [s for s in running if s in ended]:
                process = running.pop(sentinel)
                process.join()  # its exit code is set once it is reaped
                multiprocess.mark_process_dead(process.pid)  # its live gauges leave the pod's sums
                if self.stopping and process.exitcode in _STOPPED:
                    continue
                failed = True
                log.error(
                    "%s (pid %d) exited with %s; draining the other workers, then exit 1",
                    process.name,
                    process.pid,
                    process.exitcode,
                )
                if not self.stopping:
                    self._forward(signal.SIGTERM, None)
        return failed
