"""Which URLs an assistant may name: the SSRF policy both processes apply.

An assistant's author must not be able to point the runner (and the keys it sends) at the pod's own
loopback, the node's link-local metadata service, or another scheme such as file://. Allowed:

- `https://` to any host that is not a literal loopback, link-local, unspecified or metadata address;
- `http://` only to in-cluster Service hosts (`*.svc`, `*.svc.cluster.local`) or a host in the
  operator's allow-list (`allowed_http_hosts`);
- the realtime voice endpoint (`voice.baseURL`) is a WebSocket: `wss://` like https, `ws://` like http;
- `allow_loopback=True` (local `aiassistant-runner --assistant FILE` runs only) also allows
  http(s) to loopback hosts, since testing against local servers is what those runs are for.

`url_problem` says what is wrong with one URL (or None); `check_urls` names the field.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local")
# Hostnames of cloud metadata services that are not literal addresses.
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
POLICY = (
    "an assistant URL must be https://, or http:// to an in-cluster Service host (*.svc, "
    "*.svc.cluster.local) or a host in the operator's allowed HTTP hosts"
)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a literal host names, also in the legacy IPv4 forms resolvers still accept
    (`2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`: all 169.254.169.254)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    address = _address(host)
    return host in LOOPBACK_NAMES or host.endswith(".localhost") or bool(address and address.is_loopback)


def in_cluster(host: str) -> bool:
    """Whether `host` names an in-cluster Service (`<svc>.<namespace>.svc[.cluster.local]`)."""
    return host.endswith(IN_CLUSTER_SUFFIXES) and host.count(".") >= 2


PLAIN = {"https": "http", "wss": "ws"}  # the plain scheme of each secure one


def url_problem(
    url: Any,
    allowed_http_hosts: Iterable[str] = (),
    *,
    allow_loopback: bool = False,
    secure_scheme: str = "https",
) -> str | None:
    """What makes `url` unacceptable under the policy above, or None if it is fine.
    `secure_scheme`: "https" for an HTTP endpoint, "wss" for a WebSocket one (then ws/wss)."""
    if not isinstance(url, str) or not url:
        return "must be a URL string"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"{url[:200]!r} is not a valid URL"
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower().rstrip(".")
    plain = PLAIN[secure_scheme]
    if scheme not in (plain, secure_scheme):
        return f"scheme {scheme or '(none)'!r} is not allowed ({secure_scheme} or {plain}): {POLICY}"
    if not host:
        return f"{url[:200]!r} has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@): keys come from Secrets"
    if allow_loopback and is_loopback(host):
        return None
    address = _address(host)
    if is_loopback(host):
        return f"host {host!r} is a loopback address: {POLICY}"
    if address is not None and (address.is_link_local or address.is_unspecified or address.is_multicast):
        return f"host {host!r} is a link-local, unspecified or multicast address (e.g. a metadata service): {POLICY}"
    if host in METADATA_HOSTS or (
        address is not None and str(address) in ("100.100.100.200", "fd00:ec2::254")
    ):
        return f"host {host!r} is a cloud metadata service: {POLICY}"
    if scheme == plain and not in_cluster(host) and host not in {h.lower() for h in allowed_http_hosts}:
        return f"{plain}:// to {host!r} is not allowed: {POLICY}"
    return None


def assistant_urls(data: Any) -> Iterator[tuple[str, Any]]:
    """(field path, URL) of every URL in a spec or RunnerConfig object (pydantic model)."""
    if getattr(data, "base_url", None) is not None:
        yield "baseURL", data.base_url
    for i, fallback in enumerate(getattr(data, "fallbacks", None) or ()):
        if fallback.base_url is not None:
            yield f"fallbacks[{i}].baseURL", fallback.base_url
    for section in ("stt", "tts", "voice"):
        part = getattr(data, section, None)
        if part is not None and part.base_url is not None:
            yield f"{section}.baseURL", part.base_url
    for i, tool in enumerate(getattr(data, "tools", None) or ()):
        yield f"tools[{i}].url", tool.url


def check_urls(
    data: Any, allowed_http_hosts: Iterable[str] = (), *, allow_loopback: bool = False, root: str = "spec"
) -> list[str]:
    """`<root>.<field>: <problem>` for every URL of `data` the policy refuses (empty: all fine)."""
    allowed = tuple(allowed_http_hosts)
    problems = []
    for path, url in assistant_urls(data):
        secure = "wss" if path == "voice.baseURL" else "https"
        problem = url_problem(url, allowed, allow_loopback=allow_loopback, secure_scheme=secure)
        if problem:
            problems.append(f"{root}.{path}: {problem}" if root else f"{path}: {problem}")
    return problems
