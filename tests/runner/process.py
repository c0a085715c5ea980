"""Run the real `aiassistant-runner` console script as a subprocess (drain, CLI and log tests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

RUNNER = str(Path(sys.executable).parent / "aiassistant-runner")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunnerProcess:
    """`aiassistant-runner <args>` on 127.0.0.1:<free port>, stderr captured to a file. Another
    `executable` that takes `--host`, `--port` and serves /readyz may stand in (the voice benchmark's
    stock Pipecat server)."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str], executable: str = RUNNER) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = tmp / f"runner-{self.port}.log"
        self._stderr = self.stderr_path.open("wb")
        clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        self.proc = subprocess.Popen(
            [executable, *args, "--host", "127.0.0.1", "--port", str(self.port)],
            env={**clean, **env},
            stdout=self._stderr,
            stderr=self._stderr,
        )

    @classmethod
    def with_config(cls, tmp: Path, config: dict[str, Any], env: dict[str, str], *args: str) -> RunnerProcess:
        path = tmp / "config.json"
        path.write_text(json.dumps(config))
        return cls(tmp, ["--config", str(path), *args], env)

    def wait_ready(self, timeout: float = 15) -> float:
        """Seconds until /readyz answered 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"runner exited {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"runner not ready after {timeout}s: {self.stderr()}")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._stderr.close()
