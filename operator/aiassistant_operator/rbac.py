"""The ONE list of Kubernetes permissions the operator uses (the helm chart grants exactly these).

Why each rule:
- aiassistants: kopf watches them and patches its annotations (progress, last-handled config);
  ``aiassistants/status``: the handlers write the status through the status subresource.
- configmaps, services, deployments, poddisruptionbudgets: the rendered runner objects (created,
  patched; a PDB is deleted when replicas drop to 1); watched for readiness.
- secrets: read-only, to check that referenced keys exist and to hash them (values never leave).
- events: kopf posts the Normal/Warning Events on the AIAssistant.
- customresourcedefinitions (cluster-scoped read): kopf's resource discovery/scanning.

Not needed: kopf peering (the operator runs standalone, one replica with a Recreate strategy) and
namespaces (with watched namespaces set, `run` disables kopf's namespace scanning: the names are exact).
"""

from __future__ import annotations

from typing import Final

CRUD: Final = ["get", "list", "watch", "create", "patch", "update", "delete"]

# Granted per watched namespace (Role) or cluster-wide (ClusterRole).
NAMESPACED_RULES: Final[list[dict[str, list[str]]]] = [
    {
        "apiGroups": ["aiassistant.dev"],
        "resources": ["aiassistants"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {
        "apiGroups": ["aiassistant.dev"],
        "resources": ["aiassistants/status"],
        "verbs": ["get", "patch", "update"],
    },
    {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": CRUD},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": CRUD},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": CRUD},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]

# Cluster-scoped reads kopf needs in both modes.
CLUSTER_RULES: Final[list[dict[str, list[str]]]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
]

RULES: Final[list[dict[str, list[str]]]] = CLUSTER_RULES + NAMESPACED_RULES


def allows(group: str, resource: str, verb: str) -> bool:
    """Whether RULES grant `verb` on `group`/`resource` (resource may be "plural/subresource")."""
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in RULES
    )
