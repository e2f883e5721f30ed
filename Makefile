# Two commands do all setup: `make run` (the pipeline on the default data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# stage commands in dvc.yaml call `python`: make it the environment's
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-all env clean-env

run: $(VENV)/.installed
	dvc repro

# Two tiers (README "Tests"). Two workers: the end-to-end tests are mostly single-threaded small fits and
# process start-up; a test module stays on one worker (its fixtures are built once). A per-test timeout
# turns a hang into a failure with a name.
PYTEST := python -m pytest -q -n 2 --dist loadfile

# the fast tier: every route once on tiny data, the contracts and the leak checks
test: $(VENV)/.installed
	$(PYTEST) -m "not evidence and not system" --timeout 300

# the full tier (what CI runs): the fast tier plus the evidence on planted and noise data and the system
# tests (Ray, tracking servers, the browser, faults); the slowest tests' durations printed at the end
test-all: $(VENV)/.installed
	$(PYTEST) --timeout 1200 --durations 25

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade-strategy only-if-needed -c constraints.txt -e ".[dev]"
	touch $@

clean-env:
	rm -rf $(VENV)
