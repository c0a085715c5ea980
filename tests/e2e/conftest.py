"""Fixtures of the kind e2e suite: skip with the reason where Docker or kind is missing, else one
kind cluster for the session with both images built and loaded and the chart installed.

Env: AIASSISTANT_E2E_KEEP=1 keeps the cluster afterwards (for debugging);
AIASSISTANT_E2E_CLUSTER names it (default aiassistant-e2e); AIASSISTANT_E2E_TAG tags the images.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import (
    CLUSTER_NAME,
    OPERATOR_IMAGE,
    ROOT,
    RUNNER_IMAGE,
    Cluster,
    build_images,
    why_not_runnable,
)

OPERATOR_NAMESPACE = "aiassistant-system"
RELEASE = "aiassistant-operator"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    kube = Cluster(CLUSTER_NAME, Path(tmp_path_factory.mktemp("kind")) / "kubeconfig")
    build_images()
    kube.create()
    try:
        kube.load(OPERATOR_IMAGE, RUNNER_IMAGE)
        operator_repo, operator_tag = OPERATOR_IMAGE.split(":")
        runner_repo, runner_tag = RUNNER_IMAGE.split(":")
        kube.helm(
            "upgrade", "--install", RELEASE, str(ROOT / "charts" / "aiassistant-operator"),
            "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
            "--set", f"images.operator.repository={operator_repo}",
            "--set", f"images.operator.tag={operator_tag}",
            "--set", "images.operator.pullPolicy=Never",
            "--set", f"images.runner.repository={runner_repo}",
            "--set", f"images.runner.tag={runner_tag}",
            "--set", "images.runner.pullPolicy=Never",
            "--set", "logLevel=debug",
            "--wait", "--timeout", "300s",
        )  # fmt: skip
        yield kube
    finally:
        if os.environ.get("AIASSISTANT_E2E_KEEP") != "1":
            kube.delete()
