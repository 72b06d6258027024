# The two commands: `make run` (the service on its embedded defaults) and `make test` (the suite).
# Both create .venv and install what they need; nothing has to be installed by hand.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test bench lint format install install-dev clean proto chromium

run: $(RUNTIME_STAMP)
	$(BIN)/python -m flunq_events.launch

test: $(DEV_STAMP) chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The live page is tested in a real headless Chromium (Debian's package).
chromium:
	command -v chromium || (apt-get update && apt-get install -y chromium)

bench: $(DEV_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The gRPC stubs under grpc_api/generated/ are checked in; regenerate them after editing proto/.
proto: $(RUNTIME_STAMP)
	$(BIN)/python -m grpc_api.codegen

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(RUNTIME_STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
