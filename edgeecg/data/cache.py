"""Beats of each record, cached on disk by the SHA-256 of its files and the preprocessing config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zlib
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


def _other_leads(data_dir: Path, cfg: Config, patients, mode: str, cache_dir: Path | None,
                 sources: dict[str, Source] | None):
    """(patient, its other lead's beats) for each patient of a ``[[sources]]`` entry with
    ``train_other_lead`` and this ``other_lead_mode``."""
    sources = resolve_sources(data_dir, cfg) if sources is None else sources
    for patient in patients:
        src = sources.get(database_of(patient))
        if src is None or not src.train_other_lead or src.other_lead_mode != mode:
            continue
        name = record_of(patient)
        lead = second_lead_name(src.path, name, src.lead, "other")
        part = load_record_beats(src.path, name, dataclasses.replace(cfg.data, lead=lead), cache_dir)
        yield patient, dataclasses.replace(part, record=np.full(len(part), patient, dtype="U16"))


def other_lead_beats(data_dir: Path, cfg: Config, patients, cache_dir: Path | None = None,
                     sources: dict[str, Source] | None = None) -> BeatSet:
    """The beats training adds for a ``[[sources]]`` entry with ``train_other_lead`` (``other_lead_mode =
    "add"``): each of its patients' other lead (SVDB's ECG2 beside ECG1), as one-lead beats named by the
    same patient, so that a CV fold that holds a patient out holds out both of its leads. Empty when no
    source asks for it."""
    parts = [part for _, part in _other_leads(data_dir, cfg, patients, "add", cache_dir, sources)]
    return BeatSet.concat(parts) if parts else BeatSet.empty(cfg.data)


def swap_half(patient: str, n: int) -> np.ndarray:
    """The fixed half of a patient's ``n`` beats that ``other_lead_mode = "swap"`` reads from the other
    lead: a draw seeded by the patient's name, the same in every run and on every machine."""
    rng = np.random.default_rng(zlib.crc32(patient.encode()))
    return rng.permutation(n) < n // 2


def swap_other_lead(data_dir: Path, cfg: Config, beats: BeatSet, cache_dir: Path | None = None,
                    sources: dict[str, Source] | None = None) -> BeatSet:
    """``beats`` with, for each patient of a ``[[sources]]`` entry with ``train_other_lead`` and
    ``other_lead_mode = "swap"``, the windows (beat and template channels) of :func:`swap_half` of its beats
    read from its other lead; the labels and RR features are the same beats' (the leads share the
    annotations). Training only: the pool's size and its balance of patients and classes are unchanged."""
    x = None
    for patient, other in _other_leads(data_dir, cfg, dict.fromkeys(beats.record.tolist()), "swap", cache_dir,
                                       sources):
        mine = np.flatnonzero(beats.record == patient)
        if len(other) != len(mine) or not np.array_equal(other.y, beats.y[mine]):
            why = (f"{len(other)} beats against {len(mine)}" if len(other) != len(mine) else
                   f"their classes differ from beat {int(np.argmax(other.y != beats.y[mine]))} on")
            raise EdgeECGError(f"{patient}: its other lead's beats do not line up with its own ({why}): "
                               f"other_lead_mode = \"swap\" needs the same beats")
        x = beats.x.copy() if x is None else x
        half = swap_half(patient, len(mine))
        x[mine[half]] = other.x[half]
    return beats if x is None else dataclasses.replace(beats, x=x)


def training_beats(data_dir: Path, cfg: Config, patients, cache_dir: Path | None = None,
                   sources: dict[str, Source] | None = None) -> BeatSet:
    """:func:`load_pool` with :func:`swap_other_lead`, plus :func:`other_lead_beats`: what a model of these
    patients trains on (``sources``: already resolved by :func:`resolve_sources`)."""
    sources = resolve_sources(data_dir, cfg) if sources is None else sources
    pool = swap_other_lead(data_dir, cfg, load_pool(data_dir, cfg, patients, cache_dir, sources), cache_dir, sources)
    return BeatSet.concat([pool, other_lead_beats(data_dir, cfg, patients, cache_dir, sources)])
