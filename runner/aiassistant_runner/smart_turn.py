"""Pipecat's local smart-turn model for calls (`smartTurn: true`), loaded once per process.

Pipecat's `LocalSmartTurnAnalyzerV3`, the stop strategy `UserTurnStrategies()` picks by default,
builds an ONNX `InferenceSession` of its bundled model per instance: ~10.6 MB of RSS and its load
time per call (docs/performance.md). It takes no session to share, so `call_smart_turn()` hands each
call a shallow copy of one loaded analyzer that is itself never fed audio: the copy shares the
session (immutable weights; ONNX Runtime's `run` is safe from several threads, and each analyzer
runs the model on its own executor thread, made on first use) and the analyzer's parameters, and
`clear()` (Pipecat's public reset) gives it its own audio buffer and turn state before first use.
tests/voice/test_smart_turn.py checks that a copy judges turns exactly as Pipecat's own analyzer
and that copies fed at once do not see each other's audio.
"""

from __future__ import annotations

import copy
import functools
import threading

from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

_LOCK = threading.Lock()  # calls are built in threads (voice_calls.py): one load, not one per thread


@functools.cache
def _loaded() -> LocalSmartTurnAnalyzerV3:
    return LocalSmartTurnAnalyzerV3()


def shared_analyzer() -> LocalSmartTurnAnalyzerV3:
    """The process's loaded analyzer (loaded on first use); never feed it: copy it per call."""
    with _LOCK:
        return _loaded()


def call_smart_turn() -> LocalSmartTurnAnalyzerV3:
    """A smart-turn analyzer for one call, on the process's one model session."""
    analyzer = copy.copy(shared_analyzer())
    analyzer.clear()  # its own (new) buffer and turn state, not the shared instance's
    return analyzer
