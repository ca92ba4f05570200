"""The cnn_bilstm and spectrogram_cnn families: what they compute, the realtime refusal, float
export (TorchScript, torch.export, ONNX, TFLite through a Keras mirror) with the int8 rows reported
as not available, and the bench listing those rows as skipped."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import TARGET
from edgeecg.cli import main
from edgeecg.config import Config, DataConfig, load_config
from edgeecg.errors import EdgeECGError
from edgeecg.models import MODELS, build_model, macs_per_beat

DIAGNOSTIC = dataclasses.replace(DataConfig(), mode="diagnostic",
                                 rr_features=DataConfig().rr_features + ("post_over_regular",))

RECIPE = """
[data]
{data}

[split]
train = ["s1", "s2"]
val = ["s3"]
test = ["s4"]
exclude = []

[model]
name = "{name}"

[model.params]
{params}

[train]
epochs = 1
batch_size = 32
"""
BILSTM = dict(name="cnn_bilstm", params="channels = [4, 4]\nkernels = [5, 5]\nlstm_hidden = 4",
              data='mode = "diagnostic"\nrr_features = ["pre_over_regular", "irregularity", "post_over_regular"]')
SPECTRO = dict(name="spectrogram_cnn", params="channels = [4]\nkernels = [3]\nhidden = 8", data="")


def test_both_families_are_registered_with_recipes():
    assert {"cnn_bilstm", "spectrogram_cnn"} <= set(MODELS)
    for name in ("cnn_bilstm", "spectrogram_cnn"):
        cfg = load_config(f"training/{name}.toml")
        assert cfg.model.name == name and cfg.split.val == () and cfg.train.ema_decay > 0
        assert cfg.train.schedule == "constant"


def test_spectrogram_is_the_stft_log_magnitude_below_45_hz():
    model = build_model("spectrogram_cnn", DataConfig()).eval()
    assert model.n_bins == 9 and model.frames == 25          # 0, 5.6, ..., 45 Hz at 180 Hz / 32
    assert build_model("spectrogram_cnn", DataConfig(), n_fft=64).n_bins == 17     # 2.8 Hz bins up to 45 Hz
    x = torch.randn(3, 2, 128)
    ref = torch.stft(x.reshape(6, 128), 32, 4, window=torch.hann_window(32), center=False, return_complex=True)
    expected = 0.5 * torch.log(ref.abs()[:, :9] ** 2 + 1e-6)
    torch.testing.assert_close(model.spectrogram(x).reshape(6, 9, 25), expected, atol=1e-3, rtol=1e-4)
    assert not model.stft.weight.requires_grad
    assert model(x, torch.rand(3, 3)).shape == (3, 5)


def test_bilstm_reads_both_directions_and_refuses_realtime():
    with pytest.raises(EdgeECGError, match="'cnn_bilstm' .* mode = 'diagnostic' only, not 'realtime'"):
        build_model("cnn_bilstm", Config().data)
    torch.manual_seed(0)
    model = build_model("cnn_bilstm", DIAGNOSTIC).eval()
    x, rr = torch.randn(2, 2, 128), torch.rand(2, 4)
    late = x.clone()
    late[:, :, -8:] += 1.0                          # only the window's end changes
    with torch.no_grad():
        assert not torch.allclose(model(x, rr), model(late, rr))
    uni = build_model("cnn_lstm", DIAGNOSTIC, channels=[8, 16, 16], kernels=[7, 5, 5])
    m_bi, m_uni = (macs_per_beat(m, 128, 2, 4) for m in (model, uni))
    lstm = 16 * 4 * 16 * (16 + 16)
    assert m_bi - m_uni == lstm + 16 * 5             # a second direction, and 16 more head inputs


def test_bilstm_realtime_recipe_is_one_line_in_the_cli(synth_dir, tmp_path):
    (tmp_path / "r.toml").write_text(RECIPE.format(**{**BILSTM, "data": ""}))
    res = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--out", str(tmp_path / "o"),
                                    "--config", str(tmp_path / "r.toml"), "--quiet"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "cnn_bilstm' reads the whole window backwards" in res.output and "mode = \"diagnostic\" only" in res.output
    assert len(res.output.strip().splitlines()) == 1            # refused with the recipe, before any data


@pytest.mark.parametrize("family", [BILSTM, SPECTRO], ids=lambda f: f["name"])
def test_float_formats_written_int8_reported_and_benched(synth_dir, tmp_path, family):
    from edgeecg.bench import BenchOptions, bench_export
    from edgeecg.quantize import QuantizeOptions, format_report, quantize_run
    from edgeecg.run import load_run
    from edgeecg.targets import load_target

    (tmp_path / "r.toml").write_text(RECIPE.format(**family))
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--data", str(synth_dir), "--out", str(run),
                                    "--config", str(tmp_path / "r.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    (tmp_path / "roomy.toml").write_text(TARGET.format(name="roomy", flash=1 << 20))
    target = load_target(str(tmp_path / "roomy.toml"))
    cfg, model, _ = load_run(run)
    lines = []
    report = quantize_run(run, cfg, model, target, synth_dir, run / "export" / "roomy", QuantizeOptions(),
                          log=lines.append)
    out = run / "export" / "roomy"
    assert {p.name for p in out.iterdir()} == {"model.ts.pt", "model.pt2", "model.fp32.onnx", "model.fp32.tflite",
                                               "report.json"}
    assert sum("int8 and C: not available" in m for m in lines) == 1
    assert report["int8"] is False and set(report["not_available"]) == {"onnx_int8", "tflite_int8", "tflm", "c_int8"}
    for key in ("val", "test"):
        rows = report["accuracy"][key]
        assert set(rows) == {"torch_fp32", "torchscript", "pt2", "onnx_fp32", "tflite_fp32"}
        assert all(abs(r["delta_macro_f1"]) < 1e-6 for r in rows.values())     # the same float function
    assert report["budget"]["pass"] is True and json.loads((out / "report.json").read_text())["int8"] is False
    text = format_report(report)
    assert "int8 and C: not available" in text and "tflite_fp32" in text

    result = bench_export(run, cfg, out, target, synth_dir, run / "bench", BenchOptions(repeat=5, warmup=1),
                          log=lambda m: None)
    rows = {r["artifact"] for r in result["rows"]}
    skipped = {s["artifact"]: s["why"] for s in result["skipped"]}
    assert rows == {"torch_fp32", "torchscript", "pt2", "onnx_fp32", "tflite_fp32"}
    assert {"onnx_int8", "tflite_int8", "tflm", "c_int8", "c_aarch64"} <= set(skipped)
    assert "Conv1d" in skipped["c_int8"] and result["pass"] is True and result["int8"] is False


def test_quantize_refuses_a_window_the_int8_graph_cannot_hold():
    from edgeecg.quantize import int8_unavailable

    data = dataclasses.replace(DataConfig(), before=50, after=80)        # 130 is not a multiple of 2^4
    cfg = dataclasses.replace(Config(), data=data)
    with pytest.raises(EdgeECGError, match="window 130 is not a multiple of 2\\^4"):
        int8_unavailable(build_model("hybrid", data), cfg)
    assert int8_unavailable(build_model("hybrid", Config().data), Config()) is None
    assert "LSTM" in int8_unavailable(build_model("cnn_lstm", Config().data), Config())
    assert np.isfinite(macs_per_beat(build_model("spectrogram_cnn", Config().data), 128, 2, 3))
