"""Training, the run directory and the CLI, on synthetic records (no data needed)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgeecg.cli import main
from edgeecg.config import config_from_dict
from edgeecg.data import make_splits
from edgeecg.run import load_run
from edgeecg.train import train_model

TINY = """
[split]
train = ["s1", "s2"]
val = ["s3"]
test = ["s4"]
exclude = []

[model.params]
channels = [4, 4]
kernels = [5, 5]
hidden = 8

[train]
epochs = 3
batch_size = 32
patience = 5
"""

RUN_FILES = {"model.pt", "config.toml", "metrics.json", "history.json", "manifest.json",
             "plots/training_curves.png", "plots/confusion_val.png", "plots/confusion_test.png",
             "plots/roc_val.png", "plots/pr_val.png", "plots/roc_test.png", "plots/pr_test.png",
             "plots/per_record_val.png", "plots/per_record_test.png"}


@pytest.fixture
def tiny_toml(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _train(data, out, config, *extra):
    """``edgeecg train`` through click's runner."""
    return CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(out), "--config", str(config), *extra])


def _tiny_cfg():
    import tomllib
    return config_from_dict(tomllib.loads(TINY))


def test_augmented_beats_stay_on_the_input_grid():
    from edgeecg.train import _augment
    x = torch.round(torch.randn(8, 2, 32) * 20) / 20
    steps = _augment(x, torch.Generator().manual_seed(0), 0.05) / 0.05
    torch.testing.assert_close(steps, torch.round(steps), atol=1e-4, rtol=0)
    assert not torch.allclose(steps * 0.05, x)                          # the noise was added
    off = _augment(x, torch.Generator().manual_seed(0), 0.0) / 0.05     # step 0: no grid
    assert not torch.allclose(off, torch.round(off), atol=1e-4, rtol=0)


def test_flip_inverts_whole_beats_and_draws_nothing_when_off():
    from edgeecg.train import _augment, _flip
    x = torch.randn(400, 2, 32)
    out = _flip(x, 0.5, torch.Generator().manual_seed(0))
    flipped = torch.all(out == -x, dim=(1, 2))
    assert torch.all(flipped | torch.all(out == x, dim=(1, 2)))       # every channel of a beat alike
    assert 150 < int(flipped.sum()) < 250
    assert torch.equal(_flip(x, 1.0, torch.Generator().manual_seed(0)), -x)
    # flip = 0 draws nothing: the augmentation is the shift and the noise alone, as before flip existed
    # (so the default recipe's seed gives the same model)
    gen = torch.Generator().manual_seed(3)
    shift = int(torch.randint(-3, 4, (1,), generator=gen))
    expected = torch.roll(x, shift, dims=2) + 0.05 * torch.randn(x.shape, generator=gen)
    torch.testing.assert_close(_augment(x, torch.Generator().manual_seed(3), 0.0, flip=0.0), expected)


def test_lead_shape_turns_whole_beats_towards_their_slope_and_draws_nothing_when_off():
    """``lead_shape``: a share of the beats become cos(a) * beat + sin(a) * slope, |a| <= 45 degrees, one
    filter for every channel of a beat (so beat - template stays the difference of the turned pair)."""
    from edgeecg.train import LEAD_SHAPE_ANGLE, _augment, _lead_shape
    t = torch.linspace(-1, 1, 64)
    qrs = torch.exp(-(t / 0.06) ** 2)
    sizes = 1 + torch.rand(400, 1, 1, generator=torch.Generator().manual_seed(1))
    x = torch.stack([qrs, qrs - 0.5 * torch.exp(-((t - 0.1) / 0.06) ** 2)]).repeat(400, 1, 1) * sizes
    out = _lead_shape(x, 0.5, torch.Generator().manual_seed(0))
    kept = torch.all(out == x, dim=(1, 2))
    assert 150 < int(kept.sum()) < 250
    padded = torch.nn.functional.pad(x, (1, 1), mode="replicate")
    slope = (padded[:, :, 2:] - padded[:, :, :-2]) / 2
    slope = slope * x[:, :1].std(dim=2, keepdim=True) / slope[:, :1].std(dim=2, keepdim=True)
    turned = ~kept
    # each turned beat is cos(a) x + sin(a) slope: the angle fitted on channel 0 must turn channel 1 too
    basis = torch.stack([x[turned, 0], slope[turned, 0]], dim=-1)           # (n, window, 2)
    coef = torch.linalg.lstsq(basis, out[turned, 0].unsqueeze(-1)).solution[..., 0]
    angle = torch.atan2(coef[:, 1], coef[:, 0])
    assert 0.6 * LEAD_SHAPE_ANGLE < float(angle.abs().max()) <= LEAD_SHAPE_ANGLE + 1e-4
    torch.testing.assert_close(coef.norm(dim=1), torch.ones(len(coef)), atol=1e-4, rtol=0)
    expected = torch.cos(angle)[:, None, None] * x[turned] + torch.sin(angle)[:, None, None] * slope[turned]
    torch.testing.assert_close(out[turned], expected, atol=1e-4, rtol=1e-4)
    gen = torch.Generator().manual_seed(3)       # lead_shape = 0 draws nothing: the same augmentation as before
    shift = int(torch.randint(-3, 4, (1,), generator=gen))
    expected = torch.roll(x, shift, dims=2) + 0.05 * torch.randn(x.shape, generator=gen)
    torch.testing.assert_close(_augment(x, torch.Generator().manual_seed(3), 0.0, lead_shape=0.0), expected)


def test_training_applies_the_recipe_s_shares_of_beats(synth_dir, monkeypatch):
    """``[train] lead_shape`` and ``qrs_gain`` reach the augmentation of every training batch (nothing when
    0); ``qrs_gain``'s stretch is 50 ms before to 70 ms after the R peak at the recipe's rate."""
    import dataclasses

    import edgeecg.train
    seen = {"lead_shape": [], "qrs_gain": []}
    shape, gain = edgeecg.train._lead_shape, edgeecg.train._qrs_gain
    monkeypatch.setattr(edgeecg.train, "_lead_shape",
                        lambda x, share, gen: seen["lead_shape"].append(share) or shape(x, share, gen))
    monkeypatch.setattr(edgeecg.train, "_qrs_gain", lambda x, share, gen, centre, span:
                        seen["qrs_gain"].append((share, centre, span)) or gain(x, share, gen, centre, span))
    cfg = _tiny_cfg()
    splits = make_splits(synth_dir, cfg)
    train_model(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1)), splits, progress=False)
    assert seen == {"lead_shape": [], "qrs_gain": []}
    train_model(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, lead_shape=0.5, qrs_gain=0.3)),
                splits, progress=False)
    assert seen["lead_shape"] and set(seen["lead_shape"]) == {0.5}
    span = (round(0.05 * cfg.data.fs), round(0.07 * cfg.data.fs))
    assert seen["qrs_gain"] and set(seen["qrs_gain"]) == {(0.3, cfg.data.before, span)}


def test_qrs_gain_shrinks_the_qrs_against_the_rest_of_the_beat():
    """A share of the beats get their QRS stretch scaled by 0.2-1 (the rest of the window untouched but for
    one rescaling to the beat channel's spread), one gain curve for every channel."""
    from edgeecg.train import QRS_GAIN_LOW, _augment, _qrs_gain
    t = torch.arange(128.0)
    beat = 5 * torch.exp(-((t - 48) / 2.5) ** 2) - torch.exp(-((t - 83) / 8) ** 2)
    beat = (beat - beat.mean()) / beat.std()
    x = torch.stack([beat, 0.3 * beat + 0.1]).repeat(400, 1, 1)
    out = _qrs_gain(x, 0.5, torch.Generator().manual_seed(0), 48, (9, 13))
    kept = torch.all(out == x, dim=(1, 2))
    assert 150 < int(kept.sum()) < 250
    changed = out[~kept]
    torch.testing.assert_close(changed[:, 0].std(dim=1), x[~kept, 0].std(dim=1))          # the spread is kept
    ratio = (changed[:, 0, 48] / changed[:, 0, 83]) / (beat[48] / beat[83])               # QRS against T wave
    assert float(ratio.min()) >= QRS_GAIN_LOW - 1e-4 and float(ratio.max()) <= 1 + 1e-4
    assert float(ratio.min()) < 0.4 and float(ratio.max()) > 0.8                        # the range is drawn
    # one gain curve for both channels at every sample: out_c(t) = x_c(t) k(t), so out_0 x_1 = out_1 x_0
    torch.testing.assert_close(changed[:, 0] * x[~kept, 1], changed[:, 1] * x[~kept, 0], atol=1e-5, rtol=1e-5)
    # the curve: the gain g on R - 9 .. R + 13, raised-cosine edges of 3 samples (0.85, 0.5, 0.15), 1 beyond,
    # all times the one rescaling (read where the curve is 1, g at the R peak)
    spread = changed[:, 0, 0] / x[~kept, 0, 0]
    g = changed[:, 0, 48] / x[~kept, 0, 48] / spread
    edge = torch.tensor([0.8536, 0.5, 0.1464])
    inside = torch.zeros(128)
    inside[39:62] = 1.0
    inside[36:39], inside[62:65] = edge.flip(0), edge
    curve = 1 - (1 - g[:, None]) * inside[None, :]
    torch.testing.assert_close(changed[:, 0], x[~kept, 0] * spread[:, None] * curve, atol=1e-4, rtol=1e-4)
    gen = torch.Generator().manual_seed(3)       # qrs_gain = 0 draws nothing: the same augmentation as before
    shift = int(torch.randint(-3, 4, (1,), generator=gen))
    expected = torch.roll(x, shift, dims=2) + 0.05 * torch.randn(x.shape, generator=gen)
    torch.testing.assert_close(_augment(x, torch.Generator().manual_seed(3), 0.0, qrs_gain=0.0), expected)


def test_training_is_deterministic_and_learns(synth_dir):
    cfg = _tiny_cfg()
    splits = make_splits(synth_dir, cfg)
    a = train_model(cfg, splits, progress=False)
    b = train_model(cfg, splits, progress=False)
    for (name, ta), tb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(ta, tb), name
    losses = [h["train_loss"] for h in a.history]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("overrides", [{"imbalance": "weighted_loss", "loss": "focal"}, {"imbalance": "none"},
                                       {"imbalance": "logit_adjust"}])
def test_other_imbalance_options_train(synth_dir, overrides):
    import dataclasses
    cfg = _tiny_cfg()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, **overrides))
    assert train_model(cfg, make_splits(synth_dir, cfg), progress=False).history


def test_recipes_lists_every_shipped_recipe_with_its_base():
    from edgeecg.config import recipe_names
    res = CliRunner().invoke(main, ["recipes"])
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split()[1:] for line in res.output.splitlines()[1:]}
    assert set(rows) == set(recipe_names())
    assert rows["hybrid"][:5] == ["-", "hybrid", "10", "mitdb+svdb", "The"]
    assert rows["hybrid_two_lead_power035"][0] == "hybrid_two_lead" and rows["hybrid_focal"][0] == "hybrid_ds1"
    assert rows["hybrid_svdb_run"][0] == "hybrid_regular" and rows["hybrid_regular"][0] == "-"
    assert "et al. 2018" in " ".join(rows["kaggle"])          # a sentence ends at ". ", not inside "et al."


def test_patient_power_evens_out_patients_within_a_class_and_keeps_each_class_total():
    from edgeecg.train import _epoch_order, patient_shares
    from edgeecg.config import TrainConfig
    y = np.array([0] * 60 + [1] * 36 + [1] * 4)                 # S: patient b holds 36, c holds 4
    record = np.array(["a"] * 60 + ["b"] * 36 + ["c"] * 4)
    for power, b_share in ((0.0, 0.9), (0.5, 6 / 8), (1.0, 0.5)):
        w = patient_shares(y, record, power)
        np.testing.assert_allclose([w[y == 0].sum(), w[y == 1].sum()], [60, 40])
        assert w[record == "b"].sum() / w[y == 1].sum() == pytest.approx(b_share)
    draws = _epoch_order(y, TrainConfig(epoch_beats=20000, patient_power=1.0), torch.Generator().manual_seed(0),
                         patient_shares(y, record, 1.0)).numpy()
    s_draws = record[draws][y[draws] == 1]
    assert abs((s_draws == "c").mean() - 0.5) < 0.03                # c's 4 beats drawn as often as b's 36
    plain = _epoch_order(y, TrainConfig(epoch_beats=20000), torch.Generator().manual_seed(0)).numpy()
    assert abs((record[plain][y[plain] == 1] == "c").mean() - 0.1) < 0.03


def test_class_powers_give_one_class_its_own_power_in_the_sampler():
    from edgeecg.train import _epoch_order
    from edgeecg.config import TrainConfig
    y = np.array([0] * 900 + [1] * 90 + [3] * 10)
    shares = {}
    for cfg in (TrainConfig(epoch_beats=40000, imbalance_power=0.35),
                TrainConfig(epoch_beats=40000, imbalance_power=0.35, class_powers={"F": 0.5})):
        drawn = np.bincount(y[_epoch_order(y, cfg, torch.Generator().manual_seed(0)).numpy()], minlength=5)
        shares[bool(cfg.class_powers)] = drawn / drawn.sum()
    w = np.array([1.0, 10 ** 0.35, 90 ** 0.35, 90 ** 0.5])      # N, S, F at 0.35, F at 0.5
    expected_plain = np.array([900, 90 * w[1], 10 * w[2]]) / (900 + 90 * w[1] + 10 * w[2])
    expected_f = np.array([900, 90 * w[1], 10 * w[3]]) / (900 + 90 * w[1] + 10 * w[3])
    np.testing.assert_allclose(shares[False][[0, 1, 3]], expected_plain, atol=0.01)
    np.testing.assert_allclose(shares[True][[0, 1, 3]], expected_f, atol=0.01)
    assert shares[True][3] > 1.5 * shares[False][3]              # F drawn more often, S's weight unchanged


def test_class_powers_are_refused_for_multi_label_beats():
    import dataclasses
    from edgeecg.data import BeatSet
    from edgeecg.errors import EdgeECGError
    cfg = _tiny_cfg()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, class_powers={"F": 0.5}))
    beats = BeatSet(np.zeros((4, cfg.data.channels, cfg.data.window), np.float32), np.zeros((4, 0), np.float32),
                    np.eye(5, dtype=np.int64)[[0, 1, 2, 3]], np.array(["a"] * 4))
    with pytest.raises(EdgeECGError, match="class_powers .* one class each"):
        train_model(cfg, {"train": beats}, progress=False)


def test_drop_regular_s_leaves_out_only_the_s_beats_that_are_not_early(synth_dir):
    import dataclasses
    from edgeecg.config import rr_feature_names
    from edgeecg.data import BeatSet
    from edgeecg.errors import EdgeECGError
    from edgeecg.train import regular_s
    cfg = _tiny_cfg()
    k = len(rr_feature_names(cfg.data))
    rr = np.ones((4, k), np.float32)
    rr[:, rr_feature_names(cfg.data).index("pre_over_regular")] = [0.6, 0.85, 0.85, 0.79]
    beats = BeatSet(np.zeros((4, cfg.data.channels, cfg.data.window), np.float32), rr, np.array([1, 1, 0, 1]),
                    np.array(["a"] * 4))
    assert regular_s(beats, cfg).tolist() == [False, True, False, False]     # band edge 0.8; N beats stay
    splits = make_splits(synth_dir, cfg)
    drop = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, drop_regular_s=True))
    assert train_model(drop, splits, progress=False).history
    no_pre = dataclasses.replace(drop, data=dataclasses.replace(cfg.data, rr_features=("prev_over_regular",)))
    with pytest.raises(EdgeECGError, match="pre_over_regular"):
        train_model(no_pre, make_splits(synth_dir, no_pre), progress=False)


def test_logit_adjusted_loss_learns_the_samplers_target():
    """Class biases fitted on labels drawn as they come, with tau log(prior) added inside the loss, end at
    (1 - tau) log(prior): the logits the sampler at power tau aims at (up to a constant)."""
    from edgeecg.train import logit_adjustment
    y = np.repeat(np.arange(5), [800, 100, 60, 30, 10])
    tau = 0.5
    adjust = logit_adjustment(y, tau)
    prior = np.bincount(y) / len(y)
    np.testing.assert_allclose(adjust.numpy(), tau * np.log(prior), rtol=1e-6)
    assert logit_adjustment(np.zeros(4, np.int64), 1.0)[1] == pytest.approx(np.log(1 / 8))  # no beats: counts one
    bias = torch.zeros(5, requires_grad=True)
    opt = torch.optim.SGD([bias], lr=1.0)
    target = torch.from_numpy(y)
    for _ in range(3000):
        opt.zero_grad()
        torch.nn.functional.cross_entropy((bias + adjust).expand(len(y), 5), target).backward()
        opt.step()
    want = (1 - tau) * np.log(prior)
    np.testing.assert_allclose(bias.detach().numpy() - bias.detach().numpy().mean(), want - want.mean(), atol=1e-3)


def test_logit_adjust_changes_what_training_learns_from_the_same_draws(synth_dir):
    """``imbalance = "none"`` and ``"logit_adjust"`` draw the same beats in the same order for a seed, so
    the only difference between their models is the adjustment inside the loss."""
    import dataclasses
    from edgeecg.train import _epoch_order
    cfg = _tiny_cfg()
    runs = {}
    for mode in ("none", "logit_adjust"):
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, imbalance=mode))
        runs[mode] = train_model(c, make_splits(synth_dir, c), progress=False).model.state_dict()
    assert any(not torch.equal(runs["none"][k], runs["logit_adjust"][k]) for k in runs["none"])
    y = np.zeros(10, np.int64)
    longer = _epoch_order(y, dataclasses.replace(cfg.train, imbalance="none", epoch_beats=25), torch.Generator())
    assert len(longer) == 25 and np.bincount(longer.numpy(), minlength=10).min() >= 2     # every beat, again


def test_logit_offsets_move_the_decision_only_and_training_never_sees_them(synth_dir):
    """``[model.params] logit_offsets`` shifts the trained model's logits in evaluation (what export folds
    into the last bias); were they in the training loss, the last bias would learn them away."""
    import dataclasses
    from edgeecg.models.nets import plain
    cfg = _tiny_cfg()
    offsets = [0.0, -1.0, 0.5, 0.0, 0.0]
    shifted = dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, params={**cfg.model.params, "logit_offsets": offsets}))
    splits = make_splits(synth_dir, cfg)
    a = train_model(cfg, splits, progress=False).model.eval()
    b = train_model(shifted, splits, progress=False).model.eval()
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert name == "logit_offsets" or torch.equal(ta, tb), name
    beats = splits["test"]
    x, rr = torch.from_numpy(beats.x[:16]), torch.from_numpy(beats.rr[:16])
    with torch.no_grad():
        torch.testing.assert_close(b(x, rr) - a(x, rr), torch.tensor(offsets).expand(16, 5), rtol=0, atol=1e-5)
        torch.testing.assert_close(plain(b)(x, rr), b(x, rr))


def test_logit_adjust_is_refused_for_multilabel_beats():
    import dataclasses
    from edgeecg.data import BeatSet
    from edgeecg.errors import EdgeECGError
    cfg = _tiny_cfg()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, imbalance="logit_adjust"))
    beats = BeatSet(np.zeros((4, cfg.data.channels, cfg.data.window), np.float32), np.zeros((4, 0), np.float32),
                    np.eye(5, dtype=np.int64)[[0, 1, 2, 3]], np.array(["a"] * 4))
    with pytest.raises(EdgeECGError, match="logit_adjust"):
        train_model(cfg, {"train": beats}, progress=False)


def test_patient_power_is_refused_where_it_cannot_apply(synth_dir):
    import dataclasses
    from edgeecg.errors import EdgeECGError
    cfg = _tiny_cfg()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, imbalance="none", patient_power=0.5))
    with pytest.raises(EdgeECGError, match="patient_power"):
        train_model(cfg, make_splits(synth_dir, cfg), progress=False)


def test_cli_train_writes_a_complete_run_and_evaluate_reproduces_it(synth_dir, tiny_toml, tmp_path):
    out = tmp_path / "run"
    res = _train(synth_dir, out, tiny_toml, "--quiet")
    assert res.exit_code == 0, res.output
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == RUN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("val", "test"):
        assert set(metrics[split]["per_class"]) == {"N", "S", "V", "F", "Q"}
        assert set(metrics[split]["per_class"]["V"]) == {"se", "ppv", "f1", "support"}
        assert {"macro_f1", "accuracy", "confusion", "labels"} <= set(metrics[split])
    assert metrics["params"] > 0 and metrics["macs_per_beat"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"s1/s1.hea", "s1/s1.dat", "s1/s1.atr"} <= set(manifest["inputs"])
    assert set(manifest["outputs"]) == RUN_FILES - {"manifest.json"}

    res = CliRunner().invoke(main, ["evaluate", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.count("matches") == 2

    again = _train(synth_dir, out, tiny_toml)
    assert again.exit_code != 0 and "already exists (use --force" in again.output
    cfg, model, _ = load_run(out)
    assert cfg.model.name == "hybrid" and not model.training


def test_random_split_needs_the_flag_and_is_labelled_leaky(synth_dir, tmp_path):
    toml = tmp_path / "random.toml"
    toml.write_text(TINY.replace("[split]", "[split]\nkind = \"random\""))
    res = _train(synth_dir, tmp_path / "r", toml)
    assert res.exit_code != 0 and "--random-split" in res.output
    res = _train(synth_dir, tmp_path / "r", toml, "--random-split", "--quiet")
    assert res.exit_code == 0, res.output
    assert "LEAKY" in res.output
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["split"]["leaky"] is True


def test_data_info(synth_dir):
    res = CliRunner().invoke(main, ["data", "info", "--data", str(synth_dir)])
    assert res.exit_code == 0, res.output
    assert "4 records" in res.output and "all" in res.output


@pytest.mark.parametrize("args, message", [
    (["data", "info", "--data", "/nonexistent/dir"], "/nonexistent/dir: data directory does not exist"),
    (["train", "--data", "/nonexistent/dir", "--out", "X"], "data directory does not exist"),
    (["train", "--data", "{synth}", "--out", "{tmp}/o", "--config", "{tmp}/missing.toml"], "missing.toml: config file not found"),
    (["evaluate", "{tmp}/norun"], "norun: run directory does not exist"),
    (["evaluate", "{tmp}"], "model.pt: no model in this run directory"),
])
def test_cli_errors_are_one_line_without_traceback(synth_dir, tmp_path, args, message):
    args = [a.format(synth=synth_dir, tmp=tmp_path) for a in args]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0
    assert message in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_cli_unknown_model_and_bad_record(synth_dir, tmp_path):
    bad_model = tmp_path / "m.toml"
    bad_model.write_text(TINY.replace("[model.params]", "[model]\nname = \"resnet\"\n\n[model.params]"))
    res = _train(synth_dir, tmp_path / "o", bad_model)
    assert res.exit_code != 0 and "unknown model 'resnet'" in res.output
    bad_rec = tmp_path / "r.toml"
    bad_rec.write_text(TINY.replace('test = ["s4"]', 'test = ["999"]'))
    res = _train(synth_dir, tmp_path / "o", bad_rec)
    assert res.exit_code != 0 and "record '999' not found" in res.output
    assert not (tmp_path / "o").exists()
    assert not any(p.name.startswith(".o.") for p in tmp_path.iterdir())   # no half-written run dir


def test_force_replaces_a_run(synth_dir, tiny_toml, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("x")
    res = _train(synth_dir, out, tiny_toml, "--quiet", "--force")
    assert res.exit_code == 0, res.output
    assert not (out / "old.txt").exists() and (out / "model.pt").exists()
    assert np.isfinite(json.loads((out / "metrics.json").read_text())["test"]["macro_f1"])


@pytest.mark.parametrize("rr_params", [{}, {"rr_hidden": 16, "rr_units": 4}])
def test_rhythm_stage_fits_n_against_s_first_and_the_network_then_moves_only_its_threshold(rr_params):
    import dataclasses
    from sklearn.metrics import roc_auc_score
    from edgeecg.config import rr_feature_names
    from edgeecg.data import BeatSet
    from edgeecg.errors import EdgeECGError
    from edgeecg.models import build_model
    from edgeecg.rhythm_stage import fit_rhythm
    from edgeecg.train import seed_everything
    cfg = _tiny_cfg()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2, patience=0, rhythm_epochs=600),
                              model=dataclasses.replace(cfg.model, params={**cfg.model.params, **rr_params}))
    rng = np.random.default_rng(0)
    y = rng.choice(3, 600, p=[0.8, 0.1, 0.1])
    names = rr_feature_names(cfg.data)
    rr = rng.normal(1.0, 0.1, (600, len(names))).astype(np.float32)
    rr[y == 1, names.index("pre_over_regular")] -= 0.3                 # S beats come early
    x = rng.normal(size=(600, cfg.data.channels, cfg.data.window)).astype(np.float32)
    beats = BeatSet(x, rr, y, np.array(["a"] * 600))
    trained = train_model(cfg, {"train": beats}, progress=False).model
    seed_everything(cfg.train.seed)                                     # the first stage alone, as train_model does it
    staged = build_model(cfg.model.name, cfg.data, **cfg.model.params)
    staged.rr_norm.fit(torch.from_numpy(rr))
    fit_rhythm(staged, beats, cfg.train, torch.device("cpu"))
    for (p, mask), (q, _) in zip(staged.rhythm_entries(), trained.rhythm_entries(), strict=True):
        assert torch.equal(p[mask], q[mask])      # kept through the network's epochs and its moving average
    with torch.no_grad():
        ns = staged.ns_logit(torch.from_numpy(rr))
        shift = trained.ns_logit(torch.from_numpy(rr)) - ns
    assert float(shift.std()) < 1e-5 < abs(float(shift.mean()))        # only the threshold moved
    assert roc_auc_score(y[y <= 1] == 1, ns[y <= 1]) > 0.95              # and the stage learnt the timing
    plain_head = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, params={**cfg.model.params,
                                                                                       "factorized": False}))
    with pytest.raises(EdgeECGError, match="rhythm_epochs"):
        train_model(plain_head, {"train": beats}, progress=False)
    for bad in ({"train": {"rhythm_epochs": -1}}, {"train": {"rhythm_epochs": 5}, "model": {"name": "cnn"}}):
        with pytest.raises(EdgeECGError, match="rhythm_epochs") as err:
            config_from_dict(bad)
        assert "\n" not in str(err.value)
