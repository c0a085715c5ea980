"""The voice call pipeline in realtime mode (`voice.mode: realtime`): Grok speech-to-speech.

    transport in -> user aggregator -> GrokRealtimeLLMService -> transport out -> assistant aggregator

Caller audio goes to xAI's realtime API (wss://api.x.ai/v1/realtime, `voice.model`, `voice.voice`)
and Grok's audio comes back; Grok's server-side VAD finds the turns (Pipecat's external user turn
strategies follow its speech events), so a caller who talks over the bot interrupts it. The
session's audio is PCM at the pipeline's rate: 16 kHz for protobuf clients, 8 kHz for the telephony
serializers, so nothing is resampled (the serializers only convert mu-law to and from PCM, because
Pipecat's serializers hand the pipeline PCM). The call opens with the bot's first response: the
greeting (asked of the model), else the model's own opening (Pipecat's realtime service takes its
conversation with its first response). Tools (the spec's webhooks and `end_call`), `maxCallSeconds` (voice_calls.py), transcripts and
token usage (Pipecat's metrics frames, into our metrics) work as in pipeline mode. The key is the
grok engine's XAI_API_KEY; text conversations and tasks keep using `engineModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiassistant_contract.runner_config import END_CALL

if TYPE_CHECKING:
    from fastapi import WebSocket
    from pipecat.observers.base_observer import BaseObserver
    from pipecat.serializers.base_serializer import FrameSerializer

    from .voice_parts import CallPipeline, CallServices

REALTIME_PATH = "/v1/realtime"


def realtime_url(base_url: str | None) -> str:
    """The realtime endpoint: the override (a bare ws[s]://host gets /v1/realtime) or xAI's."""
    if not base_url:
        return "wss://api.x.ai/v1/realtime"
    return base_url if base_url.rstrip("/").endswith(REALTIME_PATH) else base_url.rstrip("/") + REALTIME_PATH


def build_realtime_pipeline(
    websocket: WebSocket,
    serializer: FrameSerializer,
    services: CallServices,
    *,
    sample_rate: int,
    observers: Sequence[BaseObserver] = (),
) -> CallPipeline:
    """The realtime pipeline of one call (see build_call_pipeline for the arguments)."""
    from pipecat.frames.frames import (
        LLMMessagesAppendFrame,
        LLMRunFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
    from pipecat.services.llm_service import LLMService
    from pipecat.services.xai.realtime import events
    from pipecat.services.xai.realtime.llm import GrokRealtimeLLMService

    from .media_streams import playback_marks
    from .voice_parts import CallPipeline, call_transport, call_worker, end_call

    config = services.config
    voice = config.voice
    assert voice is not None and voice.mode == "realtime"
    transport = call_transport(websocket, serializer)
    audio = events.PCMAudioFormat(rate=sample_rate)  # 8000 or 16000
    session = events.SessionProperties(
        voice=voice.voice,
        instructions=config.system_instruction(),
        turn_detection=events.TurnDetection(type="server_vad"),
        audio=events.AudioConfiguration(
            input=events.AudioInput(format=audio), output=events.AudioOutput(format=audio)
        ),
    )
    llm = GrokRealtimeLLMService(
        api_key=services.models[0].key,
        base_url=realtime_url(voice.base_url),
        settings=GrokRealtimeLLMService.Settings(
            model=voice.model, system_instruction=config.system_instruction(), session_properties=session
        ),
    )

    context = LLMContext(messages=[], tools=services.tools.register(llm, builtins={END_CALL: end_call}))
    aggregators = LLMContextAggregatorPair(context)
    # A mark after each utterance, where the provider has them; none per sentence, since nothing is
    # cut from a conversation the provider keeps (interruptions.py).
    marks = playback_marks(serializer, pieces=False)
    pipeline = Pipeline(
        [transport.input(), aggregators.user(), llm, *marks, transport.output(), aggregators.assistant()]
    )
    worker = call_worker(pipeline, services.metrics, sample_rate, observers)

    @transport.event_handler("on_client_connected")
    async def open_call(transport: Any, websocket: Any) -> None:
        # The realtime service takes its conversation with its first response, so the call opens
        # with one: the greeting (no TTS to speak it: the model says it), else the model's own
        # opening per the instructions. Later turns are answered on Grok's server-side VAD.
        if config.greeting:
            ask = f"Greet the caller by saying exactly: {config.greeting}"
            await worker.queue_frame(LLMMessagesAppendFrame([{"role": "user", "content": ask}], run_llm=True))
        else:
            await worker.queue_frame(LLMRunFrame())

    @worker.event_handler("on_pipeline_error")
    async def on_error(worker: Any, frame: Any) -> None:
        if isinstance(getattr(frame, "processor", None), LLMService):
            services.metrics.llm_error()

    return CallPipeline(worker=worker, transport=transport)
