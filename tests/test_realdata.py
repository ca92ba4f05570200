"""Checks on the real MIT-BIH Arrhythmia Database (../shared/data/mitdb); skipped where absent."""

import json

import numpy as np
from click.testing import CliRunner

from edgeecg.cli import main
from edgeecg.config import DS1, DS2, PACED, DataConfig
from edgeecg.io import list_records, rdann, rdrecord
from edgeecg.processing.aami import aami_labels, class_counts
from edgeecg.processing.filters import BiquadCascade, causal_filter, design_bandpass, initial_state, resample
from test_train_cli import RUN_FILES

PUBLISHED_AAMI_TOTALS = {"N": 90_631, "S": 2_781, "V": 7_236, "F": 803, "Q": 8_043}


def test_aami_counts_of_the_whole_database(mitdb):
    records = list_records(mitdb)
    assert len(records) == 48
    labels = np.concatenate([aami_labels(rdann(mitdb, r)[1]) for r in records])
    assert class_counts(labels) == PUBLISHED_AAMI_TOTALS


def test_de_chazal_split_is_patient_wise(mitdb):
    records = set(list_records(mitdb))
    assert set(DS1) <= records and set(DS2) <= records
    assert not set(DS1) & set(DS2)
    assert records - set(DS1) - set(DS2) >= set(PACED)


def test_causal_filter_matches_sample_by_sample_reference_on_record_100(mitdb):
    cfg = DataConfig()
    rec = rdrecord(mitdb, "100")
    x = resample(rec.signal, rec.fs, cfg.fs)[: 60 * cfg.fs]       # the first minute
    sos = design_bandpass(cfg.fs, cfg.band_hz, cfg.filter_order)
    cascade = BiquadCascade(sos, initial_state(sos, x[0]))
    reference = np.array([cascade.step(v) for v in x])
    np.testing.assert_allclose(causal_filter(x, sos), reference, rtol=0, atol=1e-12)


def test_two_record_training_smoke_run(mitdb, tmp_path):
    recipe = tmp_path / "smoke.toml"
    recipe.write_text('[split]\ntrain = ["106", "119"]\nval = ["208"]\ntest = ["100"]\n'
                      "[train]\nepochs = 3\npatience = 3\n")
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--data", str(mitdb), "--out", str(out),
                                    "--config", str(recipe), "--quiet"])
    assert res.exit_code == 0, res.output
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files == RUN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["per_class"]["N"]["support"] > 2000
    assert metrics["val"]["per_class"]["V"]["support"] > 900
