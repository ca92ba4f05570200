"""The generated C's int8 kernels against the numpy reference on hand-built graphs: every block size
(with zero-padded channel blocks), odd input counts, an even kernel, full-range weights, requantization
with left shifts that saturate, and both kernel builds (portable C99, and the AVX2 one where this
machine has AVX2)."""

import numpy as np
import pytest

from edgeecg.quant.graph import Int8Graph, Layer, QParams
from edgeecg.quant.reference import class_scores, classify_int8
from firmware_export import convert
from firmware_export.cmodel import blocked_weights, kernel_build


def random_graph(seed: int, max_shift: int) -> Int8Graph:
    """beat (16, 3) -> conv k5 (5 ch, ReLU range) -> maxpool -> conv k4 (6 ch) -> concat rr (3) -> fc (5 logits).

    The first conv and the fc have odd input counts (15, 51); the second conv an even kernel (SAME
    pads 1 before, 2 after). With ``max_shift`` > 0 one channel per layer has a left shift and a
    bias of 2^30, which saturates.
    """
    rng = np.random.default_rng(seed)
    shapes = {0: (1, 16, 3), 1: (1, 3), 2: (1, 16, 5), 3: (1, 8, 5), 4: (1, 8, 6), 5: (1, 51), 6: (1, 5)}
    g = Int8Graph(shapes=shapes, beat_input=0, rr_input=1, output=6)
    g.qparams = {t: QParams(scale=0.05, zero_point=int(rng.integers(-128, 128))) for t in shapes}

    def dense(kind, inputs, output, wshape, act_min=-128):
        n = wshape[0]
        bias = rng.integers(-(1 << 16), 1 << 16, n)
        shift = rng.integers(-13, -7, n)                  # scales that keep most outputs inside int8
        if max_shift > 0:                                 # channel 0: left shift, saturating int32
            bias[0], shift[0] = rng.choice([-1, 1]) * (1 << 30), max_shift
        return Layer(kind, inputs, output, weights=rng.integers(-128, 128, wshape).astype(np.int8),
                     bias=bias.astype(np.int32), multiplier=rng.integers(1 << 30, (1 << 31) - 1, n).astype(np.int32),
                     shift=shift.astype(np.int32), act_min=act_min)

    g.layers = [dense("conv", [0], 2, (5, 5, 3), act_min=g.qparams[2].zero_point), Layer("maxpool", [2], 3),
                dense("conv", [3], 4, (6, 4, 5)), Layer("concat", [4, 1], 5), dense("fc", [5], 6, (5, 51))]
    return g


BUILDS = [pytest.param((), id="portable"),
          pytest.param(("-march=native",), id="avx2",
                       marks=pytest.mark.skipif(kernel_build(8, "cc", ("-march=native",)) != "avx2",
                                                reason="cc -march=native gives no AVX2 here"))]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("block", [1, 3, 8, 16])
@pytest.mark.parametrize("max_shift", [0, 3])
def test_c_matches_the_reference_for_every_block_size(block, max_shift, build):
    g = random_graph(seed=block * 10 + max_shift, max_shift=max_shift)
    c = convert(g, "k", block=block)
    assert f"#define LEFT_SHIFT {int(max_shift > 0)}" in c.files["k_model.c"]
    rng = np.random.default_rng(1)
    beat = rng.integers(-128, 128, (400, 16, 3), dtype=np.int8)
    rr = rng.integers(-128, 128, (400, 3), dtype=np.int8)
    expected, expected_cls = classify_int8(g, beat, rr)
    assert len(np.unique(expected)) > 20          # the outputs span the int8 range, not one clamped value
    logits, cls = c.run(beat, rr, extra_flags=build)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(cls, expected_cls)


def test_the_class_is_decided_below_the_int8_step():
    """Where two int8 logits tie, the class is the one whose accumulator is larger on the common
    scale (the per-channel multipliers and shifts taken into account), in the C as in numpy."""
    g = random_graph(seed=5, max_shift=0)
    fc = g.layers[-1]
    fc.weights[:] = 0
    fc.multiplier[:] = 1 << 30                     # 0.5 * 2**(shift - 30)
    fc.shift[:] = [-6, -6, -7, -6, -6]             # class 2's scale is half the others'
    fc.bias[:] = [6400, 6410, 12830, 0, 0]         # real values 50.0, 50.08, 50.12, 0, 0 (int8 steps)
    beat = np.zeros((1, 16, 3), np.int8)
    rr = np.zeros((1, 3), np.int8)
    logits, cls = classify_int8(g, beat, rr)
    zp = g.qparams[g.output].zero_point
    assert min(127, 50 + zp) == logits[0, 0] == logits[0, 1] == logits[0, 2]     # one int8 value
    assert logits[0].argmax() == 0 and cls[0] == 2
    scores = class_scores(fc.bias[None].astype(np.int64), fc)
    assert scores[0, 2] > scores[0, 1] > scores[0, 0]
    c_logits, c_cls = convert(g, "k").run(beat, rr)
    np.testing.assert_array_equal(c_logits, logits)
    assert c_cls[0] == 2


def test_blocked_weights_layout_and_padding():
    w = np.arange(1, 5 * 3 * 3 + 1).reshape(5, 3, 3).astype(np.int8)     # (out 5, k 3, in 3): 9 inputs
    b = blocked_weights(w, 4)
    assert b.shape == (2, 5, 4, 2)                      # 2 blocks, 5 input pairs (9 + 1 zero), 4 channels, pair
    assert b[0, 2, 3, 1] == w[3, 1, 2]                  # input 2 * 2 + 1 = 5 = tap 1 * in 3 + channel 2
    assert b[1, :, 0].ravel().tolist() == [*w[4].ravel(), 0]            # odd input count: one zero weight
    assert not b[1, :, 1:].any()                                        # padding channels


def test_block_must_be_positive():
    with pytest.raises(ValueError, match="block must be >= 1"):
        convert(random_graph(0, 0), block=0)


def test_kernel_build_needs_avx2_and_a_block_of_8s():
    assert kernel_build(3, "cc", ("-march=native",)) == "portable"     # not a multiple of 8 channels
    assert kernel_build(16, "cc", ("-mno-avx2",)) == "portable"        # no AVX2 (or not x86: flag refused)
