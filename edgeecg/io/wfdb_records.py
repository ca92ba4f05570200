"""WFDB records (``.hea`` + ``.dat`` + ``.atr``) read with ``wfdb`` and checked before use.

Every problem with a file becomes an :class:`~edgeecg.errors.EdgeECGError` whose message names
the file and the problem, so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wfdb

from edgeecg.errors import EdgeECGError

# Bytes per sample of the WFDB storage formats, to spot a truncated .dat before wfdb does.
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
                     "212": 1.5, "310": 4 / 3, "311": 4 / 3}
PHYSIONET_DB = "mitdb"


@dataclass
class Record:
    """One lead of a record with its reference beat annotations."""

    name: str
    signal: np.ndarray          # physical units (mV), float64
    fs: float
    ann_samples: np.ndarray     # int64 sample index of each annotation
    ann_symbols: np.ndarray     # annotation symbol of each ("N", "V", "+", ...)


def default_download_dir(database: str = PHYSIONET_DB) -> Path:
    """Where PhysioNet records are downloaded: ``$EDGEECG_DATA`` (MIT-BIH; another database beside
    it) or ``~/.cache/edgeecg/<database>``."""
    env = os.environ.get("EDGEECG_DATA")
    if env:
        return Path(env) if database == PHYSIONET_DB else Path(env).parent / database
    return Path.home() / ".cache" / "edgeecg" / database


def resolve_data_dir(data: str | Path | None, records: tuple[str, ...] = (),
                     database: str = PHYSIONET_DB) -> Path:
    """The directory holding the WFDB records of ``database`` (PhysioNet's name: mitdb, svdb, ...).

    With ``data`` given it must exist; a folder holding ``<database>/`` (like ``../shared/data``) is
    accepted for the folder itself. Without it, the records are downloaded from PhysioNet into
    :func:`default_download_dir` unless they are there already.
    """
    if data is not None:
        path = Path(data)
        if not path.is_dir():
            raise EdgeECGError(f"{path}: data directory does not exist")
        if not any(path.glob("*.hea")) and (path / database).is_dir():
            path = path / database
        return path
    path = default_download_dir(database)
    missing = [r for r in records if not all((path / f"{r}.{e}").exists() for e in ("hea", "dat", "atr"))]
    if missing or not records:
        try:
            path.mkdir(parents=True, exist_ok=True)
            wfdb.dl_database(database, str(path), records=missing or "all", annotators=["atr"])
        except Exception as err:  # network, HTTP or file-system errors all mean the same to a user
            raise EdgeECGError(
                f"{path}: cannot download {database} from PhysioNet ({type(err).__name__}); "
                f"put a local copy beside --data (or pass --data /path/to/{database}) or set EDGEECG_DATA") from None
    return path


def list_records(data_dir: Path) -> list[str]:
    """Record names in a directory: its ``RECORDS`` file, else every ``*.hea``."""
    listing = data_dir / "RECORDS"
    if listing.exists():
        return [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    return sorted(p.stem for p in data_dir.glob("*.hea"))


def record_files(data_dir: Path, name: str, annotator: str = "atr") -> list[Path]:
    """The files a record is made of (header, signal files, annotations), checked to exist."""
    header = read_header(data_dir, name)
    files = [data_dir / f"{name}.hea"]
    for fname in dict.fromkeys(header.file_name or []):
        files.append(data_dir / fname)
    files.append(data_dir / f"{name}.{annotator}")
    for f in files[1:]:
        if not f.exists():
            what = "annotations" if f.suffix == f".{annotator}" else "signal file"
            raise EdgeECGError(f"{f}: {what} missing (needed by {name}.hea)")
    return files


def read_header(data_dir: Path, name: str):
    """The record's parsed header (``wfdb.Record`` without signal); one clear line if missing or corrupt."""
    hea = data_dir / f"{name}.hea"
    if not hea.exists():
        raise EdgeECGError(f"{hea}: record {name!r} not found in {data_dir}")
    try:
        return wfdb.rdheader(str(data_dir / name))
    except Exception as err:
        raise EdgeECGError(f"{hea}: corrupt header ({_short(err)})") from None


def check_signal_file_sizes(data_dir: Path, header) -> None:
    """One clear line if a signal file is shorter than its header says (a truncated download)."""
    by_file: dict[str, list[int]] = {}
    for i, fname in enumerate(header.file_name or []):
        by_file.setdefault(fname, []).append(i)
    for fname, channels in by_file.items():
        fmt = str(header.fmt[channels[0]])
        bps = _BYTES_PER_SAMPLE.get(fmt)
        if bps is None or not header.sig_len:
            continue
        offset = (header.byte_offset or [0] * header.n_sig)[channels[0]] or 0
        expected = offset + math.ceil(header.sig_len * len(channels) * bps)
        actual = (data_dir / fname).stat().st_size
        if actual < expected:
            raise EdgeECGError(f"{data_dir / fname}: truncated signal file "
                               f"({actual} bytes, header needs {expected})")


def lead_name(header, lead: str | int, where: Path) -> str:
    """The signal name of ``lead``: a name (``MLII``) or a 0-based index (``0`` or ``"0"``)."""
    names = list(header.sig_name or [])
    if isinstance(lead, int) or str(lead).isdigit():
        index = int(lead)
        if not 0 <= index < len(names):
            raise EdgeECGError(f"{where}: no lead {index} (the record has {len(names)}: {', '.join(names)})")
        return names[index]
    if lead not in names:
        raise EdgeECGError(f"{where}: no lead {lead!r} (leads: {', '.join(names)})")
    return str(lead)


def second_lead_name(data_dir: Path, name: str, first: str | int, second: str) -> str:
    """The signal name of a record's second lead: ``"other"`` is the one lead of a two-lead record
    that is not ``first`` (MIT-BIH's V1/V5 beside MLII, also where record 114 stores them swapped)."""
    where = data_dir / f"{name}.hea"
    header = read_header(data_dir, name)
    first = lead_name(header, first, where)
    if second != "other":
        return lead_name(header, second, where)
    others = [n for n in header.sig_name or [] if n != first]
    if len(others) != 1:
        raise EdgeECGError(f"{where}: second_lead = \"other\" needs a two-lead record "
                           f"(leads: {', '.join(header.sig_name or [])})")
    return others[0]


def read_signal(data_dir: Path, name: str, lead: str | int = "MLII") -> tuple[np.ndarray, float]:
    """One lead (name or index) of a record's signal in physical units and its sampling rate, every
    check applied (header, lead, signal files present and long enough, no NaN, not flat)."""
    signals, fs = read_signals(data_dir, name, [lead])
    return signals[:, 0], fs


def read_signals(data_dir: Path, name: str, leads: Sequence[str | int]) -> tuple[np.ndarray, float]:
    """:func:`read_signal` of several leads in one read of the signal files: ``(n, len(leads))``."""
    header = read_header(data_dir, name)
    names = [lead_name(header, lead, data_dir / f"{name}.hea") for lead in leads]
    signal_files = [data_dir / f for f in dict.fromkeys(header.file_name or [])]
    for f in signal_files:
        if not f.exists():
            raise EdgeECGError(f"{f}: signal file missing (needed by {name}.hea)")
    where = signal_files[0] if signal_files else data_dir / f"{name}.hea"
    check_signal_file_sizes(data_dir, header)
    try:
        rec = wfdb.rdrecord(str(data_dir / name), channel_names=list(dict.fromkeys(names)))
    except Exception as err:
        raise EdgeECGError(f"{where}: cannot read signal ({_short(err)})") from None
    signals = np.stack([np.asarray(rec.p_signal[:, rec.sig_name.index(n)], dtype=np.float64) for n in names], axis=1)
    for lead, signal in zip(names, signals.T):
        n_nan = int(np.isnan(signal).sum())
        if n_nan:
            raise EdgeECGError(f"{where}: lead {lead} has {n_nan} NaN samples of {signal.size}")
        if signal.size < 2 or float(np.std(signal)) < 1e-6:
            raise EdgeECGError(f"{where}: lead {lead} is a flat line (no ECG signal)")
    return signals, float(rec.fs)


def rdrecord(data_dir: Path, name: str, lead: str | int = "MLII", annotator: str = "atr") -> Record:
    """Read one lead (name or index) of a record and its reference annotations, every check applied."""
    return read_records(data_dir, name, [lead], annotator)[0]


def read_records(data_dir: Path, name: str, leads: Sequence[str | int], annotator: str = "atr") -> list[Record]:
    """:func:`rdrecord` of several leads of one record (one :class:`Record` per lead, the same
    annotations), the signal files read once."""
    record_files(data_dir, name, annotator)          # every file there, the annotations too
    signals, fs = read_signals(data_dir, name, leads)
    samples, symbols = rdann(data_dir, name, annotator)
    return [Record(name=name, signal=np.ascontiguousarray(signal), fs=fs, ann_samples=samples, ann_symbols=symbols)
            for signal in signals.T]


def rdann(data_dir: Path, name: str, annotator: str = "atr") -> tuple[np.ndarray, np.ndarray]:
    """Reference annotations of a record: (sample indices, symbols)."""
    atr = data_dir / f"{name}.{annotator}"
    if not atr.exists():
        raise EdgeECGError(f"{atr}: annotations missing (beat labels come from the .{annotator} file)")
    try:
        ann = wfdb.rdann(str(data_dir / name), annotator)
    except Exception as err:
        raise EdgeECGError(f"{atr}: cannot read annotations ({_short(err)})") from None
    return np.asarray(ann.sample, dtype=np.int64), np.asarray(ann.symbol, dtype="U2")


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
