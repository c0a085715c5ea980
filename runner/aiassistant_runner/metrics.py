"""Prometheus metrics of one runner process, labelled by assistant (`namespace/name`).

Each app gets its own CollectorRegistry (tests build several apps in one process). The worker
processes of one pod (workers.py) keep their samples in prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR) and each renders the pod's sums. Pipecat services
report their timings and token usage as `MetricsFrame`s; `PipecatMetricsObserver` turns those into
these metrics, so a pipeline only adds the observer (and enables metrics in its params).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from pipecat.observers.base_observer import BaseObserver

SessionKind = Literal["call", "text", "task"]
SESSION_KINDS: tuple[SessionKind, ...] = ("call", "text", "task")
ServiceKind = Literal["llm", "stt", "tts"]

# prometheus_client keeps the samples of a pod's worker processes in files here (read at its import).
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latencies of interactive services: from a few ms (loopback) to tens of seconds (a stuck upstream).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)


class Metrics:
    """The runner's metrics; every sample carries the `assistant` label."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, assistant: str, model: str = "", price: tuple[float, float] | None = None) -> None:
        """`model` labels the cost; `price` is USD per 1M prompt, completion tokens (None: no cost)."""
        self.assistant = assistant
        self.model = model
        self.price = price
        self.registry = CollectorRegistry()
        r, a = self.registry, ["assistant"]
        self.active_sessions = Gauge(
            "aiassistant_active_sessions",
            "Sessions in progress.",
            [*a, "kind"],
            registry=r,
            multiprocess_mode="livesum",  # with workers: the pod's, over the live ones
        )
        self.sessions_total = Counter("aiassistant_sessions", "Sessions started.", [*a, "kind"], registry=r)
        self.sessions_failed = Counter(
            "aiassistant_sessions_failed", "Sessions that ended with an error.", [*a, "kind"], registry=r
        )
        self.sessions_rejected = Counter(
            "aiassistant_sessions_rejected",
            "Sessions refused (draining or at maxSessionsPerPod).",
            [*a, "kind", "reason"],
            registry=r,
        )
        self.llm_ttft = Histogram(
            "aiassistant_llm_time_to_first_token_seconds",
            "LLM time to first token (Pipecat TTFB of the LLM service); of a text turn asked for "
            "the whole answer at once, the time to that answer.",
            a,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_errors = Counter(
            "aiassistant_llm_errors",
            "LLM requests that failed (5xx, timeout, garbled stream).",
            a,
            registry=r,
        )
        self.tokens_in = Counter("aiassistant_llm_prompt_tokens", "LLM prompt tokens.", a, registry=r)
        self.tokens_out = Counter(
            "aiassistant_llm_completion_tokens", "LLM completion tokens.", a, registry=r
        )
        self.cost = Counter(
            "aiassistant_llm_cost_usd",
            "What the LLM tokens cost, USD, at the model's price (the registry's list price or the "
            "operator's AIASSISTANT_MODEL_PRICES).",
            [*a, "model"],
            registry=r,
        )
        self.call_seconds = Counter(
            "aiassistant_call_seconds", "Seconds of voice calls, counted when each call ends.", a, registry=r
        )
        self.service_seconds = Histogram(
            "aiassistant_service_seconds",
            "Processing time reported by Pipecat services (metric: ttfb or processing).",
            [*a, "service", "metric"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tool_calls = Counter(
            "aiassistant_tool_calls",
            "Tool calls by tool and outcome (ok or error).",
            [*a, "tool", "outcome"],
            registry=r,
        )
        self.llm_answers = Counter(
            "aiassistant_llm_answers",
            "LLM responses by the model that gave them (the engine model or a fallback).",
            [*a, "model"],
            registry=r,
        )
        self.llm_failovers = Counter(
            "aiassistant_llm_failovers",
            "Requests or calls moved from a failing model to the next fallback.",
            [*a, "from_model", "to_model"],
            registry=r,
        )
        self.key_checks = Counter(
            "aiassistant_key_checks",
            "Key checks at start by provider, env var and result (accepted, rejected, unverified, skipped).",
            [*a, "provider", "env", "result"],
            registry=r,
        )
        self.access_refusals = Counter(
            "aiassistant_access_refused",
            "Requests and call sockets refused by access control (reason: missing, invalid, "
            "rate_limited, no_credentials).",
            [*a, "endpoint", "reason"],
            registry=r,
        )
        self.llm_protocol_errors = Counter(
            "aiassistant_llm_protocol_errors",
            "Upstream 200 answers that were not the protocol (HTML, a stream without a finish).",
            a,
            registry=r,
        )
        self.llm_protocol_errors.labels(assistant)
        # The children every text turn counts in, bound once (a labels() lookup per sample was a few
        # percent of a turn's CPU); binding them also exposes zeros from the start, which
        # dashboards and rate() like.
        self._active = {kind: self.active_sessions.labels(assistant, kind) for kind in SESSION_KINDS}
        self._started = {kind: self.sessions_total.labels(assistant, kind) for kind in SESSION_KINDS}
        self._failed = {kind: self.sessions_failed.labels(assistant, kind) for kind in SESSION_KINDS}
        self._ttft = self.llm_ttft.labels(assistant)
        self._tokens_in = self.tokens_in.labels(assistant)
        self._tokens_out = self.tokens_out.labels(assistant)
        self._cost = self.cost.labels(assistant, model) if price is not None else None
        self._answers: dict[str, Any] = {}  # model -> its llm_answers child, bound on its first answer
        self.llm_errors.labels(assistant)
        self.call_seconds.labels(assistant)

    # -- sessions (called by Sessions) --------------------------------------------------------
    def session_started(self, kind: SessionKind) -> None:
        self._started[kind].inc()
        self._active[kind].inc()

    def session_ended(self, kind: SessionKind, *, failed: bool, seconds: float = 0.0) -> None:
        self._active[kind].dec()
        if kind == "call":
            self.call_seconds.labels(self.assistant).inc(max(0.0, seconds))
        if failed:
            self._failed[kind].inc()

    def session_rejected(self, kind: SessionKind, reason: str) -> None:
        self.sessions_rejected.labels(self.assistant, kind, reason).inc()

    def access_refused(self, endpoint: str, reason: str) -> None:
        self.access_refusals.labels(self.assistant, endpoint, reason).inc()

    # -- services -------------------------------------------------------------------------------
    def llm_error(self) -> None:
        self.llm_errors.labels(self.assistant).inc()

    def llm_answer(self, model: str) -> None:
        child = self._answers.get(model)
        if child is None:
            child = self._answers[model] = self.llm_answers.labels(self.assistant, model)
        child.inc()

    def llm_first_token(self, seconds: float) -> None:
        self._ttft.observe(seconds)

    def llm_failover(self, from_model: str, to_model: str) -> None:
        self.llm_failovers.labels(self.assistant, from_model, to_model).inc()

    def key_check(self, provider: str, env: str, result: str) -> None:
        self.key_checks.labels(self.assistant, provider, env, result).inc()

    def tool_call(self, tool: str, *, ok: bool) -> None:
        self.tool_calls.labels(self.assistant, tool, "ok" if ok else "error").inc()

    def llm_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        prompt, completion = max(0, prompt_tokens), max(0, completion_tokens)
        self._tokens_in.inc(prompt)
        self._tokens_out.inc(completion)
        if self._cost is not None and self.price is not None:
            self._cost.inc((prompt * self.price[0] + completion * self.price[1]) / 1_000_000)

    def observe(self, service: ServiceKind, data: Any) -> None:
        """Record one Pipecat `MetricsData` reported by an `llm`, `stt` or `tts` service."""
        from pipecat.metrics.metrics import LLMUsageMetricsData, ProcessingMetricsData, TTFBMetricsData

        if isinstance(data, LLMUsageMetricsData):
            self.llm_usage(data.value.prompt_tokens, data.value.completion_tokens)
        elif isinstance(data, TTFBMetricsData):
            if service == "llm":
                self.llm_first_token(data.value)
                if data.model:  # a first token: that model answered
                    self.llm_answer(data.model)
            self.service_seconds.labels(self.assistant, service, "ttfb").observe(data.value)
        elif isinstance(data, ProcessingMetricsData):
            self.service_seconds.labels(self.assistant, service, "processing").observe(data.value)

    def observer(self) -> BaseObserver:
        """A Pipecat observer feeding these metrics; add it to a PipelineWorker's observers."""
        return _observer_class()(self)

    def render(self) -> bytes:
        path = os.environ.get(MULTIPROCESS_DIR_ENV)
        if not path:
            return generate_latest(self.registry)
        pod = CollectorRegistry()  # every worker's samples, summed
        multiprocess.MultiProcessCollector(pod, path)
        return generate_latest(pod)


@functools.cache
def _observer_class() -> Any:
    # Pipecat is imported on first use: the operator imports nothing from here, and the runner's
    # /healthz should not wait for Pipecat's import at start.
    from pipecat.frames.frames import MetricsFrame
    from pipecat.observers.base_observer import BaseObserver, FramePushed
    from pipecat.services.llm_service import LLMService
    from pipecat.services.stt_service import STTService
    from pipecat.services.tts_service import TTSService

    kinds: tuple[tuple[type, ServiceKind], ...] = (
        (LLMService, "llm"),
        (STTService, "stt"),
        (TTSService, "tts"),
    )

    class PipecatMetricsObserver(BaseObserver):
        """Feeds MetricsFrames of LLM/STT/TTS services into `Metrics` (each frame once)."""

        def __init__(self, metrics: Metrics) -> None:
            super().__init__(observe_every_push=False)
            self._metrics = metrics

        async def on_push_frame(self, data: FramePushed) -> None:
            if not isinstance(data.frame, MetricsFrame):
                return
            service = next((kind for cls, kind in kinds if isinstance(data.source, cls)), None)
            if service is None:
                return
            for item in data.frame.data:
                self._metrics.observe(service, item)

    return PipecatMetricsObserver
