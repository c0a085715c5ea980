"""`aiassistant-runner`'s command line: start-up validation (a bad config exits 2 naming the bad
field), `--version`, `--help` (env vars from the contract's tables, endpoints, exit codes) and the
listen socket (a taken port exits 4; "serving" only once the socket listens)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from aiassistant_contract.engines import BUILTIN, EXTRA_MODELS_ENV
from aiassistant_contract.runner_config import (
    ACCESS_TOKENS_ENV,
    CONFIG_ENV,
    DRAIN_SECONDS_ENV,
    LOG_LEVEL_ENV,
    TWILIO_AUTH_TOKEN_ENV,
    RunnerConfig,
    fallback_key_env,
)
from aiassistant_contract.speech import STT_PROVIDERS, TTS_PROVIDERS
from aiassistant_runner import __version__
from aiassistant_runner.app import create_app
from aiassistant_runner.endpoints import ENDPOINTS
from aiassistant_runner.wiring import build_runner
from tests.runner.process import RUNNER, RunnerProcess, free_port

GOOD = {"engineModel": "grok.grok-3", "initPrompt": "hi"}


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # No key env var of this process leaks in; PYTHONPATH does, so the code under test runs.
    inherited = {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
    return subprocess.run(
        [RUNNER, *args],
        env={"PATH": "/usr/bin:/bin", **inherited, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        (
            {**GOOD, "tools": [{"name": "t", "url": "http://x", "timeoutSeconds": -1}]},
            "tools[0].timeoutSeconds",
            "greater than 0",
        ),
        ({**GOOD, "engineModel": "anthropic.claude-3"}, "engineModel", "Unsupported LLM service: anthropic"),
        ({**GOOD, "maxSessionsPerPod": 0}, "maxSessionsPerPod", "greater than or equal to 1"),
        ({**GOOD, "sttt": {}}, "sttt", "unknown field"),
    ],
)
def test_bad_config_file_names_the_field(
    tmp_path: Path, config: dict[str, object], field: str, words: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = run(["--config", str(path)], {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 2
    assert f"invalid runner config {path}:" in result.stderr
    assert f"  {field}: " in result.stderr and words in result.stderr


def test_config_from_env_and_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GOOD))
    result = run([], {"AIASSISTANT_CONFIG": str(path)})
    assert result.returncode == 2
    assert "XAI_API_KEY is not set" in result.stderr


def test_bad_base_url(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GOOD))
    result = run(["--config", str(path), "--base-url", "localhost:8080"], {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 2 and "--base-url: an http(s) URL is required" in result.stderr


def test_no_config_and_unreadable_config(tmp_path: Path) -> None:
    result = run([])
    assert result.returncode == 2 and "no config: pass --config FILE" in result.stderr
    result = run(["--config", str(tmp_path / "missing.json")])
    assert result.returncode == 2 and "cannot read runner config" in result.stderr
    (tmp_path / "bad.json").write_text("{")
    result = run(["--config", str(tmp_path / "bad.json")])
    assert result.returncode == 2 and "is not JSON" in result.stderr


def test_assistant_yaml_errors_name_the_spec_field(tmp_path: Path) -> None:
    assistant = {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "bot"},
        "spec": {**GOOD, "secretRef": {"name": "s", "key": "k"}, "tts": {"type": "polly"}},
    }
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump_all([{"kind": "Secret", "metadata": {"name": "s"}}, assistant]))
    result = run(["--assistant", str(path)], {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 2
    assert "spec.tts.type: " in result.stderr and "polly" in result.stderr
    (tmp_path / "none.yaml").write_text("kind: ConfigMap\n")
    result = run(["--assistant", str(tmp_path / "none.yaml")])
    assert result.returncode == 2 and "holds no AIAssistant" in result.stderr


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:8080/v1", "baseURL: host '127.0.0.1' is a loopback address"),
        ("http://169.254.169.254/latest", "baseURL: host '169.254.169.254' is a link-local"),
        ("file:///etc/passwd", "baseURL: scheme 'file' is not allowed"),
    ],
)
def test_the_operators_config_is_checked_again_for_urls(tmp_path: Path, url: str, words: str) -> None:
    """Defence in depth: a config from the operator (--config) may not name what the operator refuses."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**GOOD, "baseURL": url}))
    result = run(["--config", str(path)], {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 2
    assert f"invalid runner config {path}: " in result.stderr and words in result.stderr


def test_a_local_assistant_run_may_name_loopback_but_not_metadata(tmp_path: Path) -> None:
    assistant = {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": "local"},
        "spec": {"engineModel": "grok.grok-3", "baseURL": "http://169.254.169.254/v1"},
    }
    path = tmp_path / "assistant.yaml"
    path.write_text(yaml.safe_dump(assistant))
    result = run(["--assistant", str(path)], {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 2 and "baseURL: host '169.254.169.254' is a link-local" in result.stderr


def test_version() -> None:
    result = run(["--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"aiassistant-runner {__version__}\n"


def help_section(text: str, title: str) -> str:
    """The lines of one `--help` epilog section, e.g. "exit codes"."""
    match = re.search(rf"^{title}:\n((?:  .*\n?)+)", text, re.MULTILINE)
    assert match, f"no {title!r} section in --help:\n{text}"
    return match.group(1)


def test_help_lists_every_env_var_the_contract_names() -> None:
    """The key names come from the contract's tables: a provider added there and missing from
    --help fails here."""
    result = run(["--help"])
    assert result.returncode == 0, result.stderr
    env = help_section(result.stdout, "environment variables")
    keys = {t.key_env for t in BUILTIN.targets.values()}
    keys |= {p.key_env for p in (*STT_PROVIDERS.values(), *TTS_PROVIDERS.values())}
    assert {"XAI_API_KEY", "OPENAI_API_KEY", "DEEPGRAM_API_KEY"} <= keys  # the tables are what we think
    others = {CONFIG_ENV, DRAIN_SECONDS_ENV, LOG_LEVEL_ENV, ACCESS_TOKENS_ENV, TWILIO_AUTH_TOKEN_ENV}
    for name in sorted(keys | others | {EXTRA_MODELS_ENV, fallback_key_env(0)}):
        assert re.search(rf"^  {name}\s{{2,}}\S", env, re.MULTILINE), f"{name} not listed:\n{env}"
    # Each key line says which engine or speech provider uses it.
    for target in BUILTIN.targets.values():
        line = next(ln for ln in env.splitlines() if ln.split()[0] == target.key_env)
        assert f"{target.name} engine" in line
    for kind, providers in (("STT", STT_PROVIDERS), ("TTS", TTS_PROVIDERS)):
        for provider in providers.values():
            line = next(ln for ln in env.splitlines() if ln.split()[0] == provider.key_env)
            assert f"{provider.name} {kind}" in line


def test_help_lists_the_endpoints_and_exit_codes() -> None:
    result = run(["--help"])
    endpoints = help_section(result.stdout, "endpoints")
    for method, path, _ in ENDPOINTS:
        assert re.search(rf"^  {method}\s+{re.escape(path)}\s", endpoints, re.MULTILINE), path
    codes = help_section(result.stdout, "exit codes")
    assert [int(line.split()[0]) for line in codes.splitlines()] == [0, 1, 2, 3, 4]
    assert "cannot listen on HOST:PORT" in codes and "rejected its key" in codes


def test_endpoints_are_the_routes_the_app_serves() -> None:
    """ENDPOINTS (what --help and app.py's readers see) is the app's route table, both ways."""
    config = RunnerConfig.model_validate({**GOOD, "playground": True, "access": {"anonymous": True}})
    app = create_app(build_runner(config, environ={"XAI_API_KEY": "k" * 10}), prewarm=False)
    served = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/playground"):
            served.add(("GET", "/playground"))
        elif methods := getattr(route, "methods", None):
            served |= {(m, path) for m in methods if m != "HEAD"}
        else:  # a WebSocket route has no methods
            served.add(("WS", path))
    assert served == {(method, path) for method, path, _ in ENDPOINTS}


def serve_args(tmp_path: Path, host: str, port: int) -> list[str]:
    """A good config, no key check (no provider to ask), on host:port."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**GOOD, "access": {"anonymous": True}}))
    return ["--config", str(path), "--no-key-check", "--host", host, "--port", str(port)]


def test_a_taken_port_exits_4_naming_it_and_never_says_serving(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(serve_args(tmp_path, "127.0.0.1", port), {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 4, result.stderr
    assert f"aiassistant-runner: cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr
    assert "serving" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serving_is_logged_once_the_socket_listens(tmp_path: Path) -> None:
    """When the "serving ... on HOST:PORT" line is there, a connection to HOST:PORT is accepted."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**GOOD, "access": {"anonymous": True}}))
    runner = RunnerProcess(tmp_path, ["--config", str(config), "--no-key-check"], {"XAI_API_KEY": "k" * 10})
    try:
        deadline = time.monotonic() + 20
        while f"on 127.0.0.1:{runner.port}" not in runner.stderr():
            assert runner.proc.poll() is None, runner.stderr()
            assert time.monotonic() < deadline, runner.stderr()
            time.sleep(0.002)
        with socket.create_connection(("127.0.0.1", runner.port), timeout=5):
            pass  # refused (ConnectionRefusedError) if the line came before the socket listened
        serving = rf"serving assistant \S+ \(grok.grok-3\) on 127.0.0.1:{runner.port}"
        assert re.search(serving, runner.stderr())
        runner.wait_ready()
    finally:
        runner.stop()


def test_a_bad_listen_address_exits_4(tmp_path: Path) -> None:
    """An address of no interface of this host (TEST-NET-1): the same exit, naming it."""
    result = run(serve_args(tmp_path, "192.0.2.1", free_port()), {"XAI_API_KEY": "k" * 10})
    assert result.returncode == 4, result.stderr
    assert "aiassistant-runner: cannot listen on 192.0.2.1:" in result.stderr
    assert "serving" not in result.stderr
