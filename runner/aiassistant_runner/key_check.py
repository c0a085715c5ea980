"""The key check at start: is each provider key the runner holds accepted by its provider?

One probe per env var (providers sharing a key share its probe), each the provider's cheapest
authenticated call: `GET <base>/models` for the OpenAI-compatible APIs (xAI, OpenAI; also for xAI and
OpenAI speech, whose keys are the same keys). Deepgram, ElevenLabs and Cartesia are skipped with the
reason logged: their account endpoints need scopes a key restricted to speech may lack, so a refusal
there would not mean the key is wrong.

Outcomes: `accepted` (2xx), `rejected` (401/403, or xAI's 400 "Incorrect API key provided": the runner must not start; `KeyRejected` carries
the message for the pod's termination log), `unverified` (connection error, timeout, any other
status: logged and counted, the start goes on), `skipped`. The message names the env var, the
provider and its answer, never the key (a key the provider echoes back is masked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from aiassistant_contract.engines import BUILTIN
from aiassistant_contract.runner_config import RunnerConfig, fallback_key_env
from aiassistant_contract.speech import stt_provider, tts_provider

from .metrics import Metrics

log = logging.getLogger(__name__)

Result = Literal["accepted", "rejected", "unverified", "skipped"]
TIMEOUT_SECONDS = 5.0  # the whole check; a slow provider must not hold the pod's start
ANSWER_CHARS = 300  # of the provider's answer, in the message
TERMINATION_LOG = "/dev/termination-log"  # Kubernetes' default terminationMessagePath
TERMINATION_BYTES = 4096  # the kubelet keeps at most this much of it
MARKER = "KeyRejected:"  # how the operator tells a key rejection from other exits
OPENAI_BASE = "https://api.openai.com/v1"
XAI_BASE = "https://api.x.ai/v1"
NO_CHECK = {
    "deepgram": "Deepgram's account endpoints need scopes a speech-only key may lack",
    "elevenlabs": "ElevenLabs' account endpoints need a permission a restricted key may lack",
    "cartesia": "Cartesia documents no key-check endpoint",
}


@dataclass(frozen=True)
class Probe:
    provider: str  # "grok", "openai", "xai", "deepgram", ...
    env: str
    url: str | None  # GET with the key as a Bearer token; None: skipped (see `skip`)
    skip: str = ""


@dataclass(frozen=True)
class Outcome:
    probe: Probe
    result: Result
    answer: str  # what the provider said (status and a bounded, masked body), or why not checked


class KeyRejected(Exception):
    """A provider refused a key (401/403); str() is the termination message (no key in it)."""


def _http_base(url: str | None, default: str) -> str:
    """An API base for `GET /models`: the override (ws[s]:// becomes http[s]://, a bare host gets
    /v1) or the provider's default."""
    if not url:
        return default
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if scheme != parts.scheme or not path:  # a speech WebSocket URL: the REST API is /v1 on its host
        path = "/v1"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def probes(config: RunnerConfig) -> list[Probe]:
    """The probes of the keys `config` uses: the engine's, its fallbacks', then STT's, then TTS's,
    one per env var."""
    engine = config.engine().target
    found: dict[str, Probe] = {}
    default = XAI_BASE if engine.name == "grok" else OPENAI_BASE
    found[engine.key_env] = Probe(
        engine.name, engine.key_env, _http_base(config.base_url, default) + "/models"
    )
    for i, fallback in enumerate(config.fallbacks):
        target = BUILTIN.parse(fallback.engine_model, strict=False).target
        base = _http_base(fallback.base_url, XAI_BASE if target.name == "grok" else OPENAI_BASE)
        found[fallback_key_env(i)] = Probe(target.name, fallback_key_env(i), base + "/models")
    for speech, provider in (
        (config.stt, stt_provider(config.stt.type) if config.stt else None),
        (config.tts, tts_provider(config.tts.type) if config.tts else None),
    ):
        if speech is None or provider is None or provider.key_env in found:
            continue
        if provider.name in NO_CHECK:
            found[provider.key_env] = Probe(provider.name, provider.key_env, None, NO_CHECK[provider.name])
            continue
        base = XAI_BASE if provider.name == "xai" else OPENAI_BASE
        found[provider.key_env] = Probe(
            provider.name, provider.key_env, _http_base(speech.base_url, base) + "/models"
        )
    return list(found.values())


async def _probe(session: aiohttp.ClientSession, probe: Probe, key: str) -> Outcome:
    if probe.url is None:
        return Outcome(probe, "skipped", probe.skip)
    try:
        async with session.get(probe.url, headers={"Authorization": f"Bearer {key}"}) as response:
            body = (await response.content.read(4 * ANSWER_CHARS)).decode(errors="replace")
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as err:
        return Outcome(probe, "unverified", f"GET {probe.url}: {type(err).__name__} {err}".strip())
    answer = f"GET {probe.url}: {status} {_mask(body, key)}".strip()
    if 200 <= status < 300:
        return Outcome(probe, "accepted", f"GET {probe.url}: {status}")
    return Outcome(probe, "rejected" if _refusal(status, body) else "unverified", answer)


def _refusal(status: int, body: str) -> bool:
    """401/403; and xAI's answer to a wrong key, 400 "Incorrect API key provided: xa***YQ. ..."."""
    return status in (401, 403) or (status == 400 and "incorrect api key" in body.lower())


def _mask(text: str, key: str) -> str:
    text = " ".join(text.split())
    if key:
        text = text.replace(key, "***")
    return text[:ANSWER_CHARS]


async def check_keys(
    config: RunnerConfig, environ: Mapping[str, str], seconds: float = TIMEOUT_SECONDS
) -> list[Outcome]:
    """Probe every key concurrently (an unset key is not probed: the runner's own check names it)."""
    todo = [p for p in probes(config) if environ.get(p.env)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session:
        return list(await asyncio.gather(*(_probe(session, p, environ[p.env]) for p in todo)))


def count(outcomes: list[Outcome], metrics: Metrics) -> None:
    """Count each outcome in the metrics (of one worker only: the pod's metrics sum them)."""
    for outcome in outcomes:
        metrics.key_check(outcome.probe.provider, outcome.probe.env, outcome.result)


def verdict(outcomes: list[Outcome]) -> None:
    """Log each outcome; raise KeyRejected naming every refused key (its env var, never its
    value)."""
    rejected = []
    for outcome in outcomes:
        p = outcome.probe
        if outcome.result == "accepted":
            log.info("key check: %s accepted by %s", p.env, p.provider)
        elif outcome.result == "skipped":
            log.info("key check: %s (%s) not checked: %s", p.env, p.provider, outcome.answer)
        elif outcome.result == "unverified":
            log.warning(
                "key check: %s (%s) could not be verified, starting anyway: %s",
                p.env,
                p.provider,
                outcome.answer,
            )
        else:
            rejected.append(f"{p.env} was rejected by {p.provider} ({outcome.answer})")
    if rejected:
        raise KeyRejected(f"{MARKER} " + "; ".join(rejected))


def write_termination_log(path: str | Path, message: str) -> bool:
    """Write the pod's termination message (Kubernetes shows it in the container's last state)."""
    try:
        Path(path).write_bytes(message.encode()[:TERMINATION_BYTES])
    except OSError as err:
        log.warning("cannot write the termination message to %s: %s", path, err.strerror)
        return False
    return True
