"""The routes the runner serves: one list for app.py's docstring readers, `aiassistant-runner --help`
and the test that checks it against the routes `create_app` registers (tests/runner/test_cli.py).

No import of the app here: `--help` prints it without loading FastAPI or Pipecat.
"""

from __future__ import annotations

# (method, path, what it is); "/playground" stands for the playground's routes under it.
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/healthz", "the process is alive"),
    ("GET", "/readyz", "503 while draining (SIGTERM) or at maxSessionsPerPod"),
    ("GET", "/metrics", "Prometheus text format"),
    ("POST", "/v1/chat/completions", "OpenAI-compatible text conversation (chat_completions.py)"),
    ("GET", "/v1/models", "the assistant's model ids, OpenAI-shaped (model_list.py)"),
    ("GET", "/v1/models/{model_id:path}", "one of them (an id may hold slashes), OpenAI-shaped"),
    ("POST", "/v1/tasks", "headless task with tools (tasks.py)"),
    ("WS", "/v1/calls/{serializer}", "voice call (voice_calls.py)"),
    ("GET", "/playground", "browser playground, if the assistant enables it (playground.py)"),
)


def endpoint_lines() -> list[str]:
    """ENDPOINTS as aligned lines: `GET  /healthz                  the process is alive`."""
    width = max(len(path) for _, path, _ in ENDPOINTS)
    return [f"{method:<5}{path:<{width + 2}}{what}" for method, path, what in ENDPOINTS]
