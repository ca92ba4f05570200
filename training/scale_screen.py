"""How large each beat is against the patient's usual beat, per database and class, and for the
default's out-of-fold decisions: what the per-beat z-score hides from the network (question 35).

The size is the standard deviation of a beat's window over the running mean of those of the patient's
earlier regular beats: the beat channel's spread under ``[data] scale = "patient"``
(``edgeecg.processing.beats.patient_scale``), read from the pool's beats under that recipe.

    python training/scale_screen.py --data ../shared/data/mitdb --cv runs/cv-hybrid     (10 s with the beat cache)
    python training/scale_screen.py --cv runs/scale-seed0 runs/scale-seed1 --record svdb/862   (one patient's beats)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeecg.config import load_config
from edgeecg.cv import cv_pool
from edgeecg.data.cache import load_pool
from edgeecg.data.sources import database_of
from edgeecg.processing.aami import CLASSES
from seed_ensemble import load                  # beside this script: the same reading of a CV run

KINDS = {"N called N": (0, 0), "N called S": (0, 1), "N called V": (0, 2), "S called S": (1, 1),
         "S called V": (1, 2), "V called V": (2, 2), "V called S": (2, 1), "V called N": (2, 0)}


def line(label: str, size: np.ndarray) -> str:
    q10, q50, q90 = np.percentile(size, [10, 50, 90])
    return (f"  {label:11s} {len(size):7d} beats: size median {q50:.2f} (10th-90th percentile {q10:.2f}-{q90:.2f}), "
            f"over 1.5 times the usual {100 * (size > 1.5).mean():.0f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--cv", type=Path, nargs="*", default=[], help="CV runs of the default (folders with oof.npz)")
    ap.add_argument("--record", help="one patient's beats only (svdb/862), instead of each database's")
    args = ap.parse_args()
    cfg = load_config(Path(__file__).parent / "hybrid_svdb_scale.toml")
    patients = cv_pool(args.data, cfg)
    beats = load_pool(args.data, cfg, patients)
    size = beats.x[:, 0].std(axis=1)
    db = beats.record if args.record else np.array([database_of(r) for r in beats.record])
    decisions = {}                                  # each CV run's out-of-fold classes, if its beats are the pool's
    for run in args.cv:
        proba, y, record, _, _ = load(run)
        if np.array_equal(record, beats.record) and np.array_equal(y, beats.y):
            decisions[run.name] = proba.argmax(1)
        else:
            print(f"{run}: its beats are not the pool's (another recipe or data); skipped")
    for d in [args.record] if args.record else dict.fromkeys(db):
        print(f"{d}, by reference class:")
        for c, name in enumerate(CLASSES[:3]):
            print(line(name, size[(db == d) & (beats.y == c)]))
        for name, pred in decisions.items():
            print(f"{d}, by {name}'s out-of-fold decision:")
            for label, (t, p) in KINDS.items():
                m = (db == d) & (beats.y == t) & (pred == p)
                if m.any():
                    print(line(label, size[m]))


if __name__ == "__main__":
    main()
