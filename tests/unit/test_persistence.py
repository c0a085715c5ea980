"""kopf's bookkeeping storage: the cheap essence equals kopf's own for an AIAssistant."""

from __future__ import annotations

from typing import Any

import kopf

from aiassistant_operator.persistence import DiffBaseStorage

ASSISTANT: Any = {
    "apiVersion": "aiassistant.dev/v1alpha1",
    "kind": "AIAssistant",
    "metadata": {
        "name": "a",
        "namespace": "default",
        "uid": "u-1",
        "generation": 2,
        "labels": {"team": "support"},
        "annotations": {"note": "x", "aiassistant.dev/kopf-managed": "yes"},
    },
    "spec": {"engineModel": "grok.grok-3", "tools": [{"name": "t", "url": "http://t"}]},
    "status": {"phase": "Ready", "kopf": {"last-handled-configuration": "{}"}},
}


def test_assistant_essence_equals_kopfs() -> None:
    body = kopf.Body(ASSISTANT)
    ours, theirs = DiffBaseStorage(), kopf.StatusDiffBaseStorage(name="kopf")
    assert ours.build(body=body) == theirs.build(body=body)
    assert ours.build(body=body, extra_fields=[("spec",)]) == theirs.build(
        body=body, extra_fields=[("spec",)]
    )
    status_field = [("status", "phase")]  # a field kopf would normally drop: the general way
    assert ours.build(body=body, extra_fields=status_field) == theirs.build(
        body=body, extra_fields=status_field
    )


def test_essence_is_a_copy() -> None:
    essence: Any = DiffBaseStorage().build(body=kopf.Body(ASSISTANT))
    essence["spec"]["tools"][0]["name"] = "changed"
    assert ASSISTANT["spec"]["tools"][0]["name"] == "t"


def test_other_kinds_have_no_essence() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"x": 1}}
    assert DiffBaseStorage().build(body=kopf.Body(deployment)) == {}
