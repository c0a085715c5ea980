"""`aiassistant-operator dev`: the embedded API emulator + the operator + examples/, in one process.

Test and dev tooling: the emulator (aiassistant_operator.emulator) is no cluster. It has no kubelet,
so nothing runs pods; this command marks runner Deployments ready (status.readyReplicas =
spec.replicas) so the Ready path shows, and says so. `running_operator` is also what the
integration tests and the benchmark use to run the real kopf operator in-loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import yaml
from kopf._cogs.structs import credentials  # a pre-filled vault: no login handlers needed

from . import handlers
from .emulator import Emulator
from .settings import Settings
from .spec import GROUP, PLURAL

CRD_PATHS = (
    Path(__file__).resolve().parents[2] / "crds" / "aiassistants.aiassistant.dev.yaml",
    Path(__file__).resolve().parent / "crds" / "aiassistants.aiassistant.dev.yaml",  # if packaged
)
CONVERGE_SECONDS = 30.0
COLUMNS = ("NAMESPACE", "NAME", "MODEL", "TARGET", "PHASE", "READY", "MESSAGE")


def crd_path() -> Path:
    for path in CRD_PATHS:
        if path.exists():
            return path
    raise FileNotFoundError("crds/aiassistants.aiassistant.dev.yaml not found next to the package")


@contextlib.asynccontextmanager
async def running_operator(
    server: str,
    settings: Settings | None = None,
    namespaces: Iterable[str] = (),
    configure: Callable[[kopf.OperatorSettings], None] | None = None,
) -> AsyncIterator[None]:
    """Run the real kopf operator (our handlers) against `server`, in a thread with its own loop.

    Not in the caller's loop: on exit kopf waits for (and cancels) every task of its loop that it
    did not start, which would include the emulator's connection handlers. A thread keeps the two
    apart, as a separate process would.
    """
    assert handlers.assistant_changed  # the handlers are registered on import
    stop, ready = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    kopf_settings = kopf.OperatorSettings()
    if configure is not None:
        configure(kopf_settings)
    memo = kopf.Memo(settings=settings or Settings.from_env())
    names = list(namespaces)

    def operate() -> None:
        vault = credentials.Vault({"dev": credentials.ConnectionInfo(server=server, insecure=True)})
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=not names,
                    namespaces=names,
                    standalone=True,
                    vault=vault,
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
    await wait_for(lambda: ready.is_set() or not thread.is_alive(), 60, interval=0.01)
    if failures or not thread.is_alive():
        raise RuntimeError("the operator did not start") from (failures[0] if failures else None)
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 20)


async def mark_deployments_ready(emu: Emulator, interval: float = 0.2) -> None:
    """Stand-in for the kubelet and the Deployment controller: all replicas become ready."""
    while True:
        for dep in emu.list_objects("deployments", group="apps"):
            replicas = (dep.get("spec") or {}).get("replicas", 1)
            status = dep.get("status") or {}
            if status.get("readyReplicas") != replicas:
                status = {
                    "observedGeneration": dep["metadata"].get("generation", 1),
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                }
                emu.put_object({**dep, "status": status})
        await asyncio.sleep(interval)


def load_examples(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.y*ml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    # Secrets first: assistants then converge without a retry.
    return sorted(docs, key=lambda doc: doc.get("kind") != "Secret")


async def apply_documents(http: aiohttp.ClientSession, docs: Iterable[dict[str, Any]]) -> list[str]:
    """Create each document like `kubectl create`; returns the API's refusals."""
    errors = []
    for doc in docs:
        ns = doc.setdefault("metadata", {}).setdefault("namespace", "default")
        await http.post("/api/v1/namespaces", json={"metadata": {"name": ns}})  # 409 if it exists
        group_version = doc.get("apiVersion", "")
        prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        plural = {"Secret": "secrets", "AIAssistant": PLURAL, "ConfigMap": "configmaps"}.get(
            doc.get("kind", "")
        )
        if plural is None:
            errors.append(
                f"{doc.get('kind')} {doc['metadata'].get('name')}: skipped (dev applies Secrets and AIAssistants)"
            )
            continue
        async with http.post(f"{prefix}/namespaces/{ns}/{plural}", json=doc) as rsp:
            if rsp.status >= 400:
                body = await rsp.json()
                errors.append(f"{doc['kind']} {ns}/{doc['metadata'].get('name')}: {body.get('message')}")
    return errors


async def wait_for(predicate: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    """Poll in-memory state (the emulator's objects) until `predicate` holds or time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


def rows(emu: Emulator) -> list[tuple[str, ...]]:
    result: list[tuple[str, ...]] = []
    for obj in sorted(
        emu.list_objects(PLURAL, group=GROUP),
        key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]),
    ):
        status = obj.get("status") or {}
        problems = [c["message"] for c in status.get("conditions", []) if c.get("status") != "True"]
        ready = status.get("readyReplicas")
        result.append(
            (
                str(obj["metadata"]["namespace"]),
                str(obj["metadata"]["name"]),
                str(obj["spec"].get("engineModel", "")),
                str(status.get("engineTarget") or ""),
                str(status.get("phase") or ""),
                "" if ready is None else str(ready),
                str(problems[0] if problems else "")[:90],
            )
        )
    return result


def table(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in [COLUMNS, *lines]) for i in range(len(COLUMNS))]
    return "\n".join(
        "   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *lines]
    )


def converged(emu: Emulator) -> bool:
    """Every assistant has a status for its current spec and is Ready, Invalid or waiting for a Secret."""
    for obj in emu.list_objects(PLURAL, group=GROUP):
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"].get("generation"):
            return False
        waiting = any(
            c["type"] == "SecretResolved" and c["status"] == "False" for c in status.get("conditions", [])
        )
        if status.get("phase") not in ("Ready", "Invalid") and not waiting:
            return False
    return True


async def dev(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    async with Emulator.running(crds=[crd_path()], port=args.port or None) as emu:
        kubeconfig = args.kubeconfig or Path(tempfile.mkdtemp(prefix="aiassistant-dev-")) / "kubeconfig"
        emu.write_kubeconfig(kubeconfig)
        kubelet = asyncio.create_task(mark_deployments_ready(emu))
        try:
            async with (
                running_operator(emu.base_url, settings),
                aiohttp.ClientSession(base_url=emu.base_url) as http,
            ):
                errors = await apply_documents(http, load_examples(args.examples)) if args.examples else []
                for error in errors:
                    print(f"refused: {error}", file=sys.stderr)
                done = await wait_for(lambda: converged(emu), CONVERGE_SECONDS)
                print(table(rows(emu)))
                print()
                print(f"Kubernetes API emulator (test/dev tooling, not a cluster): {emu.base_url}")
                print(f"  kubectl --kubeconfig {kubeconfig} get aia -A")
                print(f"  kubectl --kubeconfig {kubeconfig} apply -f examples/")
                print(
                    "No kubelet here: dev marks runner Deployments ready (status.readyReplicas = spec.replicas)."
                )
                if not done:
                    print(f"Not converged within {CONVERGE_SECONDS:.0f}s.", file=sys.stderr)
                if args.once:
                    return 0 if done else 1
                print("Ctrl-C to stop.")
                shown = rows(emu)
                while True:  # until Ctrl-C: print the table again when it changes
                    await asyncio.sleep(1)
                    if (now := rows(emu)) != shown:
                        shown = now
                        print(table(now), end="\n\n")
        finally:
            kubelet.cancel()


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(logging.ERROR)  # kopf's own chatter; our table says it all
    try:
        return asyncio.run(dev(args))
    except KeyboardInterrupt:
        return 0
