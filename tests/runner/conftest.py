"""Fixtures of the runner's server-side tests: the loopback fakes and a real runner on a real socket.

`start_runner(...)` serves the FastAPI app with uvicorn on 127.0.0.1:<free port> inside the test's
event loop, so the tests talk HTTP to it exactly as a client in the cluster would (the `openai`
package included), and can still look at the runner's state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner import wiring
from aiassistant_runner.app import create_app
from aiassistant_runner.llm_policy import LLMPolicy
from aiassistant_runner.wiring import build_runner
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.tool_server import ToolServer
from tests.serving import Served, serve

XAI_KEY = "xai-test-key-5f3a9c2e71"
OPENAI_KEY = "sk-test-key-8d1b4e6a90"
ENGINES = {
    "grok": ("grok.grok-3", "grok-3", {"XAI_API_KEY": XAI_KEY}, XAI_KEY),
    "openai": ("openai.gpt-4o", "gpt-4o", {"OPENAI_API_KEY": OPENAI_KEY}, OPENAI_KEY),
}
PROMPT = "You are the ACME support assistant."


@dataclass
class Runner:
    url: str  # http://127.0.0.1:<port>
    state: wiring.Runner
    client: httpx.AsyncClient
    model: str  # what the fake must see, e.g. grok-3
    key: str  # the LLM key the fake must see as Bearer


StartRunner = Callable[..., Awaitable[Runner]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def tool_server() -> AsyncIterator[ToolServer]:
    async with ToolServer() as server:
        yield server


@pytest.fixture
async def start_runner(fake: FakeOpenAI) -> AsyncIterator[StartRunner]:
    """`await start_runner(engine="grok", **config_fields)` -> a served Runner; stopped at teardown."""
    served: list[tuple[Served, httpx.AsyncClient]] = []

    async def start(
        engine: str = "grok", llm_timeout: float = 30.0, environ: dict[str, str] | None = None, **fields: Any
    ) -> Runner:
        engine_model, model, keys, key = ENGINES[engine]
        environ = {**keys, **(environ or {})}
        # Anonymous unless a test sets access: these tests are about the endpoints, tests/runner/
        # test_access.py about access.
        data = {
            "engineModel": engine_model,
            "baseURL": fake.base_url,
            "initPrompt": PROMPT,
            "access": {"anonymous": True},
            **fields,
        }
        config = RunnerConfig.model_validate(data)
        state = build_runner(
            config, environ=environ, drain_seconds=5, text_policy=LLMPolicy(read_seconds=llm_timeout)
        )
        server = await serve(create_app(state))
        url = f"http://127.0.0.1:{server.port}"
        client = httpx.AsyncClient(base_url=url, timeout=20)
        served.append((server, client))
        return Runner(url, state, client, model, key)

    yield start
    for server, client in served:
        await client.aclose()
        await server.stop()


@pytest.fixture
def threaded_fake() -> Iterator[FakeOpenAI]:
    """A FakeOpenAI on its own event loop thread, for tests that block (subprocess runners)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(FakeOpenAI().start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
