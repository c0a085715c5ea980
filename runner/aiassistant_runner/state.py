"""RunnerState: what every request handler of one runner process shares (created once per process)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiassistant_contract.engines import EngineModel, registry_from_env
from aiassistant_contract.errors import require_env
from aiassistant_contract.runner_config import DRAIN_SECONDS_ENV, RunnerConfig

from .access import Access
from .metrics import Metrics
from .sessions import Sessions
from .tools import ToolRunner

if TYPE_CHECKING:
    from .text_engine import TurnEngine


@dataclass
class RunnerState:
    """Config, session admission, metrics and tools of one runner process."""

    config: RunnerConfig
    sessions: Sessions
    metrics: Metrics
    tools: ToolRunner
    engine: EngineModel
    access: Access
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # Seconds active sessions may take to finish after SIGTERM (env DRAIN_SECONDS_ENV; default: the
    # longest a session may last, so none is cut). The operator sets the pod's
    # terminationGracePeriodSeconds a little above it, so the kubelet does not kill a draining pod.
    drain_seconds: float = 1800.0
    llm_timeout_seconds: float = 30.0  # read timeout of one LLM request of a text turn or task
    # A caller hears silence while the LLM stalls: after this, the attempt is retried once, then the
    # bot apologises and the call goes on.
    voice_llm_timeout_seconds: float = 8.0
    _turns: TurnEngine | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        config: RunnerConfig,
        *,
        environ: Mapping[str, str] | None = None,
        drain_seconds: float | None = None,
    ) -> RunnerState:
        env = os.environ if environ is None else environ
        registry = registry_from_env(env)
        metrics = Metrics(
            f"{config.namespace}/{config.name}", config.engine_model, config.billed_price(registry)
        )
        if drain_seconds is None:
            drain_seconds = float(env.get(DRAIN_SECONDS_ENV) or config.longest_session_seconds)
        return cls(
            config=config,
            sessions=Sessions(config.max_sessions_per_pod, metrics),
            metrics=metrics,
            tools=ToolRunner(config.tools, metrics),
            engine=config.engine(registry),
            access=Access(config, env, metrics),
            environ=env,
            drain_seconds=drain_seconds,
        )

    @property
    def llm_type(self) -> str:
        """The engine target, e.g. "grok" (the factory's `type`)."""
        return self.engine.target.name

    @property
    def llm_model(self) -> str:
        return self.engine.model

    @property
    def llm_base_url(self) -> str | None:
        """The assistant's base URL override, else None (the factory uses the target's default)."""
        return self.config.base_url

    def llm_key(self) -> str:
        """The LLM API key from the target's env var (e.g. XAI_API_KEY). Never log the result."""
        why = f"the {self.llm_type} API key comes from this env var"
        return require_env(self.environ, self.engine.target.key_env, why)

    @property
    def turns(self) -> TurnEngine:
        """The turn engine of text conversations and tasks (one LLM service per process)."""
        if self._turns is None:
            from .text_engine import TurnEngine

            self._turns = TurnEngine(self, timeout=self.llm_timeout_seconds)
        return self._turns

    async def aclose(self) -> None:
        await self.tools.close()
        if self._turns is not None:
            await self._turns.aclose()
