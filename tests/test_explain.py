"""Explanations (captum Grad-CAM and integrated gradients): a toy model whose output depends on a
known window region must get its attributions there; the command draws beats, class averages and
int8 disagreements of a trained, quantized tiny run."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum", reason="captum is not installed (pip install captum)")
from torch import nn  # noqa: E402

from edgeecg.explain import (  # noqa: E402
    attribute,
    beat_figure,
    class_means_figure,
    class_mean_rows,
    explain_command,
    gradcam,
    integrated_gradients,
    last_conv,
    s_vs_n_window_attribution,
)

W = 128


class Toy(nn.Module):
    """Class 2's logit = the window's channel 0 summed over ``region`` (through two conv stages) plus
    2 × RR feature 1; every other logit is 0. Nothing outside ``region`` reaches the output."""

    def __init__(self, region: tuple[int, int]):
        super().__init__()
        mask = torch.zeros(1, 1, W)
        mask[..., region[0] : region[1]] = 1.0
        self.register_buffer("mask", mask)
        self.features = nn.Sequential(
            nn.Conv1d(2, 4, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(4, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        with torch.no_grad():
            for conv in (self.features[0], self.features[3]):
                conv.weight.zero_()
                conv.bias.zero_()
            self.features[0].weight[:, 0, 2] = 1.0  # every channel: channel 0 of the input
            for k in range(4):
                self.features[3].weight[k, k, 1] = 1.0  # identity
        self.rr_w = torch.tensor([0.0, 2.0, 0.0])

    def forward(self, x, rr):
        f = self.features(x * self.mask).flatten(1).sum(1)
        logit2 = f + rr @ self.rr_w
        zeros = torch.zeros_like(logit2)
        return torch.stack([zeros, zeros, logit2, zeros, zeros], dim=1)


def _beats(n: int = 4, seed: int = 0):
    """Beats with a bump inside every tested region and a larger one outside all of them."""
    rng = np.random.default_rng(seed)
    t = np.arange(W)
    x = np.zeros((n, 2, W), np.float32)
    for i in range(n):
        x[i, 0] = (
            3.0 * np.exp(-0.5 * ((t - 50) / 3) ** 2)  # the beat's largest wave: outside
            + np.exp(-0.5 * ((t - 96 - i) / 4) ** 2)  # inside region (88, 112)
            + np.exp(-0.5 * ((t - 16 - i) / 4) ** 2)  # inside region (8, 28)
            + 0.05 * rng.standard_normal(W)
        )
        x[i, 1] = rng.standard_normal(W) * 0.5
    rr = rng.uniform(0.5, 1.5, (n, 3)).astype(np.float32)
    return x, rr


@pytest.mark.parametrize("region", [(88, 112), (8, 28)])
def test_gradcam_and_ig_peak_in_the_region_the_output_depends_on(region):
    model = Toy(region).eval()
    x, rr = _beats()
    assert last_conv(model)[0] == "features.3"
    cam = gradcam(model, x, rr, 2)
    assert cam.shape == (len(x), W)
    ig_x, ig_rr, delta = integrated_gradients(model, x, rr, 2, steps=64)
    lo, hi = region
    for i in range(len(x)):
        assert lo <= int(np.argmax(cam[i])) < hi, (i, int(np.argmax(cam[i])))
        # most of the Grad-CAM mass sits in the region (a misaligned upsampling would move it)
        assert cam[i, lo:hi].sum() > 0.8 * cam[i].sum()
        assert lo <= int(np.argmax(np.abs(ig_x[i]).max(0))) < hi
        assert np.abs(ig_x[i][:, : lo - 4]).max() == 0 and np.abs(ig_x[i][:, hi + 4 :]).max() == 0
        assert int(np.argmax(np.abs(ig_rr[i]))) == 1  # RR feature 1 drives the logit
    # completeness: attributions add up to logit(beat) - logit(baseline)
    with torch.no_grad():
        gap = (
            model(torch.from_numpy(x), torch.from_numpy(rr))[:, 2]
            - model(torch.zeros_like(torch.from_numpy(x)), torch.zeros(len(x), 3))[:, 2]
        ).numpy()
    np.testing.assert_allclose(ig_x.sum((1, 2)) + ig_rr.sum(1), gap, rtol=1e-3, atol=1e-3)
    assert np.abs(delta).max() < 1e-3


def test_attributions_of_a_class_the_output_ignores_are_zero():
    model = Toy((88, 112)).eval()
    x, rr = _beats()
    att = attribute(model, x, rr, 0, steps=8)
    assert np.abs(att.ig_x).max() == 0 and np.abs(att.ig_rr).max() == 0 and att.cam.max() == 0


def test_factorized_hybrid_decides_s_versus_n_from_rr_only():
    from edgeecg.config import DataConfig
    from edgeecg.models import build_model

    torch.manual_seed(0)
    x, rr = _beats(8)
    factorized = build_model("hybrid", DataConfig(), channels=[4, 4], kernels=[5, 5], hidden=8).eval()
    assert s_vs_n_window_attribution(factorized, x, rr, steps=8) < 1e-6
    plain_head = build_model("hybrid", DataConfig(), channels=[4, 4], kernels=[5, 5], hidden=8, factorized=False).eval()
    assert s_vs_n_window_attribution(plain_head, x, rr, steps=8) > 1e-4


def test_figures_draw(tmp_path):
    from edgeecg.config import DataConfig

    cfg = DataConfig()
    model = Toy((88, 112)).eval()
    x, rr = _beats(6)
    att = attribute(model, x, rr, 2, steps=8)
    fig = beat_figure(x[0], att.cam[0], att.ig_x[0], att.ig_rr[0], rr[0], cfg, "toy beat")
    fig.savefig(tmp_path / "beat.png")
    rows, summary = class_mean_rows(model, x, rr, np.array([0, 0, 2, 2, 2, 1]), 4, 8, before=cfg.before, fs=cfg.fs)
    assert [s["class"] for s in summary] == ["N", "S", "V"] and summary[2]["explained"] == 3
    class_means_figure(rows, cfg, "toy classes").savefig(tmp_path / "means.png")
    for name in ("beat.png", "means.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_command_on_a_quantized_run(exported, synth_dir, tmp_path):
    from click.testing import CliRunner

    d, export_dir = exported
    out = tmp_path / "explain"
    res = CliRunner().invoke(
        explain_command,
        [
            str(d / "run"),
            "--record",
            "s1",
            "--beats",
            "3,5",
            "--out",
            str(out),
            "--data",
            str(synth_dir),
            "--per-class",
            "8",
            "--steps",
            "8",
            "--max-int8",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((out / "explain.json").read_text())
    for scope in ("record", "test"):
        block = result["int8"][scope]
        assert len(block["figures"]) == min(2, block["disagreements"])
    assert [b["index"] for b in result["beats"]] == [3, 5]
    assert result["methods"]["gradcam"]["layer"] == "features.4"  # the tiny recipe's second conv
    assert result["int8"]["export"] == str(export_dir)
    assert result["int8"]["record"]["beats"] == result["beats_in_record"]
    assert set(result["class_means"]) == {"record", "test"}
    assert result["s_vs_n_window_attribution"] < 1e-6  # factorized head
    for f in result["figures"]:
        assert (out / f["file"]).read_bytes()[:4] == b"\x89PNG"
    kinds = {f["kind"] for f in result["figures"]}
    assert {"beat", "class_means"} <= kinds
    # a bad beat index and an existing output are one-line errors
    res = CliRunner().invoke(
        explain_command,
        [str(d / "run"), "--record", "s1", "--beats", "99999", "--out", str(tmp_path / "x"), "--data", str(synth_dir)],
    )
    assert res.exit_code == 1 and "out of range" in res.output
    res = CliRunner().invoke(explain_command, [str(d / "run"), "--record", "s1", "--out", str(out)])
    assert res.exit_code == 1 and "already exists" in res.output


def test_load_record_reads_the_second_lead_a_two_lead_recipe_needs(synth_dir):
    """The explain view and the app cut a two-lead recipe's beats from both leads (4 channels)."""
    import dataclasses

    from edgeecg.config import DataConfig
    from edgeecg.explain import load_record

    one = load_record(synth_dir, "s1", DataConfig())
    two = load_record(synth_dir, "s1", dataclasses.replace(DataConfig(), second_lead="other"))
    assert one.beats.x.shape[1] == 2 and two.beats.x.shape[1] == 4
    assert np.array_equal(two.beats.x[:, :2], one.beats.x) and not np.array_equal(two.beats.x[:, 2:], one.beats.x)
    assert np.array_equal(two.signal, one.signal)
