"""Access to calls over real WebSockets: Twilio's X-Twilio-Signature (valid, invalid, missing), the
stream token of the other telephony providers on `start`, a flood of sockets that never send
`start` (the pod stays ready, no session slot is taken), and malformed `start` messages (1008 with
a reason, never a crash)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fakes.openai_server import FakeOpenAI
from tests.voice.clients import CallClient, ExotelCall, PlivoCall, TelnyxCall, TwilioCall
from tests.voice.conftest import StartRunner, VoiceRunner, wait_until

TWILIO_AUTH_TOKEN = "twilio-auth-token-4e7c1d9a02"
STREAM_TOKEN = "streamtoken7f3a9c2e1b"
PUBLIC = "wss://voice.example.com"
LOCKED = {
    "access": {"anonymous": False, "publicBaseURL": PUBLIC},
    "limits": {"callStartSeconds": 1},
}
ENV = {"AIASSISTANT_ACCESS_TOKENS": STREAM_TOKEN, "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN}
CLIENTS: dict[str, type[CallClient]] = {
    "twilio": TwilioCall,
    "telnyx": TelnyxCall,
    "plivo": PlivoCall,
    "exotel": ExotelCall,
}


def signature(token: str, url: str) -> str:
    """Twilio's documented scheme, written out here: base64(HMAC-SHA1(auth token, URL))."""
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


def http_url(runner: VoiceRunner) -> str:
    return runner.ws_url.replace("ws://", "http://")


def calls_started(runner: VoiceRunner) -> float:
    registry = runner.state.metrics.registry
    labels = {"assistant": runner.state.metrics.assistant, "kind": "call"}
    return registry.get_sample_value("aiassistant_sessions_total", labels) or 0.0


async def send_all(ws: Any, messages: list[Any]) -> None:
    """Send what a provider sends first; the runner may refuse (and close) before it is all sent."""
    with contextlib.suppress(ConnectionClosed):
        for message in messages:
            await ws.send(message if isinstance(message, str) else json.dumps(message))


async def closed(ws: Any) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code, ws.close_reason


async def test_twilio_signature_valid_invalid_missing(fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner(environ=ENV, **LOCKED)
    path = "/v1/calls/twilio?tenant=acme"
    good = {"X-Twilio-Signature": signature(TWILIO_AUTH_TOKEN, PUBLIC + path)}
    async with TwilioCall(f"{runner.ws_url}{path}", 8000, headers=good) as call:
        await wait_until(lambda: runner.state.sessions.active == 1)  # admitted: the pipeline runs
        await call.close()
    await wait_until(lambda: runner.state.sessions.active == 0)

    wrong_url = {"X-Twilio-Signature": signature(TWILIO_AUTH_TOKEN, PUBLIC + "/v1/calls/twilio")}  # no query
    wrong_key = {"X-Twilio-Signature": signature("another-account", PUBLIC + path)}
    for headers, reason in (
        (wrong_url, "invalid X-Twilio-Signature"),
        (wrong_key, "invalid X-Twilio-Signature"),
        ({}, "missing X-Twilio-Signature"),
    ):
        async with connect(f"{runner.ws_url}{path}", additional_headers=headers) as ws:
            await send_all(ws, TwilioCall("", 8000).opening())  # a perfect `start`, unauthenticated
            code, text = await closed(ws)
        assert (code, text) == (1008, f"{reason} (or a bearer token)" if not headers else reason)
    assert calls_started(runner) == 1  # the refused ones never held a session


@pytest.mark.parametrize("kind", ["twilio", "telnyx", "plivo", "exotel"])
async def test_stream_token_on_start(kind: str, fake: FakeOpenAI, start_runner: StartRunner) -> None:
    runner = await start_runner(environ={"AIASSISTANT_ACCESS_TOKENS": f"old\n{STREAM_TOKEN}"}, **LOCKED)
    url = f"{runner.ws_url}/v1/calls/{kind}"
    cls = CLIENTS[kind]
    async with cls(url, 8000, parameters={"aiassistantToken": STREAM_TOKEN}) as call:  # type: ignore[call-arg]
        await wait_until(lambda: runner.state.sessions.active == 1)
        await call.close()
    await wait_until(lambda: runner.state.sessions.active == 0)
    for parameters, reason in (
        ({"aiassistantToken": "guess"}, "invalid aiassistantToken"),
        ({}, "missing credentials"),
    ):
        async with connect(url) as ws:
            await send_all(ws, cls("", 8000, parameters=parameters).opening())  # type: ignore[call-arg]
            code, text = await closed(ws)
        assert code == 1008 and text is not None and text.startswith(reason), text
    assert calls_started(runner) == 1


async def test_a_socket_flood_without_start_leaves_the_pod_ready(
    fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner(environ=ENV, maxSessionsPerPod=5, **LOCKED)
    started = time.monotonic()
    sockets = [await connect(f"{runner.ws_url}/v1/calls/telnyx") for _ in range(50)]
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"{http_url(runner)}/readyz")
        assert ready.status_code == 200 and ready.json()["activeSessions"] == 0
        results = await asyncio.gather(*(closed(ws) for ws in sockets))
        assert time.monotonic() - started < 5  # callStartSeconds: 1
        assert {r for r in results} == {(1008, "no 'start' event within 1s")}
        assert (await http.get(f"{http_url(runner)}/readyz")).status_code == 200
    # A real call still gets in afterwards.
    async with TelnyxCall(
        f"{runner.ws_url}/v1/calls/telnyx", 8000, parameters={"aiassistantToken": STREAM_TOKEN}
    ) as call:
        await wait_until(lambda: runner.state.sessions.active == 1)
        await call.close()
    assert calls_started(runner) == 1


START = {"event": "start", "streamSid": "MZ1"}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({**START, "start": ["a", "list"]}, "start must be an object"),
        ({**START, "start": "a string"}, "start must be an object"),
        ({**START, "start": 42}, "start must be an object"),
        ({**START, "start": {"streamSid": {"nested": 1}}}, "lacks start.streamSid"),
        ({**START, "start": {"streamSid": "MZ1", "callSid": ["x"]}}, "start.callSid must be a string"),
        ({**START, "start": {"streamSid": "x" * 1000}}, "lacks start.streamSid"),
        ("[" * 60_000, "no 'start' event in the first 5 messages"),
        ("x" * 70_000, "handshake message over 65536 bytes"),
    ],
)
async def test_malformed_twilio_start_closes_1008(
    message: Any, reason: str, fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner()  # anonymous: only the message is wrong
    async with connect(f"{runner.ws_url}/v1/calls/twilio", max_size=None) as ws:
        await send_all(ws, [message] * (5 if isinstance(message, str) and message.startswith("[") else 1))
        code, text = await closed(ws)
    assert code == 1008 and text is not None and reason in text, text
    assert runner.state.sessions.active == 0 and calls_started(runner) == 0


@pytest.mark.parametrize(
    "start",
    [{"media_format": "PCMU"}, {"media_format": {"encoding": "G729"}}, {"media_format": {"encoding": 7}}],
)
async def test_malformed_telnyx_start_closes_1008(
    start: dict[str, Any], fake: FakeOpenAI, start_runner: StartRunner
) -> None:
    runner = await start_runner()
    async with connect(f"{runner.ws_url}/v1/calls/telnyx") as ws:
        await send_all(ws, [{"event": "start", "stream_id": "s1", "start": start}])
        code, text = await closed(ws)
    assert code == 1008 and text is not None and text.startswith("telnyx 'start' message"), text
    assert runner.state.sessions.active == 0
