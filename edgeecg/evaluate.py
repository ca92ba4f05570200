"""Score a trained run on any WFDB database with beat annotations (``edgeecg evaluate RUN --data DIR``).

Each record's lead (a name or an index) is read at its own rate, resampled to the run's rate and
filtered exactly as in training; beats come from the record's reference annotations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeecg.config import Config
from edgeecg.dataset import BeatSet
from edgeecg.errors import EdgeECGError
from edgeecg.io import list_records, rdrecord
from edgeecg.metrics import classification_report, per_record_report
from edgeecg.processing.aami import aami_labels
from edgeecg.processing.beats import extract_beats


def record_beats(data_dir: Path, name: str, cfg: Config, lead: str | int, annotator: str) -> BeatSet:
    """Beats of one record of another database, with one-line errors for what cannot be scored."""
    rec = rdrecord(data_dir, name, lead, annotator)
    if not (aami_labels(rec.ann_symbols) >= 0).any():
        raise EdgeECGError(f"{data_dir / f'{name}.{annotator}'}: no beat annotations "
                           f"({len(rec.ann_symbols)} annotations, none of them a beat)")
    beats = extract_beats(rec, cfg.data)       # the lead was chosen by rdrecord
    if not len(beats.y):
        raise EdgeECGError(f"{data_dir / name}: too short or too few beats for a {cfg.data.window}-sample window")
    return BeatSet(beats.x, beats.rr, beats.y, np.full(len(beats.y), name, dtype="U16"))


def evaluate_database(model, cfg: Config, data_dir: Path, records: list[str] | None = None,
                      lead: str | int | None = None, annotator: str = "atr") -> dict:
    """Classification report, per-record S/V figures and what was read, for ``records`` of ``data_dir``."""
    from edgeecg.train import predict_proba

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise EdgeECGError(f"{data_dir}: data directory does not exist")
    names = records or list_records(data_dir)
    if not names:
        raise EdgeECGError(f"{data_dir}: no WFDB records (*.hea) found")
    lead = cfg.data.lead if lead is None else lead
    beats = BeatSet.concat([record_beats(data_dir, n, cfg, lead, annotator) for n in names])
    pred = predict_proba(model, beats).argmax(1)
    return {"data_dir": str(data_dir.resolve()), "records": list(names), "lead": str(lead), "annotator": annotator,
            "fs": cfg.data.fs, "beats": len(beats), "report": classification_report(beats.y, pred),
            "per_record": per_record_report(beats.y, pred, beats.record)}
