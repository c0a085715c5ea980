"""`aiassistant-runner --assistant examples/voice-assistant.yaml`, as a developer runs it, serves the
playground by default: a browser call against the real console script and the loopback fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aiassistant_contract.assistant import AIAssistantSpec
from tests.fakes.openai_server import FakeOpenAI
from tests.helm import ROOT
from tests.runner.process import RunnerProcess
from tests.voice.conftest import ENVIRON

pytestmark = pytest.mark.timeout(120)


def local_example(tmp_path: Path, fake: FakeOpenAI) -> Path:
    """examples/voice-assistant.yaml with its speech pointed at the fake (local runs may name
    loopback URLs); the LLM is pointed there with --base-url."""
    document = yaml.safe_load((ROOT / "examples" / "voice-assistant.yaml").read_text())
    document["spec"]["stt"]["baseURL"] = fake.base_url
    document["spec"]["tts"]["baseURL"] = fake.base_url
    if "access" in AIAssistantSpec.model_fields:  # the runner has access control: serve anyone here
        document["spec"]["access"] = {"anonymous": True}
    path = tmp_path / "voice-assistant.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


async def test_local_run_serves_the_playground(tmp_path: Path, fake: FakeOpenAI, page: Any) -> None:
    example = local_example(tmp_path, fake)
    runner = RunnerProcess(tmp_path, ["--assistant", str(example), "--base-url", fake.base_url], ENVIRON)
    try:
        await asyncio.to_thread(runner.wait_ready)
        assert f"playground: http://localhost:{runner.port}/playground" in runner.stderr()
        await page.goto(f"{runner.url}/playground")
        await page.wait_for_function("() => window.playground.state.info !== null")
        assert await page.text_content("#model") == "grok.grok-4.3"
        await page.click("#voice-start")
        # The greeting first, then the caller's words and the answer.
        await page.wait_for_function(
            "() => window.playground.state.transcript.filter(e => e.who === 'assistant').length >= 2",
            timeout=40_000,
        )
        state = await page.evaluate("() => window.playground.state")
        who = [(e["who"], e["text"]) for e in state["transcript"]]
        assert who[0] == ("assistant", "Hello, thanks for calling ACME. How can I help?"), who
        assert ("user", fake.transcript) in who
        assert state["audioChunks"] > 0 and state["error"] is None
        spoken = [r.body["input"] for r in fake.requests if r.path == "/v1/audio/speech"]
        assert spoken[0] == "Hello, thanks for calling ACME. How can I help?"
    finally:
        runner.stop()


async def test_no_playground_flag(tmp_path: Path, fake: FakeOpenAI) -> None:
    example = local_example(tmp_path, fake)
    args = ["--assistant", str(example), "--base-url", fake.base_url, "--no-playground"]
    runner = RunnerProcess(tmp_path, args, ENVIRON)
    try:
        await asyncio.to_thread(runner.wait_ready)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{runner.url}/playground")).status_code == 404
    finally:
        runner.stop()
