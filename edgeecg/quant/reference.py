"""Numpy integer reference of an :class:`Int8Graph`: the arithmetic of TFLite's int8 reference
kernels (``MultiplyByQuantizedMultiplier``), which the generated C reproduces bit for bit.

The class is not the argmax of the int8 logits: those round the output layer to one step of its
scale, so two classes can tie where the float model had a clear winner (and ``argmax`` gives a tie
to the lower class, N). :func:`class_scores` decides on the same int32 accumulators at
``2**-SCORE_BITS`` of that step, exactly, in 64-bit integers; the generated C does the same."""

from __future__ import annotations

import numpy as np

from edgeecg.quant.graph import Int8Graph, Layer

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.int64), np.asarray(b, dtype=np.int64)
    ab = a * b
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))          # C division: truncate toward zero
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``acc * mult * 2**(shift - 31)`` rounded as TFLite does; the left shift saturates to int32."""
    shift = np.asarray(shift, dtype=np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    scaled = np.clip(acc.astype(np.int64) << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, mult), right)


def requantize(acc: np.ndarray, layer: Layer, out_zp: int) -> np.ndarray:
    """``layer``'s int8 outputs from its int32 accumulators (multiplier, shift, zero point, clamp)."""
    y = multiply_by_quantized_multiplier(acc, layer.multiplier, layer.shift) + out_zp
    return np.clip(y, layer.act_min, layer.act_max).astype(np.int8)


EXACT_IN_FLOAT64 = 1 << 53     # every integer of smaller magnitude is a float64


def integer_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of integer arrays, as int64. Through float64 (BLAS) where no partial sum can reach
    2**53 (``max|a| * max|b| * K``), so every sum is exact in any order; else in int64 (slow)."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    bound = int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) * a.shape[-1]
    if bound < EXACT_IN_FLOAT64:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


SCORE_BITS = 8      # class scores resolve 1/256 of an int8 logit step


def score_bits(layer: Layer) -> int:
    """Fraction bits of the class scores of output layer ``layer``: ``SCORE_BITS``, fewer where a
    requantization shift is so large that the score's right shift would drop below 1."""
    return int(max(0, min(SCORE_BITS, 30 - int(np.max(layer.shift)))))


def class_scores(acc: np.ndarray, layer: Layer) -> np.ndarray:
    """``round(acc * multiplier * 2**(shift - 31 + bits))`` per class, in int64 (half rounds up): the
    output layer's values on one scale for every class (the per-channel weight scales are in the
    multiplier), ``2**bits`` times finer than the int8 logits and not clamped."""
    right = 31 - layer.shift.astype(np.int64) - score_bits(layer)           # >= 1
    return (acc.astype(np.int64) * layer.multiplier.astype(np.int64) + (np.int64(1) << (right - 1))) >> right


def run_int8(g: Int8Graph, beat: np.ndarray, rr: np.ndarray | None = None) -> np.ndarray:
    """int8 logits (n, classes) of int8 inputs ``beat`` (n, W, C) and ``rr`` (n, K)."""
    return classify_int8(g, beat, rr)[0]


def classify_int8(g: Int8Graph, beat: np.ndarray, rr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """int8 logits (n, classes) and the class of each beat (n,), decided on :func:`class_scores`."""
    logits, acc = forward_int8(g, beat, rr)
    return logits, class_scores(acc, g.output_layer()).argmax(1)


BATCH = 1024     # beats per pass: each layer's im2col array stays a few MB, reused by the allocator


def forward_int8(g: Int8Graph, beat: np.ndarray, rr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """int8 logits (n, classes) and the output layer's int32 accumulators (n, classes) as int64,
    :data:`BATCH` beats at a time (every beat is computed on its own, so the result is the same)."""
    parts = [_forward_batch(g, beat[i:i + BATCH], None if rr is None else rr[i:i + BATCH])
             for i in range(0, len(beat), BATCH)] or [_forward_batch(g, beat, rr)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _forward_batch(g: Int8Graph, beat: np.ndarray, rr: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    last = g.output_layer()
    last_acc = None
    values = {g.beat_input: beat.astype(np.int64)}
    if g.rr_input is not None:
        values[g.rr_input] = rr.astype(np.int64)
    for layer in g.layers:
        x = values[layer.inputs[0]]
        out_zp = g.qparams[layer.output].zero_point
        if layer.kind == "conv":
            x = x - g.qparams[layer.inputs[0]].zero_point           # padding contributes 0
            k = layer.weights.shape[1]
            pad = np.pad(x, ((0, 0), ((k - 1) // 2, k // 2), (0, 0)))
            cols = np.stack([pad[:, i:i + x.shape[1], :] for i in range(k)], axis=2)   # n, L, k, C
            n, length = cols.shape[:2]
            kernel = layer.weights.reshape(len(layer.weights), -1).T                        # k * C, O
            acc = integer_matmul(cols.reshape(n, length, -1), kernel) + layer.bias
            values[layer.output] = requantize(acc, layer, out_zp).astype(np.int64)
        elif layer.kind == "maxpool":
            n, length, c = x.shape
            values[layer.output] = x[:, : length // 2 * 2].reshape(n, length // 2, 2, c).max(axis=2)
        elif layer.kind == "fc":
            x = x.reshape(x.shape[0], -1) - g.qparams[layer.inputs[0]].zero_point
            acc = integer_matmul(x, layer.weights.T) + layer.bias
            values[layer.output] = requantize(acc, layer, out_zp).astype(np.int64)
            if layer is last:
                last_acc = acc
        elif layer.kind == "concat":
            values[layer.output] = np.concatenate([values[i].reshape(len(x), -1) for i in layer.inputs], axis=1)
    return values[g.output].reshape(len(beat), -1).astype(np.int8), last_acc
