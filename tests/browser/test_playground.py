"""The playground page in a real headless Chromium against a real runner and the loopback fakes.

Voice: the fake microphone speaks the fixture; the page streams it as protobuf frames, the runner's
VAD and the fake STT turn it into the transcript, the fake LLM answers, the fake TTS audio comes back
and the page plays it. Text: a streamed chat round. Both assert on the page's state and on what the
fakes received.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply

from .conftest import StartRunner

pytestmark = pytest.mark.timeout(90)


async def page_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("() => JSON.parse(JSON.stringify(window.playground.state))")
    return state


async def open_playground(page: Any, url: str) -> None:
    response = await page.goto(f"{url}/playground")
    assert response.status == 200
    await page.wait_for_function("() => window.playground && window.playground.state.info !== null")


async def test_voice_round_trip(page: Any, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    await open_playground(page, runner.url)
    assert await page.text_content("#model") == "grok.grok-3"

    await page.click("#voice-start")
    # The fake STT's transcript of the fixture, then the fake LLM's answer as the TTS speaks it.
    await page.wait_for_function(
        "() => window.playground.state.transcript.some(e => e.who === 'assistant')", timeout=30_000
    )
    # Both sentences' audio (600 ms each from the fake TTS) arrive; some of it has played to the end.
    await page.wait_for_function(
        "() => window.playground.state.audioSeconds > 1.0 && window.playground.state.audioChunksPlayed > 0",
        timeout=15_000,
    )
    state = await page_state(page)
    assert state["error"] is None
    assert state["voice"] == "live"
    assert state["transcript"][0] == {"who": "user", "text": fake.transcript}
    assert any(e["who"] == "assistant" and "We open at nine." in e["text"] for e in state["transcript"])
    assert state["firstAudioMs"] is not None and 0 < state["firstAudioMs"] < 10_000
    assert fake.transcript in await page.text_content("#voice-transcript")
    assert "chunks" in await page.text_content("#audio-played")

    # What the fakes received: the microphone's speech as an upload, the transcript as the user's
    # turn, the answer's text to speak.
    uploads = [r for r in fake.requests if r.path == "/v1/audio/transcriptions"]
    assert uploads and uploads[0].body["file"] > 16_000  # > 0.5 s of 16-bit 16 kHz audio
    chat = fake.chat_requests()[0].body
    assert chat["messages"][-1] == {"role": "user", "content": fake.transcript}
    spoken = [r.body["input"] for r in fake.requests if r.path == "/v1/audio/speech"]
    assert any("We open at nine." in text for text in spoken)

    await page.click("#voice-stop")
    await page.wait_for_function("() => window.playground.state.voice === 'ended'")
    await wait_sessions(runner.state, 0)


async def test_speaking_interrupts_the_bot(page: Any, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    """The caller speaks over a long greeting: the runner signals the interruption, the page drops
    what it had queued, and the caller's turn is answered."""
    fake.speech_ms = 6000  # each spoken sentence lasts 6 s
    runner = await start_runner(greeting="Hello, thanks for calling ACME. How can I help?")
    await open_playground(page, runner.url)
    await page.click("#voice-start")
    await page.wait_for_function("() => window.playground.state.interruptions > 0", timeout=30_000)
    state = await page_state(page)
    assert state["audioChunksDropped"] >= 1  # queued greeting audio was stopped, not played out
    assert 0 < state["audioSecondsAtInterruption"] < 5.0  # the 6 s greeting was cut short
    assert await page.text_content("#interruptions") == str(state["interruptions"])
    await page.wait_for_function(
        f"() => window.playground.state.transcript.some(e => e.text === {json.dumps(fake.transcript)})",
        timeout=30_000,
    )
    spoken = [r.body["input"] for r in fake.requests if r.path == "/v1/audio/speech"]
    assert spoken[0] == "Hello, thanks for calling ACME. How can I help?"


async def wait_sessions(state: Any, active: int, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if state.sessions.active == active:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{state.sessions.active} active sessions, expected {active}")


async def test_text_chat_streams(page: Any, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    await open_playground(page, runner.url)
    fake.script(Reply(text="The first words arrive before the last ones do.", chunk_delay=0.15))
    await page.fill("#chat-input", "Do you stream?")
    await page.press("#chat-input", "Enter")
    # Streaming: the answer is on the page partly before it is complete.
    await page.wait_for_function(
        "() => { const t = document.querySelector('#chat-log li.assistant .text');"
        " return t && t.textContent.length > 0 && !t.textContent.endsWith('do.'); }"
    )
    await page.wait_for_function(
        "() => (document.querySelector('#chat-log li.assistant .text') || {}).textContent"
        " === 'The first words arrive before the last ones do.'"
    )
    state = await page_state(page)
    assert state["error"] is None
    assert state["chat"] == [
        {"role": "user", "content": "Do you stream?"},
        {"role": "assistant", "content": "The first words arrive before the last ones do."},
    ]
    assert state["answeredBy"] in ("grok-3", "grok.grok-3")  # the body's model, or the header's
    assert await page.text_content("#answered-by") == state["answeredBy"]
    assert state["firstTokenMs"] is not None
    assert (await page.text_content("#first-token")).endswith(" ms")
    # The fake LLM got the assistant's prompt first and the page's message streamed.
    body = fake.chat_requests()[-1].body
    assert body["stream"] is True
    assert body["messages"][-1] == {"role": "user", "content": "Do you stream?"}

    # A second round sends the whole history (the endpoint is stateless).
    await page.fill("#chat-input", "And again?")
    await page.press("#chat-input", "Enter")
    await page.wait_for_function("() => window.playground.state.chat.length === 4")
    roles = [m["role"] for m in fake.chat_requests()[-1].body["messages"]]
    assert roles[-3:] == ["user", "assistant", "user"]


async def test_errors_in_plain_words(page: Any, start_runner: StartRunner) -> None:
    """A draining runner refuses chats (503) and calls (close 1013): the page says why, plainly."""
    runner = await start_runner()
    await open_playground(page, runner.url)
    runner.state.sessions.begin_drain()
    await page.fill("#chat-input", "Hello?")
    await page.press("#chat-input", "Enter")
    await page.wait_for_selector("#error:not([hidden])")
    assert (
        await page.text_content("#error") == "The assistant is busy or shutting down. Try again in a moment."
    )
    assert (await page_state(page))["chat"] == []  # the refused message is not in the history

    await page.click("#voice-start")
    await page.wait_for_function("() => (window.playground.state.error || '').includes('cannot take a call')")
    assert "runner is draining" in await page.text_content("#error")
    assert await page.text_content("#voice-state") == "Not connected"


async def test_playground_is_404_unless_enabled(page: Any, start_runner: StartRunner) -> None:
    runner = await start_runner(playground=False)
    for path in ("/playground", "/playground/playground.js", "/playground/info"):
        response = await page.goto(f"{runner.url}{path}")
        assert response.status == 404, path


async def test_assets_are_all_served_by_the_runner(page: Any, start_runner: StartRunner) -> None:
    """No CDN: every request the page makes goes to the runner, and the CSP allows nothing else."""
    runner = await start_runner()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto(f"{runner.url}/playground")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await page.wait_for_function("() => window.playground && window.playground.state.info !== null")
    assert requested and all(url.startswith(runner.url) for url in requested), requested
    assert {u.removeprefix(runner.url) for u in requested} >= {
        "/playground",
        "/playground/playground.js",
        "/playground/playground.css",
        "/playground/info",
    }
    unknown = await page.goto(f"{runner.url}/playground/../server.py")
    assert unknown.status == 404
    info = json.loads(await (await page.goto(f"{runner.url}/playground/info")).text())
    assert info["engineModel"] == "grok.grok-3" and info["voice"] is True


async def test_token_unusable_on_a_websocket_is_explained(page: Any, start_runner: StartRunner) -> None:
    """A token a browser cannot offer as a subprotocol (here with spaces) gets a sentence, not a hang."""
    runner = await start_runner()
    await open_playground(page, runner.url)
    await page.evaluate("() => { document.querySelector('#token-panel').hidden = false; }")
    await page.fill("#token", "has spaces in it")
    await page.click("#token-use")
    await page.wait_for_selector("#token-panel", state="hidden")  # HTTP took it (this runner checks none)
    await page.click("#voice-start")
    await page.wait_for_function("() => window.playground.state.error !== null")
    assert "letters and digits only" in await page.text_content("#error")
    assert await page.text_content("#voice-state") == "Not connected"
    assert runner.state.sessions.active == 0


async def test_chat_shows_the_fallback_that_answered(
    page: Any, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    """The primary fails (503 and its retry): the page names the fallback model that answered."""
    async with FakeOpenAI(default_text="Answer from the fallback.", key="sk-fallback-5d1e") as backup:
        runner = await start_runner(
            environ={"AIASSISTANT_FALLBACK_1_API_KEY": "sk-fallback-5d1e"},
            fallbacks=[{"engineModel": "openai.gpt-4o", "baseURL": backup.base_url}],
        )
        await open_playground(page, runner.url)
        fake.script(Reply(status=503), Reply(status=503))
        await page.fill("#chat-input", "Anyone there?")
        await page.press("#chat-input", "Enter")
        await page.wait_for_function("() => window.playground.state.chat.length === 2")
        state = await page_state(page)
        assert state["chat"][1]["content"] == "Answer from the fallback."
        assert state["answeredBy"] == "gpt-4o"
        assert await page.text_content("#answered-by") == "gpt-4o"
        assert await page.text_content("#model") == "grok.grok-3"  # the assistant's own model
        assert len(backup.chat_requests()) == 1


async def test_realtime_voice_call(page: Any, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    """A Grok speech-to-speech assistant (voice.mode realtime, the xAI realtime fake): the page
    names the realtime model, and shows both sides of the call and plays Grok's audio."""
    from tests.voice.conftest import XAI_KEY
    from tests.voice.test_xai_realtime import realtime_config
    from tests.voice.xai_realtime_fake import FakeXAIRealtime, RealtimeReply

    async with FakeXAIRealtime(key=XAI_KEY) as rt:
        config = realtime_config(fake, rt).model_copy(update={"playground": True})
        runner = await start_runner(config)
        rt.script(RealtimeReply(text="ACME, how can I help?"), RealtimeReply(text="We open at nine."))
        await open_playground(page, runner.url)
        assert "grok-voice-think-fast-1.0" in await page.text_content("#speech")
        await page.click("#voice-start")
        await page.wait_for_function(
            "() => window.playground.state.transcript.some(e => e.text === 'We open at nine.')"
            " && window.playground.state.audioChunks > 0",
            timeout=30_000,
        )
        state = await page_state(page)
        assert {"who": "user", "text": rt.transcript} in state["transcript"]
        assert state["transcript"][0] == {"who": "assistant", "text": "ACME, how can I help?"}  # Grok opens
        assert state["transcript"][-1] == {"who": "assistant", "text": "We open at nine."}
        assert state["error"] is None
        (session,) = rt.sessions
        assert session.audio_bytes > 16_000  # the fake microphone's speech reached Grok
        await page.click("#voice-stop")
        await wait_sessions(runner.state, 0)
