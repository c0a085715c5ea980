"""The operator's Prometheus metrics (served on AIASSISTANT_METRICS_PORT by `run`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RECONCILES = Counter(
    "aiassistant_operator_reconciles",
    "AIAssistant reconciles by result: applied, unchanged, invalid, secret_missing.",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    "aiassistant_operator_reconcile_seconds",
    "Time to validate, render, apply and write the status of one AIAssistant.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class AssistantCollector(Collector):
    """Per-assistant gauges read from the `assistants` index at scrape time (so they are never
    stale and nothing keeps them): readiness, phase, and ready/desired runner pods."""

    def __init__(self, assistants: Mapping[Any, Iterable[Mapping[str, Any]]]) -> None:
        self._assistants = assistants

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily(
            "aiassistant_operator_assistant_ready",
            "1 if the AIAssistant is Ready (its current spec serves), else 0; `phase` says where it is.",
            labels=["assistant", "phase"],
        )
        pods = GaugeMetricFamily(
            "aiassistant_operator_assistant_replicas",
            "Runner pods of the AIAssistant: desired (spec.replicas), ready, updated (current spec).",
            labels=["assistant", "state"],
        )
        for bodies in _snapshot(self._assistants):
            for body in bodies:
                meta, shown = body.get("metadata") or {}, body.get("status") or {}
                name = f"{meta.get('namespace')}/{meta.get('name')}"
                phase = str(shown.get("phase") or "Unknown")
                ready.add_metric([name, phase], 1.0 if phase == "Ready" else 0.0)
                desired = (body.get("spec") or {}).get("replicas", 1)
                for state, value in (
                    ("desired", desired),
                    ("ready", shown.get("readyReplicas")),
                    ("updated", shown.get("updatedReplicas")),
                ):
                    pods.add_metric([name, state], float(value or 0))
        yield ready
        yield pods


def _snapshot(index: Mapping[Any, Iterable[Mapping[str, Any]]]) -> list[list[Mapping[str, Any]]]:
    """The index's values; the scrape runs in the metrics server's thread while kopf updates it."""
    for _ in range(5):
        try:
            return [list(bodies) for bodies in list(index.values())]
        except RuntimeError:  # changed size during iteration: take it again
            continue
    return []
