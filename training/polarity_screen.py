"""Which patients' leads show their usual QRS inverted, and what the default's out-of-fold V decisions
did on them (question 34 of training/README.md).

Per record of the pool (DS1 and the shared SVDB records, the default recipe's cached beats): the share of
beats whose polarity by the patient's template (``edgeecg.processing.beats.template_polarity``, as
``[data] polarity = "template"`` reads it) is negative, and how often it changes from beat to beat. With
``--cv``, per group of records (mostly negative, mostly upright) and database, the V beats found and the
normal and S beats called V, summed over the CV runs' ``oof.npz`` and divided by their number.

``--against``: another recipe's CV runs (question 34's, ``runs/polarity-seed*``); per record, the normal beats
called V and the V beats found by each (mean over the runs), the records that changed most first.

    python training/polarity_screen.py --cv runs/cv-hybrid runs/cv-hybrid-seed1 runs/cv-hybrid-seed2 \
        runs/cv-hybrid-seed3 runs/cv-hybrid-seed4 --against runs/polarity-seed0 runs/polarity-seed1 \
        runs/polarity-seed2 runs/polarity-seed3 runs/polarity-seed4                (about 1 min)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgeecg.config import load_config
from edgeecg.cv import cv_pool, pool_label
from edgeecg.data import database_of, load_pool
from edgeecg.processing.beats import template_polarity


def predictions(runs: list[Path]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per record, its out-of-fold labels and predicted classes in each of ``runs`` (their ``oof.npz``)."""
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for run in runs:
        oof = np.load(run / "oof.npz")
        pred = oof["proba"].argmax(axis=1)
        for record in np.unique(oof["record"]):
            m = oof["record"] == record
            out.setdefault(str(record), []).append((oof["y"][m], pred[m]))
    return out


def mean_counts(runs_of_record: list[tuple[np.ndarray, np.ndarray]], count) -> np.ndarray:
    """``count(y, pred)`` (an array of counts) of one record, averaged over the runs."""
    return np.mean([count(y, p) for y, p in runs_of_record], axis=0)


def v_counts(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """V beats, V beats found, normal beats called V, S beats called V."""
    return np.array([(y == 2).sum(), ((y == 2) & (p == 2)).sum(), ((y == 0) & (p == 2)).sum(),
                     ((y == 1) & (p == 2)).sum()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--cv", type=Path, nargs="*", default=[], help="CV runs of the default (folders with oof.npz)")
    ap.add_argument("--against", type=Path, nargs="*", default=[], help="another recipe's CV runs, compared per record")
    args = ap.parse_args()
    cfg = load_config("hybrid")
    beats = load_pool(args.data, cfg, cv_pool(args.data, cfg))
    negative: dict[str, float] = {}
    changes: dict[str, int] = {}
    signs: dict[str, np.ndarray] = {}
    for record in dict.fromkeys(beats.record):
        m = beats.record == record
        sign = signs[record] = template_polarity(beats.x[m, 0], beats.x[m, 1], cfg.data)
        negative[record], changes[record] = float((sign < 0).mean()), int((np.diff(sign) != 0).sum())
        if negative[record] > 0.1 or changes[record] > 20:
            print(f"{record:10s} negative {100 * negative[record]:5.1f} % of {m.sum():5d} beats, "
                  f"{changes[record]} changes")
    print(f"the sign changes from one beat to the next {sum(changes.values())} times in {len(beats)} beats")
    for db in dict.fromkeys(pool_label(database_of(r)) for r in negative):
        records = [r for r in negative if pool_label(database_of(r)) == db]
        print(f"{db}: {sum(negative[r] > 0.5 for r in records)} of {len(records)} records mostly negative")
    if not args.cv:
        return
    preds = predictions(args.cv)
    totals: dict[tuple[str, bool], np.ndarray] = {}
    for record, runs_of_record in preds.items():
        key = (pool_label(database_of(record)), negative.get(record, 0.0) > 0.5)
        totals[key] = totals.get(key, 0) + np.append(mean_counts(runs_of_record, v_counts), 1)   # 1: a record
    for (db, neg), (v, found, n_as_v, s_as_v, n_records) in sorted(totals.items()):
        print(f"{db} {'mostly negative' if neg else 'upright'}: {n_records:.0f} records, V found "
              f"{found:.0f} of {v:.0f} ({100 * found / max(v, 1):.1f} %), normal beats called V "
              f"{n_as_v:.0f}, S beats called V {s_as_v:.0f}")
    for record, runs_of_record in preds.items():      # records partly inverted: are their false V calls there?
        sign = signs.get(record)
        if 0.1 < negative.get(record, 0.0) < 0.5 and all(len(y) == len(sign) for y, _ in runs_of_record):
            neg, total = mean_counts(runs_of_record, lambda y, p: np.array(
                [((y == 0) & (p == 2) & (sign < 0)).sum(), ((y == 0) & (p == 2)).sum()]))
            print(f"{record}: {neg:.0f} of its {total:.0f} normal beats called V are among its negative-sign beats")
    if not args.against:
        return
    base = {r: mean_counts(runs, v_counts) for r, runs in preds.items()}
    other = {r: mean_counts(runs, v_counts) for r, runs in predictions(args.against).items()}
    print("record     negative  normal beats called V  V beats found   (--cv → --against)")
    for record in sorted(base, key=lambda r: -abs(other[r][2] - base[r][2]))[:10]:
        print(f"{record:10s} {100 * negative[record]:6.1f} %  {base[record][2]:6.0f} → {other[record][2]:6.0f}   "
              f"{base[record][1]:6.0f} → {other[record][1]:6.0f}")
    for db in dict.fromkeys(pool_label(database_of(r)) for r in base):
        records = [r for r in base if pool_label(database_of(r)) == db]
        b, o = sum(base[r] for r in records), sum(other[r] for r in records)
        print(f"{db}: normal beats called V {b[2]:.0f} → {o[2]:.0f}, V beats found {b[1]:.0f} → {o[1]:.0f}")


if __name__ == "__main__":
    main()
