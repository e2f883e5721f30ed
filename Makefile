# Two commands do all setup: `make run` (the pipeline on the default data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# stage commands in dvc.yaml call `python`: make it the environment's
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test env clean-env

run: $(VENV)/.installed
	dvc repro

# two workers: the end-to-end tests are mostly single-threaded small fits and process start-up, so two
# side by side finish in ~0.6 of the time; a test module stays on one worker (its fixtures are built once)
test: $(VENV)/.installed
	python -m pytest -q -n 2 --dist loadfile

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade-strategy only-if-needed -c constraints.txt -e ".[dev]"
	touch $@

clean-env:
	rm -rf $(VENV)
