"""The voice call pipeline: one per WebSocket.

    transport in -> STT -> user aggregator (Silero VAD, turn detection) -> LLM (the factory; with
                 fallbacks, an LLMSwitcher over them) -> TTS -> transport out -> assistant aggregator

Pipecat 1.14 puts the VAD in the user aggregator (`LLMUserAggregatorParams.vad_analyzer`), which
broadcasts the VAD frames both ways, so the segmented STT upstream of it still sees them. The
user's turn ends when the VAD reports `vad.stopSecs` of silence and the transcript is in (the
spec's stopSecs is the whole pause policy, no extra timer), or by Pipecat's smart-turn model when
`smartTurn` is set. User speech during bot speech interrupts the bot (Pipecat's default).

Text conversations and tasks need no pipeline: see text_engine.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from aiassistant_contract.runner_config import END_CALL

from .speech import create_stt, create_tts
from .voice_parts import CallPipeline, CallServices, call_transport, call_worker, end_call

if TYPE_CHECKING:
    from fastapi import WebSocket
    from pipecat.observers.base_observer import BaseObserver
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.serializers.base_serializer import FrameSerializer

log = logging.getLogger(__name__)

# What the bot says when the LLM fails mid-call (5xx, timeout, garbled stream); the call goes on.
VOICE_APOLOGY = "Sorry, I didn't catch that. Could you say it again?"


def prewarm() -> None:
    """Import the voice stack and load the shared VAD model now (about a second of CPU), e.g. in a
    thread after start-up, so the first call does not pay for it."""
    import pipecat.audio.vad.silero
    import pipecat.pipeline.worker
    import pipecat.processors.aggregators.llm_response_universal
    import pipecat.serializers.protobuf
    import pipecat.serializers.twilio
    import pipecat.services.openai.stt
    import pipecat.services.openai.tts
    import pipecat.transports.websocket.fastapi
    import pipecat.turns.user_turn_strategies
    import pipecat.workers.runner  # noqa: F401

    from . import llm_factory  # noqa: F401
    from .vad import shared_model

    shared_model()


def build_call_pipeline(
    websocket: WebSocket,
    serializer: FrameSerializer,
    services: CallServices,
    *,
    sample_rate: int,
    observers: Sequence[BaseObserver] = (),
    events: bool = False,
) -> CallPipeline:
    """Build the pipeline of one call on an accepted `websocket`.

    `sample_rate` is the pipeline's audio rate in and out (the serializer converts to the wire's
    rate and encoding). `events`: also send the transcript and turn events to the client (the
    playground's calls, playground_events.py). Raises MissingKeyError (naming the env var) if a key
    is unset.
    """
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.frames.frames import LLMRunFrame, TTSSpeakFrame
    from pipecat.pipeline.llm_switcher import LLMSwitcher
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
    from pipecat.services.llm_service import LLMService
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy, TurnAnalyzerUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    from .fallbacks import switcher
    from .interruptions import keep_what_was_heard
    from .llm_factory import create_llm, create_llm_service
    from .media_streams import playback_marks
    from .smart_turn import call_smart_turn
    from .vad import CallVAD

    config = services.config
    models = services.models
    extra_observers = list(observers)
    if events:
        from .playground_events import PlaygroundEvents

        playground_events = PlaygroundEvents()
        extra_observers.append(playground_events)
    if config.realtime:
        from .voice_realtime import build_realtime_pipeline

        call = build_realtime_pipeline(
            websocket, serializer, services, sample_rate=sample_rate, observers=extra_observers
        )
        if events:
            playground_events.worker = call.worker
        return call
    if config.stt is None or config.tts is None:
        raise ValueError("voice calls need both stt and tts in the assistant spec")

    transport = call_transport(websocket, serializer)
    stt = create_stt(config.stt, services.environ)
    tts = create_tts(config.tts, services.environ)
    vad = config.vad
    if config.smart_turn:  # Pipecat's default strategies, its smart-turn model loaded once (smart_turn.py)
        strategies = UserTurnStrategies(
            stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=call_smart_turn())]
        )
    else:
        strategies = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)])
    user_params = LLMUserAggregatorParams(
        vad_analyzer=CallVAD(  # Pipecat's Silero VAD on the process's one ONNX session (vad.py)
            params=VADParams(
                confidence=vad.confidence,
                start_secs=vad.start_secs,
                stop_secs=vad.stop_secs,
                min_volume=vad.min_volume,
            )
        ),
        user_turn_strategies=strategies,
    )
    llm, aggregators = create_llm_service(
        config.engine_model,
        models[0].key,
        [],
        None,  # the tools: set below from what services.tools.register() advertises
        base_url=models[0].base_url,
        system_instruction=config.system_instruction(),
        user_params=user_params,
        policy=services.policy,
        reasoning_effort=config.reasoning_effort,
    )

    # With fallbacks the pipeline's LLM is Pipecat's LLMSwitcher over the chain (fallbacks.py); on a
    # switch the failed turn is asked again of the next model.
    worker_ref: list[PipelineWorker] = []

    async def rerun() -> None:
        await worker_ref[0].queue_frame(LLMRunFrame())

    llm_node: Any = llm
    if len(models) > 1:
        llms = [llm] + [
            create_llm(
                m.engine_model,
                m.key,
                base_url=m.base_url,
                system_instruction=config.system_instruction(),
                policy=services.policy,
            )
            for m in models[1:]
        ]
        llm_node = switcher(cast(list[Any], llms), models, services.metrics, rerun)
    aggregators.user().context.set_tools(services.tools.register(llm_node, builtins={END_CALL: end_call}))
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm_node,
            tts,
            *playback_marks(serializer, pieces=True),  # where the provider has marks
            transport.output(),
            aggregators.assistant(),
        ]
    )
    keep_what_was_heard(aggregators.assistant(), serializer)  # an interrupted answer: what was heard
    worker = call_worker(pipeline, services.metrics, sample_rate, extra_observers)
    worker_ref.append(worker)
    if events:
        playground_events.worker = worker

    if config.greeting:
        greeting = config.greeting

        @transport.event_handler("on_client_connected")
        async def greet(transport: Any, websocket: Any) -> None:
            await worker.queue_frame(TTSSpeakFrame(greeting))

    @worker.event_handler("on_pipeline_error")
    async def on_error(worker: Any, frame: Any) -> None:
        # An LLM failure is not the end of the call: count it and apologise.
        if isinstance(getattr(frame, "processor", None), LLMService | LLMSwitcher):
            services.metrics.llm_error()
            await worker.queue_frame(TTSSpeakFrame(VOICE_APOLOGY, append_to_context=False))

    return CallPipeline(worker=worker, transport=transport)
