"""The Kaggle heartbeat CSVs: format checks with one-line errors, beat-wise training flagged leaky,
and the MIT-BIH model scored on beats of that format. The CSVs are written here."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeecg.data import kaggle
from edgeecg.evaluate import score_run_on_csv
from edgeecg.cli import main
from edgeecg.config import DataConfig, config_from_dict
from edgeecg.errors import EdgeECGError

TINY = """
[data]
dataset = "kaggle_csv"
fs = 125
segment = 192

[model]
name = "cnn"

[model.params]
channels = [4, 4]
kernels = [5, 5]
hidden = 8

[train]
epochs = 1
batch_size = 32
"""


def beats(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Kaggle-like rows: a beat from its R-peak, scaled to [0, 1], zero-padded; labels 0-4."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 5
    t = np.arange(kaggle.SAMPLES)
    x = np.zeros((n, kaggle.SAMPLES))
    for i in range(n):
        length = rng.integers(90, 160)
        width = 3 + 4 * (y[i] == 2)                      # V beats wide
        wave = np.exp(-0.5 * (t / width) ** 2) + 0.3 * np.exp(-0.5 * ((t - 0.6 * length) / 8) ** 2)
        x[i, :length] = (wave[:length] + 0.02 * rng.random(length)).clip(0, 1)
    return x, y


def write_csv(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    np.savetxt(path, np.column_stack([x, y.astype(float)]), delimiter=",", fmt="%.18e")
    return path


@pytest.fixture(scope="module")
def kaggle_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("kaggle")
    write_csv(d / kaggle.TRAIN_CSV, *beats(200, 0))
    write_csv(d / kaggle.TEST_CSV, *beats(60, 1))
    return d


def test_good_csv_reads_and_splits(kaggle_dir):
    x, y = kaggle.read_csv(kaggle_dir / kaggle.TRAIN_CSV)
    assert x.shape == (200, 187) and x.dtype == np.float32 and y.dtype == np.int64 and set(y) == set(range(5))
    cfg = config_from_dict({"data": {"dataset": "kaggle_csv", "fs": 125, "segment": 192}})
    splits = kaggle.make_splits(kaggle_dir, cfg)
    assert len(splits["train"]) + len(splits["val"]) == 200 and len(splits["test"]) == 60
    assert len(splits["val"]) == 20 and set(splits["val"].y) == set(range(5))     # stratified 10 %
    assert splits["train"].x.shape[1:] == (1, 192) and np.all(splits["train"].x[:, :, 187:] == 0)
    assert splits["train"].rr.shape == (180, 0)
    one = kaggle.make_splits(kaggle_dir / kaggle.TRAIN_CSV, cfg)           # one file: its sibling is the test set
    assert len(one["test"]) == 60


@pytest.mark.parametrize("mutate, message", [
    (lambda rows: rows.__setitem__(3, rows[3] + ",0.5"), "row 4: 189 values, expected 188"),
    (lambda rows: rows.__setitem__(5, ",".join(rows[5].split(",")[:-2]) + "," + rows[5].split(",")[-1]),
     "row 6: 187 values, expected 188"),
    (lambda rows: rows.__setitem__(2, rows[2].replace(",", ",abc,", 1).rsplit(",", 1)[0]),
     "row 3, column 2: non-numeric value 'abc'"),
    (lambda rows: rows.__setitem__(7, "nan," + rows[7].split(",", 1)[1]), "row 8, column 1: nan (NaN"),
    (lambda rows: rows.__setitem__(1, rows[1].rsplit(",", 1)[0] + ",5.0"), "row 2: label 5 is not one of 0-4"),
    (lambda rows: rows.__setitem__(4, rows[4].rsplit(",", 1)[0] + ",1.5"), "row 5: label 1.5 is not one of 0-4"),
    (lambda rows: rows.clear(), "no rows"),
])
def test_bad_csv_is_one_line_naming_file_and_row(tmp_path, mutate, message):
    path = write_csv(tmp_path / "bad.csv", *beats(10))
    rows = path.read_text().splitlines()
    mutate(rows)
    path.write_text("\n".join(rows) + ("\n" if rows else ""))
    with pytest.raises(EdgeECGError) as err:
        kaggle.read_csv(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_files_and_wrong_rate(tmp_path, kaggle_dir):
    with pytest.raises(EdgeECGError, match="no mitbih_test.csv"):
        (tmp_path / kaggle.TRAIN_CSV).write_text("")
        kaggle.csv_files(tmp_path)
    with pytest.raises(EdgeECGError, match="missing.csv: CSV file not found"):
        kaggle.read_csv(tmp_path / "missing.csv")
    cfg = config_from_dict({"data": {"dataset": "kaggle_csv"}})
    with pytest.raises(EdgeECGError, match="fs = 180: the Kaggle CSV beats are at 125 Hz"):
        kaggle.make_splits(kaggle_dir, cfg)


def test_cli_trains_on_the_csvs_flagged_leaky_and_rejects_a_bad_file(kaggle_dir, tmp_path):
    (tmp_path / "k.toml").write_text(TINY)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "k.toml"), "--data", str(kaggle_dir),
                                    "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"]["leaky"] is True and metrics["split"]["kind"] == "kaggle_csv"
    assert {"val", "test"} <= set(metrics) and metrics["test"]["per_class"]["V"]["support"] == 12
    assert set(json.loads((out / "manifest.json").read_text())["inputs"]) == {kaggle.TRAIN_CSV, kaggle.TEST_CSV}
    bad = tmp_path / "badset"
    bad.mkdir()
    write_csv(bad / kaggle.TRAIN_CSV, *beats(10))
    (bad / kaggle.TEST_CSV).write_text("1,2,3\n")
    res = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "k.toml"), "--data", str(bad),
                                    "--out", str(tmp_path / "r2")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert f"{bad / kaggle.TEST_CSV}: row 1: 3 values, expected 188" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_mitbih_model_scored_on_the_csv_format(synth_dir, kaggle_dir):
    """A MIT-BIH model gets what it expects: 180 Hz, the R-peak at `before`, z-scored, neutral RR."""
    import dataclasses

    from edgeecg.data import make_splits
    from edgeecg.train import train_model
    from test_train_cli import TINY as MITBIH

    import tomllib
    cfg = config_from_dict(tomllib.loads(MITBIH))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1))
    model = train_model(cfg, make_splits(synth_dir, cfg), progress=False).model
    raw, y = kaggle.read_csv(kaggle_dir / kaggle.TEST_CSV)
    x, rr = kaggle.mitbih_inputs(raw, cfg.data)
    assert x.shape == (60, cfg.data.channels, cfg.data.window) and rr.shape == (60, len(cfg.data.rr_features))
    np.testing.assert_allclose(x[:, 0].mean(axis=1), 0, atol=1e-5)           # z-scored like training beats
    np.testing.assert_allclose(x[:, 1], x[:, 0] - x[:, 0].mean(axis=0), atol=1e-5)   # the file's mean beat
    peak = x[:, 0].argmax(axis=1)
    assert np.median(np.abs(peak - cfg.data.before)) <= 3                     # R-peak where the model wants it
    result = score_run_on_csv(model, cfg, kaggle_dir)
    assert result["beats"] == 60 and result["leaky"] is True and "Not comparable" in result["comparability"]
    assert sum(result["report"]["per_class"][c]["support"] for c in "NSVFQ") == 60


def test_wfdb_records_written_in_the_csv_format(synth_dir, tmp_path):
    """records_to_csv: Kachuee et al.'s steps with the reference R-peaks; the result passes read_csv."""
    info = kaggle.records_to_csv(synth_dir, ["s1", "s4"], tmp_path / "fmt.csv")
    x, y = kaggle.read_csv(tmp_path / "fmt.csv")
    assert len(y) == info["beats"] > 100 and info["per_class"]["V"] == int(np.sum(y == 2)) > 0
    assert x.min() >= 0 and x.max() <= 1 and np.all(x[:, -20:] == 0)         # scaled, zero-padded
    assert np.all(x[:, 0] > 0.5)                                               # each row starts at its R-peak


@pytest.mark.parametrize("kw, message", [({"polarity": "template"}, "polarity is 'template'"),
                                         ({"scale": "patient"}, "scale is 'patient'")])
def test_csv_beats_refuse_what_needs_the_patient_s_earlier_beats(kw, message):
    data = dataclasses.replace(DataConfig(), **kw)
    with pytest.raises(EdgeECGError, match=message) as err:
        kaggle.mitbih_inputs(np.zeros((2, 187), np.float32), data)
    assert "\n" not in str(err.value)
