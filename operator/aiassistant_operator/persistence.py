"""Where kopf keeps its per-object state: status.kopf of each AIAssistant, built cheaply.

kopf's handler progress and its "diff base" (the last handled spec, to tell a spec change from a
status write) live in status.kopf, which the CRD preserves. Not in annotations: the handler's status
and kopf's bookkeeping then go to the API as ONE /status PATCH per reconcile, not two writes.

kopf builds an object's "essence" (what the diff base compares) on every watch event of every
watched kind, by deep-copying the whole body and then dropping its metadata and status. That copy
was a tenth of the operator's CPU per assistant: for a runner Deployment (a large body) it is
useless, only AIAssistants have change handlers; for an AIAssistant only the spec, labels and
annotations are kept, so only they are copied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from .spec import KIND

FIELD = "kopf"  # status.kopf


class DiffBaseStorage(kopf.StatusDiffBaseStorage):
    """kopf's StatusDiffBaseStorage (status.kopf.last-handled-configuration), cheaper to build."""

    def __init__(self) -> None:
        super().__init__(name=FIELD)

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> Any:
        extra = list(extra_fields or [])
        if body.get("kind") not in (KIND, None):
            return {}  # watched for indexes and events only: no change handlers, no diff needed
        if body.get("kind") is None or any(tuple(f)[:1] != ("spec",) for f in extra):
            return super().build(body=body, extra_fields=extra)  # the general (deep-copying) way
        meta = body.get("metadata") or {}
        lean: Any = {key: value for key, value in body.items() if key not in ("metadata", "status")}
        lean["metadata"] = {key: meta[key] for key in ("labels", "annotations") if key in meta}
        return super().build(body=kopf.Body(lean), extra_fields=extra)


def configure(settings: kopf.OperatorSettings) -> None:
    settings.persistence.progress_storage = kopf.StatusProgressStorage(name=FIELD)
    settings.persistence.diffbase_storage = DiffBaseStorage()
