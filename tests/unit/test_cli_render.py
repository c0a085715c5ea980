"""`aiassistant-operator render` and the CLI's argument parsing (run/dev are dispatched lazily)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aiassistant_operator import __main__ as cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GROK = str(EXAMPLES / "grok-assistant.yaml")
INVALID = str(EXAMPLES / "invalid-assistant.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def test_grok_example_gets_its_key_from_the_named_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "-f", GROK)
    assert (code, err) == (0, "")
    docs = documents(out)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service", "NetworkPolicy"]
    deployment = docs[1]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "XAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "xai-key", "key": "api-key"}},
    } in env
    assert "# Source: " in out and "replace-me" not in out
    for doc in docs:
        kubernetes_validate.validate(doc, "1.35.0", strict=True)
        assert doc["metadata"]["namespace"] == "default"
        assert "ownerReferences" not in doc["metadata"]  # offline: no uid


def test_invalid_assistant_exits_1_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "-f", GROK, "-f", INVALID)
    assert code == 1
    assert out == ""  # nothing half-rendered
    assert (
        "invalid-assistant.yaml: AIAssistant default/broken-bot: spec.engineModel: Unknown model 'grok-99'"
        in err
    )


def test_directory_skips_secrets_and_renders_every_assistant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in (
        "xai-key-secret.yaml",
        "openai-key-secret.yaml",
        "grok-assistant.yaml",
        "voice-assistant.yaml",
    ):
        (tmp_path / name).write_text((EXAMPLES / name).read_text())
    code, out, _ = run(capsys, "render", "-f", str(tmp_path), "-n", "bots")
    assert code == 0
    kinds = [(d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in documents(out)]
    assert ("Secret", "xai-key", "bots") not in kinds
    assert ("Deployment", "support-bot-runner", "bots") in kinds
    assert ("PodDisruptionBudget", "voice-bot-runner", "bots") in kinds  # replicas: 2


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sys, "stdin", io.StringIO(Path(GROK).read_text().replace("name: support-bot", "name: piped"))
    )
    code, out, _ = run(capsys, "render", "-f", "-")
    assert code == 0
    assert "name: piped-runner" in out and "# Source: <stdin>" in out


def test_namespace_in_the_file_wins_over_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = yaml.safe_load(Path(GROK).read_text())
    doc["metadata"]["namespace"] = "own"
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    code, out, _ = run(capsys, "render", "-f", str(tmp_path / "a.yaml"), "-n", "flag")
    assert code == 0
    assert {d["metadata"]["namespace"] for d in documents(out)} == {"own"}


def test_operator_settings_come_from_the_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIASSISTANT_RUNNER_IMAGE", "registry.example/runner:7")
    monkeypatch.setenv("AIASSISTANT_EXTRA_MODELS", "grok.grok-99")
    code, out, _ = run(capsys, "render", "-f", INVALID)
    assert code == 0  # grok-99 allowed by the operator's settings
    assert "image: registry.example/runner:7" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a: [unclosed", "not valid YAML"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "no AIAssistant in"),
        (
            "apiVersion: aiassistant.dev/v2\nkind: AIAssistant\nmetadata: {name: x}\nspec: {engineModel: grok.grok-3}\n",
            "apiVersion 'aiassistant.dev/v2' is not aiassistant.dev/v1alpha1",
        ),
        (
            "apiVersion: aiassistant.dev/v1alpha1\nkind: AIAssistant\nmetadata: {}\nspec: {engineModel: grok.grok-3}\n",
            "metadata.name: required",
        ),
    ],
)
def test_bad_input_exits_1_with_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(content)
    code, out, err = run(capsys, "render", "-f", str(path))
    assert (code, out) == (1, "")
    assert err.startswith("aiassistant-operator render: ") and expected in err


def test_missing_file_and_bad_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "render", "-f", "/nonexistent/bot.yaml")
    assert code == 1 and "/nonexistent/bot.yaml: cannot read" in err
    monkeypatch.setenv("AIASSISTANT_RUNNER_IMAGE_PULL_POLICY", "Sometimes")
    code, _, err = run(capsys, "render", "-f", GROK)
    assert code == 1 and "AIASSISTANT_RUNNER_IMAGE_PULL_POLICY: 'Sometimes'" in err


# --- argument parsing and dispatch ----------------------------------------------------------------


def test_render_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["render"])
    assert exit_.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


def test_run_and_dev_options() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["run", "-n", "a", "--namespace", "b", "--liveness-port", "8081", "-v"])
    assert (args.command, args.namespaces, args.all_namespaces, args.liveness_port, args.verbose) == (
        "run",
        ["a", "b"],
        False,
        8081,
        True,
    )
    args = parser.parse_args(["run"])
    assert (args.namespaces, args.all_namespaces, args.liveness_port, args.verbose) == (
        None,
        False,
        None,
        False,
    )
    assert parser.parse_args(["run", "-A"]).all_namespaces is True
    # `dev` is the dev tools' plugin (entry point aiassistant_operator.commands), present here.
    args = parser.parse_args(["dev"])
    assert (args.examples, args.once, args.kubeconfig, args.no_runner) == (None, False, None, False)
    args = parser.parse_args(
        ["dev", "--examples", "examples", "--once", "--kubeconfig", "k.yaml", "--no-runner"]
    )
    assert (args.examples, args.once, args.kubeconfig, args.no_runner) == (
        Path("examples"),
        True,
        Path("k.yaml"),
        True,
    )
    assert args.plugin.__name__ == "aiassistant_devtools.dev"


@pytest.mark.parametrize(
    "argv",
    [["run", "-n", "a", "-A"], ["run", "--liveness-port", "http"], ["dev", "--port", "70000"], []],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err


def test_a_missing_command_module_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli._dispatch("nonexistent", cli.build_parser().parse_args(["run"]))
    assert code == 2
    assert "'nonexistent' is not available in this build" in capsys.readouterr().err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("render", "run", "dev"):
        assert f"    {command} " in out


def test_console_script_end_to_end() -> None:
    """The installed entry point, as a newcomer runs it (one subprocess: imports cost ~0.5 s)."""
    script = Path(sys.executable).parent / "aiassistant-operator"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "aiassistant_operator"]
    done = subprocess.run(
        [*argv, "render", "-f", GROK], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "name: XAI_API_KEY" in done.stdout
    done = subprocess.run(
        [*argv, "render", "-f", INVALID], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1 and "spec.engineModel" in done.stderr
