"""How many calls fit a runner pod's memory limit, from measured costs (benchmarks/voice.py, memory
section; the story in docs/performance.md). The operator refuses an assistant that takes calls whose
`maxSessionsPerPod` calls cannot fit its pod's memory limit (operator/aiassistant_operator/policy.py).

Measured on the runner process (RSS; Pipecat 1.14; pipeline calls on the loopback fakes, protobuf and
Twilio; 10, 25 and 50 concurrent calls, each answered and still talking; 2 shared cores):
- a runner with the voice stack loaded, after its first call: 167 MB;
- each further concurrent call: 0.97-1.12 MB, since the Silero VAD model and the TLS context of the
  HTTP clients are loaded once per process (runner/aiassistant_runner/vad.py, http_clients.py);
  before that, 13.3-15.8 MB;
- with `smartTurn`, Pipecat's smart-turn model, loaded once per process too, judging at most two
  turns at once (smart_turn.py): 42 MB more at start, then 89-136 MB more in all at 10-50 calls, not
  per call (the session's working memory and the allocator arenas of the threads it runs on);
  before: ~30 MB more per call, 2.5 GB at 50 calls.
The constants round those up: the base for the allocator's slack and the page cache of the
libraries; a call ~4x for what the benchmark does not exercise (a WebSocket speech provider's own
TLS context, ~0.8 MB per connection, which Pipecat's services take no way to share; a long call's
growing context and buffers). Realtime calls (no VAD, STT or TTS in the runner) are counted as
pipeline calls. Text conversations and tasks are one HTTP request each, tens of kB: not counted.
A runner of `workers` processes (runner/aiassistant_runner/workers.py) pays the base once in each,
plus its supervisor: measured 60 MB, and 13 MB for multiprocessing's resource tracker.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

MIB = 1 << 20
RUNNER_BASE_MIB = 200  # measured 167 MB
VOICE_CALL_MIB = 4  # measured 0.97-1.12 MB
SMART_TURN_BASE_MIB = 200  # with smartTurn, on top of RUNNER_BASE_MIB: measured 42 + 89-136 MB
SMART_TURN_CALL_MIB = 2  # with smartTurn, on top of VOICE_CALL_MIB: measured ~0
SUPERVISOR_MIB = 80  # with workers > 1: the supervisor and the resource tracker, measured 73 MB

_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)}
_DECIMAL.update({s: Decimal(10) ** (3 * (i + 1)) for i, s in enumerate("kMGTPE")})
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[KMGTPE]i)|[numkMGTPE]?|[eE][+-]?[0-9.]+)$"
)


def quantity_bytes(quantity: int | str) -> int:
    """A Kubernetes memory quantity (`1Gi`, `512Mi`, `1G`, `1e9`, 1073741824) in bytes (rounded up,
    as Kubernetes does). ValueError for anything else."""
    if isinstance(quantity, int):
        return quantity
    match = _QUANTITY.match(quantity.strip())
    if not match:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity (e.g. 512Mi, 1Gi)")
    number, suffix = Decimal(match.group(1)), match.group(2)
    if suffix in _BINARY:
        value = number * _BINARY[suffix]
    elif suffix in _DECIMAL:
        value = number * _DECIMAL[suffix]
    else:  # an exponent, e.g. 1e9
        value = number * Decimal(10) ** Decimal(suffix[1:])
    return math.ceil(value)


def base_mib(smart_turn: bool) -> int:
    """What a runner that takes calls is counted at before its first call, MiB."""
    return RUNNER_BASE_MIB + (SMART_TURN_BASE_MIB if smart_turn else 0)


def call_mib(smart_turn: bool) -> int:
    """What one concurrent call is counted at, MiB."""
    return VOICE_CALL_MIB + (SMART_TURN_CALL_MIB if smart_turn else 0)


def processes_mib(smart_turn: bool, workers: int = 1) -> int:
    """What a runner of `workers` processes is counted at before its first call, MiB."""
    return workers * base_mib(smart_turn) + (SUPERVISOR_MIB if workers > 1 else 0)


def calls_that_fit(memory_limit: int | str, smart_turn: bool, workers: int = 1) -> int:
    """How many concurrent calls a runner of `workers` processes with this memory limit holds
    (0: not even the bases)."""
    free = quantity_bytes(memory_limit) - processes_mib(smart_turn, workers) * MIB
    return max(0, free // (call_mib(smart_turn) * MIB))


def memory_needed_mib(calls: int, smart_turn: bool, workers: int = 1) -> int:
    """The memory limit `calls` concurrent calls need in a runner of `workers` processes, MiB."""
    return processes_mib(smart_turn, workers) + calls * call_mib(smart_turn)
