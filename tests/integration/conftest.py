"""Fixtures for the operator's integration tests (none autouse): the API emulator over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aiassistant_operator.cli_dev import running_operator
from aiassistant_operator.emulator import Emulator
from aiassistant_operator.settings import Settings

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


@pytest.fixture
async def operator(emulator: Emulator) -> AsyncIterator[Emulator]:
    """The real kopf operator with our handlers, in this event loop, against the emulator."""
    async with running_operator(emulator.base_url, Settings()):
        yield emulator


def secret(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


async def create(http: aiohttp.ClientSession, obj: dict[str, Any]) -> dict[str, Any]:
    ns = obj["metadata"].get("namespace", "default")
    plural = {"Secret": "/api/v1", "AIAssistant": AIA}[obj["kind"]]
    resource = "secrets" if obj["kind"] == "Secret" else "aiassistants"
    async with http.post(f"{plural}/namespaces/{ns}/{resource}", json=obj) as rsp:
        body: dict[str, Any] = await rsp.json()
        assert rsp.status == 201, body
        return body


async def eventually(predicate: Callable[[], Any], seconds: float = 10) -> Any:
    """Wait until `predicate()` is truthy (the emulator's state is in memory); returns its value."""
    deadline = time.monotonic() + seconds
    while (value := predicate()) in (None, False, [], {}):
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
    return value
