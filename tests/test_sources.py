"""Several databases in one recipe: MIT-BIH (``--data``) plus ``[[sources]]`` at another rate and lead.

Patients are (database, record) everywhere: the training pool, the CV folds, the caches, the reports;
each source is read at its own rate and lead and resampled to the model's rate; ``data info`` checks
every signal file of every source before it prints anything.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeecg.cli import main
from edgeecg.config import config_from_dict, config_to_dict, load_config
from edgeecg.cv import cv_pool
from edgeecg.data import database_of, load_pool, make_splits, record_of
from edgeecg.errors import EdgeECGError
from edgeecg.io import rdrecord
from edgeecg.metrics import false_alarms, per_record_report
from edgeecg.processing.beats import extract_beats
from edgeecg.seeds import RESULT_KEYS
from synthetic import write_record
from test_cv_seeds import FINAL

# The final protocol of test_cv_seeds plus a second database at another rate and lead, and a bounded epoch.
POOL = FINAL.replace("[model.params]", '[[sources]]\ndatabase = "otherdb"\nrecords = "all"\nlead = "ECG1"\n\n[model.params]')
POOL = POOL.replace("[train]\n", "[train]\nepoch_beats = 300\n")


@pytest.fixture(scope="module")
def two_databases(tmp_path_factory) -> Path:
    """``mitdb/`` (s1..s3 at 360 Hz, s4 at 250 Hz, MLII) and ``otherdb/`` beside it (o1..o4 at 128 Hz,
    leads ECG1 and ECG2, the second inverted and halved, as SVDB's are not MLII)."""
    root = tmp_path_factory.mktemp("databases")
    (root / "mitdb").mkdir()
    (root / "otherdb").mkdir()
    for i, name in enumerate(("s1", "s2", "s3")):
        write_record(root / "mitdb", name, seed=i)
    write_record(root / "mitdb", "s4", fs=250.0, seed=3)
    for i in range(4):
        write_record(root / "otherdb", f"o{i + 1}", fs=128.0, sig_names=("ECG1", "ECG2"), seed=10 + i)
    return root


@pytest.fixture
def pool_toml(tmp_path) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(POOL)
    return path


def test_sources_round_trip_through_the_run_config(pool_toml):
    cfg = load_config(pool_toml)
    assert [(s.database, s.records, s.lead) for s in cfg.sources] == [("otherdb", ("all",), "ECG1")]
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert "sources" not in config_to_dict(load_config(None))     # no empty array of tables


@pytest.mark.parametrize("table, message", [
    ({"sources": [{"database": "svdb", "leed": "0"}]}, "unknown key(s) leed"),
    ({"sources": [{"records": "all"}]}, "database must name a database"),
    ({"sources": [{"database": "mitdb"}]}, "mitdb is the primary source"),
    ({"sources": [{"database": "a"}, {"database": "a"}]}, "names a database twice"),
    ({"sources": {"database": "a"}}, "must be an array of tables"),
    ({"sources": [{"database": "a"}], "split": {"kind": "random"}}, "need [data] dataset"),
])
def test_bad_sources_are_one_clear_error(table, message):
    with pytest.raises(EdgeECGError, match=None) as err:
        config_from_dict(table, "r.toml")
    assert message in str(err.value) and str(err.value).startswith("r.toml")


def test_each_source_is_read_at_its_rate_and_lead_and_its_patients_are_named_by_database(two_databases, pool_toml):
    cfg = load_config(pool_toml)
    mitdb = two_databases / "mitdb"
    splits = make_splits(mitdb, cfg)
    train = set(splits["train"].record.tolist())
    assert train == {"s1", "s2", "s3", "otherdb/o1", "otherdb/o2", "otherdb/o3", "otherdb/o4"}
    assert set(splits["test"].record.tolist()) == {"s4"}
    assert {database_of(p) for p in train} == {"mitdb", "otherdb"} and record_of("otherdb/o2") == "o2"
    # otherdb/o1: 128 Hz, lead ECG1, resampled to 180 Hz exactly as a record read on its own
    m = splits["train"].record == "otherdb/o1"
    rec = rdrecord(two_databases / "otherdb", "o1", "ECG1")
    assert rec.fs == 128.0
    own = extract_beats(rec, cfg.data)
    np.testing.assert_array_equal(splits["train"].x[m], own.x)
    np.testing.assert_array_equal(splits["train"].rr[m], own.rr)
    # ECG2 gives other beats: the lead is the source's, not MIT-BIH's MLII
    ecg2 = extract_beats(rdrecord(two_databases / "otherdb", "o1", "ECG2"), cfg.data)
    assert not np.allclose(own.x, ecg2.x)
    # the RR features are in seconds at any rate: the premature beats' pre-RR is 0.65 of the regular one
    assert len(own.y) == 79 and np.all(np.abs(own.rr[own.y == 0, 0] - 1.0) < 0.2)


def test_a_source_not_beside_data_nor_downloadable_is_one_line(two_databases, tmp_path):
    cfg = config_from_dict({"sources": [{"database": "nodb", "path": str(tmp_path / "missing")}]})
    with pytest.raises(EdgeECGError, match="missing: data directory of source 'nodb' does not exist"):
        cv_pool(two_databases / "mitdb", cfg)


def test_cv_over_two_databases_folds_whole_patients_and_reports_each_database(two_databases, pool_toml, tmp_path):
    out = tmp_path / "cv"
    res = CliRunner().invoke(main, ["cv", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml),
                                    "--folds", "3", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    cv = json.loads((out / "cv.json").read_text())
    patients = [p for f in cv["folds"] for p in f["records"]]
    assert sorted(patients) == sorted(["s1", "s2", "s3", "otherdb/o1", "otherdb/o2", "otherdb/o3", "otherdb/o4"])
    assert len(patients) == len(set(patients))          # each patient in exactly one fold
    assert set(cv["per_database"]) == {"mitdb", "otherdb"}
    assert cv["per_database"]["otherdb"]["per_class"]["N"]["support"] + \
        cv["per_database"]["mitdb"]["per_class"]["N"]["support"] == cv["pooled"]["per_class"]["N"]["support"]
    fa = cv["false_alarms"]["otherdb"]
    assert set(fa["per_record"]) == {"otherdb/o1", "otherdb/o2", "otherdb/o3", "otherdb/o4"}
    assert {"median", "p90", "mean", "max", "worst_record"} <= set(fa["summary"])
    oof = np.load(out / "oof.npz")
    assert set(oof["record"].tolist()) == set(patients)
    assert "OTHERDB only" in (out / "cv.md").read_text()


def test_false_alarms_count_s_and_v_calls_of_other_classes_per_hour():
    y = np.array([0, 0, 1, 2, 0, 0, 0])
    pred = np.array([1, 2, 1, 2, 0, 1, 0])     # record a: one false S, one false V; b: one false S
    record = np.array(["a", "a", "a", "a", "b", "b", "b"])
    fa = false_alarms(per_record_report(y, pred, record), {"a": 0.5, "b": 2.0})
    assert fa["per_record"]["a"]["false_S"] == 1 and fa["per_record"]["a"]["false_V"] == 1
    assert fa["per_record"]["a"]["false_SV_per_hour"] == 4.0 and fa["per_record"]["b"]["false_SV_per_hour"] == 0.5
    assert fa["summary"]["max"] == 4.0 and fa["summary"]["worst_record"] == "a"
    assert fa["summary"]["median"] == pytest.approx(2.25)


@pytest.mark.parametrize("damage, message", [
    ("truncate", "o2.dat: truncated signal file"),
    ("no_annotations", "o2.atr: annotations missing"),
    ("bad_header", "o2.hea: corrupt header"),
])
def test_data_info_checks_every_file_of_every_source(two_databases, pool_toml, tmp_path, damage, message):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(two_databases, root)
    o2 = root / "otherdb" / "o2"
    if damage == "truncate":
        data = o2.with_suffix(".dat").read_bytes()
        o2.with_suffix(".dat").write_bytes(data[: len(data) // 2])
    elif damage == "no_annotations":
        o2.with_suffix(".atr").unlink()
    else:
        o2.with_suffix(".hea").write_text("this is not a header\n")
    res = CliRunner().invoke(main, ["data", "info", "--data", str(root / "mitdb"), "--config", str(pool_toml)])
    assert res.exit_code != 0 and message in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_data_info_lists_every_source(two_databases, pool_toml):
    res = CliRunner().invoke(main, ["data", "info", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml)])
    assert res.exit_code == 0, res.output
    assert "mitdb, 4 records" in res.output and "otherdb, 4 records" in res.output
    assert "patients otherdb/<record>" in res.output


def test_load_pool_caches_each_source_apart(two_databases, pool_toml):
    cfg = load_config(pool_toml)
    a = load_pool(two_databases / "mitdb", cfg, ["s1", "otherdb/o1"])
    b = load_pool(two_databases / "mitdb", cfg, ["s1", "otherdb/o1"])      # from the cache
    np.testing.assert_array_equal(a.x, b.x)
    assert a.record.tolist() == b.record.tolist()


@pytest.mark.parametrize("kind", ["reference", "c"])
def test_evaluate_scores_the_int8_graph_beside_float(exported, two_databases, tmp_path, kind):
    d, _ = exported
    out = tmp_path / "eval"
    res = CliRunner().invoke(main, ["evaluate", str(d / "run"), "--data", str(two_databases / "otherdb"),
                                    "--lead", "ECG1", "--target", "roomy", "--int8", kind, "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "evaluation.json").read_text())
    assert result["int8"]["kind"] == ("generated C" if kind == "c" else "integer reference")
    for block in (result, result["int8"]):
        assert set(block["per_record"]) == {"o1", "o2", "o3", "o4"}
        assert set(block["false_alarms"]["per_record"]) == {"o1", "o2", "o3", "o4"}
        assert sum(v["support"] for v in block["report"]["per_class"].values()) == result["beats"]
    assert set(result["int8"]["vs_float"]) == {"delta_macro_f1", "delta_S_se", "delta_V_se"}
    assert "int8" in res.output and "false S+V calls per hour" in res.output


def test_evaluate_int8_of_a_target_not_exported_is_one_line(exported, two_databases, tmp_path):
    d, _ = exported
    res = CliRunner().invoke(main, ["evaluate", str(d / "run"), "--data", str(two_databases / "otherdb"),
                                    "--lead", "0", "--target", "esp32", "--out", str(tmp_path / "e")])
    assert res.exit_code != 0 and "no int8 export for target 'esp32'" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "e").exists()


def test_seeds_score_an_external_database_and_false_alarms(two_databases, tmp_path):
    """A DS1-only recipe's seeds scored on another database too (the literature's cross-database
    figure), int8 beside float, with false S/V calls per hour for both sets."""
    from conftest import TARGET

    from edgeecg.results import svdb_lines

    recipe = tmp_path / "final.toml"
    recipe.write_text(FINAL)
    target = tmp_path / "roomy.toml"
    target.write_text(TARGET.format(name="roomy", flash=1 << 20))
    out = tmp_path / "seeds"
    res = CliRunner().invoke(main, ["seeds", "--data", str(two_databases / "mitdb"), "--config", str(recipe),
                                    "--seeds", "0,1", "--target", str(target), "--external",
                                    str(two_databases / "otherdb"), "--external-lead", "ECG1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "seeds.json").read_text())
    ext = result["external"]
    assert ext["database"] == "otherdb" and ext["lead"] == "ECG1" and ext["records"] == ["o1", "o2", "o3", "o4"]
    for kind in ("float", "int8"):
        assert len(ext[kind]["per_seed"]) == 2
        assert set(ext["false_alarms"][kind]["mean"]) == {"median", "p90", "mean", "max"}
    assert len(ext["int8_vs_float"]) == 2
    assert len(result["false_alarms"]["c_int8"]["per_seed"]) == 2       # DS2 (here s4) too
    assert "never trained on" in (out / "seeds.md").read_text()
    assert any("never trained on" in line for line in svdb_lines(result, {"pooled": result["float"]["mean"]}))
    key = result["test_key"]     # every scored set at the top level under its name, in one schema, listed in `scored`
    assert result["scored"] == [key, "otherdb"] and result["otherdb"]["protocol"].startswith("external")
    assert set(result) - set(result["scored"]) <= RESULT_KEYS       # no other top-level key a name could take
    scored = {name: result[name] for name in result["scored"]}
    for name, block in ((key, result["c_int8"]), ("otherdb", ext["int8"])):
        assert set(scored[name]) == set(scored[key])
        assert scored[name]["c_int8"]["worst"]["per_class"]["S"]["se"] == block["worst"]["per_class"]["S"]["se"]
        assert scored[name]["c_int8"]["mean"]["macro_f1"] == block["mean"]["macro_f1"]
    assert scored["otherdb"]["false_per_hour"]["int8"]["mean"] == ext["false_alarms"]["int8"]["mean"]
    bars = scored[key]["bars"]                     # the test split's bar, judged on the int8 mean
    assert bars["S_se"]["bar"] == 75.0 and bars["S_se"]["met"] == (result["c_int8"]["mean"]["per_class"]["S"]["se"] >= 75)
    assert bars["false_per_hour_median"]["met"] == (result["false_alarms"]["c_int8"]["mean"]["median"] <= 10)
    assert scored["otherdb"]["bars"].keys() == {"false_per_hour_median", "false_per_hour_p90"}  # no bar of its own


def test_seeds_refuse_an_external_database_the_recipe_trains_on(two_databases, pool_toml, tmp_path):
    res = CliRunner().invoke(main, ["seeds", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml),
                                    "--seeds", "0", "--external", str(two_databases / "otherdb"),
                                    "--out", str(tmp_path / "s")])
    assert res.exit_code != 0 and "the recipe trains on this database" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_record_fs_resamples_a_record_as_a_slower_front_end_would_have_seen_it(two_databases):
    """``[data] record_fs = 128``: MIT-BIH at SVDB's rate (signal and annotation grid), then 180 Hz."""
    from edgeecg.config import DataConfig
    from edgeecg.data.cache import cache_key
    from edgeecg.processing.beats import as_sampled_at

    rec = rdrecord(two_databases / "mitdb", "s1")
    slow = as_sampled_at(rec, 128)
    assert slow.fs == 128.0 and len(slow.signal) == pytest.approx(len(rec.signal) * 128 / 360, abs=1)
    np.testing.assert_array_equal(slow.ann_samples, np.round(rec.ann_samples * 128 / 360))
    native, at128 = extract_beats(rec, DataConfig()), extract_beats(rec, DataConfig(record_fs=128))
    assert native.x.shape == at128.x.shape and not np.allclose(native.x, at128.x)
    assert np.abs(native.x - at128.x).mean() < 0.2 * np.abs(native.x).mean()   # the same beats, band-limited
    # the new field leaves existing cache keys alone at its default, and enters them otherwise
    assert cache_key({}, DataConfig()) == cache_key({}, DataConfig(record_fs=0)) != cache_key({}, DataConfig(record_fs=128))


def test_a_second_lead_adds_its_beat_and_template_channels_in_every_source(two_databases, pool_toml):
    """``[data] second_lead = "other"``: each record's other lead (V1 beside MIT-BIH's MLII, ECG2 beside
    ECG1) gives channels 2-3, the first lead's beats stay channels 0-1, RR and labels are unchanged."""
    import dataclasses

    from edgeecg.data.cache import cache_key

    one = load_config(pool_toml)
    two = dataclasses.replace(one, data=dataclasses.replace(one.data, second_lead="other"))
    assert two.data.channels == 2 * one.data.channels == 4
    assert cache_key({}, one.data) != cache_key({}, two.data)
    splits = make_splits(two_databases / "mitdb", two)
    train = splits["train"]
    assert train.x.shape[1] == 4
    for folder, name, patient, first, other in (("mitdb", "s1", "s1", "MLII", "V1"),
                                                ("otherdb", "o1", "otherdb/o1", "ECG1", "ECG2")):
        m = train.record == patient
        own = extract_beats(rdrecord(two_databases / folder, name, first), one.data)
        second = extract_beats(rdrecord(two_databases / folder, name, other), one.data)
        np.testing.assert_array_equal(train.x[m][:, :2], own.x)
        np.testing.assert_array_equal(train.x[m][:, 2:], second.x)
        np.testing.assert_array_equal(train.rr[m], own.rr)
        np.testing.assert_array_equal(train.y[m], own.y)
    with pytest.raises(EdgeECGError, match="gives one"):       # a path that read one lead says so
        extract_beats(rdrecord(two_databases / "mitdb", "s1"), two.data)
    with pytest.raises(EdgeECGError, match="second_lead is for WFDB records"):
        config_from_dict({"data": {"dataset": "ptbxl", "second_lead": "other"}}, "r.toml")


def test_second_lead_other_needs_a_two_lead_record(tmp_path):
    from edgeecg.config import DataConfig
    from edgeecg.processing.beats import read_beats

    import wfdb

    write_record(tmp_path, "r1")
    with pytest.raises(EdgeECGError, match="r1.hea: no lead 'V5'"):
        read_beats(tmp_path, "r1", DataConfig(second_lead="V5"))
    assert read_beats(tmp_path, "r1", DataConfig(second_lead="V1")).x.shape[1] == 4
    two = wfdb.rdrecord(str(tmp_path / "r1"))
    three = np.column_stack([two.p_signal, two.p_signal[:, 0]])
    wfdb.wrsamp("r3", fs=two.fs, units=["mV"] * 3, sig_name=["MLII", "V1", "V5"], p_signal=three,
                fmt=["212"] * 3, adc_gain=[200.0] * 3, baseline=[0] * 3, write_dir=str(tmp_path))
    (tmp_path / "r3.atr").write_bytes((tmp_path / "r1.atr").read_bytes())
    with pytest.raises(EdgeECGError, match="r3.hea: second_lead = \"other\" needs a two-lead record"):
        read_beats(tmp_path, "r3", DataConfig(second_lead="other"))


def test_results_block_reports_each_database_and_the_svdb_bar():
    """The README block says which database every choice was made on, shows the SVDB figures (out of
    fold when the default trains on SVDB) against their bar, and false alarms per hour."""
    from edgeecg.metrics import classification_report
    from edgeecg.results import headline
    from edgeecg.seeds import spread

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    rep = classification_report(y, np.where(rng.random(300) < 0.8, y, 0))
    block = spread([rep, rep])
    alarms = {"median": 12.0, "p90": 80.0, "mean": 30.0, "max": 200.0}
    seeds = {"seeds": [0, 1], "target": "esp32", "command": "edgeecg seeds ...", "c_int8": block, "float": block,
             "c_vs_float": [{"delta_macro_f1": 0.0, "delta_S_se": 0.1, "delta_V_se": 0.0,
                             "bit_exact_c_vs_reference": True}] * 2,
             "false_alarms": {"c_int8": {"mean": alarms, "worst": alarms}}}
    cv = {"command": "edgeecg cv ...", "chosen_epochs": 10, "pooled": rep,
          "per_database": {"mitdb": rep, "svdb": rep},
          "false_alarms": {"svdb": {"summary": {**alarms, "records": 52, "worst_record": "svdb/867"}}}}
    text = headline(seeds, cv)
    assert "Cross-validation on DS1 + shared SVDB" in text and "never on DS2" in text
    assert "Shared SVDB records, out-of-fold" in text and "SVDB bar: S Se" in text
    assert "median 12.0, 90th percentile 80.0" in text and "NOT met" in text
    assert "DS1: S Se" in text and "SVDB: S Se" in text
    assert "(bar: within 0.5, every seed: met); C bit-exact" in text
    # with each fold's int8 graph scored (cv --int8, the default), the SVDB verdict is the int8 mean's
    worse = classification_report(y, np.where(rng.random(300) < 0.5, y, 0))
    cv["int8"] = {"per_database": {"mitdb": rep, "svdb": worse},
                  "false_alarms": {"svdb": {"summary": {**alarms, "median": 9.0, "records": 52, "worst_record": "svdb/867"}}},
                  "vs_float": {"svdb": {"delta_macro_f1": -0.75, "delta_S_se": 0.25, "delta_V_se": -0.1}}}
    text = headline(seeds, cv)
    table = text[text.index("Shared SVDB records, out-of-fold"):]
    assert "| **int8 (integer reference = C)** | " + f"{worse['per_class']['S']['se']:.1f} ± 0.0" in table
    assert "int8: median 9.0, 90th percentile 80.0" in table and "macro-F1 -0.75, S Se +0.25" in table
    assert "(bar: within 0.5, every seed: NOT met)." in table      # -0.75 pp of macro-F1 on one CV seed


def test_int8_checks_of_a_pool_run_on_its_mit_bih_training_beats():
    from edgeecg.data import BeatSet, check_split

    train = BeatSet(np.zeros((4, 2, 8), np.float32), np.zeros((4, 3), np.float32), np.array([0, 1, 2, 0]),
                    np.array(["101", "svdb/801", "svdb/802", "106"], dtype="U16"))
    key, check = check_split({"train": train, "val": train.subset(np.zeros(4, bool))})
    assert key == "ds1" and check.record.tolist() == ["101", "106"]


def test_cv_at_last_epoch_scores_the_recipe_as_it_is(two_databases, pool_toml, tmp_path, monkeypatch):
    """``--at-last-epoch``: the out-of-fold figures at the recipe's epoch count, not the curve's best
    (another CV seed of a recipe whose epoch count is fixed); the best epoch is otherwise chosen."""
    import edgeecg.cv

    monkeypatch.setattr(edgeecg.cv, "choose_epochs", lambda curve, schedule: 1)
    for flag, expected in (([], 1), (["--at-last-epoch"], 2)):
        out = tmp_path / f"cv{len(flag)}"
        res = CliRunner().invoke(main, ["cv", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml),
                                        "--folds", "2", "--seed", "3", "--out", str(out), "--quiet", *flag])
        assert res.exit_code == 0, res.output
        cv = json.loads((out / "cv.json").read_text())
        assert cv["chosen_epochs"] == expected and cv["seed"] == 3 and len(cv["curve"]) == 2


def test_a_pool_recipe_refuses_the_random_split(two_databases, pool_toml, tmp_path):
    res = CliRunner().invoke(main, ["train", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml),
                                    "--out", str(tmp_path / "r"), "--random-split"])
    assert res.exit_code != 0 and "patient-wise only" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_seeds_refuse_an_external_database_named_like_a_key_of_seeds_json(two_databases, tmp_path):
    """Every scored set stands at seeds.json's top level under its name: a database folder named like one of
    the file's own keys is one line before any training, and nothing is written."""
    import shutil

    recipe = tmp_path / "final.toml"
    recipe.write_text(FINAL)
    shutil.copytree(two_databases / "otherdb", tmp_path / "float")
    res = CliRunner().invoke(main, ["seeds", "--data", str(two_databases / "mitdb"), "--config", str(recipe),
                                    "--seeds", "0", "--external", str(tmp_path / "float"), "--out", str(tmp_path / "s")])
    assert res.exit_code != 0 and "a key seeds.json keeps for itself" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_seeds_of_a_pool_recipe_carry_its_out_of_fold_figures(two_databases, pool_toml, tmp_path):
    """The seeds train on every patient of a source, so they cannot be scored on it: seeds.json takes
    the source's out-of-fold figures from the recipe's `edgeecg cv` runs, and refuses without them."""
    from conftest import TARGET

    target = tmp_path / "roomy.toml"
    target.write_text(TARGET.format(name="roomy", flash=1 << 20))
    args = ["seeds", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml), "--seeds", "0",
            "--target", str(target)]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "no-cv")])
    assert res.exit_code != 0 and "--cv DIR" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "no-cv").exists()
    cv = tmp_path / "cv"
    res = CliRunner().invoke(main, ["cv", "--data", str(two_databases / "mitdb"), "--config", str(pool_toml),
                                    "--folds", "2", "--out", str(cv), "--quiet"])
    assert res.exit_code == 0, res.output
    written = json.loads((cv / "cv.json").read_text())      # a run from before a key existed still matches
    del written["config"]["sources"][0]["other_lead_mode"]
    (cv / "cv.json").write_text(json.dumps(written))
    res = CliRunner().invoke(main, [*args, "--cv", str(cv), "--out", str(tmp_path / "seeds")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "seeds" / "seeds.json").read_text())
    held = result["held_out"]["otherdb"]
    oof = json.loads((cv / "cv.json").read_text())["per_database"]["otherdb"]
    assert held["cv_seeds"] == [0] and held["report"]["mean"]["per_class"]["S"]["se"] == oof["per_class"]["S"]["se"]
    int8 = json.loads((cv / "cv.json").read_text())["int8"]["per_database"]["otherdb"]
    assert held["int8"]["report"]["mean"]["per_class"]["V"]["se"] == int8["per_class"]["V"]["se"]
    assert result["scored"] == [result["test_key"], "otherdb"] and set(result) - set(result["scored"]) <= RESULT_KEYS
    scored = result["otherdb"]                      # the same figures under the schema every scored set shares
    assert scored["protocol"].startswith("out of fold") and scored["full_block"] == "held_out.otherdb"
    assert scored["c_int8"]["mean"]["per_class"]["V"]["se"] == int8["per_class"]["V"]["se"]
    assert scored["float"]["mean"]["per_class"]["S"]["se"] == oof["per_class"]["S"]["se"]
    assert scored["bars_scored_on"] == "int8"
    md = (tmp_path / "seeds" / "seeds.md").read_text()
    assert "otherdb, out of fold" in md and "| int8 (each fold's graph; integer reference = C) |" in md
    other = tmp_path / "other.toml"                # a cv.json of another recipe is refused
    other.write_text(POOL.replace("hidden = 8", "hidden = 6"))
    res = CliRunner().invoke(main, ["seeds", "--data", str(two_databases / "mitdb"), "--config", str(other),
                                    "--seeds", "0", "--target", str(target), "--cv", str(cv), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "cross-validated another recipe" in res.output
    other.write_text(POOL.replace("[train]\n", "[train]\nimbalance_power = 0.35\n"))   # [train] is the recipe too
    res = CliRunner().invoke(main, ["seeds", "--data", str(two_databases / "mitdb"), "--config", str(other),
                                    "--seeds", "0", "--target", str(target), "--cv", str(cv), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "cross-validated another recipe" in res.output


def _cv_training_sets(monkeypatch, data, recipe, out, *flags) -> list:
    """Run ``edgeecg cv`` (3 folds) and return the training beats each fold's model was given."""
    import edgeecg.train

    seen = []
    real = edgeecg.train.train_model
    monkeypatch.setattr(edgeecg.train, "train_model",
                        lambda c, splits, **kw: seen.append(splits["train"]) or real(c, splits, **kw))
    res = CliRunner().invoke(main, ["cv", "--data", str(data), "--config", str(recipe), "--folds", "3",
                                    "--out", str(out), "--quiet", *flags])
    assert res.exit_code == 0, res.output
    return seen


def test_a_sources_other_lead_trains_its_patients_but_is_never_scored(two_databases, pool_toml, tmp_path, monkeypatch):
    """``train_other_lead = true``: training adds each of the source's patients' other lead (ECG2 beside
    ECG1) as one-lead beats of the same patient; MIT-BIH and the scored sets are untouched, and a CV fold
    that holds a patient out trains on neither of its leads."""
    import edgeecg.cv

    cfg = load_config(pool_toml)
    aug_toml = tmp_path / "aug.toml"
    aug_toml.write_text(pool_toml.read_text().replace('lead = "ECG1"\n', 'lead = "ECG1"\ntrain_other_lead = true\n'))
    aug = load_config(aug_toml)
    assert aug.sources[0].train_other_lead and config_from_dict(config_to_dict(aug)) == aug
    res = CliRunner().invoke(main, ["data", "info", "--data", str(two_databases / "mitdb"), "--config", str(aug_toml)])
    assert res.exit_code == 0 and "each with its other lead for training only" in res.output, res.output
    plain, more = make_splits(two_databases / "mitdb", cfg), make_splits(two_databases / "mitdb", aug)
    for name in ("val", "test"):
        np.testing.assert_array_equal(plain[name].x, more[name].x)
    for patient, folder, name in (("s1", "mitdb", "s1"), ("otherdb/o1", "otherdb", "o1")):
        m = more["train"].record == patient
        own = extract_beats(rdrecord(two_databases / folder, name, "MLII" if folder == "mitdb" else "ECG1"), cfg.data)
        if folder == "mitdb":
            np.testing.assert_array_equal(more["train"].x[m], own.x)      # MIT-BIH: its one lead, once
            continue
        ecg2 = extract_beats(rdrecord(two_databases / folder, name, "ECG2"), cfg.data)
        np.testing.assert_array_equal(more["train"].x[m], np.concatenate([own.x, ecg2.x]))
        np.testing.assert_array_equal(more["train"].y[m], np.concatenate([own.y, ecg2.y]))

    out = tmp_path / "cv"
    seen = _cv_training_sets(monkeypatch, two_databases / "mitdb", aug_toml, out)
    cv = json.loads((out / "cv.json").read_text())
    assert len(seen) == 3
    for fold, train in zip(cv["folds"], seen):
        assert not set(fold["records"]) & set(train.record.tolist())
        for patient in set(train.record.tolist()):     # as many beats as make_splits trains on (otherdb: both leads)
            n = (more["train"].record == patient).sum()
            assert (train.record == patient).sum() == n
    scored = load_pool(two_databases / "mitdb", cfg, edgeecg.cv.cv_pool(two_databases / "mitdb", cfg))
    assert len(np.load(out / "oof.npz")["y"]) == len(scored)       # the other lead is never scored
    with pytest.raises(EdgeECGError, match="second_lead already reads both leads"):
        config_from_dict({"data": {"second_lead": "other"},
                          "sources": [{"database": "svdb", "train_other_lead": True}]}, "r.toml")


def test_swap_reads_half_of_a_sources_training_beats_from_its_other_lead(two_databases, pool_toml, tmp_path,
                                                                         monkeypatch):
    """``other_lead_mode = "swap"``: a fixed half of each of the source's patients' training beats takes its
    window from the other lead (ECG2), the same beats, labels and RR features; MIT-BIH, the scored sets and
    the pool's size are untouched, and a CV fold trains on the swapped beats of the patients it keeps."""
    import edgeecg.cv
    import edgeecg.train
    from edgeecg.data.cache import swap_half

    cfg = load_config(pool_toml)
    swap_toml = tmp_path / "swap.toml"
    swap_toml.write_text(pool_toml.read_text().replace(
        'lead = "ECG1"\n', 'lead = "ECG1"\ntrain_other_lead = true\nother_lead_mode = "swap"\n'))
    swap = load_config(swap_toml)
    assert swap.sources[0].other_lead_mode == "swap" and config_from_dict(config_to_dict(swap)) == swap
    res = CliRunner().invoke(main, ["data", "info", "--data", str(two_databases / "mitdb"), "--config", str(swap_toml)])
    assert res.exit_code == 0 and "half of each patient's training beats read from its other lead" in res.output
    plain, swapped = make_splits(two_databases / "mitdb", cfg), make_splits(two_databases / "mitdb", swap)
    for name in ("val", "test"):
        np.testing.assert_array_equal(plain[name].x, swapped[name].x)
    for name in ("y", "rr", "record"):
        np.testing.assert_array_equal(getattr(plain["train"], name), getattr(swapped["train"], name))
    m = swapped["train"].record == "otherdb/o1"
    own = extract_beats(rdrecord(two_databases / "otherdb", "o1", "ECG1"), cfg.data)
    ecg2 = extract_beats(rdrecord(two_databases / "otherdb", "o1", "ECG2"), cfg.data)
    half = swap_half("otherdb/o1", len(own.y))
    assert half.sum() == len(own.y) // 2 and np.array_equal(half, swap_half("otherdb/o1", len(own.y)))
    np.testing.assert_array_equal(swapped["train"].x[m], np.where(half[:, None, None], ecg2.x, own.x))
    assert not np.array_equal(own.x[half], ecg2.x[half])            # the leads differ: something was swapped
    np.testing.assert_array_equal(swapped["train"].x[swapped["train"].record == "s1"],
                                  plain["train"].x[plain["train"].record == "s1"])      # MIT-BIH untouched

    predicted = []                      # the held-out patients are scored on their own lead, float and int8
    real_predict = edgeecg.train.predict_proba
    monkeypatch.setattr(edgeecg.train, "predict_proba", lambda model, held, *a: predicted.append(held) or
                        real_predict(model, held, *a))
    out = tmp_path / "cv"
    seen = _cv_training_sets(monkeypatch, two_databases / "mitdb", swap_toml, out)
    pool = load_pool(two_databases / "mitdb", cfg, edgeecg.cv.cv_pool(two_databases / "mitdb", cfg))
    for held in predicted:
        for patient in set(held.record.tolist()):
            np.testing.assert_array_equal(held.x[held.record == patient], pool.x[pool.record == patient])
    assert "otherdb/o1" in {p for held in predicted for p in held.record.tolist()}
    assert json.loads((out / "cv.json").read_text())["int8"]["pooled"]["macro_f1"] >= 0
    trained = [t for t in seen if "otherdb/o1" in set(t.record.tolist())]
    assert trained and all(np.array_equal(t.x[t.record == "otherdb/o1"], swapped["train"].x[m]) for t in trained)
    assert len(np.load(out / "oof.npz")["y"]) == len(pool)
    with pytest.raises(EdgeECGError, match="it needs train_other_lead = true"):
        config_from_dict({"sources": [{"database": "svdb", "other_lead_mode": "swap"}]}, "r.toml")
    with pytest.raises(EdgeECGError, match="other_lead_mode = 'both' is not one of add, swap"):
        config_from_dict({"sources": [{"database": "svdb", "train_other_lead": True, "other_lead_mode": "both"}]},
                         "r.toml")


def test_cv_scores_further_quantize_options_on_the_same_fold_models(two_databases, pool_toml):
    """``cross_validate(quantize=...)``: each fold's model is quantized once more per option set; the
    defaults under another name give the shipped graph's classes exactly, every beat gets a class."""
    from edgeecg.cv import cross_validate
    from edgeecg.quantize import QuantizeOptions

    cfg = load_config(pool_toml)
    res = cross_validate(cfg, two_databases / "mitdb", 2, 0, choose=False, log=lambda m: None,
                         quantize={"same": QuantizeOptions(), "few": QuantizeOptions(calib_beats=16)})
    assert set(res.int8_options) == {"same", "few"}
    np.testing.assert_array_equal(res.int8_options["same"], res.int8)
    assert res.int8_options["few"].shape == res.int8.shape and res.int8_options["few"].min() >= 0
