"""`aiassistant-operator`: run the operator, render an assistant offline, or try it all locally.

    aiassistant-operator render -f examples/grok-assistant.yaml   # the objects it would create
    aiassistant-operator run                                      # the controller (in the cluster)
    aiassistant-operator dev --examples examples                  # local control plane + operator + examples

Each subcommand lives in its own module, imported only when chosen: `render` needs no kopf, `run`
does. More commands come from installed plugins (entry points in the group
`aiassistant_operator.commands`): `dev` comes from the dev tools' package, which the operator image
does not have.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from types import ModuleType

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


PLUGIN_GROUP = "aiassistant_operator.commands"


def _plugins() -> list[ModuleType]:
    """Modules of installed command plugins (each has `add_parser(subparsers)` and `main(args)`)."""
    modules = []
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            modules.append(entry.load())
        except ImportError:
            continue  # declared by the distribution, but its package is not in this image
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kubernetes operator that turns AIAssistant resources into Pipecat voice/text bots.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options. Settings come from "
        "AIASSISTANT_* env vars (the helm chart sets them). 'dev' (a local control plane with the "
        "operator and examples) comes with the dev tools: pip install 'aiassistant-operator[dev]' "
        "from a checkout.",
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

    for plugin in _plugins():
        plugin.add_parser(commands)
    return parser


def _dispatch(command: str, args: argparse.Namespace) -> int:
    """Import the command's module only now: `render` must work without kopf installed."""
    plugin = getattr(args, "plugin", None)
    if plugin is not None:
        return int(plugin.main(args) or 0)
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
