# Two commands do all the set-up on a fresh machine (Linux x86-64, Python 3.11; a laptop CPU or an NVIDIA GPU node):
#   make run    create or refresh .venv, then run the pipeline on config/config.yaml
#   make test   create or refresh .venv, then run the test suite
#   make study  the study's own Tables 1 and 2 and its stories' scores, from its released data
# Extra arguments: make run ARGS="--configfile my.yaml"   make test PYTEST_ARGS="-k config"
# The environment follows the machine: requirements/gpu.lock (vLLM's CUDA build) where `nvidia-smi -L` lists a GPU,
# else requirements/cpu.lock (vLLM's CPU build); DEVICE=cpu or DEVICE=gpu chooses. The GPU tests: make test
# PYTEST_ARGS="-m gpu" (skipped, with their reason, where torch sees no CUDA GPU).

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEVICE ?= $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU' && echo gpu || echo cpu)
ifeq ($(filter $(DEVICE),cpu gpu),)
$(error DEVICE is '$(DEVICE)'; allowed: cpu, gpu)
endif
LOCK := requirements/$(DEVICE).lock

.PHONY: run test study setup browser tcmalloc clean-venv

# The config is checked first (the default one with any YAML file named in ARGS laid over it, as Snakemake does):
# a YAML syntax error is then named with its line, which Snakemake's own message leaves out.
run: setup
	$(BIN)/tempcreativity check-config config/config.yaml $(filter %.yaml %.yml,$(ARGS))
	$(BIN)/snakemake --profile profiles/local $(ARGS)

# The study's own data (resources/peeperkorn2024/): its Tables 1 and 2 from its released ratings beside the
# paper's values, and its 31 stories scored against its exemplar, perplexity and the model embedding included
# (teacher-forced through the embedded model, converted once by the pipeline's own rule).
study: setup
	$(BIN)/snakemake --profile profiles/local resources/models/smollm2-135m-instruct
	$(BIN)/tempcreativity study --out reports/peeperkorn2024 --model-dir resources/models/smollm2-135m-instruct

test: setup browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium, for the test that opens the report in a real browser: Debian's package, installed where
# this user may (root with apt-get); elsewhere that one test is skipped with its reason (and fails under CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: Debian's chromium is not installed: the report's browser test will be skipped"

setup: $(VENV)/.project-installed $(if $(filter cpu,$(DEVICE)),tcmalloc)

# tcmalloc, which the pipeline preloads into its jobs beside Intel OpenMP (from the lock file) because vLLM's CPU
# engine runs faster with both: Debian's package, installed where this user may; elsewhere the jobs go without it.
tcmalloc:
	@[ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ] || { [ "$$(id -u)" = 0 ] && \
		command -v apt-get >/dev/null 2>&1 && { apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq libtcmalloc-minimal4 >/dev/null; }; }; } || \
		echo "note: Debian's libtcmalloc-minimal4 is not installed: vLLM's CPU engine runs without tcmalloc"

# The pinned environment: rebuilt from scratch whenever the lock file changes or the other device's lock is asked for.
$(VENV)/.lock-installed-$(DEVICE): $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	touch $@

# The project itself (editable), reinstalled when its metadata changes.
$(VENV)/.project-installed: $(VENV)/.lock-installed-$(DEVICE) pyproject.toml
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import vllm, transformers, snakemake, polars; print('environment ready: vllm', vllm.__version__)"
	touch $@

clean-venv:
	rm -rf $(VENV)
