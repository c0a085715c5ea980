"""json_codec: orjson on the text path, with the standard library's answers where orjson has none."""

from __future__ import annotations

import json
import math

import pytest

from aiassistant_runner import json_codec


def test_it_reads_and_writes_what_the_standard_library_does() -> None:
    value = {"model": "grok-3", "messages": [{"role": "user", "content": "Öffnungszeiten? ☎"}], "n": [1, 2.5]}
    written = json_codec.dumps(value)
    assert written == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert json_codec.loads(written) == value
    assert json_codec.loads(bytearray(written)) == value


def test_what_orjson_refuses_to_read_is_read_as_before() -> None:
    # Python's json.dumps writes NaN, and integers of any size: the validation must see them.
    assert math.isnan(json_codec.loads(b'{"temperature": NaN}')["temperature"])
    assert json_codec.loads(b'{"seed": 1' + b"0" * 400 + b"}")["seed"] == 10**400


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'{"a": ', ValueError),
        (b"\xff\xfe", ValueError),  # not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, RecursionError),  # past both parsers' depth
    ],
)
def test_what_is_not_json_raises_as_json_loads_does(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        json_codec.loads(data)


def test_what_orjson_cannot_write_is_written_by_the_standard_library() -> None:
    assert json_codec.dumps({"maximum": 2**70}) == b'{"maximum":1180591620717411303424}'
    with pytest.raises(TypeError):
        json_codec.dumps({"not": object()})


def test_the_response_class_writes_with_it() -> None:
    response = json_codec.JSONResponse({"ok": "ja ✓"})
    assert response.body == '{"ok":"ja ✓"}'.encode()
    assert response.headers["content-type"] == "application/json"
