"""The OpenAI surface of a served runner, over HTTP: `/v1/models`, OpenAI-shaped errors for every
4xx/5xx (unknown route, wrong method, the playground's, an unhandled exception), and the request
parameters of `/v1/chat/completions` — each honoured one reaches the model as sent, a wrong one is
a 400 naming it, one the model rejects a 400 naming it and the model, and `response_format` is
forwarded (the fake answers JSON as the provider does) or refused, never ignored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.app import create_app
from aiassistant_runner.text_engine import TextEngine
from aiassistant_runner.wiring import build_runner
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import XAI_KEY, StartRunner
from tests.serving import serve

ASK = {"messages": [{"role": "user", "content": "When do you open?"}]}
TOKEN = "surface-token-71c0a9e3f2"


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body  # never FastAPI's {"detail": ...}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    assert error["param"] == param, error
    return error


# -- /v1/models ------------------------------------------------------------------------------------


async def test_models_lists_the_chain_behind_the_access_check(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner(
        engineModel="grok.grok-4.3",
        fallbacks=[
            {"engineModel": "grok.grok-4.3", "baseURL": fake.base_url},  # the same name: listed once
            {"engineModel": "openai.gpt-4o", "baseURL": fake.base_url},
        ],
        environ={
            "AIASSISTANT_ACCESS_TOKENS": TOKEN,
            "AIASSISTANT_FALLBACK_1_API_KEY": "xai-2",
            "AIASSISTANT_FALLBACK_2_API_KEY": "sk-3",
        },
        access={"anonymous": False},
    )
    assert_openai_error(await runner.client.get("/v1/models"), 401)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listing = (await runner.client.get("/v1/models", headers=auth)).json()
    assert listing["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in listing["data"]] == [
        ("grok-4.3", "model", "xai"),
        ("gpt-4o", "model", "openai"),
    ]
    assert all(isinstance(m["created"], int) and m["created"] > 0 for m in listing["data"])
    assert (await runner.client.get("/v1/models/gpt-4o", headers=auth)).json() == listing["data"][1]
    error = assert_openai_error(
        await runner.client.get("/v1/models/grok.grok-4.3", headers=auth), 404, "model"
    )
    assert error["code"] == "model_not_found" and "grok-4.3, gpt-4o" in error["message"]
    assert fake.chat_requests() == []


# -- errors ----------------------------------------------------------------------------------------


async def test_unknown_routes_and_wrong_methods_answer_openai_errors(start_runner: StartRunner) -> None:
    runner = await start_runner(playground=True)
    for path in ("/v1/nope", "/v1/chat/completion", "/", "/v1/calls/twilio/extra", "/playground/secret.js"):
        error = assert_openai_error(await runner.client.get(path), 404)
        assert error["type"] == "invalid_request_error" and "/v1/chat/completions" in error["message"]
        assert f"(GET {path})" in error["message"]
    long = assert_openai_error(await runner.client.get("/v1/" + "x" * 5000), 404)
    assert len(long["message"]) < 400  # the echoed path is cut
    for method, path, allowed in [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/tasks", "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/healthz", "GET"),
    ]:
        response = await runner.client.request(method, path)
        error = assert_openai_error(response, 405)
        assert response.headers["Allow"] == allowed
        assert error["message"] == f"Invalid method for URL ({method} {path}); allowed: {allowed}"
    # The probes and the scraper keep their own bodies.
    assert (await runner.client.get("/healthz")).json() == {"status": "ok"}
    assert (await runner.client.get("/readyz")).json()["status"] == "ready"
    assert (await runner.client.get("/metrics")).headers["content-type"].startswith("text/plain")


@pytest.fixture
async def app_with_a_failing_route(fake: FakeOpenAI) -> AsyncIterator[str]:
    """A real runner app with one more route, which raises: what an unhandled bug answers."""
    config = RunnerConfig.model_validate(
        {"engineModel": "grok.grok-3", "baseURL": fake.base_url, "access": {"anonymous": True}}
    )
    app: FastAPI = create_app(
        build_runner(config, environ={"XAI_API_KEY": XAI_KEY}, drain_seconds=1), prewarm=False
    )

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("a bug, with internal details: /etc/secret")

    @app.get("/v1/typed")
    async def typed(count: int) -> dict[str, int]:  # FastAPI validates the query parameter
        return {"count": count}

    served = await serve(app)
    yield f"http://127.0.0.1:{served.port}"
    await served.stop()


async def test_an_unhandled_exception_and_fastapi_validation_answer_openai_errors(
    app_with_a_failing_route: str,
) -> None:
    async with httpx.AsyncClient(base_url=app_with_a_failing_route) as client:
        error = assert_openai_error(await client.get("/v1/broken"), 500)
        assert error == {"message": "internal error", "type": "server_error", "param": None, "code": None}
        # FastAPI's own validation (422 {"detail": [...]} by default): a 400 naming the field.
        invalid = assert_openai_error(await client.get("/v1/typed", params={"count": "many"}), 400, "count")
        assert "integer" in invalid["message"]
        assert (await client.get("/v1/typed", params={"count": "3"})).json() == {"count": 3}


class BrokenEngine(TextEngine):
    async def run(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug, with internal details: /etc/secret")


async def test_a_bug_in_a_text_endpoint_answers_an_openai_500(fake: FakeOpenAI) -> None:
    """The text endpoints' POSTs are served ahead of the router (text_routes.py), still inside the
    app's error handling: an unhandled exception is a 500 without its details, and is logged."""
    config = RunnerConfig.model_validate(
        {"engineModel": "grok.grok-3", "baseURL": fake.base_url, "access": {"anonymous": True}}
    )
    wired = build_runner(config, environ={"XAI_API_KEY": XAI_KEY}, drain_seconds=1)
    text = BrokenEngine(config, wired.text.models, wired.tools, wired.metrics, wired.llm_client)
    served = await serve(create_app(dataclasses.replace(wired, text=text), prewarm=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            for path, body in (("/v1/chat/completions", ASK), ("/v1/tasks", {"input": "check"})):
                error = assert_openai_error(await client.post(path, json=body), 500)
                assert error == {
                    "message": "internal error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
    finally:
        await served.stop()


# -- request parameters ----------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"opens": {"type": "string"}}, "required": ["opens"]}


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("temperature", "hot", "temperature"),
        ("temperature", 7, "temperature"),
        ("temperature", -0.1, "temperature"),
        ("temperature", True, "temperature"),
        ("temperature", 10**400, "temperature"),  # too large for a float
        ("top_p", float("nan"), "top_p"),  # JSON's NaN, which json.loads takes
        ("top_p", 1.5, "top_p"),
        ("max_tokens", 0, "max_tokens"),
        ("max_completion_tokens", 1.5, "max_completion_tokens"),
        ("max_completion_tokens", "10", "max_completion_tokens"),
        ("seed", 2**70, "seed"),
        ("seed", "1", "seed"),
        ("stop", ["a", "b", "c", "d", "e"], "stop"),
        ("stop", [1], "stop"),
        ("stop", [], "stop"),
        ("presence_penalty", 2.5, "presence_penalty"),
        ("frequency_penalty", "high", "frequency_penalty"),
        ("user", "u" * 300, "user"),
        ("response_format", "json", "response_format"),
        ("response_format", {"type": "xml"}, "response_format"),
        ("response_format", {"type": "json_object", "schema": SCHEMA}, "response_format.schema"),
        ("response_format", {"type": "json_schema"}, "response_format.json_schema"),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"schema": SCHEMA}},
            "response_format.json_schema.name",
        ),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "a b", "schema": SCHEMA}},
            "response_format.json_schema.name",
        ),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "h"}},
            "response_format.json_schema.schema",
        ),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "h", "schema": [1]}},
            "response_format.json_schema.schema",
        ),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "h", "schema": SCHEMA, "strict": "yes"}},
            "response_format.json_schema.strict",
        ),
        (
            "response_format",
            {"type": "json_schema", "json_schema": {"name": "h", "schema": SCHEMA, "extra": 1}},
            "response_format.json_schema.extra",
        ),
        ("n", 2, "n"),
        ("logprobs", True, "logprobs"),
        ("top_logprobs", 3, "top_logprobs"),
        ("logit_bias", {"50256": -100}, "logit_bias"),
        ("store", True, "store"),
        ("metadata", {"a": 1}, "metadata"),
        ("reasoning_effort", "high", "reasoning_effort"),
        ("tool_choice", "auto", "tool_choice"),
        ("frobnicate", 1, "frobnicate"),  # OpenAI: "Unrecognized request argument supplied"
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(
    field: str, value: Any, param: str, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner()
    body = json.dumps({**ASK, field: value}).encode()  # json.dumps writes NaN, as some clients do
    response = await runner.client.post("/v1/chat/completions", content=body)
    error = assert_openai_error(response, 400, param)
    assert error["type"] == "invalid_request_error"
    assert fake.chat_requests() == []  # nothing half-applied: the model was never asked


async def test_honoured_parameters_reach_the_model_as_sent(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner()  # grok-3: a plain model, it takes all of them
    honoured = {
        "temperature": 0.7,
        "top_p": 0.5,
        "max_completion_tokens": 200,
        "max_tokens": 100,
        "seed": -42,
        "stop": ["\n\n", "END"],
        "presence_penalty": -1.5,
        "frequency_penalty": 2,
        "user": "customer-17",
        "response_format": {"type": "json_object"},
    }
    no_effect = {
        "model": "gpt-4o",
        "n": 1,
        "logprobs": False,
        "store": False,
        "parallel_tool_calls": True,
        "metadata": {"ticket": "T-1"},
        "tools": [],
        "top_logprobs": None,
    }
    response = await runner.client.post("/v1/chat/completions", json={**ASK, **honoured, **no_effect})
    assert response.status_code == 200, response.text
    (sent,) = fake.chat_requests()
    assert {name: sent.body.get(name) for name in honoured} == honoured
    assert not {"n", "logprobs", "store", "parallel_tool_calls", "metadata", "tools", "top_logprobs"} & set(
        sent.body
    )
    assert sent.body["model"] == "grok-3"


async def test_null_is_absent_and_text_is_the_default(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner()
    body = {**ASK, "temperature": None, "stop": None, "n": None, "response_format": {"type": "text"}}
    assert (await runner.client.post("/v1/chat/completions", json=body)).status_code == 200
    (sent,) = fake.chat_requests()
    assert not {"temperature", "stop", "n", "response_format"} & set(sent.body)


class Item(BaseModel):
    name: str
    quantity: int


class Order(BaseModel):
    number: str
    status: str | None
    items: list[Item]
    express: bool


@pytest.mark.parametrize("stream", [False, True])
async def test_json_schema_is_forwarded_and_the_answer_matches_it(
    stream: bool, start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner("openai")
    schema = Order.model_json_schema()  # $defs and $ref, a nullable field, an array of objects
    fmt = {"type": "json_schema", "json_schema": {"name": "order", "schema": schema, "strict": True}}
    body = {**ASK, "response_format": fmt, "stream": stream}
    async with runner.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        raw = (await response.aread()).decode()
    (sent,) = fake.chat_requests()
    assert sent.body["response_format"] == fmt
    if stream:
        chunks = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    else:
        content = httpx.Response(200, content=raw).json()["choices"][0]["message"]["content"]
    jsonschema.validate(Order.model_validate_json(content).model_dump(), schema)


async def test_a_response_format_the_model_rejects_is_a_400(fake: FakeOpenAI) -> None:
    """No model of the registry rejects structured outputs today (xAI and OpenAI take them); one
    whose facts said so (ModelFacts.rejects) would be refused by name, not silently answered in text."""
    config = RunnerConfig.model_validate(
        {"engineModel": "grok.grok-3", "baseURL": fake.base_url, "access": {"anonymous": True}}
    )
    wired = build_runner(config, environ={"XAI_API_KEY": XAI_KEY}, drain_seconds=1)
    models = [dataclasses.replace(m, rejected=m.rejected | {"response_format"}) for m in wired.text.models]
    text = TextEngine(config, models, wired.tools, wired.metrics, wired.llm_client)
    served = await serve(create_app(dataclasses.replace(wired, text=text), prewarm=False))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            body = {**ASK, "response_format": {"type": "json_object"}}
            error = assert_openai_error(
                await client.post("/v1/chat/completions", json=body), 400, "response_format"
            )
            assert "grok.grok-3" in error["message"]
            text_format = {**ASK, "response_format": {"type": "text"}}  # the default asks nothing
            assert (await client.post("/v1/chat/completions", json=text_format)).status_code == 200
    finally:
        await served.stop()
    assert "response_format" not in fake.chat_requests()[0].body


async def test_max_tokens_for_a_model_that_rejects_it_names_the_replacement(
    start_runner: StartRunner, fake: FakeOpenAI
) -> None:
    runner = await start_runner("openai", engineModel="openai.gpt-5")
    response = await runner.client.post("/v1/chat/completions", json={**ASK, "max_tokens": 50})
    error = assert_openai_error(response, 400, "max_tokens")
    assert "openai.gpt-5" in error["message"] and "max_completion_tokens" in error["message"]
    fake.script(Reply(text="Nine."))
    response = await runner.client.post("/v1/chat/completions", json={**ASK, "max_completion_tokens": 50})
    assert response.status_code == 200 and fake.chat_requests()[0].body["max_completion_tokens"] == 50
