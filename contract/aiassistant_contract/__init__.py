"""aiassistant-contract: what the operator and the runner agree on, imported by both, importing neither.

- `engines`: the engine model registry (targets, model facts, `"<target>.<model>"` parsing);
- `speech`: the STT and TTS providers the runner serves, and how it builds each one's Pipecat service;
- `runner_config`: RunnerConfig, the JSON the operator renders into the ConfigMap and the runner
  validates at start, and the runner pod's env var names and port;
- `assistant`: the AIAssistant spec and status models (the CRD's source), their validation and the
  one spec -> RunnerConfig conversion (`parse_spec`, `to_runner_config`);
- `errors`: the one pydantic error formatter, SpecError, and the one missing-key error.

Pure: pydantic, PyYAML and the standard library only (no Pipecat, no kopf, no Kubernetes client), so
both images carry it.
"""

__version__ = "0.1.0"
