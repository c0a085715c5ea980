"""The operator on a real control plane: throughput, latency, memory and API requests; JSON out.

    python benchmarks/reconcile.py [--quick] [--n 500] [--rss-n 1000] [--latency-n 50] [--repeat 2]

A real kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok run locally
(aiassistant_devtools.controlplane; `make install` builds them; kwok makes the runner pods
Running/Ready), with the CRD installed. The operator is the real `aiassistant-operator run
--namespace bench` in its own process, its KUBECONFIG holding a token of the chart's ServiceAccount
(bound to rbac.RULES); the benchmark's own client is the admin. Baselines come from the same run:
ratios matter more than milliseconds, and the control plane shares the 2 cores with everything.

- bulk: N AIAssistants created (--concurrency creates in flight), the time until the operator has
  made every runner Deployment (seen on a watch), vs "direct": the same objects written by the
  benchmark's client in the operator's pattern — each AIAssistant (--concurrency in flight), then its
  rendered ConfigMap, Deployment and Service at once, then the status the operator writes first —
  timed the same way. Direct and operator rounds alternate --repeat times, the best of each is
  compared (the load varies); every phase starts on a settled control plane (all pods Ready, all
  assistants Ready, the operator quiet), so none pays for another's pods;
- requests: the operator's API requests per assistant in the bulk rounds (the apiserver's audit log;
  kopf's list/watch streams left out, the client's create counted as in the direct writes, refused
  ones such as 429 counted too), and its CPU time per assistant;
- restart: after the first round the operator is restarted with its N unchanged assistants; its
  requests from then until it goes quiet, split into reads and writes and the writes the apiserver
  accepted (the aim: none);
- rss: the operator's resident memory (/proc/PID/status VmRSS), idle at start and at --rss-n
  assistants (the restarted process; it has resumed N and created the rest), with its peak (VmHWM)
  and open sockets;
- latency: assistants created one at a time on the loaded operator: create -> Deployment p50/p99;
- statuses: an assistant whose status stays short of Ready for STALL_SECONDS though its pods are
  ready is reported (statuses_lagging_pods) instead of waited for until the timeout.

It ends on its own: every wait has a limit, and --timeout bounds the whole run (a full run takes
3-5 minutes on 2 cores, --quick under one); the operator and the control plane are stopped on exit
and die with the benchmark if it is killed. Figures and what they say: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import datetime
import json
import math
import os
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiohttp

from aiassistant_contract.assistant import parse_spec
from aiassistant_devtools.controlplane import ControlPlane, free_port
from aiassistant_devtools.dev import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, operator_identity
from aiassistant_devtools.kubeapi import MERGE, Kube, KubeError, path
from aiassistant_operator.access import CREDENTIALS_SELECTOR
from aiassistant_operator.render import MANAGED_BY, endpoint, referenced_secrets, render, runner_name
from aiassistant_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "aiassistants.aiassistant.dev.yaml"
NAMESPACE = "bench"  # the operator's
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
READS = frozenset({"get", "list", "watch"})
STREAMS = frozenset({"list", "watch"})  # kopf's watch streams, not per-assistant work
DIRECT_REQUESTS = 5  # create the AIAssistant, its ConfigMap, Deployment and Service; patch its status
MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
# Runner pods per assistant: 1, an assistant's default. kwok makes each pod Running/Ready, so the
# operator also sees its Deployment turn ready and writes the Ready status (a second status patch and
# Event: part of its real work). Measured (300 assistants x 2 rounds): replicas 0 takes 79 s instead of
# 112 s, and changes the operator-vs-direct ratio little (1.04 vs 0.94), since every phase starts on a
# settled control plane; not slow enough to drop the pods.
REPLICAS = 1
SETTLE_SECONDS = 300.0  # the longest wait for one phase's objects
QUIET_SECONDS = 5.0  # no request from the operator for this long (> kopf's retry backoffs but one): done
QUIET_TIMEOUT = 180.0
STALL_SECONDS = 75.0  # no status changing though all pods are ready (kopf retries a handler after 60 s)

Key = tuple[str, str]  # namespace, name
P = ParamSpec("P")
T = TypeVar("T")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def assistant(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "engineModel": "grok.grok-3",
            "initPrompt": f"You are assistant {name}.",
            "replicas": replicas,
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


@contextlib.asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    """asyncio.timeout, its TimeoutError saying what did not happen in time."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {seconds:.0f}s") from None


# ----------------------------------------------------------------------------- observing the cluster


@dataclass(frozen=True)
class Request:
    verb: str
    resource: str  # plural, "/subresource" appended; the URI for non-resource requests
    code: int
    received: float  # epoch seconds (the apiserver runs on this machine's clock)

    @property
    def read(self) -> bool:
        return self.verb in READS

    def __str__(self) -> str:
        return f"{self.verb} {self.resource} {self.code}"


@dataclass
class Audit:
    """One user's requests, from the apiserver's JSON audit log, read incrementally as it grows.

    A watch has two entries (ResponseStarted, ResponseComplete) under one auditID: one request."""

    log: Path
    user: str
    requests: dict[str, Request] = field(default_factory=dict)  # auditID -> the request
    _offset: int = 0
    _partial: bytes = b""

    def poll(self) -> None:
        with contextlib.suppress(FileNotFoundError), self.log.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
            self._offset += len(data)
            *lines, self._partial = (self._partial + data).split(b"\n")
            needle = self.user.encode()
            for line in lines:
                if needle in line:  # most lines are the benchmark's own requests: not parsed
                    self._add(json.loads(line))

    def _add(self, event: Mapping[str, Any]) -> None:
        if (event.get("user") or {}).get("username") != self.user:
            return
        ref = event.get("objectRef") or {}
        resource = str(ref.get("resource") or event.get("requestURI", "?"))
        if ref.get("subresource"):
            resource += f"/{ref['subresource']}"
        received = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
        code = int((event.get("responseStatus") or {}).get("code") or 0)
        self.requests[event["auditID"]] = Request(event["verb"], resource, code, received)

    def between(self, start: float, end: float = math.inf) -> list[Request]:
        self.poll()
        return [r for r in self.requests.values() if start <= r.received < end]

    async def quiet(self, since: float, seen: bool = False) -> float:
        """Wait until the user has made no request for QUIET_SECONDS (with `seen`: after one made
        after `since`); returns the time of its last request after `since`, else `since`."""
        async with within(QUIET_TIMEOUT, f"{self.user} going quiet"):
            while True:
                last = max((r.received for r in self.between(since)), default=None)
                if (last is not None or not seen) and time.time() - (last or since) >= QUIET_SECONDS:
                    return last or since
                await asyncio.sleep(0.25)


def summary(requests: Iterable[Request]) -> dict[str, Any]:
    """Counts of reads and writes (and the writes the apiserver accepted), and of each
    verb/resource/status code."""
    found = list(requests)
    writes = [r for r in found if not r.read]
    kinds = collections.Counter(str(r) for r in found)
    return {
        "requests": len(found),
        "reads": len(found) - len(writes),
        "writes": len(writes),
        "writes_succeeded": sum(1 for r in writes if r.code < 400),
        "by_request": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


class DeploymentWatch:
    """When each Deployment first appeared, from one watch stream (as a client sees it)."""

    def __init__(self) -> None:
        self.seen: dict[Key, float] = {}
        self.started = asyncio.Event()
        self._waiting: list[tuple[set[Key], asyncio.Event]] = []

    async def run(self, cluster: ControlPlane) -> None:
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {cluster.admin_token}"},
            connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(cluster.ca_file))),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as http:
            while True:  # the apiserver ends a watch after timeoutSeconds: watch again
                params = {"watch": "true", "timeoutSeconds": "3600"}
                async with http.get(f"{cluster.server}/apis/apps/v1/deployments", params=params) as rsp:
                    rsp.raise_for_status()
                    self.started.set()
                    async for line in rsp.content:
                        if line.strip():
                            self._saw(json.loads(line).get("object") or {})

    def _saw(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != "Deployment" or "name" not in meta:
            return  # a watch ERROR (a Status) or a BOOKMARK
        key = (meta.get("namespace", ""), meta["name"])
        self.seen.setdefault(key, time.perf_counter())
        for missing, done in self._waiting:
            missing.discard(key)
            if not missing:
                done.set()

    async def wait(self, keys: Iterable[Key]) -> float:
        """Wait until all of them have appeared; returns when the last one did (perf_counter)."""
        wanted = set(keys)
        missing = wanted - self.seen.keys()
        if missing:
            done = asyncio.Event()
            self._waiting.append((missing, done))
            try:
                async with within(SETTLE_SECONDS, f"{len(missing)} Deployments on the watch"):
                    await done.wait()
            finally:
                self._waiting.remove((missing, done))
        return max(self.seen[key] for key in wanted)


async def settle(kube: Kube, namespace: str, count: int, replicas: int) -> None:
    """Wait until the namespace's `count` runner Deployments have all their pods ready: the control
    plane is done with them. Polled (a list of up to a thousand objects a second), outside every
    timed phase."""
    state = "nothing listed yet"
    started = reported = time.monotonic()
    try:
        async with asyncio.timeout(SETTLE_SECONDS):
            while True:
                deployments = await kube.list(path("Deployment", namespace), labelSelector=MANAGED_SELECTOR)
                ready = sum(
                    1
                    for d in deployments
                    if (d.get("status") or {}).get("observedGeneration") == d["metadata"].get("generation")
                    and int((d.get("status") or {}).get("readyReplicas") or 0) == replicas
                )
                state = f"{ready}/{count} Deployments with {replicas} ready pods"
                if ready >= count:
                    return
                if time.monotonic() - reported > 20:
                    reported = time.monotonic()
                    log(f"  {namespace}: {state} after {reported - started:.0f}s")
                await asyncio.sleep(1.0)
    except TimeoutError:
        raise TimeoutError(f"{namespace} not settled within {SETTLE_SECONDS:.0f}s: {state}") from None


async def settle_statuses(kube: Kube, namespace: str, count: int, known: Mapping[str, str]) -> dict[str, str]:
    """After `settle`: wait until every AIAssistant's status says Ready. Returns the ones whose
    status stays otherwise for STALL_SECONDS though their pods are ready (the status lags the pods:
    an operator bug), with their phase; the `known` ones are not waited for again."""
    waiting: dict[str, str] = {}
    changed = time.monotonic()
    async with within(SETTLE_SECONDS, f"{namespace}: the statuses Ready"):
        while True:
            items = await kube.list(path("AIAssistant", namespace))
            now = {
                o["metadata"]["name"]: str((o.get("status") or {}).get("phase"))
                for o in items
                if (o.get("status") or {}).get("phase") != "Ready"
            }
            if len(items) >= count and now.keys() <= known.keys():
                return {}
            if now != waiting:
                waiting, changed = now, time.monotonic()
            elif time.monotonic() - changed >= STALL_SECONDS:
                stuck = {k: v for k, v in sorted(now.items()) if k not in known}
                log(
                    f"  {namespace}: {len(stuck)} statuses not Ready for {STALL_SECONDS:.0f}s, pods ready: {stuck}"
                )
                return stuck
            await asyncio.sleep(1.0)


# ----------------------------------------------------------------------------- the operator process


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: SIGKILL the operator if the benchmark dies, even by SIGKILL.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@dataclass
class OperatorProcess:
    """`aiassistant-operator run --namespace bench`, restartable; its output goes to `log`."""

    kubeconfig: Path
    log: Path
    log_level: str
    process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start it and wait for its /healthz (kopf serves it once the operator runs)."""
        port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "AIASSISTANT_METRICS_PORT": "0",
            "AIASSISTANT_LOG_LEVEL": self.log_level,
        }
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "aiassistant_operator", "run", "--namespace", NAMESPACE],
                *["--liveness-port", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # prctl only, before exec
            )
        async with within(60, "the operator's /healthz"), aiohttp.ClientSession() as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the operator exited; its log:\n{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as rsp:
                        if rsp.status == 200:
                            return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """SIGTERM (kopf stops gracefully), SIGKILL after 30 s."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def memory_mib(self) -> dict[str, float]:
        """VmRSS (resident now) and VmHWM (its peak) of the process."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = round(int(value.split()[0]) / 1024, 1)
        return found

    def sockets(self) -> int:
        fds = Path(f"/proc/{self.pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))

    def cpu_seconds(self) -> float:
        """User + system CPU time so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def error_lines(self) -> int:
        """Lines that say ERROR (kopf logs each refused request it retries as one)."""
        with contextlib.suppress(OSError):
            return sum(1 for line in self.log.read_text(errors="replace").splitlines() if "ERROR" in line)
        return 0


async def prepare_operator(cluster: ControlPlane, kube: Kube, log_level: str) -> OperatorProcess:
    """The chart's ServiceAccount and RBAC, namespace `bench` with its labelled key Secret
    `xai-key` (the operator uses, and watches, only Secrets labelled for assistants), and the
    operator process (not started) with that account's kubeconfig."""
    for obj in operator_identity():
        await kube.apply(obj)
    await kube.ensure_namespace(NAMESPACE)
    key = {"name": "xai-key", "namespace": NAMESPACE, "labels": CREDENTIALS_SELECTOR}
    await kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": key, "stringData": {"api-key": "b"}})
    kubeconfig = cluster.write_kubeconfig(
        cluster.workdir / "operator.kubeconfig",
        token=cluster.service_account_token(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT),
        user=OPERATOR_ACCOUNT,
        namespace=NAMESPACE,
    )
    return OperatorProcess(kubeconfig, cluster.workdir / "operator.log", log_level)


# ----------------------------------------------------------------------------- the writes


def first_status(created: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The status the operator writes first for a new assistant, field for field (no pod ready yet)."""
    meta = created["metadata"]
    registry = settings.registry()
    spec = parse_spec(created["spec"], registry)
    engine = spec.engine(registry)
    keys = ", ".join(f"{r.name}/{r.key}" for r in referenced_secrets(spec, settings))
    generation = int(meta.get("generation") or 1)
    ready = spec.replicas == 0
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        ("ModelValid", "True", "ModelSupported", f"{engine} is served by the runner"),
        ("SecretResolved", "True", "SecretFound", f"{keys} found"),
        (
            "Ready",
            str(ready),
            "ReplicasReady" if ready else "ReplicasNotReady",
            f"0/{spec.replicas} runner pods ready",
        ),
    ]
    return {
        "phase": "Ready" if ready else "Pending",
        "engineTarget": engine.target.name,
        "engineModelName": engine.model,
        "endpoint": endpoint(meta["name"], meta["namespace"]),
        "readyReplicas": 0,
        "observedGeneration": generation,
        "conditions": [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
                "observedGeneration": generation,
            }
            for kind, status, reason, message in conditions
        ],
    }


async def refused_again(
    refused: list[int], call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`call(...)`, again after a moment while the apiserver answers 429 (too many requests in
    flight); each 429 is appended to `refused`."""
    for attempt in range(8):
        try:
            return await call(*args, **kwargs)
        except KubeError as err:
            if err.status != 429:
                raise
            refused.append(attempt)
            await asyncio.sleep(0.2 * 2**attempt)
    return await call(*args, **kwargs)


# ----------------------------------------------------------------------------- the run


@dataclass
class Bench:
    """The cluster, the clients and the operator of one run, and what the phases measured."""

    args: argparse.Namespace
    cluster: ControlPlane
    kube: Kube
    watch: DeploymentWatch
    audit: Audit
    operator: OperatorProcess
    settings: Settings = field(default_factory=Settings)
    created: int = 0  # AIAssistants in NAMESPACE
    direct_seconds: list[float] = field(default_factory=list)
    direct_refused: list[int] = field(default_factory=list)
    operator_seconds: list[float] = field(default_factory=list)
    bulk_latencies: list[float] = field(default_factory=list)
    bulk_requests: list[Request] = field(default_factory=list)
    cpu_per_assistant: list[float] = field(default_factory=list)
    lagging: dict[str, str] = field(default_factory=dict)  # assistant -> phase, not Ready though its pods are

    @property
    def replicas(self) -> int:
        return int(self.args.replicas)

    async def direct(self, namespace: str) -> None:
        """The limit: the operator's objects written by the admin client, in the operator's pattern."""
        n, kube = self.args.n, self.kube
        await kube.ensure_namespace(namespace)
        semaphore = asyncio.Semaphore(self.args.concurrency)

        async def write(i: int) -> None:
            body = assistant(f"a{i}", namespace, self.replicas)
            async with semaphore:
                created = await refused_again(self.direct_refused, kube.create, body)
            objects = render(created, self.settings, "0" * 16)
            await asyncio.gather(*(refused_again(self.direct_refused, kube.create, o) for o in objects))
            status = path("AIAssistant", namespace, created["metadata"]["name"], "status")
            patch = {"status": first_status(created, self.settings)}
            await refused_again(self.direct_refused, kube.patch, status, patch, MERGE)

        start = time.perf_counter()
        await asyncio.gather(*(write(i) for i in range(n)))
        last = await self.watch.wait((namespace, runner_name(f"a{i}")) for i in range(n))
        self.direct_seconds.append(last - start)

    async def create(self, names: list[str], concurrency: int) -> tuple[float, list[float]]:
        """Create assistants for the operator: the time until every runner Deployment exists, and
        each one's create -> Deployment latency."""
        semaphore = asyncio.Semaphore(concurrency)
        started: dict[str, float] = {}

        async def one(name: str) -> None:
            async with semaphore:
                started[name] = time.perf_counter()
                await self.kube.create(assistant(name, NAMESPACE, self.replicas))

        start = time.perf_counter()
        await asyncio.gather(*(one(name) for name in names))
        last = await self.watch.wait((NAMESPACE, runner_name(name)) for name in names)
        self.created += len(names)
        return last - start, [self.watch.seen[(NAMESPACE, runner_name(n))] - started[n] for n in names]

    async def settled(self, since: float) -> float:
        """Every assistant Ready, then the operator quiet; returns its last request's time."""
        await settle(self.kube, NAMESPACE, self.created, self.replicas)
        self.lagging.update(await settle_statuses(self.kube, NAMESPACE, self.created, self.lagging))
        return await self.audit.quiet(since)

    async def bulk_round(self, r: int) -> None:
        n = self.args.n
        log(f"round {r + 1}/{self.args.repeat}: {n} assistants written directly, then by the operator")
        await self.direct(f"direct-{r}")
        await settle(self.kube, f"direct-{r}", n, self.replicas)
        start, cpu = time.time(), self.operator.cpu_seconds()
        seconds, latencies = await self.create([f"b{r}-{i}" for i in range(n)], self.args.concurrency)
        end = await self.settled(start)
        self.operator_seconds.append(seconds)
        self.bulk_latencies += latencies
        self.bulk_requests += self.audit.between(start, end + 1)
        self.cpu_per_assistant.append((self.operator.cpu_seconds() - cpu) / n)

    async def restart(self) -> dict[str, Any]:
        """Restart the operator; its requests until it goes quiet."""
        log(f"restart with {self.created} unchanged assistants")
        await self.operator.stop()
        mark = time.time()  # the old process has exited: every request after this is the new one's
        await self.operator.start()
        last = await self.audit.quiet(mark, seen=True)
        return {
            "assistants": self.created,
            "seconds_to_last_request": round(last - mark, 2),
            **summary(self.audit.between(mark)),
        }

    async def latency(self) -> list[float]:
        log(f"latency: {self.args.latency_n} assistants one at a time")
        single = []
        for i in range(self.args.latency_n):
            _, [latency] = await self.create([f"l{i}"], 1)
            single.append(latency)
        return single

    async def run(self) -> dict[str, Any]:
        await self.operator.start()
        await asyncio.sleep(2)  # its watches have started
        idle = self.operator.memory_mib()["VmRSS"]
        restarted: dict[str, Any] = {}
        for r in range(self.args.repeat):
            await self.bulk_round(r)
            if r == 0:
                restarted = await self.restart()
        if self.args.rss_n > self.created:
            log(f"rss: up to {self.args.rss_n} assistants")
            start = time.time()
            await self.create([f"m{i}" for i in range(self.args.rss_n - self.created)], self.args.concurrency)
            await self.settled(start)
        memory = self.operator.memory_mib()
        rss = {"idle": idle, "assistants": self.created, "loaded": memory["VmRSS"], "peak": memory["VmHWM"]}
        rss["open_sockets"] = self.operator.sockets()
        start = time.time()
        single = await self.latency()
        await self.settled(start)
        items = await self.kube.list(path("AIAssistant", NAMESPACE))
        not_ready = {
            o["metadata"]["name"]: str((o.get("status") or {}).get("phase"))
            for o in items
            if (o.get("status") or {}).get("phase") != "Ready"
        }
        return self.report(rss, restarted, single, not_ready)

    def report(
        self, rss: dict[str, Any], restarted: dict[str, Any], single: list[float], not_ready: dict[str, str]
    ) -> dict[str, Any]:
        per_assistant = [r for r in self.bulk_requests if r.verb not in STREAMS]
        rounds_n = self.args.repeat * self.args.n
        by_request = collections.Counter(str(r) for r in per_assistant)
        return {
            "benchmark": "reconcile",
            "control_plane": self.cluster.version,
            "n": self.args.n,
            "replicas": self.replicas,
            "concurrency": self.args.concurrency,
            "rounds": self.args.repeat,
            "operator_log_level": self.args.log_level,
            "direct_writes_seconds": [round(x, 3) for x in self.direct_seconds],
            "operator_seconds": [round(x, 3) for x in self.operator_seconds],
            "operator_vs_direct_ratio": round(min(self.operator_seconds) / min(self.direct_seconds), 2),
            "requests_per_assistant": {
                "direct": DIRECT_REQUESTS,
                "direct_refused": round(len(self.direct_refused) / rounds_n, 2),
                # + 1: the client's create, as in the direct writes
                "operator": round(1 + len(per_assistant) / rounds_n, 2),
                "operator_refused": round(sum(1 for r in per_assistant if r.code >= 400) / rounds_n, 2),
                "operator_by_request": {k: round(v / rounds_n, 2) for k, v in by_request.most_common()},
            },
            "operator_cpu_ms_per_assistant": round(min(self.cpu_per_assistant) * 1000, 2),
            "bulk_create_to_deployment_ms": {
                "p50": ms(percentile(self.bulk_latencies, 50)),
                "p99": ms(percentile(self.bulk_latencies, 99)),
            },
            "create_to_deployment_ms": {
                "n": len(single),
                "p50": ms(percentile(single, 50)),
                "p99": ms(percentile(single, 99)),
                "mean": ms(statistics.fmean(single)),
            },
            "operator_rss_mib": rss,
            "restart": restarted,
            "all_ready": not not_ready,
            # Not Ready for STALL_SECONDS though their pods were (at any point; and at the end).
            "statuses_lagging_pods": self.lagging,
            "not_ready_at_end": not_ready,
            "targets": {
                "operator_vs_direct_ratio": "<= 1.5",
                "create_to_deployment_p50_ms": "<= 150",
                "restart_writes": "0",
            },
        }


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    with ControlPlane.running(crds=[CRD]) as cluster:
        log(f"control plane {cluster.version} up in {cluster.start_seconds:.1f}s")
        async with Kube(cluster.server, cluster.admin_token, cluster.ca_file) as kube:
            operator = await prepare_operator(cluster, kube, args.log_level)
            watch = DeploymentWatch()
            watcher = asyncio.create_task(watch.run(cluster))
            bench = Bench(args, cluster, kube, watch, Audit(cluster.audit_log, OPERATOR_USER), operator)
            try:
                async with within(30, "the Deployment watch"):
                    await watch.started.wait()
                result = await bench.run()
            except BaseException:
                if tail := operator.tail():
                    log(f"failed; the operator's log ends:\n{tail}")
                raise
            finally:
                await operator.stop()
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await watcher
            result["operator_error_lines"] = operator.error_lines()  # its log goes with the cluster
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    return result


QUICK = {"n": 50, "rss_n": 100, "latency_n": 10, "repeat": 1}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run for CI (about a minute): "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
        + " unless given",
    )
    parser.add_argument("--n", type=int, default=500, help="assistants per bulk round (default 500)")
    parser.add_argument(
        "--rss-n", type=int, default=1000, help="assistants when measuring RSS (default 1000)"
    )
    parser.add_argument(
        "--latency-n", type=int, default=50, help="one-at-a-time latency samples (default 50)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="client creates in flight (default 8)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of direct + operator (default 2)")
    parser.add_argument(
        "--replicas", type=int, default=REPLICAS, help=f"runner pods per assistant (default {REPLICAS})"
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the operator's AIASSISTANT_LOG_LEVEL (default WARNING)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up after this many seconds (default 600; quick 120)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    if args.timeout is None:
        args.timeout = 120.0 if args.quick else 600.0
    if min(args.n, args.repeat, args.latency_n, args.concurrency) < 1:
        parser.error("--n, --repeat, --latency-n and --concurrency must be at least 1")
    return args


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with within(args.timeout, "the benchmark"):
        return await benchmark(args)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args())), indent=2))
