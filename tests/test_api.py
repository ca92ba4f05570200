"""The Python interface (``import edgeecg``): an exported run classifies a signal end to end with the
integer twin and with the compiled C, identically; bad input is one line of EdgeECGError."""

import re

import numpy as np
import pytest

import edgeecg
from edgeecg.stream.run import read_lead


@pytest.fixture(scope="module")
def device(exported):
    d, _ = exported
    return edgeecg.load_device(d / "run", str(d / "roomy.toml"))


@pytest.fixture(scope="module")
def record(synth_dir):
    adc, fs, *_ = read_lead(synth_dir, "s1", "MLII")
    return adc, fs


def test_public_names():
    assert {"load_device", "Device", "Beats", "EdgeECGError", "load_config", "load_target", "recipe_names",
            "target_names", "train_recipe", "export_run", "bench_run"} <= set(edgeecg.__all__)
    assert all(callable(getattr(edgeecg, name)) for name in edgeecg.__all__)
    assert "hybrid" in edgeecg.recipe_names() and "esp32" in edgeecg.target_names()


def test_twin_and_compiled_c_classify_a_record_identically(device, record):
    adc, fs = record
    twin = device.classify(adc, fs)
    c = device.classify(adc, fs, engine="c")
    assert len(twin) > 10 and set(twin.labels) <= set("NSVFQ")
    np.testing.assert_array_equal(twin.sample, c.sample)
    np.testing.assert_array_equal(twin.classes, c.classes)
    np.testing.assert_array_equal(twin.logits, c.logits)
    assert np.all(np.diff(twin.sample) > 0) and twin.sample.max() < len(adc)


def test_another_rate_generates_its_front_end_and_finds_the_same_beats(device, synth_dir):
    """s4 is sampled at 250 Hz; the export is for 360 Hz: twin and C are built for 250 Hz, agree bit for
    bit, and put the R peaks on the annotated beats."""
    from edgeecg.stream import ec57

    adc, fs, _, ann, *_ = read_lead(synth_dir, "s4", "MLII")
    assert fs == 250 and device.fs == 360
    twin, c = device.classify(adc, fs), device.classify(adc, fs, engine="c")
    np.testing.assert_array_equal(twin.sample, c.sample)
    np.testing.assert_array_equal(twin.logits, c.logits)
    m = ec57.match(ann, twin.sample, ec57.tolerance_samples(fs))
    assert m.tp >= len(ann) - 3 and m.fp == 0


def test_a_flat_signal_has_no_beats_and_numpy_rates_are_rates(device):
    flat = np.zeros(3600, np.int16)
    for engine in ("twin", "c"):
        beats = device.classify(flat, np.float32(360), engine=engine)
        assert len(beats) == 0 and beats.logits.shape == (0, 5) and beats.labels == []


def test_millivolts_are_scaled_by_the_targets_gain(device, record):
    adc, fs = record
    mv = adc.astype(np.float64) / device.target.adc_gain
    np.testing.assert_array_equal(device.classify_mv(mv, fs).classes, device.classify(adc, fs).classes)


@pytest.mark.parametrize("case,message", [
    ("rate", "fs = 2000: ADC rate 2000 Hz: a whole number of Hz from 100 to 1000 is supported"),
    ("dtype", "signal: dtype float32, expected int16 ADC counts"),
    ("empty", "signal: empty"),
    ("shape", "signal: shape (10, 2), expected one lead"),
    ("engine", "engine 'gpu': one of twin, c"),
    ("nan", "signal: contains NaN or infinite values"),
    ("range", "exceeds the int16 ADC range"),
])
def test_bad_input_is_one_line(device, record, case, message):
    adc, fs = record
    call = {
        "rate": lambda: device.classify(adc, 2000),
        "dtype": lambda: device.classify(adc.astype(np.float32), fs),
        "empty": lambda: device.classify(adc[:0], fs, engine="c"),
        "shape": lambda: device.classify(np.zeros((10, 2), np.int16), fs),
        "engine": lambda: device.classify(adc, fs, engine="gpu"),
        "nan": lambda: device.classify_mv(np.array([0.1, np.nan]), fs),
        "range": lambda: device.classify_mv(np.array([0.0, 500.0]), fs),
    }[case]
    with pytest.raises(edgeecg.EdgeECGError, match=re.escape(message)) as err:
        call()
    assert "\n" not in str(err.value)


def test_a_directory_that_is_no_run_is_one_line(tmp_path):
    with pytest.raises(edgeecg.EdgeECGError, match="not a run directory"):
        edgeecg.load_device(tmp_path, "esp32")


def test_train_quantize_and_bench_through_the_api(exported, synth_dir, tmp_path):
    """The workflow functions the CLI calls: a tiny recipe trained, exported for a target file and
    benched from Python; the results are the dicts the CLI prints and writes."""
    d, _ = exported
    run = edgeecg.train_recipe(d / "tiny.toml", synth_dir, tmp_path / "run", seed=1, epochs=1)
    assert run.path == tmp_path / "run" and (run.path / "model.pt").exists() and run.metrics["params"] > 0
    assert run.config.train.seed == 1 and set(run.splits) >= {"train", "test"}
    with pytest.raises(edgeecg.EdgeECGError, match="already exists"):
        edgeecg.train_recipe(d / "tiny.toml", synth_dir, tmp_path / "run")
    report = edgeecg.export_run(run.path, str(d / "roomy.toml"), data=synth_dir, calib_beats=100, prefix="ecg")
    assert "budget" in report and (run.path / "export" / "roomy" / "ecg_model.c").exists()
    result = edgeecg.bench_run(run.path, str(d / "roomy.toml"), data=synth_dir, max_beats=50, repeat=2, warmup=0,
                           cross=False)
    assert result["beats"] == 50 and {"c_int8", "tflite_int8"} <= {r["artifact"] for r in result["rows"]} and "pass" in result
    with pytest.raises(edgeecg.EdgeECGError, match="not a run directory"):
        edgeecg.bench_run(tmp_path, "esp32")


def test_the_float_engine_classifies_the_devices_beats_with_the_trained_model(device, record):
    """engine="float": the same detector's R peaks, the float model on the training pipeline's beats;
    it agrees with the int8 twin on where the beats are and, mostly, on their classes."""
    adc, fs = record
    twin, flt = device.classify(adc, fs), device.classify(adc, fs, engine="float")
    assert flt.logits.dtype == np.float32 and len(flt) >= len(twin) - 3
    near = np.abs(twin.sample[:, None] - flt.sample[None, :]).min(axis=1) <= 2
    assert near.mean() > 0.95
    k = np.abs(twin.sample[:, None] - flt.sample[None, :]).argmin(axis=1)
    assert np.mean(twin.classes[near] == flt.classes[k[near]]) > 0.9


@pytest.mark.realdata
def test_a_30_minute_mitdb_record_through_the_compiled_c_equals_the_stream_twin(device, mitdb):
    """The bar of the API: a whole MIT-BIH record classified through the API with the compiled C gives
    the classes `edgeecg stream`'s Python twin gives for it."""
    from edgeecg.stream.frontend import run_record

    adc, fs, *_ = read_lead(mitdb, "100", "MLII")
    c = device.classify(adc, fs, engine="c")
    twin = run_record(adc, device.spec, device.graph)
    assert len(c) > 2000 and np.array_equal(c.classes, twin.cls)
    np.testing.assert_array_equal(c.sample, device.spec.rate.adc_index(twin.r_peak))
