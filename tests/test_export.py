"""`edgeecg quantize` on a tiny model trained in the test: every artifact, bit-exact C, budgets."""

import json
import re
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from edgeecg.cli import main
from edgeecg.config import Config
from edgeecg.errors import EdgeECGError
from edgeecg.quant import classify_int8, read_tflite, run_int8
from edgeecg.quant.graph import quantize_multiplier
from edgeecg.quant.reference import multiply_by_quantized_multiplier
from firmware_export import convert
from conftest import TARGET
from firmware_export.cmodel import CFLAGS

EXPECTED = {"model.ts.pt", "model.pt2", "model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite",
            "model.int8.tflite", "model_data.h", "model_data.c", "ecg_model.h", "ecg_model.c", "golden.h", "report.json",
            "ecg_stream.h", "ecg_stream.c", "ecg_qrs.h", "ecg_qrs.c"}


def test_every_artifact_is_written_and_reported(exported):
    _, out = exported
    assert {p.name for p in out.iterdir()} == EXPECTED
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == "roomy"
    for name, art in report["artifacts"].items():
        assert art["bytes"] == (out / art["path"]).stat().st_size > 0, name
        assert {"path", "bytes", "weight_bytes", "arena_bytes"} <= set(art)
    assert report["bit_exact_c_vs_reference"] is True
    assert report["beats_compared"] == sum(c["beats"] for c in report["consistency"].values()) > 100
    assert all(c["bit_exact_c_vs_tflm"] for c in report["consistency"].values())
    rng = report["output_range"]      # chosen on the check beats: never more argmax disagreements
    assert rng["argmax_disagreements"] <= rng["argmax_disagreements_converter_range"]
    assert all(90.0 <= c["c_vs_float_agreement"] <= 100.0 for c in report["consistency"].values())
    assert report["c_vs_tflite_int8_agreement"] >= 99.0          # LiteRT's builtin kernels: same arithmetic
    assert report["c_vs_tflite_int8_xnnpack_agreement"] >= 95.0  # XNNPACK requantizes in fp32
    assert report["calibration_percentile"] == 99.99 and report["calibration_rr_percentile"] == 99.9
    assert report["beat_input_on_data_grid"] is False          # float beats: the converter picks the scale
    assert report["bias_correction"] is True
    offsets = report["decision_offsets"]        # the default: chosen on training beats, kept if not chance
    assert offsets["beats"] > 0 and offsets["agreement_with_float"] >= offsets["agreement_with_float_before"]
    fixed, broken = offsets["fixed"], offsets["broken"]
    assert offsets["kept"] is (fixed + broken == 0 or (fixed - broken) / (fixed + broken) ** 0.5 >= 2.0)
    assert any(offsets["offsets"]) is (offsets["kept"] and fixed + broken > 0)
    assert report["macs_per_beat"] > 0 and report["tflm_arena_bytes"] > 0
    for split in report["accuracy"].values():
        assert split["torch_fp32"]["delta_macro_f1"] == 0
        assert split["torchscript"]["macro_f1"] == split["torch_fp32"]["macro_f1"]
        assert split["c_int8"] == split["int8_reference"] == split["tflm"]


def test_output_range_reduces_argmax_ties_and_every_runtime_follows_it(exported, tmp_path):
    """A coarse output range makes int8 logits tie; the chosen one ties less, and TFLite Micro, the
    integer reference and ONNX Runtime all compute with the range written into their files."""
    import onnx
    from onnx import numpy_helper

    from edgeecg.quant.graph import QParams
    from edgeecg.quant.output_range import choose_output_range, set_onnx_output, set_tflite_output
    from edgeecg.runtimes import load_artifact

    _, out = exported
    tflite = (out / "model.int8.tflite").read_bytes()
    q = read_tflite(tflite).qparams
    coarse_bytes = set_tflite_output(tflite, QParams(q[read_tflite(tflite).output].scale * 8, 0))
    coarse = read_tflite(coarse_bytes)
    rng = np.random.default_rng(0)
    window, channels = coarse.shapes[coarse.beat_input][-2:]
    beat = rng.integers(-128, 128, (3000, window, channels), dtype=np.int8)
    rr = rng.integers(-128, 128, (3000, coarse.shapes[coarse.rr_input][-1]), dtype=np.int8)
    chosen = choose_output_range(coarse, beat, rr)
    assert chosen.disagreements_before > 0 and chosen.disagreements < chosen.disagreements_before
    fixed = set_tflite_output(coarse_bytes, chosen.qparams)
    (tmp_path / "m.tflite").write_bytes(fixed)
    graph = read_tflite(fixed)
    assert (graph.qparams[graph.output].scale, graph.qparams[graph.output].zero_point) == (
        np.float32(chosen.qparams.scale), chosen.qparams.zero_point)
    tflm = load_artifact("tflm", tmp_path / "m.tflite", 2)
    from edgeecg.runtimes import Int8GraphRunner
    x = np.random.default_rng(1).normal(size=(50, channels, window)).astype(np.float32)   # float beats: (n, C, W)
    r = np.random.default_rng(2).normal(size=(50, rr.shape[1])).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(tflm.logits(x, r)), Int8GraphRunner(graph).classify(x, r)[0])
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes((out / "model.int8.onnx").read_bytes())
    set_onnx_output(onnx_path, chosen.qparams)
    model = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    last_q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"][-1]
    assert np.isclose(inits[last_q.input[1]], chosen.qparams.scale) and inits[last_q.input[2]] == chosen.qparams.zero_point
    assert load_artifact("onnx_int8", onnx_path).logits(x, r).shape == (50, 5)


def test_onnx_int8_weights_use_the_reduced_range_and_fused_kernels_keep_the_classes(exported):
    """x86 CPUs without VNNI saturate onnxruntime's fused u8 x s8 products with 8-bit weights: every
    weight of a Conv or Gemm lies in onnxruntime's reduced range [-64, 64], and the fused graph
    classifies as the unfused QDQ graph does (on a CPU with VNNI, or ARM, only the range can fail)."""
    import onnx
    from onnx import numpy_helper

    from edgeecg.runtimes import OnnxRunner

    _, out = exported
    model = onnx.load(str(out / "model.int8.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weight_inputs = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    weights = [inits[n.input[0]] for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.output[0] in weight_inputs]
    assert len(weights) >= 3 and all(w.dtype == np.int8 and np.abs(w.astype(int)).max() <= 64 for w in weights)
    shape = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim][1:] for i in model.graph.input}
    rng = np.random.default_rng(0)
    x, r = (rng.normal(size=(500, *shape[name])).astype(np.float32) for name in ("beat", "rr"))
    fused, unfused = (OnnxRunner(out / "model.int8.onnx", level).logits(x, r).argmax(1)
                      for level in ("ORT_ENABLE_ALL", "ORT_DISABLE_ALL"))
    assert np.mean(fused == unfused) >= 0.995


def test_c_array_round_trips_to_the_tflite_bytes(exported):
    _, out = exported
    text = (out / "model_data.c").read_text()
    body = text[text.index("{") + 1:text.index("}")]
    data = bytes(int(v) for v in re.findall(r"\d+", body))
    assert data == (out / "model.int8.tflite").read_bytes()
    assert f"ecg_model_tflite_len = {len(data)};" in text
    arena = json.loads((out / "report.json").read_text())["tflm_arena_bytes"]
    assert f"#define ECG_TENSOR_ARENA_SIZE {arena + 16}" in (out / "model_data.h").read_text()


def test_golden_self_test_passes_when_compiled(exported, tmp_path):
    _, out = exported
    (tmp_path / "main.c").write_text('#include "golden.h"\nint main(void) { return ecg_self_test(); }\n')
    exe = tmp_path / "selftest"
    subprocess.run(["cc", *CFLAGS, "-I", str(out), "-o", str(exe), str(tmp_path / "main.c"), str(out / "ecg_model.c")],
                   check=True)
    assert subprocess.run([str(exe)]).returncode == 0


def test_model_data_compiles_warning_free(exported, tmp_path):
    _, out = exported
    subprocess.run(["cc", *CFLAGS, "-c", "-o", str(tmp_path / "md.o"), str(out / "model_data.c")], check=True)


def test_generated_c_is_bit_exact_on_random_full_range_inputs(exported):
    _, out = exported
    graph = read_tflite((out / "model.int8.tflite").read_bytes())
    rng = np.random.default_rng(0)
    w, c = graph.shapes[graph.beat_input][-2:]
    beat = rng.integers(-128, 128, (500, w, c), dtype=np.int8)
    rr = rng.integers(-128, 128, (500, graph.shapes[graph.rr_input][-1]), dtype=np.int8)
    logits, classes = classify_int8(graph, beat, rr)
    c_logits, c_classes = convert(graph, "rnd").run(beat, rr)
    np.testing.assert_array_equal(c_logits, logits)
    np.testing.assert_array_equal(c_classes, classes)
    np.testing.assert_array_equal(convert(graph, "rnd").predict(beat, rr), classes)


def test_rounding_simulation_tracks_the_int8_reference(exported):
    """Every rounding point on, the float simulation is the int8 graph up to its integer rounding;
    each point rounds exactly where the graph does (here: the beat input, on the float model)."""
    from edgeecg.export.fold import fold, forward
    from edgeecg.quant.budget import (
        round_activation,
        round_weights,
        rounding_points,
        with_graph_biases,
    )
    from edgeecg.run import load_run

    d, out = exported
    _, model, _ = load_run(d / "run")
    fm, graph = fold(model), read_tflite((out / "model.int8.tflite").read_bytes())
    rng = np.random.default_rng(1)
    w, c = graph.shapes[graph.beat_input][-2:]
    beat = rng.integers(-128, 128, (300, w, c), dtype=np.int8)
    rr = rng.integers(-128, 128, (300, graph.shapes[graph.rr_input][-1]), dtype=np.int8)
    qb, qr, qo = (graph.qparams[t] for t in (graph.beat_input, graph.rr_input, graph.output))
    x = ((beat.astype(np.float64) - qb.zero_point) * qb.scale).transpose(0, 2, 1)
    rr_f = (rr.astype(np.float64) - qr.zero_point) * qr.scale
    points = rounding_points(fm, graph)
    assert list(points)[:2] == ["beat input", "rr input"] and "conv1 output" in points and "dense1 weights" in points
    sim = forward(with_graph_biases(fm, graph), x, rr_f, lambda p, a: points[p](a) if p in points else a)
    int8 = (run_int8(graph, beat, rr).astype(np.float64) - qo.zero_point) * qo.scale
    assert np.abs(sim - int8).mean() < 0.5 * qo.scale
    assert np.mean(sim.argmax(1) == int8.argmax(1)) >= 0.95
    for (w_float, _), conv in zip(fm.convs, [lay for lay in graph.layers if lay.kind == "conv"]):
        step = np.abs(w_float).max(axis=(1, 2), keepdims=True) / 127      # the simulation's weight grid ...
        np.testing.assert_allclose(round_weights(w_float), conv.weights.transpose(0, 2, 1) * step,
                                   rtol=1e-6)                              # ... is the .tflite's
    x_noisy = x + rng.uniform(-0.4, 0.4, x.shape) * qb.scale
    np.testing.assert_allclose(forward(fm, x_noisy, rr_f, lambda p, a: points[p](a) if p == "beat input" else a),
                               forward(fm, round_activation(x_noisy, qb), rr_f))


def test_rounding_budget_is_reported(exported):
    _, out = exported
    budget = json.loads((out / "report.json").read_text())["rounding_budget"]
    assert budget["beats"] > 0 and {"beat input", "rr input", "conv0 weights", "dense1 output"} <= set(budget["alone"])
    for row in [budget["all"], budget["all_float_biases"], *budget["alone"].values()]:
        assert 0 <= row["changed"] == sum(row["changed_by_class"].values()) <= budget["beats"]
        assert row["mean_abs_logit_error"] >= 0


def test_bias_correction_cancels_the_mean_rounding_error(exported, synth_dir):
    """On the beats it is fitted on, the corrected model's simulated int8 pre-activations have the
    float model's per-channel means in every layer; without it they do not. Weights are untouched."""
    from edgeecg.data import make_splits
    from edgeecg.export.fold import fold
    from edgeecg.quant.bias_correction import _mean_sums, correct_biases
    from edgeecg.quant.budget import rounding_points
    from edgeecg.run import load_run

    d, out = exported
    cfg, model, _ = load_run(d / "run")
    fm, graph = fold(model), read_tflite((out / "model.int8.tflite").read_bytes())
    beats = make_splits(synth_dir, cfg)["train"]
    corrected = correct_biases(fm, graph, beats.x, beats.rr)
    points = rounding_points(fm, graph)

    def rounded(p, a):
        return points[p](a) if p in points else a

    reference = _mean_sums(fm, beats.x, beats.rr)
    after = _mean_sums(corrected, beats.x, beats.rr, rounded)
    before = _mean_sums(fm, beats.x, beats.rr, rounded)
    assert list(reference) == fm.layer_names() == ["conv0", "conv1", "rr_dense", "dense0", "dense1"]
    for name in fm.layer_names():
        np.testing.assert_allclose(after[name], reference[name], atol=1e-5)   # biases are float32
        np.testing.assert_array_equal(corrected.layer(name)[0], fm.layer(name)[0])
    assert max(np.abs(before[n] - reference[n]).max() for n in reference) > 1e-3


def test_shipped_graph_is_the_exported_graph(exported, synth_dir):
    """What ``edgeecg cv`` scores out of fold for each fold's model is what ``quantize`` writes for it:
    the same int8 graph (weights, biases, multipliers, output range), hence the same classes."""
    from edgeecg.data import make_splits
    from edgeecg.quantize import QuantizeOptions, shipped_graph
    from edgeecg.run import load_run
    from edgeecg.runtimes import Int8GraphRunner

    d, out = exported
    cfg, model, _ = load_run(d / "run")
    splits = make_splits(synth_dir, cfg)
    written = read_tflite((out / "model.int8.tflite").read_bytes())
    graph = shipped_graph(model, cfg, splits, QuantizeOptions(calib_beats=100))
    assert graph.qparams[graph.output] == written.qparams[written.output]
    for a, b in zip(graph.layers, written.layers, strict=True):
        for field in ("weights", "bias", "multiplier", "shift"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    test = splits["test"]
    beat, rr = Int8GraphRunner(written).quantized_inputs(test.x, test.rr)
    for got, want in zip(classify_int8(graph, beat, rr), classify_int8(written, beat, rr)):
        np.testing.assert_array_equal(got, want)


def test_quantize_multiplier_and_rounding_by_hand():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.25) == (1 << 30, -1)
    q, s = quantize_multiplier(0.3)
    acc = np.array([10, -10, 5, -5, 1000, -1000])
    # 0.5 * x: TFLite's doubling high multiply rounds +2.5 up to 3 but -2.5 to -2 (its nudge is 1 - 2^30)
    np.testing.assert_array_equal(multiply_by_quantized_multiplier(acc, 1 << 30, 0), [5, -5, 3, -2, 500, -500])
    acc = np.array([10, -10, 7, -7, 1000, -1000, 123456, -98765])
    np.testing.assert_array_equal(multiply_by_quantized_multiplier(acc, q, s), np.round(acc * 0.3).astype(int))


def test_over_budget_target_fails_with_the_reason_and_keeps_the_files(exported, synth_dir):
    d, _ = exported
    (d / "tiny_flash.toml").write_text(TARGET.format(name="tiny_flash", flash=100))
    res = CliRunner().invoke(main, ["quantize", str(d / "run"), "--target", str(d / "tiny_flash.toml"),
                                    "--calib-beats", "100", "--data", str(synth_dir)])
    assert res.exit_code != 0
    assert re.search(r"exceed the flash budget 100 B by \d+ B", res.output)
    report = json.loads((d / "run" / "export" / "tiny_flash" / "report.json").read_text())
    assert report["budget"]["pass"] is False


def test_accuracy_budget_holds_what_the_target_deploys():
    """A host reference over the loss budget is a note for an esp32 (it runs tflm and c_int8) and a
    failure for a Raspberry Pi (it runs tflite_int8 too)."""
    from edgeecg.quantize import check_budget
    from edgeecg.targets import load_target

    within = {"delta_macro_f1": -0.1, "delta_S_se": -0.3, "delta_V_se": 0.0}
    rows = {name: dict(within) for name in ("onnx_int8", "tflm", "c_int8")}
    rows["tflite_int8"] = {**within, "delta_S_se": -0.53}
    report = {"weight_bytes_int8": 1000, "tflm_arena_bytes": 1000, "activation_bytes_c": 500,
              "check_split": "ds1", "accuracy": {"ds1": rows}}
    esp32 = check_budget(report, load_target("esp32"))
    assert esp32["pass"] is True and "tflite_int8 on ds1: S_se -0.53 pp" in esp32["note"]
    rpi = check_budget(report, load_target("rpi4"))
    assert rpi["pass"] is False and rpi["problems"] == ["tflite_int8 on ds1: S_se -0.53 pp (allowed -0.5)"]
    rows["c_int8"]["delta_V_se"] = -0.6
    assert check_budget(report, load_target("esp32"))["problems"] == ["c_int8 on ds1: V_se -0.60 pp (allowed -0.5)"]


def test_bench_holds_the_loss_budget_to_what_the_target_deploys():
    """bench's verdict follows quantize's: tflite_int8 over the loss budget passes with a note on an
    esp32 and fails on a Raspberry Pi; the generated C on any platform (c_*) is held to it."""
    from edgeecg.bench.harness import _check
    from edgeecg.targets import load_target

    def rows(s_loss):
        base = {"weight_bytes": 1000, "ram_bytes": 100, "delta_macro_f1": 0.0, "delta_V_se": 0.0}
        return {"rows": [{**base, "artifact": "tflite_int8", "delta_S_se": -0.53},
                         {**base, "artifact": "c_cortex_m4", "delta_S_se": s_loss}]}

    esp32 = rows(0.0)
    _check(esp32, load_target("esp32"))
    assert esp32["pass"] is True and "S_se -0.53 pp" in esp32["rows"][0]["note"]
    rpi = rows(0.0)
    _check(rpi, load_target("rpi4"))
    assert rpi["pass"] is False and rpi["problems"] == ["tflite_int8: S_se -0.53 pp (allowed -0.5)"]
    c_loss = rows(-0.6)
    _check(c_loss, load_target("esp32"))
    assert c_loss["problems"] == ["c_cortex_m4: S_se -0.60 pp (allowed -0.5)"]


def test_structured_pruning_shrinks_the_exported_model(exported, synth_dir):
    """--prune removes whole channels: the int8 .tflite and the C weights really get smaller."""
    d, _ = exported
    out = d / "pruned"
    res = CliRunner().invoke(main, ["quantize", str(d / "run"), "--target", str(d / "roomy.toml"), "--out", str(out),
                                    "--prune", "0.5", "--prune-epochs", "1", "--calib-beats", "100",
                                    "--data", str(synth_dir)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    p = report["pruning"]
    assert p["channels_after"] == [(c + 1) // 2 for c in p["channels_before"]]
    assert p["params_after"] < p["params_before"]
    assert p["weight_bytes_int8_after"] < p["weight_bytes_int8_before"]
    assert p["tflite_int8_bytes_after"] == (out / "model.int8.tflite").stat().st_size < p["tflite_int8_bytes_before"]
    assert report["weight_bytes_int8"] == p["weight_bytes_int8_after"]
    assert report["bit_exact_c_vs_reference"] is True
    assert (out / "model.pruned.pt").exists() and "channels = [" in (out / "config.pruned.toml").read_text()
    assert "pruned 50% of conv channels" in res.output


@pytest.mark.parametrize("args, message", [
    (["quantize", "{run}", "--target", "esp33"], "unknown target 'esp33' (valid: esp32, esp32-max30003, esp32c3, esp32c3-ads1292r, esp32s3, rpi4, rpi4-ads1292r, rpi5, or the path"),
    (["quantize", "{d}", "--target", "esp32"], "model.pt: no model in this run directory"),
    (["quantize", "{run}", "--target", "{d}/roomy.toml", "--data", "{synth}"], "already exists (use --force"),
    (["quantize", "{run}", "--target", "esp32", "--calib-beats", "0", "--out", "{d}/x", "--data", "{synth}"],
     "calibration set is empty"),
])
def test_quantize_bad_input(exported, synth_dir, args, message):
    d, _ = exported
    args = [a.format(run=d / "run", d=d, synth=synth_dir) for a in args]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and message in res.output, res.output
    assert "Traceback" not in res.output
    assert not (d / "x").exists()


def test_targets_lists_every_toml():
    res = CliRunner().invoke(main, ["targets"])
    assert res.exit_code == 0
    for name in ("esp32", "esp32s3", "esp32c3", "rpi4", "rpi5", "esp32-max30003", "esp32c3-ads1292r", "rpi4-ads1292r"):
        assert name in res.output


def test_front_end_presets_are_their_chip_with_an_adc():
    from edgeecg.stream.frontend import front_end_spec
    from edgeecg.targets import load_target

    for preset, chip, hz in (("esp32-max30003", "esp32", 256), ("esp32c3-ads1292r", "esp32c3", 500),
                             ("rpi4-ads1292r", "rpi4", 250)):
        t, base = load_target(preset), load_target(chip)
        assert (t.adc_hz, t.isa, t.flash_bytes, t.formats) == (hz, base.isa, base.flash_bytes, base.formats)
        assert t.front_end and 10 < t.input_range_mv < 1000          # an ECG fits the int16 samples
        assert not front_end_spec(Config().data, _graph_for_spec(), t.adc_hz, t.adc_gain).rate.is_block


def _graph_for_spec():
    from test_stream_frontend import tiny_graph

    return tiny_graph()


@pytest.mark.parametrize("text, message", [
    ('base = "esp32"\nname = "b"\nadc_hz = 2000\n', "adc_hz = 2000: the stream front end takes a whole number of Hz"),
    ('base = "esp32"\nname = "b"\nadc_hz = 256.5\n', "adc_hz = 256.5"),
    ('base = "esp32"\nname = "b"\nadc_gain = 30000\n', "leaves an int16 sample less than 2 mV"),
    ('base = "esp32"\nname = "b"\nadc_gain = -5\n', "adc_gain = -5.0 must be > 0"),
    ('base = "nope"\nname = "b"\n', "base = 'nope' is not a shipped target"),
    ('base = "esp32"\nname = "b"\n[budget]\nram_bytes = 0\n', "budget.ram_bytes = 0 must be > 0"),
])
def test_a_bad_front_end_in_a_target_file_is_one_line(tmp_path, text, message):
    from edgeecg.targets import load_target

    (tmp_path / "board.toml").write_text(text)
    with pytest.raises(EdgeECGError) as err:
        load_target(str(tmp_path / "board.toml"))
    assert message in str(err.value) and "board.toml" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "ok.toml").write_text('base = "esp32"\nname = "ok"\nadc_hz = 128\nadc_gain = 400\n[budget]\nram_bytes = 4096\n')
    ok = load_target(str(tmp_path / "ok.toml"))
    assert (ok.adc_hz, ok.adc_gain, ok.flash_bytes, ok.ram_bytes) == (128, 400, 16384, 4096)   # tables merged


def test_folding_batchnorm_and_rr_standardiser_keeps_the_float_function():
    import torch

    from edgeecg.config import Config
    from edgeecg.export.fold import fold, forward
    from edgeecg.models import build_model

    torch.manual_seed(0)
    model = build_model("hybrid", Config().data).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):   # non-trivial statistics, as after training
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    model.rr_norm.mean.uniform_(0, 1)
    model.rr_norm.std.uniform_(0.5, 1)
    x, rr = torch.randn(4, 2, 128), torch.rand(4, len(Config().data.rr_features))
    with torch.no_grad():
        expected = model(x, rr).numpy()
    np.testing.assert_allclose(forward(fold(model), x.numpy(), rr.numpy()), expected, atol=1e-5)


def test_calibration_inputs_are_clipped_to_the_training_percentiles():
    from edgeecg.data import BeatSet
    from edgeecg.quantize import calibration_set
    rng = np.random.default_rng(0)
    n = 2000
    rr = rng.normal(1.0, 0.1, (n, 3)).astype(np.float32)
    rr[7, 0] = 100.0                                   # one 100 s gap, as in a real record
    train = BeatSet(rng.normal(0, 1, (n, 2, 16)).astype(np.float32), rr, rng.integers(0, 4, n), np.zeros(n, int))
    plain = calibration_set(train, n, seed=0)
    clipped = calibration_set(train, n, seed=0, percentile=99.9)
    assert plain.rr.max() == 100.0
    assert clipped.rr[:, 0].max() == pytest.approx(np.percentile(rr[:, 0], 99.9))
    assert clipped.x.max() < plain.x.max() and clipped.x.shape == plain.x.shape
    np.testing.assert_array_equal(clipped.y, plain.y)
    rr_only = calibration_set(train, n, seed=0, percentile=100.0, rr_percentile=99.0)   # RR range on its own
    np.testing.assert_array_equal(rr_only.x, plain.x)
    assert rr_only.rr[:, 0].max() == pytest.approx(np.percentile(rr[:, 0], 99.0))


def test_calibration_on_the_input_grid_keeps_its_ends_and_is_not_clipped():
    from edgeecg.data import BeatSet
    from edgeecg.quantize import calibration_set
    rng = np.random.default_rng(0)
    n, step = 2000, 0.05
    x = np.round(rng.normal(0, 1, (n, 2, 16)) / step) * step
    x[11, 1, 3], x[1500, 0, 9] = -128 * step, 127 * step          # the grid's ends, one beat each
    train = BeatSet(x.astype(np.float32), rng.normal(1.0, 0.1, (n, 3)).astype(np.float32),
                    rng.integers(0, 4, n), np.zeros(n, int))
    calib = calibration_set(train, 50, seed=0, percentile=99.9, input_step=step)
    assert len(calib) <= 50
    assert calib.x.min() == np.float32(-128 * step) and calib.x.max() == np.float32(127 * step)
    assert calib.rr.max() <= np.percentile(train.rr, 99.9, axis=0).max()   # RR is still clipped


def _train_and_quantize(synth_dir, tmp_path, model: str, params: str, data: str = "", *quantize_args: str):
    """Train ``model`` one epoch on the synthetic records, then quantize it for a roomy target."""
    from test_train_cli import TINY
    recipe = f"[data]\n{data}\n" + TINY[:TINY.index("[model.params]")] + \
        f'[model]\nname = "{model}"\n\n[model.params]\n{params}\n' + \
        TINY[TINY.index("[train]"):].replace("epochs = 3", "epochs = 1")
    (tmp_path / "recipe.toml").write_text(recipe)
    (tmp_path / "roomy.toml").write_text(TARGET.format(name="roomy", flash=1 << 20))
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--data", str(synth_dir), "--out", str(tmp_path / "run"),
                               "--config", str(tmp_path / "recipe.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    return runner.invoke(main, ["quantize", str(tmp_path / "run"), "--target", str(tmp_path / "roomy.toml"),
                                "--calib-beats", "100", "--data", str(synth_dir), *quantize_args])


def test_cnn_without_rr_input_exports_and_runs_everywhere(synth_dir, tmp_path):
    """The morphology-only CNN ignores RR: the int8 graph and the C take the beat only, and every runtime runs."""
    res = _train_and_quantize(synth_dir, tmp_path, "cnn", "channels = [4, 4]\nkernels = [5, 5]\nhidden = 8")
    assert res.exit_code == 0, res.output
    out = tmp_path / "run" / "export" / "roomy"
    report = json.loads((out / "report.json").read_text())
    assert report["bit_exact_c_vs_reference"] is True
    assert "#define EDGEECG_RR_LEN 0" in (out / "edgeecg_model.h").read_text()
    for split in report["accuracy"].values():
        assert {"onnx_int8", "tflite_int8", "tflm", "c_int8"} <= set(split)
        assert split["c_int8"] == split["tflm"]


def test_beats_on_the_int8_grid_make_the_beat_input_exact(synth_dir, tmp_path):
    """Trained on the int8 grid, the .tflite's beat input takes the grid's scale: its rounding changes nothing."""
    res = _train_and_quantize(synth_dir, tmp_path, "hybrid", "channels = [4, 4]\nkernels = [5, 5]\nhidden = 8",
                              "input_step = 0.02",          # the synthetic beats reach both ends of this grid
                              "--no-bias-correction")
    assert res.exit_code == 0 and "warning" not in res.output, res.output
    out = tmp_path / "run" / "export" / "roomy"
    report = json.loads((out / "report.json").read_text())
    graph = read_tflite((out / "model.int8.tflite").read_bytes())
    q = graph.qparams[graph.beat_input]
    assert report["beat_input_on_data_grid"] is True and q.zero_point == 0 and q.scale == pytest.approx(0.02)
    assert report["bias_correction"] is False
    assert report["rounding_budget"]["alone"]["beat input"] == {
        "changed": 0, "changed_by_class": dict.fromkeys("NSVFQ", 0), "mean_abs_logit_error": 0.0}


def test_cnn_lstm_writes_the_float_formats_and_reports_no_int8(synth_dir, tmp_path):
    """No int8/C path for an LSTM: quantize says so in one line, writes the float formats that export
    and reports the int8 ones as not available (issue 14; it used to refuse before writing anything)."""
    from edgeecg.quantize import QuantizeOptions, quantize_run
    from edgeecg.run import load_run
    from edgeecg.targets import load_target
    from test_train_cli import TINY

    recipe = TINY.replace("[model.params]", '[model]\nname = "cnn_lstm"\n\n[model.params]').replace(
        "hidden = 8", "lstm_hidden = 4").replace("epochs = 3", "epochs = 1")
    (tmp_path / "recipe.toml").write_text(recipe)
    (tmp_path / "roomy.toml").write_text(TARGET.format(name="roomy", flash=1 << 20))
    res = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--out", str(tmp_path / "run"),
                                    "--config", str(tmp_path / "recipe.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    cfg, model, _ = load_run(tmp_path / "run")
    lines = []
    out = tmp_path / "run" / "export" / "roomy"
    report = quantize_run(tmp_path / "run", cfg, model, load_target(str(tmp_path / "roomy.toml")), synth_dir, out,
                          QuantizeOptions(calib_beats=100), log=lines.append)
    assert [m for m in lines if "not available" in m] == [
        f"int8 and C: not available for cnn_lstm ({report['int8_unavailable']}); writing the float formats"]
    assert {p.name for p in out.iterdir()} == {"model.ts.pt", "model.pt2", "model.fp32.onnx", "model.fp32.tflite",
                                               "report.json"}
    assert report["int8"] is False and "LSTM" in report["not_available"]["c_int8"]
    assert all(abs(r["delta_macro_f1"]) < 1e-6 for r in report["accuracy"]["test"].values())


def test_references_in_batches_equal_one_pass(monkeypatch):
    """The integer reference and the float reference run a large set in batches (memory); each beat is
    computed on its own, so batches of 7 give what one pass gives: bit for bit in integers, and to the
    last bits in float64, where the BLAS may take another kernel for another batch size (an AMD EPYC
    differs in the 17th digit)."""
    import torch

    from edgeecg.export.fold import fold, forward
    from edgeecg.models import build_model
    from edgeecg.quant import reference
    from test_c_kernels import kernel_inputs, random_graph

    g = random_graph(seed=3, max_shift=3)
    beat, rr = kernel_inputs()
    whole = reference.forward_int8(g, beat, rr)
    monkeypatch.setattr(reference, "BATCH", 7)
    assert len(beat) > 7 and len(beat) % 7
    for got, want in zip(reference.forward_int8(g, beat, rr), whole):
        np.testing.assert_array_equal(got, want)

    torch.manual_seed(0)
    fm = fold(build_model("hybrid", Config().data).eval())
    x, rr_f = np.random.default_rng(0).normal(size=(30, 2, 128)), np.random.default_rng(1).random((30, 3))
    np.testing.assert_allclose(forward(fm, x, rr_f, batch=7), forward(fm, x, rr_f, batch=None), rtol=1e-12, atol=1e-15)
