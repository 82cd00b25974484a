# Two commands do all set-up on a fresh machine:
#   make demo   - make the venv, install asdkit, run the main job on the embedded quick dataset
#   make test   - make the venv, install asdkit with its test tools, run every test and notebook
# TORCH selects the torch wheel: on a CPU-only machine whose pip finds the CPU wheel
# (as on the project's machines) torch==2.13.0 is that wheel; on a machine with a GPU,
# PyPI's torch==2.13.0 is the CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test bench clean

$(BIN)/asdkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/asdkit

demo: install
	$(BIN)/asdkit demo --data data/quick --out runs/demo

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_synth.py
	$(BIN)/python bench/bench_baseline.py --preset cpu

clean:
	rm -rf runs data/quick .asdkit_cache
