"""Where a recipe's out-of-fold errors are: per database, how many beats a CV seed calls S or V wrongly
(N -> S, N -> V, S -> V, V -> S) and the records that make most of each kind; then how often the S
beats are called V by the interval that follows them (the window reaches 0.44 s past the R peak, so in
a tachycardia the next QRS falls inside it). Question 45 of training/README.md.

    python training/error_kinds.py --runs runs/cv-hybrid runs/cv-hybrid-seed1 runs/cv-hybrid-seed2 \\
        runs/cv-hybrid-seed3 runs/cv-hybrid-seed4           (10 s once the pool's beats are cached)

The runs are scored as their recipe ships them (its ``logit_offsets`` are already in ``oof.npz``);
``--s-offset X`` scores them with S's offset X instead.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from matched_false_alarms import shipped_offsets

from edgeecg.config import CLASSES, load_config
from edgeecg.cv import cv_pool, pool_label
from edgeecg.data import database_of, load_pool

KINDS = (("N", "S"), ("N", "V"), ("S", "V"), ("V", "S"))
NEXT_INTERVAL_BINS = ((0.0, 0.36), (0.36, 0.44), (0.44, 0.6), (0.6, np.inf))   # seconds


def calls(run: Path, s_offset: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CV run's out-of-fold classes, labels and records: as its recipe ships them (``s_offset`` None),
    or with S's logit offset ``s_offset`` in place of the recipe's."""
    oof = np.load(run / "oof.npz")
    logp = np.log(np.clip(oof["proba"].astype(np.float64), 1e-12, 1.0))
    if s_offset is not None:
        logp[:, CLASSES.index("S")] += s_offset - shipped_offsets(run)[CLASSES.index("S")]
    return logp.argmax(1), oof["y"], oof["record"]


def next_interval(data: Path, recipe: str, y: np.ndarray, record: np.ndarray) -> np.ndarray:
    """Seconds from each beat of the pool to the next one of the same record (NaN for a record's last):
    the pool's beats loaded with ``rr_features = ["pre_rr"]``, in the out-of-fold arrays' order."""
    cfg = load_config(recipe)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, rr_features=("pre_rr",)))
    beats = load_pool(data, cfg, cv_pool(data, cfg))
    if not (np.array_equal(beats.y, y) and np.array_equal(beats.record, record)):
        raise SystemExit(f"{recipe}: the pool's beats are not in the out-of-fold order of the runs")
    following = np.append(beats.rr[1:, 0], np.nan)
    following[np.append(beats.record[1:] != beats.record[:-1], True)] = np.nan
    return following


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="CV runs of one recipe (oof.npz)")
    ap.add_argument("--s-offset", type=float, help="S's logit offset in place of the recipe's (default: as shipped)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--config", default="hybrid", help="the runs' recipe (for the pool's beats)")
    ap.add_argument("--top", type=int, default=4, help="records listed per kind")
    args = ap.parse_args()

    runs = [calls(r, args.s_offset) for r in args.runs]
    _, y, record = runs[0]
    if any(not np.array_equal(r[2], record) for r in runs):
        raise SystemExit("the runs do not hold the same beats")
    db = np.array([pool_label(database_of(str(r))) for r in record])
    n = len(runs)
    where = "as their recipe ships them" if args.s_offset is None else f"at S offset {args.s_offset:+g}"
    print(f"beats a seed, mean of {n} CV seeds, {where}")
    for true, called in KINDS:
        t, c = CLASSES.index(true), CLASSES.index(called)
        wrong = sum((y == t) & (p == c) for p, _, _ in runs) / n
        parts = [f"{name} {wrong[db == name].sum():,.0f}" for name in dict.fromkeys(db)]
        per_record = {r: wrong[record == r].sum() for r in np.unique(record)}
        top = sorted(per_record.items(), key=lambda kv: -kv[1])[:args.top]
        print(f"{true} -> {called}: " + ", ".join(parts) + " | most: " + ", ".join(f"{r} {v:.0f}" for r, v in top))

    following = next_interval(args.data, args.config, y, record)
    s, v = CLASSES.index("S"), CLASSES.index("V")
    print("S beats called V by the interval after them (seconds):")
    for name in dict.fromkeys(db):
        for lo, hi in NEXT_INTERVAL_BINS:
            m = (db == name) & (y == s) & (following >= lo) & (following < hi)
            if m.sum():
                share = np.mean([(p[m] == v).mean() for p, _, _ in runs])
                print(f"  {name} {lo:.2f}-{hi:.2f} s: {m.sum():,d} S beats, called V {100 * share:.1f} %")


if __name__ == "__main__":
    main()
