"""Logging of the runner process: stdlib logging (ours, uvicorn) and loguru (Pipecat) to stderr,
one level, and a last line of defence that masks any API key value before a line is written.

The code never logs keys on purpose; the mask covers what a library might echo (a request dump,
an exception carrying headers).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping

from aiassistant_contract.engines import BUILTIN
from aiassistant_contract.runner_config import ACCESS_TOKENS_ENV, TWILIO_AUTH_TOKEN_ENV
from aiassistant_contract.speech import STT_PROVIDERS, TTS_PROVIDERS

MASK = "***"
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


def key_env_vars() -> set[str]:
    """Every env var that may hold an API key the runner uses."""
    names = {t.key_env for t in BUILTIN.targets.values()}
    names |= {p.key_env for p in (*STT_PROVIDERS.values(), *TTS_PROVIDERS.values())}
    return names


class Redactor:
    """Replaces the values of the key env vars in a text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a key that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        access = [TWILIO_AUTH_TOKEN_ENV, ACCESS_TOKENS_ENV]  # the tokens file: one token per line
        values = [env.get(name, "") for name in key_env_vars()]
        values += [line.strip() for name in access for line in env.get(name, "").splitlines()]
        return cls(values)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def setup_logging(
    level: str = "INFO", environ: Mapping[str, str] | None = None, process: str = ""
) -> Redactor:
    """Route every log line of the process to stderr at `level`, with API key values masked.
    `process` (a worker's name, workers.py) starts each line after the level."""
    redact = Redactor.from_env(environ)
    handler = logging.StreamHandler(sys.stderr)
    who = f"{process} " if process else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-7s {who}%(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The HTTP clients log every LLM and tool request at INFO: only with DEBUG on.
    for name in ("httpx", "httpx2", "httpcore", "httpcore2", "openai"):
        logging.getLogger(name).setLevel(level if level == "DEBUG" else "WARNING")

    from loguru import logger  # Pipecat logs through loguru

    def sink(message: object) -> None:  # the formatted line, traceback included
        sys.stderr.write(redact(str(message)))

    logger.remove()
    logger.add(
        sink,
        level=level,
        format="{time:YYYY-MM-DD HH:mm:ss,SSS} {level: <7} " + who + "{name}: {message}",
        backtrace=False,
        diagnose=False,  # diagnose prints local variables of a traceback: keys live in some
    )
    return redact
