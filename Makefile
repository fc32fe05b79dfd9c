# Everything runs from the project virtualenv (.venv), which Pulumi uses too.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= local
ACTIONLINT_VERSION ?= v1.7.7

.PHONY: venv tools test unit integration lint scan bench validate plan local compose compose-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

## Docker Compose's own loader (compose-go), built from tools/compose-config where Go exists;
## the tests use it to read docker-compose.kafka.yml exactly as `docker compose` does.
tools: venv
	@if command -v go >/dev/null; then \
		$(MAKE) --no-print-directory $(VENV)/bin/compose-config; \
	else \
		echo "Go not found: the Compose-loader tests will be skipped."; \
	fi

$(VENV)/bin/compose-config: tools/compose-config/go.mod tools/compose-config/go.sum tools/compose-config/main.go | venv
	cd tools/compose-config && go build -o $(abspath $@) .

## The README's test command: unit tests, Pulumi mocks, and the real-broker integration tests.
test: tools
	$(PY) -m pytest

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

## The README's main job on a laptop: validate, start the local Kafka mirror, print each
## service's env. Without a Docker engine it stops after printing what it would start.
local: venv
	$(PY) -m infra validate
	$(PY) -m infra compose --check
	@if docker info >/dev/null 2>&1; then \
		docker compose -f docker-compose.kafka.yml up -d --wait; \
	else \
		echo "No Docker engine: skipping 'docker compose -f docker-compose.kafka.yml up -d'."; \
	fi
	$(PY) -m infra env --stack local --host

## 1,000 topics / 100 services: plan time, program time under mocks, ACL counts.
bench: venv
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
