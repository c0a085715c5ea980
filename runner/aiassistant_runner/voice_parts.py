"""What both kinds of call pipeline are made of: voice_pipeline.py (STT -> LLM -> TTS) and
voice_realtime.py (speech to speech) share the call's services, its transport, its worker and the
`end_call` tool.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiassistant_contract.runner_config import RunnerConfig

from .llm_policy import LLMPolicy
from .metrics import Metrics
from .models import Model
from .tools import ToolRunner

if TYPE_CHECKING:
    from fastapi import WebSocket
    from pipecat.observers.base_observer import BaseObserver
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.serializers.base_serializer import FrameSerializer
    from pipecat.services.llm_service import FunctionCallParams
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallServices:
    """What every call's pipeline is built from (one per process, wired in wiring.py). Speech keys
    are read from `environ` per call, so a missing one fails that call with its env var's name."""

    config: RunnerConfig
    environ: Mapping[str, str]
    models: tuple[Model, ...]  # the engine model, then the fallbacks (models.py)
    tools: ToolRunner
    metrics: Metrics
    policy: LLMPolicy  # timeouts and retries of the call's LLM requests (llm_policy.VOICE_POLICY)


@dataclass
class CallPipeline:
    """A built call: run `worker` on a WorkerRunner; `transport` raises the socket events."""

    worker: PipelineWorker
    transport: FastAPIWebsocketTransport


def call_transport(websocket: WebSocket, serializer: FrameSerializer) -> FastAPIWebsocketTransport:
    """The call's transport on the accepted socket: audio both ways, frames by `serializer`."""
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

    return FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            serializer=serializer, audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False
        ),
    )


def call_worker(
    pipeline: Pipeline, metrics: Metrics, sample_rate: int, observers: Sequence[BaseObserver]
) -> PipelineWorker:
    """The worker of a call's pipeline (either mode): audio at `sample_rate`, metrics on."""
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker

    return PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=sample_rate,
            audio_out_sample_rate=sample_rate,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        enable_rtvi=False,  # the seed's clients speak plain frames, not the RTVI protocol
        observers=[metrics.observer(), *observers],
    )


async def end_call(params: FunctionCallParams) -> None:
    """The built-in `end_call` tool of both modes. The goodbye the model said before calling it is
    queued ahead of the EndWorkerFrame, so it is spoken before the pipeline ends."""
    from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties

    log.info("call ended by the model (end_call): %s", params.arguments.get("reason", ""))
    await params.result_callback(
        {"status": "ending call"}, properties=FunctionCallResultProperties(run_llm=False)
    )
    await params.llm.push_frame(EndWorkerFrame(reason="end_call"))
