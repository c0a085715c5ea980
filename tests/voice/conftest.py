"""Fixtures of the voice tests: the loopback OpenAI-compatible fake (STT, LLM, TTS), a real runner
served by uvicorn on 127.0.0.1, and WebSocket clients that speak the protobuf and Twilio protocols
with the speech fixture.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.app import create_app
from aiassistant_runner.llm_policy import VOICE_POLICY, LLMPolicy
from aiassistant_runner.wiring import Runner, build_runner
from tests.fakes.openai_server import FakeOpenAI
from tests.serving import Served, serve

XAI_KEY = "xai-voice-test-key-3c9e1a"
OPENAI_KEY = "sk-voice-test-key-7b2d40"
ENVIRON = {"XAI_API_KEY": XAI_KEY, "OPENAI_API_KEY": OPENAI_KEY}
PROMPT = "You are the ACME phone assistant."


@dataclass
class VoiceRunner:
    ws_url: str  # ws://127.0.0.1:<port>
    state: Runner


StartRunner = Callable[..., Awaitable[VoiceRunner]]


def voice_config(fake: FakeOpenAI, **fields: Any) -> RunnerConfig:
    data: dict[str, Any] = {
        "engineModel": "grok.grok-3",
        "baseURL": fake.base_url,
        "initPrompt": PROMPT,
        "stt": {"type": "openai", "baseURL": fake.base_url},
        "tts": {"type": "openai", "baseURL": fake.base_url},
        "transport": {"serializers": ["protobuf", "twilio", "telnyx", "plivo", "exotel"]},
        "access": {"anonymous": True},  # tests/voice/test_call_access.py sets its own
        **fields,
    }
    return RunnerConfig.model_validate(data)


async def wait_until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(speech_ms=400) as server:
        yield server


@pytest.fixture
async def start_runner(fake: FakeOpenAI) -> AsyncIterator[StartRunner]:
    """`await start_runner(**config_fields)` -> a runner served on a free port; stopped at teardown."""
    served: list[Served] = []

    async def start(
        config: RunnerConfig | None = None,
        environ: dict[str, str] | None = None,
        llm_timeout: float | None = None,
        **fields: Any,
    ) -> VoiceRunner:
        env = {**ENVIRON, **(environ or {})}
        policy = VOICE_POLICY if llm_timeout is None else LLMPolicy(read_seconds=llm_timeout)
        state = build_runner(
            config or voice_config(fake, **fields), environ=env, drain_seconds=5, voice_policy=policy
        )
        server = await serve(create_app(state))
        served.append(server)
        return VoiceRunner(f"ws://127.0.0.1:{server.port}", state)

    yield start
    for server in served:
        await server.stop()


@pytest.fixture
def pipecat_log() -> Iterator[list[str]]:
    """Pipecat's loguru lines during the test. loguru's default sink keeps the stderr it found at
    import, which pytest's capture may have swapped since, so capfd alone can miss them."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG")
    yield lines
    logger.remove(sink)
