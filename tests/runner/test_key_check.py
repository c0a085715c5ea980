"""The key check at start, on the real `aiassistant-runner` process against the loopback fakes: a key
the provider refuses stops the start (exit 3) with a termination message naming the env var and the
provider's answer, never the key; an accepted key, an unreachable provider or an outage does not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.key_check import Probe, probes
from tests.fakes.openai_server import FakeOpenAI
from tests.runner.conftest import OPENAI_KEY, XAI_KEY
from tests.runner.process import RunnerProcess, free_port

WRONG = "xai-wrong-key-0b9d77e1"


def start(
    tmp: Path, fake_url: str, env: dict[str, str], engine: str = "grok.grok-4.3"
) -> tuple[RunnerProcess, Path]:
    log = tmp / "termination-log"
    config = {"engineModel": engine, "baseURL": fake_url, "name": "checker"}
    # The fakes are on loopback, which an operator's config may not name: the flag lets a test do it.
    args = ("--termination-log", str(log), "--allow-loopback-urls")
    return RunnerProcess.with_config(tmp, config, env, *args), log


def exit_code(runner: RunnerProcess, timeout: float = 15) -> int:
    return runner.proc.wait(timeout)


def models_requests(fake: FakeOpenAI) -> list:
    return [r for r in fake.requests if r.path == "/v1/models"]


def test_a_wrong_xai_key_exits_with_a_termination_message(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    threaded_fake.key, threaded_fake.rejects_as = XAI_KEY, "xai"  # api.x.ai answers 400 to a wrong key
    runner, log = start(tmp_path, threaded_fake.base_url, {"XAI_API_KEY": WRONG})
    try:
        assert exit_code(runner) == 3
        message = log.read_text()
        assert message.startswith("KeyRejected: XAI_API_KEY was rejected by grok (GET http://127.0.0.1:")
        assert "/v1/models: 400" in message and "Incorrect API key provided: xa***e1" in message
        assert WRONG not in message and WRONG not in runner.stderr()
        assert message in runner.stderr()
        (probe,) = models_requests(threaded_fake)
        assert probe.headers["Authorization"] == f"Bearer {WRONG}"
    finally:
        runner.stop()


def test_a_wrong_openai_key_exits_with_the_401(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    threaded_fake.key = OPENAI_KEY
    runner, log = start(
        tmp_path, threaded_fake.base_url, {"OPENAI_API_KEY": "sk-wrong-1234"}, "openai.gpt-4o"
    )
    try:
        assert exit_code(runner) == 3
        message = log.read_text()
        assert message.startswith("KeyRejected: OPENAI_API_KEY was rejected by openai (")
        assert ": 401 " in message and "invalid_api_key" in message and "sk-wrong-1234" not in message
    finally:
        runner.stop()


def metric_line(runner: RunnerProcess, result: str) -> str:
    text = httpx.get(f"{runner.url}/metrics").text
    return next(
        line
        for line in text.splitlines()
        if line.startswith("aiassistant_key_checks_total") and f'result="{result}"' in line
    )


def test_an_accepted_key_starts_and_is_counted(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    threaded_fake.key = XAI_KEY
    runner, log = start(tmp_path, threaded_fake.base_url, {"XAI_API_KEY": XAI_KEY})
    try:
        runner.wait_ready()
        assert len(models_requests(threaded_fake)) == 1
        assert metric_line(runner, "accepted").endswith(" 1.0")
        assert 'env="XAI_API_KEY"' in metric_line(runner, "accepted")
        assert not log.exists()
    finally:
        runner.stop()


@pytest.mark.parametrize("outage", ["unreachable", "503"])
def test_an_unreachable_or_failing_provider_does_not_stop_the_start(
    outage: str, tmp_path: Path, threaded_fake: FakeOpenAI
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1" if outage == "unreachable" else threaded_fake.base_url
    threaded_fake.models_status = 503
    runner, log = start(tmp_path, url, {"XAI_API_KEY": XAI_KEY})
    try:
        runner.wait_ready()
        assert metric_line(runner, "unverified").endswith(" 1.0")
        assert "could not be verified, starting anyway" in runner.stderr()
        assert not log.exists()
    finally:
        runner.stop()


def test_probes_one_per_env_var_and_skip_with_a_reason() -> None:
    config = RunnerConfig.model_validate(
        {
            "engineModel": "openai.gpt-4o",
            "stt": {"type": "xai", "baseURL": "ws://127.0.0.1:9000"},
            "tts": {"type": "openai"},  # shares the engine's OPENAI_API_KEY: one probe
        }
    )
    assert probes(config) == [
        Probe("openai", "OPENAI_API_KEY", "https://api.openai.com/v1/models"),
        Probe("xai", "XAI_API_KEY", "http://127.0.0.1:9000/v1/models"),
    ]
    (grok, deepgram) = probes(
        RunnerConfig.model_validate({"engineModel": "grok.grok-4.3", "stt": {"type": "deepgram"}})
    )
    assert grok == Probe("grok", "XAI_API_KEY", "https://api.x.ai/v1/models")
    with_fallback = RunnerConfig.model_validate(
        {"engineModel": "grok.grok-4.3", "fallbacks": [{"engineModel": "grok.grok-4.20-0309-non-reasoning"}]}
    )
    assert probes(with_fallback)[1] == Probe(
        "grok", "AIASSISTANT_FALLBACK_1_API_KEY", "https://api.x.ai/v1/models"
    )
    assert (deepgram.env, deepgram.url) == ("DEEPGRAM_API_KEY", None) and "scopes" in deepgram.skip


def test_an_unset_fallback_key_fails_the_start_naming_it(tmp_path: Path, threaded_fake: FakeOpenAI) -> None:
    config = {
        "engineModel": "grok.grok-4.3",
        "baseURL": threaded_fake.base_url,
        "fallbacks": [{"engineModel": "openai.gpt-4o", "baseURL": threaded_fake.base_url}],
    }
    runner = RunnerProcess.with_config(tmp_path, config, {"XAI_API_KEY": XAI_KEY}, "--allow-loopback-urls")
    try:
        assert exit_code(runner) == 2
        assert "AIASSISTANT_FALLBACK_1_API_KEY is not set" in runner.stderr()
    finally:
        runner.stop()
