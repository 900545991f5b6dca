# Two commands do all the set-up on a fresh machine (Linux x86-64, Python 3.11, no GPU needed):
#   make run    create or refresh .venv, then run the pipeline on config/config.yaml
#   make test   create or refresh .venv, then run the test suite
# Extra arguments: make run ARGS="--configfile my.yaml"   make test PYTEST_ARGS="-k config"

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/cpu.lock

.PHONY: run test setup clean-venv

run: setup
	$(BIN)/snakemake --profile profiles/local $(ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(VENV)/.project-installed

# The pinned environment: rebuilt from scratch whenever the lock file changes.
$(VENV)/.lock-installed: $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	touch $@

# The project itself (editable), reinstalled when its metadata changes.
$(VENV)/.project-installed: $(VENV)/.lock-installed pyproject.toml
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import vllm, transformers, snakemake, polars; print('environment ready: vllm', vllm.__version__)"
	touch $@

clean-venv:
	rm -rf $(VENV)
