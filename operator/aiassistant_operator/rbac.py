"""The ONE list of Kubernetes permissions the operator uses (the helm chart grants exactly these).

Why each rule:
- aiassistants: kopf lists and watches them (events and indexes); kopf writes nothing on them (no
  progress or diff-base storage: the handlers are level-triggered), so the only write is the
  operator's merge patch of ``aiassistants/status``.
- configmaps, services, deployments, poddisruptionbudgets, horizontalpodautoscalers,
  networkpolicies: the rendered runner objects, listed and watched into kopf indexes (what exists,
  as it is), created or patched where they differ (apply.py); a PDB is deleted when the fewest replicas drop to 1, an HPA when
  spec.autoscaling goes. A Deployment is also read with a GET just before a status computed from
  it is written (the watch may lag behind another reconcile's view). Nothing else is read with a
  GET, nothing else is deleted: ownerReferences let the garbage collector do it. The HPA
  controller scales the AIAssistant through its own grant on `*/scale`.
- secrets: list/watch only, with the label selector aiassistant.dev/credentials=true (RBAC cannot
  narrow by label; the operator's own watch does), to check that referenced keys exist and to hash
  them (values never leave).
- pods: list/watch only, of the runner pods (by label): a termination message of a refused key
  (KeysAccepted=False, KeyRejected) and whether the pods started with their keys.
- events: kopf posts the Normal/Warning Events on the AIAssistant (core v1, create only).
- customresourcedefinitions (cluster-scoped read): kopf's resource discovery/scanning.

Not needed: kopf peering (the operator runs standalone, one replica with a Recreate strategy) and
namespaces (with watched namespaces set, `run` disables kopf's namespace scanning: the names are exact).
tests/integration/test_rbac.py checks both ways on a real apiserver (its audit log): nothing is refused,
and every write granted here is one the operator makes.
"""

from __future__ import annotations

from typing import Final

# Granted per watched namespace (Role) or cluster-wide (ClusterRole).
NAMESPACED_RULES: Final[list[dict[str, list[str]]]] = [
    {"apiGroups": ["aiassistant.dev"], "resources": ["aiassistants"], "verbs": ["list", "watch"]},
    {"apiGroups": ["aiassistant.dev"], "resources": ["aiassistants/status"], "verbs": ["patch"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps", "services"],
        "verbs": ["list", "watch", "create", "patch"],
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["list", "watch", "create", "patch"],
    },
    {
        "apiGroups": ["policy"],
        "resources": ["poddisruptionbudgets"],
        "verbs": ["list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["list", "watch", "create", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]

# Cluster-scoped reads kopf needs in both modes.
CLUSTER_RULES: Final[list[dict[str, list[str]]]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
]

RULES: Final[list[dict[str, list[str]]]] = CLUSTER_RULES + NAMESPACED_RULES
