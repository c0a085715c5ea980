"""A text-only runner answers conversations and tasks without ever importing Pipecat (or the OpenAI
SDK): the text path is llm_client.py alone, so it starts and stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, json, sys
import httpx
from aiassistant_contract.runner_config import RunnerConfig
from aiassistant_runner.app import create_app
from aiassistant_runner.wiring import build_runner
from tests.fakes.openai_server import FakeOpenAI

async def main():
    async with FakeOpenAI() as fake:
        config = RunnerConfig.model_validate(
            {"engineModel": "grok.grok-4.3", "baseURL": fake.base_url, "access": {"anonymous": True}}
        )
        app = create_app(build_runner(config, environ={"XAI_API_KEY": "xai-k"}), prewarm=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://runner") as client:
            chat = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            task = await client.post("/v1/tasks", json={"input": "do it"})
    loaded = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("pipecat", "openai")})
    print(json.dumps({"chat": chat.status_code, "task": task.status_code, "text": chat.json()["choices"][0]["message"]["content"], "loaded": loaded}))

asyncio.run(main())
"""


def test_text_turns_never_import_pipecat() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["chat"], result["task"]) == (200, 200) and result["text"]
    assert result["loaded"] == []
