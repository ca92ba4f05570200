"""The streaming front end (edgeecg.stream.frontend), its C twin (firmware_export/stream.py) and the
stream command: rounding rules, the fixed-point band-pass against the float one, streaming == whole
record, C == Python bit for bit (synthetic and real records, other recipes and ADC rates), the twin's
inputs against the float pipeline's, bad input, the command's schema, and a 10 M-sample fuzz of the
whole C under AddressSanitizer + UndefinedBehaviorSanitizer that measures when classification resumes."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time

import numpy as np
import pytest
from click.testing import CliRunner

from edgeecg.config import STRIP_RR_FEATURES, DataConfig
from edgeecg.errors import EdgeECGError
from edgeecg.processing.beats import extract_beats, rr_features
from edgeecg.processing.filters import causal_filter, design_bandpass
from edgeecg.quant.graph import Int8Graph, Layer, QParams, quantize_multiplier
from edgeecg.runtimes import Int8GraphRunner
from edgeecg.stream import ec57
from edgeecg.stream import frontend as fe
from edgeecg.stream.decimate import FS, decimate
from edgeecg.targets import Target
from firmware_export import convert
from firmware_export import stream as stream_c
from synthetic import synthetic_ecg, write_record
from test_stream_qrs import (
    FUZZ_KINDS,
    SANITIZE,
    SANITIZER_ENV,
    adc_counts,
    fuzz_signal,
    needs_cc,
    recovery_seconds,
    require_sanitizers,
)
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
STRIP = ("pre_over_regular", "prev_over_regular", "irregularity") + tuple(f"prev{k}_over_regular" for k in range(2, 9))
ANCHOR = ("pre_over_anchor", "prev_over_anchor", "irregularity", "pre_over_regular")    # question 40


# -- a small int8 graph (no training needed): conv, max pool, FC, concat with RR, FC ---------------

def tiny_graph(channels: int = 2, window: int = 128, n_rr: int | None = 3, seed: int = 0,
               beat_q=(0.05, 3)) -> Int8Graph:
    rng = np.random.default_rng(seed)
    g = Int8Graph()

    def tensor(i, shape, scale, zp):
        g.shapes[i] = shape
        g.qparams[i] = QParams(scale, zp)

    def layer(kind, inputs, out, w_shape=None, relu=False):
        lay = Layer(kind, inputs, out)
        if w_shape:
            w = rng.integers(-127, 128, w_shape).astype(np.int8)
            w_scale = np.full(w_shape[0], 0.01)
            in_s, out_s = g.qparams[inputs[0]].scale, g.qparams[out].scale
            mults = [quantize_multiplier(in_s * s / out_s) for s in w_scale]
            lay.weights, lay.bias = w, rng.integers(-500, 500, w_shape[0]).astype(np.int32)
            lay.multiplier = np.array([m for m, _ in mults], np.int32)
            lay.shift = np.array([s for _, s in mults], np.int32)
            lay.weight_scale = w_scale
            if relu:
                lay.act_min = g.qparams[out].zero_point
        g.layers.append(lay)

    tensor(0, (1, window, channels), *beat_q)
    g.beat_input = 0
    tensor(2, (1, window, 4), 0.1, -128)
    layer("conv", [0], 2, (4, 5, channels), relu=True)
    tensor(3, (1, window // 2, 4), 0.1, -128)
    layer("maxpool", [2], 3)
    tensor(4, (1, 6), 0.04, -128)
    layer("fc", [3], 4, (6, window // 2 * 4), relu=True)
    head_in = 4
    if n_rr:
        tensor(1, (1, n_rr), 0.04, -128)
        g.rr_input = 1
        tensor(5, (1, 6 + n_rr), 0.04, -128)
        layer("concat", [4, 1], 5)
        head_in = 5
    tensor(6, (1, 5), 0.1, 0)
    layer("fc", [head_in], 6, (5, int(np.prod(g.shapes[head_in][1:]))))
    g.output = 6
    return g


def synthetic_adc(seed=1, n_beats=150, fs=360.0):
    sig, peaks, symbols = synthetic_ecg(n_beats=n_beats, fs=fs, seed=seed)
    return adc_counts(sig[:, 0]), peaks


def target(adc_hz=360, adc_gain=200.0) -> Target:
    return Target(name="t", description="", isa="x86-64", clock_mhz=240, peak_macs_per_cycle=1, flash_bytes=1 << 20,
                  ram_bytes=1 << 20, max_macro_f1_loss_pp=100, max_se_loss_pp=100, formats=("c_int8",),
                  deploy=("c_int8",), adc_hz=adc_hz, adc_gain=adc_gain)


def build(tmp_path, graph, data=DataConfig(), adc_hz=360, prefix="ecg", cflags=None):
    src = tmp_path / "src"
    convert(graph, prefix, 8).save(src)
    stream_c.write_stream(src, prefix, data, graph, target(adc_hz))
    kw = {"cflags": cflags} if cflags else {}
    return stream_c.build_host(src, tmp_path / "build", prefix, **kw), fe.front_end_spec(data, graph, adc_hz, 200.0)


def same(c_beats, counters, py) -> bool:
    return (len(c_beats) == len(py.r_peak) and np.array_equal(c_beats["r_peak"], py.r_peak)
            and np.array_equal(c_beats["emitted"], py.emitted) and np.array_equal(c_beats["cls"], py.cls)
            and np.array_equal(c_beats["pre_rr"], py.pre_rr) and np.array_equal(c_beats["logits"], py.logits)
            and counters == vars(py.counters))


# -- integer arithmetic ---------------------------------------------------------------------------

def test_rounding_rules_are_half_away_from_zero():
    assert [fe.rshift_round(v, 1) for v in (-3, -2, -1, 0, 1, 2, 3)] == [-2, -1, -1, 0, 1, 1, 2]
    assert [fe.div_round(v, 4) for v in (-6, -2, -1, 1, 2, 6, 7)] == [-2, -1, 0, 0, 1, 2, 2]
    assert [fe.div_round(v, 3) for v in (-5, -4, 4, 5)] == [-2, -1, 1, 2]
    v = np.array([-5, -4, -3, 3, 4, 5], np.int64)
    assert fe.np_rshift_round(v, 1).tolist() == [fe.rshift_round(int(x), 1) for x in v]
    assert fe.floor_shift(-5, 1) == -3
    q = fe.Requant.design(2.0 ** -24, 0.05, 3)
    assert q(0) == 3 and q(int(0.05 * 2**24)) == 4 and q(int(0.075 * 2**24) + 1) == 5 and q(int(0.075 * 2**24) - 1) == 4
    assert q(1 << 40) == 127 and q(-(1 << 40)) == -128
    assert q.np(np.array([0, 1 << 40], np.int64)).tolist() == [3, 127]


def test_fixed_point_bandpass_tracks_sosfilt_and_stays_in_bounds():
    spec = fe.front_end_spec(DataConfig(), tiny_graph())
    bp = spec.bandpass
    assert bp.g == 12 and len(bp.sections) == 2 and bp.out_bound < 2**31
    s2 = bp.sections[1]
    assert (s2.b0, s2.b1, s2.b2) == (1 << 29, -(1 << 30), 1 << 29)       # the zeros at z = 1 are exact
    adc, _ = synthetic_adc(seed=2)
    x = decimate(adc, 2)
    y = fe.IntBandpass(bp).run(x)
    ref = causal_filter(x.astype(np.float64), design_bandpass(180, (0.5, 40.0), 2)) * 2**bp.g
    err = np.abs(y - ref)
    assert err.max() < 2.0, err.max()                  # within 2 LSB of Q12 (x / 4096) everywhere
    step = fe.IntBandpass(bp)
    assert [step.step(int(v)) for v in x[:500]] == y[:500].tolist()
    worst = 0
    for half in (1, 2, 3, 5, 9, 17, 45, 90, 180, 360):         # full-scale squares, all periods
        sq = np.where((np.arange(6000) // half) % 2 == 0, 65534, -65536)
        worst = max(worst, int(np.abs(fe.IntBandpass(bp).run(sq)).max()))
    assert worst < bp.out_bound < 2**31 and worst > 2**27


def test_z_scores_follow_the_float_normalisation():
    spec = fe.front_end_spec(DataConfig(), tiny_graph())
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (50, 128)) * rng.uniform(1, 3e5, (50, 1)) + rng.uniform(-1e6, 1e6, (50, 1))
    w[0] = 7                                                      # flat: z = 0
    w[1, :] = 0
    w[1, 5] = 3                                                   # below the std floor
    w = np.round(w).astype(np.int64)
    z = fe.window_z(w, spec) / 2**24
    centred = w - w.mean(axis=1, keepdims=True)
    floor = spec.std_floor / (128 * spec.norm_s)
    ref = centred / np.maximum(centred.std(axis=1, keepdims=True), floor)
    assert np.abs(z - ref).max() < 1e-6
    assert not z[0].any()


# -- the Python twin ------------------------------------------------------------------------------

def test_streaming_equals_whole_record_and_reset():
    graph = tiny_graph()
    spec = fe.front_end_spec(DataConfig(), graph)
    adc, _ = synthetic_adc(seed=3)
    adc = adc.copy()
    rng = np.random.default_rng(3)
    adc[20000:21000] = np.clip(adc[20000:21000] + rng.normal(0, 3000, 1000), -32768, 32767).astype(np.int16)
    whole = fe.run_record(adc, spec, graph)
    stream = fe.StreamFrontEnd(spec, graph)
    for attempt in range(2):
        out = [b for b in (stream.push(int(s)) for s in adc) if b is not None]
        assert [b.r_peak for b in out] == whole.r_peak.tolist()
        assert [b.emitted for b in out] == whole.emitted.tolist()
        assert [b.cls for b in out] == whole.cls.tolist() and [b.pre_rr for b in out] == whole.pre_rr.tolist()
        assert np.array_equal(np.stack([b.logits for b in out]), whole.logits)
        assert vars(stream.counters) == vars(whole.counters)
        stream.reset()
    assert whole.counters.no_rr == 1 and len(whole.r_peak) > 140
    lat = whole.emitted // 2 - whole.r_peak
    assert np.median(lat) == spec.after - 1                     # the window, not the detector, sets it


@pytest.mark.parametrize("sample", [32768, -32769])
def test_a_sample_outside_int16_is_a_one_line_error(sample):
    from edgeecg.stream.qrs import QRSDetector

    graph = tiny_graph()
    stream = fe.StreamFrontEnd(fe.front_end_spec(DataConfig(), graph), graph)
    with pytest.raises(EdgeECGError, match="does not fit int16"):
        stream.push(sample)
    with pytest.raises(EdgeECGError, match="does not fit int16"):       # the detector alone, too
        QRSDetector().push(sample)


@pytest.mark.parametrize("strip, n", [(STRIP_RR_FEATURES, 60), (STRIP_RR_FEATURES, 3),
                                      (("prev5_over_regular",), 40), (("prev8_over_regular", "prev3_over_regular"), 5)])
def test_twin_rhythm_strip_equals_the_float_features(strip, n):
    """The older-interval ring (PREV2 ... PREV8) gives the float path's rhythm strip, the first beats
    (fewer intervals than the strip is long) included: an off-by-one shows as a whole interval."""
    feats = ("pre_over_regular", "prev_over_regular") + strip
    cfg = dataclasses.replace(DataConfig(), rr_features=feats)
    spec = fe.front_end_spec(cfg, tiny_graph(n_rr=len(feats)))
    steps = np.random.default_rng(n).integers(80, 260, n)
    state = fe.RRState(spec)
    twin = np.array([state.interval(int(v))[0] for v in steps]) / (1 << fe.Z_FRAC)
    ref = rr_features(np.concatenate([[0], np.cumsum(steps)]), float(FS), cfg)
    np.testing.assert_allclose(twin, ref, rtol=1e-6)


def test_twin_run_anchor_equals_the_float_features():
    """ANC (the estimate a run of early beats started from) gives the float path's anchored features
    through sinus rhythm, a long run, lone premature beats and random intervals; the run is real:
    the anchored pre-RR differs from the estimate's on most of the run's beats."""
    cfg = dataclasses.replace(DataConfig(), rr_features=ANCHOR)
    spec = fe.front_end_spec(cfg, tiny_graph(n_rr=len(ANCHOR)))
    rng = np.random.default_rng(0)
    steps = np.concatenate([RUN_TIES, rng.integers(140, 150, 30), rng.integers(70, 78, 150),
                            rng.integers(140, 150, 20), [80, 200, 145, 146, 75, 78, 150], rng.integers(60, 260, 80)])
    state = fe.RRState(spec)
    twin, in_run = [], []
    for v in steps:
        twin.append(state.interval(int(v))[0])
        in_run.append(state.in_run)
    twin = np.array(twin) / (1 << fe.Z_FRAC)
    ref = rr_features(np.concatenate([[0], np.cumsum(steps)]), float(FS), cfg)
    np.testing.assert_allclose(twin, ref, rtol=1e-6, atol=1e-6)        # Q24: a step of 6e-8
    assert in_run[:len(RUN_TIES)] == RUN_TIES_IN_RUN                   # both comparisons strict
    k = len(RUN_TIES)
    assert np.sum(np.abs(ref[k + 30:k + 180, 0] - ref[k + 30:k + 180, 3]) > 0.05) > 100


# Exact ties with the estimate at 100 samples: 80 is the band's low edge (0.8: no run starts), 79 starts
# one (anchor 100), 84 goes on, 85 is 0.85 of the anchor (the run ends, and 85 starts none).
RUN_TIES = [100] * 10 + [80] + [100] * 8 + [79, 84, 85, 100]
RUN_TIES_IN_RUN = [False] * 19 + [True, True, False, False]


@needs_cc
def test_c_rr_state_equals_the_twin_after_every_interval(tmp_path):
    """The C's run state and regular-RR estimate, read after every interval, equal the Python twin's,
    at the exact ties of RUN_TIES and through runs and random intervals, and after a reset."""
    graph = tiny_graph(n_rr=len(ANCHOR))
    cfg = DataConfig(rr_features=ANCHOR)
    src = tmp_path / "src"
    convert(graph, "ecg", 8).save(src)
    stream_c.write_stream(src, "ecg", cfg, graph, target())
    (tmp_path / "driver.c").write_text(
        '#include <stdio.h>\n#include <stdlib.h>\n#include "ecg_stream.c"\n'
        "int main(int argc, char **argv)\n{\n    static ecg_stream_t st;\n    int8_t q[ECG_STREAM_N_FEATURES];\n"
        "    int i, pass;\n    for (pass = 0; pass < 2; ++pass) {\n        ecg_stream_reset(&st);\n"
        "        for (i = 1; i < argc; ++i) {\n            (void)rr_interval(&st, atoi(argv[i]), q);\n"
        '            printf("%d %lld %lld\\n", (int)st.in_run, (long long)st.anchor, (long long)st.est);\n'
        "        }\n    }\n    return 0;\n}\n")
    exe = tmp_path / "driver"
    subprocess.run(["cc", *STRICT, "-O2", "-I", str(src), "-o", str(exe), str(tmp_path / "driver.c"),
                    str(src / "ecg_qrs.c"), str(src / "ecg_model.c")], check=True, capture_output=True, text=True)
    rng = np.random.default_rng(1)
    steps = [*RUN_TIES, *rng.integers(70, 78, 120), *rng.integers(140, 150, 10), *rng.integers(60, 260, 60)]
    out = subprocess.run([str(exe), *map(str, steps)], check=True, capture_output=True, text=True).stdout.split("\n")
    state = fe.RRState(fe.front_end_spec(cfg, graph))
    expected = []
    for v in steps:
        state.interval(int(v))
        expected.append(f"{int(state.in_run)} {state.anchor} {state.est}")
    assert out[:-1] == expected * 2
    assert [line[0] for line in expected[:len(RUN_TIES)]] == [str(int(b)) for b in RUN_TIES_IN_RUN]


def test_twin_inputs_track_the_float_pipeline_on_reference_peaks(tmp_path):
    graph = tiny_graph()
    cfg = DataConfig()
    spec = fe.front_end_spec(cfg, graph)
    write_record(tmp_path, "r1", seed=4)
    from edgeecg.io.wfdb_records import rdrecord
    from edgeecg.stream.run import read_lead
    rec = rdrecord(tmp_path, "r1")
    beats = extract_beats(rec, cfg)
    adc, fs, gain, ann, symbols, _ = read_lead(tmp_path, "r1", "MLII")
    filtered = fe.IntBandpass(spec.bandpass).run(decimate(adc, 2))
    r = np.round(np.asarray(ann) * (180 / fs)).astype(np.int64)
    kept, bq, rq = fe.reference_inputs(filtered, r, spec)
    assert np.array_equal(kept, beats.sample)
    fbq, frq = Int8GraphRunner(graph).quantized_inputs(beats.x, beats.rr)
    d = bq.astype(int) - fbq
    assert np.mean(d == 0) > 0.999 and np.abs(d).max() <= 1
    assert np.array_equal(rq, frq)


def test_two_leads_twin_inputs_track_the_float_pipeline_and_use_the_second_lead(tmp_path):
    """``[data] second_lead``: the twin's 4 channels on reference R peaks are the float pipeline's
    (``read_beats``), the second lead's channels follow the first's, and the second lead matters."""
    from edgeecg.processing.beats import read_beats
    from edgeecg.stream.run import read_leads

    cfg = DataConfig(second_lead="other")
    graph = tiny_graph(channels=4)
    spec = fe.front_end_spec(cfg, graph)
    assert spec.leads == 2 and spec.channels == 4
    write_record(tmp_path, "r1", seed=4)
    beats = read_beats(tmp_path, "r1", cfg)
    adc, fs, gain, ann, symbols, _ = read_leads(tmp_path, "r1", cfg)
    assert adc.shape[1] == 2
    filtered = fe.filter_leads(adc, spec)
    r = np.round(np.asarray(ann) * (180 / fs)).astype(np.int64)
    kept, bq, rq = fe.reference_inputs(filtered, r, spec)
    assert np.array_equal(kept, beats.sample)
    fbq, frq = Int8GraphRunner(graph).quantized_inputs(beats.x, beats.rr)
    d = bq.astype(int) - fbq
    assert np.mean(d == 0) > 0.999 and np.abs(d).max() <= 1 and np.array_equal(rq, frq)
    assert np.mean(bq[..., 2:] != bq[..., :2]) > 0.5                    # V1's channels are not MLII's
    one = fe.run_record(adc, spec, graph)
    flat = fe.run_record(np.stack([adc[:, 0], adc[:, 0]], axis=1), spec, graph)
    assert np.array_equal(one.r_peak, flat.r_peak) and not np.array_equal(one.logits, flat.logits)
    with pytest.raises(EdgeECGError, match=r"expected \(n, 2\): the recipe reads 2 leads"):
        fe.run_record(adc[:, 0], spec, graph)


@needs_cc
@pytest.mark.parametrize("data, adc_hz", [
    (DataConfig(second_lead="other"), 360),
    (DataConfig(second_lead="other", template_gate=0.1), 250),       # a polyphase rate converter per lead
    (DataConfig(second_lead="other", template_beats=0), 128),
])
def test_two_leads_c_equals_python_streaming_and_whole_record(tmp_path, data, adc_hz):
    graph = tiny_graph(channels=(1 + (data.template_beats > 0)) * 2)
    exe, spec = build(tmp_path, graph, data, adc_hz)
    sig, _, _ = synthetic_ecg(n_beats=90, fs=float(adc_hz), seed=7)
    adc = np.stack([adc_counts(sig[:, 0]), adc_counts(sig[:, 1])], axis=1)
    py = fe.run_record(adc, spec, graph)
    beats, counters, err = stream_c.run_host(exe, adc)
    assert err == "" and same(beats, counters, py) and len(beats) > 80
    stream = fe.StreamFrontEnd(spec, graph)
    out = [b for b in (stream.push((int(a), int(b))) for a, b in adc[: len(adc) // 3]) if b is not None]
    assert [b.r_peak for b in out] == py.r_peak[: len(out)].tolist() and len(out) > 20
    assert np.array_equal(np.stack([b.logits for b in out]), py.logits[: len(out)])
    text = (tmp_path / "src" / "ecg_stream.h").read_text()
    assert "#define ECG_STREAM_LEADS 2" in text
    assert "#define ECG_QRS_MIRROR 0" in (tmp_path / "src" / "ecg_qrs.h").read_text()   # the RAM goes to lead 2


@pytest.mark.parametrize("kw, message", [
    ({"mode": "diagnostic", "rr_features": ("pre_rr", "post_rr")}, "diagnostic"),
    ({"fs": 250}, "runs at 180 Hz"),
    ({"rr_features": ("pre_over_regular", "p_diff_rel")}, "p_diff_rel not supported by the streaming front end"),
    ({"polarity": "template"}, "not computed by the streaming front end"),
    ({"scale": "patient"}, "scale = 'patient' is not computed by the streaming front end"),
])
def test_unsupported_recipes_are_one_line_errors(kw, message):
    with pytest.raises(EdgeECGError, match=message) as err:
        fe.front_end_spec(dataclasses.replace(DataConfig(), **kw), tiny_graph())
    assert "\n" not in str(err.value)


# -- the C twin -----------------------------------------------------------------------------------

@pytest.mark.parametrize("adc_hz", [1500, 361.5, 90, "fast"])
def test_wrong_adc_rate_is_one_line_and_writes_nothing(tmp_path, adc_hz):
    with pytest.raises(EdgeECGError) as err:
        stream_c.write_stream(tmp_path / "out", "ecg", DataConfig(), tiny_graph(), target(adc_hz))
    assert "\n" not in str(err.value) and ("1000 is supported" in str(err.value) or "not a number" in str(err.value))
    assert not (tmp_path / "out").exists()


@needs_cc
def test_c_compiles_strictly_as_c99_and_cplusplus(tmp_path):
    graph = tiny_graph()
    convert(graph, "my_dev", 8).save(tmp_path)
    paths = stream_c.write_stream(tmp_path, "my_dev", DataConfig(), graph, target())
    assert sorted(p.name for p in paths) == ["my_dev_qrs.c", "my_dev_qrs.h", "my_dev_stream.c", "my_dev_stream.h"]
    text = (tmp_path / "my_dev_stream.c").read_text() + (tmp_path / "my_dev_stream.h").read_text()
    assert "prefix_" not in text and "PREFIX_" not in text and "malloc(" not in text
    assert "float" not in text.replace("no float", "").replace("float pipeline", "") and "double" not in text
    for name in ("my_dev_stream.c", "my_dev_qrs.c", "my_dev_model.c"):
        for cmd in (["cc", *STRICT, "-O0"], ["cc", *STRICT, "-O2", "-Wconversion"] if name == "my_dev_stream.c"
                    else ["cc", *STRICT, "-O2"]):
            res = subprocess.run([*cmd, "-c", str(tmp_path / name), "-o", str(tmp_path / "x.o")],
                                 capture_output=True, text=True)
            assert res.returncode == 0, (name, res.stderr)
        if shutil.which("g++"):
            res = subprocess.run(["g++", "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                                  "-c", str(tmp_path / name), "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
            assert res.returncode == 0, (name, res.stderr)


@needs_cc
@pytest.mark.parametrize("rr, kept", [
    (DataConfig().rr_features, set()),      # the intervals over the regular-RR estimate read none of them
    (("pre_over_avg", "local_over_avg", *STRIP_RR_FEATURES), {"local_buf", "avg_buf", "older"}),
    (ANCHOR, {"anchor"}),                   # the run anchor's state (question 40)
])
def test_the_state_keeps_only_the_rr_rings_its_features_read(tmp_path, rr, kept):
    graph = tiny_graph(n_rr=len(rr))
    convert(graph, "ecg", 8).save(tmp_path)
    stream_c.write_stream(tmp_path, "ecg", DataConfig(rr_features=rr), graph, target())
    header = subprocess.run(["cc", "-E", "-P", "-I", str(tmp_path), str(tmp_path / "ecg_stream.h")],
                            capture_output=True, text=True, check=True).stdout
    fields = {"local_buf": " local_buf[", "avg_buf": " avg_buf[", "older": " older[", "anchor": " anchor;"}
    assert {name for name, text in fields.items() if text in header} == kept


@needs_cc
def test_c_equals_python_on_synthetic_records(tmp_path):
    graph = tiny_graph()
    exe, spec = build(tmp_path, graph)
    for seed in (5, 6):
        adc, peaks = synthetic_adc(seed=seed, n_beats=200)
        py = fe.run_record(adc, spec, graph)
        beats, counters, err = stream_c.run_host(exe, adc)
        assert err == "" and same(beats, counters, py)
        assert len(beats) == 199
        m = np.abs(beats["r_peak"][:, None] * 2 - peaks[None, :]).min(axis=1)
        assert m.max() <= 6                                                   # on the true R peaks


@needs_cc
@pytest.mark.parametrize("data, graph_kw, adc_hz", [
    (DataConfig(template_update="all", input_step=0.05,
                rr_features=("pre_rr", "local_over_avg", "pre_over_prev", "irregularity", "regular_rr")),
     {"n_rr": 5, "beat_q": (0.05, 0)}, 360),
    (DataConfig(template_beats=0, before=40, after=60), {"channels": 1, "n_rr": None}, 720),
    (DataConfig(beat_channel=False, template_beats=10, regular_rr_band=(0.75, 1.25), avg_rr_beats=20,
                rr_features=("pre_over_avg", "avg_rr")), {"channels": 1, "n_rr": 2}, 180),
    (DataConfig(template_gate=0.1), {}, 360),   # the gated template: 87 of 89 synthetic beats differ from ungated
    (DataConfig(rr_features=STRIP), {"n_rr": 10}, 360),   # the rhythm strip: PREV2 ... PREV8
    (DataConfig(rr_features=ANCHOR), {"n_rr": 4, "run": range(30, 75)}, 360),   # ANC through a 45-beat run
    (DataConfig(), {}, 128),              # up-sampled by a polyphase FIR (45 / 32): SVDB's rate
    (DataConfig(), {}, 250),              # down-sampled by a polyphase FIR (18 / 25)
    (DataConfig(), {}, 512),
    (DataConfig(), {}, 125),              # the other listed rates: every converter the presets and docs name
    (DataConfig(), {}, 256),
    (DataConfig(), {}, 500),
    (DataConfig(), {}, 1000),
])
def test_c_equals_python_for_other_recipes_and_adc_rates(tmp_path, data, graph_kw, adc_hz):
    run = graph_kw.get("run", range(0))
    graph = tiny_graph(window=data.before + data.after, **{k: v for k, v in graph_kw.items() if k != "run"})
    exe, spec = build(tmp_path, graph, data, adc_hz)
    sig, _, _ = synthetic_ecg(n_beats=90, fs=float(adc_hz), seed=7, run=run)
    adc = adc_counts(sig[:, 0])
    py = fe.run_record(adc, spec, graph)
    beats, counters, _ = stream_c.run_host(exe, adc)
    assert same(beats, counters, py) and len(beats) > 80


@needs_cc
@pytest.mark.realdata
@pytest.mark.parametrize("cfg", [DataConfig(), DataConfig(rr_features=STRIP)], ids=["default", "strip"])
def test_c_equals_python_and_tracks_float_on_real_records(tmp_path, mitdb, cfg):
    from edgeecg.io.wfdb_records import rdrecord
    from edgeecg.stream.run import read_lead

    graph = tiny_graph(n_rr=len(cfg.rr_features))
    exe, spec = build(tmp_path, graph, cfg)
    for name in ("100", "208"):
        adc = read_lead(mitdb, name, "MLII")[0][: 5 * 60 * 360]
        py = fe.run_record(adc, spec, graph)
        beats, counters, _ = stream_c.run_host(exe, adc)
        assert same(beats, counters, py) and len(beats) > 300
    adc, fs, _, ann, symbols, _ = read_lead(mitdb, "100", "MLII")
    fb = extract_beats(rdrecord(mitdb, "100"), cfg)
    from edgeecg.processing.aami import SYMBOL_TO_CLASS
    is_beat = np.array([str(s) in SYMBOL_TO_CLASS for s in symbols])
    kept, bq, rq = fe.reference_inputs(fe.IntBandpass(spec.bandpass).run(decimate(adc, 2)),
                                       np.round(ann[is_beat] * (180 / fs)).astype(np.int64), spec)
    fbq, frq = Int8GraphRunner(graph).quantized_inputs(fb.x, fb.rr)
    assert np.array_equal(kept, fb.sample)
    assert np.mean(rq == frq) > 0.999 and np.abs(rq.astype(int) - frq).max() <= 1   # exact ties of a round scale
    assert np.mean(bq == fbq) > 0.9999 and np.abs(bq.astype(int) - fbq).max() <= 1


# -- fuzz: the whole C under ASan + UBSan on >= 10 M samples --------------------------------------

@needs_cc
@pytest.mark.parametrize("adc_hz", [360, 250])        # a block sum and a fractional polyphase FIR
def test_c_fuzz_under_sanitizers_and_recovery(tmp_path, adc_hz):
    require_sanitizers(tmp_path)
    graph = tiny_graph()
    exe, spec = build(tmp_path, graph, adc_hz=adc_hz, cflags=[*STRICT, *SANITIZE])
    adc, ref, bad = fuzz_signal(10_000_000, seed=1, fs=adc_hz)
    assert len(bad) >= 150 and {k for _, _, k in bad} == set(FUZZ_KINDS)
    t0 = time.perf_counter()
    beats, counters, err = stream_c.run_host(exe, adc, env=SANITIZER_ENV)
    c_seconds = time.perf_counter() - t0
    assert err == "", err[:2000]
    py = fe.run_record(adc, spec, graph)
    assert same(beats, counters, py)                                   # bit-exact on the fuzz too
    tol = ec57.tolerance_samples(adc_hz)
    r_adc = spec.rate.adc_index(beats["r_peak"])
    rec = recovery_seconds(r_adc, beats["emitted"], ref, bad, fs=adc_hz, tol=tol)
    worst = {k: max(s for kk, s in rec if kk == k) for k in FUZZ_KINDS}
    mean = float(np.mean([s for _, s in rec]))
    print(f"\nstream fuzz: {len(adc):,d} samples ({c_seconds:.1f} s under ASan+UBSan), {len(bad)} bad stretches, "
          f"{counters}; seconds of clean signal until every beat is classified again (emitted): mean {mean:.2f}, "
          "worst per kind " + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()))
    (tmp_path / "recovery.json").write_text(json.dumps({"mean": mean, "worst": worst, "counters": counters}))
    # 250 Hz: the square waves, band-limited by the FIR, hold the detector's noise level up longer
    # (measured: worst 9.5 s)
    assert max(worst.values()) <= (9.0 if adc_hz == 360 else 12.0), worst
    assert counters["too_late"] == 0 and counters["queue_full"] == 0
    m = ec57.match(ref, r_adc, tol, exclude=[(s0 - adc_hz // 2, e0 + 9 * adc_hz) for s0, e0, _ in bad])
    assert m.se > 99.5 and m.ppv > 99.5, m.counts()


@needs_cc
def test_two_lead_c_fuzz_under_sanitizers(tmp_path):
    """Raw input on both leads: each lead's own fuzz (bad stretches at other times), C == twin under
    ASan + UBSan."""
    require_sanitizers(tmp_path)
    data = DataConfig(second_lead="other")
    graph = tiny_graph(channels=4)
    exe, spec = build(tmp_path, graph, data, cflags=[*STRICT, *SANITIZE])
    first, _, bad = fuzz_signal(2_000_000, seed=2)
    second, _, _ = fuzz_signal(2_000_000, seed=3)
    adc = np.stack([first, second], axis=1)
    beats, counters, err = stream_c.run_host(exe, adc, env=SANITIZER_ENV)
    assert err == "", err[:2000]
    assert same(beats, counters, fe.run_record(adc, spec, graph)) and len(beats) > 1000 and len(bad) > 20


# -- quantize and the stream command --------------------------------------------------------------

def test_quantize_writes_the_stream_c_and_reports_it(exported):
    _, out = exported
    report = json.loads((out / "report.json").read_text())
    s = report["stream"]
    assert s["written"] is True and s["rate_conversion"]["factor"] == 2 and s["ring_samples"] >= 48 + 986
    for name, size in s["files"].items():
        assert (out / name).stat().st_size == size
    assert set(s["files"]) == {"ecg_stream.h", "ecg_stream.c", "ecg_qrs.h", "ecg_qrs.c"}


def test_quantize_refuses_a_target_adc_rate_before_any_work(exported, tmp_path):
    from conftest import TARGET
    from edgeecg.cli import main

    d, _ = exported
    (tmp_path / "odd.toml").write_text(TARGET.format(name="odd", flash=1 << 20).replace(
        "peak_macs_per_cycle = 1", "peak_macs_per_cycle = 1\nadc_hz = 1500"))
    res = CliRunner().invoke(main, ["quantize", str(d / "run"), "--target", str(tmp_path / "odd.toml"),
                                    "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "odd.toml: adc_hz = 1500" in res.output and res.output.count("\n") == 1
    assert not (tmp_path / "x").exists()


@needs_cc
def test_stream_command_schema(exported, synth_dir, tmp_path):
    from edgeecg.stream.run import markdown, stream_command

    d, _ = exported
    out = tmp_path / "s"
    args = [str(d / "run"), "--target", str(d / "roomy.toml"), "--records", "s1,s2", "--data", str(synth_dir),
            "--out", str(out), "--no-cross"]
    res = CliRunner().invoke(stream_command, args)
    assert res.exit_code == 0, res.output
    r = json.loads((out / "stream.json").read_text())
    assert r["bit_exact_c_vs_python"] is True and r["records"] == ["s1", "s2"] and r["samples"] > 0
    assert {"se", "ppv", "tp", "fn", "fp"} <= set(r["qrs"]["gross"]) and r["qrs"]["gross"]["se"] > 99
    for key in ("ds2", "ds2_reference_beats"):
        rep = r[key]
        assert {"per_class", "macro_f1", "accuracy", "confusion", "labels"} <= set(rep)
        assert set(rep["per_class"]) == set("NSVFQ")
        assert all({"se", "ppv", "f1", "support"} <= set(v) for v in rep["per_class"].values())
    assert r["ds2"]["labels"] == ["N", "S", "V", "F", "Q", "no beat"] and np.shape(r["ds2"]["confusion"]) == (6, 6)
    assert sum(v["support"] for v in r["ds2"]["per_class"].values()) == sum(
        p["beats"] for p in r["per_record"].values())
    assert set(r["per_record"]) == {"s1", "s2"} and r["twin_vs_float_inputs"]["beat_lsb"]["within_1_pct"] == 100.0
    assert {"ram_bytes", "flash_bytes", "instructions_per_ecg_second", "cpu_percent_at_clock"} <= set(r)
    assert (out / "stream.md").read_text() == markdown(r)
    res = CliRunner().invoke(stream_command, args)
    assert res.exit_code == 1 and "already exists" in res.output and res.output.count("\n") == 1


def test_cross_rows_count_the_front_end_apart_from_the_classifier(exported, synth_dir, tmp_path):
    """Under qemu the stream is counted twice, with the model and with a do-nothing classifier in its
    place: the front end alone is less than the whole, and the beats are still the host's."""
    from edgeecg.bench.cross import PLATFORMS
    from edgeecg.stream.run import stream_command

    runnable = [p.name for p in PLATFORMS if p.kind != "xtensa" and p.missing() is None]
    if not runnable:
        pytest.skip("no cross compiler and qemu here")
    d, _ = exported
    out = tmp_path / "s"
    res = CliRunner().invoke(stream_command, [str(d / "run"), "--target", str(d / "roomy.toml"), "--records", "s1",
                                              "--data", str(synth_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads((out / "stream.json").read_text())
    assert set(r["front_end_instructions_per_ecg_second"]) == set(r["instructions_per_ecg_second"]) != set()
    for key, total in r["instructions_per_ecg_second"].items():
        assert r["cross"]["platforms"][key]["bit_exact_vs_host"] is True
        assert 0 < r["front_end_instructions_per_ecg_second"][key] < total
    assert "of them the front end" in (out / "stream.md").read_text()


@needs_cc
def test_stream_command_runs_a_record_at_its_own_rate(exported, synth_dir, tmp_path):
    """s4 is sampled at 250 Hz, the target at 360 Hz: the front end is generated for 250 Hz (C == twin),
    a lead by index works, and --adc-hz resamples to another rate."""
    from edgeecg.stream.run import stream_command

    d, _ = exported
    base = [str(d / "run"), "--target", str(d / "roomy.toml"), "--records", "s4", "--data", str(synth_dir),
            "--no-cross", "--lead", "0"]
    res = CliRunner().invoke(stream_command, [*base, "--out", str(tmp_path / "own")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "own" / "stream.json").read_text())
    assert r["adc"]["hz"] == 250 and r["adc"]["rate_conversion"]["kind"] == "polyphase FIR"
    assert r["bit_exact_c_vs_python"] is True and r["qrs"]["gross"]["se"] > 99
    res = CliRunner().invoke(stream_command, [*base, "--adc-hz", "128", "--out", str(tmp_path / "at128")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "at128" / "stream.json").read_text())
    assert r["adc"]["hz"] == 128 and r["bit_exact_c_vs_python"] is True and r["qrs"]["gross"]["se"] > 99


@pytest.mark.parametrize("case, message", [
    ("no_mlii", "no lead MLII"), ("truncated", "truncated signal file"), ("rate", "sampled at 250, 360 Hz"),
    ("unknown", "'nope' not found"),
])
def test_stream_command_bad_input_is_one_line(exported, synth_dir, tmp_path, case, message):
    from edgeecg.stream.run import stream_command

    d, _ = exported
    data = tmp_path / "data"
    data.mkdir()
    names = {"no_mlii": "v1", "truncated": "t1", "rate": "s1,s4", "unknown": "nope"}   # rate: 360 then 250 Hz
    if case == "no_mlii":
        write_record(data, "v1", sig_names=("V1", "V2"))
    elif case == "truncated":
        write_record(data, "t1")
        (data / "t1.dat").write_bytes((data / "t1.dat").read_bytes()[:1000])
    elif case == "rate":
        data = synth_dir
    else:
        write_record(data, "s1")
    res = CliRunner().invoke(stream_command, [str(d / "run"), "--target", str(d / "roomy.toml"), "--records",
                                              names[case], "--data", str(data), "--out", str(tmp_path / "o"),
                                              "--no-cross"])
    assert res.exit_code == 1 and message in res.output and res.output.count("\n") == 1, res.output
    assert not (tmp_path / "o").exists()


@needs_cc
def test_stream_cross_rows_cover_every_bench_platform(exported, synth_dir, tmp_path):
    """Every qemu platform of the bench is either measured (and bit-exact with the host) or skipped
    with a reason in stream.json; none makes the command fail."""
    from edgeecg.bench.cross import PLATFORMS
    from edgeecg.stream.run import stream_command

    d, _ = exported
    out = tmp_path / "s"
    res = CliRunner().invoke(stream_command, [str(d / "run"), "--target", str(d / "roomy.toml"), "--records", "s1",
                                              "--data", str(synth_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    cross = json.loads((out / "stream.json").read_text())["cross"]
    assert len(cross["platforms"]) + len(cross["skipped"]) == len(PLATFORMS)
    assert all(p["bit_exact_vs_host"] for p in cross["platforms"].values())
