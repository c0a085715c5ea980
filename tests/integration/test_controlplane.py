"""The control-plane harness itself: the real server version, and no process left behind, even when
the process that started it is killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from aiassistant_devtools import build
from aiassistant_devtools.controlplane import ControlPlane
from tests.helm import ROOT

STARTER = """
import sys, time
from aiassistant_devtools.controlplane import ControlPlane
with ControlPlane.running() as plane:
    print(plane.workdir, " ".join(str(p.popen.pid) for p in plane.processes), flush=True)
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not yet reaped) is not running
        return stat.read().split(") ")[-1].split()[0] != "Z"


def test_the_server_reports_the_pinned_version(cluster: ControlPlane) -> None:
    assert cluster.version == build.KUBERNETES_VERSION
    assert 0 < cluster.start_seconds < 60
    assert {p.name for p in cluster.processes} == set(build.BINARIES)


def test_killing_the_starter_leaves_no_process_behind(cluster: ControlPlane) -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert starter.stdout is not None
    workdir, *numbers = starter.stdout.readline().split()
    pids = [int(pid) for pid in numbers]
    assert len(pids) == len(build.BINARIES) and all(alive(pid) for pid in pids)
    starter.send_signal(signal.SIGKILL)  # no finally, no atexit: only the parent-death signal is left
    starter.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if alive(pid)] == []
    shutil.rmtree(workdir)  # what the killed starter could not clean up
