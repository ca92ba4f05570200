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
from edgeecg.config import Config, DataConfig, SourceConfig, SplitConfig
from edgeecg.digest import sha256_file
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import PHYSIONET_DB, list_records, rdrecord, read_header, record_files, resolve_data_dir
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
                       np.zeros(0, dtype="U16"))

    @staticmethod
    def concat(parts: list["BeatSet"]) -> "BeatSet":
        return BeatSet(*(np.concatenate([getattr(p, f.name) for p in parts])
                         for f in dataclasses.fields(BeatSet)))


# --- sources: MIT-BIH (the primary, --data) and the recipe's [[sources]]; a patient is (database, record)

PRIMARY = PHYSIONET_DB


def patient_id(database: str, record: str) -> str:
    """``record`` for MIT-BIH (the primary source keeps its bare names), else ``database/record``."""
    return record if database == PRIMARY else f"{database}/{record}"


def database_of(patient: str) -> str:
    return patient.split("/", 1)[0] if "/" in patient else PRIMARY


def record_of(patient: str) -> str:
    return patient.split("/", 1)[1] if "/" in patient else patient


@dataclass(frozen=True)
class Source:
    """A resolved source: where its records are, which of them, and which lead."""

    database: str
    path: Path
    records: tuple[str, ...]
    lead: str

    @property
    def patients(self) -> tuple[str, ...]:
        return tuple(patient_id(self.database, r) for r in self.records)


def resolve_source(data_dir: Path, src: SourceConfig) -> Source:
    """A ``[[sources]]`` entry's folder (``path``, else beside ``--data``, else downloaded) and records."""
    if src.path:
        path = Path(src.path)
        if not path.is_dir():
            raise EdgeECGError(f"{path}: data directory of source {src.database!r} does not exist")
    elif (Path(data_dir).parent / src.database).is_dir():
        path = Path(data_dir).parent / src.database
    else:
        explicit = () if src.records == ("all",) else src.records
        path = resolve_data_dir(None, explicit, database=src.database)
    records = tuple(list_records(path)) if src.records == ("all",) else src.records
    if not records:
        raise EdgeECGError(f"{path}: no WFDB records (*.hea) for source {src.database!r}")
    return Source(src.database, path, records, src.lead)


def resolve_sources(data_dir: Path, cfg: Config) -> dict[str, Source]:
    """Every further source of a recipe by database name (MIT-BIH, the primary, is not among them)."""
    return {s.database: resolve_source(data_dir, s) for s in cfg.sources}


def source_patients(data_dir: Path, cfg: Config) -> tuple[str, ...]:
    """The patients the recipe's ``[[sources]]`` add to the training pool."""
    return tuple(p for s in resolve_sources(data_dir, cfg).values() for p in s.patients)


def locate(data_dir: Path, patient: str, cfg: DataConfig,
           sources: dict[str, Source] | None = None) -> tuple[Path, str, DataConfig]:
    """Folder, record name and data config (its source's lead) of a patient."""
    db = database_of(patient)
    if db == PRIMARY:
        return Path(data_dir), patient, cfg
    if not sources or db not in sources:
        raise EdgeECGError(f"{patient}: database {db!r} is not a [[sources]] entry of this recipe")
    src = sources[db]
    return src.path, record_of(patient), dataclasses.replace(cfg, lead=src.lead)


def record_hours(data_dir: Path, patients, cfg: Config) -> dict[str, float]:
    """Hours of recording of each patient (its header's length and rate): false alarms are per hour."""
    sources = resolve_sources(data_dir, cfg) if cfg.sources else None
    out = {}
    for p in dict.fromkeys(patients):
        folder, name, _ = locate(data_dir, p, cfg.data, sources)
        header = read_header(folder, name)
        out[p] = float(header.sig_len) / float(header.fs) / 3600.0
    return out


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


def load_pool(data_dir: Path, cfg: Config, patients, cache_dir: Path | None = None) -> BeatSet:
    """:func:`load_beats` with the recipe's sources resolved."""
    sources = resolve_sources(data_dir, cfg) if cfg.sources else None
    return load_beats(data_dir, patients, cfg.data, cache_dir, sources)


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
    all their patients to train. ``random``: beats of all listed records
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
        parts["train"] = parts["train"] + source_patients(data_dir, cfg)
        return {name: load_pool(data_dir, cfg, recs, cache_dir) if recs or name != "val"
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
    sources = resolve_sources(data_dir, cfg) if cfg.sources else None
    out = {}
    for r in records:
        folder, name, _ = locate(data_dir, r, cfg.data, sources)
        out.update({f"{r}/{f}": h for f, h in record_hashes(folder, name).items()})
    return out
