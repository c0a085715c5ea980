"""Pipecat text pipelines around the runner's LLM factory, for the factory's tests.

The runner's own text path (text_engine.py, llm_client.py) needs no pipeline and no Pipecat; these
pipelines check the factory's services the way a pipeline drives them, with the knobs that kept
Pipecat's added time-to-first-text small (measured before issue 12 against the raw OpenAI client on
loopback: Pipecat defaults +2.3..3.5 ms, all three below +0.4..0.6 ms):
- `TEXT_WORKER_OPTIONS`: no RTVI processor/observer (it turns every LLM frame into a client
  message: most of the cost), no turn tracking, no idle observer: -1.2 ms paced, -2.5 ms burst.
- `TextSink`: the text consumer runs in direct mode, inline in the LLM's push. Behind a queue it
  waits until the LLM task yields, and the LLM task parses every already-buffered chunk first:
  -0.4 ms paced, -2.3 ms burst.
- `text_user_params()`: no voice turn detection in the user aggregator (Pipecat's default builds
  VAD and Smart Turn strategies and loads the Smart Turn ONNX model): no measurable change per
  turn, but the factory builds in ~30 ms instead of ~70 ms and holds no model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pipecat.frames.frames import Frame, LLMFullResponseEndFrame, LLMTextFrame
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies

# PipelineWorker keyword arguments for text pipelines (no client to speak RTVI to, no speech turns,
# idleness is the server's business).
TEXT_WORKER_OPTIONS: Mapping[str, Any] = {
    "enable_rtvi": False,
    "enable_turn_tracking": False,
    "idle_timeout_secs": None,
}


def text_user_params() -> LLMUserAggregatorParams:
    """User aggregator parameters for text-only pipelines: turns arrive as messages, not speech."""
    return LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies())


TextCallback = Callable[[str], Awaitable[None] | None]


class TextSink(FrameProcessor):
    """Hands each streamed LLM text chunk to `on_text` and each finished response to `responses`.

    Direct mode: runs inline in the LLM's push (no queue hop), so `on_text` must not block.
    A function-calling turn ends two responses: the tool call's (usually empty) and the answer's.
    """

    def __init__(self, on_text: TextCallback | None = None, **kwargs: Any) -> None:
        super().__init__(enable_direct_mode=True, **kwargs)
        self._on_text = on_text
        self._current: list[str] = []
        self.responses: asyncio.Queue[str] = asyncio.Queue()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMTextFrame):
                self._current.append(frame.text)
                if self._on_text is not None:
                    result = self._on_text(frame.text)
                    if result is not None:
                        await result
            elif isinstance(frame, LLMFullResponseEndFrame):
                self.responses.put_nowait("".join(self._current))
                self._current.clear()
        await self.push_frame(frame, direction)
