"""Score a trained run on any WFDB database with beat annotations (``edgeecg evaluate RUN --data DIR``).

Each record's lead (a name or an index) is read at its own rate, resampled to the run's rate and
filtered exactly as in training; beats come from the record's reference annotations. What ships is
scored beside the float model: the int8 graph of an export (its integer reference, or the compiled
generated C, bit-exact with it), gross and per record, with false S and V calls per hour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeecg.config import Config, rr_feature_names
from edgeecg.data import BeatSet
from edgeecg.data.sources import hours_of
from edgeecg.errors import EdgeECGError
from edgeecg.io import list_records, rdann
from edgeecg.metrics import DELTAS, agreement, classification_report, false_alarms, per_record_report, summarise
from edgeecg.processing.aami import aami_labels
from edgeecg.processing.beats import read_beats


def record_beats(data_dir: Path, name: str, cfg: Config, lead: str | int, annotator: str) -> BeatSet:
    """Beats of one record of another database, with one-line errors for what cannot be scored."""
    beats = read_beats(data_dir, name, cfg.data, lead, annotator)
    if not len(beats.y):
        symbols = rdann(data_dir, name, annotator)[1]         # only to say why there is nothing
        if not (aami_labels(symbols) >= 0).any():
            raise EdgeECGError(f"{data_dir / f'{name}.{annotator}'}: no beat annotations "
                               f"({len(symbols)} annotations, none of them a beat)")
        raise EdgeECGError(f"{data_dir / name}: too short or too few beats for a {cfg.data.window}-sample window")
    return BeatSet(beats.x, beats.rr, beats.y, np.full(len(beats.y), name, dtype="U16"))


def score(y: np.ndarray, pred: np.ndarray, record: np.ndarray, hours: dict[str, float]) -> dict:
    """Gross report, S/V per record and false S/V calls per hour of one set of classes."""
    per_record = per_record_report(y, pred, record)
    return {"report": classification_report(y, pred), "per_record": per_record,
            "false_alarms": false_alarms(per_record, hours)}


def evaluate_database(model, cfg: Config, data_dir: Path, records: list[str] | None = None,
                      lead: str | int | None = None, annotator: str = "atr", int8=None) -> dict:
    """Float (``report``, ``per_record``, ``false_alarms``) and, with ``int8`` (an
    :class:`~edgeecg.runtimes.Int8GraphRunner`), the same for the int8 classes under ``int8`` with
    their differences from float, for ``records`` of ``data_dir``."""
    from edgeecg.train import predict_proba

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise EdgeECGError(f"{data_dir}: data directory does not exist")
    names = records or list_records(data_dir)
    if not names:
        raise EdgeECGError(f"{data_dir}: no WFDB records (*.hea) found")
    lead = cfg.data.lead if lead is None else lead
    beats = BeatSet.concat([record_beats(data_dir, n, cfg, lead, annotator) for n in names])
    hours = {n: hours_of(data_dir, n) for n in names}
    pred = predict_proba(model, beats).argmax(1)
    out = {"data_dir": str(data_dir.resolve()), "records": list(names), "lead": str(lead), "annotator": annotator,
           "fs": cfg.data.fs, "beats": len(beats), **score(beats.y, pred, beats.record, hours)}
    if int8 is not None:
        classes = int8.classify(beats.x, beats.rr)[1]
        row = summarise(beats.y, classes, out["report"])
        out["int8"] = {"kind": "generated C" if int8.c_model is not None else "integer reference",
                       **score(beats.y, classes, beats.record, hours),
                       "vs_float": {k: row[k] for k in DELTAS},
                       "agreement_with_float": agreement(classes, pred)}
    return out


def score_run_on_csv(model, cfg: Config, csv_path: str | Path, batch_size: int = 4096) -> dict:
    """The MIT-BIH model of a run (e.g. the default DS1 -> DS2 recipe) on a Kaggle-format CSV: the
    ``evaluate``-style result (``report`` is the AAMI classification report) and what was filled in."""
    from edgeecg.data.kaggle import COMPARABILITY, FS, SAMPLES, TEST_CSV, mitbih_inputs, read_csv
    from edgeecg.train import predict_proba

    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / TEST_CSV
    raw, y = read_csv(csv_path)
    x, rr = mitbih_inputs(raw, cfg.data)
    beats = BeatSet(x, rr, y, np.full(len(y), "csv", dtype="U16"))
    pred = predict_proba(model, beats, batch_size=batch_size).argmax(1)
    return {"data_dir": str(csv_path.resolve()), "records": [csv_path.name], "lead": "the CSV's lead (MLII)",
            "annotator": "CSV label column", "fs": cfg.data.fs, "beats": len(beats),
            "report": classification_report(y, pred), "per_record": per_record_report(y, pred, beats.record),
            "format": {"csv_fs_hz": FS, "samples": SAMPLES, "resampled_to_hz": cfg.data.fs,
                       "r_peak_at": cfg.data.before, "before_r_peak": "the segment's samples before the next R-peak",
                       "template_channel": "the file's mean beat" if cfg.data.template_beats else None,
                       "rr_features": {n: ("0" if n == "irregularity" else "1" if "_over_" in n else
                                           "beat length / 1.2 / 125 Hz") for n in rr_feature_names(cfg.data)}},
            "leaky": True, "comparability": COMPARABILITY}
