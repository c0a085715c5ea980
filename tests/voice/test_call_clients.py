"""A call's OpenAI-SDK services (LLM, OpenAI STT and TTS) make their connections on the process's
one TLS context (runner/aiassistant_runner/http_clients.py), not one each: the SDK's own client
loads the CA bundle into a new context, ~0.8 MB and ~40 ms per client, three per call."""

from __future__ import annotations

import pytest

from tests.voice.costs import cost

SETUP = """
from aiassistant_contract.runner_config import STTConfig, TTSConfig
from aiassistant_runner.http_clients import call_http_client
from aiassistant_runner.llm_factory import create_llm
from aiassistant_runner.llm_policy import VOICE_POLICY
from aiassistant_runner.speech import create_stt, create_tts
ENVIRON = {"OPENAI_API_KEY": "sk-test-clients"}
"""
BUILDS = {
    "llm": 'create_llm("grok.grok-3", "xai-test", policy=VOICE_POLICY)',
    "stt": 'create_stt(STTConfig(type="openai"), ENVIRON)',
    "tts": 'create_tts(TTSConfig(type="openai"), ENVIRON)',
    "http client": "call_http_client()",
}


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_services_share_one_tls_context(name: str) -> None:
    theirs = cost("from openai import DefaultAsyncHttpxClient", "DefaultAsyncHttpxClient()")
    ours = cost(SETUP, BUILDS[name], n=20)
    assert theirs.mb > 0.4, f"the SDK's own client costs {theirs.mb:.2f} MB: the comparison no longer holds"
    assert ours.mb < theirs.mb / 2, f"{name}: {ours.mb:.2f} MB each (an own client: {theirs.mb:.2f} MB)"
    assert ours.ms < theirs.ms / 2, f"{name}: {ours.ms:.1f} ms each (an own client: {theirs.ms:.1f} ms)"
