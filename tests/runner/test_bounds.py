"""Bounded everything, on a real runner over real HTTP: body size (413), messages per request and
JSON depth (400, never 500), one deadline per text turn (504, also for non-streamed requests whose
upstream trickles keep-alives), a client that leaves frees its session at once, and an upstream 200
that is not the protocol is an LLM error (counted; 502 for tasks), never an empty success."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from aiassistant_runner.bounds import ClientGone, until_done
from aiassistant_runner.llm_client import MAX_ANSWER_BYTES
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import Runner, StartRunner
from tests.voice.conftest import wait_until

ASK = {"messages": [{"role": "user", "content": "hi"}]}


def counter(runner: Runner, name: str) -> float:
    labels = {"assistant": runner.state.metrics.assistant}
    return runner.state.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/tasks"])
async def test_bodies_over_the_limit_are_413(path: str, start_runner: StartRunner) -> None:
    runner = await start_runner(limits={"maxBodyBytes": 65536})
    big = (
        {"input": "x" * 70_000}
        if path == "/v1/tasks"
        else {"messages": [{"role": "user", "content": "x" * 70_000}]}
    )
    response = await runner.client.post(path, json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    async def chunked():  # no Content-Length: refused while reading, not after
        for _ in range(100):
            yield b" " * 4096

    response = await runner.client.post(path, content=chunked(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


async def test_a_5_mb_body_is_refused_by_default(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    body = {"messages": [{"role": "user", "content": "x" * 5_000_000}]}
    assert (await runner.client.post("/v1/chat/completions", json=body)).status_code == 413
    assert fake.chat_requests() == []  # never forwarded


async def test_too_many_messages_and_too_deep_json_are_400(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(limits={"maxMessages": 10})
    many = {"messages": [{"role": "user", "content": "x"}] * 11}
    response = await runner.client.post("/v1/chat/completions", json=many)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    assert "at most 10 messages" in response.json()["error"]["message"]
    for depth in (33, 100_000):  # the default maxJsonDepth is 32; 100,000 deep was a 500 once
        deep = '{"messages": ' + "[" * depth + "]" * depth + "}"
        for path in ("/v1/chat/completions", "/v1/tasks"):
            response = await runner.client.post(
                path, content=deep, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, (path, depth, response.text)
            assert "nested deeper than 32 levels" in response.json()["error"]["message"]
    assert fake.chat_requests() == []


@pytest.mark.parametrize("stream", [False, True])
async def test_one_deadline_per_text_turn(stream: bool, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(limits={"turnTimeoutSeconds": 1})
    # A stream's keep-alives reset its read timeout; a whole answer has none: the turn bounds both.
    fake.script(
        Reply(text="too late", keepalive_seconds=5 if stream else 0, first_token_delay=0 if stream else 5)
    )
    started = time.monotonic()
    response = await runner.client.post("/v1/chat/completions", json={**ASK, "stream": stream})
    assert time.monotonic() - started < 3
    if stream:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        assert events[-1]["error"]["type"] == "timeout"
    else:
        assert response.status_code == 504
        assert response.json()["error"] == {
            "message": "the answer did not finish within 1s (limits.turnTimeoutSeconds)",
            "type": "timeout",
            "param": None,
            "code": "turn_timeout",
        }
    await wait_until(lambda: runner.state.sessions.active == 0, 2)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/tasks"])
async def test_a_client_that_leaves_frees_its_session_at_once(
    path: str, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner()
    fake.script(Reply(text="slow", first_token_delay=30))
    body = {"input": "x"} if path == "/v1/tasks" else ASK
    async with httpx.AsyncClient(base_url=runner.url) as leaving:
        request = asyncio.create_task(leaving.post(path, json=body, timeout=30))
        await wait_until(lambda: runner.state.sessions.active == 1, 5)
        request.cancel()  # the client goes away (its connection closes)
        left = time.monotonic()
    await wait_until(lambda: runner.state.sessions.active == 0, 5)
    assert time.monotonic() - left < 2


HTML = Reply(raw=("text/html", "<html><body>Welcome to our login portal</body></html>"))
EMPTY = Reply(raw=("text/plain", ""))


@pytest.mark.parametrize(
    ("reply", "stream"),
    [
        (HTML, False),
        (HTML, True),
        (EMPTY, False),
        (EMPTY, True),
        (Reply(text="half an answer", no_finish=True), True),
        (
            Reply(
                raw=("application/json", '{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}')
            ),
            False,
        ),
        (
            Reply(raw=("application/json", '{"id": "chatcmpl-1", "choices": [{"message": {"role": "assis')),
            False,
        ),
        (Reply(raw=("application/json", " " * (MAX_ANSWER_BYTES + 1))), False),
    ],
    ids=[
        "html",
        "html-stream",
        "empty",
        "empty-stream",
        "no-finish-stream",
        "no-message",
        "cut-json",
        "too-big",
    ],
)
async def test_an_upstream_200_that_is_not_the_protocol_is_an_llm_error(
    reply: Reply, stream: bool, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    """Streamed (a `stream: true` request) or whole (any other text turn, a task): never an empty
    success."""
    runner = await start_runner()
    fake.script(reply, reply)  # (the turn does not retry a 200)
    chat = await runner.client.post("/v1/chat/completions", json={**ASK, "stream": stream})
    assert chat.status_code == 200
    if stream:
        deltas = [json.loads(line[6:]) for line in chat.text.splitlines() if line.startswith("data: {")]
        assert "Sorry" in "".join(
            d["choices"][0]["delta"].get("content") or "" for d in deltas if d["choices"]
        )
    else:
        assert chat.headers["X-AIAssistant-Finish"] == "error"
        assert "Sorry" in chat.json()["choices"][0]["message"]["content"]
        task = await runner.client.post("/v1/tasks", json={"input": "do it"})
        assert task.status_code == 502 and task.json()["status"] == "error"
    failed = 1 if stream else 2
    assert counter(runner, "aiassistant_llm_errors_total") == failed
    assert counter(runner, "aiassistant_llm_protocol_errors_total") == failed


class Connection:
    """What `until_done` reads of a request: ASGI `receive`, which answers http.disconnect once
    `leave()` is called (in addition to the HTTP tests above, which cover the same over sockets)."""

    def __init__(self) -> None:
        self._gone = asyncio.Event()

    def leave(self) -> None:
        self._gone.set()

    async def receive(self) -> dict[str, str]:
        await self._gone.wait()
        return {"type": "http.disconnect"}


class Work:
    """A coroutine to bound that records whether it finished or was cancelled."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.cancelled, self.finished = seconds, False, False

    async def run(self) -> str:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        return "answer"


async def test_until_done_returns_the_answer_and_leaves_no_task() -> None:
    work, before = Work(0), len(asyncio.all_tasks())
    assert await until_done(Connection(), work.run(), 5) == "answer"  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert work.finished and len(asyncio.all_tasks()) == before  # the watcher is gone


async def test_until_done_cancels_the_work_at_the_deadline() -> None:
    work = Work(30)
    with pytest.raises(TimeoutError):
        await until_done(Connection(), work.run(), 0.05)  # type: ignore[arg-type]
    assert work.cancelled


async def test_until_done_cancels_the_work_when_the_client_leaves() -> None:
    work, connection = Work(30), Connection()
    asyncio.get_running_loop().call_later(0.05, connection.leave)
    with pytest.raises(ClientGone):
        await until_done(connection, work.run(), 30)  # type: ignore[arg-type]
    assert work.cancelled
    await asyncio.sleep(0)  # the caller is not left cancelled: it goes on awaiting
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_until_done_lets_an_outside_cancel_through() -> None:
    work = Work(30)
    bounded = asyncio.create_task(until_done(Connection(), work.run(), 30))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    bounded.cancel()  # e.g. the server stopping: not a client that left
    with pytest.raises(asyncio.CancelledError):
        await bounded
    assert work.cancelled
