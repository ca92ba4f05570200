"""Do the default's out-of-fold false S/V calls fall where the annotators marked the scored lead noisy?

MIT-BIH-format annotations mark signal quality with ``~``: its subtype's bit k says lead k is noisy, bit k + 4
that it is unreadable, and -1 that every lead is. Per database: the share of beats in those stretches of the lead the recipe reads, the false
S/V calls there (as ``metrics.false_alarms`` counts them) and the S and V beats there: what a gate on signal
quality could at most remove. The answer (no such gate was built) is in training/README.md.

    python training/noise_screen.py --data ../shared/data/mitdb --cv runs/cv-hybrid     (about 1 min)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import wfdb

from edgeecg.config import load_config
from edgeecg.cv import cv_pool
from edgeecg.data.sources import database_of, locate, resolve_sources
from edgeecg.processing.beats import read_beats
from seed_ensemble import load                  # beside this script: the same reading of a CV run


def noisy_beats(folder: Path, name: str, lead, beat_seconds: np.ndarray) -> np.ndarray:
    """Whether each beat (R peak in seconds) lies in a stretch marked noisy in ``lead`` (name or index)."""
    header = wfdb.rdheader(str(folder / name))
    k = int(lead) if str(lead).isdigit() else header.sig_name.index(lead)
    ann = wfdb.rdann(str(folder / name), "atr")
    marks = [(s / header.fs, st) for s, sym, st in zip(ann.sample, ann.symbol, ann.subtype) if sym == "~"]
    noisy = np.zeros(len(beat_seconds), bool)
    for (start, subtype), (end, _) in zip(marks, marks[1:] + [(np.inf, 0)]):
        if subtype == -1 or subtype & (0x11 << k):
            noisy[(beat_seconds >= start) & (beat_seconds < end)] = True
    return noisy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--cv", type=Path, default=Path("runs/cv-hybrid"), help="a CV run of the default recipe")
    args = ap.parse_args()
    cfg = load_config("hybrid")
    sources = resolve_sources(args.data, cfg)
    proba, y, record, _, _ = load(args.cv)
    patients = cv_pool(args.data, cfg, sources)
    noisy = np.zeros(len(y), bool)
    for patient in patients:
        folder, name, data = locate(args.data, patient, cfg.data, sources)
        beats = read_beats(folder, name, data)
        m = record == patient
        if len(beats.y) != m.sum():
            raise SystemExit(f"{args.cv}: its beats of {patient} are not the default's ({m.sum()} against {len(beats.y)})")
        noisy[m] = noisy_beats(folder, name, data.lead, beats.sample / data.fs)
    pred = proba.argmax(1)
    false = ((pred == 1) & (y != 1)) | ((pred == 2) & (y != 2))
    db = np.array([database_of(r) for r in record])
    for d in dict.fromkeys(db):
        n = db == d
        m = n & noisy
        print(f"{d}: {100 * m.sum() / n.sum():.1f} % of the beats in stretches marked noisy in the scored lead; "
              f"false S/V calls there {false[m].sum()} of {false[n].sum()} ({100 * false[m].mean():.1f} % of those "
              f"beats, {100 * false[n & ~noisy].mean():.1f} % elsewhere); S beats there {(y[m] == 1).sum()} of "
              f"{(y[n] == 1).sum()}, V beats {(y[m] == 2).sum()} of {(y[n] == 2).sum()}")


if __name__ == "__main__":
    main()
