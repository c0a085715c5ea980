"""`aiassistant-runner --workers 2`, the real processes: one port, one maxSessionsPerPod, one set of
metrics, one drain; a worker that dies stops the pod (exit 1), a supervisor that dies stops its
workers."""

from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import XAI_KEY
from tests.runner.process import RunnerProcess
from tests.runner.test_drain import ASK, hold_stream, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grok-assistant.yaml"


def start(tmp_path: Path, fake: FakeOpenAI, *args: str, max_sessions: int = 20) -> RunnerProcess:
    """A runner of two workers, ready, with both workers started; its $TMPDIR is tmp_path/tmp."""
    config = {
        "engineModel": "grok.grok-3",
        "name": "pair",
        "access": {"anonymous": True},
        "maxSessionsPerPod": max_sessions,
        "workers": 2,
    }
    (tmp_path / "tmp").mkdir()
    env = {"XAI_API_KEY": XAI_KEY, "TMPDIR": str(tmp_path / "tmp")}
    runner = RunnerProcess.with_config(tmp_path, config, env, "--base-url", fake.base_url, *args)
    runner.wait_ready()
    wait_for(
        lambda: len(worker_pids(runner)) == 2 and runner.stderr().count("Application startup complete") == 2
    )
    return runner


def worker_pids(runner: RunnerProcess) -> list[int]:
    """The runner's worker processes (its spawned children)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if ppid == runner.proc.pid and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie has exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value; `labels` in the order of the text (the multiprocess collector sorts them)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}\{{assistant=\"default/pair\",{wanted}\}} (\S+)$", text, re.M)
    assert match, f"{name} {labels} not in /metrics"
    return float(match.group(1))


def fresh_get(url: str) -> httpx.Response:
    """A request on a new connection: the kernel may hand it to either worker."""
    with httpx.Client() as client:
        return client.get(url)


def ask(url: str) -> int:
    with httpx.Client(timeout=30) as client:
        return client.post(f"{url}/v1/chat/completions", json={**ASK, "stream": False}).status_code


def test_workers_share_one_session_limit_and_one_set_of_metrics(
    tmp_path: Path, threaded_fake: FakeOpenAI
) -> None:
    runner = start(tmp_path, threaded_fake, max_sessions=2)
    try:
        threaded_fake.script(*[Reply(text="slow", first_token_delay=2.0) for _ in range(2)])
        with ThreadPoolExecutor(8) as pool:
            asked = [pool.submit(ask, runner.url) for _ in range(8)]
            wait_for(lambda: len(threaded_fake.chat_requests()) == 2)
            # Any worker answers for the pod: both places are taken.
            for _ in range(6):
                ready = fresh_get(f"{runner.url}/readyz")
                assert ready.status_code == 503
                assert ready.json() == {
                    "status": "not ready",
                    "activeSessions": 2,
                    "maxSessions": 2,
                    "reason": "at capacity",
                }
            statuses = sorted(future.result() for future in asked)
        assert statuses == [200, 200] + [503] * 6  # two places in the pod, not two per worker
        assert len(threaded_fake.chat_requests()) == 2
        for _ in range(6):  # whichever worker renders /metrics, it counts the pod's sessions
            text = fresh_get(f"{runner.url}/metrics").text
            assert metric(text, "aiassistant_sessions_total", kind="text") == 2
            assert metric(text, "aiassistant_sessions_rejected_total", kind="text", reason="at capacity") == 6
            assert metric(text, "aiassistant_active_sessions", kind="text") == 0
            # The start's key check ran once, in the supervisor, and is counted once.
            assert (
                metric(
                    text,
                    "aiassistant_key_checks_total",
                    env="XAI_API_KEY",
                    provider="grok",
                    result="accepted",
                )
                == 1
            )
    finally:
        runner.stop()


def test_sigterm_drains_every_worker_then_exits_0(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    runner = start(tmp_path, threaded_fake, "--drain-seconds", "10")
    try:
        story = Reply(text="once upon a time there were two workers", chunk_delay=0.25)
        held, out = hold_stream(threaded_fake, runner.url, story)
        runner.terminate()
        wait_for(lambda: fresh_get(f"{runner.url}/readyz").status_code == 503)
        for _ in range(4):  # both workers refuse new sessions
            refused = httpx.post(f"{runner.url}/v1/chat/completions", json={**ASK, "stream": False})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
        held.join(10)
        assert out[0] == "200" and "".join(out[1:]) == "once upon a time there were two workers"
        assert runner.proc.wait(15) == 0
        log = runner.stderr()
        assert "worker-0 aiassistant_runner: SIGTERM: draining" in log
        assert "worker-1 aiassistant_runner: SIGTERM: draining" in log
        assert list((tmp_path / "tmp").iterdir()) == []  # the metrics directory went with the pod
    finally:
        runner.stop()


def test_a_worker_that_dies_drains_the_others_and_exits_1(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    runner = start(tmp_path, threaded_fake, "--drain-seconds", "10")
    try:
        first, second = worker_pids(runner)
        os.kill(first, signal.SIGKILL)
        assert runner.proc.wait(15) == 1
        assert re.search(
            rf"worker-\d \(pid {first}\) exited with -9; draining the other workers", runner.stderr()
        )
        wait_for(lambda: not alive(second))
    finally:
        runner.stop()


def test_workers_whose_supervisor_dies_drain_and_exit(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    runner = start(tmp_path, threaded_fake)
    pids = worker_pids(runner)
    try:
        runner.proc.kill()
        runner.proc.wait(5)
        wait_for(lambda: not any(alive(pid) for pid in pids), timeout=15)
        assert "the supervisor is gone; draining" in runner.stderr()
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        runner.stop()


def test_workers_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    runner = RunnerProcess(tmp_path, ["--assistant", str(EXAMPLE), "--workers", "17"], {})
    try:
        assert runner.proc.wait(15) == 2
        assert "argument --workers: 17 is not a number of workers from 1 to 16" in runner.stderr()
    finally:
        runner.stop()
