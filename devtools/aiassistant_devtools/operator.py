"""Run the real kopf operator (our handlers) in-process, as a given identity, until the block ends.

    async with running_operator(kubeconfig, settings, namespaces=["bots"]):
        ...

For tests, `dev` and benchmarks: the same handlers and settings as `aiassistant-operator run`, but
started in a thread with its own event loop (on exit kopf cancels every task of its loop, which must
not be the caller's) and logged in with the credentials of an explicit kubeconfig file (the chart's
ServiceAccount token in the tests) instead of the process's $KUBECONFIG: kopf through a login
handler, kopf's public way to give it credentials, and the operator's own API client through the
same file (memo["kubeconfig"]). Importing this module registers that handler, so only processes
that import it (never the operator image) use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import kopf
import yaml

from aiassistant_operator import handlers
from aiassistant_operator.settings import Settings

START_SECONDS = 60.0


@kopf.on.login()
def _login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """The token and server of memo["kubeconfig"] (as ControlPlane.write_kubeconfig writes them)."""
    config = yaml.safe_load(Path(memo["kubeconfig"]).read_text())
    cluster = config["clusters"][0]["cluster"]
    return kopf.ConnectionInfo(
        server=cluster["server"],
        ca_path=cluster.get("certificate-authority"),
        token=config["users"][0]["user"]["token"],
    )


@contextlib.asynccontextmanager
async def running_operator(
    kubeconfig: Path,
    settings: Settings | None = None,
    namespaces: Iterable[str] = (),
    configure: Callable[[kopf.OperatorSettings], None] | None = None,
) -> AsyncIterator[None]:
    """The operator watches `namespaces` (none: cluster-wide) until the block exits."""
    assert handlers.configure  # importing the module registers the handlers with kopf
    stop, ready = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    kopf_settings = kopf.OperatorSettings()
    names = list(namespaces)
    kopf_settings.scanning.disabled = bool(names)  # as `run` does: exact namespaces need no discovery
    if configure is not None:
        configure(kopf_settings)
    memo = kopf.Memo(settings=settings or Settings.from_env(), kubeconfig=str(kubeconfig))

    def operate() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=not names,
                    namespaces=names,
                    standalone=True,
                    memo=memo,
                    settings=kopf_settings,
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as err:
            failures.append(err)
            raise

    thread = threading.Thread(target=operate, name="kopf-operator", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    # kopf sets a threading.Event from its own thread: polled, not awaited.
    while not ready.is_set() and thread.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if failures or not ready.is_set():
        stop.set()
        raise RuntimeError("the operator did not start") from (failures[0] if failures else None)
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 20)
