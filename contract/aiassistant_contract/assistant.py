"""AIAssistantSpec: the AIAssistant custom resource's spec (and status) as pydantic models, and the
one spec -> RunnerConfig conversion.

This module is the one source of the CRD: the operator's `crdgen.py` turns these models into the
OpenAPI schema in crds/, and a unit test fails when the committed CRD drifts from them. The AI
fields reuse RunnerConfig's own field definitions (runner_config.py), so the spec maps 1:1 onto
RunnerConfig; the operator-only fields (keys, workload shape: OPERATOR_ONLY_FIELDS) are added here.

`parse_spec` validates a spec dict with the SAME engine registry the runner uses, so the operator
never accepts a model the runner cannot serve; errors name the field (`spec.engineModel: ...`).
`to_runner_config` is what the operator renders into the ConfigMap and what `aiassistant-runner
--assistant FILE` runs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import Field, JsonValue, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from .capacity import SUPERVISOR_MIB, base_mib, call_mib
from .engines import (
    BUILTIN,
    EngineModel,
    EngineModelError,
    ReasoningEffort,
    Registry,
    reasoning_effort_error,
    split_engine_model,
)
from .errors import SpecError, describe
from .runner_config import (
    ACCESS_TOKENS_ENV,
    MAX_FALLBACKS,
    TWILIO_AUTH_TOKEN_ENV,
    AccessConfig,
    CamelModel,
    FallbackConfig,
    LimitsConfig,
    RunnerConfig,
    Serializer,
    STTConfig,
    ToolConfig,
    TransportConfig,
    TTSConfig,
    VADConfig,
    VoiceConfig,
    fallback_key_env,
    realtime_error,
)
from .speech import STT_PROVIDERS, TTS_PROVIDERS, stt_provider, tts_provider

GROUP = "aiassistant.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AIAssistant"
PLURAL = "aiassistants"

Phase = Literal["Pending", "RollingOut", "Ready", "Invalid", "Degraded"]
ConditionType = Literal["ModelValid", "SecretResolved", "KeysAccepted", "Ready", "AccessRestricted"]
ConditionStatus = Literal["True", "False", "Unknown"]

# Spec fields that are the operator's business, not the runner's: they never reach RunnerConfig.
OPERATOR_ONLY_FIELDS = ("secret_ref", "replicas", "autoscaling", "resources", "image")

# The CRD's format check of engineModel (the registry decides which targets and models exist):
# (regex, message) pairs, enforced by the apiserver as CEL rules and by the model, so both agree.
# Rules use only matches(): cel-python lacks the Kubernetes string extensions (split, indexOf...).
ENGINE_MODEL_FORMAT = [
    (
        r"^[A-Za-z0-9_-]+[.:]",
        "Wrong LLM format: expected '<target>.<model>' (or '<target>:<model>'), e.g. grok.grok-4.3",
    ),
    (
        r"^[^.:]+[.:][^\s]+$",
        "Wrong LLM format: expected a model after the target, without spaces, e.g. grok.grok-4.3",
    ),
]
ENGINE_MODEL_RULES = [
    {"rule": "self.matches('" + regex.replace("\\", "\\\\") + "')", "message": message}
    for regex, message in ENGINE_MODEL_FORMAT
]
# Kubernetes resource quantity (apimachinery's regex), for spec.resources.
QUANTITY_PATTERN = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

# Every child object is `<name>-runner`; the Service's name must be a DNS-1035 label (<= 63 chars,
# lowercase alphanumerics and '-', starting with a letter), so the assistant's name is one of <= 56.
RUNNER_SUFFIX = "-runner"
NAME_MAX_LENGTH = 63 - len(RUNNER_SUFFIX)
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MESSAGE = (
    f"metadata.name: must be a DNS-1035 label of at most {NAME_MAX_LENGTH} characters (lowercase letters, "
    "digits and '-', starting with a letter and ending with a letter or digit), because the assistant's "
    f"objects are named '<name>{RUNNER_SUFFIX}' and a Service name is a DNS-1035 label of at most 63"
)
NAME_RULE = {
    "rule": f"size(self.metadata.name) <= {NAME_MAX_LENGTH} && self.metadata.name.matches('"
    + DNS_1035_LABEL.replace("\\", "\\\\")
    + "')",
    "message": NAME_MESSAGE,
}


def check_name(name: Any) -> str:
    """The assistant's metadata.name, if every child name made from it is valid; else SpecError."""
    if not isinstance(name, str) or not name:
        raise SpecError("metadata.name: required")
    if len(name) > NAME_MAX_LENGTH or re.match(DNS_1035_LABEL, name) is None:
        raise SpecError(f"{NAME_MESSAGE} (got {name[:80]!r})")
    return name


def _runner_field(name: str, **overrides: Any) -> Any:
    """RunnerConfig's definition of a field (type constraints, default), optionally re-described."""
    info: FieldInfo = copy.deepcopy(RunnerConfig.model_fields[name])
    for attr, value in overrides.items():
        setattr(info, attr, value)
    return info


class SecretRef(CamelModel):
    """A key in a Secret in the assistant's own namespace."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")
    key: str = Field(max_length=253, pattern=DATA_KEY_PATTERN, description="Key inside the Secret's data.")


class STTSpec(STTConfig):
    """Speech-to-text for voice calls."""

    type: str = Field(
        description="Speech-to-text provider the runner serves.",
        json_schema_extra={"enum": list[JsonValue](sorted(STT_PROVIDERS))},
    )
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret key holding the provider's API key; default: the operator's default "
        "key Secret for this provider (an openai provider shares an openai engine's OPENAI_API_KEY, "
        "an xai provider a grok engine's XAI_API_KEY).",
    )


class TTSSpec(TTSConfig):
    """Text-to-speech for voice calls."""

    type: str = Field(
        description="Text-to-speech provider the runner serves.",
        json_schema_extra={"enum": list[JsonValue](sorted(TTS_PROVIDERS))},
    )
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret key holding the provider's API key; default: the operator's default "
        "key Secret for this provider (an openai provider shares an openai engine's OPENAI_API_KEY, "
        "an xai provider a grok engine's XAI_API_KEY).",
    )


class FallbackSpec(FallbackConfig):
    """A model tried when the one before it fails, with its own key."""

    engine_model: str = Field(
        max_length=253,
        description="LLM as '<target>.<model>', validated like spec.engineModel, e.g. openai.gpt-4o.",
        json_schema_extra={"x-kubernetes-validations": cast(JsonValue, ENGINE_MODEL_RULES)},
    )
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret key holding this model's API key (the pod's "
        "AIASSISTANT_FALLBACK_<n>_API_KEY); default: the operator's default key Secret for its target.",
    )


Quantity = Annotated[
    int | str,
    Field(
        json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN},
    ),
]


class Resources(CamelModel):
    """Compute resources of the runner container (core/v1 ResourceRequirements)."""

    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum amount of compute resources allowed, e.g. memory: 1Gi."
    )
    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum amount of compute resources required, e.g. cpu: 250m."
    )

    @field_validator("limits", "requests")
    @classmethod
    def _quantities(cls, value: dict[str, int | str] | None) -> dict[str, int | str] | None:
        for resource, quantity in (value or {}).items():
            if isinstance(quantity, str) and not re.match(QUANTITY_PATTERN, quantity):
                raise ValueError(f"{resource}: {quantity!r} is not a Kubernetes quantity (e.g. 500m, 1Gi)")
        return value


class TransportSpec(TransportConfig):
    """How voice calls reach the runner: WebSocket at /v1/calls/{serializer}."""

    serializers: list[Serializer] = Field(
        default=["protobuf"],
        min_length=1,
        description="Frame serializers served at /v1/calls/{serializer} (protobuf: Pipecat clients; "
        "twilio, telnyx, plivo, exotel: telephony media streams).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @field_validator("serializers")
    @classmethod
    def _unique(cls, serializers: list[str]) -> list[str]:
        # The CRD declares a set: the apiserver rejects duplicates, so the model does too.
        repeated = sorted({s for s in serializers if serializers.count(s) > 1})
        if repeated:
            raise ValueError(f"serializers must be unique; repeated: {', '.join(repeated)}")
        return serializers


AUTOSCALING_RULE: dict[str, JsonValue] = {
    "rule": "self.maxReplicas >= (has(self.minReplicas) ? self.minReplicas : 1)",
    "message": "maxReplicas must be at least minReplicas",
}


class Autoscaling(CamelModel):
    """Scale the runner pods on live sessions: a HorizontalPodAutoscaler (or a KEDA ScaledObject,
    by operator setting) that targets this AIAssistant's scale subresource, so it sets
    spec.replicas, within minReplicas..maxReplicas."""

    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest runner pods.")
    max_replicas: int = Field(ge=1, le=100, description="Most runner pods.")
    target_sessions_per_pod: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Average active sessions per pod (metric aiassistant_active_sessions) to scale at; "
        "keep it below maxSessionsPerPod, where a pod stops taking sessions.",
    )

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) must be at least minReplicas ({self.min_replicas})"
            )
        return self


class LabelSelector(CamelModel):
    """Kubernetes label selector (matchLabels only)."""

    match_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels the object must carry, e.g. kubernetes.io/metadata.name: ingress-nginx.",
    )


class IPBlock(CamelModel):
    """A CIDR range (networking/v1 IPBlock)."""

    cidr: str = Field(max_length=64, description="CIDR allowed, e.g. 10.0.0.0/8.")
    except_: list[str] | None = Field(
        default=None, alias="except", description="CIDRs inside cidr that are not allowed."
    )


class AccessPeer(CamelModel):
    """Who besides the assistant's own namespace may reach the runner port (a NetworkPolicy peer)."""

    namespace_selector: LabelSelector | None = Field(default=None, description="Namespaces allowed.")
    pod_selector: LabelSelector | None = Field(
        default=None,
        description="Pods allowed (in the namespaces of namespaceSelector, else the assistant's).",
    )
    ip_block: IPBlock | None = Field(default=None, description="Addresses allowed.")

    @model_validator(mode="after")
    def _one(self) -> AccessPeer:
        if self.namespace_selector is None and self.pod_selector is None and self.ip_block is None:
            raise ValueError("allowFrom: each peer needs namespaceSelector, podSelector or ipBlock")
        return self


class TwilioAccess(CamelModel):
    """Twilio media streams: the upgrade's X-Twilio-Signature is checked with the account's auth token."""

    auth_token_secret_ref: SecretRef = Field(
        description="Secret key holding the Twilio auth token (env TWILIO_AUTH_TOKEN of the runner)."
    )


class AccessSpec(AccessConfig):
    """Who may use the assistant: bearer tokens, Twilio signatures, or (demos) anyone."""

    token_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret key holding the bearer tokens clients must send, one per line (several "
        "at once: a rotation has no gap). Reaches the runner as env AIASSISTANT_ACCESS_TOKENS.",
    )
    twilio: TwilioAccess | None = Field(
        default=None, description="Check Twilio's signature on /v1/calls/twilio (needs publicBaseURL)."
    )
    allow_from: list[AccessPeer] = Field(
        default_factory=list,
        max_length=32,
        description="NetworkPolicy peers that may reach the runner besides its own namespace, e.g. "
        "the ingress controller's namespace.",
    )

    @model_validator(mode="after")
    def _twilio_needs_public_url(self) -> AccessSpec:
        if self.twilio is not None and self.public_base_url is None:
            raise ValueError(
                "access.twilio needs access.publicBaseURL (e.g. wss://voice.example.com): Twilio signs "
                "the URL it was given"
            )
        return self


class AIAssistantSpec(CamelModel):
    """Desired state of an AI voice/text assistant: the LLM, speech, tools and the runner workload."""

    engine_model: Annotated[str, Field(max_length=253)] = _runner_field(
        "engine_model",
        description="LLM as '<target>.<model>' (or '<target>:<model>'), e.g. grok.grok-4.3 or "
        "openai.gpt-4o; the operator accepts only models the runner can serve. A model its provider "
        "retired is still accepted (ModelValid reason ModelRetired names the replacement).",
        json_schema_extra={"x-kubernetes-validations": ENGINE_MODEL_RULES},
    )
    reasoning_effort: ReasoningEffort | None = _runner_field(
        "reasoning_effort",
        description="How much a reasoning model thinks before it answers: none, low, medium, high or "
        "xhigh, of the values the engineModel takes (grok-4.3: none, low, medium, high; grok-4.6: "
        "low, medium, high, xhigh); a non-reasoning model takes none of them. Unset: the provider's "
        "default for the model.",
    )
    fallbacks: list[FallbackSpec] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        description="Models tried in order when engineModel fails (connection error, timeout, 429, 5xx, "
        "401): text and tasks retry the request on the next one; calls switch to it (Pipecat's "
        "LLMSwitcher, failover strategy). The X-AIAssistant-Model header and the metrics say which "
        "model answered.",
    )
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret key holding the LLM API key (XAI_API_KEY for grok, OPENAI_API_KEY for "
        "openai); default: the operator's default key Secret for the target, in this namespace.",
    )
    base_url: str | None = _runner_field(
        "base_url",
        description="LLM endpoint override (an OpenAI-compatible gateway); default: the target's URL.",
    )
    init_prompt: str = _runner_field("init_prompt", description="System instruction of the assistant.")
    parameters: dict[str, str] = _runner_field(
        "parameters", description="Key/value pairs appended to the system instruction as 'key: value' lines."
    )
    greeting: str | None = _runner_field(
        "greeting", description="If set, the bot speaks this first when a call starts."
    )
    voice: VoiceConfig | None = _runner_field(
        "voice",
        description="Voice mode of calls: pipeline (default: stt -> engineModel -> tts) or realtime "
        "(Grok speech-to-speech with model and voice, keyed by the grok engine's XAI_API_KEY; no "
        "stt/tts). Text conversations and tasks always use engineModel.",
    )
    stt: STTSpec | None = Field(default=None, description="Speech-to-text for voice calls.")
    tts: TTSSpec | None = Field(default=None, description="Text-to-speech for voice calls.")
    vad: VADConfig = _runner_field("vad", description="Silero voice activity detection (Pipecat defaults).")
    smart_turn: bool = _runner_field(
        "smart_turn", description="Use Pipecat's smart-turn model to detect the end of a user's turn."
    )
    tools: list[ToolConfig] = _runner_field(
        "tools",
        description="Functions the LLM may call; each call is POSTed as JSON to the tool's url.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    transport: TransportSpec = Field(
        default_factory=TransportSpec, description="Voice call transport: WebSocket frame serializers."
    )
    playground: bool = _runner_field(
        "playground",
        description="Serve a browser playground at GET /playground on the runner (talk and chat with "
        "the assistant from a web page; it uses the same credentials as the API).",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Number of runner pods (the scale subresource: kubectl scale sets it). With "
        "autoscaling, the autoscaler sets it; the operator keeps it within minReplicas..maxReplicas.",
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Scale on live sessions between minReplicas and maxReplicas; unset: spec.replicas.",
        json_schema_extra={"x-kubernetes-validations": [AUTOSCALING_RULE]},
    )
    max_sessions_per_pod: int = _runner_field(
        "max_sessions_per_pod",
        description="Concurrent sessions per pod; the pod reports not-ready at this many. For an "
        f"assistant that takes calls, that many calls must fit the runner's memory limit ({base_mib(False)} "
        f"MiB plus {call_mib(False)} MiB a call; with smartTurn {base_mib(True)} MiB plus {call_mib(True)} "
        f"MiB a call; the base once per worker process, plus {SUPERVISOR_MIB} MiB with more than one): "
        "the operator refuses more.",
    )
    workers: int = _runner_field(
        "workers",
        description="Runner processes per pod, serving the one port; each is an event loop on a core "
        "of its own (a Python process uses one core). Set it to the pod's whole CPUs "
        "(resources.limits.cpu) for a pod of more than one core. They share maxSessionsPerPod and the "
        "metrics; each takes its own base memory and its share of limits.authFailuresPerMinute. One "
        "that dies stops the pod: the others drain, then the container restarts.",
    )
    max_call_seconds: int = _runner_field(
        "max_call_seconds", description="A voice call is ended after this many seconds."
    )
    task_timeout_seconds: float = _runner_field(
        "task_timeout_seconds", description="Time bound of one headless task (POST /v1/tasks), seconds."
    )
    resources: Resources | None = Field(
        default=None, description="Runner container resources; default: the operator's setting."
    )
    access: AccessSpec = Field(
        default_factory=AccessSpec,
        description="Who may use the assistant: bearer tokens, Twilio signatures, network peers. "
        "Default: nobody (set tokenSecretRef, twilio, or anonymous: true).",
    )
    limits: LimitsConfig = _runner_field(
        "limits",
        description="Bounds of each request: body size, messages, JSON depth, turn and call-start deadlines.",
    )
    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Runner container image override; default: the operator's runner image.",
    )

    @model_validator(mode="after")
    def _sessions_target(self) -> AIAssistantSpec:
        if self.autoscaling and self.autoscaling.target_sessions_per_pod > self.max_sessions_per_pod:
            raise ValueError(
                f"autoscaling.targetSessionsPerPod ({self.autoscaling.target_sessions_per_pod}) must be at "
                f"most maxSessionsPerPod ({self.max_sessions_per_pod}), where a pod stops taking sessions"
            )
        return self

    @property
    def desired_replicas(self) -> int:
        """The runner pods to run: spec.replicas, within the autoscaling range if there is one."""
        if self.autoscaling is None:
            return self.replicas
        return min(max(self.replicas, self.autoscaling.min_replicas), self.autoscaling.max_replicas)

    @property
    def min_replicas(self) -> int:
        """The fewest pods this assistant runs with: what a PodDisruptionBudget is for."""
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas

    @field_validator("engine_model")
    @classmethod
    def _engine_model_format(cls, value: str) -> str:
        split_engine_model(value)  # the registry's own words first ("Wrong LLM format: ...")
        for regex, message in ENGINE_MODEL_FORMAT:  # then exactly what the CRD's CEL rules check
            # RE2's `$` is the end of text; Python's also matches before a final newline.
            if not re.search(regex.removesuffix("$") + r"\Z" if regex.endswith("$") else regex, value):
                raise ValueError(message)
        return value

    def engine(self, registry: Registry) -> EngineModel:
        """The parsed engine model (the spec was validated with a registry: this does not fail)."""
        return registry.parse(self.engine_model)


class Condition(CamelModel):
    """One aspect of the assistant's state."""

    type: ConditionType = Field(description="Condition type.")
    status: ConditionStatus = Field(description="Condition status.")
    reason: str = Field(default="", max_length=1024, description="CamelCase reason of the last transition.")
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    last_transition_time: str | None = Field(
        default=None,
        description="When the status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed for."
    )


class AIAssistantStatus(CamelModel):
    """Observed state, written by the operator."""

    phase: Phase | None = Field(
        default=None,
        description="Pending (no runner pod ready yet, or a Secret missing), RollingOut (pods of an "
        "older spec still serve), Ready (every pod runs the current spec and is ready), Invalid "
        "(spec rejected), Degraded (fewer ready pods than replicas).",
    )
    engine_target: str | None = Field(default=None, description="LLM target of engineModel, e.g. grok.")
    engine_model_name: str | None = Field(default=None, description="Model of engineModel, e.g. grok-4.3.")
    endpoint: str | None = Field(default=None, description="In-cluster URL of the runner Service.")
    ready_replicas: int | None = Field(default=None, ge=0, description="Ready runner pods.")
    updated_replicas: int | None = Field(
        default=None, ge=0, description="Runner pods that run the current spec (the others are old)."
    )
    replicas: int | None = Field(
        default=None, ge=0, description="Runner pods, old and new (the scale subresource's status)."
    )
    selector: str | None = Field(
        default=None,
        description="Label selector of the runner pods (the scale subresource's, for autoscalers).",
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the operator last acted on."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="ModelValid, SecretResolved, KeysAccepted (the providers accepted the runner "
        "pods' keys at start; False with reason KeyRejected names the env var) and Ready.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


@dataclass(frozen=True)
class KeyUse:
    """One key the runner pod needs: the spec field naming its Secret, the provider, its env var."""

    field: str
    provider: str
    env: str
    ref: SecretRef | None


def key_uses(spec: AIAssistantSpec, registry: Registry) -> list[KeyUse]:
    """The keys of the engine, its fallbacks, then STT, then TTS (providers may share an env var)."""
    target = spec.engine(registry).target
    uses = [KeyUse("spec.secretRef", target.name, target.key_env, spec.secret_ref)]
    for i, fallback in enumerate(spec.fallbacks):
        fallback_target = registry.parse(fallback.engine_model, strict=False).target
        uses.append(
            KeyUse(
                f"spec.fallbacks[{i}].secretRef",
                fallback_target.name,
                fallback_key_env(i),
                fallback.secret_ref,
            )
        )
    if spec.stt:
        stt = stt_provider(spec.stt.type)
        uses.append(KeyUse("spec.stt.secretRef", stt.name, stt.key_env, spec.stt.secret_ref))
    if spec.tts:
        tts = tts_provider(spec.tts.type)
        uses.append(KeyUse("spec.tts.secretRef", tts.name, tts.key_env, spec.tts.secret_ref))
    return uses


def access_uses(spec: AIAssistantSpec) -> list[KeyUse]:
    """The access credentials the runner pod reads (explicit refs only: there are no defaults)."""
    uses = []
    if spec.access.token_secret_ref is not None:
        uses.append(
            KeyUse("spec.access.tokenSecretRef", "access", ACCESS_TOKENS_ENV, spec.access.token_secret_ref)
        )
    if spec.access.twilio is not None:
        ref = spec.access.twilio.auth_token_secret_ref
        uses.append(KeyUse("spec.access.twilio.authTokenSecretRef", "twilio", TWILIO_AUTH_TOKEN_ENV, ref))
    return uses


def _check_shared_keys(spec: AIAssistantSpec, registry: Registry) -> None:
    """Two explicit secretRefs feeding the same env var (openai engine + openai STT/TTS all use
    OPENAI_API_KEY) must agree: a pod has one OPENAI_API_KEY. An omitted one shares the other's."""
    seen: dict[str, tuple[str, SecretRef]] = {}
    for use in key_uses(spec, registry):
        field, env, ref = use.field, use.env, use.ref
        if ref is None:
            continue
        if env in seen and seen[env][1] != ref:
            first = seen[env][0]
            raise SpecError(
                f"{field}: {env} is already taken from {first} (Secret {seen[env][1].name!r}, key "
                f"{seen[env][1].key!r}); a pod has one {env}: use the same Secret key or omit {field}"
            )
        seen.setdefault(env, (field, ref))


def parse_spec(spec: Any, registry: Registry) -> AIAssistantSpec:
    """Validate an AIAssistant spec dict against the model and the engine registry (pass the
    operator's registry, extended with its extra models). Raises SpecError naming the field."""
    if not isinstance(spec, Mapping):
        raise SpecError("spec: must be an object with at least engineModel")
    try:
        parsed = AIAssistantSpec.model_validate(dict(spec))
    except ValidationError as err:
        raise SpecError(describe(err, "spec")) from None
    try:
        engine = registry.parse(parsed.engine_model)
    except EngineModelError as err:
        raise SpecError(f"spec.engineModel: {err}") from None
    effort_error = reasoning_effort_error(engine, parsed.reasoning_effort)
    if effort_error:
        raise SpecError(f"spec.reasoningEffort: {effort_error}")
    realtime = realtime_error(parsed.voice, engine.target.name, parsed.engine_model, parsed.stt or parsed.tts)
    if realtime:
        raise SpecError(f"spec.voice.mode: {realtime}")
    for i, fallback in enumerate(parsed.fallbacks):
        try:
            registry.parse(fallback.engine_model)
        except EngineModelError as err:
            raise SpecError(f"spec.fallbacks[{i}].engineModel: {err}") from None
    _check_shared_keys(parsed, registry)
    try:  # the runner's own cross-field rules (e.g. unique tool names) hold too
        to_runner_config("assistant", "default", parsed, registry)
    except ValidationError as err:
        raise SpecError(describe(err, "spec")) from None
    return parsed


def to_runner_config(
    name: str,
    namespace: str,
    spec: AIAssistantSpec,
    registry: Registry,
    *,
    allowed_http_hosts: tuple[str, ...] = (),
) -> RunnerConfig:
    """The runner's config for this assistant: the spec's AI fields, never a key.
    `allowed_http_hosts`: the operator's allow-list of http:// hosts (the runner checks again)."""
    data = spec.model_dump(
        by_alias=True,
        exclude_none=True,
        exclude={
            **dict.fromkeys(OPERATOR_ONLY_FIELDS, True),
            "stt": {"secret_ref"},
            "tts": {"secret_ref"},
            "fallbacks": {"__all__": {"secret_ref"}},
            "access": {"token_secret_ref", "twilio", "allow_from"},
        },
    )
    if allowed_http_hosts:
        data["allowedHttpHosts"] = sorted(allowed_http_hosts)
    models = [spec.engine_model, *(f.engine_model for f in spec.fallbacks)]
    for model in models:
        registry.parse(model)  # the operator's (possibly extended) registry allows it
    data["allowUnlistedModels"] = not all(BUILTIN.is_valid(m) for m in models)
    return RunnerConfig.model_validate({"name": name, "namespace": namespace, **data})
