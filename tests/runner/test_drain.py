"""SIGTERM drain of the real `aiassistant-runner` process: readiness 503, new sessions refused,
the active session finishes, exit 0; and a session longer than the grace period does not hold the
pod forever."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import XAI_KEY
from tests.runner.process import RunnerProcess

ASK = {"messages": [{"role": "user", "content": "tell me a story"}], "stream": True}


def config(fake: FakeOpenAI) -> dict[str, object]:
    # The operator's config refuses loopback URLs; --base-url (the command line's choice) may name one.
    return {"engineModel": "grok.grok-3", "name": "drainer", "access": {"anonymous": True}}


def stream_text(url: str, out: list[str]) -> None:
    """POST a streaming chat and collect the text; runs in a thread while the test signals."""
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=ASK, timeout=30) as response:
            out.append(str(response.status_code))
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    for choice in json.loads(line[6:]).get("choices", []):
                        out.append(choice["delta"].get("content") or "")
    except httpx.TransportError:
        out.append("<cut>")


def wait_for(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def hold_stream(fake: FakeOpenAI, url: str, reply: Reply) -> tuple[threading.Thread, list[str]]:
    """Script `reply`, stream it from `url` in a thread, and return once it is streaming: the
    status, then the text so far, in the list (stream_text)."""
    fake.script(reply)
    out: list[str] = []
    held = threading.Thread(target=stream_text, args=(url, out), daemon=True)
    held.start()
    wait_for(lambda: len(out) > 2)
    return held, out


def test_sigterm_drains_the_active_session_then_exits_0(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    runner = RunnerProcess.with_config(
        tmp_path,
        config(threaded_fake),
        {"XAI_API_KEY": XAI_KEY},
        "--base-url",
        threaded_fake.base_url,
        "--drain-seconds",
        "10",
    )
    try:
        runner.wait_ready()
        held, out = hold_stream(
            threaded_fake, runner.url, Reply(text="once upon a time there was a pod", chunk_delay=0.25)
        )
        runner.terminate()
        wait_for(lambda: httpx.get(f"{runner.url}/readyz").status_code == 503)
        assert httpx.get(f"{runner.url}/readyz").json()["reason"] == "draining"
        refused = httpx.post(f"{runner.url}/v1/chat/completions", json={**ASK, "stream": False})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
        held.join(10)
        assert out[0] == "200" and "".join(out[1:]) == "once upon a time there was a pod"
        assert runner.proc.wait(10) == 0
        assert "SIGTERM: draining, 1 active session(s)" in runner.stderr()
        assert "drained: no active session" in runner.stderr()
    finally:
        runner.stop()


def test_grace_period_bounds_the_drain(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    runner = RunnerProcess.with_config(
        tmp_path,
        config(threaded_fake),
        {"XAI_API_KEY": XAI_KEY},
        "--base-url",
        threaded_fake.base_url,
        "--drain-seconds",
        "0.5",
    )
    try:
        runner.wait_ready()
        held, out = hold_stream(
            threaded_fake, runner.url, Reply(text="a very long answer indeed", chunk_delay=1)
        )
        started = time.monotonic()
        runner.terminate()
        assert runner.proc.wait(10) == 0
        assert time.monotonic() - started < 5  # grace 0.5 s + uvicorn's 3 s shutdown bound
        assert "grace period over with 1 active session(s)" in runner.stderr()
        held.join(5)
        assert out[-1] == "<cut>"
    finally:
        runner.stop()
