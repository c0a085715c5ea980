"""The Grafana dashboard the chart ships (files/dashboard.json): every query names only metrics the
runner or the operator really exports (read from their registries after some traffic), and it
shows what operators asked for: sessions, calls, TTFT, errors, tokens, cost, readiness."""

from __future__ import annotations

import json
import re
from typing import Any

import prometheus_client

from aiassistant_operator import metrics as operator_metrics
from aiassistant_runner.metrics import Metrics
from tests.helm import CHART

DASHBOARD = json.loads((CHART / "files" / "dashboard.json").read_text())
# PromQL functions and keywords that look like names; the rest of an expression's words are metrics or labels.
METRIC = re.compile(r"\b(aiassistant_[a-z_]+)\b")


def exported() -> set[str]:
    """Every sample name the runner and the operator expose (with _total, _bucket, ... suffixes)."""
    runner = Metrics("ns/bot", "grok.grok-4.3", (1.25, 2.5))
    runner.session_started("call")
    runner.session_ended("call", failed=False, seconds=3)
    runner.llm_usage(10, 5)
    runner.llm_ttft.labels("ns/bot").observe(0.2)
    runner.service_seconds.labels("ns/bot", "tts", "ttfb").observe(0.1)
    runner.tool_call("lookup", ok=False)
    runner.session_rejected("text", "draining")
    index: dict[Any, list[dict[str, Any]]] = {
        ("ns", "bot"): [
            {"metadata": {"namespace": "ns", "name": "bot"}, "spec": {}, "status": {"phase": "Ready"}}
        ]
    }
    operator = prometheus_client.CollectorRegistry()
    operator.register(operator_metrics.AssistantCollector(index))
    operator_metrics.RECONCILES.labels(result="applied").inc(0)
    operator_metrics.RECONCILE_SECONDS.observe(0)
    names = {
        s.name
        for r in (runner.registry, operator, prometheus_client.REGISTRY)
        for m in r.collect()
        for s in m.samples
    }
    return {n for n in names if n.startswith("aiassistant_")}


def queries() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def test_every_query_names_an_exported_metric() -> None:
    known = exported()
    used = {name for expr in queries() for name in METRIC.findall(expr)}
    assert used, "no aiassistant_ metric in any query"
    assert used - known == set(), f"queried but not exported: {sorted(used - known)}"
    for expr in queries():
        assert METRIC.search(expr), f"a query without one of our metrics: {expr}"


def test_the_dashboard_covers_what_operators_watch() -> None:
    used = {name for expr in queries() for name in METRIC.findall(expr)}
    for wanted in (
        "aiassistant_active_sessions",
        "aiassistant_call_seconds_total",
        "aiassistant_llm_time_to_first_token_seconds_bucket",
        "aiassistant_llm_errors_total",
        "aiassistant_llm_prompt_tokens_total",
        "aiassistant_llm_cost_usd_total",
        "aiassistant_operator_assistant_ready",
    ):
        assert wanted in used, wanted
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert variables == {"datasource", "assistant"}
    # Each panel's query filters on the chosen assistants (the operator's own reconciles aside).
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            if "aiassistant_operator_reconcile" not in target["expr"]:
                assert 'assistant=~"$assistant"' in target["expr"], panel["title"]


def test_assistant_collector_reads_the_index() -> None:
    body = {
        "metadata": {"namespace": "bots", "name": "a"},
        "spec": {"replicas": 3},
        "status": {"phase": "RollingOut", "readyReplicas": 2, "updatedReplicas": 1},
    }
    registry = prometheus_client.CollectorRegistry()
    index: dict[Any, list[dict[str, Any]]] = {("bots", "a"): [body]}
    registry.register(operator_metrics.AssistantCollector(index))
    get = registry.get_sample_value
    assert get("aiassistant_operator_assistant_ready", {"assistant": "bots/a", "phase": "RollingOut"}) == 0
    for state, value in (("desired", 3), ("ready", 2), ("updated", 1)):
        assert (
            get("aiassistant_operator_assistant_replicas", {"assistant": "bots/a", "state": state}) == value
        )
    body["status"] = {"phase": "Ready", "readyReplicas": 3, "updatedReplicas": 3}
    assert get("aiassistant_operator_assistant_ready", {"assistant": "bots/a", "phase": "Ready"}) == 1
    index.clear()  # deleted: gone from the next scrape, nothing to clean up
    assert get("aiassistant_operator_assistant_ready", {"assistant": "bots/a", "phase": "Ready"}) is None
