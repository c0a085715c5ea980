"""An assistant's name must make valid child names: `<name>-runner` is a DNS-1035 label (a Service
name), so the operator and `render` refuse other names with a message naming metadata.name."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aiassistant_contract.assistant import NAME_MAX_LENGTH, check_name
from aiassistant_contract.errors import SpecError
from aiassistant_operator.render import render
from aiassistant_operator.settings import Settings

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # apimachinery's IsDNS1035Label


def _assistant(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name, "namespace": "bots"},
        "spec": {"engineModel": "grok.grok-3", **spec},
    }


@pytest.mark.parametrize("name", ["a", "bot-1", "x" * NAME_MAX_LENGTH])
def test_every_child_of_a_valid_name_is_a_valid_name(name: str) -> None:
    assert check_name(name) == name
    objects = render(_assistant(name, replicas=2), Settings())
    assert {o["kind"] for o in objects} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for obj in objects:
        assert DNS_1035.match(obj["metadata"]["name"]), obj["metadata"]["name"]
        assert len(obj["metadata"]["name"]) <= 63
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63  # label values


@pytest.mark.parametrize("name", ["1bot", "my.bot", "Bot", "bot-", "x" * (NAME_MAX_LENGTH + 1), ""])
def test_names_that_make_invalid_children_are_refused(name: str) -> None:
    with pytest.raises(SpecError, match=r"^metadata\.name: ") as refused:
        render(_assistant(name), Settings())
    if name:
        assert "DNS-1035" in str(refused.value) and "'<name>-runner'" in str(refused.value)
