"""Reconcile throughput/latency/memory of the operator against the API emulator; JSON out.

    python benchmarks/reconcile.py [--n 500] [--rss-n 1000] [--latency-n 50] [--concurrency 8] [--repeat 2]

- direct: the same objects the operator would write (AIAssistant + ConfigMap + Deployment + Service
  per assistant), written straight through the same aiohttp client — the limit;
- operator: N AIAssistants created with the same client and concurrency; time until every runner
  Deployment exists (seen on a watch), and each assistant's create -> Deployment latency; the two
  alternate for --repeat rounds and the best of each is compared (the machine's load varies);
- latency: assistants created one at a time on an idle operator: create -> Deployment p50/p99;
- rss: the operator process's resident memory, idle and with --rss-n assistants reconciled;
- the operator's requests and CPU time per assistant in the throughput rounds.

The operator is the real `aiassistant-operator run` in its own process (kubeconfig -> emulator); the
emulator (test/dev tooling, aiassistant_operator.emulator) runs in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from aiassistant_operator.emulator import Emulator
from aiassistant_operator.render import render
from aiassistant_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "aiassistants.aiassistant.dev.yaml"
AIA = "/apis/aiassistant.dev/v1alpha1"
PATHS = {"ConfigMap": "/api/v1", "Service": "/api/v1", "Deployment": "/apis/apps/v1"}
PLURALS = {"ConfigMap": "configmaps", "Service": "services", "Deployment": "deployments"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def assistant(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"engineModel": "grok.grok-3", "initPrompt": f"You are assistant {name}."},
    }


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as rsp:
        data: dict[str, Any] = await rsp.json()
        if rsp.status != 201:
            raise RuntimeError(f"POST {url}: {rsp.status} {data.get('message')}")
        return data


async def bounded(concurrency: int, jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


class DeploymentWatch:
    """When each runner Deployment first appeared, from a watch stream (as a client sees it)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.waiting: list[tuple[set[tuple[str, str]], asyncio.Event]] = []

    async def run(self, http: aiohttp.ClientSession) -> None:
        async with http.get("/apis/apps/v1/deployments", params={"watch": "true"}) as rsp:
            async for line in rsp.content:
                if line.strip():
                    meta = json.loads(line)["object"]["metadata"]
                    key = (meta["namespace"], meta["name"])
                    self.seen.setdefault(key, time.perf_counter())
                    for missing, done in self.waiting:
                        missing.discard(key)
                        if not missing:
                            done.set()

    async def wait(self, keys: Iterable[tuple[str, str]]) -> None:
        missing = set(keys) - self.seen.keys()
        if missing:
            done = asyncio.Event()
            self.waiting.append((missing, done))
            try:
                await done.wait()
            finally:
                self.waiting.remove((missing, done))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def operator_requests(audit: Iterable[tuple[str, str, str, str]]) -> int:
    """The operator's object requests (its watch streams excluded), from the emulator's audit log."""
    return sum(1 for agent, verb, _, _ in audit if agent.startswith("kopf") and verb not in ("watch", "list"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def direct(http: aiohttp.ClientSession, ns: str, n: int, concurrency: int, settings: Settings) -> float:
    """The limit: the operator's objects written straight through the client."""
    await post(http, "/api/v1/namespaces", {"metadata": {"name": ns}})

    def job(i: int) -> Callable[[], Awaitable[None]]:
        async def write() -> None:
            created = await post(http, f"{AIA}/namespaces/{ns}/aiassistants", assistant(f"a{i}", ns))
            for obj in render(created, settings, "0" * 16):
                kind = obj["kind"]
                await post(http, f"{PATHS[kind]}/namespaces/{ns}/{PLURALS[kind]}", obj)

        return write

    start = time.perf_counter()
    await bounded(concurrency, (job(i) for i in range(n)))
    return time.perf_counter() - start


async def through_operator(
    http: aiohttp.ClientSession, watch: DeploymentWatch, namespace: str, names: list[str], concurrency: int
) -> tuple[float, list[float]]:
    started: dict[str, float] = {}

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def create() -> None:
            started[name] = time.perf_counter()
            await post(http, f"{AIA}/namespaces/{namespace}/aiassistants", assistant(name, namespace))

        return create

    start = time.perf_counter()
    await bounded(concurrency, (job(name) for name in names))
    async with asyncio.timeout(300):
        await watch.wait((namespace, f"{n}-runner") for n in names)
    total = time.perf_counter() - start
    latencies = [watch.seen[(namespace, f"{n}-runner")] - started[n] for n in names]
    return total, latencies


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    async with Emulator.running(crds=[CRD]) as emu, aiohttp.ClientSession(base_url=emu.base_url) as http:
        watch = DeploymentWatch()
        watcher = asyncio.create_task(watch.run(http))
        await post(http, "/api/v1/namespaces", {"metadata": {"name": "bench"}})
        secret = {"metadata": {"name": "xai-key"}, "stringData": {"api-key": "bench"}}
        await post(http, "/api/v1/namespaces/bench/secrets", secret)

        kubeconfig = emu.write_kubeconfig(Path(tempfile.mkdtemp(prefix="bench-")) / "kubeconfig")
        operator = start_operator(kubeconfig, args.liveness_port)
        try:
            await wait_healthy(args.liveness_port, operator)
            idle_rss = rss_mib(operator.pid)
            # Alternate the two (the machine's load varies); the best of each is reported.
            directs, through, bulk, requests, cpu = [], [], [], [], []
            for r in range(args.repeat):
                log(
                    f"round {r + 1}/{args.repeat}: direct writes, then the operator, {args.n} assistants each"
                )
                directs.append(await direct(http, f"direct-{r}", args.n, args.concurrency, settings))
                names = [f"b{r}-{i}" for i in range(args.n)]
                audited, cpu_before = len(emu.audit), cpu_seconds(operator.pid)
                seconds, latencies = await through_operator(http, watch, "bench", names, args.concurrency)
                through.append(seconds)
                bulk += latencies
                await asyncio.sleep(2)  # let status writes and Events drain
                requests.append(1 + operator_requests(emu.audit[audited:]) / args.n)  # + the client's create
                cpu.append((cpu_seconds(operator.pid) - cpu_before) / args.n)

            total = args.repeat * args.n
            if args.rss_n > total:
                log(f"rss: up to {args.rss_n} assistants")
                more = [f"m{i}" for i in range(args.rss_n - total)]
                await through_operator(http, watch, "bench", more, args.concurrency)
                await asyncio.sleep(2)
            loaded_rss = rss_mib(operator.pid)
            assistants = len(emu.list_objects("aiassistants", "bench", "aiassistant.dev"))

            log(f"latency: {args.latency_n} assistants one at a time")
            single: list[float] = []
            for i in range(args.latency_n):
                _, [latency] = await through_operator(http, watch, "bench", [f"l{i}"], 1)
                single.append(latency)

            def phases() -> list[Any]:
                return [
                    o.get("status", {}).get("phase")
                    for o in emu.list_objects("aiassistants", "bench", "aiassistant.dev")
                ]

            for _ in range(100):  # the last status writes
                if all(phases()):
                    break
                await asyncio.sleep(0.1)
            final = phases()
        finally:
            operator.terminate()
            _, stderr = operator.communicate(timeout=30)
            watcher.cancel()
        errors = [line for line in stderr.decode().splitlines() if "ERROR" in line]

    return {
        "benchmark": "reconcile",
        "n": args.n,
        "concurrency": args.concurrency,
        "rounds": args.repeat,
        "direct_writes_seconds": [round(x, 3) for x in directs],
        "operator_seconds": [round(x, 3) for x in through],
        "operator_vs_direct_ratio": round(min(through) / min(directs), 2),
        "requests_per_assistant": {"direct": 4, "operator": round(max(requests), 2)},
        "operator_cpu_ms_per_assistant": round(min(cpu) * 1000, 2),
        "bulk_create_to_deployment_ms": {
            "p50": round(percentile(bulk, 50) * 1000, 1),
            "p99": round(percentile(bulk, 99) * 1000, 1),
        },
        "create_to_deployment_ms": {
            "n": len(single),
            "p50": round(percentile(single, 50) * 1000, 1),
            "p99": round(percentile(single, 99) * 1000, 1),
            "mean": round(statistics.fmean(single) * 1000, 1),
        },
        "operator_rss_mib": {
            "idle": round(idle_rss, 1),
            "assistants": assistants,
            "loaded": round(loaded_rss, 1),
        },
        "all_pending_or_ready": all(p in ("Pending", "Ready") for p in final),
        "operator_error_lines": len(errors),
        "targets": {"operator_vs_direct_ratio": "<= 1.5", "create_to_deployment_p50_ms": "<= 150"},
    }


def start_operator(kubeconfig: Path, liveness_port: int) -> subprocess.Popen[bytes]:
    """`aiassistant-operator run` for namespace "bench", talking to the emulator via kubeconfig."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AIASSISTANT_METRICS_PORT": "0",
        "AIASSISTANT_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, *os.environ.get("BENCH_PYTHON_ARGS", "").split(), "-m", "aiassistant_operator"]
    command += ["run", "--namespace", "bench"]
    command += ["--liveness-port", str(liveness_port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_healthy(port: int, operator: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if operator.poll() is not None:
                raise RuntimeError(
                    f"the operator exited: {operator.stderr.read().decode() if operator.stderr else ''}"
                )
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as rsp:
                    if rsp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the operator did not become healthy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="assistants for throughput (default 500)")
    parser.add_argument(
        "--rss-n", type=int, default=1000, help="assistants when measuring RSS (default 1000)"
    )
    parser.add_argument(
        "--latency-n", type=int, default=50, help="one-at-a-time latency samples (default 50)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="client requests in flight (default 8)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of direct + operator (default 2)")
    parser.add_argument("--liveness-port", type=int, default=18089, help="operator liveness port")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args())), indent=2))
