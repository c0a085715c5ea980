"""Access control of a real runner on a real socket: bearer tokens (two at once, for a rotation),
the OpenAI-shaped 401, the open probes, no-credentials and anonymous modes, the per-address limit
of failed authentications, the refusal metric, and the WebSocket header and subprotocol forms."""

from __future__ import annotations

import json

import openai
import pytest
from websockets.asyncio.client import connect

from aiassistant_runner.access import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX
from tests.fakes.openai_server import FakeOpenAI
from tests.runner.conftest import Runner, StartRunner

OLD, NEW = "old-token-5b0c1f7e2a", "new-token-9e4d3a8b61"
TOKENS = {"AIASSISTANT_ACCESS_TOKENS": f"{OLD}\n\n  {NEW}  \n"}  # blank lines and spaces ignored
ASK = {"messages": [{"role": "user", "content": "hi"}]}
LOCKED = {"access": {"anonymous": False}}


def client(runner: Runner, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{runner.url}/v1", api_key=key, max_retries=0)


def refused(runner: Runner, endpoint: str, reason: str) -> float:
    value = runner.state.metrics.registry.get_sample_value(
        "aiassistant_access_refused_total",
        {"assistant": runner.state.metrics.assistant, "endpoint": endpoint, "reason": reason},
    )
    return value or 0.0


async def test_either_of_two_rotated_tokens_is_accepted_and_others_refused(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(environ=TOKENS, **LOCKED)
    for token in (OLD, NEW):  # the OpenAI client sends its api_key as the bearer token
        answer = await client(runner, token).chat.completions.create(model="m", messages=ASK["messages"])  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    with pytest.raises(openai.AuthenticationError) as wrong:
        await client(runner, NEW[:-1] + "x").chat.completions.create(model="m", messages=ASK["messages"])  # type: ignore[arg-type]
    assert wrong.value.status_code == 401
    assert wrong.value.body == {  # OpenAI's error shape, no credential in it
        "message": "invalid bearer token",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    missing = await runner.client.post("/v1/chat/completions", json=ASK)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    task = await runner.client.post("/v1/tasks", json={"input": "x"}, headers={"Authorization": "Basic Zm9v"})
    assert task.status_code == 401
    assert (refused(runner, "text", "invalid"), refused(runner, "text", "missing")) == (1, 1)
    assert refused(runner, "task", "invalid") == 1
    assert len(fake.chat_requests()) == 2  # a refused request never reaches the LLM (nor spends its key)


async def test_probes_and_metrics_stay_open(start_runner: StartRunner) -> None:
    runner = await start_runner(environ=TOKENS, **LOCKED)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await runner.client.get(path)).status_code == 200, path
    for path in ("/v1/models", "/docs", "/anything"):  # every other path is guarded
        assert (await runner.client.get(path)).status_code == 401, path


async def test_no_credentials_and_not_anonymous_refuses_everything_and_says_why(
    start_runner: StartRunner,
) -> None:
    runner = await start_runner(**LOCKED)
    response = await runner.client.post(
        "/v1/chat/completions", json=ASK, headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "no_credentials_configured" and "spec.access.tokenSecretRef" in error["message"]
    assert (await runner.client.get("/readyz")).status_code == 200  # the pod itself is fine
    async with connect(ws_url(runner)) as ws:
        await ws.wait_closed()
    assert ws.close_code == 1008 and "no credentials configured" in (ws.close_reason or "")
    assert refused(runner, "text", "no_credentials") == 1 and refused(runner, "call", "no_credentials") == 1


async def test_anonymous_serves_without_credentials(start_runner: StartRunner) -> None:
    runner = await start_runner(environ=TOKENS, access={"anonymous": True})
    response = await runner.client.post("/v1/chat/completions", json=ASK)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


async def test_failed_authentications_are_limited_per_address(start_runner: StartRunner) -> None:
    runner = await start_runner(
        environ=TOKENS, access={"anonymous": False}, limits={"authFailuresPerMinute": 3}
    )
    wrong = {"Authorization": "Bearer guess"}
    codes = [
        (await runner.client.post("/v1/chat/completions", json=ASK, headers=wrong)).status_code
        for _ in range(5)
    ]
    assert codes == [401, 401, 401, 429, 429]
    # Blocked means blocked: even the right token waits (a guesser cannot tell it found one).
    right = await runner.client.post(
        "/v1/chat/completions", json=ASK, headers={"Authorization": f"Bearer {NEW}"}
    )
    assert right.status_code == 429 and right.headers["Retry-After"] == "60"
    assert refused(runner, "text", "rate_limited") == 3


def ws_url(runner: Runner) -> str:
    return runner.url.replace("http://", "ws://") + "/v1/calls/protobuf"


async def test_call_socket_needs_a_token_by_header_or_subprotocol(start_runner: StartRunner) -> None:
    # No stt/tts: an authenticated call is refused for that (1008 "need stt and tts"), after auth.
    runner = await start_runner(environ=TOKENS, **LOCKED)
    async with connect(ws_url(runner)) as ws:
        await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (
        1008,
        f"missing credentials: Authorization: Bearer, or subprotocol {TOKEN_SUBPROTOCOL_PREFIX}<token>",
    )
    async with connect(ws_url(runner), additional_headers={"Authorization": "Bearer nope"}) as ws:
        await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (1008, "invalid bearer token")
    async with connect(ws_url(runner), additional_headers={"Authorization": f"Bearer {OLD}"}) as ws:
        await ws.wait_closed()
    assert ws.close_code == 1008 and "need stt and tts" in (ws.close_reason or "")  # got past access
    subprotocols = [SUBPROTOCOL, f"{TOKEN_SUBPROTOCOL_PREFIX}{NEW}"]
    async with connect(ws_url(runner), subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == SUBPROTOCOL  # the token is never echoed back
        await ws.wait_closed()
    assert ws.close_code == 1008 and "need stt and tts" in (ws.close_reason or "")
    assert refused(runner, "call", "missing") == 1 and refused(runner, "call", "invalid") == 1
    assert json.dumps(runner.state.metrics.render().decode()).count(NEW) == 0


async def test_the_playground_page_is_open_its_facts_are_not(start_runner: StartRunner) -> None:
    runner = await start_runner(environ=TOKENS, playground=True, **LOCKED)
    assert (await runner.client.get("/playground")).status_code == 200  # the page asks for the token
    assert (await runner.client.get("/playground/playground.js")).status_code == 200
    assert (await runner.client.get("/playground/info")).status_code == 401
    info = await runner.client.get("/playground/info", headers={"Authorization": f"Bearer {NEW}"})
    assert info.status_code == 200
