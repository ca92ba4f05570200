"""The Kaggle "ECG Heartbeat Categorization" CSVs (Kachuee et al. 2018, from MIT-BIH).

``mitbih_train.csv`` (87,554 rows) and ``mitbih_test.csv`` (21,892 rows): each row is one beat, 187
samples at 125 Hz, then its class (0-4 = N S V F Q, the AAMI classes in this project's order). A
beat starts at its R-peak and runs for 1.2 times the median RR interval of the 10 s around it,
min-max scaled to [0, 1] over those 10 s and zero-padded to 187 samples. Beats of all 48 records
are shuffled together before the train/test cut, so the same patients are on both sides: figures
on it are beat-wise (leaky), not inter-patient, and ``metrics.json`` says so (``split.leaky``).

:func:`read_csv` checks the format (column count, numbers only, no NaN, integer labels 0-4) and
names the file and row of the first problem in one line. :func:`edgeecg.evaluate.score_run_on_csv` is the other
direction: the MIT-BIH DS1 -> DS2 model on beats of this format.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from edgeecg.config import Config, DataConfig, rr_feature_names
from edgeecg.data.beatset import BeatSet
from edgeecg.digest import sha256_file
from edgeecg.errors import EdgeECGError
from edgeecg.processing.aami import CLASSES

SAMPLES = 187            # values per beat
FS = 125                 # Hz
COLUMNS = SAMPLES + 1    # and the label
TRAIN_CSV, TEST_CSV = "mitbih_train.csv", "mitbih_test.csv"
RR_FROM_LENGTH = 1.2     # a beat's non-padded length is 1.2 x the median RR of its 10 s


def _diagnose(path: Path) -> str:
    """The first problem of a CSV that numpy could not read, as ``row R[, column C]: what``."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for i, fields in enumerate(csv.reader(f), start=1):
                if not fields or all(not v.strip() for v in fields):
                    continue
                if len(fields) != COLUMNS:
                    return (f"row {i}: {len(fields)} values, expected {COLUMNS} "
                            f"({SAMPLES} samples at {FS} Hz and the class label)")
                for j, v in enumerate(fields, start=1):
                    try:
                        float(v)
                    except ValueError:
                        return f"row {i}, column {j}: non-numeric value {v.strip()[:20]!r}"
    except UnicodeDecodeError:
        return "not a text CSV file"
    return "unreadable CSV"


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Beats ``x`` (n, 187) float32 and labels ``y`` (n,) int64 of one CSV, every row checked."""
    path = Path(path)
    if not path.is_file():
        raise EdgeECGError(f"{path}: CSV file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # an empty file: "no rows" below
            data = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, encoding="utf-8")
    except (ValueError, UnicodeDecodeError):
        raise EdgeECGError(f"{path}: {_diagnose(path)}") from None
    if data.size == 0:
        raise EdgeECGError(f"{path}: no rows")
    if data.shape[1] != COLUMNS:
        raise EdgeECGError(f"{path}: row 1: {data.shape[1]} values, expected {COLUMNS} "
                           f"({SAMPLES} samples at {FS} Hz and the class label)")
    bad = ~np.isfinite(data)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise EdgeECGError(f"{path}: row {row + 1}, column {col + 1}: {data[row, col]} (NaN or infinite)")
    labels = data[:, -1]
    wrong = (labels != np.round(labels)) | (labels < 0) | (labels > len(CLASSES) - 1)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise EdgeECGError(f"{path}: row {row + 1}: label {labels[row]:g} is not one of 0-4 "
                           f"({' '.join(CLASSES)})")
    return data[:, :SAMPLES].astype(np.float32), labels.astype(np.int64)


def csv_files(data: str | Path) -> tuple[Path, Path | None]:
    """``(train CSV, test CSV or None)`` of ``--data``: a folder holding both, or one CSV file (its
    sibling ``mitbih_test.csv``, where there is one, is the test set)."""
    path = Path(data)
    if path.is_dir():
        missing = [n for n in (TRAIN_CSV, TEST_CSV) if not (path / n).is_file()]
        if missing:
            raise EdgeECGError(f"{path}: no {' or '.join(missing)} (a Kaggle folder holds {TRAIN_CSV} and {TEST_CSV})")
        return path / TRAIN_CSV, path / TEST_CSV
    if not path.is_file():
        raise EdgeECGError(f"{path}: CSV file not found")
    test = path.with_name(TEST_CSV)
    return path, (test if test.is_file() and test.resolve() != path.resolve() else None)


def to_windows(x: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Beats (n, 187) as model inputs (n, 1, window): cropped or zero-padded at the end."""
    out = np.zeros((len(x), 1, cfg.window), np.float32)
    n = min(cfg.window, x.shape[1])
    out[:, 0, :n] = x[:, :n]
    return out


def _holdout(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A class-stratified random ``fraction`` of the rows (boolean mask)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        mask[rows[: int(round(len(rows) * fraction))]] = True
    return mask


def make_splits(data: str | Path, cfg: Config) -> dict:
    """``train`` (the train CSV less a stratified ``random_fractions[0]`` hold-out), ``val`` (that
    hold-out), ``test`` (the test CSV; without one, a second ``random_fractions[1]`` hold-out).
    Every part is beat-wise from the same 48 patients: leaky (see the module docstring)."""

    if cfg.data.fs != FS:
        raise EdgeECGError(f"[data] fs = {cfg.data.fs}: the Kaggle CSV beats are at {FS} Hz (set fs = {FS})")
    train_csv, test_csv = csv_files(data)
    x, y = read_csv(train_csv)
    val_frac, test_frac = cfg.split.random_fractions
    parts = {}
    rest = np.ones(len(y), bool)
    if test_csv is None:
        test_mask = _holdout(y, test_frac, cfg.train.seed + 1)
        parts["test"] = (x[test_mask], y[test_mask], "train")
        rest &= ~test_mask
    val_mask = _holdout(np.where(rest, y, -1), val_frac, cfg.train.seed) & rest
    parts["val"] = (x[val_mask], y[val_mask], "train")
    parts["train"] = (x[rest & ~val_mask], y[rest & ~val_mask], "train")
    if test_csv is not None:
        xt, yt = read_csv(test_csv)
        parts["test"] = (xt, yt, "test")

    def beats(x_, y_, source):
        return BeatSet(to_windows(x_, cfg.data), np.zeros((len(y_), 0), np.float32), y_,
                       np.full(len(y_), source, dtype="U8"))

    return {name: beats(*parts[name]) for name in ("train", "val", "test")}


def input_files(data: str | Path) -> dict[str, str]:

    train_csv, test_csv = csv_files(data)
    return {p.name: sha256_file(p) for p in (train_csv, test_csv) if p is not None}


# --- the MIT-BIH model on beats of this format ---------------------------------------------------

COMPARABILITY = (
    "Not comparable with DS2 figures. The Kaggle CSVs hold beats of all 48 MIT-BIH records shuffled together: "
    "DS1 patients the model was trained on are among them, and the paced records (102, 104, 107, 217) that "
    "the DS2 protocol excludes are there as Q. The format also drops what the model reads besides the beat, "
    "so some of it is filled in (label-free): a beat starts at its R-peak, so the samples before it are the "
    "segment's own last samples before the next R-peak (the same place in the next cycle); the min-max scaled "
    "raw signal is band-passed with the model's causal filter over the window; rows are not in time order, so "
    "the patient template is the mean beat of the whole file; no RR interval is known (ratios 1, irregularity "
    "0, absolute intervals the 10 s median RR that the beat's length encodes). With the factorized head N "
    "versus S depends on RR alone, so the model cannot find S beats in this format. Comparable: the labels "
    "(the same AAMI mapping of the same annotations) and, as a robustness test, the V/F morphology decisions; "
    "to score the format on DS2 patients only, write DS2 in it with records_to_csv.")


def _neutral_rr(names: tuple[str, ...], rr_seconds: np.ndarray) -> np.ndarray:
    cols = []
    for name in names:
        if name == "irregularity":
            cols.append(np.zeros_like(rr_seconds))
        elif "_over_" in name:
            cols.append(np.ones_like(rr_seconds))
        else:                                           # an interval in seconds
            cols.append(rr_seconds)
    return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(rr_seconds), 0), np.float32)


def mitbih_inputs(x: np.ndarray, data: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """CSV beats (n, 187) as what a MIT-BIH model of ``data`` takes: ``x`` (n, channels, window) at
    ``data.fs`` with the R-peak at sample ``data.before``, band-passed and z-scored like training
    beats, and ``rr`` (n, k); see :data:`COMPARABILITY` for what is filled in and how."""
    from scipy.signal import resample_poly

    from edgeecg.processing.beats import normalise_windows, round_to_input_grid
    from edgeecg.processing.filters import causal_filter, design_bandpass

    if data.dataset != "mitdb":
        raise EdgeECGError(f"the run's [data] dataset is {data.dataset!r}: scoring on the CSV format needs a "
                           f"MIT-BIH model")
    if data.history_options:
        name = data.history_options[0]
        raise EdgeECGError(f"the run's [data] {name} is {getattr(data, name)!r}: the CSV's lone beats have no earlier "
                           f"beats of their patient to read it from")
    nonzero = x != 0
    length = np.where(nonzero.any(axis=1), SAMPLES - np.argmax(nonzero[:, ::-1], axis=1), 1)
    up = resample_poly(x.astype(np.float64), data.fs, FS, axis=1)      # 125 -> fs Hz, whole padded row
    n_valid = np.minimum(np.ceil(length * data.fs / FS).astype(int), up.shape[1])
    sos = design_bandpass(data.fs, data.band_hz, data.filter_order)
    after = np.arange(data.after)
    windows = np.empty((len(x), data.window))
    for i in range(len(x)):
        seg = up[i, : max(1, n_valid[i])]
        next_r = int(round(len(seg) / RR_FROM_LENGTH))          # the segment reaches 0.2 RR past the next R
        pre = seg[next_r - data.before:next_r] if data.before <= next_r <= len(seg) else np.full(data.before, np.median(seg))
        w = np.concatenate([pre, seg[np.minimum(after, len(seg) - 1)]])
        windows[i] = causal_filter(w, sos)       # starts in the steady state of w[0], as if it had sat there
    beat = normalise_windows(windows)
    channels = [beat] if data.beat_channel else []
    if data.template_beats:
        channels.append(beat - beat.mean(axis=0, keepdims=True))   # the file's mean beat as the template
    xs = round_to_input_grid(np.stack(channels, axis=1).astype(np.float32), data.input_step)
    rr_seconds = length / FS / RR_FROM_LENGTH
    return xs, _neutral_rr(rr_feature_names(data), rr_seconds)


def records_to_csv(data_dir: str | Path, records, path: str | Path, lead: str = "MLII") -> dict:
    """WFDB records with beat annotations (e.g. MIT-BIH DS2) as beats of the Kaggle CSV format, so
    that :func:`edgeecg.evaluate.score_run_on_csv` can score a model on the format with patients of one's choosing.

    Kachuee et al.'s steps, with the reference R-peaks instead of their detector: the lead resampled
    to 125 Hz, cut into consecutive 10 s windows, each min-max scaled to [0, 1]; every annotated beat
    of a window runs from its R-peak for 1.2 x the window's median RR (clipped to [0, 1]), cropped or
    zero-padded to 187 samples; the label is its AAMI class. Windows with fewer than two beats are
    skipped (no RR). Returns ``{"beats": n, "per_class": {...}}``."""
    from edgeecg.io import rdrecord
    from edgeecg.processing.aami import aami_labels
    from edgeecg.processing.filters import resample

    rows, labels = [], []
    for name in records:
        rec = rdrecord(Path(data_dir), name, lead)
        x = resample(rec.signal, rec.fs, FS)
        y = aami_labels(rec.ann_symbols)
        beat = y >= 0
        r = np.round(rec.ann_samples[beat] * FS / rec.fs).astype(np.int64)
        y = y[beat]
        window = 10 * FS
        for start in range(0, len(x) - window + 1, window):
            inside = (r >= start) & (r < start + window)
            if inside.sum() < 2:
                continue
            seg = x[start:start + window]
            lo, hi = seg.min(), seg.max()
            span = hi - lo if hi > lo else 1.0
            length = int(round(RR_FROM_LENGTH * np.median(np.diff(r[inside]))))
            for peak, label in zip(r[inside], y[inside]):
                part = ((x[peak:peak + min(length, SAMPLES)] - lo) / span).clip(0, 1)
                row = np.zeros(SAMPLES)
                row[:len(part)] = part
                rows.append(row)
                labels.append(label)
    data = np.column_stack([np.array(rows).reshape(-1, SAMPLES), np.array(labels, dtype=float)])
    np.savetxt(path, data, delimiter=",", fmt="%.18e")
    return {"beats": len(labels), "per_class": {c: int(np.sum(np.array(labels) == i)) for i, c in enumerate(CLASSES)}}
