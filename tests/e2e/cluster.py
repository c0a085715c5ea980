"""Tools for the kind end-to-end suite: find docker/kind/helm/kubectl, build and load the images,
run kubectl and helm against the test cluster, port-forward a Service.

Nothing here downloads a binary: kind comes from the user's machine (`make e2e-tools` says how).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE_TAG = os.environ.get("AIASSISTANT_E2E_TAG", "e2e")
OPERATOR_IMAGE = f"aiassistant-operator:{IMAGE_TAG}"
RUNNER_IMAGE = f"aiassistant-runner:{IMAGE_TAG}"
CLUSTER_NAME = os.environ.get("AIASSISTANT_E2E_CLUSTER", "aiassistant-e2e")


def tool(name: str) -> str | None:
    """A binary from the venv (helm, kubectl, kind after `make e2e-tools`) or from PATH."""
    return shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)


def why_not_runnable() -> str | None:
    """None when the suite can run here, else the reason to skip it."""
    docker = tool("docker")
    if docker is None:
        return "docker info failed: docker CLI not found"
    try:
        info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "docker info failed: timed out after 30 s"
    if info.returncode != 0:
        lines = [line.strip() for line in (info.stderr or info.stdout).splitlines() if line.strip()]
        return f"docker info failed: {lines[-1] if lines else f'exit {info.returncode}'}"
    missing = [name for name in ("kind", "helm", "kubectl") if tool(name) is None]
    if missing:
        return f"{', '.join(missing)} not found (kind: see `make e2e-tools`; helm, kubectl: `make install`)"
    return None


def run(
    cmd: Sequence[str], *, timeout: float = 600, env: dict[str, str] | None = None, stdin: str | None = None
) -> str:
    """Run a command; on failure raise with its output (the e2e log is the only debugging aid)."""
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, env=env, input=stdin, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def build_images() -> None:
    docker = tool("docker")
    assert docker is not None
    for component, image in (("operator", OPERATOR_IMAGE), ("runner", RUNNER_IMAGE)):
        run(
            [docker, "build", "-f", str(ROOT / component / "Dockerfile"), "-t", image, str(ROOT)],
            timeout=1800,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A kind cluster reached through its own kubeconfig file."""

    name: str
    kubeconfig: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kind(self, *args: str, timeout: float = 600) -> str:
        kind = tool("kind")
        assert kind is not None
        return run([kind, *args], timeout=timeout, env=self.env)

    def create(self) -> None:
        existing = self.kind("get", "clusters").split()
        if self.name not in existing:
            self.kind(
                "create",
                "cluster",
                "--name",
                self.name,
                "--wait",
                "180s",
                "--kubeconfig",
                str(self.kubeconfig),
            )
        else:
            self.kubeconfig.write_text(self.kind("get", "kubeconfig", "--name", self.name))

    def delete(self) -> None:
        self.kind("delete", "cluster", "--name", self.name)

    def load(self, *images: str) -> None:
        for image in images:
            self.kind("load", "docker-image", image, "--name", self.name)

    def kubectl(self, *args: str, timeout: float = 300, stdin: str | None = None) -> str:
        kubectl = tool("kubectl")
        assert kubectl is not None
        return run([kubectl, *args], timeout=timeout, env=self.env, stdin=stdin)

    def helm(self, *args: str, timeout: float = 600) -> str:
        helm = tool("helm")
        assert helm is not None
        return run([helm, *args], timeout=timeout, env=self.env)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, name, "-n", namespace, "-o", "json")))

    def apply(self, manifest: str, namespace: str) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)

    def wait_until(self, what: str, check: Any, timeout: float = 180, every: float = 2) -> Any:
        """Poll `check()` until it returns something truthy; fail naming `what`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                last = check()
                if last:
                    return last
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")

    @contextlib.contextmanager
    def port_forward(self, target: str, namespace: str, remote_port: int) -> Iterator[int]:
        """`kubectl port-forward` to a local port; yields the port once it accepts connections."""
        kubectl = tool("kubectl")
        assert kubectl is not None
        port = free_port()
        proc = subprocess.Popen(
            [kubectl, "port-forward", "-n", namespace, target, f"{port}:{remote_port}"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    output = proc.stdout.read() if proc.stdout else ""
                    raise RuntimeError(f"kubectl port-forward {target} exited: {output}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"kubectl port-forward {target} did not listen within 30 s")
                time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
