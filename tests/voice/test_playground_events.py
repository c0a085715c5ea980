"""Playground calls get the transcript and turn events as protobuf MessageFrames; no other call
does (the existing clients keep receiving only audio and interruptions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.voice.clients import ProtobufCall, speech_pcm
from tests.voice.conftest import StartRunner

pytestmark = pytest.mark.timeout(60)


def events(call: ProtobufCall) -> list[dict[str, Any]]:
    return [json.loads(r.raw.message.data) for r in call.received if r.kind == "other" and r.raw.message.data]


@pytest.mark.parametrize(
    ("playground", "query", "expected"),
    [(True, "?events=playground", True), (True, "", False), (False, "?events=playground", False)],
)
async def test_events_only_for_playground_calls(
    playground: bool, query: str, expected: bool, fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner(playground=playground)
    async with ProtobufCall(f"{runner.ws_url}/v1/calls/protobuf{query}", 16_000) as call:
        await call.speak(speech_pcm())
        await call.wait_for(lambda c: c.audio_seconds() >= 0.38)  # the whole answer came back
        if expected:
            await call.wait_for(lambda c: any(e["type"] == "bot-text" for e in events(c)))
    got = events(call)
    if not expected:
        assert got == [] and all(r.kind in ("audio", "interruption") for r in call.received)
        return
    kinds = [e["type"] for e in got]
    assert {"type": "user-transcript", "text": fake.transcript} in got
    assert {"type": "bot-text", "text": fake.default_text} in got
    # In the order they happened: the caller's turn ends, the bot speaks, its words are spoken.
    assert kinds.index("user-stopped-speaking") < kinds.index("bot-started-speaking")
    assert kinds.count("user-transcript") == 1  # one message per frame, not one per pipeline hop
