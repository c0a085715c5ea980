"""`GET /v1/models` and `GET /v1/models/{id}`: the assistant's models, as OpenAI lists them.

OpenAI clients probe `/v1/models` (the npm client, IDE plugins, LangChain's tooling) before they
chat. The ids are the provider names of the assistant's chain, in order, without repeats: the
engine model's (e.g. `grok-4.3` for `engineModel: grok.grok-4.3`), then each fallback's. They are
the names a chat completion's `model` field reports as having answered. A client may send any
`model` in a request: the assistant's engine model answers whatever it names (chat_completions.py).

    {"object": "list", "data": [{"id": "grok-4.3", "object": "model", "created": 1764590000,
                                 "owned_by": "xai"}]}

`created` is when the runner started (OpenAI's is the model's release, which the runner does not
know); `owned_by` is the provider (`xai`, `openai`). An unknown id: 404 `model_not_found`. Behind
the same access check as every /v1 route (the client's API key is the access token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiassistant_contract.engines import BUILTIN

from .models import Model


class ModelList:
    """The listing of one runner's chain, built once."""

    def __init__(self, models: Sequence[Model], created: int) -> None:
        entries: dict[str, dict[str, Any]] = {}
        for model in models:
            owner = BUILTIN.target(model.target).provider.lower()
            entries.setdefault(
                model.name, {"id": model.name, "object": "model", "created": created, "owned_by": owner}
            )
        self._entries = entries

    @property
    def ids(self) -> list[str]:
        return list(self._entries)

    def listing(self) -> dict[str, Any]:
        return {"object": "list", "data": list(self._entries.values())}

    def get(self, model_id: str) -> dict[str, Any] | None:
        return self._entries.get(model_id)
