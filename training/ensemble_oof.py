"""Out-of-fold figures of a seed ensemble: the mean of several CV runs' out-of-fold probabilities
(runs of one recipe, same folds), per database, with false S/V calls per hour.

    python training/ensemble_oof.py --data ../shared/data/mitdb runs/cv-hybrid runs/cv-hybrid-seed1 ...

Each run alone, then the ensembles of its first 2, 3, ... runs. A lever of training/README.md
(averaging several models' outputs on the device); not a command of the package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgeecg.config import config_from_dict
from edgeecg.cv import database_figures
from edgeecg.data.sources import record_hours


def figures(y, proba, record, hours) -> dict:
    reports, alarms = database_figures(y, proba.argmax(1), record, hours)
    out = {}
    for db, rep in reports.items():
        fa, pc = alarms[db]["summary"], rep["per_class"]
        out[db] = (f"macro-F1 {rep['macro_f1']:.1f}  S {pc['S']['se']:.1f} / {pc['S']['ppv']:.1f}  "
                   f"V {pc['V']['se']:.1f} / {pc['V']['ppv']:.1f}  false/h {fa['median']:.1f} / {fa['p90']:.0f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    oof = [np.load(r / "oof.npz") for r in args.runs]
    y, record = oof[0]["y"], oof[0]["record"]
    if any(len(z["record"]) != len(record) or (z["record"] != record).any() for z in oof):
        raise SystemExit("the runs do not hold the same out-of-fold beats (another recipe or folds)")
    cfg = config_from_dict(json.loads((args.runs[0] / "cv.json").read_text())["config"])
    hours = record_hours(args.data, list(dict.fromkeys(record)), cfg)
    for run, z in zip(args.runs, oof):
        for db, line in figures(y, z["proba"], record, hours).items():
            print(f"{run.name:24s} {db:6s} {line}")
    for k in range(2, len(oof) + 1):
        mean = np.mean([z["proba"] for z in oof[:k]], axis=0)
        for db, line in figures(y, mean, record, hours).items():
            print(f"{'ensemble of ' + str(k):24s} {db:6s} {line}")


if __name__ == "__main__":
    main()
