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

.PHONY: install install-runtime demo train evaluate quantize bench cv cv-seeds seeds seeds-ds1 results results-device detect stream stream-svdb rates firmware test clean

# Everything: training, every export format, tests.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[train,export,viz,dev]"
	touch $@

# Only what running the exported artifacts needs (a Raspberry Pi): no torch, no tensorflow.
install-runtime:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[runtime]"

$(BIN)/edgeecg:
	$(MAKE) install-runtime

# The main job: train the default hybrid on DS1, export it for $(TARGET), bench every artifact on DS2.
# quantize checks the int8 loss on DS1 training beats and may report a budget failure; the
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

# Patient-grouped cross-validation of $(CONFIG) over its training pool (DS1 and its [[sources]], e.g.
# the shared SVDB records beside $(EDGEECG_DATA)), reported per database: where every recipe choice is made.
# Scored at the recipe's epoch count (10), as the pool-CV rows were; `--epochs 36` without
# `--at-last-epoch` instead draws the out-of-fold curve that chose that count.
cv: install
	$(BIN)/edgeecg cv --data $(EDGEECG_DATA) --config $(CONFIG) --folds 5 --seed 0 --epochs 10 --at-last-epoch \
	  --out runs/cv-hybrid --force --quiet

# The final protocol for 5 seeds, float and int8 C on DS2 (the README's results table). The other
# rows: make seeds CONFIG=training/hybrid_diagnostic.toml SEEDS_OUT=runs/seeds-diagnostic, and
# likewise training/cnn_bilstm.toml -> runs/seeds-cnn_bilstm, spectrogram_cnn.toml -> runs/seeds-spectrogram_cnn.
# Four more CV seeds of the default at its epoch count: the spread of its out-of-fold figures per database.
cv-seeds: install
	for n in 1 2 3 4; do $(BIN)/edgeecg cv --data $(EDGEECG_DATA) --config $(CONFIG) --epochs 10 --at-last-epoch \
	  --seed $$n --out runs/cv-hybrid-seed$$n --force --quiet || exit 1; done

# EXTERNAL=DIR also scores every seed on a database the recipe does not train on (`make seeds-ds1`).
# A recipe with [[sources]] (the default) needs its CV runs (`make cv cv-seeds` first) for the
# out-of-fold figures of the databases it trains on.
SEEDS_OUT ?= runs/seeds
EXTERNAL ?=
SEEDS_CV ?= $(foreach d,$(wildcard runs/cv-hybrid runs/cv-hybrid-seed*),--cv $(d))
seeds: install
	$(BIN)/edgeecg seeds --data $(EDGEECG_DATA) --config $(CONFIG) --seeds 0,1,2,3,4 --target $(TARGET) \
	  $(if $(EXTERNAL),--external $(EXTERNAL) --external-lead 0) $(SEEDS_CV) --out $(SEEDS_OUT) --force

# The literature's cross-database protocol: the DS1-only recipe's 5 seeds on DS2 and on the shared SVDB records.
SVDB ?= $(dir $(EDGEECG_DATA:%/=%))svdb
seeds-ds1:
	$(MAKE) seeds CONFIG=training/hybrid_ds1.toml SEEDS_OUT=runs/seeds-ds1 EXTERNAL=$(SVDB) SEEDS_CV=

# The README's results section, regenerated from runs/cv-hybrid/cv.json (and runs/cv-hybrid-seed*),
# runs/seeds/seeds.json and the other recipes' seeds.json (runs/seeds-ds1, ...) where they exist, and
# its device block from runs/stream* and runs/qrs* (`make results-device` writes that block alone).
results: | $(BIN)/edgeecg
	$(BIN)/edgeecg results --cv runs/cv-hybrid $(foreach d,$(wildcard runs/cv-hybrid-seed*),--cv-seed $(d)) --seeds runs/seeds \
	  $(if $(wildcard runs/seeds-diagnostic/seeds.json),--diagnostic runs/seeds-diagnostic) \
	  $(foreach d,$(wildcard runs/seeds-ds1 runs/seeds-cnn_bilstm runs/seeds-spectrogram_cnn),--other $(d)) \
	  $(foreach d,$(wildcard runs/stream runs/stream-250 runs/stream-500),--stream $(d)) \
	  $(foreach d,$(wildcard runs/qrs runs/qrs-svdb runs/qrs-250 runs/qrs-500),--qrs $(d)) \
	  --readme README.md --docs docs/results.md

# The README's device block alone (the detector and the stream), without the accuracy runs.
results-device: | $(BIN)/edgeecg
	$(BIN)/edgeecg results $(foreach d,$(wildcard runs/stream runs/stream-250 runs/stream-500),--stream $(d)) \
	  $(foreach d,$(wildcard runs/qrs runs/qrs-svdb runs/qrs-250 runs/qrs-500),--qrs $(d)) --readme README.md

# The device's QRS detector (EC57, beside wfdb's xqrs and gqrs) on MIT-BIH at 360 Hz, on the shared
# SVDB records at their own 128 Hz, and on MIT-BIH resampled to 250 and 500 Hz (stand-ins for the
# front ends sold at those rates); `make stream`: the generated stream C against its Python twin on
# DS2 end to end, at 360, 250 and 500 Hz (needs `make demo` or `make quantize` first).
SVDB_DATA ?= $(dir $(EDGEECG_DATA))svdb
detect: install
	$(BIN)/edgeecg detect --data $(EDGEECG_DATA) --out runs/qrs --force
	$(if $(wildcard $(SVDB_DATA)),$(BIN)/edgeecg detect --data $(SVDB_DATA) --out runs/qrs-svdb --force)
	$(BIN)/edgeecg detect --data $(EDGEECG_DATA) --adc-hz 250 --no-peers --out runs/qrs-250 --force
	$(BIN)/edgeecg detect --data $(EDGEECG_DATA) --adc-hz 500 --no-peers --out runs/qrs-500 --force

stream: install
	$(BIN)/edgeecg stream $(RUN) --target $(TARGET) --data $(EDGEECG_DATA) --out runs/stream --force
	$(BIN)/edgeecg stream $(RUN) --target $(TARGET) --data $(EDGEECG_DATA) --adc-hz 250 --no-cross --out runs/stream-250 --force
	$(BIN)/edgeecg stream $(RUN) --target $(TARGET) --data $(EDGEECG_DATA) --adc-hz 500 --no-cross --out runs/stream-500 --force

# The stream on the shared SVDB records at their own 128 Hz (C == twin on real 128 Hz records; the
# default recipe trains on these patients, so its classes here are not an unseen-patient figure).
stream-svdb: install
	$(BIN)/edgeecg stream $(RUN) --target $(TARGET) --data $(SVDB_DATA) --records $$(tr '\n' ',' < $(SVDB_DATA)/RECORDS | sed 's/,$$//') --lead 0 --no-cross --out runs/stream-svdb --force

# What each ADC rate costs (RAM, instructions per ECG second, anti-alias response): docs/front_ends.md.
rates: install
	$(BIN)/python benchmarks/front_end_rates.py --run $(RUN) --data $(EDGEECG_DATA)

# ESP-IDF, Arduino and Linux (Raspberry Pi) projects around the generated C.
firmware: install
	$(BIN)/edgeecg firmware $(RUN) --target $(TARGET) --out runs/firmware-$(TARGET) --force

evaluate: install
	$(BIN)/edgeecg evaluate $(RUN)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
