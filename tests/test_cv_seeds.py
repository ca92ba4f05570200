"""Patient-grouped cross-validation, the final protocol, seeds, and evaluation on another database."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgeecg.cli import main
from edgeecg.cv import choose_offsets, record_folds
from edgeecg.data import BeatSet
from edgeecg.errors import EdgeECGError
from synthetic import write_record

REPORT_KEYS = {"per_class", "macro_f1", "accuracy", "confusion", "labels"}

# The final protocol on the synthetic records: no val records, a fixed number of epochs.
FINAL = """
[split]
train = ["s1", "s2", "s3"]
val = []
test = ["s4"]
exclude = []

[model.params]
channels = [4, 4]
kernels = [5, 5]
hidden = 8
factorized = true

[train]
epochs = 2
batch_size = 32
schedule = "constant"
warmup_epochs = 1
ema_decay = 0.9
"""


@pytest.fixture
def final_toml(tmp_path) -> Path:
    path = tmp_path / "final.toml"
    path.write_text(FINAL)
    return path


def _beats(records, labels):
    n = len(records)
    return BeatSet(np.zeros((n, 1, 8), np.float32), np.zeros((n, 2), np.float32), np.array(labels),
                   np.array(records, dtype="U8"))


def test_folds_never_split_a_record_and_cover_every_record():
    rng = np.random.default_rng(0)
    records = [f"r{i}" for i in range(11) for _ in range(50)]
    labels = rng.choice(5, len(records), p=[0.8, 0.05, 0.1, 0.03, 0.02])
    beats = _beats(records, labels)
    folds = record_folds(beats, 5, seed=0)
    assert len(folds) == 5
    flat = [r for f in folds for r in f]
    assert sorted(flat) == sorted(set(records)) and len(flat) == len(set(flat))   # each record in one fold
    assert folds == record_folds(beats, 5, seed=0)                               # deterministic
    with pytest.raises(EdgeECGError, match="--folds 12"):
        record_folds(beats, 12, seed=0)


def test_offsets_move_a_threshold_to_the_better_macro_f1():
    y = np.array([0] * 80 + [1] * 20)
    proba = np.full((100, 5), 0.01)
    proba[:, 0] = 0.6
    proba[:80, 1] = 0.1
    proba[80:, 1] = 0.3        # S beats: S is likelier than for N beats, yet never the argmax
    offsets, rep = choose_offsets(proba, y)
    assert offsets[0] == offsets[3] == offsets[4] == 0.0 and 0.69 < offsets[1] <= 1.75
    assert rep["per_class"]["S"]["se"] == 100.0 and rep["per_class"]["S"]["ppv"] == 100.0


@pytest.mark.parametrize("rr_units", [0, 4])
def test_factorized_head_decides_n_versus_s_from_the_rr_features_alone(rr_units):
    """With ``rr_units`` the RR stream's second layer lives in the head: still beat-blind, still plain layers."""
    from edgeecg.config import DataConfig
    from edgeecg.export.fold import fold, forward
    from edgeecg.models import build_model
    from edgeecg.models.nets import plain

    data = DataConfig(rr_features=("pre_over_regular", "prev_over_regular", "irregularity"))
    torch.manual_seed(0)
    model = build_model("hybrid", data, factorized=True, logit_offsets=[0, 0.5, -0.25, 0, 0],
                        rr_units=rr_units).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x1, x2, rr = torch.randn(6, 2, 128), torch.randn(6, 2, 128), torch.rand(6, 3)
    with torch.no_grad():
        a, b = model(x1, rr), model(x2, rr)
        torch.testing.assert_close(a[:, 1] - a[:, 0], b[:, 1] - b[:, 0], rtol=0, atol=1e-5)  # S - N: beat-blind
        torch.testing.assert_close(model.ns_logit(rr), a[:, 1] - a[:, 0], rtol=0, atol=1e-5)  # and this function
        assert not torch.allclose(a[:, 2] - a[:, 0], b[:, 2] - b[:, 0])       # V - N: it does
        torch.testing.assert_close(plain(model)(x1, rr), a)                   # baked into plain layers
        if rr_units:                                   # the RR rows read the RR stream and nothing else
            w = plain(model).head[0].weight
            assert w.shape[0] == 16 + rr_units and not w[16:, :-8].any() and w[16:, -8:].all()
    np.testing.assert_allclose(forward(fold(model), x1.numpy(), rr.numpy()), a.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rhythm_to_v", [False, True])
def test_rhythm_to_v_gives_v_and_only_v_a_direct_weight_on_the_rhythm(rhythm_to_v):
    from edgeecg.config import DataConfig
    from edgeecg.models import build_model
    from edgeecg.models.nets import plain

    data = DataConfig(rr_features=("pre_over_regular", "prev_over_regular", "irregularity"))
    model = build_model("hybrid", data, factorized=True, rhythm_to_v=rhythm_to_v, hidden=16, rr_hidden=8)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    w = plain(model).head[-1].weight
    out = w[:, 16:]                                       # the output layer's weights on the copied RR units
    assert bool(out[2].any()) is rhythm_to_v              # V
    assert not out[3:].any()                              # F, Q: never
    assert torch.equal(w[0, :16], w[1, :16])              # N and S: the same weights on the morphology units
    assert not torch.equal(out[0], out[1])                # and their own on the rhythm, which decides S


def test_final_protocol_trains_all_epochs_without_val(synth_dir, final_toml, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--out", str(out), "--config",
                                    str(final_toml), "--quiet"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert "val" not in metrics and REPORT_KEYS <= set(metrics["test"])
    assert metrics["best_epoch"] == 2 and len(json.loads((out / "history.json").read_text())) == 2
    s4 = metrics["per_record"]["test"]["s4"]
    assert {"se", "ppv", "support", "predicted", "tp"} <= set(s4["S"]) and s4["V"]["support"] > 0
    assert (out / "plots" / "per_record_test.png").exists()
    res = CliRunner().invoke(main, ["evaluate", str(out)])
    assert res.exit_code == 0 and "matches" in res.output, res.output


def test_cv_writes_folds_pooled_and_chosen_epochs(synth_dir, final_toml, tmp_path):
    out = tmp_path / "cv"
    res = CliRunner().invoke(main, ["cv", "--data", str(synth_dir), "--config", str(final_toml), "--folds", "3",
                                    "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    cv = json.loads((out / "cv.json").read_text())
    assert [sorted(f["records"]) for f in sorted(cv["folds"], key=lambda f: f["records"])] == [["s1"], ["s2"], ["s3"]]
    assert all(REPORT_KEYS <= set(f["report"]) for f in cv["folds"]) and REPORT_KEYS <= set(cv["pooled"])
    assert cv["pooled"]["per_class"]["V"]["support"] == sum(f["report"]["per_class"]["V"]["support"]
                                                            for f in cv["folds"])
    assert 1 <= cv["chosen_epochs"] <= 2 and cv["config"]["train"]["epochs"] == cv["chosen_epochs"]
    assert len(cv["curve"]) == 2 and len(cv["logit_offsets"]) == 5 and set(cv["per_record"]) == {"s1", "s2", "s3"}
    assert {"cv.md", "oof.npz"} <= {p.name for p in out.iterdir()}
    q = cv["int8"]      # each fold's shipped int8 graph on its held-out records
    assert "integer reference" in q["kind"] and REPORT_KEYS <= set(q["pooled"]) and set(q["per_record"]) == set(cv["per_record"])
    assert q["pooled"]["per_class"]["V"]["support"] == cv["pooled"]["per_class"]["V"]["support"]
    assert set(q["vs_float"]["mitdb"]) == {"delta_macro_f1", "delta_S_se", "delta_V_se", "agreement_with_float"}
    assert q["vs_float"]["mitdb"]["agreement_with_float"] > 50.0 and "int8, pooled" in (out / "cv.md").read_text()
    assert [f["fold"] for f in q["folds"]] == [1, 2, 3]     # what each fold's shipped graph chose
    assert all({"offsets", "fixed", "broken", "z", "kept"} <= set(f["decision_offsets"]) for f in q["folds"])
    assert "Decision offsets kept in the int8 graphs" in (out / "cv.md").read_text()
    again = CliRunner().invoke(main, ["cv", "--data", str(synth_dir), "--config", str(final_toml), "--out", str(out)])
    assert again.exit_code != 0 and "already exists" in again.output


def test_seeds_writes_float_and_int8_spread(synth_dir, final_toml, tmp_path):
    from conftest import TARGET

    target = tmp_path / "roomy.toml"
    target.write_text(TARGET.format(name="roomy", flash=1 << 20))
    out = tmp_path / "seeds"
    res = CliRunner().invoke(main, ["seeds", "--data", str(synth_dir), "--config", str(final_toml), "--seeds", "0,1",
                                    "--target", str(target), "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "seeds.json").read_text())
    assert result["target"] == "roomy" and result["seeds"] == [0, 1] and result["config"]["train"]["epochs"] == 2
    for kind in ("float", "c_int8"):
        block = result[kind]
        assert len(block["per_seed"]) == 2 and all(REPORT_KEYS <= set(r) for r in block["per_seed"])
        for stat in ("mean", "sd", "worst"):
            assert set(block[stat]["per_class"]) == {"N", "S", "V", "F", "Q"}
        se = [r["per_class"]["V"]["se"] for r in block["per_seed"]]
        assert block["mean"]["per_class"]["V"]["se"] == pytest.approx(np.mean(se), abs=1e-3)
        assert block["worst"]["per_class"]["V"]["se"] == pytest.approx(min(se), abs=1e-3)
    assert set(result["per_record"]["c_int8"]) == {"s4"} and len(result["c_vs_float"]) == 2
    assert all(d["bit_exact_c_vs_reference"] for d in result["c_vs_float"])
    assert {"seeds.md", "per_record.png", "seed0", "seed1"} <= {p.name for p in out.iterdir()}
    assert "| S Se |" in (out / "seeds.md").read_text()


def test_seeds_quantize_each_seed_on_the_split_it_trained_on(synth_dir, final_toml, tmp_path, monkeypatch):
    """A beat-wise (random) split draws its beats by seed: each seed's model must be quantized and
    scored on the split it was trained on, not on one drawn with another seed."""
    import edgeecg.quantize
    import edgeecg.train
    from conftest import TARGET

    class Stop(Exception):
        pass

    trained, quantized = {}, {}
    real_train = edgeecg.train.train_model

    def train(cfg, splits, **kw):
        trained[cfg.train.seed] = splits
        return real_train(cfg, splits, **kw)

    def quantize(run_dir, cfg, model, target, data_dir, out, opts, force=False, log=print, splits=None):
        quantized[cfg.train.seed] = splits
        if len(quantized) == 2:
            raise Stop

    monkeypatch.setattr(edgeecg.train, "train_model", train)
    monkeypatch.setattr(edgeecg.quantize, "quantize_run", quantize)
    recipe = tmp_path / "random.toml"
    recipe.write_text(final_toml.read_text().replace("[split]\n", '[split]\nkind = "random"\n'))
    target = tmp_path / "roomy.toml"
    target.write_text(TARGET.format(name="roomy", flash=1 << 20))
    res = CliRunner().invoke(main, ["seeds", "--data", str(synth_dir), "--config", str(recipe), "--seeds", "0,1",
                                    "--target", str(target), "--out", str(tmp_path / "seeds")])
    assert isinstance(res.exception, Stop), res.output
    assert all(quantized[s] is trained[s] for s in (0, 1))
    assert not np.array_equal(trained[0]["test"].x, trained[1]["test"].x)     # the split did move
    assert not (tmp_path / "seeds").exists()


@pytest.fixture(scope="module")
def other_db(tmp_path_factory):
    """Another database: 250 Hz, leads named II and V1, one record without beat annotations."""
    d = tmp_path_factory.mktemp("otherdb")
    write_record(d, "x1", fs=250.0, sig_names=("II", "V1"), seed=5)
    write_record(d, "x2", fs=500.0, sig_names=("II", "V1"), seed=6)
    write_record(d, "norhythm", fs=250.0, sig_names=("II", "V1"), seed=7, symbols=["+", "~"])
    return d


@pytest.fixture(scope="module")
def small_run(synth_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("evalrun")
    (d / "final.toml").write_text(FINAL)
    res = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--out", str(d / "run"), "--config",
                                    str(d / "final.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    return d / "run"


@pytest.mark.parametrize("lead", ["II", "0"])
def test_evaluate_another_database_at_another_rate(small_run, other_db, tmp_path, lead):
    out = tmp_path / "eval"
    res = CliRunner().invoke(main, ["evaluate", str(small_run), "--data", str(other_db), "--records", "x1,x2",
                                    "--lead", lead, "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "evaluation.json").read_text())
    assert result["records"] == ["x1", "x2"] and result["lead"] == lead and result["fs"] == 180
    assert REPORT_KEYS <= set(result["report"]) and set(result["per_record"]) == {"x1", "x2"}
    # 80 beats per record minus the first: resampled from 250 and 500 Hz, every beat is kept
    assert result["beats"] == 2 * 79 == sum(result["report"]["per_class"][c]["support"] for c in "NSVFQ")


@pytest.mark.parametrize("args, message", [
    (["--records", "x9"], "record 'x9' not found"),
    (["--records", "x1", "--lead", "MLII"], "no lead 'MLII' (leads: II, V1)"),
    (["--records", "x1", "--lead", "5"], "no lead 5"),
    (["--records", "norhythm", "--lead", "II"], "norhythm.atr: no beat annotations"),
])
def test_evaluate_bad_input_is_one_line_and_writes_nothing(small_run, other_db, tmp_path, args, message):
    out = tmp_path / "eval"
    res = CliRunner().invoke(main, ["evaluate", str(small_run), "--data", str(other_db), "--out", str(out), *args])
    assert res.exit_code != 0 and message in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_seeds_collects_a_model_without_int8_as_float_only(tmp_path):
    """A recipe whose model has no int8 path (quantize wrote float formats only): seeds.json has
    ``c_int8: null`` with the reason, and the table and README rows use the float figures."""
    from edgeecg.metrics import classification_report, per_record_report
    from edgeecg.results import recipe_label
    from edgeecg.seeds import collect, seeds_markdown

    rng = np.random.default_rng(0)
    runs = []
    for seed in range(2):
        y = rng.integers(0, 4, 400)
        pred = np.where(rng.random(400) < 0.8, y, rng.integers(0, 4, 400))
        rec = np.repeat(np.array(["100", "101"]), 200)
        d = tmp_path / f"seed{seed}"
        (d / "export" / "esp32").mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"ds2": classification_report(y, pred),
                                                    "per_record": {"ds2": per_record_report(y, pred, rec)}}))
        (d / "export" / "esp32" / "report.json").write_text(json.dumps({"int8": False,
                                                                         "int8_unavailable": "has LSTM"}))
        runs.append(d)
    result = collect(runs, "esp32", "ds2")
    assert result["c_int8"] is None and result["int8_unavailable"] == "has LSTM"
    assert len(result["float"]["per_seed"]) == 2 and result["c_vs_float"] == []
    result.update({"seeds": [0, 1], "target": "esp32", "test_key": "ds2",
                   "config": {"model": {"name": "cnn_bilstm"}, "data": {"mode": "diagnostic"}}})
    table = seeds_markdown(result)
    assert "No int8 C for this model (has LSTM)" in table and "float model (PyTorch)" in table
    assert "generated C, int8" not in table
    assert recipe_label(result) == "cnn_bilstm, diagnostic, trained on DS1, float (no int8 path)"
    # seeds.json's scored sets: without int8 the bars are judged on float, and SVDB (here out of fold, without
    # int8 or hours either) gets its own bar, the test split the DS2 bar
    from edgeecg.seeds import BAR, SVDB_BAR, spread, with_scored
    result["held_out"] = {"svdb": {"report": spread([classification_report(y, pred)]), "false_alarms": None,
                                   "cv_seeds": [0], "epochs": [3], "int8": None}}
    keyed = with_scored(result)
    assert keyed["scored"] == ["ds2", "svdb"] and keyed["svdb"]["full_block"] == "held_out.svdb"
    assert keyed["float"] == result["float"] and with_scored(keyed) == keyed   # the full blocks stay; keying twice is once
    for name, bar in (("ds2", BAR), ("svdb", SVDB_BAR)):
        entry = keyed[name]
        assert entry["c_int8"] is None and entry["bars_scored_on"] == "float"
        assert {k: v["bar"] for k, v in entry["bars"].items()} == {f"{c}_{k}": v for (c, k), v in bar.items()}
    mean_s_se = result["float"]["mean"]["per_class"]["S"]["se"]
    assert keyed["ds2"]["bars"]["S_se"] == {"bar": 75.0, "mean": mean_s_se, "met": mean_s_se >= 75.0}
    assert keyed["ds2"]["float"]["worst"] == result["float"]["worst"]
    svdb = result["held_out"]["svdb"]
    for name, taken in (("float", "a key seeds.json keeps for itself"), ("ds2", "another scored set's")):
        result["held_out"] = {name: svdb}        # a database named like a key of seeds.json or the test split
        with pytest.raises(EdgeECGError, match=f"'{name}', {taken}"):
            with_scored(result)


def test_results_device_lines_come_from_stream_and_qrs_json():
    from edgeecg.results import device_lines

    report = {"macro_f1": 50.0, "per_class": {"S": {"se": 40.0}, "V": {"se": 90.0}}}
    stream = {"records": ["100", "232"], "samples": 1300000, "bit_exact_c_vs_python": True, "ds2": report,
              "ds2_reference_beats": report, "ram_bytes": 12589, "flash_bytes": 16570,
              "cpu_percent_at_clock": {"cortex_m4": {"clock_mhz": 240.0, "percent": 0.2793}}}
    qrs = {"tolerance_ms": 150, "gross": {"se": 99.9, "ppv": 99.8}, "records": {"100": {}, "101": {}},
           "peers": {"xqrs": {"gross": {"se": 99.2, "ppv": 99.6}}}}
    qrs_line, stream_line = device_lines([stream], [qrs])
    assert "(2 records) at 360 Hz" in qrs_line and "Se 99.900 %" in qrs_line and "xqrs 99.200 / 99.600" in qrs_line
    assert "1,300,000 samples: yes" in stream_line and "cortex_m4 0.28 %" in stream_line
    assert device_lines() == []
    # another rate: a detect run on SVDB at its own 128 Hz, a stream on records resampled to 250 Hz
    svdb = {**qrs, "data": "svdb", "adc_hz": [128.0], "resampled_to": None}
    at250 = {**stream, "ram_bytes": None, "adc": {"hz": 250.0, "records_resampled_to": 250},
             "qrs": {"gross": {"se": 99.9, "ppv": 99.8}}}
    svdb_line, line250 = device_lines([at250], [svdb])
    assert "svdb (2 records) at 128 Hz" in svdb_line
    assert "at 250 Hz (records resampled)" in line250 and "macro-F1 50.0" in line250 and "RAM" not in line250


def test_results_device_block_is_written_alone(tmp_path):
    """`edgeecg results --qrs DIR` rewrites the README's device block and leaves the results block alone."""
    from edgeecg.results import BEGIN, DEVICE_BEGIN, DEVICE_END, END

    qrs = {"tolerance_ms": 150, "gross": {"se": 99.9, "ppv": 99.8}, "records": {"100": {}}, "peers": {}}
    (tmp_path / "qrs").mkdir()
    (tmp_path / "qrs" / "qrs.json").write_text(json.dumps(qrs))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\naccuracy stays\n{END}\n\n{DEVICE_BEGIN}\nold line\n{DEVICE_END}\nend\n")
    res = CliRunner().invoke(main, ["results", "--qrs", str(tmp_path / "qrs"), "--readme", str(readme)])
    assert res.exit_code == 0, res.output
    text = readme.read_text()
    assert "accuracy stays" in text and "old line" not in text and "Se 99.900 %" in text and text.endswith("end\n")
    assert not (tmp_path / "docs").exists()
    res = CliRunner().invoke(main, ["results", "--cv", str(tmp_path), "--readme", str(readme)])
    assert res.exit_code != 0 and "--cv and --seeds together" in res.output


def test_the_worst_int8_difference_is_the_one_farthest_from_float_either_way():
    """The int8 bar is within 0.5 pp of float both ways: a seed whose int8 is 0.501 pp *above* float
    misses it, and the README's "worst seed" must show that seed, not the most negative one."""
    from edgeecg.seeds import worst_deltas
    deltas = [{"delta_macro_f1": -0.01, "delta_S_se": 0.2, "delta_V_se": -0.3},
              {"delta_macro_f1": 0.501, "delta_S_se": -0.1, "delta_V_se": 0.1}]
    assert worst_deltas(deltas) == {"delta_macro_f1": 0.501, "delta_S_se": 0.2, "delta_V_se": -0.3}


def test_a_difference_just_past_the_int8_bar_is_printed_past_it():
    from edgeecg.results import _pp
    assert (_pp(0.501), _pp(-0.2), _pp(0.5), _pp(-0.654)) == ("+0.501", "-0.20", "+0.50", "-0.65")
