"""Runner benchmarks, one command, JSON on stdout: `python benchmarks/runner.py`, 5-6 minutes.

`--skip cold_start voice auth --levels 200 800` takes about four.

(a) cold start: the real `aiassistant-runner` process, from spawn to /readyz 200, and its RSS then;
    baseline = a bare FastAPI + uvicorn app with one /readyz route, started the same way in the same
    run. Also the first text answer after ready (the Pipecat import is prewarmed in a thread after
    start) and the RSS once warm.
(b) concurrent text conversations against the loopback fake LLM (its own process): each conversation
    sends a turn, waits for the answer, thinks for THINK_SECONDS, and so on. For each level of
    concurrency the same conversations run straight against the fake (its own latency), then
    through a runner of one worker process and one of two (`--workers`, default 1 2; each runner is
    started once, and they take turns), `--repeat` times (5); added = through-runner minus
    straight, at p50 and p99, the median of the repeats (each run's p99 listed too), reported per
    runner (`workers_1`, `workers_2`). The sweep stops once the one-worker runner's p99 is more than
    twice its p99 at the lowest level: `max_sessions_p99_within_2x`. `steal_pct_each_run`:
    the CPU the hypervisor gave other guests during each half of each run (straight, through the
    runner), in % of all cores; on these shared machines it reaches 10-40 % for seconds at a time,
    and a run it hits measures the host more than the runner: `added_p99_ms_calm_runs` is the median
    over the runs whose halves both stayed at or under CALM_STEAL_PCT (`calm_runs` of them).
(c) voice, if benchmarks/voice.py is present: its `bench_voice()` result is included as is.
(d) authentication: the runner's whole ASGI app called in-process (no sockets, so no network
    noise) with the same request, once as an anonymous assistant and once requiring one of three
    bearer tokens (the request carries the last one), interleaved; added = the difference of the
    medians. The request is a chat body the endpoint refuses with 400 before any LLM call, so auth
    is the only difference.

Aims (issue 4): ready <= 1.0 s and <= 150 MB; 200 concurrent conversations at p99 added <= 20 ms.
Aims (issue 12): p99 added <= 5 ms at 200 and <= 20 ms at 800 (a pod of two cores: two workers).
Aim (issue 9): authentication adds <= 0.05 ms median per request.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RUNNER = str(Path(sys.executable).parent / "aiassistant-runner")
KEY = "xai-bench-key-0123456789"  # also the runner's access token (the clients send it)

FAKE_FIRST_TOKEN_SECONDS = 0.2  # the fake model's time to first token
ANSWER = "We are open Monday to Friday from nine to five, and on Saturday mornings."
THINK_SECONDS = 1.0  # a user's pause between turns
TURNS = 3  # turns per conversation per run
LEVELS = (1, 50, 100, 200, 400, 800)
REPEAT = 5  # runs per level; the level reports their medians
WORKERS = (1, 2)  # (b): runners of one and of two worker processes, measured in turn
CALM_STEAL_PCT = 5.0  # a run whose halves both had at most this steal is "calm" (added_p99_ms_calm_runs)

BASELINE_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/readyz")
async def readyz():
    return {"status": "ready"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (a runner's workers) so far
    (contention-proof cost, unlike latency)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def steal_ticks() -> int:
    """The machine's CPU time taken by the hypervisor for other guests so far (/proc/stat `steal`)."""
    return int(Path("/proc/stat").read_text().split(maxsplit=9)[8])


def steal_percent(ticks: int, seconds: float) -> float:
    """Steal ticks over `seconds` as a percentage of all the machine's cores."""
    return round(100 * ticks / (seconds * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)), 1)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    """Poll `url` until 200; seconds since `started`."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_fake(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([PYTHON, __file__, "--serve-fake", str(port)], cwd=ROOT)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def start_runner(
    fake_port: int, workdir: Path, workers: int = 1
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    config = {"name": "bench", "engineModel": "grok.grok-3", "maxSessionsPerPod": 10_000, "workers": workers}
    path = workdir / f"config-{port}.json"
    path.write_text(json.dumps(config))
    env = {
        **os.environ,
        "XAI_API_KEY": KEY,
        "AIASSISTANT_ACCESS_TOKENS": KEY,
        "AIASSISTANT_LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    # The loopback fake by --base-url: an operator's config may not name a loopback URL.
    base_url = f"http://127.0.0.1:{fake_port}/v1"
    proc = subprocess.Popen(
        [RUNNER, "--config", str(path), "--base-url", base_url, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
    )
    ready = wait_http(f"http://127.0.0.1:{port}/readyz", proc) - started
    if workers > 1:
        time.sleep(1.5)  # the first worker answered: let the others finish their start too
    return proc, f"http://127.0.0.1:{port}", ready


# -- (a) cold start ----------------------------------------------------------------------------
def bench_cold_start(fake_port: int, workdir: Path, runs: int = 3) -> dict[str, Any]:
    import urllib.request

    base_ready, base_rss, ready, rss, first, warm_rss = [], [], [], [], [], []
    for _ in range(runs):
        port = free_port()
        started = time.monotonic()
        proc = subprocess.Popen([PYTHON, "-c", BASELINE_APP, str(port)])
        base_ready.append(wait_http(f"http://127.0.0.1:{port}/readyz", proc) - started)
        base_rss.append(rss_mb(proc.pid))
        stop(proc)

        proc, url, seconds = start_runner(fake_port, workdir)
        ready.append(seconds)
        rss.append(rss_mb(proc.pid))
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{url}/v1/chat/completions",
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )
        t0 = time.monotonic()
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            response.read()
        first.append(time.monotonic() - t0 - FAKE_FIRST_TOKEN_SECONDS)
        time.sleep(0.5)  # let the prewarm thread settle before reading RSS
        warm_rss.append(rss_mb(proc.pid))
        stop(proc)
    med = statistics.median
    return {
        "runs": runs,
        "baseline_fastapi_ready_s": round(med(base_ready), 3),
        "baseline_fastapi_rss_mb": med(base_rss),
        "runner_ready_s": round(med(ready), 3),
        "runner_rss_at_ready_mb": med(rss),
        "ready_ratio_vs_baseline": round(med(ready) / med(base_ready), 2),
        "rss_ratio_vs_baseline": round(med(rss) / med(base_rss), 2),
        "first_answer_after_ready_minus_fake_s": round(med(first), 3),
        "runner_rss_warm_mb": med(warm_rss),
    }


# -- (b) concurrent conversations --------------------------------------------------------------
async def conversation(http: aiohttp.ClientSession, url: str, latencies: list[float]) -> None:
    messages: list[dict[str, str]] = []
    for turn in range(TURNS):
        messages.append({"role": "user", "content": f"question {turn}: when are you open?"})
        body = {"model": "grok-3", "messages": messages}
        t0 = time.perf_counter()
        async with http.post(url, json=body) as response:
            answer = await response.json()
            assert response.status == 200, answer
        latencies.append(time.perf_counter() - t0)
        messages.append({"role": "assistant", "content": answer["choices"][0]["message"]["content"]})
        await asyncio.sleep(THINK_SECONDS)


async def run_level(url: str, sessions: int) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {KEY}"}) as http:
        # Conversations start spread over one think time, as users do, not in one burst.
        async def delayed(i: int) -> None:
            await asyncio.sleep(THINK_SECONDS * i / sessions)
            await conversation(http, url, latencies)

        await asyncio.gather(*(delayed(i) for i in range(sessions)))
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_concurrency(
    fake_port: int,
    workdir: Path,
    levels_to_run: tuple[int, ...] = LEVELS,
    sweep: bool = True,
    repeat: int = REPEAT,
    workers: tuple[int, ...] = WORKERS,
) -> dict[str, Any]:
    """`sweep`: stop at the first level whose p99 is over twice the lowest level's (the default
    run); False runs every level of `levels_to_run` (e.g. `--levels 200 800`). Each level runs
    `repeat` times: straight, then through a runner of each of `workers` processes in turn; a
    level reports the median of its repeats and lists them: on shared cores one run's p99 can be a
    neighbour's stall. One result per runner, keyed `workers_<n>`."""
    load_before = os.getloadavg()[0]
    runners = {n: start_runner(fake_port, workdir, n) for n in workers}
    direct_url = f"http://127.0.0.1:{fake_port}/v1/chat/completions"
    levels: dict[int, list[dict[str, Any]]] = {n: [] for n in workers}
    try:
        for _, url, _ in runners.values():  # warm each runner's connection pool and code paths
            asyncio.run(run_level(f"{url}/v1/chat/completions", 5 * max(workers)))
        for sessions in levels_to_run:
            runs: dict[int, list[dict[str, Any]]] = {n: [] for n in workers}
            for _ in range(repeat):
                stolen, started = steal_ticks(), time.monotonic()
                direct = asyncio.run(run_level(direct_url, sessions))
                stolen_direct, seconds_direct = steal_ticks() - stolen, time.monotonic() - started
                for n, (proc, url, _) in runners.items():
                    cpu, stolen, started = cpu_seconds(proc.pid), steal_ticks(), time.monotonic()
                    via = asyncio.run(run_level(f"{url}/v1/chat/completions", sessions))
                    cpu = cpu_seconds(proc.pid) - cpu
                    stolen_via, seconds_via = steal_ticks() - stolen, time.monotonic() - started
                    run = {
                        "fake_p50_ms": pct(direct, 0.5) * 1000,
                        "fake_p99_ms": pct(direct, 0.99) * 1000,
                        "runner_p50_ms": pct(via, 0.5) * 1000,
                        "runner_p99_ms": pct(via, 0.99) * 1000,
                        "runner_cpu_ms_per_turn": cpu * 1000 / len(via),
                    }
                    run["added_p50_ms"] = run["runner_p50_ms"] - run["fake_p50_ms"]
                    run["added_p99_ms"] = run["runner_p99_ms"] - run["fake_p99_ms"]
                    run["steal_pct_fake"] = steal_percent(stolen_direct, seconds_direct)
                    run["steal_pct_runner"] = steal_percent(stolen_via, seconds_via)
                    runs[n].append(run)
            for n in workers:
                level = summarize(sessions, runs[n])
                levels[n].append(level)
                print(json.dumps({"workers": n, **level}), file=sys.stderr)
            first = levels[workers[0]]
            if sweep and first[-1]["runner_p99_ms"] > 2 * first[0]["runner_p99_ms"]:
                break
    finally:
        for proc, _, _ in runners.values():
            stop(proc)
    result: dict[str, Any] = {
        # The machine's 1-minute load average around the sweep: on shared cores, latencies measured
        # with a load far above the core count say more about the neighbours than the runner.
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "fake_first_token_s": FAKE_FIRST_TOKEN_SECONDS,
        "think_s": THINK_SECONDS,
        "turns_per_conversation": TURNS,
        "repeats_per_level": repeat,
    }
    for n in workers:
        result[f"workers_{n}"] = figures(levels[n])
    return result


def summarize(sessions: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One level of one runner: the medians of its runs, each run's p99 and steal."""
    med = statistics.median
    level: dict[str, Any] = {"sessions": sessions}
    for key in runs[0]:
        level[key] = round(med(r[key] for r in runs), 2 if "cpu" in key else 1)
    level["added_p99_ms_each_run"] = [round(r["added_p99_ms"], 1) for r in runs]
    # CPU the hypervisor gave other guests during each run (fake alone, then through the runner).
    level["steal_pct_each_run"] = [[r["steal_pct_fake"], r["steal_pct_runner"]] for r in runs]
    calm = [
        r["added_p99_ms"] for r in runs if max(r["steal_pct_fake"], r["steal_pct_runner"]) <= CALM_STEAL_PCT
    ]
    level["added_p99_ms_calm_runs"] = round(med(calm), 1) if calm else None
    level["calm_runs"] = len(calm)
    return level


def figures(levels: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures of one runner's levels."""
    within = [lv["sessions"] for lv in levels if lv["runner_p99_ms"] <= 2 * levels[0]["runner_p99_ms"]]
    at_200 = next((lv for lv in levels if lv["sessions"] == 200), None)
    at_800 = next((lv for lv in levels if lv["sessions"] == 800), None)
    return {
        "levels": levels,
        "added_p50_ms_at_200": at_200 and at_200["added_p50_ms"],
        "added_p99_ms_at_200": at_200 and at_200["added_p99_ms"],
        "added_p99_ms_at_800": at_800 and at_800["added_p99_ms"],
        "added_p99_ms_at_800_calm_runs": at_800 and at_800["added_p99_ms_calm_runs"],
        "max_sessions_p99_within_2x": max(within),
        # Turns one core can serve per second at the measured CPU cost (noise-free capacity view).
        "runner_turns_per_cpu_second": round(
            1000 / statistics.median(lv["runner_cpu_ms_per_turn"] for lv in levels[1:] or levels), 0
        ),
        "sweep_stopped_by_degradation": len(within) < len(levels),
    }


# -- (d) authentication ------------------------------------------------------------------------
def bench_auth(requests: int = 20_000) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from aiassistant_contract.runner_config import RunnerConfig
    from aiassistant_runner.app import create_app
    from aiassistant_runner.wiring import build_runner

    tokens = [f"bench-access-token-{i}-{'x' * 32}" for i in range(3)]
    apps = {}
    for mode, access, env in (
        ("anonymous", {"anonymous": True}, {}),
        ("tokens", {}, {"AIASSISTANT_ACCESS_TOKENS": "\n".join(tokens)}),
    ):
        config = RunnerConfig.model_validate({"engineModel": "grok.grok-3", "access": access})
        apps[mode] = create_app(build_runner(config, environ={"XAI_API_KEY": KEY, **env}), prewarm=False)
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {tokens[-1]}".encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def call(app: Any) -> tuple[int, int]:
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        t0 = time.perf_counter_ns()
        await app(dict(scope), receive, send)
        return time.perf_counter_ns() - t0, sent[0]["status"]

    async def run() -> dict[str, list[int]]:
        times: dict[str, list[int]] = {"anonymous": [], "tokens": []}
        for mode in times:  # warm: build the middleware stacks, first-call imports
            for _ in range(200):
                assert (await call(apps[mode]))[1] == 400
        for i in range(requests):
            order = ("anonymous", "tokens") if i % 2 else ("tokens", "anonymous")
            for mode in order:
                elapsed, status = await call(apps[mode])
                assert status == 400, status  # authenticated (or anonymous), then refused for the body
                times[mode].append(elapsed)
        return times

    times = asyncio.run(run())
    anonymous, with_tokens = (statistics.median(times[m]) / 1e6 for m in ("anonymous", "tokens"))
    return {
        "requests_each": requests,
        "tokens_configured": len(tokens),
        "median_ms_anonymous": round(anonymous, 4),
        "median_ms_with_token": round(with_tokens, 4),
        "added_median_ms": round(with_tokens - anonymous, 4),
        "aim_added_median_ms": 0.05,
    }


def use_uvloop() -> None:
    """The fake and the clients on uvloop, as the runner is: the harness's own CPU (two of the three
    processes sharing the cores) should not be what saturates the machine first."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve_fake(port: int) -> None:
    """The loopback fake LLM in its own process, every reply delayed like a model's first token."""
    sys.path.insert(0, str(ROOT))
    from aiohttp import web

    from tests.fakes.openai_server import FakeOpenAI, Reply

    class SlowFake(FakeOpenAI):
        async def _chat(self, request: web.Request) -> web.StreamResponse:
            self.script(Reply(text=ANSWER, first_token_delay=FAKE_FIRST_TOKEN_SECONDS))
            response = await super()._chat(request)
            self.requests.clear()  # a benchmark records nothing
            return response

    fake = SlowFake(port=port)
    use_uvloop()
    web.run_app(fake.app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["cold_start", "concurrency", "voice", "auth"]
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=REPEAT,
        help=f"(b) only: runs per level, medians reported (default {REPEAT})",
    )
    parser.add_argument(
        "--levels",
        nargs="+",
        type=int,
        help=f"(b) only: run these concurrency levels, all of them, no sweep stop (default {LEVELS})",
    )
    parser.add_argument(
        "--workers",
        nargs="+",
        type=int,
        default=list(WORKERS),
        help=f"(b) only: a runner of each of these many worker processes, in turn (default {WORKERS})",
    )
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return
    use_uvloop()
    started = time.monotonic()
    fake_port = free_port()
    fake = start_fake(fake_port)
    result: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if "cold_start" not in args.skip:
                result["cold_start"] = bench_cold_start(fake_port, Path(tmp))
            if "concurrency" not in args.skip:
                result["concurrency"] = bench_concurrency(
                    fake_port,
                    Path(tmp),
                    tuple(args.levels) if args.levels else LEVELS,
                    sweep=not args.levels,
                    repeat=args.repeat,
                    workers=tuple(args.workers),
                )
    finally:
        stop(fake)
    if "auth" not in args.skip:
        result["auth"] = bench_auth()
    voice = Path(__file__).with_name("voice.py")
    if voice.exists() and "voice" not in args.skip:
        spec = importlib.util.spec_from_file_location("benchmarks_voice", voice)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result["voice"] = module.bench_voice()
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
