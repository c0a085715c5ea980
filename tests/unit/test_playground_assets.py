"""The playground's assets ship in the package (an installed wheel or image serves them), and its
events are what the page reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aiassistant_contract.assistant import parse_spec, to_runner_config
from aiassistant_contract.engines import BUILTIN
from aiassistant_contract.errors import SpecError
from aiassistant_runner.playground import ASSETS, PUBLIC_PATHS, asset
from tests.helm import ROOT


def test_assets_are_package_data(tmp_path: Path) -> None:
    # What `pip install .` copies: setuptools' build_py with the pyproject's package-data.
    setup = "from setuptools import setup; setup()"
    subprocess.run(
        [sys.executable, "-c", setup, "-q", "egg_info", "-e", str(tmp_path), "build_py", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    built = tmp_path / "aiassistant_runner" / "playground_static"
    assert sorted(p.name for p in built.iterdir()) == sorted(ASSETS)
    for name in ASSETS:
        assert (built / name).read_bytes() == asset(name)


def test_public_paths_are_the_static_assets_only() -> None:
    assert "/playground/info" not in PUBLIC_PATHS  # the assistant's facts need credentials
    assert PUBLIC_PATHS == {
        "/playground",
        "/playground/playground.js",
        "/playground/mic-worklet.js",
        "/playground/playground.css",
    }


def test_page_references_only_packaged_assets() -> None:
    page = asset("index.html").decode()
    assert "http://" not in page and "https://" not in page  # no CDN
    for name in ("playground.css", "playground.js"):
        assert f'"/playground/{name}"' in page


def test_events_of_frames() -> None:
    from pipecat.frames.frames import (
        AudioRawFrame,
        TranscriptionFrame,
        TTSTextFrame,
        UserStoppedSpeakingFrame,
    )

    from aiassistant_runner.playground_events import MAX_TEXT, event_of

    said = TranscriptionFrame("x" * (MAX_TEXT + 10), "user", "2026-01-01T00:00:00Z")
    assert event_of(said) == {"type": "user-transcript", "text": "x" * MAX_TEXT}  # bounded
    assert event_of(TTSTextFrame("Hello.", text_type="sentence")) == {
        "type": "bot-text",
        "text": "Hello.",
    }
    assert event_of(UserStoppedSpeakingFrame()) == {"type": "user-stopped-speaking"}
    assert event_of(AudioRawFrame(b"\0\0", 16_000, 1)) is None


def test_spec_playground_reaches_the_runner_config() -> None:
    def config(**spec: object) -> bool:
        parsed = parse_spec({"engineModel": "grok.grok-4.3", **spec}, BUILTIN)
        return to_runner_config("bot", "default", parsed, BUILTIN).playground

    assert config() is False  # off unless enabled
    assert config(playground=True) is True
    with pytest.raises(SpecError, match=r"spec\.playground"):
        config(playground="sometimes")
