"""LLM turn benchmark, one command, JSON on stdout: `python benchmarks/llm_turn.py` (a few seconds).

Time to first text of one text turn (system instruction + one user message, streamed) through the
factory's Pipecat pipeline, against the raw `openai.AsyncOpenAI` client sending the same request to
the same loopback fake (in this process, so both pay for its work alike), in two modes: "burst"
(the fake writes the whole answer at once, as a buffering gateway does) and "streamed" (a gap
between words, as a model generating tokens does). Rounds are interleaved,
the variant order rotating each round, each turn starting on an idle loop; each pipeline is built once and reused, every turn replacing
the context (LLMMessagesUpdateFrame), so every request is identical.

Variants, cumulative from Pipecat's defaults to the product's text path (aiassistant_runner.llm_factory):
  pipecat_default        factory default aggregators, default PipelineWorker, queued text consumer
  +worker_options        TEXT_WORKER_OPTIONS: no RTVI, no turn tracking, no idle observer
  +text_user_params      text_user_params(): no voice turn strategies in the user aggregator
  pipecat_text           + TextSink in direct mode: the product's text path
Aim (issue 2): pipecat_text adds <= 1.5 ms median over the raw client.
Also: the factory's build time with the default aggregators vs text_user_params().
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger
from openai import AsyncOpenAI
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMMessagesUpdateFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from aiassistant_runner.llm_factory import create_llm_service
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.text_pipeline import TEXT_WORKER_OPTIONS, TextSink, text_user_params

SYSTEM = "You are the ACME support assistant. Be brief."
USER = {"role": "user", "content": "What are your opening hours?"}
ANSWER = "We are open from nine to five, Monday to Friday."
KEY = "xai-bench-key"
AIM_ADDED_MS = 1.5
SETTLE_S = 0.003


class QueuedSink(FrameProcessor):
    """A plain Pipecat processor (input queue + task), as most pipelines consume the LLM's text."""

    def __init__(self) -> None:
        super().__init__()
        self.first_text: float | None = None
        self.ended = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame) and self.first_text is None:
            self.first_text = time.perf_counter()
        elif isinstance(frame, LLMFullResponseEndFrame):
            self.ended.set()
        await self.push_frame(frame, direction)


class Raw:
    """The baseline: the OpenAI SDK, time to the first parsed content chunk."""

    def __init__(self, base_url: str) -> None:
        self.client = AsyncOpenAI(api_key=KEY, base_url=base_url)

    async def start(self) -> None:
        pass

    async def turn(self) -> float:
        t0 = time.perf_counter()
        first: float | None = None
        stream = await self.client.chat.completions.create(
            model="grok-3",
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER["content"]}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
        assert first is not None, "no text streamed"
        return (first - t0) * 1000

    async def stop(self) -> None:
        await self.client.close()


class Piped:
    """One long-lived pipeline [user aggregator, LLM, sink, assistant aggregator] from the factory."""

    def __init__(self, base_url: str, *, worker_options: bool, text_params: bool, direct_sink: bool) -> None:
        llm, pair = create_llm_service(
            "grok.grok-3",
            KEY,
            [],
            None,
            base_url=base_url,
            system_instruction=SYSTEM,
            user_params=text_user_params() if text_params else None,
        )
        self.first_text: float | None = None
        self.sink: TextSink | QueuedSink = TextSink(self._on_text) if direct_sink else QueuedSink()
        pipeline = Pipeline([pair.user(), llm, self.sink, pair.assistant()])
        self.worker = PipelineWorker(pipeline, **(TEXT_WORKER_OPTIONS if worker_options else {}))
        self.runner = WorkerRunner(handle_sigint=False)
        self.task: asyncio.Task[None] | None = None

    def _on_text(self, _text: str) -> None:
        if self.first_text is None:
            self.first_text = time.perf_counter()

    async def start(self) -> None:
        started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(_worker: Any, _frame: Any) -> None:
            started.set()

        await self.runner.add_workers(self.worker)
        self.task = asyncio.create_task(self.runner.run())
        await asyncio.wait_for(started.wait(), 20)

    async def turn(self) -> float:
        self.first_text = None
        if isinstance(self.sink, QueuedSink):
            self.sink.first_text = None
            self.sink.ended.clear()
        t0 = time.perf_counter()
        await self.worker.queue_frame(LLMMessagesUpdateFrame(messages=[dict(USER)], run_llm=True))  # type: ignore[list-item]
        if isinstance(self.sink, QueuedSink):
            await asyncio.wait_for(self.sink.ended.wait(), 10)
            first = self.sink.first_text
        else:
            await asyncio.wait_for(self.sink.responses.get(), 10)
            first = self.first_text
        assert first is not None, "no text streamed"
        return (first - t0) * 1000

    async def stop(self) -> None:
        await self.worker.queue_frame(EndFrame())
        assert self.task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 10)
        finally:
            if not self.task.done():
                await self.runner.cancel()
                await asyncio.wait_for(self.task, 10)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "min": round(ordered[0], 3),
    }


def build_ms(text_params: bool, reps: int = 3) -> float:
    """Median wall time of create_llm_service (the default aggregators load the Smart Turn model)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        create_llm_service(
            "grok.grok-3", KEY, [], None, user_params=text_user_params() if text_params else None
        )
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


async def bench(rounds: int, warmup: int, chunk_delay: float) -> dict[str, Any]:
    async with FakeOpenAI(default_text=ANSWER) as fake:
        url = fake.base_url
        variants: dict[str, Raw | Piped] = {
            "raw_openai_client": Raw(url),
            "pipecat_default": Piped(url, worker_options=False, text_params=False, direct_sink=False),
            "+worker_options": Piped(url, worker_options=True, text_params=False, direct_sink=False),
            "+text_user_params": Piped(url, worker_options=True, text_params=True, direct_sink=False),
            "pipecat_text": Piped(url, worker_options=True, text_params=True, direct_sink=True),
        }
        for variant in variants.values():
            await variant.start()
        try:
            for variant in variants.values():
                for _ in range(warmup):
                    await variant.turn()
            samples: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for i in range(rounds):
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:
                    await asyncio.sleep(SETTLE_S)  # let the previous turn's tail work finish first
                    fake.script(Reply(text=ANSWER, chunk_delay=chunk_delay))
                    samples[name].append(await variants[name].turn())
        finally:
            for variant in variants.values():
                await variant.stop()
        requests = len(fake.chat_requests())

    base = stats(samples["raw_openai_client"])
    result: dict[str, Any] = {"requests_served": requests, "raw_openai_client": base}
    for name in names[1:]:
        s = stats(samples[name])
        s["added_ms_median"] = round(s["median"] - base["median"], 3)
        s["ratio_median"] = round(s["median"] / base["median"], 3)
        s["added_ms_p90"] = round(s["p90"] - base["p90"], 3)
        result[name] = s
    return result


def run(rounds: int, warmup: int, chunk_delay_ms: float) -> dict[str, Any]:
    modes = {
        "burst": asyncio.run(bench(rounds, warmup, 0.0)),
        f"streamed_{chunk_delay_ms:g}ms": asyncio.run(bench(rounds, warmup, chunk_delay_ms / 1000)),
    }
    summary = {
        mode: {
            "raw_median_ms": r["raw_openai_client"]["median"],
            "default_added_ms_median": r["pipecat_default"]["added_ms_median"],
            "added_ms_median": r["pipecat_text"]["added_ms_median"],
            "ratio_median": r["pipecat_text"]["ratio_median"],
        }
        for mode, r in modes.items()
    }
    return {
        "benchmark": "llm_turn",
        "metric": "time to first text of one streamed text turn, ms (loopback fake, same process)",
        "rounds": rounds,
        "warmup_rounds": warmup,
        "product_path": "pipecat_text",
        "summary": summary,
        "aim_added_ms_median": AIM_ADDED_MS,
        "meets_aim": all(m["added_ms_median"] <= AIM_ADDED_MS for m in summary.values()),
        "modes": modes,
        "factory_build_ms": {"default_user_params": build_ms(False), "text_user_params": build_ms(True)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds per variant (>= 50)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--chunk-delay-ms", type=float, default=5.0, help="gap between words, streamed mode")
    args = parser.parse_args()
    logger.remove()  # Pipecat logs every turn at DEBUG; it would only add noise here
    logger.add(sys.stderr, level="WARNING")
    print(json.dumps(run(max(args.rounds, 1), args.warmup, args.chunk_delay_ms), indent=2))


if __name__ == "__main__":
    main()
