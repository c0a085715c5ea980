"""Fixtures for the operator's integration tests (none autouse): the API emulator over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aiassistant_operator.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "aiassistants.aiassistant.dev.yaml"
AIA = "/apis/aiassistant.dev/v1alpha1"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.running(crds=[CRD]) as emu:
        yield emu


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=emulator.base_url) as session:
        yield session


def assistant(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiassistant.dev/v1alpha1",
        "kind": "AIAssistant",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"engineModel": "grok.grok-3", **spec},
    }
