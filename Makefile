# Sluice: one Makefile for people and CI. `make test` is what .ci/run calls.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
EXTRAS ?= runtime,operator,dev,bench
INSTALLED := $(VENV)/.installed

.PHONY: install system-deps lint test test-unit test-runtime test-cluster test-e2e demo bench \
        bench-peers bench-instructions bench-operator bench-gpu generate clean

# Python environment: rebuilt when pyproject.toml changes.
install: $(INSTALLED)
$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

# Debian packages and tools outside PyPI that the tests run against (idempotent, cached).
system-deps:
	bash hack/system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile.*

test: install system-deps lint
	$(BIN)/pytest -q tests

test-unit: install
	$(BIN)/pytest -q tests/unit

test-runtime: install system-deps
	$(BIN)/pytest -q tests/runtime

test-cluster: install system-deps
	$(BIN)/pytest -q tests/cluster

# A local Kubernetes control plane for people; writes .cluster/kubeconfig (tests reuse it).
.PHONY: cluster-up cluster-down
cluster-up: install system-deps
	$(PY) -m tests.cluster.controlplane up

cluster-down:
	$(PY) -m tests.cluster.controlplane down

test-e2e: install system-deps
	$(BIN)/pytest -q tests/e2e

demo: install
	$(PY) -m examples.demo

bench: install system-deps bench-peers
	$(PY) -m bench

# Sluice against KServe and MLServer (bench/results/peers.md). The load generators come from
# hack/bench-tools.sh, kept out of `make test` (grpcload is a Go build).
bench-peers: install system-deps
	bash hack/bench-tools.sh
	$(PY) -m bench.peers_run

# Instructions per gRPC call under callgrind (bench/results/instructions.md): a figure that
# does not drift with the machine, for A/B of small changes. About 4 minutes.
bench-instructions: install system-deps
	bash hack/bench-tools.sh
	$(PY) -m bench.instructions

# The operator with 1,000 InferenceServices on a fresh local control plane with kwok nodes,
# after the control plane's own floor for the same objects with no operator (bench.operator_floor)
# (bench/results/operator_scale.md); about 7 minutes, so not part of `make bench`.
bench-operator: install system-deps
	$(PY) -m bench.operator_scale

# Sluice on a GPU against raw onnxruntime-gpu (bench/results/gpu.md); needs an NVIDIA GPU and
# the gpu extra, so it is never part of `make bench` or CI.
bench-gpu: install system-deps
	bash hack/bench-tools.sh
	$(PY) -m bench.gpu_run

# Committed generated code; unit tests fail when it is stale.
generate: install
	$(PY) hack/generate_grpc.py
	$(PY) -m sluice_operator.crd --write

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
