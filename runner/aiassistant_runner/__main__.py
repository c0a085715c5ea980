"""`aiassistant-runner`: serve one assistant (voice calls, text conversations, tasks) over HTTP.

    aiassistant-runner --config /etc/aiassistant/config.json     # in the pod (or env AIASSISTANT_CONFIG)
    aiassistant-runner --assistant examples/grok-assistant.yaml  # an AIAssistant YAML, locally
    aiassistant-runner --assistant x.yaml --base-url http://127.0.0.1:8080/v1   # any OpenAI-compatible LLM

A local run (--assistant) serves the browser playground at /playground unless --no-playground;
from the operator's config, only if the assistant sets `playground: true`.

The config is validated before anything starts; a bad one exits 2 with the path of the bad field.
An AIAssistant YAML becomes the config the operator would render from it (the contract's
`parse_spec` + `to_runner_config`, with the models AIASSISTANT_EXTRA_MODELS allows).
API keys come only from env vars (XAI_API_KEY, OPENAI_API_KEY, ...) and are never logged; so are
the access tokens (AIASSISTANT_ACCESS_TOKENS, TWILIO_AUTH_TOKEN; see access.py).
At start each provider key is checked with the provider's cheapest authenticated call (key_check.py):
a rejected key exits 3 with a termination message (--termination-log) naming its env var.
Every URL of the config passes the contract's URL policy again at start (urls.py: defence in depth
behind the operator); a local `--assistant FILE` run (or `--allow-loopback-urls`, for tests against
local fakes) may also name loopback URLs, and `--base-url` is the choice of whoever runs the
command. The operator passes neither: nothing in an AIAssistant can turn the check off.
The listening socket is bound (and listening) before "serving assistant ... on HOST:PORT" is logged:
a port another process holds exits 4 with one line naming HOST:PORT, and nothing claims to serve.
SIGTERM drains: /readyz answers 503, new sessions are refused, active ones get up to the grace
period (--drain-seconds, env AIASSISTANT_DRAIN_SECONDS; default: the longest a session may last,
maxCallSeconds or taskTimeoutSeconds, so none is cut) to finish, then exit 0.
With `workers` over 1 (the config's, or --workers) this process supervises that many worker
processes on the one socket (workers.py); the checks above run once, here, before any starts.
`--help` lists the env vars (from the contract's tables), the endpoints (endpoints.py) and the exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aiassistant_contract.assistant import KIND, parse_spec, to_runner_config
from aiassistant_contract.engines import (
    BUILTIN,
    EXTRA_MODELS_ENV,
    EngineModelError,
    Registry,
    registry_from_env,
)
from aiassistant_contract.errors import MissingKeyError, SpecError, describe, error_lines
from aiassistant_contract.runner_config import (
    ACCESS_TOKENS_ENV,
    CONFIG_ENV,
    DRAIN_SECONDS_ENV,
    LOG_LEVEL_ENV,
    MAX_WORKERS,
    PORT,
    TWILIO_AUTH_TOKEN_ENV,
    RunnerConfig,
    fallback_key_env,
)
from aiassistant_contract.speech import STT_PROVIDERS, TTS_PROVIDERS
from aiassistant_contract.urls import check_urls

from . import __version__, key_check
from .endpoints import endpoint_lines
from .logs import setup_logging
from .server import ListenError, listen_socket, serve
from .wiring import build_runner
from .workers import WorkerPlan, supervise

log = logging.getLogger("aiassistant_runner")

EXIT_BAD_CONFIG = 2
EXIT_KEY_REJECTED = 3
EXIT_CANNOT_LISTEN = 4
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "stopped: drained after SIGTERM/SIGINT (or --help, --version)"),
    (1, "an unexpected error (a traceback is logged), or a worker process died (the others drained)"),
    (EXIT_BAD_CONFIG, "bad config or arguments, or a missing key env var (stderr names the field or var)"),
    (EXIT_KEY_REJECTED, "a provider rejected its key at start (stderr and --termination-log name the var)"),
    (EXIT_CANNOT_LISTEN, "cannot listen on HOST:PORT (e.g. the port is taken): one line names it"),
)


class ConfigError(Exception):
    """A config the runner cannot start with; the message names the file and the bad field."""


def env_var_lines() -> list[str]:
    """The env vars the runner reads, one line each; the key names come from the contract's tables
    (engine targets, STT and TTS providers), so a new provider shows up here without an edit."""
    users: dict[str, list[str]] = {}
    for target in BUILTIN.targets.values():
        users.setdefault(target.key_env, []).append(f"{target.name} engine")
    for kind, providers in (("STT", STT_PROVIDERS), ("TTS", TTS_PROVIDERS)):
        for provider in providers.values():
            users.setdefault(provider.key_env, []).append(f"{provider.name} {kind}")
    rows = [(name, "API key of: " + ", ".join(used_by)) for name, used_by in sorted(users.items())]
    rows += [
        (fallback_key_env(0), f"API key of fallbacks[0] ({fallback_key_env(1)}: fallbacks[1], ...)"),
        (CONFIG_ENV, "runner config JSON path (when no --config/--assistant)"),
        (DRAIN_SECONDS_ENV, "grace period after SIGTERM, seconds (when no --drain-seconds)"),
        (LOG_LEVEL_ENV, "log level DEBUG, INFO, WARNING or ERROR (when no --log-level)"),
        (ACCESS_TOKENS_ENV, "bearer tokens callers must present, one a line (see docs/access.md)"),
        (TWILIO_AUTH_TOKEN_ENV, "Twilio auth token: twilio calls must carry a valid X-Twilio-Signature"),
        (EXTRA_MODELS_ENV, "more engine models to allow, comma-separated (e.g. grok.grok-4.7)"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width + 2}}{what}" for name, what in rows]
    lines.append("Keys and tokens are never logged; model prices come from the config, not the env.")
    return lines


def help_epilog() -> str:
    def section(title: str, lines: list[str]) -> str:
        return title + ":\n" + "\n".join(f"  {line}" for line in lines)

    codes = [f"{code}  {what}" for code, what in EXIT_CODES]
    return "\n\n".join(
        (
            section("environment variables", env_var_lines()),
            section("endpoints", endpoint_lines()),
            section("exit codes", codes),
        )
    )


def load_config_file(path: Path) -> RunnerConfig:
    """A RunnerConfig JSON file, as the operator writes it into the ConfigMap."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read runner config {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"runner config {path} is not JSON: {err}") from None
    try:
        return RunnerConfig.model_validate(data)
    except ValidationError as err:
        lines = "\n".join(f"  {line}" for line in error_lines(err))
        raise ConfigError(f"invalid runner config {path}:\n{lines}") from None


def config_from_assistant(
    document: Mapping[str, Any], source: str = "assistant", registry: Registry | None = None
) -> RunnerConfig:
    """The RunnerConfig the operator would render for an AIAssistant resource (never a key):
    the contract's conversion, with `registry` (default: the built-in models plus those
    AIASSISTANT_EXTRA_MODELS allows, as the operator's settings would)."""
    if document.get("kind") != KIND or not isinstance(document.get("spec"), Mapping):
        raise ConfigError(f"{source} is not an AIAssistant (expected kind: AIAssistant with a spec)")
    registry = registry_from_env() if registry is None else registry
    metadata = document.get("metadata") or {}
    name, namespace = metadata.get("name", "assistant"), metadata.get("namespace", "default")
    try:
        return to_runner_config(name, namespace, parse_spec(document["spec"], registry), registry)
    except SpecError as err:
        raise ConfigError(f"invalid AIAssistant {source}: {err}") from None
    except ValidationError as err:  # the spec is fine: the name or namespace is not a string
        raise ConfigError(f"invalid AIAssistant {source}: {describe(err, 'metadata')}") from None


def load_assistant_file(path: Path) -> RunnerConfig:
    """The first AIAssistant in a YAML file (a file may also hold its Secrets)."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not YAML: {err}") from None
    assistants = [d for d in documents if d.get("kind") == "AIAssistant"]
    if not assistants:
        raise ConfigError(f"{path} holds no AIAssistant")
    return config_from_assistant(assistants[0], str(path))


def workers_count(text: str) -> int:
    """--workers: a whole number from 1 to MAX_WORKERS."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{text} is not a number of workers from 1 to {MAX_WORKERS}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aiassistant-runner",
        description="Serve one AIAssistant: voice calls, text, tasks.",
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aiassistant-runner {__version__}")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, help=f"runner config JSON (default: env {CONFIG_ENV})")
    source.add_argument("--assistant", type=Path, help="an AIAssistant YAML, to run one locally")
    parser.add_argument(
        "--base-url",
        help="LLM endpoint override (wins over the config's baseURL), e.g. a local OpenAI-compatible server",
    )
    parser.add_argument(
        "--allow-loopback-urls",
        action="store_true",
        help="let a --config name loopback URLs (local fakes in tests; --assistant runs always may)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=PORT, help=f"listen port (default {PORT})")
    parser.add_argument(
        "--log-level",
        default=os.environ.get(LOG_LEVEL_ENV, "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help=f"log level (default: env {LOG_LEVEL_ENV} or INFO)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=None,
        help=f"grace period for active sessions after SIGTERM (default: env {DRAIN_SECONDS_ENV}, else "
        "the config's maxCallSeconds or taskTimeoutSeconds, whichever is longer: no session is cut)",
    )
    parser.add_argument(
        "--workers",
        type=workers_count,
        metavar="N",
        help=f"runner processes on the one port, each an event loop on a core of its own, 1 to "
        f"{MAX_WORKERS} (default: the config's workers, 1 unless set; docs/operations.md)",
    )
    parser.add_argument(
        "--termination-log",
        default=key_check.TERMINATION_LOG,
        help="where a rejected key's message is written: the pod's terminationMessagePath "
        f"(default {key_check.TERMINATION_LOG})",
    )
    parser.add_argument(
        "--no-key-check",
        action="store_true",
        help="start without asking each provider whether its key is accepted (e.g. offline)",
    )
    parser.add_argument(
        "--no-playground",
        action="store_true",
        help="with --assistant: do not serve the browser playground (on by default in local runs)",
    )
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> RunnerConfig:
    if args.assistant is not None:
        config = load_assistant_file(args.assistant)
        problems = check_urls(config, config.allowed_http_hosts, allow_loopback=True, root="")
        source = str(args.assistant)
    else:
        path = args.config or os.environ.get(CONFIG_ENV)
        if not path:
            raise ConfigError(f"no config: pass --config FILE, set {CONFIG_ENV}, or pass --assistant FILE")
        config = load_config_file(Path(path))
        problems = check_urls(
            config, config.allowed_http_hosts, allow_loopback=args.allow_loopback_urls, root=""
        )
        source = str(path)
    if problems:
        raise ConfigError(f"invalid runner config {source}: " + "; ".join(problems))
    if args.base_url:
        if not args.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"--base-url: an http(s) URL is required, got {args.base_url!r}")
        config = config.model_copy(update={"base_url": args.base_url})
    if args.assistant is not None and not args.no_playground:
        config = config.model_copy(update={"playground": True})  # local runs: on unless told not to
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load(args)
        if args.workers is not None:
            config = config.model_copy(update={"workers": args.workers})
        # Fails at start, not on the first session, with the env var of a missing key.
        runner = build_runner(config, drain_seconds=args.drain_seconds)
    except (ConfigError, EngineModelError, MissingKeyError) as err:
        print(f"aiassistant-runner: {err}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    checks = [] if args.no_key_check else asyncio.run(key_check.check_keys(config, os.environ))
    try:
        key_check.verdict(checks)
    except key_check.KeyRejected as err:
        print(f"aiassistant-runner: {err}", file=sys.stderr)
        key_check.write_termination_log(args.termination_log, str(err))
        return EXIT_KEY_REJECTED

    try:
        sock = listen_socket(args.host, args.port)
    except ListenError as err:
        print(f"aiassistant-runner: {err}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN

    log.info("access: %s", runner.access.describe())
    log.info(  # only now: the socket is bound and listening (connections queue until uvicorn accepts)
        "serving assistant %s (%s) on %s:%d%s",
        runner.metrics.assistant,
        config.engine_model,
        args.host,
        args.port,
        f" with {config.workers} worker processes" if config.workers > 1 else "",
    )
    if config.playground:
        host = "localhost" if args.host in ("0.0.0.0", "::", "127.0.0.1") else args.host
        log.info("playground: http://%s:%d/playground", host, args.port)
    if config.workers > 1:
        plan = WorkerPlan(config, args.log_level, args.drain_seconds, checks)
        return supervise(plan, sock, config.workers)
    key_check.count(checks, runner.metrics)
    serve(runner, sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
