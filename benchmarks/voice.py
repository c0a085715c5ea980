"""Voice benchmark (issue 4, 10c), one command, JSON on stdout: `python benchmarks/voice.py` (~40 s).

What it measures: in a real call over the real WebSocket (uvicorn on 127.0.0.1, the protobuf or a
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
    args = parser.parse_args()
    print(json.dumps(bench_voice(args.serializer, args.rounds), indent=2))


if __name__ == "__main__":
    main()
