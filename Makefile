# edgeecg: `make demo` runs the main job, `make test` the test suite. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EDGEECG_DATA ?= ../shared/data/mitdb
RUN ?= runs/hybrid
CONFIG ?= training/hybrid.toml
SEED ?= 0
TARGET ?= esp32

.PHONY: install demo train evaluate quantize seeds test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev,export]"
	touch $@

# The main job: train the default hybrid on DS1, print the val and DS2 tables.
demo: install
	$(BIN)/edgeecg train --data $(EDGEECG_DATA) --out $(RUN) --config $(CONFIG) --seed $(SEED) --force

train: demo

# int8 + every export format for a target; exits 1 if the target's budget is broken.
quantize: install
	$(BIN)/edgeecg quantize $(RUN) --target $(TARGET) --force

# Seed-to-seed spread of the default recipe (3 seeds), as reported in the README.
seeds: install
	for s in 0 1 2; do $(BIN)/edgeecg train --data $(EDGEECG_DATA) --out runs/hybrid-seed$$s \
	  --config $(CONFIG) --seed $$s --force --quiet || exit 1; done
	$(BIN)/python -m edgeecg.seeds runs/hybrid-seed0 runs/hybrid-seed1 runs/hybrid-seed2

evaluate: install
	$(BIN)/edgeecg evaluate $(RUN)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
