"""Text turn CPU benchmark, one command, JSON on stdout: `python benchmarks/llm_turn.py` (~30 s).

CPU time of this process (user + system) for one text turn — building the request, the POST,
reading the SSE stream (or the whole answer), parsing it — by four clients of the same loopback fake LLM,
which runs in its own process so that its work is not counted:
  runner      llm_client.chat_body + LLMClient.chunks, streamed: the runner's `stream: true` path
  runner_whole  the same asking for the whole answer at once: its other text turns and tasks
  openai_sdk  openai.AsyncOpenAI `chat.completions.create(stream=True)` with the same body: baseline
  pipecat     the factory's Pipecat service, `get_chat_completions(context)` (what a voice call sends)
Turns are sequential; rounds are interleaved, the variant order rotating. Reported per variant: CPU
ms per turn (median over rounds) and the ratio to the baseline measured in the same run.
Aim (issue 12): runner <= 1.0 ms CPU per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "xai-bench-key-0123456789"
ANSWER = "We are open Monday to Friday from nine to five, and on Saturday mornings."  # 15 chunks
INSTRUCTION = "You are the ACME support assistant. Answer in one sentence."
MESSAGES = [{"role": "user", "content": "When are you open?"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake(port: int) -> subprocess.Popen[bytes]:
    fake = ROOT / "tests" / "fakes" / "openai_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(fake), "--port", str(port), "--text", ANSWER],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the fake LLM did not start")


async def bench(base_url: str, rounds: int, turns: int) -> dict[str, Any]:
    from loguru import logger
    from openai import AsyncOpenAI
    from pipecat.processors.aggregators.llm_context import LLMContext

    from aiassistant_contract.engines import registry_from_env
    from aiassistant_contract.runner_config import RunnerConfig
    from aiassistant_runner.llm_client import LLMClient, chat_body
    from aiassistant_runner.llm_factory import create_llm
    from aiassistant_runner.llm_policy import TEXT_POLICY
    from aiassistant_runner.models import chain

    logger.remove()  # Pipecat's per-request DEBUG lines would be most of its cost
    config = RunnerConfig.model_validate({"engineModel": "grok.grok-3", "baseURL": base_url})
    (model,) = chain(config, {"XAI_API_KEY": KEY}, registry_from_env({}))
    client = LLMClient(TEXT_POLICY)
    sdk = AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=1)
    llm = create_llm("grok.grok-3", KEY, base_url=base_url, system_instruction=INSTRUCTION)

    async def runner_turn() -> str:
        text = ""
        async for chunk in client.chunks(model, chat_body(model, INSTRUCTION, MESSAGES)):
            for choice in chunk.get("choices") or ():
                text += (choice.get("delta") or {}).get("content") or ""
        return text

    async def runner_whole_turn() -> str:
        body = chat_body(model, INSTRUCTION, MESSAGES, stream=False)
        async for chunk in client.chunks(model, body):  # one chunk: the whole answer
            return str(chunk["choices"][0]["delta"]["content"])
        return ""

    async def sdk_turn() -> str:
        body = chat_body(model, INSTRUCTION, MESSAGES)
        stream: Any = await sdk.chat.completions.create(**body)
        text = ""
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
        return text

    async def pipecat_turn() -> str:
        context = LLMContext(messages=[dict(m) for m in MESSAGES])  # type: ignore[misc]
        text = ""
        async for chunk in await llm.get_chat_completions(context):
            for choice in chunk.choices:
                text += choice.delta.content or ""
        return text

    variants: dict[str, Callable[[], Awaitable[str]]] = {
        "runner": runner_turn,
        "runner_whole": runner_whole_turn,
        "openai_sdk": sdk_turn,
        "pipecat": pipecat_turn,
    }
    for turn in variants.values():  # warm: imports, connection pools, first-call caches
        for _ in range(5):
            assert (await turn()).strip() == ANSWER
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.process_time()
            for _ in range(turns):
                await variants[name]()
            cpu[name].append((time.process_time() - started) * 1000 / turns)
    await client.aclose()
    await sdk.close()
    base = statistics.median(cpu["openai_sdk"])
    return {
        "rounds": rounds,
        "turns_per_round": turns,
        "answer_chunks": len(ANSWER.split()),
        **{f"{name}_cpu_ms_per_turn": round(statistics.median(v), 3) for name, v in cpu.items()},
        **{f"{name}_ratio_vs_openai_sdk": round(statistics.median(v) / base, 2) for name, v in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--turns", type=int, default=40, help="turns per variant per round")
    args = parser.parse_args()
    port = free_port()
    fake = start_fake(port)
    try:
        result = asyncio.run(bench(f"http://127.0.0.1:{port}/v1", args.rounds, args.turns))
    finally:
        fake.terminate()
        fake.wait(10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
