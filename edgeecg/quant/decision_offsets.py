"""Class offsets that make the int8 graph decide as the float model does, chosen on training beats.

Bias correction (:mod:`edgeecg.quant.bias_correction`) cancels the *mean* rounding error of every
layer. What decides a beat is the error at the boundary between two classes, and that need not be
the mean: in the default model N against S is decided by the RR stream alone, and on some folds the
int8 graph calls beats near that boundary N more often than the other way round (CV seed 1, its five
folds' graphs out of fold: 144 of SVDB's beats went from S to N against 39 from N to S, and 0.83 pp of
S Se was lost, most of it in one fold).

:func:`choose_decision_offsets` adds an offset (in float logits) to the int8 class scores of S and V,
on a grid, and keeps the pair whose classes agree with the float model's on the most training beats;
among equals the smallest offsets, so a graph that already decides as float keeps zero. With
``min_z`` it keeps them only where the gain is unlikely to be chance: of the beats whose class they
change, those they bring to float's class ("fixed") must outnumber those they take from it ("broken") by
``min_z`` standard deviations of a fair coin, ``(fixed - broken) / sqrt(fixed + broken) >= min_z``.
:func:`with_decision_offsets` puts them into the float model's last bias, which the converter turns
into the int8 graph's int32 output biases: the C, TFLite Micro and the integer reference all carry
them, and the weights and every other bias are unchanged. The float artifacts keep the trained bias.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from edgeecg.export.fold import FoldedModel, forward
from edgeecg.quant.graph import Int8Graph
from edgeecg.quant.output_range import scores_in_logits
from edgeecg.quant.reference import forward_int8

OFFSET_GRID = np.round(np.arange(-0.4, 0.401, 0.02), 2)    # float logits tried for S and for V
OFFSET_CLASSES = (1, 2)                                     # S and V; N is the reference, F and Q are rare
OFFSET_BEATS = 30_000                                       # training beats the offsets are chosen on


@dataclass(frozen=True)
class DecisionOffsets:
    offsets: tuple[float, ...]   # per class, float logits (0 for N, F, Q)
    agreement: int               # beats whose int8 class equals float's, with the offsets
    agreement_before: int        # ... without them
    beats: int
    fixed: int = 0               # beats the best offsets bring to float's class
    broken: int = 0              # ... and take from it
    kept: bool = True            # False: the best offsets' gain was below min_z, and none are applied

    @property
    def z(self) -> float:
        """The gain in standard deviations of a fair coin over the beats the best offsets change."""
        changed = self.fixed + self.broken
        return (self.fixed - self.broken) / changed ** 0.5 if changed else 0.0

    def as_dict(self) -> dict:
        return {"offsets": list(self.offsets), "agreement_with_float": self.agreement,
                "agreement_with_float_before": self.agreement_before, "beats": self.beats,
                "fixed": self.fixed, "broken": self.broken, "z": round(self.z, 2), "kept": self.kept}


def int8_scores(graph: Int8Graph, beat_q: np.ndarray, rr_q: np.ndarray | None) -> np.ndarray:
    """The output layer's class scores (the C's decision values) in float logits, shape (n, classes)."""
    return scores_in_logits(forward_int8(graph, beat_q, rr_q)[1], graph)


def choose_decision_offsets(fm: FoldedModel, graph: Int8Graph, x: np.ndarray, rr: np.ndarray,
                            beat_q: np.ndarray, rr_q: np.ndarray | None, min_z: float = 0.0) -> DecisionOffsets:
    """Offsets for S and V (on :data:`OFFSET_GRID`) with which ``graph``'s classes of beats ``x``/``rr``
    (int8: ``beat_q``/``rr_q``) agree with float model ``fm``'s on the most beats; the smallest among
    equals; none (``kept`` False) where their gain is below ``min_z`` (see the module's docstring)."""
    reference = forward(fm, x, rr).argmax(1)
    scores = int8_scores(graph, beat_q, rr_q)
    s, v = OFFSET_CLASSES
    best = None
    for ds in OFFSET_GRID:
        for dv in OFFSET_GRID:
            shifted = scores.copy()
            shifted[:, s] += ds
            shifted[:, v] += dv
            key = (-int(np.sum(shifted.argmax(1) == reference)), abs(ds) + abs(dv), abs(ds), float(ds), float(dv))
            best = key if best is None else min(best, key)
    offsets = np.zeros(scores.shape[1])
    offsets[[s, v]] = best[3], best[4]
    old, new = scores.argmax(1), (scores + offsets).argmax(1)
    fixed, broken = int(np.sum((new != old) & (new == reference))), int(np.sum((new != old) & (old == reference)))
    before = int(np.sum(old == reference))
    chosen = DecisionOffsets(tuple(float(o) for o in offsets), -best[0], before, len(reference), fixed, broken)
    if chosen.z >= min_z or not any(chosen.offsets):
        return chosen
    return DecisionOffsets((0.0,) * len(offsets), before, before, len(reference), fixed, broken, kept=False)


def with_decision_offsets(fm: FoldedModel, offsets: DecisionOffsets) -> FoldedModel:
    """A copy of ``fm`` whose last layer's bias carries the offsets; convert it to get the int8 graph."""
    out = copy.deepcopy(fm)
    last = fm.layer_names()[-1]
    out.set_bias(last, fm.layer(last)[1] + np.asarray(offsets.offsets, dtype=np.float64))
    return out
