"""`aiassistant-operator dev`: a local Kubernetes control plane + the operator + examples/, until Ctrl-C.

A real kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok (controlplane.py; pods
become Running/Ready without a kubelet, so no runner code runs in them). The CRD is installed, the
operator runs in this process as the chart's ServiceAccount (bound to `rbac.RULES`), the examples are
applied, and the status table is printed. Then one assistant is shown answering: a local
`aiassistant-runner` started from the ConfigMap the operator rendered, against a loopback fake LLM.

This module is a command plugin of `aiassistant-operator` (entry point `aiassistant_operator.commands`):
`add_parser` is light; the heavy imports happen in `main`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "aiassistants.aiassistant.dev.yaml"
CONVERGE_SECONDS = 60.0
COLUMNS = ("NAMESPACE", "NAME", "MODEL", "TARGET", "PHASE", "READY", "MESSAGE")
OPERATOR_NAMESPACE = "aiassistant-system"
OPERATOR_ACCOUNT = "aiassistant-operator"
DEMO_QUESTION = "When are you open?"


def add_parser(commands: Any) -> None:
    dev = commands.add_parser(
        "dev",
        help="try it locally: a real Kubernetes control plane + operator + examples, until Ctrl-C",
        description="Start a local Kubernetes control plane built from upstream (kube-apiserver, etcd, "
        "kube-controller-manager, kube-scheduler, kwok for pods without a kubelet), install the CRD, "
        "run the operator as the chart's ServiceAccount, apply the examples, print their status, and "
        "show an assistant answering through a local runner against a fake LLM. The binaries are "
        "built by `make install` (python -m aiassistant_devtools.build).",
    )
    dev.add_argument("--examples", type=Path, default=None, metavar="DIR", help="apply the YAML files in DIR")
    dev.add_argument("--once", action="store_true", help="print the status table once and exit")
    dev.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the admin kubeconfig to FILE (default: a temp dir; printed)",
    )
    dev.add_argument(
        "--no-runner",
        action="store_true",
        help="do not start the local runner that shows an assistant answering",
    )
    dev.set_defaults(plugin=sys.modules[__name__])


def load_documents(directory: Path) -> list[dict[str, Any]]:
    import yaml

    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.y*ml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]
    # Secrets first: assistants then converge without a retry.
    return sorted(docs, key=lambda doc: doc.get("kind") != "Secret")


def operator_identity(
    namespace: str = OPERATOR_NAMESPACE, name: str = OPERATOR_ACCOUNT
) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and its cluster-wide RBAC, from the one rule list (rbac.RULES)."""
    from aiassistant_operator import rbac

    labels = {"app.kubernetes.io/name": "aiassistant-operator"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": rbac.RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


async def apply_documents(kube: Any, docs: Iterable[dict[str, Any]]) -> list[str]:
    """Create or update each document like `kubectl apply`; returns the API's refusals."""
    from .kubeapi import PLURALS, KubeError

    errors = []
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        name = f"{doc.get('kind')} {meta.get('namespace', 'default')}/{meta.get('name')}"
        if doc.get("kind") not in PLURALS:
            errors.append(f"{name}: skipped (dev applies the kinds it knows)")
            continue
        meta.setdefault("namespace", "default")
        await kube.ensure_namespace(meta["namespace"])
        try:
            await kube.apply(doc)
        except KubeError as err:
            errors.append(f"{name}: {err.message}")
    return errors


async def assistants(kube: Any) -> list[dict[str, Any]]:
    from .kubeapi import path

    items = await kube.list(path("AIAssistant"))
    return sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))


def rows(items: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    result: list[tuple[str, ...]] = []
    for obj in items:
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


def converged(items: list[dict[str, Any]]) -> bool:
    """Every assistant has a status for its current spec and is Ready, Invalid or waiting for a Secret."""
    for obj in items:
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"].get("generation"):
            return False
        waiting = any(
            c["type"] == "SecretResolved" and c["status"] == "False" for c in status.get("conditions", [])
        )
        if status.get("phase") not in ("Ready", "Invalid") and not waiting:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_http(url: str, seconds: float) -> bool:
    import aiohttp

    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url) as rsp:
                    if rsp.status == 200:
                        return True
            await asyncio.sleep(0.1)
    return False


DEV_TOKEN = secrets.token_hex(16)  # the local runner's bearer token, new per `dev` run


@contextlib.asynccontextmanager
async def local_runner(config_json: str, workdir: Path) -> AsyncIterator[str]:
    """The fake LLM and an `aiassistant-runner` serving `config_json` (a ConfigMap's config.json)
    against it, with the browser playground on; yields the runner's base URL. Both are subprocesses,
    stopped on exit."""
    config = workdir / "runner-config.json"
    config.write_text(json.dumps({**json.loads(config_json), "playground": True}))
    fake_port, runner_port = _free_port(), _free_port()
    fake = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--port",
            str(fake_port),
            "--text",
            "We are open 9 to 5, Monday to Friday. (an answer from the fake LLM)",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "XAI_API_KEY": "dev-key",
        "OPENAI_API_KEY": "dev-key",
        "AIASSISTANT_LOG_LEVEL": "WARNING",
        # What the assistant's access.tokenSecretRef would hold in a cluster (one token).
        "AIASSISTANT_ACCESS_TOKENS": DEV_TOKEN,
    }
    log = (workdir / "runner.log").open("wb")
    runner = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "aiassistant_runner",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(runner_port),
            "--base-url",
            f"http://127.0.0.1:{fake_port}/v1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        url = f"http://127.0.0.1:{runner_port}"
        if not await _wait_http(f"{url}/readyz", 60):
            raise RuntimeError(f"the local runner did not become ready; see {workdir / 'runner.log'}")
        yield url
    finally:
        for proc in (runner, fake):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in (runner, fake):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
        log.close()


async def ask(runner_url: str, question: str) -> str:
    import aiohttp

    body = {"messages": [{"role": "user", "content": question}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{runner_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {DEV_TOKEN}"}
        ) as rsp,
    ):
        data = await rsp.json()
        return str(data["choices"][0]["message"]["content"])


async def dev(args: argparse.Namespace) -> int:
    from aiassistant_operator.settings import Settings

    from .controlplane import ControlPlane
    from .kubeapi import Kube, path
    from .operator import running_operator

    settings = Settings.from_env()
    started = time.monotonic()
    with ControlPlane.running(crds=[CRD_FILE]) as cluster:
        kubeconfig = cluster.kubeconfig
        if args.kubeconfig is not None:
            kubeconfig = cluster.write_kubeconfig(args.kubeconfig.resolve())
        async with Kube(cluster.server, cluster.admin_token, cluster.ca_file) as kube:
            for obj in operator_identity():
                await kube.apply(obj)
            token = cluster.service_account_token(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
            identity = cluster.write_kubeconfig(
                cluster.workdir / "operator.kubeconfig", token=token, user=OPERATOR_ACCOUNT
            )
            async with running_operator(identity, settings):
                errors = await apply_documents(kube, load_documents(args.examples)) if args.examples else []
                for error in errors:
                    print(f"refused: {error}", file=sys.stderr)
                deadline = time.monotonic() + CONVERGE_SECONDS
                # Polls the apiserver: no local event to wait on.
                while not (done := converged(await assistants(kube))) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                shown = rows(await assistants(kube))
                print(table(shown))
                print()
                print(
                    f"Kubernetes {cluster.version} (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, "
                    f"kwok) at {cluster.server}; up in {cluster.start_seconds:.1f}s, examples converged "
                    f"{time.monotonic() - started:.1f}s after start."
                )
                print("Runner pods are Running/Ready under kwok (no kubelet: no runner code runs in them).")
                print(f"  kubectl --kubeconfig {kubeconfig} get aia,deploy,pods -A")
                print(f"  kubectl --kubeconfig {kubeconfig} describe aia support-bot")
                if not done:
                    print(f"Not converged within {CONVERGE_SECONDS:.0f}s.", file=sys.stderr)
                # The one to talk to: a Ready Grok assistant if there is one (Grok is the first-class engine).
                ready = sorted((r for r in shown if r[4] == "Ready"), key=lambda r: r[3] != "grok")
                if ready and not args.no_runner:
                    namespace, name = ready[0][0], ready[0][1]
                    config_map = await kube.get(path("ConfigMap", namespace, f"{name}-runner"))
                    assert config_map is not None
                    async with local_runner(config_map["data"]["config.json"], cluster.workdir) as url:
                        answer = await ask(url, DEMO_QUESTION)
                        print()
                        print(
                            f"Talk to {namespace}/{name}: a local aiassistant-runner serves the config the "
                            f"operator rendered (ConfigMap {name}-runner) against a loopback fake LLM:"
                        )
                        print(
                            f"  curl -s {url}/v1/chat/completions -H 'Authorization: Bearer {DEV_TOKEN}' \\"
                        )
                        print("    -H 'Content-Type: application/json' \\")
                        print(
                            f"    -d '{json.dumps({'messages': [{'role': 'user', 'content': DEMO_QUESTION}]})}'"
                        )
                        print(f"  -> {answer}")
                        print(f"Playground (chat in a browser): {url}/playground")
                        if not args.once:
                            await _watch(kube, shown)
                elif not args.once:
                    await _watch(kube, shown)
    return 0 if done else 1


async def _watch(kube: Any, shown: list[tuple[str, ...]]) -> None:
    """Until Ctrl-C: print the table again when it changes."""
    print("Ctrl-C to stop.", flush=True)
    while True:
        await asyncio.sleep(1)
        if (now := rows(await assistants(kube))) != shown:
            shown = now
            print(table(now), end="\n\n", flush=True)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(logging.CRITICAL)  # kopf's own chatter; the table says it all
    from .build import missing

    absent = missing()
    if absent:
        print(
            f"aiassistant-operator dev: the local control plane is not built ({', '.join(absent)} missing): "
            "run `make install` (or python -m aiassistant_devtools.build; needs Go and ~20 minutes once)",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(dev(args))
    except KeyboardInterrupt:
        return 0
