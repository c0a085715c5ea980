"""The CRD on a real kube-apiserver: it installs (structural, within the CEL cost budget), its CEL
rules accept and refuse what the unit tests say (cel-python) — here the apiserver decides — and
kubectl explains it, prints its columns and refuses unknown fields."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiassistant_devtools.controlplane import ControlPlane
from aiassistant_devtools.kubeapi import Kube, path
from tests.helm import ROOT, tool
from tests.integration.conftest import assistant
from tests.unit.test_crd import CEL_ACCEPTED, CEL_REJECTED

CRD = yaml.safe_load((ROOT / "crds" / "aiassistants.aiassistant.dev.yaml").read_text())


async def dry_run(kube: Kube, obj: dict[str, Any], **params: str) -> tuple[int, Any]:
    """Create with dryRun=All: validated (schema, CEL, admission) and never stored."""
    url = path("AIAssistant", obj["metadata"]["namespace"])
    return await kube.request("POST", url, obj, params={"dryRun": "All", **params})


async def test_the_crd_is_established_and_structural(kube: Kube) -> None:
    crd = await kube.get(path("CustomResourceDefinition", name=CRD["metadata"]["name"]))
    assert crd is not None
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    assert "NonStructuralSchema" not in conditions
    assert crd["status"]["acceptedNames"]["shortNames"] == ["aia"]


@pytest.mark.parametrize("value", CEL_ACCEPTED)
async def test_apiserver_accepts_the_engine_model_format(kube: Kube, namespace: str, value: str) -> None:
    status, body = await dry_run(kube, assistant("bot", namespace, engineModel=value))
    assert status == 201, body


@pytest.mark.parametrize(("value", "message"), CEL_REJECTED)
async def test_apiserver_refuses_a_bad_engine_model(
    kube: Kube, namespace: str, value: str, message: str
) -> None:
    status, body = await dry_run(kube, assistant("bot", namespace, engineModel=value))
    assert status == 422, body
    assert "spec.engineModel" in body["message"] and message in body["message"], body["message"]


@pytest.mark.parametrize("name", ["a", "bot-1", "support-bot", "x" * 56])
async def test_apiserver_accepts_names_that_make_valid_children(
    kube: Kube, namespace: str, name: str
) -> None:
    status, body = await dry_run(kube, assistant(name, namespace))
    assert status == 201, body


@pytest.mark.parametrize("name", ["1bot", "my.bot", "bot-", "-bot", "x" * 57, "a" * 63])
async def test_apiserver_refuses_names_that_make_invalid_children(
    kube: Kube, namespace: str, name: str
) -> None:
    status, body = await dry_run(kube, assistant(name, namespace))
    assert status == 422, body
    assert "metadata.name" in body["message"] and "DNS-1035" in body["message"], body["message"]
    assert "'<name>-runner'" in body["message"]


async def test_strict_field_validation_refuses_unknown_fields(kube: Kube, namespace: str) -> None:
    obj = assistant("bot", namespace, bogus=1)
    status, body = await dry_run(kube, obj, fieldValidation="Strict")
    assert status == 400 and body["reason"] == "BadRequest", body  # strict decoding fails: 400
    assert 'unknown field "spec.bogus"' in body["message"], body
    # The default (Warn) prunes it: a patch with an unknown field is not silently kept either.
    status, body = await dry_run(kube, obj)
    assert status == 201 and "bogus" not in body["spec"], body


def kubectl(cluster: ControlPlane, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_kubectl_explains_the_fields(cluster: ControlPlane) -> None:
    explained = kubectl(cluster, "explain", "aiassistant.spec.engineModel")
    assert explained.returncode == 0, explained.stderr
    description = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "engineModel"
    ]["description"]
    assert description.split()[0] in explained.stdout and "<target>.<model>" in explained.stdout
    spec = kubectl(cluster, "explain", "aia.spec")
    assert spec.returncode == 0 and "engineModel" in spec.stdout and "secretRef" in spec.stdout


def test_kubectl_get_shows_the_columns_and_apply_is_strict(
    cluster: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    manifest = yaml.safe_dump(assistant("cols", namespace))
    applied = kubectl(cluster, "apply", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    table = kubectl(cluster, "get", "aia", "-n", namespace)
    assert table.returncode == 0, table.stderr
    assert table.stdout.split()[:7] == ["NAME", "MODEL", "TARGET", "PHASE", "READY", "REASON", "AGE"], (
        table.stdout
    )
    assert "grok.grok-4.3" in table.stdout
    bad = yaml.safe_dump(assistant("typo", namespace, engineModle="grok.grok-3"))
    refused = kubectl(cluster, "apply", "-f", "-", stdin=bad)  # kubectl's default --validate=strict
    assert refused.returncode != 0 and 'unknown field "spec.engineModle"' in refused.stderr, refused.stderr
