"""`aiassistant-runner` start-up validation: a bad config exits 2 naming the bad field."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.runner.process import RUNNER

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
