"""The playground on a runner that requires an access token: the page asks for it, says plainly when
it is wrong, uses it for chat (Authorization: Bearer) and calls (the `aiassistant.bearer.<token>`
subprotocol), and keeps it nowhere but the tab's memory.

Needs the runner's access control (spec.access, AIASSISTANT_ACCESS_TOKENS); skipped, naming why,
on a runner without it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiassistant_contract.runner_config import RunnerConfig
from tests.fakes.openai_server import FakeOpenAI

from .conftest import StartRunner

pytestmark = [
    pytest.mark.skipif(
        "access" not in RunnerConfig.model_fields,
        reason="this runner has no access control (RunnerConfig.access, the access issue): nothing to test",
    ),
    pytest.mark.timeout(90),
]

TOKEN = "5f0c2a9e7b14d3c8a6e1f0b2d4c6a8e0"  # letters and digits: also valid as a subprotocol


async def test_token_is_asked_checked_and_kept_in_memory(
    page: Any, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(environ={"AIASSISTANT_ACCESS_TOKENS": TOKEN}, access={"anonymous": False})
    response = await page.goto(f"{runner.url}/playground")
    assert response.status == 200, "the page and its assets must load without a token: the page asks for it"
    await page.wait_for_selector("#token-panel:not([hidden])")
    assert await page.text_content("#error") == "This assistant needs an access token. Paste it above."

    await page.fill("#token", "not-the-token")
    await page.click("#token-use")
    await page.wait_for_function("() => (window.playground.state.error || '').includes('not accepted')")
    assert await page.is_visible("#token-panel")
    assert fake.chat_requests() == []

    await page.fill("#token", TOKEN)
    await page.click("#token-use")
    await page.wait_for_function("() => window.playground.state.info !== null")
    assert await page.is_hidden("#token-panel") and await page.is_hidden("#error")
    assert await page.text_content("#model") == "grok.grok-3"

    await page.fill("#chat-input", "Hello?")
    await page.press("#chat-input", "Enter")
    await page.wait_for_function("() => window.playground.state.chat.length === 2")
    assert len(fake.chat_requests()) == 1

    await page.click("#voice-start")
    await page.wait_for_function(
        f"() => window.playground.state.transcript.some(e => e.text === {json.dumps(fake.transcript)})",
        timeout=30_000,
    )

    # Nowhere but memory: no storage, no cookie, not in the URL; and the input field was cleared.
    kept = await page.evaluate(
        "() => [localStorage.length, sessionStorage.length, document.cookie, location.href,"
        " document.querySelector('#token').value]"
    )
    assert kept[:3] == [0, 0, ""] and TOKEN not in kept[3] and kept[4] == ""
