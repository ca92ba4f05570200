"""Filtering, beats, RR features and AAMI classes."""

import dataclasses

import numpy as np
import pytest

from edgeecg.config import CAUSAL_RR_FEATURES, P_WAVE_FEATURES, DataConfig, config_from_dict, rr_feature_names
from edgeecg.errors import EdgeECGError
from edgeecg.io import rdrecord
from edgeecg.processing.aami import CLASSES, aami_labels, class_counts
from edgeecg.processing.beats import (SCALE_BEATS, extract_beats, irregularity, normalise_windows, p_wave_features,
                                      p_wave_region, patient_scale, regular_rr, round_to_input_grid, rr_features,
                                      template_channel)
from edgeecg.processing.filters import BiquadCascade, causal_filter, design_bandpass, initial_state, resample


def test_aami_mapping():
    labels = aami_labels(np.array(["N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q", "+", "~", "|"]))
    assert labels.tolist() == [0] * 5 + [1] * 4 + [2] * 2 + [3] + [4] * 3 + [-1] * 3
    assert class_counts(labels) == {"N": 5, "S": 4, "V": 2, "F": 1, "Q": 3}
    assert CLASSES == ("N", "S", "V", "F", "Q")


def test_causal_filter_equals_sample_by_sample_biquads():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal(3000)) * 0.01 + np.sin(np.arange(3000) / 9.0)
    sos = design_bandpass(180, (0.5, 40.0), 2)
    cascade = BiquadCascade(sos, initial_state(sos, x[0]))
    reference = np.array([cascade.step(v) for v in x])
    np.testing.assert_allclose(causal_filter(x, sos), reference, rtol=0, atol=1e-12)


def test_causal_filter_does_not_look_ahead():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(2000)
    sos = design_bandpass(180, (0.5, 40.0), 2)
    changed = x.copy()
    changed[1500:] += 5.0
    np.testing.assert_array_equal(causal_filter(x, sos)[:1500], causal_filter(changed, sos)[:1500])


def test_resample_length():
    assert len(resample(np.zeros(3600), 360, 180)) == 1800
    assert len(resample(np.zeros(2500), 250, 180)) == 1800


def test_realtime_rr_features_are_causal():
    cfg = DataConfig(mode="realtime", rr_features=CAUSAL_RR_FEATURES)
    r = np.cumsum(np.full(50, 144))
    later = r.copy()
    later[30:] += 40            # the future changes ...
    a, b = rr_features(r, 180, cfg), rr_features(later, 180, cfg)
    np.testing.assert_array_equal(a[:28], b[:28])   # ... the features of earlier beats do not
    assert a.shape[1] == len(rr_feature_names(cfg)) == len(CAUSAL_RR_FEATURES)
    expected = {"pre_rr": 0.8, "prev_rr": 0.8, "local_rr": 0.8, "avg_rr": 0.8, "regular_rr": 0.8, "irregularity": 0,
                "pre_z_regular": 0, "irregular_fraction": 0,
                **dict.fromkeys(P_WAVE_FEATURES, 0)}     # measured on the windows: extract_beats fills them in
    np.testing.assert_allclose(a[5], [expected.get(n, 1.0) for n in CAUSAL_RR_FEATURES])


def test_regular_rr_ignores_ectopic_beats_and_follows_a_lasting_change():
    cfg = DataConfig()
    rr = np.full(300, 1.0)
    rr[50], rr[51] = 0.6, 1.4          # a premature beat and its compensatory pause
    rr[80] = 3.0                       # a pause
    rr[120:] = 0.7                     # a lasting faster rhythm
    reg = regular_rr(rr, cfg)
    np.testing.assert_allclose(reg[:51], 1.0)                   # before beat 50: nothing irregular yet
    assert abs(reg[52] - 1.0) < 0.02 and abs(reg[81] - 1.0) < 0.05   # one ectopic beat barely moves it
    assert abs(reg[299] - 0.7) < 1e-9                           # the new rhythm is followed (90 beats) ...
    assert reg[125] > 0.95                                      # ... not at its first beats
    ratio = rr / reg
    assert ratio[50] < 0.65 and ratio[120] < 0.75


def test_pre_z_regular_measures_prematurity_in_the_patients_own_spread():
    """A beat 7 % early is far outside a metronomic rhythm and inside one with sinus arrhythmia."""
    cfg = DataConfig(rr_features=("pre_over_regular", "pre_z_regular"))
    rng = np.random.default_rng(0)
    z = {}
    for spread in (0.0, 0.06):
        rr = np.round(180 * (0.8 * (1 + spread * rng.uniform(-1, 1, 60)))).astype(np.int64)
        rr[40] = round(0.93 * rr[:40].mean())
        f = rr_features(np.cumsum(np.concatenate([[0], rr])), 180, cfg)
        assert 0.88 < f[40, 0] < 0.98                  # the same ratio to the regular RR ...
        z[spread] = f[40, 1]
        assert np.abs(f[:, 1]).max() <= 16
    assert z[0.0] < -4 < -2 < z[0.06] < 0                # ... a different prematurity in units of spread


def test_irregularity_is_high_in_an_irregular_rhythm():
    rng = np.random.default_rng(0)
    steady, irregular = np.full(50, 0.8), 0.8 + 0.3 * rng.uniform(-1, 1, 50)
    assert irregularity(steady, 8).max() == 0
    assert irregularity(irregular, 8)[10:].min() > 0.05
    assert irregularity(irregular, 8)[0] == 0


def test_irregular_fraction_counts_the_intervals_before_each_one_off_the_estimate():
    from edgeecg.processing.beats import irregular_fraction

    est = np.full(8, 100.0)
    rr = np.array([100, 100, 80, 120, 100, 100, 60, 140.0])     # off by more than 12 %: 2, 3, 6, 7
    np.testing.assert_allclose(irregular_fraction(rr, est, n=4), [0, 0, 0, 1 / 3, 2 / 4, 2 / 4, 2 / 4, 2 / 4])
    assert irregular_fraction(np.array([60.0, 100.0]), np.full(2, 100.0), n=4)[0] == 1.0   # the first: its own
    sinus = rr_features(np.cumsum(np.full(60, 144)), 180, DataConfig(rr_features=("irregular_fraction",)))
    assert sinus.shape == (59, 1) and sinus.max() == 0.0


def test_run_anchor_keeps_a_tachycardia_run_early_and_nothing_else():
    """Question 40: through a 300-beat run at half the sinus interval the regular-RR estimate follows
    the run (its ratio ends near 1) while the anchored ratio stays at 0.5; outside the run, an isolated
    premature beat and a gradual speed-up, the anchored features equal the estimate's."""
    cfg = DataConfig(rr_features=("pre_over_anchor", "prev_over_anchor", "pre_over_regular", "prev_over_regular"))
    steps = np.concatenate([np.full(40, 144), np.full(300, 72), np.full(100, 144),
                            [100, 200], np.full(40, 144),                 # a lone premature beat, then a pause
                            np.linspace(144, 100, 400).round()])          # a speed-up of 0.1 % a beat
    f = rr_features(np.concatenate([[0], np.cumsum(steps)]), 180, cfg)    # row i: the interval steps[i]
    run = slice(40, 340)
    np.testing.assert_allclose(f[run, 0], 0.5)
    assert f[run, 2][-1] > 0.75 and f[run, 2][0] < 0.55                    # the estimate followed the run
    np.testing.assert_allclose(f[run, 1][1:], 0.5)                       # the previous interval too
    outside = np.r_[0:40, 340:len(f)]
    np.testing.assert_array_equal(f[outside, :2], f[outside, 2:])
    lone = 40 + 300 + 100                                                  # the premature beat: a one-beat run
    assert f[lone, 0] == f[lone, 2] < 0.8 and f[lone + 1, 0] > 1.2


def test_diagnostic_mode_uses_next_rr_and_realtime_refuses_it():
    cfg = DataConfig(mode="diagnostic", rr_features=("pre_rr", "post_rr"))
    r = np.array([0, 100, 300, 400])
    feats = rr_features(r, 100, cfg)
    assert feats[0, 1] == 2.0      # beat 1: next RR is 200 samples
    assert np.isnan(feats[-1, 1])
    with pytest.raises(EdgeECGError, match="need mode"):
        config_from_dict({"data": {"rr_features": ["pre_rr", "post_over_regular"]}})
    with pytest.raises(EdgeECGError, match="unknown bogus"):
        config_from_dict({"data": {"rr_features": ["bogus"]}})


def test_template_channel_is_causal_and_starts_at_zero():
    w = np.random.default_rng(0).standard_normal((10, 8))
    t = template_channel(w, 4)
    np.testing.assert_array_equal(t[0], 0)
    w2 = w.copy()
    w2[7:] = 9.0
    np.testing.assert_array_equal(template_channel(w2, 4)[:7], t[:7])


def test_extract_beats_shapes_labels_and_normalisation(synth_dir):
    cfg = DataConfig()
    beats = extract_beats(rdrecord(synth_dir, "s1"), cfg)
    assert beats.x.shape == (len(beats.y), 2, cfg.window)
    assert beats.rr.shape == (len(beats.y), len(cfg.rr_features))
    assert len(beats.y) == 79                     # 80 beats minus the first (no previous RR)
    assert set(beats.y.tolist()) == {0, 1, 2}
    np.testing.assert_allclose(beats.x[:, 0].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(beats.x[:, 0].std(axis=1), 1, atol=1e-3)
    # premature beats are premature in the features
    ratio = beats.rr[:, rr_feature_names(cfg).index("pre_over_regular")]
    assert ratio[beats.y == 2].mean() < 0.8 < ratio[beats.y == 0].mean()


def test_round_to_input_grid():
    x = np.array([-10.0, -0.024, 0.026, 0.1, 10.0], np.float32)
    np.testing.assert_allclose(round_to_input_grid(x, 0.05), [-6.4, 0.0, 0.05, 0.1, 6.35], rtol=1e-6)
    assert round_to_input_grid(x, 0.0) is x


def test_beats_on_the_int8_input_grid(synth_dir):
    """With ``input_step`` a beat is what the device feeds the int8 model: whole steps in [-128, 127]."""
    cfg = dataclasses.replace(DataConfig(), input_step=0.05)
    steps = extract_beats(rdrecord(synth_dir, "s1"), cfg).x / cfg.input_step
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)
    assert steps.min() >= -128 and steps.max() <= 127
    exact = extract_beats(rdrecord(synth_dir, "s1"), DataConfig()).x
    assert np.abs(steps * cfg.input_step - np.clip(exact, -6.4, 6.35)).max() <= cfg.input_step / 2 + 1e-5


def test_other_sampling_rate_is_resampled(synth_dir):
    cfg = DataConfig()
    beats = extract_beats(rdrecord(synth_dir, "s4"), cfg)   # written at 250 Hz
    assert beats.x.shape[2] == cfg.window
    assert 75 <= len(beats.y) <= 79


def test_template_off_gives_one_channel(synth_dir):
    cfg = dataclasses.replace(DataConfig(), template_beats=0)
    assert extract_beats(rdrecord(synth_dir, "s1"), cfg).x.shape[1] == 1


def test_template_moves_only_on_the_beats_it_is_told_to():
    w = np.random.default_rng(1).standard_normal((6, 8))
    update = np.array([True, False, False, True, False, True])
    t = template_channel(w, 4, update)
    template = w[0].copy()
    for i in range(6):
        np.testing.assert_allclose(t[i], w[i] - template)
        if update[i]:
            template += (w[i] - template) / 4


def test_the_gated_template_keeps_far_beats_out_and_relocks():
    from edgeecg.processing.beats import template_channel

    normal, ectopic = np.zeros(8), np.ones(8)
    windows = np.array([normal] * 5 + [ectopic] * 20 + [normal] * 3)
    plain = template_channel(windows, 4)                     # every beat updates: ectopic beats pull it
    gated = template_channel(windows, 4, gate=0.5)
    assert np.abs(plain[8]).mean() < 0.5                     # after 3 ectopic beats it looks half ectopic
    assert np.allclose(gated[5:9], 1.0)                      # the gate keeps the template normal ...
    assert np.allclose(gated[9], 1.0) and np.abs(gated[10]).mean() < 1.0   # ... for 4 (time constant) in a row
    assert np.array_equal(template_channel(windows, 4, gate=0.0), plain)


def _p_wave_beats(n: int = 60, odd: int = 45, seed: int = 0) -> np.ndarray:
    """``n`` normalised windows of one patient (P wave at index 20, R peak at 48); beat ``odd``'s P inverted."""
    t = np.arange(DataConfig().window)
    p_wave = 0.3 * np.exp(-0.5 * ((t - 20) / 4) ** 2)
    w = p_wave + 2.0 * np.exp(-0.5 * ((t - 48) / 2) ** 2) + 0.02 * np.random.default_rng(seed).standard_normal((n, t.size))
    w[odd] -= 2 * p_wave
    return normalise_windows(w)


def test_p_wave_features_flag_a_changed_p_wave_against_the_patients_own_history():
    cfg = DataConfig()
    assert (p_wave_region(cfg).start, p_wave_region(cfg).stop) == (3, 34)     # 0.25 to 0.075 s before R
    windows = _p_wave_beats()
    f = p_wave_features(windows, template_channel(windows, 16), cfg)
    usual = slice(30, 45)
    assert f["p_diff_rel"][45] > 3 * f["p_diff_rel"][usual].max()
    assert f["p_corr_rel"][45] < -1.0 < f["p_corr_rel"][usual].min()
    # causal: what comes later changes nothing before it
    later = windows.copy()
    later[50:] = 0.0
    g = p_wave_features(later, template_channel(later, 16), cfg)
    for name in P_WAVE_FEATURES:
        np.testing.assert_array_equal(f[name][:50], g[name][:50])


def test_extract_beats_fills_the_p_wave_features_from_its_own_windows(synth_dir):
    cfg = dataclasses.replace(DataConfig(), rr_features=("pre_over_regular", "p_diff_rel", "p_corr_rel"))
    beats = extract_beats(rdrecord(synth_dir, "s1"), cfg)
    f = p_wave_features(beats.x[:, 0].astype(np.float64), beats.x[:, 1].astype(np.float64), cfg)
    np.testing.assert_allclose(beats.rr[:, 1], f["p_diff_rel"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(beats.rr[:, 2], f["p_corr_rel"], rtol=1e-4, atol=1e-4)
    assert np.ptp(beats.rr[:, 1]) > 0       # filled in, not left at the placeholder


def test_template_polarity_gives_an_inverted_record_the_same_beats(synth_dir):
    record = rdrecord(synth_dir, "s1")
    inverted = dataclasses.replace(record, signal=-record.signal)
    cfg = dataclasses.replace(DataConfig(), polarity="template")
    upright, flipped = extract_beats(record, cfg), extract_beats(inverted, cfg)
    np.testing.assert_allclose(flipped.x, upright.x, atol=1e-5)                     # the lead's sign is gone
    assert np.allclose(extract_beats(inverted, DataConfig()).x, -upright.x, atol=1e-5)   # as recorded: kept
    assert np.array_equal(upright.x, extract_beats(record, DataConfig()).x)         # s1 is upright already
    with pytest.raises(EdgeECGError, match="polarity = \"template\" reads the patient's template") as err:
        config_from_dict({"data": {"polarity": "template", "template_beats": 0}})
    assert "\n" not in str(err.value)


def test_patient_scale_keeps_a_beat_s_size_against_the_patient_s_usual_beat(synth_dir):
    record = rdrecord(synth_dir, "s1")
    cfg = dataclasses.replace(DataConfig(), scale="patient")
    beats = extract_beats(record, cfg)
    k = len(beats.y) // 2                         # one beat in the middle of the record twice as large
    r = int(round(beats.sample[k] * record.fs / cfg.fs))
    span = slice(r - int(0.2 * record.fs), r + int(0.3 * record.fs))
    signal = record.signal.copy()
    signal[span] *= 2.0
    bigger = extract_beats(dataclasses.replace(record, signal=signal), cfg)
    own, usual = bigger.x[:, 0].std(axis=1), beats.x[:, 0].std(axis=1)
    assert 1.6 < own[k] / usual[k] < 2.4                          # kept twice as large
    np.testing.assert_allclose(bigger.x[:k - 1], beats.x[:k - 1], atol=1e-5)    # causal: the beats before, unchanged
    z = extract_beats(dataclasses.replace(record, signal=signal), DataConfig()).x[:, 0].std(axis=1)
    assert abs(z[k] - 1.0) < 0.05                                 # the per-beat z-score hides it
    gain = extract_beats(dataclasses.replace(record, signal=3.0 * record.signal), cfg)
    np.testing.assert_allclose(gain.x, beats.x, atol=1e-4)        # a whole record's gain cancels
    with pytest.raises(EdgeECGError, match="scale = \"patient\" reads the patient's earlier beats") as err:
        config_from_dict({"data": {"scale": "patient", "dataset": "ptbxl"}})
    assert "\n" not in str(err.value)


def test_patient_scale_divides_by_the_running_spread_of_earlier_regular_beats():
    rng = np.random.default_rng(0)
    spreads = np.array([1.0, 1.0, 5.0, 1.0, 2.0, 2.0, 1.0])
    regular = np.array([True, True, False, True, True, True, True])      # beat 2: large and irregular
    windows = rng.standard_normal((len(spreads), 64))
    windows = (windows - windows.mean(axis=1, keepdims=True)) / windows.std(axis=1, keepdims=True)
    windows = windows * spreads[:, None] + 3.0                            # an offset: centred away
    level, expected = spreads[0], []
    for s, moves in zip(spreads, regular):                                # only earlier regular beats move it
        expected.append(level)
        if moves:
            level += (s - level) / SCALE_BEATS
    out = patient_scale(windows, regular)
    np.testing.assert_allclose(out.std(axis=1), spreads / np.array(expected), rtol=1e-6)
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-9)
    moved = patient_scale(windows, np.ones(len(spreads), bool))           # beat 2 now moves the level
    assert moved[3].std() < out[3].std()
    assert patient_scale(windows[:0], regular[:0]).shape == (0, 64)


def test_p_wave_features_need_the_template():
    with pytest.raises(EdgeECGError, match="p_diff_rel compare the beat with the patient's template") as err:
        config_from_dict({"data": {"rr_features": ["pre_over_regular", "p_diff_rel"], "template_beats": 0}})
    assert "\n" not in str(err.value)
