"""The control-plane build's pure parts: the wrapper module's replace list, pins and ldflags."""

from __future__ import annotations

import pytest

from aiassistant_devtools import build

GOMOD = """module k8s.io/kubernetes

go 1.25.0

require (
\tgo.etcd.io/etcd/server/v3 v3.6.5 // indirect
\tk8s.io/api v0.0.0
\tk8s.io/apimachinery v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
\tk8s.io/kube-openapi => k8s.io/kube-openapi v0.0.0-2025
)
"""


def test_every_staging_module_is_replaced_by_its_published_tag() -> None:
    assert build.staging_replaces(GOMOD, "v1.35.4") == {
        "k8s.io/api": "v0.35.4",
        "k8s.io/apimachinery": "v0.35.4",
    }  # only ./staging replaces: the others are Kubernetes' own pins, kept by Go


def test_a_go_mod_without_staging_replaces_is_an_error() -> None:
    with pytest.raises(ValueError, match="no staging replace"):
        build.staging_replaces("module x\n", "v1.35.4")


def test_etcd_is_the_version_kubernetes_requires() -> None:
    assert build.required_version(GOMOD, "go.etcd.io/etcd/server/v3") == "v3.6.5"
    with pytest.raises(ValueError, match="not required"):
        build.required_version(GOMOD, "go.etcd.io/bbolt")


def test_version_ldflags_stamp_the_real_version() -> None:
    flags = build._ldflags("v1.35.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=35" in flags
    with pytest.raises(ValueError):
        build._ldflags("1.35")


def test_binaries_live_in_a_folder_per_pinned_version(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIASSISTANT_KUBE_CACHE", str(tmp_path))
    folder = build.bin_dir()
    assert folder.parent.name == f"kubernetes-{build.KUBERNETES_VERSION}-kwok-{build.KWOK_VERSION}"
    assert str(folder).startswith(str(tmp_path))
    assert build.missing() == list(build.BINARIES)  # nothing built there, no stamp
