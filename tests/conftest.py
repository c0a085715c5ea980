"""Session fixtures shared by every suite: the local control plane (real kube-apiserver, etcd,
kube-controller-manager, kube-scheduler, kwok), started once, with the CRD installed.

Without the binaries (`make install` builds them) the tests that need it skip with the reason;
under CI=true they fail instead, so CI can never go green without the real control plane.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiassistant_devtools import build
from aiassistant_devtools.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "aiassistants.aiassistant.dev.yaml"


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    absent = build.missing()
    if absent:
        reason = (
            f"control-plane binaries missing in {build.bin_dir()}: {', '.join(absent)} (run `make install`)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with ControlPlane.running(crds=[CRD_FILE]) as plane:
        print(f"\ncontrol plane {plane.version} up in {plane.start_seconds:.1f}s at {plane.server}")
        yield plane
