"""How long the runner waits for an LLM and when it asks again: one policy for voice and text.

- Each attempt: connect within `connect_seconds`; every wait for the next bytes of a streamed
  answer is bounded by `read_seconds` (a stream that stalls that long is a failed attempt). A text
  turn asking for the whole answer at once (llm_client.py) sees no bytes until the answer is done,
  so no stall can be told from a long answer: only the turn's deadline bounds it
  (limits.turnTimeoutSeconds, taskTimeoutSeconds).
- A failed attempt is retried once (`max_retries`) on a connection error, a timeout, 408, 409, 429 or
  a 5xx — the OpenAI SDK's rule, with one retry instead of its two, so an outage costs a caller at
  most two bounded waits. Other statuses (400: the request itself) are not retried.
- Voice reads are bounded tighter than text: a caller hears silence while the model stalls, and after
  the retry the bot apologises and the call goes on (voice_pipeline.py); a text client waits for an
  answer and gets an apology appended when both attempts fail (text_engine.py).
Voice applies it to the OpenAI client of the Pipecat service (llm_factory.py); text turns to their
own HTTP client (llm_client.py). Fallback models (fallbacks.py) are asked after the retry.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx


@dataclass(frozen=True)
class LLMPolicy:
    """Timeouts and retries of one LLM request."""

    read_seconds: float
    connect_seconds: float = 5.0
    max_retries: int = 1
    retry_delay_seconds: float = 0.5  # text; the OpenAI client (voice) uses its own backoff from 0.5 s

    @staticmethod
    def retryable(status: int) -> bool:
        """Whether an HTTP status of a failed attempt is worth one more attempt."""
        return status in RETRY_STATUSES or status >= 500


TEXT_POLICY = LLMPolicy(read_seconds=30.0)
VOICE_POLICY = LLMPolicy(read_seconds=8.0)
