"""Fixtures of the browser tests: Debian's headless Chromium driven by Playwright (its bundled
driver; no browser is ever downloaded), with a fake microphone fed from the speech fixture, and a
real runner serving the playground against the loopback OpenAI fake (STT, LLM and TTS).

Without /usr/bin/chromium (`apt-get install chromium`, which `make install` and `.ci/run` do) the
tests skip with the reason; under CI=true they fail instead, so CI never goes green without them.
"""

from __future__ import annotations

import os
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.app import create_app
from aiassistant_runner.wiring import Runner, build_runner
from tests.fakes.openai_server import FakeOpenAI
from tests.serving import Served, serve
from tests.voice.clients import speech_pcm
from tests.voice.conftest import ENVIRON, voice_config

CHROMIUM = Path(os.environ.get("AIASSISTANT_CHROMIUM", "/usr/bin/chromium"))
# Keep the browser off the network and its GPU; fake the microphone (and grant it) from a WAV.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
LEAD_SILENCE = 2.0  # seconds before the speech in the fake microphone's file (a greeting fits in)
TAIL_SILENCE = 4.0  # after it: the VAD ends the turn, then the mic stays quiet (the file plays once)
VIEWPORT = {"width": 1100, "height": 760}


@dataclass
class PlaygroundRunner:
    url: str  # http://127.0.0.1:<port>
    state: Runner


StartRunner = Callable[..., Awaitable[PlaygroundRunner]]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} missing: apt-get install chromium (make install does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speech fixture between silences, as the fake microphone plays it (16 kHz mono)."""
    path = tmp_path_factory.mktemp("microphone") / "speech-padded.wav"
    silence = lambda seconds: b"\0\0" * int(16_000 * seconds)  # noqa: E731
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(silence(LEAD_SILENCE) + speech_pcm() + silence(TAIL_SILENCE))
    return path


@pytest.fixture
async def browser(chromium: Path, microphone_wav: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(
            executable_path=str(chromium),
            # %noloop: the file plays once, then the microphone is silent (no endless repeats).
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={microphone_wav}%noloop"],
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(speech_ms=600, default_text="We open at nine. Anything else?") as server:
        yield server


@pytest.fixture
async def start_runner(fake: FakeOpenAI) -> AsyncIterator[StartRunner]:
    """`await start_runner(config=None, environ=None, **config_fields)` -> a runner served on a
    free port with the playground on (unless the fields say otherwise); stopped at teardown."""
    served: list[Served] = []

    async def start(
        config: RunnerConfig | None = None, environ: dict[str, str] | None = None, **fields: Any
    ) -> PlaygroundRunner:
        fields.setdefault("playground", True)
        state = build_runner(
            config or voice_config(fake, **fields), environ={**ENVIRON, **(environ or {})}, drain_seconds=5
        )
        server = await serve(create_app(state, prewarm=False))
        served.append(server)
        return PlaygroundRunner(f"http://127.0.0.1:{server.port}", state)

    yield start
    for server in served:
        await server.stop()
