# edgeecg: `make demo` runs the main job, `make test` the test suite. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EDGEECG_DATA ?= ../shared/data/mitdb
RUN ?= runs/hybrid
CONFIG ?= training/hybrid.toml
SEED ?= 0

.PHONY: install demo train evaluate test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: install
	$(BIN)/edgeecg train --data $(EDGEECG_DATA) --out $(RUN) --config $(CONFIG) --seed $(SEED) --force

train: demo

evaluate: install
	$(BIN)/edgeecg evaluate $(RUN)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
