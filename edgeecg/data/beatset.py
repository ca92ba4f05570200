"""A set of beats (or PTB-XL records, or Kaggle CSV rows): the one form every model trains and is scored on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgeecg.config import DataConfig, rr_feature_names
from edgeecg.data.labels import SUPERCLASSES
from edgeecg.processing.aami import class_counts


@dataclass
class BeatSet:
    """Beats of several records: ``x`` (n, channels, window), ``rr`` (n, k), ``y`` (n,), ``record`` (n,)."""

    x: np.ndarray
    rr: np.ndarray
    y: np.ndarray
    record: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> "BeatSet":
        return BeatSet(self.x[index], self.rr[index], self.y[index], self.record[index])

    def counts(self) -> dict[str, int]:
        """Beats per class; examples per label for a multi-label set (``y`` of shape (n, labels): PTB-XL)."""
        if self.y.ndim == 2:
            return {c: int(self.y[:, i].sum()) for i, c in enumerate(SUPERCLASSES)}
        return class_counts(self.y)

    @staticmethod
    def empty(cfg: DataConfig) -> "BeatSet":
        return BeatSet(np.zeros((0, cfg.channels, cfg.window), np.float32),
                       np.zeros((0, len(rr_feature_names(cfg))), np.float32), np.zeros(0, np.int64),
                       np.zeros(0, dtype="U16"))

    @staticmethod
    def concat(parts: list["BeatSet"]) -> "BeatSet":
        return BeatSet(*(np.concatenate([getattr(p, f.name) for p in parts])
                         for f in dataclasses.fields(BeatSet)))
