"""What building an object costs, measured in a fresh Python process (RSS read in a test process
is blurred by the memory earlier tests freed, which new objects reuse without growing it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
{setup}
def build():
    return {build}
keep = [build()]  # the first one pays for imports and caches
n = {n}
before, started = rss(), time.process_time()
keep += [build() for _ in range(n)]
print(json.dumps({{"mb": (rss() - before) / n, "ms": (time.process_time() - started) * 1000 / n}}))
"""


@dataclass(frozen=True)
class Cost:
    mb: float  # RSS per object
    ms: float  # CPU per object


def cost(setup: str, build: str, n: int = 10) -> Cost:
    """RSS (MB) and CPU (ms) per object `build` (an expression) makes, after `setup` (statements)."""
    code = SCRIPT.format(setup=textwrap.dedent(setup), build=build, n=n)
    path = os.pathsep.join([str(ROOT / d) for d in ("runner", "contract")] + [str(ROOT)])
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path, "LOGURU_LEVEL": "WARNING"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return Cost(**json.loads(done.stdout.strip().splitlines()[-1]))
