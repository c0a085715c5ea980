"""Pipecat's local smart-turn model for calls (`smartTurn: true`), loaded once per process.

Pipecat's `LocalSmartTurnAnalyzerV3`, the stop strategy `UserTurnStrategies()` picks by default,
builds an ONNX `InferenceSession` of its bundled model per instance: ~10.6 MB of RSS and its load
time per call (docs/performance.md). It takes no session to share, so `call_smart_turn()` hands each
call a shallow copy of one loaded analyzer that is itself never fed audio: the copy shares the
session (immutable weights; ONNX Runtime's `run` is safe from several threads, and each analyzer
runs the model on its own executor thread, made on first use) and the analyzer's parameters, and
`clear()` (Pipecat's public reset) gives it its own audio buffer and turn state before first use.
The shared session's working memory (its arena: ~30 MB per inference running, kept once grown)
grows with the inferences that run at the same moment, so at most INFERENCES_AT_ONCE turns are
judged at once per process; a turn over that waits for one to finish (an inference is tens of ms of
CPU, and more at once than the pod has cores would only queue inside ONNX Runtime).
tests/voice/test_smart_turn.py checks that a copy judges turns exactly as Pipecat's own analyzer,
that copies fed at once do not see each other's audio, and the bound.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import threading
import weakref
from typing import Any

from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

INFERENCES_AT_ONCE = 2

_LOCK = threading.Lock()  # calls are built in threads (voice_calls.py): one load, not one per thread
_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _turns() -> asyncio.Semaphore:
    """The running loop's bound on turns judged at once (a Semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    with _LOCK:
        if loop not in _TURNS:
            _TURNS[loop] = asyncio.Semaphore(INFERENCES_AT_ONCE)
        return _TURNS[loop]


class CallSmartTurn(LocalSmartTurnAnalyzerV3):
    """Pipecat's analyzer, judging at most INFERENCES_AT_ONCE turns at once per process."""

    async def analyze_end_of_turn(self) -> Any:
        async with _turns():
            return await super().analyze_end_of_turn()


@functools.cache
def _loaded() -> CallSmartTurn:
    return CallSmartTurn()


def shared_analyzer() -> CallSmartTurn:
    """The process's loaded analyzer (loaded on first use); never feed it: copy it per call."""
    with _LOCK:
        return _loaded()


def call_smart_turn() -> CallSmartTurn:
    """A smart-turn analyzer for one call, on the process's one model session."""
    analyzer = copy.copy(shared_analyzer())
    analyzer.clear()  # its own (new) buffer and turn state, not the shared instance's
    return analyzer
