"""What an explanation is computed from: a record's beats (with their R peaks, annotated or detected),
the run's export and its int8 model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError


@dataclass
class RecordBeats:
    """A record's classified beats and its preprocessed signal (both at the canonical rate)."""

    name: str
    beats: object  # edgeecg.processing.beats.Beats: x, rr, y (-1: no reference), sample
    signal: np.ndarray  # resampled, band-passed lead at cfg.fs (what the windows are cut from)
    fs: int
    annotated: bool = True  # False: R peaks from our QRS detector, no reference classes


def record_beats(record, cfg, second=None) -> RecordBeats:
    """Beats of a :class:`edgeecg.io.Record` (``extract_beats``; ``second``: the same record's second
    lead, for a two-lead recipe) and the first lead's preprocessed signal."""
    from edgeecg.processing.beats import extract_beats, preprocess_signal

    beats = extract_beats(record, cfg, second)
    return RecordBeats(record.name, beats, preprocess_signal(record.signal, record.fs, cfg), cfg.fs)


def load_record(data_dir: Path, name: str, cfg, lead: str | int | None = None) -> RecordBeats:
    """Read a WFDB record's leads that the recipe reads (every file checked) and cut its beats."""
    from edgeecg.processing.beats import read_recipe_leads

    record, *second = read_recipe_leads(Path(data_dir), name, cfg, lead)
    return record_beats(record, cfg, *second)


def detect_r_peaks(signal_mv: np.ndarray, fs: float) -> np.ndarray:
    """R-peak samples (at ``fs``) of an unannotated signal in mV, by the project's integer QRS detector
    (:mod:`edgeecg.stream.qrs`) run at 360 Hz (the signal is resampled there first when needed)."""
    from edgeecg.processing.filters import resample
    from edgeecg.stream import qrs

    adc_hz = 360
    sig = signal_mv if float(fs) == adc_hz else resample(signal_mv, fs, adc_hz)
    adc = np.clip(np.round(np.asarray(sig, dtype=np.float64) * 200.0), -32768, 32767).astype(np.int16)
    peaks180 = qrs.detect(adc, adc_hz, qrs.params_for(adc_hz, 200.0))
    return np.round(np.asarray(peaks180) * (float(fs) / 180.0)).astype(np.int64)


def unannotated_record_beats(signal_mv: np.ndarray, fs: float, cfg, name: str = "upload") -> RecordBeats:
    """Beats of a bare signal (e.g. a CSV): R peaks detected, no reference classes (``y`` = -1)."""
    from edgeecg.io import Record

    signal_mv = np.asarray(signal_mv, dtype=np.float64)
    if signal_mv.ndim != 1 or signal_mv.size < 2 * fs:
        raise EdgeECGError(f"{name}: need at least 2 s of samples in one column, got {signal_mv.size}")
    if not np.all(np.isfinite(signal_mv)):
        raise EdgeECGError(f"{name}: {int(np.sum(~np.isfinite(signal_mv)))} samples are not numbers")
    if float(np.std(signal_mv)) < 1e-6:
        raise EdgeECGError(f"{name}: the signal is a flat line (no ECG)")
    peaks = detect_r_peaks(signal_mv, fs)
    if len(peaks) < 3:
        raise EdgeECGError(f"{name}: found {len(peaks)} beats; is it an ECG in mV at {fs:g} Hz?")
    rec = Record(
        name=name, signal=signal_mv, fs=float(fs), ann_samples=peaks, ann_symbols=np.full(len(peaks), "N", dtype="U2")
    )
    out = record_beats(rec, cfg)
    out.beats.y = np.full(len(out.beats.y), -1, dtype=np.int64)
    out.annotated = False
    return out


def find_export(run_dir: Path, target: str | None = None) -> Path | None:
    """``RUN/export/<target>`` holding ``report.json`` (the only or first one when no target is given)."""
    root = Path(run_dir) / "export"
    if target:
        d = root / target
        if not (d / "report.json").exists():
            raise EdgeECGError(f"{d}: no report.json (run `edgeecg quantize {run_dir} --target {target}`)")
        return d
    found = sorted(p.parent for p in root.glob("*/report.json")) if root.is_dir() else []
    return found[0] if found else None


class Int8Model:
    """The export's int8 graph run by the numpy integer reference (bit-exact with the generated C),
    and the float model it was quantized from (the pruned one where ``--prune`` was used)."""

    def __init__(self, export_dir: Path, float_model):
        from edgeecg.quant import read_tflite
        from edgeecg.run import load_model
        from edgeecg.runtimes import Int8GraphRunner

        export_dir = Path(export_dir)
        tfl = export_dir / "model.int8.tflite"
        if not tfl.exists():
            raise EdgeECGError(f"{tfl}: missing (re-run `edgeecg quantize`)")
        self.runner = Int8GraphRunner(read_tflite(tfl.read_bytes(), str(tfl)))
        self.float_model, self.pruned = float_model, False
        if (export_dir / "model.pruned.pt").exists() and (export_dir / "config.pruned.toml").exists():
            self.float_model, self.pruned = (
                load_model(export_dir / "config.pruned.toml", export_dir / "model.pruned.pt")[1],
                True,
            )

    def classes(self, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0, np.int64)
        return self.runner.classify(x, rr)[1]
