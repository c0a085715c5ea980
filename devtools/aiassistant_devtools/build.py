"""Build the local control plane from upstream Go modules, once, into a cache outside the repository.

    python -m aiassistant_devtools.build [--cache DIR] [--check]

Builds kube-apiserver, kube-controller-manager and kube-scheduler from `k8s.io/kubernetes`, etcd from
`go.etcd.io/etcd/server/v3/etcdmain` and kwok from `sigs.k8s.io/kwok`. `k8s.io/kubernetes` cannot be
`go install`ed: its go.mod replaces every staging module with `./staging/...`. So a throw-away wrapper
module requires it and replaces each staging module (read from the downloaded go.mod) with its published
`v0.X.Y` tag. etcd's main is in the same wrapper, so it is the etcd version Kubernetes itself requires.
kwok is its own module with its own dependency versions: `go install`.

The cache (`$AIASSISTANT_KUBE_CACHE`, default `~/.cache/aiassistant-operator/kube`) holds one folder per
pinned version set; a finished build writes a stamp, so a second run does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# The one place the control plane's versions are pinned. Kubernetes 1.35 matches our kubectl 1.35.
KUBERNETES_VERSION = "v1.35.4"
KWOK_VERSION = "v0.7.0"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

_ETCD_MAIN = """\
// etcd, as built by etcd's own server/main.go, at the version Kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


def cache_root() -> Path:
    default = Path.home() / ".cache" / "aiassistant-operator" / "kube"
    return Path(os.environ.get("AIASSISTANT_KUBE_CACHE", default)).expanduser()


def bin_dir(root: Path | None = None) -> Path:
    """Where the binaries of the pinned versions are (or will be)."""
    return (root or cache_root()) / f"kubernetes-{KUBERNETES_VERSION}-kwok-{KWOK_VERSION}" / "bin"


def missing(root: Path | None = None) -> list[str]:
    folder = bin_dir(root)
    if not (folder / ".complete").exists():
        return list(BINARIES)
    return [name for name in BINARIES if not (folder / name).exists()]


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        sys.exit(
            "go: not found. The local control plane is built from Kubernetes' Go modules: install Go >= 1.25 "
            "(and reach a Go module proxy), or point AIASSISTANT_KUBE_CACHE at a cache built elsewhere."
        )
    return go


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    shown = " ".join(cmd)
    print(f"  $ {shown}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        sys.exit(
            f"build failed after {time.monotonic() - started:.0f}s: {shown}\n{proc.stdout[-4000:]}{proc.stderr[-8000:]}"
        )
    print(f"    done in {time.monotonic() - started:.0f}s", flush=True)
    return proc.stdout


def staging_replaces(kubernetes_gomod: str, version: str) -> dict[str, str]:
    """`k8s.io/x => ./staging/src/k8s.io/x` lines of Kubernetes' go.mod -> {module: published tag}."""
    tag = "v0." + version.removeprefix("v1.")
    found = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", kubernetes_gomod, flags=re.MULTILINE)
    if not found:
        raise ValueError("no staging replace directives found in k8s.io/kubernetes' go.mod")
    return dict.fromkeys(found, tag)


def required_version(gomod: str, module: str) -> str:
    match = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", gomod, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"{module} is not required by k8s.io/kubernetes' go.mod")
    return match.group(1)


def _ldflags(module_version: str) -> str:
    # Upstream's version stamping (hack/lib/version.sh), so `kubectl version` shows the real server.
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", module_version)
    if match is None:
        raise ValueError(f"unexpected Kubernetes version {module_version}")
    major, minor, _ = match.groups()
    flags = {
        "gitVersion": module_version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    pkgs = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    return "-s -w " + " ".join(f"-X {pkg}.{key}={value}" for pkg in pkgs for key, value in flags.items())


def build(root: Path) -> Path:
    target = bin_dir(root)
    if not missing(root):
        print(f"control plane: cached in {target}")
        return target
    go = _go()
    target.mkdir(parents=True, exist_ok=True)
    work = target.parent / "wrapper"
    work.mkdir(exist_ok=True)
    goflags = " ".join(f for f in (os.environ.get("GOFLAGS", ""), "-mod=mod") if f)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": goflags, "GOWORK": "off"}
    started = time.monotonic()
    print(f"control plane: building Kubernetes {KUBERNETES_VERSION} + kwok {KWOK_VERSION} into {target}")
    print("  (once per machine; about 15-25 minutes on 2 cores, ~3 GB of Go module and build cache)")

    info = json.loads(
        _run([go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"], work, env)
    )
    kubernetes_gomod = Path(info["GoMod"]).read_text()
    replaces = staging_replaces(kubernetes_gomod, KUBERNETES_VERSION)
    lines = [
        "module aiassistant.dev/controlplane",
        "",
        "go 1.25",
        "",
        "require k8s.io/kubernetes " + KUBERNETES_VERSION,
        "",
    ]
    lines += ["replace ("] + [f"\t{mod} => {mod} {tag}" for mod, tag in sorted(replaces.items())] + [")", ""]
    (work / "go.mod").write_text("\n".join(lines))
    (work / "etcd").mkdir(exist_ok=True)
    (work / "etcd" / "main.go").write_text(_ETCD_MAIN)
    commands = [f"k8s.io/kubernetes/cmd/{name}" for name in BINARIES if name.startswith("kube-")]
    for command in commands:
        _run([go, "get", "-tool", f"{command}@{KUBERNETES_VERSION}"], work, env)
    # The etcd Kubernetes requires; a bare `go get` would upgrade it and half of Kubernetes' dependencies.
    etcd = required_version(kubernetes_gomod, "go.etcd.io/etcd/server/v3")
    _run([go, "get", f"go.etcd.io/etcd/server/v3/etcdmain@{etcd}"], work, env)
    _run([go, "mod", "tidy"], work, env)
    flags = ["-trimpath", "-ldflags", _ldflags(KUBERNETES_VERSION)]
    _run([go, "build", *flags, "-o", str(target) + "/", *commands], work, env)
    _run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(target / "etcd"), "./etcd"], work, env)

    kwok_env = {**env, "GOBIN": str(target)}
    _run(
        [go, "install", "-trimpath", "-ldflags", "-s -w", f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"],
        work,
        kwok_env,
    )
    (target / ".complete").write_text(json.dumps({"kubernetes": KUBERNETES_VERSION, "kwok": KWOK_VERSION}))
    print(f"control plane: built in {time.monotonic() - started:.0f}s")
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache root (default: $AIASSISTANT_KUBE_CACHE)"
    )
    parser.add_argument("--check", action="store_true", help="only say what is missing (exit 1 if anything)")
    args = parser.parse_args(argv)
    root = args.cache or cache_root()
    if args.check:
        absent = missing(root)
        print(f"{bin_dir(root)}: " + (f"missing {', '.join(absent)}" if absent else "complete"))
        sys.exit(1 if absent else 0)
    build(root)


if __name__ == "__main__":
    main()
