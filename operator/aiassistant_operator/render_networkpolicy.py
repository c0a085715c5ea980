"""PURE: the NetworkPolicy of one assistant's runner pods (render.py adds it to the objects).

Ingress: the runner port from pods of the assistant's own namespace, from `spec.access.allowFrom`
(e.g. the ingress controller's namespace) and, for /metrics, from the scraper's namespace (operator
setting AIASSISTANT_METRICS_NAMESPACE). Egress: DNS, TCP 443 anywhere (the providers' APIs), and the
ports of the other URLs the assistant names (http://, ws://, or a port other than 443) — in-cluster
Services only towards their namespace.
A NetworkPolicy port is the pod's port: a Service whose targetPort differs from its port needs an
http URL naming the pod's port (or an extra policy of the platform team).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiassistant_contract.assistant import AIAssistantSpec
from aiassistant_contract.runner_config import PORT
from aiassistant_contract.urls import assistant_urls, in_cluster

from .settings import Settings

NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the apiserver


def _namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: namespace}}}


DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _http_egress(spec: AIAssistantSpec) -> list[dict[str, Any]]:
    """One egress rule per (namespace or outside, port) of the spec's URLs not on TCP 443."""
    rules: dict[tuple[str, int], dict[str, Any]] = {}
    for _, url in assistant_urls(spec):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in DEFAULT_PORTS or not host:
            continue
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        if port == 443:
            continue  # the 443 rule covers it
        namespace = host.split(".")[1] if in_cluster(host) else ""
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
        if namespace:
            rule["to"] = [_namespace_peer(namespace)]
        rules.setdefault((namespace, port), rule)
    return [rules[key] for key in sorted(rules)]


def network_policy(
    metadata: dict[str, Any], selector: dict[str, str], spec: AIAssistantSpec, settings: Settings
) -> dict[str, Any]:
    runner_port = [{"protocol": "TCP", "port": PORT}]
    peers: list[dict[str, Any]] = [{"podSelector": {}}]  # every pod of the assistant's namespace
    peers += [peer.model_dump(by_alias=True, exclude_none=True) for peer in spec.access.allow_from]
    ingress = [{"from": peers, "ports": runner_port}]
    if settings.metrics_namespace:
        ingress.append({"from": [_namespace_peer(settings.metrics_namespace)], "ports": runner_port})
    egress = [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"ports": [{"protocol": "TCP", "port": 443}]},
        *_http_egress(spec),
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": dict(selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }
