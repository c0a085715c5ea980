"""JSON on the text path (request bodies, the model's requests and answers, responses): orjson.

Why: a text turn parses and writes four JSON documents (the client's request, the model's request,
its answer, the response); orjson does each in a fraction of the standard library's time (~1.5 µs
against ~5 µs to parse a turn's body, ~0.4 µs against ~8 µs to write one). docs/performance.md.

The standard library stays the reference: what orjson refuses to read (NaN, Infinity, integers
past 64 bits, which Python's own json.dumps writes; nesting past 1,024 levels) is read by it, so
such input is accepted or refused exactly as before (a NaN temperature is a 400 naming
`temperature`, not "not JSON"), and what orjson cannot write (an integer past 64 bits) it writes.
Integers past 64 bits that fit a float are read by orjson as floats. Output is compact UTF-8, as
Starlette's JSONResponse writes it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON as `json.loads` does: ValueError if it is not JSON, RecursionError if too deep."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return orjson.dumps(value)
    except TypeError:  # e.g. an integer past 64 bits; anything else fails here as well
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class JSONResponse(StarletteJSONResponse):
    """Starlette's JSONResponse, written by `dumps`."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
