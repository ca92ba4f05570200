"""PTB-XL (Wagner et al. 2020, PhysioNet): 12-lead 10 s records and their 5 diagnostic superclasses.

Labels follow the dataset's own example code and the benchmarking code of Strodthoff et al. 2021
(``compute_label_aggregations(..., "superdiagnostic")``) exactly:

* ``ptbxl_database.csv``'s ``scp_codes`` is a dict ``{statement: likelihood}``; every statement of
  it counts, whatever its likelihood (the benchmark does not threshold it: 0 means "not stated");
* a statement is diagnostic when its row of ``scp_statements.csv`` has ``diagnostic == 1``; its
  superclass is that row's ``diagnostic_class`` (NORM, MI, STTC, CD or HYP);
* a record's labels are the set of superclasses of its diagnostic statements (multi-label); a
  record with none is dropped for this task.

The split is the recommended one by ``strat_fold``: folds 1-8 train, 9 validation, 10 test
(patient-wise; folds 9 and 10 hold only human-validated reports).

Each lead is band-passed with the recipe's causal filter (baseline wander out, amplitude kept in
mV: hypertrophy criteria are voltages, so nothing is rescaled per record), then cropped or
zero-padded at the end to ``DataConfig.window`` samples.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgeecg.atomic import atomic_path
from edgeecg.config import Config, DataConfig
from edgeecg.data.beatset import BeatSet
from edgeecg.data.cache import default_cache_dir
from edgeecg.data.labels import SUPERCLASSES
from edgeecg.digest import sha256_file
from edgeecg.errors import EdgeECGError

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
DATABASE, STATEMENTS = "ptbxl_database.csv", "scp_statements.csv"
PHYSIONET_DB = "ptb-xl"
RATES = {100: "filename_lr", 500: "filename_hr"}
CACHE_VERSION = "1"


def default_download_dir() -> Path:
    """``$EDGEECG_PTBXL`` or ``~/.cache/edgeecg/ptb-xl``."""
    env = os.environ.get("EDGEECG_PTBXL")
    return Path(env) if env else Path.home() / ".cache" / "edgeecg" / "ptb-xl"


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        raise EdgeECGError(f"{path}: not found (a PTB-XL folder holds {DATABASE}, {STATEMENTS} and records100/)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise EdgeECGError(f"{path}: cannot read ({err})") from None


def diagnostic_classes(statements_csv: Path) -> dict[str, str]:
    """``{statement: superclass}`` of the ``diagnostic == 1`` rows of ``scp_statements.csv``."""
    rows = _read_csv(statements_csv)
    if not rows or not {"diagnostic", "diagnostic_class"} <= set(rows[0]):
        raise EdgeECGError(f"{statements_csv}: no diagnostic / diagnostic_class columns")
    key = next(iter(rows[0]))               # the first, unnamed column holds the statement
    out = {}
    for row in rows:
        try:
            diagnostic = float(row["diagnostic"]) == 1.0 if row["diagnostic"] else False
        except ValueError:
            raise EdgeECGError(f"{statements_csv}: statement {row[key]!r}: diagnostic = {row['diagnostic']!r} "
                               f"is not a number") from None
        if diagnostic and row["diagnostic_class"]:
            out[row[key]] = row["diagnostic_class"]
    return out


def superclasses(scp_codes: dict, diag: dict[str, str]) -> set[str]:
    """The superclasses of a record's statements (likelihoods not thresholded, as the benchmark)."""
    return {diag[code] for code in scp_codes if code in diag}


def read_labels(data_dir: Path, fs: int) -> list[dict]:
    """One entry per record with at least one superclass: ``ecg_id``, ``fold``, ``file`` (relative
    path without extension), ``labels`` (set of superclass names)."""
    if fs not in RATES:
        raise EdgeECGError(f"[data] fs = {fs}: PTB-XL comes at 100 Hz (records100/) or 500 Hz (records500/)")
    diag = diagnostic_classes(data_dir / STATEMENTS)
    rows = _read_csv(data_dir / DATABASE)
    needed = {"ecg_id", "scp_codes", "strat_fold", RATES[fs]}
    if not rows or not needed <= set(rows[0]):
        raise EdgeECGError(f"{data_dir / DATABASE}: missing column(s) {', '.join(sorted(needed - set(rows[0] if rows else ())))}")
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            codes = ast.literal_eval(row["scp_codes"])
            fold = int(float(row["strat_fold"]))
            ecg_id = int(float(row["ecg_id"]))
        except (ValueError, SyntaxError):
            raise EdgeECGError(f"{data_dir / DATABASE}: line {i}: cannot read scp_codes, strat_fold or ecg_id") from None
        if not isinstance(codes, dict):
            raise EdgeECGError(f"{data_dir / DATABASE}: line {i}: scp_codes is not a dict")
        labels = superclasses(codes, diag)
        unknown = labels - set(SUPERCLASSES)
        if unknown:
            raise EdgeECGError(f"{data_dir / STATEMENTS}: unknown diagnostic_class {', '.join(sorted(unknown))}")
        if labels:
            out.append({"ecg_id": ecg_id, "fold": fold, "file": row[RATES[fs]], "labels": labels})
    return out


def multi_hot(labels: set[str]) -> np.ndarray:
    return np.array([c in labels for c in SUPERCLASSES], dtype=np.float32)


def read_record(data_dir: Path, file: str, leads: tuple[str, ...], fs: int) -> np.ndarray:
    """One record as (leads, samples) in mV; one-line errors naming the file."""
    import wfdb

    base = data_dir / file
    hea = base.with_name(base.name + ".hea")
    if not hea.exists():
        raise EdgeECGError(f"{hea}: record missing (listed in {DATABASE})")
    try:
        signal, fields = wfdb.rdsamp(str(base))
    except Exception as err:
        raise EdgeECGError(f"{hea}: cannot read record ({type(err).__name__}: {str(err).strip()[:120]})") from None
    if int(round(fields["fs"])) != fs:
        raise EdgeECGError(f"{hea}: {fields['fs']} Hz, expected {fs} Hz")
    names = [n.upper() for n in fields["sig_name"]]
    missing = [lead for lead in leads if lead.upper() not in names]
    if missing:
        raise EdgeECGError(f"{hea}: no lead(s) {', '.join(missing)} (leads: {', '.join(fields['sig_name'])})")
    x = signal[:, [names.index(lead.upper()) for lead in leads]].T
    if not np.isfinite(x).all():
        raise EdgeECGError(f"{hea}: {int((~np.isfinite(x)).sum())} NaN samples")
    return x


def preprocess(x: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Causal band-pass per lead (mV kept), cropped or zero-padded at the end to ``cfg.window``."""
    from edgeecg.processing.filters import causal_filter, design_bandpass

    sos = design_bandpass(cfg.fs, cfg.band_hz, cfg.filter_order)
    y = np.stack([causal_filter(lead, sos) for lead in x])
    out = np.zeros((len(y), cfg.window), np.float32)
    n = min(cfg.window, y.shape[1])
    out[:, :n] = y[:, :n]
    return out


def leads_of(cfg: DataConfig) -> tuple[str, ...]:
    leads = cfg.leads or LEADS
    unknown = [lead for lead in leads if lead.upper() not in LEADS]
    if unknown:
        raise EdgeECGError(f"[data] leads: unknown {', '.join(unknown)} (PTB-XL: {', '.join(LEADS)})")
    return tuple(leads)


def _cache_file(data_dir: Path, entries: list[dict], cfg: DataConfig, cache_dir: Path) -> Path:
    """Keyed by the two CSVs' SHA-256, every record file's size and mtime, and the data config."""
    stats = []
    for e in entries:
        for ext in (".hea", ".dat"):
            p = data_dir / (e["file"] + ext)
            try:
                st = p.stat()
                stats.append((e["file"] + ext, st.st_size, st.st_mtime_ns))
            except OSError:
                stats.append((e["file"] + ext, -1, -1))
    payload = json.dumps({"csv": [sha256_file(data_dir / n) for n in (DATABASE, STATEMENTS)], "files": stats,
                          "data": dataclasses.asdict(cfg), "v": CACHE_VERSION}, sort_keys=True)
    return cache_dir / f"ptbxl-{hashlib.sha256(payload.encode()).hexdigest()[:20]}.npz"


def load_examples(data_dir: Path, cfg: DataConfig, cache_dir: Path | None = None):
    """Every labelled record: ``x`` (n, leads, window) float32, ``y`` (n, 5) multi-hot, ``fold`` (n,),
    ``ecg_id`` (n,). Cached as one ``.npz`` beside the MIT-BIH beat caches."""

    data_dir = Path(data_dir)
    entries = read_labels(data_dir, cfg.fs)
    if not entries:
        raise EdgeECGError(f"{data_dir / DATABASE}: no record with a diagnostic superclass")
    leads = leads_of(cfg)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    cached = _cache_file(data_dir, entries, cfg, cache_dir)
    if cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as z:
                return z["x"], z["y"], z["fold"], z["ecg_id"]
        except (OSError, ValueError, KeyError):
            pass
    x = np.stack([preprocess(read_record(data_dir, e["file"], leads, cfg.fs), cfg) for e in entries])
    y = np.stack([multi_hot(e["labels"]) for e in entries])
    fold = np.array([e["fold"] for e in entries], np.int64)
    ecg_id = np.array([e["ecg_id"] for e in entries], np.int64)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, x=x, y=y, fold=fold, ecg_id=ecg_id)
    except OSError:
        pass
    return x, y, fold, ecg_id


def make_splits(data_dir: Path, cfg: Config, cache_dir: Path | None = None) -> dict:
    """``train``/``val``/``test`` example sets by ``strat_fold`` (see :class:`~edgeecg.config.SplitConfig`)."""

    if cfg.split.kind == "random":
        raise EdgeECGError("PTB-XL is split by strat_fold (patient-wise); --random-split does not apply")
    folds = {"train": cfg.split.train_folds, "val": cfg.split.val_folds, "test": cfg.split.test_folds}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = sorted(set(folds[a]) & set(folds[b]))
        if shared:
            raise EdgeECGError(f"[split] {a}_folds and {b}_folds share fold(s) {', '.join(map(str, shared))}")
    x, y, fold, ecg_id = load_examples(data_dir, cfg.data, cache_dir)
    rr = np.zeros((len(y), 0), np.float32)
    record = np.array([f"{i:05d}" for i in ecg_id], dtype="U8")
    out = {}
    for name, chosen in folds.items():
        m = np.isin(fold, chosen)
        out[name] = BeatSet(x[m], rr[m], y[m], record[m])
    if not len(out["train"]) or not len(out["test"]):
        raise EdgeECGError(f"{data_dir}: no records in the train folds {list(folds['train'])} or the test folds "
                           f"{list(folds['test'])}")
    return out


def input_files(data_dir: Path, records, fs: int = 100) -> dict[str, str]:
    """SHA-256 of the two CSVs and of every file of the given records (``ecg_id`` strings) at ``fs``,
    for the run's manifest."""

    data_dir = Path(data_dir)
    wanted = {int(r) for r in records}
    files = {}
    for e in read_labels(data_dir, fs):
        if e["ecg_id"] in wanted:
            for ext in (".hea", ".dat"):
                files[e["file"] + ext] = sha256_file(data_dir / (e["file"] + ext))
    for name in (DATABASE, STATEMENTS):
        files[name] = sha256_file(data_dir / name)
    return files


def resolve_data_dir(data: str | Path | None, fs: int = 100) -> Path:
    """``--data`` (a folder holding ``ptbxl_database.csv``, or one holding ``ptbxl-500/`` or ``ptb-xl/``), else
    the full database downloaded from PhysioNet with ``wfdb`` into :func:`default_download_dir`."""
    if data is not None:
        path = Path(data)
        if not path.is_dir():
            raise EdgeECGError(f"{path}: data directory does not exist")
        if not (path / DATABASE).exists():
            for sub in ("ptb-xl", "ptbxl", "ptbxl-500"):
                if (path / sub / DATABASE).exists():
                    return path / sub
            raise EdgeECGError(f"{path}: no {DATABASE} (not a PTB-XL folder)")
        return path
    return download(default_download_dir(), fs)


def download(dest: Path, fs: int = 100) -> Path:
    """The two CSVs and every record at ``fs`` from PhysioNet (``wfdb.dl_files`` / ``wfdb.dl_database``),
    skipping what is there already. Full PTB-XL: 21,799 records, about 1.7 GB at 100 Hz."""
    import wfdb

    if fs not in RATES:
        raise EdgeECGError(f"[data] fs = {fs}: PTB-XL comes at 100 Hz or 500 Hz")
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        missing_csv = [n for n in (DATABASE, STATEMENTS) if not (dest / n).exists()]
        if missing_csv:
            wfdb.dl_files(PHYSIONET_DB, str(dest), missing_csv)
        rows = _read_csv(dest / DATABASE)
        missing = [r[RATES[fs]] for r in rows if not (dest / (r[RATES[fs]] + ".dat")).exists()]
        if missing:
            wfdb.dl_database(PHYSIONET_DB, str(dest), records=missing, annotators=None)
    except EdgeECGError:
        raise
    except Exception as err:   # network, HTTP or file-system errors all mean the same to a user
        raise EdgeECGError(f"{dest}: cannot download {PHYSIONET_DB} from PhysioNet ({type(err).__name__}); "
                           f"pass --data /path/to/ptb-xl for a local copy or set EDGEECG_PTBXL") from None
    return dest
