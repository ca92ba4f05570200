"""Empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization and
Bias Correction", ICCV 2019), calibrated on the DS1 training beats.

Rounding weights and activations moves the mean of each layer's pre-activation a little, and a
mean shift is not noise: it pushes every beat the same way, and so can cost a class sensitivity
on every record. Layer by layer, in the order they run, each output channel's bias is lowered by the
mean error that the int8 rounding adds to its pre-activation on the calibration beats; the
simulated rounding (:mod:`edgeecg.quant.budget`) upstream already carries the corrected biases.
Only the int8 graph gets the corrected biases; every float artifact keeps the trained ones.
"""

from __future__ import annotations

import copy

import numpy as np

from edgeecg.export.fold import FoldedModel, forward
from edgeecg.quant.budget import rounding_points
from edgeecg.quant.graph import Int8Graph


def _mean_sums(fm: FoldedModel, x: np.ndarray, rr: np.ndarray, rounding=None) -> dict[str, np.ndarray]:
    """Per-channel mean pre-activation of every layer (conv: over beats and positions)."""
    means = {}

    def hook(point: str, a: np.ndarray) -> np.ndarray:
        if point.endswith(" sum"):
            means[point.removesuffix(" sum")] = a.mean(axis=(0, 2) if a.ndim == 3 else 0)
        return rounding(point, a) if rounding is not None else a

    forward(fm, x, rr, hook, batch=None)      # the means are over every calibration beat
    return means


def correct_biases(fm: FoldedModel, g: Int8Graph, x: np.ndarray, rr: np.ndarray) -> FoldedModel:
    """A copy of ``fm`` whose biases cancel the mean pre-activation error of ``g``'s rounding on the
    calibration beats ``x``, ``rr``; convert it again to get the corrected int8 graph."""
    points = rounding_points(fm, g)

    def rounded(point: str, a: np.ndarray) -> np.ndarray:
        return points[point](a) if point in points else a

    reference = _mean_sums(fm, x, rr)
    out = copy.deepcopy(fm)
    for name in fm.layer_names():
        error = _mean_sums(out, x, rr, rounded)[name] - reference[name]
        out.set_bias(name, out.layer(name)[1] - error)
    return out
