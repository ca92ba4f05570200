"""Beat sets for training and evaluation, with a per-record cache and the patient-wise splits."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.atomic import atomic_path
from edgeecg.config import Config, DataConfig, SplitConfig
from edgeecg.digest import sha256_file
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import rdrecord, record_files
from edgeecg.processing.aami import class_counts
from edgeecg.processing.beats import extract_beats

CACHE_VERSION = "4"   # bump when beat extraction changes in a way the config does not show


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
            from edgeecg.ptbxl import SUPERCLASSES
            return {c: int(self.y[:, i].sum()) for i, c in enumerate(SUPERCLASSES)}
        return class_counts(self.y)

    @staticmethod
    def empty(cfg: DataConfig) -> "BeatSet":
        from edgeecg.config import rr_feature_names
        return BeatSet(np.zeros((0, cfg.channels, cfg.window), np.float32),
                       np.zeros((0, len(rr_feature_names(cfg))), np.float32), np.zeros(0, np.int64),
                       np.zeros(0, dtype="U8"))

    @staticmethod
    def concat(parts: list["BeatSet"]) -> "BeatSet":
        return BeatSet(*(np.concatenate([getattr(p, f.name) for p in parts])
                         for f in dataclasses.fields(BeatSet)))


def default_cache_dir() -> Path:
    env = os.environ.get("EDGEECG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgeecg" / "beats"


def record_hashes(data_dir: Path, name: str) -> dict[str, str]:
    """SHA-256 of each file of a record, keyed by file name."""
    return {p.name: sha256_file(p) for p in record_files(data_dir, name)}


# DataConfig fields that only other databases use: left out of a MIT-BIH beat-cache key while they
# hold their default, so that adding them did not invalidate the existing caches.
_NON_MITDB_FIELDS = ("dataset", "segment", "leads")


def cache_key(file_hashes: dict[str, str], cfg: DataConfig) -> str:
    data = dataclasses.asdict(cfg)
    for name in _NON_MITDB_FIELDS:
        if data[name] == getattr(DataConfig, name):
            del data[name]
    payload = json.dumps({"files": file_hashes, "data": data, "v": CACHE_VERSION},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def load_record_beats(data_dir: Path, name: str, cfg: DataConfig, cache_dir: Path | None = None) -> BeatSet:
    """Beats of one record, from the cache when the record files and config are unchanged."""
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    cached = cache_dir / f"{name}-{cache_key(record_hashes(data_dir, name), cfg)}.npz"
    if cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as z:
                return BeatSet(z["x"], z["rr"], z["y"], z["record"])
        except (OSError, ValueError, KeyError):
            pass   # a damaged cache entry is rebuilt below
    beats = extract_beats(rdrecord(data_dir, name, cfg.lead), cfg)
    out = BeatSet(beats.x, beats.rr, beats.y, np.full(len(beats.y), name, dtype="U8"))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, x=out.x, rr=out.rr, y=out.y, record=out.record)
    except OSError:
        pass   # a read-only cache only costs time
    return out


def load_beats(data_dir: Path, records, cfg: DataConfig, cache_dir: Path | None = None) -> BeatSet:
    parts = [load_record_beats(data_dir, r, cfg, cache_dir) for r in records]
    if not parts:
        raise EdgeECGError(f"{data_dir}: no records selected")
    return BeatSet.concat(parts)


def split_records(split: SplitConfig) -> dict[str, tuple[str, ...]]:
    """Records of each part after removing the excluded (paced) ones; parts must be disjoint."""
    parts = {name: tuple(r for r in getattr(split, name) if r not in split.exclude)
             for name in ("train", "val", "test")}
    if split.kind == "de_chazal":
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = sorted(set(parts[a]) & set(parts[b]))
            if shared:
                raise EdgeECGError(f"[split] {a} and {b} share records {', '.join(shared)}: "
                                   f"a patient-wise split needs disjoint records")
    return parts


def make_splits(data_dir: Path, cfg: Config, cache_dir: Path | None = None) -> dict[str, BeatSet]:
    """Train, val and test beats (val may be empty: the final protocol trains on all of DS1).

    ``de_chazal``: whole records per part (patient-wise). ``random``: beats of all listed records
    shuffled together (the same patient in train and test: leaky, for comparison only).
    Another ``[data] dataset`` has its own split: PTB-XL by ``strat_fold`` (:mod:`edgeecg.ptbxl`), the
    Kaggle CSVs by file plus a hold-out (:mod:`edgeecg.kaggle`); ``data_dir`` is then its folder (or CSV).
    """
    if cfg.data.dataset == "ptbxl":
        from edgeecg import ptbxl
        return ptbxl.make_splits(data_dir, cfg, cache_dir)
    if cfg.data.dataset == "kaggle_csv":
        from edgeecg import kaggle
        return kaggle.make_splits(data_dir, cfg)
    parts = split_records(cfg.split)
    if cfg.split.kind == "de_chazal":
        return {name: load_beats(data_dir, recs, cfg.data, cache_dir) if recs or name != "val"
                else BeatSet.empty(cfg.data) for name, recs in parts.items()}
    records = list(dict.fromkeys(parts["train"] + parts["val"] + parts["test"]))
    everything = load_beats(data_dir, records, cfg.data, cache_dir)
    order = np.random.default_rng(cfg.train.seed).permutation(len(everything))
    n_val = int(len(order) * cfg.split.random_fractions[0])
    n_test = int(len(order) * cfg.split.random_fractions[1])
    return {"val": everything.subset(order[:n_val]),
            "test": everything.subset(order[n_val:n_val + n_test]),
            "train": everything.subset(order[n_val + n_test:])}


def check_split(splits: dict[str, BeatSet]) -> tuple[str, BeatSet]:
    """DS1 beats for the int8-versus-float checks of ``quantize`` and ``bench``: ``("val", ...)`` when
    the recipe holds DS1 records out, else ``("ds1", training beats)``. On training beats the check
    measures what quantization changes, not how well the model generalises (DS2 and CV do that)."""
    val = splits.get("val")
    if val is not None and len(val):
        return "val", val
    return "ds1", splits["train"]


def is_leaky(cfg: Config) -> bool:
    """Whether the split puts the same patients in train and test: ``--random-split``, or the Kaggle
    CSVs (beats of all 48 MIT-BIH records shuffled before their train/test cut)."""
    return cfg.split.kind == "random" or cfg.data.dataset == "kaggle_csv"


def input_hashes(data_dir: Path, cfg: Config, records) -> dict[str, str]:
    """SHA-256 of every input file of the given records, for a run's manifest."""
    if cfg.data.dataset == "ptbxl":
        from edgeecg import ptbxl
        return ptbxl.input_files(data_dir, records, cfg.data.fs)
    if cfg.data.dataset == "kaggle_csv":
        from edgeecg import kaggle
        return kaggle.input_files(data_dir)
    return {f"{r}/{f}": h for r in records for f, h in record_hashes(data_dir, r).items()}
