"""The calls' Silero VAD (runner/aiassistant_runner/vad.py): Pipecat's analysis, window by window,
on one ONNX session per process, with each stream's own model state."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from aiassistant_runner.vad import CallVAD, shared_model
from tests.voice.clients import speech_pcm
from tests.voice.costs import cost


def stream(rate: int) -> bytes:
    """Speech between long silences, three times: the model state resets (due every 2 s of audio,
    only while quiet) happen, and speech follows each one."""
    silence = bytes(rate * 2 * 5)
    return (silence + speech_pcm(rate) + bytes(rate * 2 * 3)) * 3


class Recording:
    """Records the confidence of every window an analyzer scores (through its public method)."""

    @staticmethod
    def of(base: type[VADAnalyzer]) -> type[VADAnalyzer]:
        class Recorded(base):  # type: ignore[valid-type,misc]
            def __init__(self, **kwargs: object) -> None:
                super().__init__(**kwargs)
                self.confidences: list[float] = []

            def voice_confidence(self, buffer: bytes) -> float:
                confidence = super().voice_confidence(buffer)
                self.confidences.append(float(np.asarray(confidence).item()))  # Pipecat's: a 1-array
                return confidence

        return Recorded


async def analyze(vad: VADAnalyzer, pcm: bytes, rate: int) -> list[VADState]:
    vad.set_sample_rate(rate)
    step = int(rate * 0.02) * 2  # 20 ms buffers, as the transport hands them over
    return [await vad.analyze_audio(pcm[i : i + step]) for i in range(0, len(pcm), step)]


@pytest.mark.parametrize("rate", [8000, 16_000])
async def test_same_confidences_and_states_as_pipecats_silero_vad(rate: int) -> None:
    pcm = stream(rate)
    params = VADParams(stop_secs=0.2)
    theirs = Recording.of(SileroVADAnalyzer)(params=params)
    ours = Recording.of(CallVAD)(params=params)
    expected = await analyze(theirs, pcm, rate)
    got = await analyze(ours, pcm, rate)
    assert got == expected
    assert ours.confidences == theirs.confidences  # type: ignore[attr-defined]
    assert {VADState.SPEAKING, VADState.QUIET} <= set(got)
    assert got.count(VADState.STARTING) >= 3  # each of the three utterances was heard


async def test_streams_on_the_shared_session_keep_their_own_state() -> None:
    """Two calls interleaved on the one session: each sees exactly what it sees alone."""
    rate = 8000
    speech, silence = stream(rate), bytes(len(stream(rate)))
    alone = [await analyze(CallVAD(), pcm, rate) for pcm in (speech, silence)]
    a, b = CallVAD(), CallVAD()
    a.set_sample_rate(rate)
    b.set_sample_rate(rate)
    step = int(rate * 0.02) * 2
    together: tuple[list[VADState], list[VADState]] = ([], [])
    for i in range(0, len(speech), step):
        together[0].append(await a.analyze_audio(speech[i : i + step]))
        together[1].append(await b.analyze_audio(silence[i : i + step]))
    assert list(together) == alone
    assert set(together[1]) == {VADState.QUIET}


def test_calls_do_not_load_a_model_each() -> None:
    """Pipecat's analyzer loads a ~10 MB ONNX session per instance; a call's costs next to nothing."""
    ours = cost("from aiassistant_runner.vad import CallVAD", "CallVAD()", n=20)
    theirs = cost("from pipecat.audio.vad.silero import SileroVADAnalyzer", "SileroVADAnalyzer()", n=5)
    assert theirs.mb > 4, f"{theirs.mb:.2f} MB per SileroVADAnalyzer: the comparison no longer holds"
    assert ours.mb < 0.5, f"{ours.mb:.2f} MB per CallVAD"
    assert ours.ms < theirs.ms / 5, f"{ours.ms:.1f} ms per CallVAD, {theirs.ms:.1f} ms per SileroVADAnalyzer"


def test_one_model_for_threads_building_calls_at_once() -> None:
    models: list[object] = []
    threads = [threading.Thread(target=lambda: models.append(shared_model())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(m) for m in models}) == 1
