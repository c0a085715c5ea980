# Every target is idempotent. `make install` then `make test` set up and test a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install control-plane browser npm-clients test lint unit demo bench e2e e2e-tools images clean

install: $(BIN)/.installed control-plane browser npm-clients
$(BIN)/.installed: pyproject.toml scripts/install_kube_tools.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[runner,operator,dev]"
	$(BIN)/python scripts/install_kube_tools.py $(BIN)
	touch $@

# The local Kubernetes control plane the tests and `make demo` run on, built once from upstream Go
# modules into $(AIASSISTANT_KUBE_CACHE) (default ~/.cache/aiassistant-operator/kube); needs Go.
control-plane: $(BIN)/.installed
	$(BIN)/python -m aiassistant_devtools.build

# Debian's headless Chromium for the playground's browser tests (apt-get as root, e.g. in CI).
browser:
	scripts/install_chromium.sh

# The `openai` npm client the tests drive against a runner, pinned, into ~/.cache/aiassistant-operator/npm
# (AIASSISTANT_NPM_CACHE); a no-op when installed, a note when there is no node.
npm-clients:
	scripts/install_npm_clients.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# All tests: lint, unit, integration (on the local control plane), chart; e2e skips with its
# reason where Docker does not run.
test: lint
	$(BIN)/pytest -q -rs

unit: install
	$(BIN)/pytest -q tests/unit

# The main job: a local Kubernetes control plane + the operator + examples/, until Ctrl-C.
demo: install
	$(BIN)/aiassistant-operator dev --examples examples

bench: install
	$(BIN)/python benchmarks/llm_turn.py
	$(BIN)/python benchmarks/reconcile.py
	$(BIN)/python benchmarks/runner.py
	$(BIN)/python benchmarks/voice.py --only memory

e2e: install
	$(BIN)/pytest -q -rs -m e2e tests/e2e

# kind for `make e2e`: found on PATH, or built with `go install` when Go is there; else says how.
e2e-tools: install
	$(BIN)/python scripts/install_kube_tools.py $(BIN) --with-kind

# Tagged like the chart's appVersion, so `helm install` finds them with the default values.
IMAGE_TAG ?= 0.1.0
images:
	docker build -f operator/Dockerfile -t aiassistant-operator:$(IMAGE_TAG) .
	docker build -f runner/Dockerfile -t aiassistant-runner:$(IMAGE_TAG) .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
