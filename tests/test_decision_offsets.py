"""Decision offsets (edgeecg.quant.decision_offsets): chosen on training beats, carried by the int8
graph's output biases only, and undoing a shift planted in the int8 graph's S score."""

import copy

import numpy as np

from edgeecg.quant import read_tflite


def _setup(exported, synth_dir):
    from edgeecg.data import make_splits
    from edgeecg.export.fold import fold
    from edgeecg.run import load_run

    d, _ = exported
    cfg, model, _ = load_run(d / "run")
    return cfg, model, fold(model), make_splits(synth_dir, cfg)


def test_offsets_undo_a_shift_planted_in_the_int8_graph(exported, synth_dir):
    """An int8 graph converted from the model with S's logit lowered by 0.2 calls fewer beats S than
    float; the offsets chosen against the float model raise S again and agree with float more. Random
    beats: the tiny model is sure of every synthetic one, and random ones lie near every boundary."""
    from edgeecg.data import BeatSet
    from edgeecg.export import tflite as tfl
    from edgeecg.export.fold import forward
    from edgeecg.quant.decision_offsets import OFFSET_GRID, choose_decision_offsets, int8_scores
    from edgeecg.quantize import calibration_set
    from edgeecg.runtimes import Int8GraphRunner

    _, _, fm, splits = _setup(exported, synth_dir)
    rng = np.random.default_rng(0)
    n, train = 3000, splits["train"]
    train = BeatSet(rng.normal(size=(n, *train.x.shape[1:])).astype(np.float32),
                    rng.normal(1.0, 0.3, size=(n, train.rr.shape[1])).astype(np.float32),
                    np.zeros(n, np.int64), np.array(["r"] * n))
    shifted, last = copy.deepcopy(fm), fm.layer_names()[-1]
    shifted.set_bias(last, fm.layer(last)[1] - np.array([0, 0.2, 0, 0, 0]))
    calib = calibration_set(train, 200, 0, 99.99, 0.0, 99.9)
    graph = read_tflite(tfl.convert(shifted, calib.x, calib.rr))
    quantized = Int8GraphRunner(graph).quantized_inputs(train.x, train.rr)
    chosen = choose_decision_offsets(fm, graph, train.x, train.rr, *quantized)
    assert chosen.beats == len(train)
    assert chosen.agreement > chosen.agreement_before          # the planted shift cost agreement
    assert chosen.offsets[0] == chosen.offsets[3] == chosen.offsets[4] == 0.0
    assert chosen.offsets[1] > 0 and chosen.offsets[1] in OFFSET_GRID and chosen.offsets[2] in OFFSET_GRID
    again = int8_scores(graph, *quantized) + np.array(chosen.offsets)
    assert int(np.sum(again.argmax(1) == forward(fm, train.x, train.rr).argmax(1))) == chosen.agreement
    assert chosen.fixed - chosen.broken == chosen.agreement - chosen.agreement_before and chosen.z > 0
    gated = choose_decision_offsets(fm, graph, train.x, train.rr, *quantized, min_z=chosen.z + 0.01)
    assert not gated.kept and not any(gated.offsets) and gated.agreement == gated.agreement_before
    assert choose_decision_offsets(fm, graph, train.x, train.rr, *quantized, min_z=chosen.z).kept


def test_offsets_change_only_the_output_biases_of_s_and_v(exported, synth_dir):
    """``quantize`` with decision offsets ships the same int8 graph but for S's and V's int32 output
    biases, and never agrees with float on fewer of the beats they were chosen on."""
    from edgeecg.quantize import QuantizeOptions, calibration_set, convert_int8

    _, _, fm, splits = _setup(exported, synth_dir)
    calib = calibration_set(splits["train"], 100, 0, 99.99, 0.0, 99.9)
    plain_graph = convert_int8(fm, calib, splits["train"], splits["train"],
                               QuantizeOptions(calib_beats=100, decision_offsets=False))
    with_offsets = convert_int8(fm, calib, splits["train"], splits["train"],
                                QuantizeOptions(calib_beats=100, decision_offsets_min_z=0.0))
    assert plain_graph.offsets is None and with_offsets.offsets is not None
    assert with_offsets.offsets.agreement >= with_offsets.offsets.agreement_before
    a, b = read_tflite(plain_graph.tflite), read_tflite(with_offsets.tflite)
    for la, lb in zip(a.layers[:-1], b.layers[:-1], strict=True):
        for field in ("weights", "bias", "multiplier", "shift"):
            np.testing.assert_array_equal(getattr(la, field), getattr(lb, field))
    last_a, last_b = a.output_layer(), b.output_layer()
    np.testing.assert_array_equal(last_a.weights, last_b.weights)
    moved = np.flatnonzero(last_a.bias != last_b.bias)
    assert set(moved) <= {1, 2}
    assert bool(len(moved)) == any(with_offsets.offsets.offsets)


def test_the_report_says_which_offsets_the_graph_carries():
    from edgeecg.report.sections_deploy import offsets_text

    block = {"offsets": [0.0, 0.14, -0.02, 0.0, 0.0], "agreement_with_float": 29_970,
             "agreement_with_float_before": 29_963, "beats": 30_000}
    assert offsets_text(block) == ("S +0.14, V -0.02 logits (int8 agrees with float on 29,970 of 30,000 "
                                   "training beats, 29,963 without)")
    gated = {**block, "offsets": [0.0] * 5, "agreement_with_float": 29_963, "fixed": 12, "broken": 8, "z": 0.89,
             "kept": False}
    assert offsets_text(gated) == ("none kept: the best pair fixed 12 and broke 8 of 30,000 training beats "
                                   "(z 0.89, below the minimum)")
    assert offsets_text({"skipped": "not asked for"}) == "not asked for"
    assert offsets_text(None) == "not recorded"
