"""Fallback models (`spec.fallbacks`): which model to ask when the one before it fails.

A model is given up for the next on a connection error, a timeout, 429, 5xx or 401 (its key was
refused); other answers (400: the request itself) would fail on any model and end the turn as before.
The chain itself (each model's key and endpoint) is models.py's.
- Text and tasks (text_engine.py): each request starts with the engine model; a model round that fails
  before any text streamed is sent to the next model.
- Voice calls (voice_pipeline.py): Pipecat's `LLMSwitcher` with its failover strategy holds the engine
  model's service and the fallbacks'. Pipecat's failover switches only when a service becomes
  unusable, which its error classification decides for permanent errors (401); `OutageFailover`
  also takes the outages above as unusable, so a dead primary falls over too. On a switch the turn
  that failed is asked again of the new model, so the caller hears an answer, not silence.
The answering model is in the `aiassistant_llm_answers_total{model}` metric, and for text in the
`X-AIAssistant-Model` response header.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .metrics import Metrics
from .models import Model

if TYPE_CHECKING:
    from pipecat.pipeline.llm_switcher import LLMSwitcher
    from pipecat.services.llm_service import LLMService

log = logging.getLogger(__name__)

FAILOVER_STATUSES = frozenset({401, 429})  # and every 5xx


def failover_status(status: int) -> bool:
    """Whether an HTTP status of a model's answer is a reason to ask the next model."""
    return status in FAILOVER_STATUSES or status >= 500


def failover_error(exception: BaseException | None) -> bool:
    """Whether a voice LLM error (the OpenAI client's exception) is a reason to switch models."""
    import openai

    if isinstance(exception, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(exception, openai.APIStatusError):
        return failover_status(exception.status_code)
    return isinstance(exception, ConnectionError | TimeoutError)


def switcher(
    llms: list[LLMService], models: Sequence[Model], metrics: Metrics, rerun: Callable[[], Awaitable[None]]
) -> LLMSwitcher[Any]:
    """Pipecat's LLMSwitcher over `llms` (the chain's services, in order) with OutageFailover; on a
    switch it logs, counts and awaits `rerun()` (which asks the failed turn again)."""
    from pipecat.pipeline.llm_switcher import LLMSwitcher

    names = {id(llm): m.engine_model for llm, m in zip(llms, models, strict=True)}
    switch: Any = LLMSwitcher(llms=llms, strategy_type=_strategy())
    previous = [models[0].engine_model]

    @switch.strategy.event_handler("on_service_switched")
    async def on_switched(strategy: Any, service: Any) -> None:
        to = names.get(id(service), "?")
        log.warning("voice LLM %s failed; switched to fallback %s", previous[0], to)
        metrics.llm_failover(previous[0], to)
        previous[0] = to
        await rerun()

    return switch


@functools.cache
def _strategy() -> type:
    from pipecat.pipeline.service_switcher import ServiceSwitcherStrategyFailover

    class OutageFailover(ServiceSwitcherStrategyFailover):
        """Pipecat's failover, also for outages: a model that timed out, could not be reached, or
        answered 429/5xx is marked unusable for the rest of the call, so the next one takes over."""

        async def handle_error(self, error: Any) -> Any:
            failed = error.processor or self.active_service
            if failed.is_usable and failover_error(error.exception):
                await failed.set_usable(False)
            return await super().handle_error(error)

    return OutageFailover
