"""PTB-XL: labels as the benchmark aggregates them, the strat_fold split, multi-label training,
metrics, int8 export and bench, on a small synthetic PTB-XL folder written here (and the real
first 500 records where they are present)."""

import ast
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb
from click.testing import CliRunner

from conftest import TARGET
from edgeecg.cli import main
from edgeecg.config import config_from_dict
from edgeecg.errors import EdgeECGError
from edgeecg.data import ptbxl

REAL_PTBXL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptbxl-500"

STATEMENTS = [  # statement, diagnostic, diagnostic_class
    ("NORM", "1.0", "NORM"), ("IMI", "1.0", "MI"), ("NDT", "1.0", "STTC"), ("LAFB", "1.0", "CD"),
    ("LVH", "1.0", "HYP"), ("SR", "", ""), ("LVOLT", "", ""), ("PVC", "", "")]
# scp_codes of record i (cycled): likelihood 0 counts too; a rhythm/form-only record has no superclass
CODES = [{"NORM": 100.0, "SR": 0.0}, {"IMI": 50.0}, {"NDT": 100.0, "LVH": 0.0}, {"LAFB": 80.0, "IMI": 15.0},
         {"LVOLT": 0.0, "SR": 0.0}, {"NORM": 80.0}, {"LVH": 100.0}, {"NDT": 35.0, "NORM": 0.0}]
N_RECORDS = 40

TINY = """
[data]
dataset = "ptbxl"
fs = 100

[model]
name = "cnn"

[model.params]
channels = [4, 4, 4]
kernels = [5, 5, 5]
hidden = 8

[train]
epochs = 2
batch_size = 8
imbalance = "none"
stretch = 0.0
ema_decay = 0.0
"""


def write_ptbxl(d: Path, n: int = N_RECORDS) -> Path:
    """A PTB-XL-shaped folder: the two CSVs and ``n`` 12-lead 10 s records at 100 Hz."""
    with open(d / "scp_statements.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"])
        for code, diag, cls in STATEMENTS:
            w.writerow([code, code.lower(), diag, "", "", cls, cls])
    rng = np.random.default_rng(0)
    t = np.arange(1000) / 100
    with open(d / "ptbxl_database.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr"])
        for i in range(1, n + 1):
            codes = CODES[(i - 1) % len(CODES)]
            name = f"{i:05d}_lr"
            w.writerow([i, 1000 + i, repr(codes), (i - 1) % 10 + 1, f"records100/00000/{name}",
                        f"records500/00000/{i:05d}_hr"])
            beats = np.sin(2 * np.pi * 1.2 * t) ** 15 * (1.5 if "LVH" in codes else 1.0)
            sig = beats[:, None] * np.linspace(0.5, 1.5, 12)[None, :] + 0.02 * rng.standard_normal((1000, 12))
            out = d / "records100" / "00000"
            out.mkdir(parents=True, exist_ok=True)
            wfdb.wrsamp(name, fs=100, units=["mV"] * 12, sig_name=list(ptbxl.LEADS), p_signal=sig,
                        fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(out))
    return d


@pytest.fixture(scope="module")
def ptbxl_dir(tmp_path_factory) -> Path:
    return write_ptbxl(tmp_path_factory.mktemp("ptbxl"))


def test_labels_are_the_benchmarks_superclasses(ptbxl_dir):
    entries = ptbxl.read_labels(ptbxl_dir, 100)
    by_id = {e["ecg_id"]: e for e in entries}
    assert 5 not in by_id and 13 not in by_id                       # rhythm/form statements only: dropped
    assert by_id[1]["labels"] == {"NORM"}
    assert by_id[3]["labels"] == {"STTC", "HYP"}                    # LVH with likelihood 0 still counts
    assert by_id[4]["labels"] == {"CD", "MI"}
    assert by_id[8]["labels"] == {"STTC", "NORM"}
    assert by_id[10]["fold"] == 10 and by_id[10]["file"] == "records100/00000/00010_lr"
    np.testing.assert_array_equal(ptbxl.multi_hot({"MI", "HYP"}), [0, 1, 0, 0, 1])


def test_split_by_strat_fold_and_multi_hot_examples(ptbxl_dir):
    cfg = config_from_dict({"data": {"dataset": "ptbxl", "fs": 100, "segment": 1024}})
    splits = ptbxl.make_splits(ptbxl_dir, cfg)
    kept = N_RECORDS - N_RECORDS // len(CODES)
    assert sum(len(s) for s in splits.values()) == kept
    assert splits["train"].x.shape[1:] == (12, 1024) and splits["train"].rr.shape[1] == 0
    assert splits["test"].y.shape[1] == 5 and set(np.unique(splits["test"].y)) <= {0.0, 1.0}
    assert set(splits["test"].record) == {"00010", "00020", "00030", "00040"} - {"00005", "00013"}
    assert np.all(splits["train"].x[:, :, 1000:] == 0)                 # zero-padded past 10 s
    assert set(splits["val"].counts()) == set(ptbxl.SUPERCLASSES)
    bad = config_from_dict({"data": {"dataset": "ptbxl", "fs": 100}, "split": {"val_folds": [8, 9]}})
    with pytest.raises(EdgeECGError, match="train_folds and val_folds share fold"):
        ptbxl.make_splits(ptbxl_dir, bad)
    with pytest.raises(EdgeECGError, match="fs = 250"):
        ptbxl.read_labels(ptbxl_dir, 250)


def test_train_quantize_bench_end_to_end(ptbxl_dir, tmp_path):
    """`edgeecg train` with a PTB-XL recipe: multi-label metrics; int8 export and bench in AUC terms."""
    from edgeecg.bench import BenchOptions, bench_export
    from edgeecg.quantize import QuantizeOptions, quantize_run
    from edgeecg.run import load_run
    from edgeecg.targets import load_target

    (tmp_path / "tiny.toml").write_text(TINY)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "tiny.toml"), "--data", str(ptbxl_dir),
                                    "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "macro-AUC" in res.output and "NORM" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]["per_class"]) == set(ptbxl.SUPERCLASSES)
    assert {"auc", "ap", "se", "ppv", "f1", "threshold", "support"} <= set(metrics["test"]["per_class"]["MI"])
    assert metrics["test"]["macro_auc"] is None or 0 <= metrics["test"]["macro_auc"] <= 1
    assert metrics["thresholds"]["chosen_on"] == "val" and metrics["split"]["leaky"] is False
    assert "not comparable with the published" in metrics["caution"]
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"plots/roc_test.png", "plots/pr_val.png", "plots/training_curves.png", "manifest.json"} <= files
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"ptbxl_database.csv", "scp_statements.csv", "records100/00000/00010_lr.dat"} <= set(manifest["inputs"])

    (tmp_path / "roomy.toml").write_text(TARGET.format(name="roomy", flash=1 << 20).replace("65536", "1048576"))
    target = load_target(str(tmp_path / "roomy.toml"))
    cfg, model, _ = load_run(out)
    export = out / "export" / "roomy"
    report = quantize_run(out, cfg, model, target, ptbxl_dir, export, QuantizeOptions(calib_beats=40), log=lambda m: None)
    assert report["bit_exact_c_vs_reference"] is True and report["check_split"] == "val"
    row = report["accuracy"]["test"]["c_int8"]
    assert {"macro_auc", "delta_macro_auc", "per_class"} <= set(row) and "MI" in row["per_class"]
    assert report["stream"]["written"] is False
    assert "#define EDGEECG_WINDOW_BEFORE 0" in (export / "model_data.h").read_text()

    result = bench_export(out, cfg, export, target, ptbxl_dir, out / "bench", BenchOptions(repeat=5, warmup=1,
                          cross=False), log=lambda m: None)
    rows = {r["artifact"]: r for r in result["rows"]}
    assert result["multilabel"] is True and {"torch_fp32", "onnx_int8", "tflm", "c_int8"} <= set(rows)
    assert rows["torch_fp32"]["delta_macro_auc"] == 0 and "delta_macro_f1" not in rows["c_int8"]
    assert rows["tflm"]["bit_exact_vs_c"] is True
    assert "mAUC" in (out / "bench" / "bench.md").read_text()


def test_download_path_uses_wfdb(monkeypatch, tmp_path, ptbxl_dir):
    """Without --data the database comes from PhysioNet through wfdb (not run for real here)."""
    calls = []

    def dl_files(db, dest, files, **kw):
        calls.append(("files", db, tuple(files)))
        for name in files:
            (Path(dest) / name).write_bytes((ptbxl_dir / name).read_bytes())

    def dl_database(db, dest, records="all", annotators="all", **kw):
        calls.append(("database", db, len(records), annotators))

    monkeypatch.setattr(wfdb, "dl_files", dl_files)
    monkeypatch.setattr(wfdb, "dl_database", dl_database)
    monkeypatch.setenv("EDGEECG_PTBXL", str(tmp_path / "ptb-xl"))
    assert ptbxl.resolve_data_dir(None, 100) == tmp_path / "ptb-xl"
    assert calls[0] == ("files", "ptb-xl", ("ptbxl_database.csv", "scp_statements.csv"))
    assert calls[1] == ("database", "ptb-xl", N_RECORDS, None)

    def offline(*a, **kw):
        raise ConnectionError("offline")

    monkeypatch.setattr(wfdb, "dl_files", offline)
    monkeypatch.setenv("EDGEECG_PTBXL", str(tmp_path / "other"))
    with pytest.raises(EdgeECGError, match="cannot download ptb-xl from PhysioNet"):
        ptbxl.resolve_data_dir(None, 100)


@pytest.mark.realdata
def test_real_first_500_records_match_a_pandas_reimplementation():
    """The benchmark's own aggregation (pandas, ast.literal_eval), written out again here."""
    if not (REAL_PTBXL / "ptbxl_database.csv").exists():
        pytest.skip(f"PTB-XL subset not found at {REAL_PTBXL}")
    import pandas as pd

    Y = pd.read_csv(REAL_PTBXL / "ptbxl_database.csv", index_col="ecg_id")
    Y.scp_codes = Y.scp_codes.apply(ast.literal_eval)
    agg = pd.read_csv(REAL_PTBXL / "scp_statements.csv", index_col=0)
    agg = agg[agg.diagnostic == 1]
    expected = {i: {agg.loc[k].diagnostic_class for k in codes if k in agg.index} for i, codes in Y.scp_codes.items()}
    got = {e["ecg_id"]: e["labels"] for e in ptbxl.read_labels(REAL_PTBXL, 100)}
    assert got == {i: v for i, v in expected.items() if v}
    assert sum(1 for e in ptbxl.read_labels(REAL_PTBXL, 100) if e["fold"] == 10) == 64


def test_multilabel_report_by_hand():
    from edgeecg.metrics import choose_thresholds, format_table, multilabel_report, summarise_multilabel

    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=np.float32)
    s = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.4], [0.1, 0.5], [0.2, 0.1]])
    thr = choose_thresholds(y, s)
    assert thr[0] == 0.2 and thr[1] == 0.4            # best F1: all three positives of label 0 at 0.2
    r = multilabel_report(y, s, thr, ("A", "B"))
    assert r["per_class"]["A"]["auc"] == pytest.approx(5 / 6, abs=1e-4)      # 5 of 6 pairs ordered
    assert r["per_class"]["B"]["auc"] == pytest.approx(5 / 6, abs=1e-4)      # 0.4 < 0.5: one pair out of order
    assert r["per_class"]["B"]["f1"] == 80.0 and r["macro_auc"] == pytest.approx(5 / 6, abs=1e-4)
    assert r["per_class"]["A"]["se"] == 100.0 and r["per_class"]["A"]["support"] == 3
    row = summarise_multilabel(y, np.log(s / (1 - s)), ("A", "B"), reference=r)   # logits: same order, same AUC
    assert row["delta_macro_auc"] == 0.0 and row["delta_A_auc"] == 0.0
    assert "macro-AUC 0.8333" in format_table(r, "t")
