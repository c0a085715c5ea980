"""The operator's Prometheus metrics (served on AIASSISTANT_METRICS_PORT by `run`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
