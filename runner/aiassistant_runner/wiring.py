"""The objects of one runner process (one worker of a pod: workers.py), built once, here; the app (app.py) and the CLI use them.

Each consumer gets what it needs and nothing else: the text endpoints (chat_completions.py,
tasks.py) the TextEngine, the Sessions and the limits; voice calls (voice_calls.py) the
CallServices, the Sessions and the Access; the drain (the CLI's server) the Sessions and the grace.
Nothing is looked up later. Building resolves every model's key (models.py), so a missing one fails
the start with its env var's name, not the first session.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from aiassistant_contract.engines import registry_from_env
from aiassistant_contract.runner_config import DRAIN_SECONDS_ENV, RunnerConfig

from .access import Access
from .llm_client import LLMClient
from .llm_policy import TEXT_POLICY, VOICE_POLICY, LLMPolicy
from .metrics import Metrics
from .models import chain
from .pod_sessions import PodSessions
from .sessions import Sessions
from .text_engine import TextEngine
from .tools import ToolRunner
from .voice_parts import CallServices


@dataclass(frozen=True)
class Runner:
    """The wired parts of one runner process."""

    config: RunnerConfig
    metrics: Metrics
    sessions: Sessions
    access: Access
    text: TextEngine
    calls: CallServices
    # Seconds active sessions may take to finish after SIGTERM (env DRAIN_SECONDS_ENV; default: the
    # longest a session may last, so none is cut). The operator sets the pod's
    # terminationGracePeriodSeconds a little above it, so the kubelet does not kill a draining pod.
    drain_seconds: float
    llm_client: LLMClient  # the text turns' connection pool
    tools: ToolRunner  # the tool webhooks' connection pool

    async def aclose(self) -> None:
        """Close the HTTP clients (LLM, tool webhooks)."""
        await self.llm_client.aclose()
        await self.tools.close()


def build_runner(
    config: RunnerConfig,
    *,
    environ: Mapping[str, str] | None = None,
    drain_seconds: float | None = None,
    text_policy: LLMPolicy = TEXT_POLICY,
    voice_policy: LLMPolicy = VOICE_POLICY,
    pod: PodSessions | None = None,
) -> Runner:
    """Wire the runner for `config`. Raises MissingKeyError naming an unset key's env var.
    The policies (llm_policy.py) are the defaults but in tests of stalling models. `pod`: the
    pod's session count, shared by its worker processes (default: this process alone)."""
    env = os.environ if environ is None else environ
    registry = registry_from_env(env)
    metrics = Metrics(f"{config.namespace}/{config.name}", config.engine_model, config.billed_price(registry))
    models = chain(config, env, registry)
    tools = ToolRunner(config.tools, metrics)
    client = LLMClient(text_policy)
    if drain_seconds is None:
        drain_seconds = float(env.get(DRAIN_SECONDS_ENV) or config.longest_session_seconds)
    return Runner(
        config=config,
        metrics=metrics,
        sessions=Sessions(config.max_sessions_per_pod, metrics, pod),
        access=Access(config, env, metrics),
        text=TextEngine(config, models, tools, metrics, client),
        calls=CallServices(config, env, models, tools, metrics, voice_policy),
        drain_seconds=drain_seconds,
        llm_client=client,
        tools=tools,
    )
