"""Voice benchmark (issues 4, 10c, 12), one command, JSON on stdout: `python benchmarks/voice.py`
(~3 min; `--only latency` ~40 s, `--only memory`). Two sections:

latency: in a real call over the real WebSocket (uvicorn on 127.0.0.1, the protobuf or a
telephony serializer, Silero VAD on the speech fixture, OpenAI STT/TTS clients and the grok LLM
service against the loopback fake), the time from the moment the VAD reports the end of the user's
speech (`VADUserStoppedSpeakingFrame.timestamp`, taken by the VAD itself) to the arrival of the
first byte of the answer's audio at the caller's socket.

Baseline, measured in the same run and the same process: the fake's own time for one turn, as a
client sees it with the same `openai` client library the services use: the transcription of the
same speech, the whole streamed chat answer (the TTS waits for a complete sentence), and the speech
endpoint's first byte. added = voice - baseline: what the runner itself adds (VAD -> STT hand-off,
WAV encoding, turn detection, context, sentence aggregation, resampling, serialization).

The first round (connections being opened) is reported on its own and left out of the statistics.

memory: the resident memory a call costs the runner. The real `aiassistant-runner` process (a fresh
one per level) takes one warm-up call (imports, first-call caches), then RSS_0 is read from
/proc/<pid>/status; then N callers connect at once, each speaks the fixture, is answered and keeps
its line open sending silence (as a phone line does); with all N answered and talking, RSS_N is read.
MB per call = (RSS_N - RSS_0) / N, for each case (protobuf, twilio, and protobuf calls with
`smartTurn`) and its levels of N (MEMORY_CASES; --cases, --levels). Baseline, in the same run, the
same way: a stock Pipecat server (this file, `--stock-server`) that builds the same pipeline (same
transport, serializer, services, VAD parameters and turn strategy) with Pipecat's per-call defaults:
its own Silero VAD model (and smart-turn model), and its own HTTP client per service. ratio =
runner / stock, per level.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
import wave
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import WebSocket

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tests' fakes and clients live under the root
    sys.path.insert(0, str(ROOT))

ROUNDS = 12
ANSWER = "We are open from nine to five."
XAI_KEY = "xai-bench-voice-key-4e8a2c"
OPENAI_KEY = "sk-bench-voice-key-9f1d3b"


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p90": round(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


def _vad_stop_recorder(stops: list[float]) -> Any:
    from pipecat.frames.frames import VADUserStoppedSpeakingFrame
    from pipecat.observers.base_observer import BaseObserver, FramePushed
    from pipecat.processors.frame_processor import FrameDirection

    class VADStops(BaseObserver):
        """Collects the VAD's own timestamp of each end of speech."""

        def __init__(self) -> None:
            super().__init__(observe_every_push=False)

        async def on_push_frame(self, data: FramePushed) -> None:
            # The aggregator broadcasts a copy each way; the downstream one is enough.
            if (
                isinstance(data.frame, VADUserStoppedSpeakingFrame)
                and data.direction == FrameDirection.DOWNSTREAM
            ):
                stops.append(data.frame.timestamp)

    return VADStops()


async def _voice_rounds(fake: Any, serializer: str, rounds: int) -> tuple[list[float], float]:
    """Latencies (ms) of `rounds` turns after a first, warm-up one; and the warm-up's."""
    from aiassistant_contract.runner_config import RunnerConfig
    from aiassistant_runner.app import create_app
    from aiassistant_runner.voice_calls import handle_call
    from aiassistant_runner.wiring import build_runner
    from tests.voice.clients import ExotelCall, PlivoCall, ProtobufCall, TelnyxCall, TwilioCall, speech_pcm

    config = RunnerConfig.model_validate(
        {
            "engineModel": "grok.grok-3",
            "baseURL": fake.base_url,
            "stt": {"type": "openai", "baseURL": fake.base_url},
            "tts": {"type": "openai", "baseURL": fake.base_url},
            "transport": {"serializers": [serializer]},
        }
    )
    state = build_runner(config, environ={"XAI_API_KEY": XAI_KEY, "OPENAI_API_KEY": OPENAI_KEY})
    stops: list[float] = []
    app = create_app(state)

    # The app's own route, plus the observer that reads the VAD's timestamps.
    @app.websocket("/bench/calls/{name}")
    async def bench_call(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        await handle_call(
            websocket, name, state.calls, state.sessions, state.access, observers=[_vad_stop_recorder(stops)]
        )

    from tests.serving import serve

    server = await serve(app, ws_max_size=1 << 24)
    clients = {
        "protobuf": ProtobufCall,
        "twilio": TwilioCall,
        "telnyx": TelnyxCall,
        "plivo": PlivoCall,
        "exotel": ExotelCall,
    }
    rate = 16_000 if serializer == "protobuf" else 8000
    pcm = speech_pcm(rate)
    latencies: list[float] = []
    tone = fake.speech_ms / 1000 - 0.01  # seconds of the answer's audio
    try:
        async with clients[serializer](
            f"ws://127.0.0.1:{server.port}/bench/calls/{serializer}", rate
        ) as call:
            for _ in range(rounds + 1):
                heard = len(call.audio())
                stops_before = len(stops)
                await call.speak(pcm, silence=0.5)
                await call.wait_for(lambda c, n=heard: len(c.audio()) > n, timeout=20)
                first = call.audio()[heard]
                assert len(stops) == stops_before + 1, "one end of speech per round"
                latencies.append((first.wall - stops[-1]) * 1000)
                # Let the answer (the fake's tone) finish playing before the next turn.
                await call.wait_for(lambda c, t=first.at: c.audio_seconds(since=t) >= tone, timeout=10)
                await asyncio.sleep(0.2)
    finally:
        await server.stop()
    return latencies[1:], latencies[0]


async def _baseline_rounds(fake: Any, rounds: int) -> dict[str, list[float]]:
    """The fake's own time per turn (ms), through the `openai` client like the services."""
    from openai import AsyncOpenAI

    from tests.voice.clients import speech_pcm

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:  # what the segmented STT uploads: the speech as a WAV
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(speech_pcm(16_000))
    audio = buffer.getvalue()
    stt = AsyncOpenAI(api_key=OPENAI_KEY, base_url=fake.base_url)
    llm = AsyncOpenAI(api_key=XAI_KEY, base_url=fake.base_url)
    times: dict[str, list[float]] = {"stt": [], "llm": [], "tts": [], "total": []}
    messages: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": fake.transcript},
    ]
    for i in range(rounds + 1):
        t0 = time.perf_counter()
        await stt.audio.transcriptions.create(file=("audio.wav", audio, "audio/wav"), model="gpt-transcribe")
        t1 = time.perf_counter()
        stream = await llm.chat.completions.create(
            model="grok-3", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass
        t2 = time.perf_counter()
        async with stt.audio.speech.with_streaming_response.create(
            input=ANSWER, model="gpt-4o-mini-tts", voice="alloy", response_format="pcm"
        ) as response:
            async for _ in response.iter_bytes(1024):
                break
        t3 = time.perf_counter()
        if i:  # the first round opens the connections
            for name, seconds in (("stt", t1 - t0), ("llm", t2 - t1), ("tts", t3 - t2), ("total", t3 - t0)):
                times[name].append(seconds * 1000)
    await stt.close()
    await llm.close()
    return times


async def _bench(serializer: str, rounds: int) -> dict[str, Any]:
    from tests.fakes.openai_server import FakeOpenAI

    started = time.monotonic()
    async with FakeOpenAI(default_text=ANSWER, speech_ms=300) as fake:
        voice, first = await _voice_rounds(fake, serializer, rounds)
        baseline = await _baseline_rounds(fake, rounds)
    base_p50 = statistics.median(baseline["total"])
    added = [v - base_p50 for v in voice]
    return {
        "what": "VAD end of speech -> first TTS audio byte at the caller, minus the fakes' own STT+LLM+TTS time",
        "serializer": serializer,
        "rounds": rounds,
        "vad_stop_secs": 0.2,  # the silence the VAD waits for before it reports the end: policy, not counted
        "voice_ms": _stats(voice),
        "first_round_ms": round(first, 1),
        "fakes_baseline_ms": {name: _stats(values) for name, values in baseline.items()},
        "added_ms": _stats(added),
        "ratio_p50": round(statistics.median(voice) / base_p50, 2),
        "seconds": round(time.monotonic() - started, 1),
    }


# Concurrent calls per case (serializer, `+smartturn`: with Pipecat's smart-turn model, whose turns
# wait for its verdict or Pipecat's 5 s timeout, and whose inference is costly: fewer calls).
MEMORY_CASES: dict[str, tuple[int, ...]] = {
    "protobuf": (10, 25, 50),
    "twilio": (10, 25, 50),
    "protobuf+smartturn": (10, 25),
}
TARGET_MB_PER_CALL = 10.0  # issue 12's aim


def _rss_mb(pid: int) -> float:
    """Resident set size of process `pid` (VmRSS), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _client(serializer: str) -> Any:
    from tests.voice.clients import ProtobufCall, TwilioCall

    return {"protobuf": ProtobufCall, "twilio": TwilioCall}[serializer]


async def _caller(
    url: str, serializer: str, pcm: bytes, tone: float, answered: list[int], hangup: asyncio.Event
) -> None:
    """One caller: speak, hear the whole answer, then keep the line open sending silence."""
    client = _client(serializer)
    async with client(url, 16_000 if serializer == "protobuf" else 8000) as call:
        await call.speak(pcm, silence=0.5)
        await call.wait_for(lambda c: c.audio_seconds() >= tone, timeout=120)
        answered.append(1)
        while not hangup.is_set():
            await call.speak(b"", silence=0.2)


def _start_server(kind: str, fake: Any, tmp: Path, smart_turn: bool) -> Any:
    """A server process on a free loopback port (`.proc`, `.port`, `.wait_ready()`, `.stop()`): the
    real runner, or the stock Pipecat baseline."""
    from tests.runner.process import RunnerProcess

    env = {"XAI_API_KEY": XAI_KEY, "OPENAI_API_KEY": OPENAI_KEY}
    if kind == "runner":
        config = {
            "engineModel": "grok.grok-3",
            "baseURL": fake.base_url,
            "stt": {"type": "openai", "baseURL": fake.base_url},
            "tts": {"type": "openai", "baseURL": fake.base_url},
            "transport": {"serializers": ["protobuf", "twilio"]},
            "access": {"anonymous": True},
            "maxSessionsPerPod": 1000,
            "smartTurn": smart_turn,
        }
        return RunnerProcess.with_config(tmp, config, env, "--allow-loopback-urls", "--log-level", "WARNING")
    stock = [__file__, "--stock-server", fake.base_url, *(["--smart-turn"] if smart_turn else [])]
    return RunnerProcess(tmp, stock, env, executable=sys.executable)


async def _memory_level(kind: str, fake: Any, case: str, n: int, tmp: Path) -> dict[str, float]:
    """RSS of a fresh `kind` server after one warm-up call, and with `n` calls answered and talking.
    `case`: the serializer, `+smartturn` for calls with Pipecat's smart-turn model."""
    from tests.voice.clients import speech_pcm

    serializer, _, extra = case.partition("+")
    server = _start_server(kind, fake, tmp, smart_turn=extra == "smartturn")
    pcm = speech_pcm(16_000 if serializer == "protobuf" else 8000)
    tone = fake.speech_ms / 1000 - 0.01
    url = f"ws://127.0.0.1:{server.port}/v1/calls/{serializer}"
    try:
        await asyncio.to_thread(server.wait_ready, 60)
        warm = asyncio.Event()
        warm.set()
        await _caller(url, serializer, pcm, tone, [], warm)
        await asyncio.sleep(1.0)  # the warm-up call's teardown
        rss_0 = _rss_mb(server.proc.pid)
        answered: list[int] = []
        hangup = asyncio.Event()
        callers = []
        for _ in range(n):  # callers arrive 20 ms apart: no handshake storm for either server
            callers.append(asyncio.create_task(_caller(url, serializer, pcm, tone, answered, hangup)))
            await asyncio.sleep(0.02)
        try:
            deadline = time.monotonic() + 180
            while len(answered) < n:
                failed = [t for t in callers if t.done() and t.exception()]
                if failed:
                    raise RuntimeError(f"{kind}: a call failed: {failed[0].exception()!r}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind}: {len(answered)} of {n} calls answered in 180 s")
                await asyncio.sleep(0.1)
            samples = []
            for _ in range(5):  # all N talking: the highest of a second's samples
                await asyncio.sleep(0.2)
                samples.append(_rss_mb(server.proc.pid))
            rss_n = max(samples)
        finally:
            hangup.set()
            await asyncio.gather(*callers, return_exceptions=True)
    finally:
        server.stop()
    return {
        "rss_0_mb": round(rss_0, 1),
        "rss_n_mb": round(rss_n, 1),
        "mb_per_call": round((rss_n - rss_0) / n, 2),
    }


async def _memory(cases: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    import tempfile

    from tests.fakes.openai_server import FakeOpenAI

    started = time.monotonic()
    result: dict[str, Any] = {
        "what": "runner RSS per concurrent call, (RSS_N - RSS_0) / N, all N answered and talking",
        "target_mb_per_call": TARGET_MB_PER_CALL,
        "levels": {case: list(levels) for case, levels in cases.items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeOpenAI(default_text=ANSWER, speech_ms=300) as fake:
            for case, levels in cases.items():
                rows: dict[str, Any] = {}
                for n in levels:
                    row: dict[str, Any] = {}
                    for kind, key in (("runner", "runner"), ("stock", "stock_pipecat")):
                        try:
                            row[key] = await _memory_level(kind, fake, case, n, Path(tmp))
                        except (RuntimeError, AssertionError, OSError) as err:  # reported, not fatal
                            row[key] = {"error": str(err)[:300]}
                    if all("mb_per_call" in row[k] for k in ("runner", "stock_pipecat")):
                        row["ratio"] = round(
                            row["runner"]["mb_per_call"] / row["stock_pipecat"]["mb_per_call"], 2
                        )
                    rows[str(n)] = row
                result[case] = rows
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def bench_memory(cases: Mapping[str, Sequence[int]] = MEMORY_CASES) -> dict[str, Any]:
    """The memory section (its own event loop): JSON-ready. `cases`: {case: levels}."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    return asyncio.run(_memory(cases))


def _stock_server(base_url: str, port: int, smart_turn: bool) -> None:
    """The memory baseline: the voice pipeline as a stock Pipecat app builds it per call (Pipecat's
    SileroVADAnalyzer, each service with its own client), with the runner's transport, serializers,
    VAD parameters and turn strategy, so the difference is only what the runner shares."""
    import uvicorn
    from fastapi import FastAPI
    from loguru import logger
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.services.openai.stt import OpenAISTTService
    from pipecat.services.openai.tts import OpenAITTSService
    from pipecat.services.xai.llm import GrokLLMService
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.workers.runner import WorkerRunner

    from aiassistant_contract.runner_config import VADConfig
    from aiassistant_runner.voice_calls import SAMPLE_RATES, create_serializer
    from aiassistant_runner.voice_parts import call_transport

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    app = FastAPI()
    vad = VADConfig()

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    def build(websocket: WebSocket, frame_serializer: Any) -> tuple[Any, Pipeline]:
        transport = call_transport(websocket, frame_serializer)
        llm = GrokLLMService(
            api_key=XAI_KEY,
            base_url=base_url,
            settings=GrokLLMService.Settings(
                model="grok-3", system_instruction="You are a helpful assistant."
            ),
        )
        aggregators = LLMContextAggregatorPair(
            LLMContext(),
            user_params=LLMUserAggregatorParams(
                vad_analyzer=SileroVADAnalyzer(
                    params=VADParams(
                        confidence=vad.confidence,
                        start_secs=vad.start_secs,
                        stop_secs=vad.stop_secs,
                        min_volume=vad.min_volume,
                    )
                ),
                user_turn_strategies=UserTurnStrategies()  # Pipecat's default: its smart-turn model
                if smart_turn
                else UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]),
            ),
        )
        pipeline = Pipeline(
            [
                transport.input(),
                OpenAISTTService(api_key=OPENAI_KEY, base_url=base_url),
                aggregators.user(),
                llm,
                OpenAITTSService(api_key=OPENAI_KEY, base_url=base_url, sample_rate=24_000),
                transport.output(),
                aggregators.assistant(),
            ]
        )
        return transport, pipeline

    @app.websocket("/v1/calls/{serializer}")
    async def call(websocket: WebSocket, serializer: str) -> None:
        await websocket.accept()
        frame_serializer = await create_serializer(websocket, serializer)
        # Off the event loop, as the runner builds its calls: ~150 ms of CPU each here.
        transport, pipeline = await asyncio.to_thread(build, websocket, frame_serializer)
        rate = SAMPLE_RATES[serializer]
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=rate,
                audio_out_sample_rate=rate,
                enable_metrics=True,
                enable_usage_metrics=True,
            ),
            enable_rtvi=False,
        )

        @transport.event_handler("on_client_disconnected")
        async def disconnected(transport: Any, websocket: Any) -> None:
            await worker.cancel(reason="client disconnected")

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=1 << 20)


def bench_voice(serializer: str = "protobuf", rounds: int = ROUNDS) -> dict[str, Any]:
    """Run the benchmark (its own event loop); the JSON-ready result. benchmarks/runner.py calls it."""
    from loguru import logger

    logger.remove()  # Pipecat's debug lines would cost time inside the measured path
    logger.add(sys.stderr, level="WARNING")
    return asyncio.run(_bench(serializer, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--serializer", default="protobuf", choices=["protobuf", "twilio", "telnyx", "plivo", "exotel"]
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured turns (after one warm-up)")
    parser.add_argument("--only", choices=["latency", "memory"], help="one section (default: both)")
    parser.add_argument(
        "--levels", type=int, nargs="+", help="concurrent calls (memory; default: each case's own)"
    )
    parser.add_argument("--cases", nargs="+", default=list(MEMORY_CASES), choices=list(MEMORY_CASES))
    parser.add_argument("--stock-server", metavar="BASE_URL", help=argparse.SUPPRESS)  # the baseline
    parser.add_argument("--smart-turn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stock_server:
        _stock_server(args.stock_server, args.port, args.smart_turn)
        return
    result: dict[str, Any] = {}
    if args.only in (None, "latency"):
        result["latency"] = bench_voice(args.serializer, args.rounds)
    if args.only in (None, "memory"):
        result["memory"] = bench_memory({c: args.levels or MEMORY_CASES[c] for c in args.cases})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
