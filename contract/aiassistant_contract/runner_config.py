"""RunnerConfig: the contract between the operator and the runner.

The operator renders it as JSON into the assistant's ConfigMap; the runner validates it at start.
It never holds a secret: API keys reach the runner pod only as env vars from `secretKeyRef`.
JSON keys are camelCase, the same spelling as the AIAssistant spec they come from.
Pure pydantic: the operator imports this module without Pipecat.

Also the rest of the runner pod's interface the operator renders against: the env vars the runner
reads and the port it serves on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .engines import (
    BUILTIN,
    REASONING_EFFORTS,
    EngineModel,
    EngineModelError,
    ReasoningEffort,
    Registry,
    reasoning_effort_error,
)
from .speech import REALTIME_MODELS, XAI_VOICES, SpeechTypeError, stt_provider, tts_provider, voice_error

# The runner pod's interface: where the config is, how long a SIGTERM drain may take, the log level
# (env vars the operator sets on the container), and the port the runner serves on by default.
CONFIG_ENV = "AIASSISTANT_CONFIG"
DRAIN_SECONDS_ENV = "AIASSISTANT_DRAIN_SECONDS"
LOG_LEVEL_ENV = "AIASSISTANT_LOG_LEVEL"
PORT = 8000
MAX_WORKERS = 16  # runner processes per pod (workers.py); more cores are better spent on more pods
# Access credentials (from Secrets, never in the config): bearer tokens one per line, and the
# Twilio auth token that signs media stream upgrades (access.py in the runner checks them).
ACCESS_TOKENS_ENV = "AIASSISTANT_ACCESS_TOKENS"
TWILIO_AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"  # noqa: S105 - an env var name

Serializer = Literal["protobuf", "twilio", "telnyx", "plivo", "exotel"]
SERIALIZERS: tuple[str, ...] = get_args(Serializer)

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # what OpenAI-compatible APIs accept as a function name
# Built-in tools the runner always offers; a spec tool may not take their names.
END_CALL = "end_call"
STOP_SERVICE = "stop_service"
BUILTIN_TOOLS = (END_CALL, STOP_SERVICE)


MAX_FALLBACKS = 3


def fallback_key_env(index: int) -> str:
    """The env var of `fallbacks[index]`'s API key: each fallback has its own (two grok models may
    use two different xAI keys), taken from its secretRef like the primary's."""
    return f"AIASSISTANT_FALLBACK_{index + 1}_API_KEY"


def key_value_lines(values: Mapping[str, Any]) -> str:
    """`key: value` lines in key order: how parameters reach the model (the seed appended them)."""
    return "\n".join(f"{k}: {v}" for k, v in sorted(values.items()))


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown keys are an error (typos fail loudly)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class STTConfig(CamelModel):
    type: str = Field(description="Speech-to-text provider.")
    language: str = Field(default="en-US", description="BCP-47 language of the caller, e.g. en-US.")
    model: str | None = Field(default=None, description="Provider model; the provider's default if unset.")
    base_url: str | None = Field(default=None, alias="baseURL", description="Provider endpoint override.")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        try:
            return stt_provider(value).name
        except SpeechTypeError as err:
            raise ValueError(str(err)) from None


class TTSConfig(CamelModel):
    type: str = Field(description="Text-to-speech provider.")
    voice_id: str | None = Field(
        default=None,
        description="Provider voice id; the provider's default if unset (xai: ara, eve, leo, rex, sal).",
    )
    language: str = Field(default="en-US", description="BCP-47 language the bot speaks.")
    model: str | None = Field(default=None, description="Provider model; the provider's default if unset.")
    base_url: str | None = Field(default=None, alias="baseURL", description="Provider endpoint override.")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        try:
            return tts_provider(value).name
        except SpeechTypeError as err:
            raise ValueError(str(err)) from None

    @field_validator("voice_id")
    @classmethod
    def _known_voice(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "type" not in info.data:  # the type failed its own check
            return value
        error = voice_error(tts_provider(info.data["type"]), value)
        if error:
            raise ValueError(error)
        return value


class VADConfig(CamelModel):
    """Silero voice activity detection; defaults are Pipecat's."""

    confidence: float = Field(default=0.7, ge=0, le=1, description="Minimum voice confidence, 0..1.")
    start_secs: float = Field(default=0.2, ge=0, le=5, description="Speech needed before the user 'starts'.")
    stop_secs: float = Field(default=0.2, ge=0, le=5, description="Silence needed before the user 'stops'.")
    min_volume: float = Field(default=0.6, ge=0, le=1, description="Minimum volume counted as speech, 0..1.")


class ToolConfig(CamelModel):
    """A function the LLM may call; the runner POSTs the call as JSON to `url`."""

    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN, description="Function name, [A-Za-z0-9_-]{1,64}.")]
    description: str = Field(default="", description="What the tool does, for the LLM.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (type: object) of the arguments.",
    )
    url: str = Field(pattern=r"^https?://", description="Webhook the call is POSTed to (http or https).")
    timeout_seconds: float = Field(default=10, gt=0, le=300, description="Webhook timeout in seconds.")

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in BUILTIN_TOOLS:
            raise ValueError(
                f"tool name {value!r} is reserved for a built-in tool ({', '.join(BUILTIN_TOOLS)})"
            )
        return value

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError("tool parameters must be a JSON Schema with type: object")
        return value


VoiceMode = Literal["pipeline", "realtime"]


class VoiceConfig(CamelModel):
    """How calls are voiced: `pipeline` (STT -> LLM -> TTS) or `realtime` (xAI speech-to-speech)."""

    mode: VoiceMode = Field(
        default="pipeline",
        description="pipeline: stt, engineModel and tts; realtime: Grok speech-to-speech "
        "(GrokRealtimeLLMService) with the grok engine's XAI_API_KEY, no stt/tts.",
    )
    model: str = Field(
        default=REALTIME_MODELS[0],
        description=f"Realtime model ({', '.join(REALTIME_MODELS)}).",
        json_schema_extra={"enum": list[JsonValue](REALTIME_MODELS)},
    )
    voice: str = Field(
        default="eve",
        description=f"Realtime voice ({', '.join(XAI_VOICES)}).",
        json_schema_extra={"enum": list[JsonValue](XAI_VOICES)},
    )
    base_url: str | None = Field(
        default=None, alias="baseURL", description="Realtime endpoint override (ws[s]://host)."
    )

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in REALTIME_MODELS:
            raise ValueError(
                f"{value!r} is not an xAI realtime model (supported: {', '.join(REALTIME_MODELS)})"
            )
        return value

    @field_validator("voice")
    @classmethod
    def _known_voice(cls, value: str) -> str:
        if value not in XAI_VOICES:
            raise ValueError(f"{value!r} is not an xAI voice (supported: {', '.join(XAI_VOICES)})")
        return value


def realtime_error(voice: VoiceConfig | None, target: str, engine_model: str, speech: object) -> str | None:
    """Why a realtime voice does not fit the rest of the spec (None: it does, or it is a pipeline)."""
    if voice is None or voice.mode != "realtime":
        return None
    if target != "grok":
        return f"realtime is Grok speech-to-speech and needs a grok engineModel (its XAI_API_KEY), got {engine_model}"
    if speech is not None:
        return "realtime speaks and listens itself: remove stt and tts"
    return None


class FallbackConfig(CamelModel):
    """A model tried when the one before it fails (connection error, timeout, 429, 5xx, 401)."""

    engine_model: str = Field(max_length=253, description="'<target>.<model>', e.g. openai.gpt-4o.")
    base_url: str | None = Field(default=None, alias="baseURL", description="LLM endpoint override.")


class TransportConfig(CamelModel):
    serializers: list[Serializer] = Field(
        default=["protobuf"],  # pydantic copies mutable defaults per instance
        description="WebSocket frame serializers served at /v1/calls/{serializer}.",
    )


class Price(CamelModel):
    """What the provider bills for the engine model, for the cost metric."""

    input_per_million: float = Field(ge=0, le=10_000, description="USD per 1M prompt tokens.")
    output_per_million: float = Field(ge=0, le=10_000, description="USD per 1M completion tokens.")


class AccessConfig(CamelModel):
    """Who may use the runner's /v1 endpoints (the credentials themselves come from env vars)."""

    anonymous: bool = Field(
        default=False,
        description="Serve without credentials (demos only): anyone who reaches the runner spends "
        "its provider keys. Default false: without tokenSecretRef or twilio, every /v1 request is refused.",
    )
    public_base_url: str | None = Field(
        default=None,
        alias="publicBaseURL",
        max_length=512,
        pattern=r"^(wss|https)://[^/?#\s@]+$",
        description="The public origin telephony providers connect to, e.g. wss://voice.example.com "
        "(no path): the Twilio signature is checked against this + the request's path and query.",
    )


class LimitsConfig(CamelModel):
    """Bounds of every request, so no client can make the runner read, hold or forward without end."""

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=67_108_864, description="Largest request body; larger: 413."
    )
    max_messages: int = Field(
        default=256, ge=1, le=10_000, description="Most messages in one chat request; more: 400."
    )
    max_json_depth: int = Field(
        default=32, ge=4, le=256, description="Deepest JSON nesting of a request body; deeper: 400."
    )
    turn_timeout_seconds: float = Field(
        default=60, gt=0, le=3600, description="Deadline of one text turn (streamed or not); then 504."
    )
    call_start_seconds: float = Field(
        default=5, gt=0, le=60, description="Time a call socket has to send its start message."
    )
    auth_failures_per_minute: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Failed authentications per source address per minute; then 429.",
    )


class RunnerConfig(CamelModel):
    """Everything a runner pod needs to serve one assistant, except the keys (env vars)."""

    name: str = Field(default="assistant", description="Assistant name (metrics label).")
    namespace: str = Field(default="default", description="Assistant namespace (metrics label).")
    engine_model: str = Field(description="'<target>.<model>', e.g. grok.grok-4.3.")
    reasoning_effort: ReasoningEffort | None = Field(
        default=None,
        description=f"How much the model reasons before answering ({', '.join(REASONING_EFFORTS)}); "
        "only values the model takes; unset: the provider's default.",
    )
    base_url: str | None = Field(default=None, alias="baseURL", description="LLM endpoint override.")
    init_prompt: str = Field(default="You are a helpful assistant.", description="System instruction.")
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Appended to the system instruction."
    )
    greeting: str | None = Field(default=None, description="If set, the bot speaks first in a call.")
    fallbacks: list[FallbackConfig] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        description="Models tried in order when the engine model fails; each key in its own env var.",
    )
    stt: STTConfig | None = None
    tts: TTSConfig | None = None
    voice: VoiceConfig | None = Field(default=None, description="Voice mode of calls; unset: pipeline.")
    vad: VADConfig = Field(default_factory=VADConfig)
    smart_turn: bool = Field(default=False, description="Use Pipecat's smart-turn end-of-turn model.")
    tools: list[ToolConfig] = Field(default_factory=list)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    playground: bool = Field(
        default=False, description="Serve the browser playground page at GET /playground."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=MAX_WORKERS,
        description="Runner processes per pod, on one port: each is an event loop on a core of its own.",
    )
    max_sessions_per_pod: int = Field(default=20, ge=1, le=10_000, description="/readyz is 503 at this many.")
    max_call_seconds: int = Field(default=1800, ge=10, le=86_400, description="A call ends after this long.")
    task_timeout_seconds: float = Field(default=30, gt=0, le=3600, description="Bound of one /v1/tasks run.")
    allow_unlisted_models: bool = Field(
        default=False, description="Set by the operator when its settings allowed extra models."
    )
    price: Price | None = Field(
        default=None,
        description="Set by the operator from its price settings; unset: the registry's list price.",
    )
    access: AccessConfig = Field(default_factory=AccessConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    allowed_http_hosts: list[str] = Field(
        default_factory=list, description="Set by the operator: hosts its settings allow over http://."
    )

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[ToolConfig]) -> list[ToolConfig]:
        names = [t.name for t in tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tool names must be unique; repeated: {', '.join(duplicates)}")
        return tools

    @model_validator(mode="after")
    def _engine_model(self) -> RunnerConfig:
        # Models allowed by operator settings arrive as allow_unlisted_models=True: the operator
        # already checked them against its extended registry.
        try:
            engine = BUILTIN.parse(self.engine_model, strict=not self.allow_unlisted_models)
        except EngineModelError as err:
            raise ValueError(f"engineModel: {err}") from None
        effort_error = reasoning_effort_error(engine, self.reasoning_effort)
        if effort_error:
            raise ValueError(f"reasoningEffort: {effort_error}")
        for i, fallback in enumerate(self.fallbacks):
            try:
                BUILTIN.parse(fallback.engine_model, strict=not self.allow_unlisted_models)
            except EngineModelError as err:
                raise ValueError(f"fallbacks[{i}].engineModel: {err}") from None
        error = realtime_error(self.voice, engine.target.name, self.engine_model, self.stt or self.tts)
        if error:
            raise ValueError(f"voice.mode: {error}")
        return self

    @property
    def realtime(self) -> bool:
        """Whether calls are Grok speech-to-speech (voice.mode realtime)."""
        return self.voice is not None and self.voice.mode == "realtime"

    def voice_ready(self) -> bool:
        """Whether calls can be served: realtime, or a pipeline with both stt and tts."""
        return self.realtime or (self.stt is not None and self.tts is not None)

    def engine(self, registry: Registry = BUILTIN) -> EngineModel:
        """The parsed EngineModel."""
        return registry.parse(self.engine_model, strict=not self.allow_unlisted_models)

    @property
    def longest_session_seconds(self) -> int:
        """The longest a session may last (a call ends at maxCallSeconds, a task at its timeout):
        how long a SIGTERM drain waits so that no session is cut."""
        return max(self.max_call_seconds, math.ceil(self.task_timeout_seconds))

    def billed_price(self, registry: Registry = BUILTIN) -> tuple[float, float] | None:
        """USD per 1M prompt, completion tokens of the engine model: the operator's, else the list price."""
        if self.price is not None:
            return (self.price.input_per_million, self.price.output_per_million)
        return self.engine(registry).billed_price

    def system_instruction(self) -> str:
        """The init prompt, then the parameters as `key: value` lines (the seed appended them)."""
        if not self.parameters:
            return self.init_prompt
        return f"{self.init_prompt}\n\n{key_value_lines(self.parameters)}"

    def to_json(self) -> str:
        # No fallbacks: not written at all, so an upgrade leaves every existing config (and pod) as is.
        omit = None if self.fallbacks else {"fallbacks"}
        return self.model_dump_json(by_alias=True, exclude_none=True, indent=2, exclude=omit)
