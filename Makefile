# k8sbot developer commands. `make test` does all set-up itself: venv, cluster binaries, cluster.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install lint test test-fast test-hostile cluster-up cluster-down demo bench test-kind helm image clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite against the local cluster (built and started if needed), or against the cluster
# named by K8SBOT_TEST_KUBECONFIG. The multi-cluster tests' second cluster (k8sbot-second, or
# K8SBOT_TEST_SECOND_KUBECONFIG) is started by their fixture on first use (tests/conftest.py).
test: install
	@if [ -z "$$K8SBOT_TEST_KUBECONFIG" ]; then scripts/local-cluster up >/dev/null; fi
	$(BIN)/pytest

# Only the tests that need no cluster.
test-fast: install
	$(BIN)/pytest -m "not cluster"

# Only the hostile-input suite (docs/security.md): Slack requests, k8sbot ask, cluster objects, files.
test-hostile: install
	@if [ -z "$$K8SBOT_TEST_KUBECONFIG" ]; then scripts/local-cluster up >/dev/null; fi
	$(BIN)/pytest -m hostile

cluster-up:
	scripts/local-cluster up

# Stops the test clusters: k8sbot-dev and the multi-cluster tests' k8sbot-second.
cluster-down:
	scripts/local-cluster down
	K8SBOT_CLUSTER_NAME=k8sbot-second scripts/local-cluster down

# The local demo: cluster + demo workloads + Slack emulator + the bot, and a /k8s round trip.
demo: install
	$(BIN)/python scripts/demo.py

# helm from the Go module proxy into the binary cache, then deploy/rbac.yaml regenerated from the chart.
helm:
	scripts/build-helm
	scripts/gen-rbac

# The container image with podman (a Debian base made locally when no registry is reachable).
image:
	scripts/build-image

bench: install
	@ls bench/*.py

# For people with Docker: the same suite against a kind cluster. Tests that need kwok's scenario
# stages and log serving skip there. This cannot run on machines without a Docker engine.
test-kind: install
	kind create cluster --name k8sbot-test --kubeconfig .local/kind.kubeconfig
	K8SBOT_TEST_KUBECONFIG=$(CURDIR)/.local/kind.kubeconfig $(BIN)/pytest; rc=$$?; \
	  kind delete cluster --name k8sbot-test; exit $$rc

clean:
	scripts/local-cluster down || true
	K8SBOT_CLUSTER_NAME=k8sbot-second scripts/local-cluster down || true
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
