"""The playground screenshots in docs/ are current: this test takes them (a voice call in progress,
a text chat) and checks the committed ones.

Pixel comparison of a live page is flaky (timings, fonts, antialiasing), so "current" means: the
committed files are PNGs of the page's present layout size, taken from the present assets
(docs/playground-screenshots.json records the assets' SHA-256). After changing the page:
`UPDATE_SCREENSHOTS=1 pytest tests/browser/test_screenshots.py` rewrites them.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from aiassistant_runner.playground import ASSETS
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.helm import ROOT

from .conftest import StartRunner
from .test_playground import open_playground

pytestmark = pytest.mark.timeout(120)

DOCS = ROOT / "docs"
SHOTS = {"voice": DOCS / "playground-voice.png", "chat": DOCS / "playground-chat.png"}
RECORD = DOCS / "playground-screenshots.json"
UPDATE = os.environ.get("UPDATE_SCREENSHOTS") == "1"
HINT = "run: UPDATE_SCREENSHOTS=1 pytest tests/browser/test_screenshots.py"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; AssertionError if it is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assets_digest() -> str:
    files = resources.files("aiassistant_runner").joinpath("playground_static")
    digest = hashlib.sha256()
    for name in sorted(ASSETS):
        digest.update(name.encode() + b"\0" + files.joinpath(name).read_bytes())
    return digest.hexdigest()


async def test_screenshots_are_current(page: Any, start_runner: StartRunner, fake: FakeOpenAI) -> None:
    runner = await start_runner(
        name="voice-bot", namespace="acme", greeting="Hello, thanks for calling ACME. How can I help?"
    )
    await open_playground(page, runner.url)
    taken: dict[str, bytes] = {}

    await page.click("#voice-start")
    await page.wait_for_function(
        "() => window.playground.state.transcript.some(e => e.text.includes('We open at nine'))"
        " && window.playground.state.audioSeconds > 1",
        timeout=40_000,
    )
    taken["voice"] = await page.screenshot(full_page=True)
    await page.click("#voice-stop")

    fake.script(Reply(text="We are open from nine to five, Monday to Friday.", chunk_delay=0.02))
    await page.fill("#chat-input", "When are you open on weekdays?")
    await page.press("#chat-input", "Enter")
    await page.wait_for_function("() => window.playground.state.chat.length === 2")
    taken["chat"] = await page.screenshot(full_page=True)

    sizes = {name: png_size(data) for name, data in taken.items()}
    record = {"assets": assets_digest(), "sizes": {k: list(v) for k, v in sizes.items()}}
    if UPDATE:
        for name, data in taken.items():
            SHOTS[name].write_bytes(data)
        RECORD.write_text(json.dumps(record, indent=2) + "\n")
    for name, path in SHOTS.items():
        assert path.exists(), f"{path.relative_to(ROOT)} missing; {HINT}"
        assert png_size(path.read_bytes()) == sizes[name], f"{path.name}: the page's layout changed; {HINT}"
    assert json.loads(RECORD.read_text()) == record, (
        f"the playground's assets changed since the screenshots; {HINT}"
    )


def test_png_size_reads_the_header(tmp_path: Path) -> None:
    header = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 640, 480)
    assert png_size(header) == (640, 480)
    with pytest.raises(AssertionError, match="not a PNG"):
        png_size(b"GIF89a" + b"\0" * 30)
