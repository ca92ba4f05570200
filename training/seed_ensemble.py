"""What a seed ensemble would buy, from cross-validation runs already made: the out-of-fold
probabilities (``oof.npz``) of several CV seeds of one recipe, combined per beat, scored per database
like ``edgeecg cv`` scores one run (macro-F1, S and V Se / +P, false S/V calls per hour per record).
The members' log-probabilities are averaged (``--combine logit``, the default): the class with the
largest mean logit, which a device can decide in integers from each member's int8 outputs;
``--combine proba`` averages the probabilities instead.

The runs must hold out the same patients per fold (``StratifiedGroupKFold`` gives every seed the same
folds here; checked from ``cv.json``), so an averaged probability comes from models none of which saw the
beat's patient: the out-of-fold figure of an ensemble whose members each trained on about 80 % of the
pool. Members are taken in a ring (seeds 0+1, 1+2, ..., 4+0 for pairs), so every seed counts equally.

    python training/seed_ensemble.py runs/base10-seed0 runs/cv-hybrid-seed1 ... --members 2   (seconds)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgeecg.cv import database_figures


def load(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float], list]:
    """(probabilities, labels, patients, hours per patient, each fold's held-out patients) of one CV run."""
    oof = np.load(run / "oof.npz")
    cv = json.loads((run / "cv.json").read_text())
    hours = {rec: row["hours"] for db in cv["false_alarms"].values() for rec, row in db["per_record"].items()}
    folds = sorted(sorted(f["records"]) for f in cv["folds"])
    return oof["proba"], oof["y"], oof["record"], hours, folds


def figures(proba: np.ndarray, y: np.ndarray, record: np.ndarray, hours: dict) -> dict:
    """Per database: macro-F1, S and V Se / +P, and the median and 90th percentile of false S/V calls per hour."""
    reports, alarms = database_figures(y, proba.argmax(1), record, hours)
    out = {}
    for db, rep in reports.items():
        pc = rep["per_class"]
        out[db] = {"macro_f1": rep["macro_f1"], "S_se": pc["S"]["se"], "S_ppv": pc["S"]["ppv"],
                   "V_se": pc["V"]["se"], "V_ppv": pc["V"]["ppv"],
                   "false_median": alarms[db]["summary"]["median"], "false_p90": alarms[db]["summary"]["p90"]}
    return out


def mean_of(rows: list[dict]) -> dict:
    return {db: {k: float(np.mean([r[db][k] for r in rows])) for k in rows[0][db]} for db in rows[0]}


def macro_f1_of_databases(figs: dict) -> float:
    """The mean of the databases' macro-F1: the figure the recipe rules compare."""
    return float(np.mean([f["macro_f1"] for f in figs.values()]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="CV run folders of one recipe, one per seed")
    ap.add_argument("--members", type=int, default=2, help="models per ensemble (taken in a ring)")
    ap.add_argument("--combine", choices=("logit", "proba"), default="logit")
    args = ap.parse_args()
    n = len(args.runs)
    if not 1 <= args.members <= n:
        raise SystemExit(f"--members {args.members}: between 1 and the number of runs ({n})")
    loaded = [load(r) for r in args.runs]
    y, record, hours, folds = loaded[0][1], loaded[0][2], loaded[0][3], loaded[0][4]
    for run, (_, yy, rr, _, ff) in zip(args.runs, loaded):
        if not (np.array_equal(yy, y) and np.array_equal(rr, record)):
            raise SystemExit(f"{run}: its beats are not the first run's (another recipe or data)")
        if ff != folds:
            raise SystemExit(f"{run}: its folds are not the first run's, so a member may have seen a held-out patient")
    single = [figures(p, y, record, hours) for p, *_ in loaded]
    rings = [[(i + k) % n for k in range(args.members)] for i in range(n)]
    scores = [np.log(np.clip(p, 1e-12, 1.0)) if args.combine == "logit" else p for p, *_ in loaded]
    ensembles = [figures(np.mean([scores[j] for j in ring], axis=0), y, record, hours) for ring in rings]
    for label, rows in (("single models", single), (f"{args.members}-model ensembles", ensembles)):
        m = mean_of(rows)
        print(f"{label} (mean of {len(rows)}): mean macro-F1 of the databases {macro_f1_of_databases(m):.2f}")
        for db, f in m.items():
            print(f"  {db:6s} macro-F1 {f['macro_f1']:5.2f}  S {f['S_se']:5.1f} / {f['S_ppv']:5.1f}  "
                  f"V {f['V_se']:5.1f} / {f['V_ppv']:5.1f}  false/h {f['false_median']:5.1f} / {f['false_p90']:5.0f}")


if __name__ == "__main__":
    main()
