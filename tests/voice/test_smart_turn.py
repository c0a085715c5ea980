"""The calls' smart-turn analyzer (runner/aiassistant_runner/smart_turn.py): Pipecat's local model,
loaded once per process; each call's copy judges turns as Pipecat's own analyzer does and keeps its
own audio; a bounded number of turns is judged at once."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

from aiassistant_runner.smart_turn import INFERENCES_AT_ONCE, call_smart_turn
from tests.voice.clients import VOICED_RMS, speech_pcm
from tests.voice.costs import cost

RATE = 16_000
STEP = int(RATE * 0.02) * 2  # 20 ms chunks, as the aggregator hands them over


def voiced(chunk: bytes) -> bool:
    x = np.frombuffer(chunk, dtype=np.int16).astype(np.float64)
    return bool(len(x)) and float(np.sqrt(np.mean(x * x))) > VOICED_RMS


def chunks(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + STEP] for i in range(0, len(pcm), STEP)]


async def judge(analyzer: BaseTurnAnalyzer, pcm: bytes) -> list[Any]:
    """What the analyzer says after every chunk, and its verdict (state, probability) at the end."""
    analyzer.set_sample_rate(RATE)
    states: list[Any] = [analyzer.append_audio(c, voiced(c)) for c in chunks(pcm)]
    state, metrics = await analyzer.analyze_end_of_turn()
    return [*states, state, getattr(metrics, "probability", None)]


async def test_a_calls_copy_judges_as_pipecats_analyzer() -> None:
    pcm = speech_pcm(RATE) + bytes(RATE // 5 * 2)  # the question, then a 200 ms pause
    expected = await judge(LocalSmartTurnAnalyzerV3(), pcm)
    assert expected[-1] is not None  # the model ran
    assert await judge(call_smart_turn(), pcm) == expected
    assert await judge(call_smart_turn(), pcm) == expected  # and again: the copy left nothing behind


async def test_copies_fed_at_once_keep_their_own_audio() -> None:
    speech = speech_pcm(RATE) + bytes(RATE // 5 * 2)
    half = speech_pcm(RATE)[: len(speech) // 2]
    other = half + bytes(len(speech) - len(half))  # a caller cut off mid-sentence
    alone = [await judge(call_smart_turn(), pcm) for pcm in (speech, other)]
    a, b = call_smart_turn(), call_smart_turn()
    a.set_sample_rate(RATE)
    b.set_sample_rate(RATE)
    together: tuple[list[Any], list[Any]] = ([], [])
    for x, y in zip(chunks(speech), chunks(other), strict=True):
        together[0].append(a.append_audio(x, voiced(x)))
        together[1].append(b.append_audio(y, voiced(y)))
    for analyzer, seen in zip((a, b), together, strict=True):
        state, metrics = await analyzer.analyze_end_of_turn()
        seen += [state, getattr(metrics, "probability", None)]
    assert list(together) == alone
    assert alone[0][-1] != alone[1][-1]  # the two callers' audio did give different verdicts


def test_calls_do_not_load_the_model_each() -> None:
    ours = cost("from aiassistant_runner.smart_turn import call_smart_turn", "call_smart_turn()", n=20)
    theirs = cost(
        "from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3",
        "LocalSmartTurnAnalyzerV3()",
        n=5,
    )
    assert theirs.mb > 4, f"{theirs.mb:.2f} MB per LocalSmartTurnAnalyzerV3: the comparison no longer holds"
    assert ours.mb < 0.5, f"{ours.mb:.2f} MB per call's analyzer"


async def test_no_more_turns_are_judged_at_once_than_the_bound() -> None:
    """Eight callers pausing at the same moment: at most INFERENCES_AT_ONCE inferences overlap (the
    session's working memory grows with them), and every turn is still judged as alone."""
    pcm = speech_pcm(RATE) + bytes(RATE // 5 * 2)
    expected = await judge(call_smart_turn(), pcm)
    running, most = 0, 0

    analyzers = [call_smart_turn() for _ in range(8)]
    for analyzer in analyzers:
        analyzer.set_sample_rate(RATE)
        for c in chunks(pcm):
            analyzer.append_audio(c, voiced(c))
    original = LocalSmartTurnAnalyzerV3.analyze_end_of_turn

    async def counted(self: Any) -> Any:  # inside the bound: what runs the model
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await original(self)
        finally:
            running -= 1

    LocalSmartTurnAnalyzerV3.analyze_end_of_turn = counted  # type: ignore[method-assign]
    try:
        verdicts = await asyncio.gather(*(a.analyze_end_of_turn() for a in analyzers))
    finally:
        LocalSmartTurnAnalyzerV3.analyze_end_of_turn = original  # type: ignore[method-assign]
    assert most == INFERENCES_AT_ONCE
    assert [[state, getattr(m, "probability", None)] for state, m in verdicts] == [expected[-2:]] * 8
