# Two commands do all set-up on a fresh machine:
#   make demo   - make the venv, install asdkit, run the main job (every system) on the embedded demo dataset
#   make test   - make the venv, install asdkit with its test tools and Ray, run every test and notebook (what CI runs)
# and a third is the contributor's lane after every change:
#   make test-fast - the library tests without the slow ones (no notebooks, no browser), on two workers
#   make lint      - ruff over the package, the tests and the benchmarks (make test runs it first)
# tests/test_browser.py drives JupyterLab in Debian's chromium (`make chromium` installs it with apt-get;
# without it the test is skipped, except under CI) through the playwright package of the test extra.
# No browser is ever downloaded: never run `playwright install`.
# TORCH selects the torch wheel: on a CPU-only machine whose pip finds the CPU wheel
# (as on the project's machines) torch==2.13.0 is that wheel; on a machine with a GPU,
# PyPI's torch==2.13.0 is the CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo lint test test-fast test-browser chromium bench bench-systems clean

$(BIN)/asdkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,ray]"
	touch $@

install: $(BIN)/asdkit

demo: install
	$(BIN)/asdkit demo --data data/demo --out runs/demo

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

# ruff's rules are in pyproject.toml ([tool.ruff]); `ruff check --fix` sorts the imports
lint: install
	$(BIN)/ruff check asdkit tests bench

# The library tests run on two pytest-xdist workers, each module on one worker (--dist loadscope) and each worker
# at one compute thread (two threads per process stall on 2 shared cores). The notebooks run after them, one at
# a time, at the thread count their saved outputs were made with, on their small path (asdkit.notebook_setup:
# ASDKIT_IN_TEST, as CI=true does).
XDIST := -n 2 --dist loadscope
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

test: install lint
	$(ONE_THREAD) $(BIN)/python -m pytest $(XDIST) tests
	ASDKIT_IN_TEST=1 $(BIN)/python -m pytest $(NBVAL) notebooks

test-fast: install
	$(ONE_THREAD) $(BIN)/python -m pytest $(XDIST) -m "not browser and not slow" tests

test-browser: install
	$(BIN)/python -m pytest -m browser tests/test_browser.py

# Debian's chromium, when no chromium is on the PATH (sudo only when not root)
chromium:
	@command -v chromium >/dev/null || { \
	    SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

bench: install
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_synth.py
	$(BIN)/python bench/bench_baseline.py --preset cpu
	$(BIN)/python bench/bench_oevae.py

# every system of `asdkit run` on the embedded paper dataset with the cpu preset (about 30 min on 2 cores)
bench-systems: install
	test -d data/paper || $(BIN)/asdkit synth data/paper --preset paper
	$(BIN)/python bench/bench_systems.py --data data/paper --preset cpu --out runs/all-paper-cpu

clean:
	rm -rf runs data/quick .asdkit_cache
