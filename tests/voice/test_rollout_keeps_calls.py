"""A rollout never cuts a call: the real `aiassistant-runner` process, started as the operator starts
it (no drain flag: the drain lasts as long as the longest call may), gets SIGTERM during a call and
keeps that call going past the old 25 s grace period; the caller is still answered, and the process
exits 0 once the caller hangs up."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from tests.fakes.openai_server import FakeOpenAI
from tests.runner.process import RunnerProcess
from tests.voice.clients import ProtobufCall, speech_pcm
from tests.voice.conftest import ENVIRON, voice_config

OLD_GRACE_SECONDS = 25  # runnerDrainSeconds before calls set the drain


async def test_sigterm_lets_a_call_longer_than_the_old_grace_finish(fake: FakeOpenAI, tmp_path: Path) -> None:
    config = voice_config(fake, maxCallSeconds=120)
    # The fakes are on loopback, which an operator's config may not name: the flag lets a test do it.
    runner = RunnerProcess.with_config(
        tmp_path, json.loads(config.to_json()), ENVIRON, "--allow-loopback-urls"
    )
    try:
        await asyncio.to_thread(runner.wait_ready, 30)
        async with ProtobufCall(f"ws://127.0.0.1:{runner.port}/v1/calls/protobuf", 16_000) as call:
            await call.speak(speech_pcm(call.rate), silence=0.4)
            await call.wait_for(lambda c: c.audio_seconds() >= 0.38)
            runner.terminate()  # what the kubelet sends when the pod is replaced
            signalled = time.monotonic()
            async with httpx.AsyncClient(base_url=runner.url) as http:

                async def draining() -> bool:
                    return (await http.get("/readyz")).status_code == 503

                while not await draining():  # off the Service at once: no new calls
                    assert time.monotonic() - signalled < 5
                    await asyncio.sleep(0.05)
            # The caller stays on the line (silence, as a phone line sends) past the old grace...
            await call.speak(b"", silence=OLD_GRACE_SECONDS + 2 - (time.monotonic() - signalled))
            assert runner.proc.poll() is None, "the runner exited during a call"
            heard = call.audio_seconds()
            # ... and is still answered.
            await call.speak(speech_pcm(call.rate), silence=0.4)
            await call.wait_for(lambda c: c.audio_seconds() >= heard + 0.38)
            assert len(fake.chat_requests()) == 2
        code = await asyncio.to_thread(runner.proc.wait, 15)  # the caller hung up: drained
        assert code == 0
        log = runner.stderr()
        assert "SIGTERM: draining, 1 active session(s), grace 120s" in log
        assert "drained: no active session" in log
    finally:
        runner.stop()
