"""AAMI EC57 beat classes from MIT-BIH annotation symbols."""

from __future__ import annotations

import numpy as np

from edgeecg.config import CLASSES
# AAMI EC57: N = normal and bundle-branch-block beats, S = supraventricular ectopic,
# V = ventricular ectopic, F = fusion, Q = paced and unclassifiable.
SYMBOLS = {
    "N": ("N", "L", "R", "e", "j"),
    "S": ("A", "a", "J", "S"),
    "V": ("V", "E"),
    "F": ("F",),
    "Q": ("/", "f", "Q"),
}
SYMBOL_TO_CLASS = {sym: CLASSES.index(cls) for cls, syms in SYMBOLS.items() for sym in syms}


def aami_labels(symbols: np.ndarray) -> np.ndarray:
    """Class index (0..4) of each symbol; -1 for non-beat annotations (rhythm, noise, ...)."""
    return np.array([SYMBOL_TO_CLASS.get(str(s), -1) for s in symbols], dtype=np.int64)


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """Beats per AAMI class, ignoring -1 (non-beat) labels."""
    labels = np.asarray(labels)
    return {c: int(np.sum(labels == i)) for i, c in enumerate(CLASSES)}
