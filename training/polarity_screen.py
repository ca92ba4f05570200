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


def v_calls(runs: list[Path]) -> dict[str, np.ndarray]:
    """Per record: normal beats called V, V beats found (means over ``runs``' ``oof.npz``)."""
    out: dict[str, np.ndarray] = {}
    for run in runs:
        oof = np.load(run / "oof.npz")
        pred = oof["proba"].argmax(axis=1)
        for record in np.unique(oof["record"]):
            m = oof["record"] == record
            y, p = oof["y"][m], pred[m]
            out[str(record)] = out.get(str(record), 0) + np.array([((y == 0) & (p == 2)).sum(),
                                                                  ((y == 2) & (p == 2)).sum()]) / len(runs)
    return out


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
    totals: dict[tuple[str, bool], np.ndarray] = {}
    in_negative: dict[str, np.ndarray] = {}       # normal beats called V: in the record's negative-sign beats, all
    for run in args.cv:
        oof = np.load(run / "oof.npz")
        pred = oof["proba"].argmax(axis=1)
        for record in np.unique(oof["record"]):
            m = oof["record"] == record
            y, p = oof["y"][m], pred[m]
            if 0.1 < negative.get(str(record), 0.0) < 0.5 and len(y) == len(signs[str(record)]):
                n_as_v = (y == 0) & (p == 2)
                in_negative[str(record)] = in_negative.get(str(record), 0) + np.array(
                    [(n_as_v & (signs[str(record)] < 0)).sum(), n_as_v.sum()]) / len(args.cv)
            key = (pool_label(database_of(str(record))), negative.get(str(record), 0.0) > 0.5)
            counts = np.array([(y == 2).sum(), ((y == 2) & (p == 2)).sum(), ((y == 0) & (p == 2)).sum(),
                               ((y == 1) & (p == 2)).sum(), 1])
            totals[key] = totals.get(key, 0) + counts
    for (db, neg), (v, found, n_as_v, s_as_v, n_records) in sorted(totals.items()):
        k = len(args.cv)
        print(f"{db} {'mostly negative' if neg else 'upright'}: {n_records // k} records, V found "
              f"{found / k:.0f} of {v / k:.0f} ({100 * found / max(v, 1):.1f} %), normal beats called V "
              f"{n_as_v / k:.0f}, S beats called V {s_as_v / k:.0f}")
    for record, (neg, total) in in_negative.items():
        print(f"{record}: {neg:.0f} of its {total:.0f} normal beats called V are among its negative-sign beats")
    if not args.against:
        return
    base, other = v_calls(args.cv), v_calls(args.against)
    print("record     negative  normal beats called V  V beats found   (--cv → --against)")
    for record in sorted(base, key=lambda r: -abs(other[r][0] - base[r][0]))[:10]:
        print(f"{record:10s} {100 * negative[record]:6.1f} %  {base[record][0]:6.0f} → {other[record][0]:6.0f}   "
              f"{base[record][1]:6.0f} → {other[record][1]:6.0f}")
    for db in dict.fromkeys(pool_label(database_of(r)) for r in base):
        records = [r for r in base if pool_label(database_of(r)) == db]
        b, o = sum(base[r] for r in records), sum(other[r] for r in records)
        print(f"{db}: normal beats called V {b[0]:.0f} → {o[0]:.0f}, V beats found {b[1]:.0f} → {o[1]:.0f}")


if __name__ == "__main__":
    main()
