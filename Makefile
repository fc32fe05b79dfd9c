# Everything runs from the project virtualenv (.venv), which Pulumi uses too.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= local
ACTIONLINT_VERSION ?= v1.7.7
PULUMI_VERSION ?= v3.259.0
KAFKA_PLATFORM_CACHE ?= $(HOME)/.cache/kafka-platform
PULUMI_CLI := $(KAFKA_PLATFORM_CACHE)/pulumi-$(PULUMI_VERSION)/bin/pulumi
# The real engine the e2e tests drive: the CLI, the two provider plugins, the policy-pack shim and
# the release's own Python scripts (tools/engine/install-release-scripts).
ENGINE_ROOT := $(VENV)/engine
ENGINE_BIN := $(ENGINE_ROOT)/bin
PLUGINS := kafka random
# The Kubernetes half: the pulumi-kubernetes provider and a control plane (etcd, kube-apiserver,
# kube-controller-manager), all built from Go modules and cached by version and source hash.
K8S_PROVIDER_MODULE ?= v4.0.0-20260115033456-f47bc2d6f199
K8S_PROVIDER_VERSION ?= 4.25.0
KUBERNETES_VERSION ?= v1.35.4
K8S_PROVIDER := $(KAFKA_PLATFORM_CACHE)/kubernetes/provider-$(K8S_PROVIDER_MODULE)-$(shell \
	sha256sum tools/kubernetes/build-provider | cut -c1-12)/pulumi-resource-kubernetes
CONTROL_PLANE := $(KAFKA_PLATFORM_CACHE)/kubernetes/control-plane-$(KUBERNETES_VERSION)-$(shell \
	cat tools/kubernetes/build-control-plane tools/kubernetes/control-plane/go.mod \
	tools/kubernetes/control-plane/go.sum tools/kubernetes/control-plane/etcd/main.go | sha256sum | cut -c1-12)
CONTROL_PLANE_BINARIES := etcd kube-apiserver kube-controller-manager
plugin_hash = $(shell cat tools/pulumi-resource-$(1)/main.go tools/pulumi-resource-$(1)/go.mod \
	tools/pulumi-resource-$(1)/go.sum | sha256sum | cut -c1-16)
plugin_cache = $(KAFKA_PLATFORM_CACHE)/plugins/pulumi-resource-$(1)-$(call plugin_hash,$(1))

.PHONY: venv tools engine test unit integration e2e lint scan bench validate plan local local-down \
	local-reset compose compose-check clean kubernetes topicctl

# The client package (client/) is the services' side of the env contract: installed beside the
# project so its tests and lint see it; the project itself never imports it.
$(VENV)/.installed: pyproject.toml client/pyproject.toml
	@echo "Installing the project, its client and their dependencies into $(VENV) (once; a minute or two)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" -e "./client[redis,celery]"
	touch $@

venv: $(VENV)/.installed

## Docker Compose's own loader (compose-go), built from tools/compose-config where Go exists;
## the tests use it to read docker-compose.kafka.yml exactly as `docker compose` does. And
## Prometheus's promtool (tools/promtool), which checks and unit-tests the generated alert rules.
tools: venv
	@if command -v go >/dev/null; then \
		$(MAKE) --no-print-directory $(VENV)/bin/compose-config $(VENV)/bin/promtool; \
	else \
		echo "Go not found: the Compose-loader and promtool tests will be skipped."; \
	fi

PROMTOOL_CACHE := $(KAFKA_PLATFORM_CACHE)/promtool-$(shell cat tools/promtool/go.mod tools/promtool/go.sum \
	| sha256sum | cut -c1-16)/promtool

$(PROMTOOL_CACHE):
	mkdir -p $(dir $@)
	cd tools/promtool && go build -o $@.partial.$$$$ github.com/prometheus/prometheus/cmd/promtool \
		&& mv $@.partial.$$$$ $@

$(VENV)/bin/promtool: $(PROMTOOL_CACHE) | venv
	ln -sf $(PROMTOOL_CACHE) $@

$(VENV)/bin/compose-config: tools/compose-config/go.mod tools/compose-config/go.sum tools/compose-config/main.go | venv
	cd tools/compose-config && go build -o $(abspath $@) .

## The real Pulumi engine for the e2e tests (needs Go): the CLI built from its Go module, and the
## `kafka` and `random` provider plugins built from tools/ (the official ones cannot be had here),
## cached under $(KAFKA_PLATFORM_CACHE). The first build takes several minutes.
engine: venv $(PULUMI_CLI) $(foreach p,$(PLUGINS),$(call plugin_cache,$(p))/pulumi-resource-$(p))
	@mkdir -p $(ENGINE_BIN)
	ln -sf $(PULUMI_CLI) $(ENGINE_BIN)/pulumi
	$(foreach p,$(PLUGINS),ln -sf $(call plugin_cache,$(p))/pulumi-resource-$(p) $(ENGINE_BIN)/;)
	cp tools/engine/pulumi-analyzer-policy-python $(ENGINE_BIN)/
	tools/engine/install-release-scripts $(PULUMI_VERSION) $(ENGINE_ROOT)

## The Kubernetes half's real parts for tests/e2e/test_kubernetes_life_cycle.py: the
## pulumi-kubernetes provider plugin and a control plane, built from Go modules (tens of minutes
## cold on 2 cores), cached, and linked beside the engine.
kubernetes: engine $(K8S_PROVIDER) $(CONTROL_PLANE)/etcd
	ln -sf $(K8S_PROVIDER) $(ENGINE_BIN)/pulumi-resource-kubernetes
	$(foreach b,$(CONTROL_PLANE_BINARIES),ln -sf $(CONTROL_PLANE)/$(b) $(ENGINE_BIN)/;)

$(K8S_PROVIDER):
	tools/kubernetes/build-provider $(K8S_PROVIDER_MODULE) $(K8S_PROVIDER_VERSION) $@

# etcd is built last: its presence says the whole control plane is there.
$(CONTROL_PLANE)/etcd:
	tools/kubernetes/build-control-plane $(KUBERNETES_VERSION) $(CONTROL_PLANE)

$(PULUMI_CLI):
	tools/engine/build-pulumi-cli $(PULUMI_VERSION) $@

$(KAFKA_PLATFORM_CACHE)/plugins/pulumi-resource-%/pulumi-resource-kafka:
	cd tools/pulumi-resource-kafka && go build -o $@.partial.$$$$ . && mv $@.partial.$$$$ $@

$(KAFKA_PLATFORM_CACHE)/plugins/pulumi-resource-%/pulumi-resource-random:
	cd tools/pulumi-resource-random && go build -o $@.partial.$$$$ . && mv $@.partial.$$$$ $@

## The README's test command: unit tests, Pulumi mocks, the real-broker integration tests, and
## the real-engine tests when `make engine` has built the engine (they skip otherwise).
test: tools
	$(PY) -m pytest

## The real engine's life cycle on the real broker (docs/testing.md, "The real engine").
e2e: engine
	$(PY) -m pytest -m e2e

unit: tools
	$(PY) -m pytest -m "not integration"

integration: venv
	$(PY) -m pytest -m integration

lint: venv $(VENV)/bin/actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/actionlint

# actionlint's PyPI wrapper downloads a binary at build time; the Go module builds from source.
$(VENV)/bin/actionlint: | venv
	GOBIN=$(abspath $(VENV)/bin) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

## Secret scanning of every tracked file (detect-secrets; false positives carry an inline pragma).
scan: venv
	git ls-files -z | xargs -0 $(VENV)/bin/detect-secrets-hook  # pragma: allowlist secret

validate: venv
	$(PY) -m infra validate

plan: venv
	$(PY) -m infra plan --stack $(STACK)

compose: venv
	$(PY) -m infra compose

compose-check: venv
	$(PY) -m infra compose --check

## The local loop: validate, then start the local Kafka (docker-compose.kafka.yml, both profiles,
## with a Docker engine; else Apache Kafka from its jars with Java and Maven) or, when it runs,
## apply the plan to it; print each service's env. `make local-down` stops it and keeps its data,
## `make local-reset` also deletes the data.
local: venv
	$(PY) -m infra validate --stack $(STACK)
	$(PY) -m infra local up --stack $(STACK)
	$(PY) -m infra env --stack $(STACK) --host

local-down: venv
	$(PY) -m infra local down --stack $(STACK)

local-reset: venv
	$(PY) -m infra local reset --stack $(STACK)

## 1,000 topics / 100 services: plan time, program time under mocks, ACL counts; then, where
## `make engine` has built it, the real engine on the test broker against the AdminClient floor.
## The engine benchmark's peer, segmentio's topicctl, built from tools/topicctl (needs Go).
TOPICCTL_CACHE := $(KAFKA_PLATFORM_CACHE)/topicctl-$(shell cat tools/topicctl/go.mod tools/topicctl/go.sum \
	| sha256sum | cut -c1-16)/topicctl

$(TOPICCTL_CACHE):
	mkdir -p $(dir $@)
	cd tools/topicctl && go build -o $@.partial.$$$$ github.com/segmentio/topicctl/cmd/topicctl \
		&& mv $@.partial.$$$$ $@

$(VENV)/bin/topicctl: $(TOPICCTL_CACHE) | venv
	ln -sf $(TOPICCTL_CACHE) $@

topicctl: $(VENV)/bin/topicctl

bench: venv
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.lag
	@if command -v go >/dev/null; then $(MAKE) --no-print-directory topicctl; fi
	@if [ -x $(ENGINE_BIN)/pulumi ]; then $(PY) -m benchmarks.engine --parallel 8 64; \
	else echo "the real engine is not built: run \`make engine\` for its numbers"; fi

clean:
	@if [ -x $(PY) ]; then $(PY) -m infra local reset --runtime java; fi
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
