"""The `run` and `dev` commands as a user starts them (subprocesses, real control plane, kubectl)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import httpx
import yaml

from aiassistant_devtools.controlplane import free_port
from aiassistant_devtools.kubeapi import Kube, path
from tests.helm import ROOT, tool
from tests.integration.conftest import Identity, assistant, eventually, secret


async def test_run_command_reconciles_and_serves_liveness(
    identity: Identity, kube: Kube, namespace: str
) -> None:
    """`aiassistant-operator run` with a kubeconfig holding the chart ServiceAccount's token."""
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(identity.kubeconfig), "AIASSISTANT_METRICS_PORT": "0"}
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "aiassistant_operator", "run", "--namespace", namespace],
        *["--liveness-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await kube.create(secret("xai-key", namespace, **{"api-key": "k"}))
        await kube.create(assistant("cli", namespace))
        await eventually(lambda: kube.get(path("Deployment", namespace, "cli-runner")), seconds=30)

        async def healthy() -> int:
            import aiohttp

            async with aiohttp.ClientSession() as probe, probe.get(f"http://127.0.0.1:{port}/healthz") as rsp:
                return int((await rsp.json())["assistants"]) if rsp.status == 200 else 0

        assert await eventually(healthy) == 1
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()


def kubectl(kubeconfig: Path, *args: str, timeout: float = 90) -> str:
    result = subprocess.run(
        [tool("kubectl"), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_dev_serves_a_real_control_plane_for_kubectl(tmp_path: Path) -> None:
    """What the README tells a user to do with `make demo`, against what `dev` started."""
    kubeconfig = tmp_path / "k"
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "aiassistant_operator", "dev", "--examples", str(ROOT / "examples")],
        *["--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not lines or "Ctrl-C to stop." not in lines[-1]:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, "dev exited early: " + "".join(lines) + (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            lines.append(line.decode())
        out = "".join(lines)
        rows = {line.split()[1]: line.split() for line in lines[1:] if line.startswith("default ")}
        assert rows["support-bot"][4:6] == ["Ready", "1"], out
        assert rows["broken-bot"][3] == "Invalid", out
        assert rows["voice-bot"][4:6] == ["Ready", "2"], out
        assert "v1.35.4" in out and f"kubectl --kubeconfig {kubeconfig}" in out
        assert "-> We are open" in out  # a local runner answered from the operator's ConfigMap
        playground = re.search(r"Playground \(chat in a browser\): (http://\S+/playground)\n", out)
        assert playground, out
        page = httpx.get(playground.group(1), timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")

        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        version = json.loads(kubectl(kubeconfig, "version", "-o", "json"))
        assert version["serverVersion"]["gitVersion"] == "v1.35.4"
        # kubectl speaks protobuf for built-in kinds: the real apiserver takes it.
        kubectl(kubeconfig, "create", "secret", "generic", "demo-key", "--from-literal=api-key=x")
        kubectl(kubeconfig, "create", "namespace", "demo")
        assert "<target>.<model>" in kubectl(kubeconfig, "explain", "aiassistant.spec.engineModel")
        table = kubectl(kubeconfig, "get", "aia", "-A")
        header = ["NAMESPACE", "NAME", "MODEL", "TARGET", "PHASE", "READY", "REASON", "AGE"]
        assert table.split()[:8] == header, table
        described = kubectl(kubeconfig, "describe", "aia", "support-bot")
        assert "ModelValid" in described and "Applied" in described
        assert "Applied" in kubectl(kubeconfig, "events", "--for", "aiassistant/support-bot")
        rolled = kubectl(kubeconfig, "rollout", "status", "deployment/support-bot-runner", "--timeout=60s")
        assert "successfully rolled out" in rolled
        kubectl(
            kubeconfig, "wait", "aia/support-bot", "--for=jsonpath={.status.phase}=Ready", "--timeout=60s"
        )
        running = json.loads(
            kubectl(kubeconfig, "get", "pods", "-l", "app.kubernetes.io/instance=voice-bot", "-o", "json")
        )
        assert [p["status"]["phase"] for p in running["items"]] == ["Running", "Running"]
        kubectl(kubeconfig, "delete", "aia", "support-bot", "--wait=true")
        gone = "deployment/support-bot-runner"
        kubectl(kubeconfig, "wait", gone, "--for=delete", "--timeout=60s")  # the garbage collector
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    port = urlparse(server).port
    assert port is not None and not port_open(port), "the control plane outlived dev"
