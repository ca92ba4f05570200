"""The patient-wise splits (de Chazal's DS1/DS2, plus the recipe's further sources in train), and the
other datasets' own splits (PTB-XL by ``strat_fold``, the Kaggle CSVs by file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeecg.config import Config, SplitConfig
from edgeecg.data.beatset import BeatSet
from edgeecg.data.cache import load_pool, record_hashes, training_beats
from edgeecg.data.sources import PRIMARY, database_of, locate, resolve_sources, source_patients
from edgeecg.errors import EdgeECGError


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

    ``de_chazal``: whole records per part (patient-wise); the recipe's ``[[sources]]`` (SVDB, ...) add
    all their patients to train (with their other lead where a source asks: :func:`training_beats`).
    ``random``: beats of all listed records shuffled together (the same patient in train and test:
    leaky, for comparison only).
    Another ``[data] dataset`` has its own split: PTB-XL by ``strat_fold`` (:mod:`edgeecg.data.ptbxl`), the
    Kaggle CSVs by file plus a hold-out (:mod:`edgeecg.data.kaggle`); ``data_dir`` is then its folder (or CSV).
    """
    if cfg.data.dataset == "ptbxl":
        from edgeecg.data import ptbxl
        return ptbxl.make_splits(data_dir, cfg, cache_dir)
    if cfg.data.dataset == "kaggle_csv":
        from edgeecg.data import kaggle
        return kaggle.make_splits(data_dir, cfg)
    parts = split_records(cfg.split)
    if cfg.split.kind == "de_chazal":
        sources = resolve_sources(data_dir, cfg)
        parts["train"] = parts["train"] + source_patients(data_dir, cfg, sources)
        return {name: (training_beats if name == "train" else load_pool)(data_dir, cfg, recs, cache_dir, sources)
                if recs or name != "val" else BeatSet.empty(cfg.data) for name, recs in parts.items()}
    records = list(dict.fromkeys(parts["train"] + parts["val"] + parts["test"]))
    everything = load_pool(data_dir, cfg, records, cache_dir)
    order = np.random.default_rng(cfg.train.seed).permutation(len(everything))
    n_val = int(len(order) * cfg.split.random_fractions[0])
    n_test = int(len(order) * cfg.split.random_fractions[1])
    return {"val": everything.subset(order[:n_val]),
            "test": everything.subset(order[n_val:n_val + n_test]),
            "train": everything.subset(order[n_val + n_test:])}


def check_split(splits: dict[str, BeatSet]) -> tuple[str, BeatSet]:
    """DS1 beats for the int8-versus-float checks of ``quantize`` and ``bench``: ``("val", ...)`` when
    the recipe holds DS1 records out, else ``("ds1", training beats)`` (MIT-BIH's only, when further
    sources joined the pool). On training beats the check measures what quantization changes, not how
    well the model generalises (DS2 and CV do that)."""
    val = splits.get("val")
    if val is not None and len(val):
        return "val", val
    train = splits["train"]
    primary = np.array([database_of(str(r)) == PRIMARY for r in train.record], dtype=bool)
    return "ds1", train if primary.all() or not primary.any() else train.subset(primary)


def is_leaky(cfg: Config) -> bool:
    """Whether the split puts the same patients in train and test: ``--random-split``, or the Kaggle
    CSVs (beats of all 48 MIT-BIH records shuffled before their train/test cut)."""
    return cfg.split.kind == "random" or cfg.data.dataset == "kaggle_csv"


def input_hashes(data_dir: Path, cfg: Config, records) -> dict[str, str]:
    """SHA-256 of every input file of the given records, for a run's manifest."""
    if cfg.data.dataset == "ptbxl":
        from edgeecg.data import ptbxl
        return ptbxl.input_files(data_dir, records, cfg.data.fs)
    if cfg.data.dataset == "kaggle_csv":
        from edgeecg.data import kaggle
        return kaggle.input_files(data_dir)
    sources = resolve_sources(data_dir, cfg) if cfg.sources else None
    out = {}
    for r in records:
        folder, name, _ = locate(data_dir, r, cfg.data, sources)
        out.update({f"{r}/{f}": h for f, h in record_hashes(folder, name).items()})
    return out
