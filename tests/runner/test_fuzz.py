"""Property-based fuzz of a real runner on real sockets (hypothesis): whatever a client sends,
`/v1/chat/completions` and `/v1/tasks` never answer 500 or more (1,000 bodies each), and the call
socket never crashes (no 1006/1011 close, no unhandled exception in the app) nor leaks a session
(500 sockets). The runner and the fake LLM run on their own event loop thread; hypothesis drives
blocking clients against them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.app import create_app
from aiassistant_runner.wiring import Runner, build_runner
from tests.fakes.openai_server import FakeOpenAI
from tests.serving import Served, serve

HTTP_BODIES = 1000  # per endpoint: 2,000 in all
SOCKETS = 500


@dataclass
class Background:
    url: str
    state: Runner
    errors: list[logging.LogRecord]
    http: httpx.Client  # one keep-alive connection pool for every body


class _Errors(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def runner() -> Iterator[Background]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    fake = run(FakeOpenAI(default_text="ok").start())
    config = RunnerConfig.model_validate(
        {
            "engineModel": "grok.grok-3",
            "baseURL": fake.base_url,
            "stt": {"type": "openai", "baseURL": fake.base_url},
            "tts": {"type": "openai", "baseURL": fake.base_url},
            "transport": {"serializers": ["protobuf", "twilio", "telnyx", "plivo", "exotel"]},
            "access": {"anonymous": True},
            "maxSessionsPerPod": 1000,
            "limits": {"callStartSeconds": 0.3, "maxBodyBytes": 65536},
        }
    )
    environ = {"XAI_API_KEY": "xai-fuzz-key-0123", "OPENAI_API_KEY": "sk-fuzz-key-4567"}
    state = build_runner(config, environ=environ, drain_seconds=1)
    errors: list[logging.LogRecord] = []
    handler = _Errors(errors)
    for name in ("uvicorn.error", "aiassistant_runner"):
        logging.getLogger(name).addHandler(handler)

    async def start() -> Served:
        return await serve(create_app(state, prewarm=False), ws_max_size=1_048_576)

    served = run(start())
    with httpx.Client(timeout=30) as http:
        yield Background(f"127.0.0.1:{served.port}", state, errors, http)
    run(served.stop())
    run(fake.stop())
    for name in ("uvicorn.error", "aiassistant_runner"):
        logging.getLogger(name).removeHandler(handler)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


# -- what clients may send ----------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "robot"]) | json_values
message = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": st.text(max_size=30)
        | json_values
        | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": json_values})),
        "tool_calls": json_values,
        "tool_call_id": json_values,
    },
)
chat_body = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(message, max_size=4) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": json_values,
        "model": json_values,
        "n": json_values,
        "tools": json_values,
        # request parameters (chat_parameters.py): a bad one is a 400, never a 5xx
        "temperature": json_values,
        "max_completion_tokens": json_values,
        "stop": json_values,
        "seed": json_values,
        "response_format": json_values
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema"]) | json_values},
            optional={"json_schema": json_values},
        ),
    },
)
task_body = st.fixed_dictionaries(
    {},
    optional={"input": st.text(max_size=30) | json_values, "parameters": json_values, "extra": json_values},
)
raw = st.binary(max_size=200) | st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe", b"", b"null"])


def encoded(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _post(runner: Background, path: str, body: bytes) -> None:
    response = runner.http.post(
        f"http://{runner.url}{path}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, (body[:300], response.status_code, response.text[:300])


@settings(max_examples=HTTP_BODIES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=chat_body | json_values | raw)
def test_fuzz_chat_completions_never_500(runner: Background, body: Any) -> None:
    _post(runner, "/v1/chat/completions", encoded(body))


@settings(max_examples=HTTP_BODIES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=task_body | json_values | raw)
def test_fuzz_tasks_never_500(runner: Background, body: Any) -> None:
    _post(runner, "/v1/tasks", encoded(body))


# -- call sockets ------------------------------------------------------------------------------
ids = st.text(min_size=1, max_size=8) | json_values  # mostly not a usable stream id
start_fields = st.dictionaries(
    st.sampled_from(
        [
            "streamSid",
            "callSid",
            "streamId",
            "callId",
            "stream_sid",
            "call_sid",
            "media_format",
            "customParameters",
        ]
    ),
    ids,
    max_size=4,
)
start_message = st.fixed_dictionaries(
    {"event": st.just("start")},
    optional={
        "start": start_fields | json_values,
        "stream_id": ids,
        "streamSid": ids,
        "extra_headers": json_values,
    },
)
socket_message = start_message | json_values.map(json.dumps) | st.binary(max_size=64) | st.text(max_size=64)


@dataclass
class Tally:
    sockets: int = 0
    codes: dict[int | None, int] | None = None


TALLY = Tally(codes={})


@settings(max_examples=SOCKETS, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    serializer=st.sampled_from(["twilio", "telnyx", "plivo", "exotel", "protobuf", "nope"]),
    messages=st.lists(socket_message, max_size=3),
    wait=st.booleans(),
)
def test_fuzz_call_socket_never_crashes(
    runner: Background, serializer: str, messages: list[Any], wait: bool
) -> None:
    code: int | None = None
    try:
        with connect(f"ws://{runner.url}/v1/calls/{serializer}", open_timeout=10, close_timeout=2) as ws:
            with contextlib.suppress(ConnectionClosed):
                for item in messages:
                    ws.send(json.dumps(item) if isinstance(item, dict) else item)
                if wait:  # wait for the runner to decide (refuse, or time out the handshake)
                    with contextlib.suppress(TimeoutError):
                        while True:
                            ws.recv(timeout=1)
            code = ws.close_code
    except InvalidHandshake as err:  # the upgrade itself was refused: must not be a 500
        raise AssertionError(f"upgrade refused: {err}") from None
    TALLY.sockets += 1
    assert TALLY.codes is not None
    TALLY.codes[code] = TALLY.codes.get(code, 0) + 1
    assert code not in (1006, 1011), (serializer, messages, code)


def test_zz_after_the_fuzz_no_crash_no_leak(runner: Background) -> None:
    """Runs after the fuzz tests of this module (file order): nothing crashed, nothing leaked."""
    import time

    deadline = time.monotonic() + 15
    while runner.state.sessions.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.state.sessions.active == 0
    crashes = [
        r.getMessage()
        for r in runner.errors
        if "Exception in ASGI application" in r.getMessage() or r.exc_info
    ]
    assert crashes == []
    assert TALLY.sockets >= SOCKETS, TALLY
