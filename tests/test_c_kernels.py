"""The generated C's int8 kernels against the numpy reference on hand-built graphs: every block size
(with zero-padded channel blocks), full-range weights, and requantization with left shifts that saturate."""

import numpy as np
import pytest

from edgeecg.quant.graph import Int8Graph, Layer, QParams
from edgeecg.quant.reference import run_int8
from firmware_export import convert
from firmware_export.cmodel import blocked_weights


def random_graph(seed: int, max_shift: int) -> Int8Graph:
    """beat (16, 3) -> conv k5 (5 ch, ReLU range) -> maxpool -> concat rr (4) -> fc (5 logits).

    With ``max_shift`` > 0 one channel per layer has a left shift and a bias of 2^30, which saturates.
    """
    rng = np.random.default_rng(seed)
    shapes = {0: (1, 16, 3), 1: (1, 4), 2: (1, 16, 5), 3: (1, 8, 5), 4: (1, 44), 5: (1, 5)}
    g = Int8Graph(shapes=shapes, beat_input=0, rr_input=1, output=5)
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

    g.layers = [dense("conv", [0], 2, (5, 5, 3), act_min=g.qparams[2].zero_point),
                Layer("maxpool", [2], 3), Layer("concat", [3, 1], 4), dense("fc", [4], 5, (5, 44))]
    return g


@pytest.mark.parametrize("block", [1, 3, 8, 16])
@pytest.mark.parametrize("max_shift", [0, 3])
def test_c_matches_the_reference_for_every_block_size(block, max_shift):
    g = random_graph(seed=block * 10 + max_shift, max_shift=max_shift)
    c = convert(g, "k", block=block)
    assert f"#define LEFT_SHIFT {int(max_shift > 0)}" in c.files["k_model.c"]
    rng = np.random.default_rng(1)
    beat = rng.integers(-128, 128, (400, 16, 3), dtype=np.int8)
    rr = rng.integers(-128, 128, (400, 4), dtype=np.int8)
    expected = run_int8(g, beat, rr)
    assert len(np.unique(expected)) > 20          # the outputs span the int8 range, not one clamped value
    np.testing.assert_array_equal(c.predict(beat, rr), expected)


def test_blocked_weights_layout_and_padding():
    w = np.arange(5 * 2 * 3).reshape(5, 2, 3).astype(np.int8)     # (out 5, k 2, in 3)
    b = blocked_weights(w, 4)
    assert b.shape == (2, 6, 4)                                   # 2 blocks, k * in inputs, 4 channels
    assert b[0, 4, 2] == w[2, 1, 1]                               # input position tap * in + channel
    assert b[1, :, 0].tolist() == w[4].ravel().tolist() and not b[1, :, 1:].any()   # zero padding


def test_block_must_be_positive():
    with pytest.raises(ValueError, match="block must be >= 1"):
        convert(random_graph(0, 0), block=0)
