"""Beats of each record, cached on disk by the SHA-256 of its files and the preprocessing config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgeecg.atomic import atomic_path
from edgeecg.config import Config, DataConfig
from edgeecg.data.beatset import BeatSet
from edgeecg.data.sources import Source, database_of, locate, record_of, resolve_sources
from edgeecg.digest import sha256_file
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import record_files, second_lead_name
from edgeecg.processing.beats import read_beats

CACHE_VERSION = "4"   # bump when beat extraction changes in a way the config does not show


def default_cache_dir() -> Path:
    env = os.environ.get("EDGEECG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgeecg" / "beats"


def record_hashes(data_dir: Path, name: str) -> dict[str, str]:
    """SHA-256 of each file of a record, keyed by file name."""
    return {p.name: sha256_file(p) for p in record_files(data_dir, name)}


# DataConfig fields added after the first caches: left out of a beat-cache key while they hold their
# default, so that adding them did not invalidate the existing caches.
_LATER_FIELDS = ("dataset", "segment", "leads", "record_fs", "template_gate", "second_lead", "polarity",
                 "scale")


def cache_key(file_hashes: dict[str, str], cfg: DataConfig) -> str:
    data = dataclasses.asdict(cfg)
    for name in _LATER_FIELDS:
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
    beats = read_beats(data_dir, name, cfg)
    out = BeatSet(beats.x, beats.rr, beats.y, np.full(len(beats.y), name, dtype="U8"))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, x=out.x, rr=out.rr, y=out.y, record=out.record)
    except OSError:
        pass   # a read-only cache only costs time
    return out


def load_beats(data_dir: Path, records, cfg: DataConfig, cache_dir: Path | None = None,
               sources: dict[str, Source] | None = None) -> BeatSet:
    """Beats of the given patients: MIT-BIH records by name, other sources' as ``database/record``."""
    parts = []
    for patient in records:
        folder, name, rec_cfg = locate(data_dir, patient, cfg, sources)
        part = load_record_beats(folder, name, rec_cfg, cache_dir)
        parts.append(dataclasses.replace(part, record=np.full(len(part), patient, dtype="U16")))
    if not parts:
        raise EdgeECGError(f"{data_dir}: no records selected")
    return BeatSet.concat(parts)


def load_pool(data_dir: Path, cfg: Config, patients, cache_dir: Path | None = None,
              sources: dict[str, Source] | None = None) -> BeatSet:
    """:func:`load_beats` with the recipe's sources (``sources``: already resolved by :func:`resolve_sources`)."""
    sources = resolve_sources(data_dir, cfg) if sources is None else sources
    return load_beats(data_dir, patients, cfg.data, cache_dir, sources)


def other_lead_beats(data_dir: Path, cfg: Config, patients, cache_dir: Path | None = None,
                     sources: dict[str, Source] | None = None) -> BeatSet:
    """The beats training adds for a ``[[sources]]`` entry with ``train_other_lead``: each of its patients'
    other lead (SVDB's ECG2 beside ECG1), as one-lead beats named by the same patient, so that a CV fold
    that holds a patient out holds out both of its leads. Empty when no source asks for it."""
    sources = resolve_sources(data_dir, cfg) if sources is None else sources
    parts = []
    for patient in patients:
        src = sources.get(database_of(patient))
        if src is None or not src.train_other_lead:
            continue
        name = record_of(patient)
        lead = second_lead_name(src.path, name, src.lead, "other")
        part = load_record_beats(src.path, name, dataclasses.replace(cfg.data, lead=lead), cache_dir)
        parts.append(dataclasses.replace(part, record=np.full(len(part), patient, dtype="U16")))
    return BeatSet.concat(parts) if parts else BeatSet.empty(cfg.data)


def training_beats(data_dir: Path, cfg: Config, patients, cache_dir: Path | None = None,
                   sources: dict[str, Source] | None = None) -> BeatSet:
    """:func:`load_pool` plus :func:`other_lead_beats`: what a model of these patients trains on
    (``sources``: already resolved by :func:`resolve_sources`)."""
    sources = resolve_sources(data_dir, cfg) if sources is None else sources
    return BeatSet.concat([load_pool(data_dir, cfg, patients, cache_dir, sources),
                           other_lead_beats(data_dir, cfg, patients, cache_dir, sources)])
