"""HTTP clients of a call's OpenAI-SDK services (the LLM, OpenAI STT and TTS), on one TLS context.

An HTTP client the OpenAI SDK builds makes its own SSL context and loads the CA bundle into it:
~0.8 MB of RSS and ~40 ms of CPU each, three per call (benchmarks/voice.py, docs/performance.md).
A built context is not changed again and is safe to share between threads and clients, so every
call's clients take the process's one, built the way the SDK's HTTP library builds its default
(`httpx2.create_ssl_context()`: the same CA store, SSL_CERT_FILE/SSL_CERT_DIR honoured). The
clients and their connection pools stay per call: a pool's connections belong to the event loop
that opened them, and a call's pool is dropped with its pipeline.
"""

from __future__ import annotations

import functools
import ssl
import threading

import httpx2
from openai import DefaultAsyncHttpxClient

_LOCK = threading.Lock()  # calls are built in threads (voice_calls.py): one context, not one per thread

# Pipecat's own pool settings for its LLM clients: a call's few turns may be minutes apart, and a
# kept connection spares each turn a TCP and TLS handshake.
LLM_LIMITS = httpx2.Limits(max_keepalive_connections=100, max_connections=1000, keepalive_expiry=None)


@functools.cache
def _context() -> ssl.SSLContext:
    return httpx2.create_ssl_context()


def tls_context() -> ssl.SSLContext:
    """The process's TLS client context (built on first use)."""
    with _LOCK:
        return _context()


def call_http_client(limits: httpx2.Limits | None = None) -> httpx2.AsyncClient:
    """A new HTTP client for one service of one call, on the shared TLS context; `limits`: the
    pool's (None: the OpenAI SDK's default)."""
    if limits is None:
        return DefaultAsyncHttpxClient(verify=tls_context())
    return DefaultAsyncHttpxClient(verify=tls_context(), limits=limits)
