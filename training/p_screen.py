"""Screen P-wave features for N versus S without training a network: does the stretch of the beat
window before the QRS (where the P wave is), measured against the patient's own template, add
anything to the RR features the factorized head decides N against S on? The same patient-grouped
5-fold gradient-boosted trees as ``rr_screen.py``, on the N and S beats of DS1 and the shared SVDB
records as the default recipe's front end makes them (its cached beat windows, its RR features).

    python training/p_screen.py --data ../shared/data/mitdb        (about 5 min on 2 cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rr_screen import patient_folds, screen

from edgeecg.config import load_config
from edgeecg.cv import cv_pool, pool_label
from edgeecg.data import database_of, load_pool, record_hours
from edgeecg.processing.beats import p_wave_features, p_wave_measures

BASE = ["pre_reg", "prev_reg", "irr"]
SETS = {"base": BASE, "+p_diff": BASE + ["p_diff"], "+p_diff_rel": BASE + ["p_diff_rel"],
        "+p_corr": BASE + ["p_corr"], "+p_corr_rel": BASE + ["p_corr_rel"],
        "+p_rel both": BASE + ["p_diff_rel", "p_corr_rel"],
        "+p all": BASE + ["p_diff", "p_diff_rel", "p_corr", "p_corr_rel", "p_qrs"]}


def p_features(x: np.ndarray, cfg) -> dict[str, np.ndarray]:
    """One patient's beats in time order, ``x`` (n, 2, window) = beat, beat - template: the recipe
    features (``p_diff_rel``, ``p_corr_rel``, as the front end computes them) and, for comparison, the
    same measures not relative to the patient's history and the P stretch's difference over the QRS's."""
    beat, diff = x[:, 0], x[:, 1]
    qrs = slice(cfg.data.before - int(round(0.06 * cfg.data.fs)), cfg.data.before + int(round(0.06 * cfg.data.fs)))
    p_diff, p_corr = p_wave_measures(beat, diff, cfg.data)
    return {**p_wave_features(beat, diff, cfg.data), "p_diff": p_diff, "p_corr": p_corr,
            "p_qrs": p_diff / np.maximum(np.abs(diff[:, qrs]).mean(axis=1), 1e-3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--sets", default="", help="comma-separated feature sets to screen (default: all of SETS)")
    args = ap.parse_args()
    cfg = load_config("hybrid")
    pool = cv_pool(args.data, cfg)
    beats = load_pool(args.data, cfg, pool)
    cols: dict[str, list] = {}
    for patient in pool:                         # beats are stored per patient, in time order
        m = beats.record == patient
        feats = {"pre_reg": beats.rr[m, 0], "prev_reg": beats.rr[m, 1], "irr": beats.rr[m, 2],
                 **p_features(beats.x[m], cfg)}
        for k, v in feats.items():
            cols.setdefault(k, []).append(v)
    x = {k: np.concatenate(v) for k, v in cols.items()}
    sv = beats.y <= 1                            # N and S beats only
    ys, gs = beats.y[sv], beats.record[sv]
    dbs = np.array([pool_label(database_of(p)) for p in gs])
    hours = record_hours(args.data, pool, cfg)
    folds = patient_folds(ys, gs)
    for label, names in ({k: SETS[k] for k in args.sets.split(",")} if args.sets else SETS).items():
        xs = np.stack([x[c][sv] for c in names], axis=1)
        print(f"{label:12s} " + screen(xs, ys, gs, dbs, folds, hours), flush=True)


if __name__ == "__main__":
    main()
