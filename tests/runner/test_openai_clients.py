"""The three clients people point at an assistant, run against a served runner (loopback socket,
the fake LLM behind it, access tokens on): the `openai` Python client, the `openai` npm client and
LangChain's ChatOpenAI. Each lists the models (behind the access check, with its API key), chats
(plain and streamed), gets structured output back parsed, and reads the runner's errors as its own
error types with the runner's message — the surface issue 12 found missing (a 404 "(no body)" on
the models probe, a silently ignored response_format)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.runner.conftest import Runner, StartRunner

TOKEN = "client-token-3c9e71d2a4"
LOCKED = {"environ": {"AIASSISTANT_ACCESS_TOKENS": TOKEN}, "access": {"anonymous": False}}
QUESTION = [{"role": "user", "content": "When do you open?"}]
NPM_SCRIPT = Path(__file__).parent / "clients" / "openai_npm.mjs"
NPM_DIR = Path(os.environ.get("AIASSISTANT_NPM_CACHE") or Path.home() / ".cache/aiassistant-operator/npm")


class OpeningHours(BaseModel):
    opens: str
    days: int
    closed_on_sundays: bool


async def start(start_runner: StartRunner, fake: FakeOpenAI) -> Runner:
    return await start_runner(
        engineModel="grok.grok-4.3",
        fallbacks=[{"engineModel": "openai.gpt-4.1-mini", "baseURL": fake.base_url}],
        **{**LOCKED, "environ": {**LOCKED["environ"], "AIASSISTANT_FALLBACK_1_API_KEY": "sk-fallback-1"}},
    )


def sent_format(fake: FakeOpenAI) -> object:
    return fake.chat_requests()[-1].body.get("response_format")


async def test_openai_python_client(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start(start_runner, fake)
    async with openai.AsyncOpenAI(base_url=f"{runner.url}/v1", api_key=TOKEN, max_retries=0) as client:
        models = [m async for m in client.models.list()]
        assert [(m.id, m.object, m.owned_by) for m in models] == [
            ("grok-4.3", "model", "xai"),
            ("gpt-4.1-mini", "model", "openai"),
        ]
        assert (await client.models.retrieve("gpt-4.1-mini")).owned_by == "openai"
        with pytest.raises(openai.NotFoundError) as missing:
            await client.models.retrieve("gpt-nope")
        assert "gpt-nope" in missing.value.message and missing.value.code == "model_not_found"

        fake.script(Reply(text="At nine."), Reply(text="At nine, daily."))
        answer = await client.chat.completions.create(model="anything", messages=QUESTION, temperature=0.3)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "At nine." and answer.model == "grok-4.3"
        assert fake.chat_requests()[-1].body["temperature"] == 0.3
        stream = await client.chat.completions.create(model="anything", messages=QUESTION, stream=True)  # type: ignore[arg-type]
        assert (
            "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            == "At nine, daily."
        )

        # Structured output: the SDK turns the pydantic model into a strict json_schema and parses
        # the answer back into it.
        parsed = await client.chat.completions.parse(
            model="anything",
            messages=QUESTION,
            response_format=OpeningHours,  # type: ignore[arg-type]
        )
        hours = parsed.choices[0].message.parsed
        assert isinstance(hours, OpeningHours) and hours.closed_on_sundays is True
        sent = sent_format(fake)
        assert isinstance(sent, dict) and sent["type"] == "json_schema"
        assert sent["json_schema"]["name"] == "OpeningHours" and sent["json_schema"]["strict"] is True
        assert set(sent["json_schema"]["schema"]["properties"]) == set(OpeningHours.model_fields)

        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="anything", messages=QUESTION, temperature=7)  # type: ignore[arg-type]
        assert bad.value.param == "temperature" and "from 0 to 2" in bad.value.message


async def test_openai_python_client_stops_at_max_tokens(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    """max_completion_tokens reaches the model, and the answer it cut says `length`: the SDK's
    parse raises LengthFinishReasonError instead of parsing half a JSON object."""
    runner = await start(start_runner, fake)
    fake.script(Reply(text="We open at nine on weekdays."), Reply(text='{"opens": "9:00", "days": 5}'))
    async with openai.AsyncOpenAI(base_url=f"{runner.url}/v1", api_key=TOKEN, max_retries=0) as client:
        answer = await client.chat.completions.create(
            model="anything",
            messages=QUESTION,
            max_completion_tokens=3,  # type: ignore[arg-type]
        )
        assert answer.choices[0].message.content == "We open at"
        assert answer.choices[0].finish_reason == "length"
        with pytest.raises(openai.LengthFinishReasonError):
            await client.chat.completions.parse(
                model="anything",
                messages=QUESTION,
                response_format=OpeningHours,
                max_completion_tokens=2,  # type: ignore[arg-type]
            )
    assert [r.body["max_completion_tokens"] for r in fake.chat_requests()] == [3, 2]


async def test_langchain_with_structured_output(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start(start_runner, fake)
    llm = ChatOpenAI(base_url=f"{runner.url}/v1", api_key=TOKEN, model="support-bot", max_retries=0)  # type: ignore[arg-type]
    fake.script(Reply(text='{"opens": "9:00", "days": 6, "closed_on_sundays": true}'))
    hours = await llm.with_structured_output(OpeningHours).ainvoke("When do you open?")
    assert hours == OpeningHours(opens="9:00", days=6, closed_on_sundays=True)
    sent = sent_format(fake)
    assert (
        isinstance(sent, dict)
        and sent["type"] == "json_schema"
        and sent["json_schema"]["name"] == "OpeningHours"
    )

    # JSON mode: response_format json_object; the fake answers JSON the way the provider does.
    json_mode = llm.with_structured_output(OpeningHours, method="json_mode")
    fake.script(Reply(text='{"opens": "10:00", "days": 5, "closed_on_sundays": false}'))
    assert (await json_mode.ainvoke("When do you open? Answer in JSON.")).days == 5  # type: ignore[union-attr]
    assert sent_format(fake) == {"type": "json_object"}

    # A plain chat, streamed, with the parameters LangChain sends when they are set.
    chat = ChatOpenAI(
        base_url=f"{runner.url}/v1",
        api_key=TOKEN,
        model="support-bot",
        max_retries=0,
        temperature=0.1,
        n=1,  # type: ignore[arg-type]
        streaming=True,
        stream_usage=True,
    )
    fake.script(Reply(text="We open at nine."))
    assert (await chat.ainvoke("When do you open?")).content == "We open at nine."
    body = fake.chat_requests()[-1].body
    assert body["temperature"] == 0.1 and "n" not in body  # n: 1 asks nothing: not forwarded


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the npm client cannot run")
async def test_openai_npm_client(start_runner: StartRunner, fake: FakeOpenAI) -> None:
    assert (NPM_DIR / "node_modules/openai/package.json").is_file(), (
        f"the openai npm package is not in {NPM_DIR}: run `make install` (scripts/install_npm_clients.sh)"
    )
    runner = await start(start_runner, fake)
    fake.script(Reply(text="At nine."), Reply(text="At nine, daily."))
    node = await asyncio.create_subprocess_exec(
        "node",
        str(NPM_SCRIPT),
        f"{runner.url}/v1",
        TOKEN,
        env={**os.environ, "AIASSISTANT_NPM_DIR": str(NPM_DIR)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), 60)
    assert node.returncode == 0, err.decode()[-2000:]
    seen = json.loads(out)
    assert [m["id"] for m in seen["models"]] == ["grok-4.3", "gpt-4.1-mini"]
    assert seen["retrieved"]["id"] == "grok-4.3" and seen["retrieved"]["owned_by"] == "xai"
    assert seen["chat"] == {"model": "grok-4.3", "content": "At nine.", "finish": "stop"}
    assert seen["streamed"] == "At nine, daily." and seen["usage"]["completion_tokens"] == 3
    assert set(seen["structured"]) == {"opens", "days"} and isinstance(seen["structured"]["days"], int)
    assert fake.chat_requests()[-1].body["response_format"]["json_schema"]["name"] == "opening_hours"
    # The errors read as the runner wrote them, not "404 status code (no body)".
    assert seen["notFound"]["name"] == "NotFoundError"
    assert seen["notFound"]["message"].startswith("404 Invalid URL (GET /v1/nope)")
    assert seen["wrongMethod"]["status"] == 405
    assert (
        "Invalid method for URL (GET /v1/chat/completions); allowed: POST" in seen["wrongMethod"]["message"]
    )
    assert seen["unknownModel"]["name"] == "NotFoundError" and "gpt-nope" in seen["unknownModel"]["message"]
    assert (
        seen["badTemperature"]["name"] == "BadRequestError"
        and seen["badTemperature"]["param"] == "temperature"
    )
