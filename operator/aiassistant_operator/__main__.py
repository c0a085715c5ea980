"""`aiassistant-operator`: run the operator, render an assistant offline, or try it all locally.

    aiassistant-operator render -f examples/grok-assistant.yaml   # the objects it would create
    aiassistant-operator run                                      # the controller (in the cluster)
    aiassistant-operator dev --examples examples                  # embedded API + operator + examples

Each subcommand lives in its own module, imported only when chosen: `render` needs no kopf,
`run`/`dev` do.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

PROG = "aiassistant-operator"


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0..65535)")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kubernetes operator that turns AIAssistant resources into Pipecat voice/text bots.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options. Settings come from "
        "AIASSISTANT_* env vars (the helm chart sets them).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    render = commands.add_parser(
        "render",
        help="print the objects the operator would create for AIAssistant files (offline)",
        description="Validate AIAssistant resources and print the ConfigMap, Deployment, Service (and\n"
        "PodDisruptionBudget) the operator would create for each, as multi-document YAML, like\n"
        "'helm template'. No cluster needed; other kinds in the files (e.g. Secrets) are skipped.\n"
        "Operator settings come from the AIASSISTANT_* env vars. Exits 1 with the field-named\n"
        "validation message if an assistant is invalid.",
        epilog="examples:\n"
        f"  {PROG} render -f examples/grok-assistant.yaml\n"
        f"  {PROG} render -f examples/ -n bots | kubectl apply --dry-run=client -f -\n"
        f"  cat bot.yaml | {PROG} render -f -",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render.add_argument(
        "-f",
        "--filename",
        dest="filenames",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML file or directory of them with AIAssistant resources; '-' reads stdin; repeatable",
    )
    render.add_argument(
        "-n",
        "--namespace",
        default="default",
        help="namespace for assistants that name none (default: default)",
    )

    run = commands.add_parser(
        "run",
        help="run the operator (kopf) against the current cluster",
        description="Run the controller: watch AIAssistants and reconcile their runner workloads. "
        "Uses the in-cluster service account, or the current kubeconfig context outside a cluster.",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        metavar="NAMESPACE",
        help="watch this namespace (repeatable; default: AIASSISTANT_WATCH_NAMESPACES, else cluster-wide)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (cluster-wide)"
    )
    run.add_argument(
        "--liveness-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="port of the liveness endpoint /healthz (default: AIASSISTANT_HEALTH_PORT or 8080)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    dev = commands.add_parser(
        "dev",
        help="try it locally: embedded Kubernetes API + operator + examples, until Ctrl-C",
        description="Start an in-process Kubernetes API emulator (test/dev tooling, not a cluster), "
        "install the CRD, run the operator against it, apply the examples and print their status "
        "and how to point kubectl at it.",
    )
    dev.add_argument(
        "--examples",
        type=Path,
        default=None,
        metavar="DIR",
        help="apply the YAML files in DIR after start (e.g. examples)",
    )
    dev.add_argument("--once", action="store_true", help="print the status table once and exit")
    dev.add_argument(
        "--port", type=_port, default=0, help="port of the embedded API (default: 0, a free port)"
    )
    dev.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="PATH",
        help="write a kubeconfig for the embedded API to PATH (for kubectl --kubeconfig)",
    )
    return parser


def _dispatch(command: str, args: argparse.Namespace) -> int:
    """Import the command's module only now: `render` must work without kopf installed."""
    module_name = f"aiassistant_operator.cli_{command}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            print(
                f"{PROG}: '{command}' is not available in this build ({module_name} is missing)",
                file=sys.stderr,
            )
        else:
            print(
                f"{PROG}: '{command}' needs the Python package {err.name!r}: "
                "pip install 'aiassistant-operator[operator]'",
                file=sys.stderr,
            )
        return 2
    result = module.main(args)
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _dispatch(args.command, args)


if __name__ == "__main__":
    sys.exit(main())
