"""Silero VAD for calls, on one ONNX session per process instead of one per call.

Pipecat's `SileroVADAnalyzer` loads its own ONNX `InferenceSession` of the Silero model per instance,
~10 MB of RSS per call (benchmarks/voice.py, docs/performance.md), and takes no session to share.
`CallVAD` is a Pipecat `VADAnalyzer` that runs the same packaged model through Pipecat's public
`SileroOnnxModel`: one instance loads the session once; each call gets a shallow copy of it, which
shares the session (immutable weights; ONNX Runtime's `run` is safe to call from several threads,
and each call's VAD runs on its own executor thread) and, after `reset_states()`, holds its own
recurrent state and audio context (the model rebinds them on every window, never writes them in
place). The analysis is Pipecat 1.14's: the same windows, confidences and the same rule for
resetting the model's state (tests/voice/test_vad.py checks it window by window against
`SileroVADAnalyzer`, so a Pipecat upgrade that changes either fails there).
"""

from __future__ import annotations

import copy
import functools
import threading
from importlib import resources

import numpy as np
from pipecat.audio.vad.silero import SileroOnnxModel
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

RATES = (8000, 16_000)  # what the model takes

# Pipecat's rule for resetting the model's recurrent state (non-speech, above all long silence at
# 8 kHz, drifts the state so that the next speech is under-reported): once this many seconds of
# audio have been scored since the last reset, reset at the first window where the VAD is quiet
# and the last LOW_WINDOWS windows all scored below LOW_CONFIDENCE.
RESET_INTERVAL_SECONDS = 2.0
LOW_CONFIDENCE = 0.1
LOW_WINDOWS = 5

_LOCK = threading.Lock()  # calls are built in threads (voice_calls.py): one load, not one per thread


@functools.cache
def _load() -> SileroOnnxModel:
    path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
    with resources.as_file(path) as file:
        return SileroOnnxModel(str(file), force_onnx_cpu=True)


def shared_model() -> SileroOnnxModel:
    """The process's loaded Silero model (loaded on first use); copy it per stream."""
    with _LOCK:
        return _load()


class CallVAD(VADAnalyzer):
    """Silero VAD of one audio stream, on the process's shared ONNX session."""

    def __init__(self, *, params: VADParams | None = None, sample_rate: int | None = None) -> None:
        super().__init__(sample_rate=sample_rate, params=params)
        self._silero = copy.copy(shared_model())
        self._silero.reset_states()  # this stream's own state, not the shared instance's
        self._windows_since_reset = 0
        self._low_windows = 0
        self._quiet = True  # the VAD's state after the last buffer (QUIET at the start)

    def set_sample_rate(self, sample_rate: int) -> None:
        if sample_rate not in RATES:
            raise ValueError(f"Silero VAD sample rate needs to be 16000 or 8000 (sample rate: {sample_rate})")
        super().set_sample_rate(sample_rate)

    def num_frames_required(self) -> int:
        return 512 if self.sample_rate == 16_000 else 256

    async def analyze_audio(self, buffer: bytes) -> VADState:
        state = await super().analyze_audio(buffer)
        self._quiet = state == VADState.QUIET
        return state

    def voice_confidence(self, buffer: bytes) -> float:
        audio = np.frombuffer(buffer, np.int16).astype(np.float32) / 32768.0
        confidence = float(self._silero(audio, self.sample_rate)[0].item())
        self._after_window(confidence)
        return confidence

    def _after_window(self, confidence: float) -> None:
        """Count the window; reset the model's state once a reset is due and the caller is quiet."""
        self._windows_since_reset += 1
        self._low_windows = self._low_windows + 1 if confidence < LOW_CONFIDENCE else 0
        due = (
            self._windows_since_reset * self.num_frames_required()
            >= RESET_INTERVAL_SECONDS * self.sample_rate
        )
        if due and self._quiet and self._low_windows >= LOW_WINDOWS:
            self._silero.reset_states()
            self._windows_since_reset = 0
