"""API keys never reach a log line: the real runner at DEBUG, traffic with errors, stderr grepped."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import yaml

from aiassistant_runner.logs import MASK, Redactor, setup_logging
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.runner.conftest import XAI_KEY
from tests.runner.process import RunnerProcess

ACCESS_TOKEN = "access-token-for-the-log-test-3f9a"
AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}


def test_keys_never_logged(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    # An AIAssistant YAML pointed at a local LLM, as a developer runs one (--assistant, --base-url).
    assistant = {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "keyholder", "namespace": "bots"},
        "spec": {
            "engineModel": "grok.grok-3",
            "secretRef": {"name": "xai-key", "key": "api-key"},
            "tools": [{"name": "broken", "url": "http://127.0.0.1:9/x", "timeoutSeconds": 1}],
        },
    }
    path = tmp_path / "assistant.yaml"
    path.write_text(yaml.safe_dump(assistant))
    args = ["--assistant", str(path), "--base-url", threaded_fake.base_url, "--log-level", "DEBUG"]
    runner = RunnerProcess(
        tmp_path, args, {"XAI_API_KEY": XAI_KEY, "AIASSISTANT_ACCESS_TOKENS": ACCESS_TOKEN}
    )
    try:
        runner.wait_ready()
        threaded_fake.script(
            Reply(text="fine"),
            Reply(status=500),
            Reply(status=500),  # the client's one retry
            Reply(status=401),
            Reply(text="half", garbled=True),
            Reply(tool_calls=[ToolCall("broken", {"q": 1})]),
            Reply(text="the tool failed"),
        )
        ask = {"messages": [{"role": "user", "content": "hi"}]}
        for stream in (False, False, True, False):
            assert (
                httpx.post(
                    f"{runner.url}/v1/chat/completions", json={**ask, "stream": stream}, headers=AUTH
                ).status_code
                == 200
            )
        assert (
            httpx.post(f"{runner.url}/v1/tasks", json={"input": "use the tool"}, headers=AUTH).status_code
            == 200
        )
        assert (
            httpx.post(f"{runner.url}/v1/chat/completions", json={"messages": 1}, headers=AUTH).status_code
            == 400
        )
        wrong = {"Authorization": f"Bearer {ACCESS_TOKEN[:-1]}x"}
        assert httpx.post(f"{runner.url}/v1/chat/completions", json=ask, headers=wrong).status_code == 401
        runner.terminate()
        assert runner.proc.wait(10) == 0
    finally:
        runner.stop()
    sent = threaded_fake.chat_requests()
    assert sent and all(r.headers["Authorization"] == f"Bearer {XAI_KEY}" for r in sent)  # the key was used
    log = runner.stderr()
    assert "LLM request failed: HTTP 500" in log  # the errors were logged...
    assert "tool broken unreachable" in log
    assert " DEBUG " in log  # ...at DEBUG level
    assert XAI_KEY not in log  # ...without the key
    assert XAI_KEY[:12] not in log
    assert ACCESS_TOKEN[:12] not in log and "access: 1 bearer token(s)" in log  # nor a token


def test_redactor_masks_library_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """The last line of defence: a library echoing a key (stdlib logging or loguru) is masked."""
    env = {"XAI_API_KEY": XAI_KEY, "OPENAI_API_KEY": "short"}
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        redact = setup_logging("DEBUG", env)
        assert redact(f"Authorization: Bearer {XAI_KEY}") == f"Authorization: Bearer {MASK}"
        assert Redactor.from_env(env)("short words stay") == "short words stay"  # too short for a key
        try:
            raise RuntimeError(f"upstream said: bad key {XAI_KEY}")
        except RuntimeError:
            logging.getLogger("somelib").exception("request with key %s failed", XAI_KEY)
        from loguru import logger

        logger.debug("pipecat-style line with {}", XAI_KEY)
        err = capsys.readouterr().err
        assert "request with key *** failed" in err
        assert "upstream said: bad key ***" in err  # the traceback too
        assert "pipecat-style line with ***" in err
        assert XAI_KEY not in err
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
