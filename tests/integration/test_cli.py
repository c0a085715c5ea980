"""The `run` and `dev` commands as a user starts them (subprocesses, real HTTP)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from aiassistant_operator.emulator import Emulator
from tests.integration.conftest import ROOT, assistant, create, eventually, secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dev_once_shows_the_examples_converged() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiassistant_operator",
        "dev",
        "--examples",
        str(ROOT / "examples"),
        "--once",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    rows = {
        line.split()[1]: line.split() for line in out.decode().splitlines()[1:] if line.startswith("default")
    }
    assert rows["support-bot"][2:6] == ["grok.grok-3", "grok", "Ready", "1"]
    assert rows["broken-bot"][3] == "Invalid"
    assert "kubectl --kubeconfig" in out.decode() and "No kubelet here" in out.decode()


async def test_run_command_reconciles_and_serves_liveness(
    emulator: Emulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(emulator.write_kubeconfig(tmp_path / "kubeconfig")),
        "AIASSISTANT_METRICS_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiassistant_operator",
        "run",
        "--namespace",
        "default",
        "--liveness-port",
        str(port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await create(http, secret("xai-key", **{"api-key": "k"}))
        await create(http, assistant("cli"))
        await eventually(
            lambda: emulator.get_object("deployments", "default", "cli-runner", "apps"), seconds=30
        )
        async with aiohttp.ClientSession() as probe, probe.get(f"http://127.0.0.1:{port}/healthz") as rsp:
            assert rsp.status == 200 and (await rsp.json())["assistants"] == 1
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
