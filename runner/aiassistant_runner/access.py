"""Who may use the runner: bearer tokens, Twilio signatures, stream tokens — or, if asked, anyone.

Credentials reach the pod as env vars from Secrets (never in the config):
- `AIASSISTANT_ACCESS_TOKENS`: bearer tokens, one per line. Several at once, so a rotation adds the
  new token, rolls the clients, then removes the old one, without a gap. Each is compared in
  constant time (hmac.compare_digest), against every configured token.
- `TWILIO_AUTH_TOKEN`: checks `X-Twilio-Signature` on the `/v1/calls/twilio` upgrade — Twilio's
  documented HMAC-SHA1 (base64) of the URL it was given: `access.publicBaseURL` + path + query.

What each endpoint accepts:
- HTTP (chat, tasks, models... every path but the three open ones): `Authorization: Bearer
  <token>`; refused: 401 with an OpenAI-shaped error (`AccessMiddleware`, a plain ASGI middleware:
  microseconds per request).
- WS `/v1/calls/{serializer}`: `Authorization: Bearer <token>`, or for clients that cannot set
  headers (browsers) the subprotocols `aiassistant` + `aiassistant.bearer.<token>` (the handshake
  header, which access logs do not record, unlike a query string); the server selects `aiassistant`.
  `twilio` also accepts a valid signature. A telephony stream without either may carry the token as
  a custom stream parameter `aiassistantToken`, checked on its `start` message before any pipeline
  is built (`stream_token`). Refused: close 1008 with a reason.
- `/healthz`, `/readyz`, `/metrics` are always open (probes and the scraper), and so are the
  playground's page and assets (`playground.PUBLIC_PATHS`; the page asks for the token).
- `access.anonymous: true`: everything is open. No credentials and not anonymous: every
  request is refused, saying why.
Failed authentications are rate-limited per source address (`limits.authFailuresPerMinute`): past
the limit, 429 / close 1008 without looking at the credential. Every refusal is counted in
`aiassistant_access_refused_total{reason}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

from aiassistant_contract.runner_config import ACCESS_TOKENS_ENV, TWILIO_AUTH_TOKEN_ENV, RunnerConfig

from .metrics import Metrics
from .playground import PUBLIC_PATHS

SUBPROTOCOL = "aiassistant"
TOKEN_SUBPROTOCOL_PREFIX = "aiassistant.bearer."  # noqa: S105 - a prefix, not a token
STREAM_TOKEN_PARAMETER = "aiassistantToken"  # noqa: S105 - a parameter name
TWILIO_SIGNATURE_HEADER = "x-twilio-signature"
# Probes, the scraper, and the playground's page and assets (the page asks for the token itself;
# /playground/info and everything the page calls need it).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", *PUBLIC_PATHS})
TRACKED_ADDRESSES = 10_000  # failure counters kept (least recently failed dropped first)

Reason = Literal["missing", "invalid", "rate_limited", "no_credentials"]
Scope = Mapping[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def parse_tokens(text: str) -> tuple[bytes, ...]:
    """The bearer tokens of AIASSISTANT_ACCESS_TOKENS: one per line, blank lines and spaces ignored."""
    return tuple(line.strip().encode() for line in text.splitlines() if line.strip())


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 (key: the auth token) of the URL followed by
    each POST parameter's name and value, sorted by name (a WebSocket upgrade has none)."""
    data = url + "".join(f"{name}{(params or {})[name]}" for name in sorted(params or {}))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class Refused(Exception):
    """An authentication failure; the message says what to send, never a credential."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FailureLimiter:
    """At most `per_minute` failed authentications per source address in a sliding minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, address: str) -> list[float]:
        horizon = self._clock() - 60
        times = [t for t in self._failures.get(address, ()) if t > horizon]
        if times:
            self._failures[address] = times
        else:
            self._failures.pop(address, None)
        return times

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.per_minute

    def fail(self, address: str) -> None:
        times = self._recent(address)
        times.append(self._clock())
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > TRACKED_ADDRESSES:
            self._failures.popitem(last=False)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class Access:
    """The runner's credentials and its checks (one per process, built in wiring.py)."""

    def __init__(self, config: RunnerConfig, environ: Mapping[str, str], metrics: Metrics) -> None:
        self.tokens = parse_tokens(environ.get(ACCESS_TOKENS_ENV, ""))
        self.twilio_auth_token = environ.get(TWILIO_AUTH_TOKEN_ENV, "").strip()
        self.anonymous = config.access.anonymous
        self.public_base_url = (config.access.public_base_url or "").rstrip("/")
        # Each worker process (workers.py) counts the failures it sees: its share of the limit keeps
        # the pod's at or under it, however the connections are spread.
        self.limiter = FailureLimiter(max(1, config.limits.auth_failures_per_minute // config.workers))
        self._metrics = metrics

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.twilio_auth_token)

    def describe(self) -> str:
        """How callers authenticate, for the start log line (never a credential)."""
        if self.anonymous:
            return "anonymous: every request is served without credentials"
        ways = [f"{len(self.tokens)} bearer token(s)"] if self.tokens else []
        if self.twilio_auth_token:
            ways.append("Twilio signatures")
        return (
            " or ".join(ways)
            if ways
            else "no credentials configured: every request but probes and metrics is refused"
        )

    def token_valid(self, token: bytes) -> bool:
        """Constant time: every configured token is compared, whichever matches."""
        valid = False
        for known in self.tokens:
            valid |= hmac.compare_digest(known, token)
        return valid

    # -- refusals -----------------------------------------------------------------------------
    def refuse(self, scope: Scope, reason: Reason, message: str, endpoint: str) -> Refused:
        """Count the refusal (and the failure against its address) and return the exception."""
        if reason in ("missing", "invalid"):
            self.limiter.fail(_address(scope))
        self._metrics.access_refused(endpoint, reason)
        return Refused(reason, message)

    def _precheck(self, scope: Scope, endpoint: str) -> None:
        if not self.configured:
            raise self.refuse(
                scope,
                "no_credentials",
                "this assistant has no credentials configured (spec.access.tokenSecretRef, "
                "spec.access.twilio) and is not anonymous: it serves nobody",
                endpoint,
            )
        if self.limiter.blocked(_address(scope)):
            raise self.refuse(
                scope,
                "rate_limited",
                "too many failed authentications from this address; try later",
                endpoint,
            )

    def _bearer(self, scope: Scope) -> bytes | None:
        value = _header(scope, b"authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else b""

    def check_http(self, scope: Scope, endpoint: str) -> None:
        """Raise Refused unless the request carries a valid bearer token (or access is anonymous)."""
        if self.anonymous:
            return
        self._precheck(scope, endpoint)
        token = self._bearer(scope)
        if token is None:
            raise self.refuse(
                scope, "missing", "missing credentials: send Authorization: Bearer <token>", endpoint
            )
        if not self.token_valid(token):
            raise self.refuse(scope, "invalid", "invalid bearer token", endpoint)

    def check_call(self, scope: Scope, serializer: str) -> bool:
        """At the WebSocket upgrade: True if authenticated, False if a telephony stream may still
        prove itself with a stream token on `start`; raises Refused otherwise."""
        if self.anonymous:
            return True
        self._precheck(scope, "call")
        token = self._bearer(scope)
        if token is None:
            token = next(
                (
                    p[len(TOKEN_SUBPROTOCOL_PREFIX) :].encode()
                    for p in scope.get("subprotocols") or ()
                    if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)
                ),
                None,
            )
        if token is not None:
            if self.token_valid(token):
                return True
            raise self.refuse(scope, "invalid", "invalid bearer token", "call")
        if serializer == "twilio" and self.twilio_auth_token:
            signature = _header(scope, TWILIO_SIGNATURE_HEADER.encode())
            if signature is not None:
                if self.twilio_signature_valid(scope, signature.decode("latin-1")):
                    return True
                raise self.refuse(scope, "invalid", "invalid X-Twilio-Signature", "call")
        if serializer != "protobuf" and self.tokens:
            return False  # may still send the stream token on `start`
        raise self.refuse(scope, "missing", self._call_hint(serializer), "call")

    def _call_hint(self, serializer: str) -> str:
        if serializer == "twilio" and self.twilio_auth_token:
            return "missing X-Twilio-Signature (or a bearer token)"
        if serializer == "protobuf":
            return f"missing credentials: Authorization: Bearer, or subprotocol {TOKEN_SUBPROTOCOL_PREFIX}<token>"
        return "missing credentials: a bearer token or the stream parameter aiassistantToken"

    def twilio_signature_valid(self, scope: Scope, signature: str) -> bool:
        """The signature over publicBaseURL + the request's path and query (as Twilio was given it)."""
        if not self.public_base_url:
            return False
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        url = self.public_base_url + str(scope.get("path") or "") + (f"?{query}" if query else "")
        expected = twilio_signature(self.twilio_auth_token, url)
        return hmac.compare_digest(expected.encode(), signature.encode("latin-1", "replace"))

    def check_stream_token(self, scope: Scope, serializer: str, start: Mapping[str, Any]) -> None:
        """After `start`, for a telephony stream that did not authenticate at the upgrade."""
        token = stream_token(serializer, start)
        if token is None:
            raise self.refuse(scope, "missing", self._call_hint(serializer), "call")
        if not self.token_valid(token.encode()):
            raise self.refuse(scope, "invalid", f"invalid {STREAM_TOKEN_PARAMETER}", "call")


def _pairs(text: str, separators: Iterable[str]) -> dict[str, str]:
    for separator in separators:
        text = text.replace(separator, "&")
    return dict(part.split("=", 1) for part in text.split("&") if "=" in part)


def stream_token(serializer: str, message: Mapping[str, Any]) -> str | None:
    """The `aiassistantToken` custom parameter of a telephony `start` message, wherever the
    provider puts custom parameters: Twilio `start.customParameters`, Telnyx and Exotel
    `start.custom_parameters` (an object, or Exotel's `k=v&k=v` string), Plivo's `extra_headers`
    string (`k=v;k=v`, alphanumeric only: Plivo's own rule)."""
    start = message.get("start")
    candidates: list[Any] = []
    if isinstance(start, Mapping):
        candidates += [start.get("customParameters"), start.get("custom_parameters")]
    candidates.append(message.get("extra_headers"))
    for found in candidates:
        if isinstance(found, str):
            found = _pairs(found, (";", ","))
        if isinstance(found, Mapping):
            value = found.get(STREAM_TOKEN_PARAMETER)
            if isinstance(value, str) and value:
                return value
    return None


class AccessMiddleware:
    """ASGI middleware: every HTTP request but OPEN_PATHS needs a valid bearer token
    (Access.check_http): a path nobody thought of is guarded too. WebSockets pass through: the call
    route checks them (it knows the serializer)."""

    def __init__(self, app: Any, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Any, receive: Any, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS and not self.access.anonymous:
            path = scope["path"]
            endpoint = (
                "text" if path.startswith("/v1/chat") else "task" if path.startswith("/v1/tasks") else "other"
            )
            try:
                self.access.check_http(scope, endpoint)
            except Refused as refused:
                await _refuse_http(send, refused)
                return
        await self.app(scope, receive, send)


async def _refuse_http(send: Send, refused: Refused) -> None:
    status = {"rate_limited": 429, "no_credentials": 403}.get(refused.reason, 401)
    code = {"rate_limited": "rate_limit_exceeded", "no_credentials": "no_credentials_configured"}.get(
        refused.reason, "invalid_api_key"
    )
    body = json.dumps(
        {"error": {"message": str(refused), "type": "invalid_request_error", "param": None, "code": code}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="aiassistant"'))
    else:
        headers.append((b"retry-after", b"60"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
