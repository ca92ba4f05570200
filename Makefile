# edgeecg: `make demo` runs the main job, `make test` the test suite. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EDGEECG_DATA ?= ../shared/data/mitdb
DATA_ARG = $(if $(wildcard $(EDGEECG_DATA)),--data $(EDGEECG_DATA))
RUN ?= runs/hybrid
CONFIG ?= training/hybrid.toml
SEED ?= 0
TARGET ?= esp32
BEATS ?= ds2
# `make bench` benches the most recently exported run for $(TARGET) (else $(RUN)).
LATEST = $(shell ls -td runs/*/export/$(TARGET) 2>/dev/null | head -n1 | xargs -r dirname | xargs -r dirname)
BENCH_RUN ?= $(or $(LATEST),$(RUN))

.PHONY: install install-runtime demo train evaluate quantize bench seeds test clean

# Everything: training, every export format, tests.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[train,export,dev]"
	touch $@

# Only what running the exported artifacts needs (a Raspberry Pi): no torch, no tensorflow.
install-runtime:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[runtime]"

$(BIN)/edgeecg:
	$(MAKE) install-runtime

# The main job: train the default hybrid on DS1, export it for $(TARGET), bench every artifact on DS2.
# quantize checks the int8 loss on the DS1 validation beats and may report a budget failure; the
# demo goes on to the bench, whose verdict on $(BEATS) beats is the exit status.
demo: install
	$(BIN)/edgeecg train --data $(EDGEECG_DATA) --out $(RUN) --config $(CONFIG) --seed $(SEED) --force
	-$(BIN)/edgeecg quantize $(RUN) --target $(TARGET) --force
	$(BIN)/edgeecg bench $(RUN) --target $(TARGET) --beats $(BEATS) --force

train: install
	$(BIN)/edgeecg train --data $(EDGEECG_DATA) --out $(RUN) --config $(CONFIG) --seed $(SEED) --force

# int8 + every export format for a target; exits 1 if the target's budget is broken.
quantize: install
	$(BIN)/edgeecg quantize $(RUN) --target $(TARGET) --force

# Trains nothing: every exported artifact of $(BENCH_RUN) on the same beats; exits 1 on a broken budget.
bench: | $(BIN)/edgeecg
	$(BIN)/edgeecg bench $(BENCH_RUN) --target $(TARGET) --beats $(BEATS) $(DATA_ARG) --force

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
