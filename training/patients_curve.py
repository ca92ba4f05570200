"""How S and V on unseen SVDB patients grow with the SVDB patients in training (question 21).

Scores the same SVDB patients (the records of ``--half``'s CV runs) three ways, float, each figure the
mean over five seeds: the DS1-only recipe's models scored on SVDB as an unseen database (``seeds.json``'s
``external`` block, per record), the half-SVDB recipe's CV runs out of fold (about 21 SVDB patients in
each fold's training), and the default's CV runs out of fold (about 41). S and V Se over the records'
pooled beats, +P from the seeds' mean counts, and the median over the records of each record's false
S/V calls an hour (mean over the seeds).

    python training/patients_curve.py --ds1 runs/seeds-ds1/seeds.json --half runs/half-seed0 ... \\
        --full runs/cv-hybrid runs/cv-hybrid-seed1 ...                               (seconds)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgeecg.data.sources import database_of, record_of
from edgeecg.processing.aami import CLASSES as AAMI
from seed_ensemble import load       # beside this script: the same reading of a CV run

CLASSES = {c: AAMI.index(c) for c in ("S", "V")}


def cv_counts(runs: list[Path], records: list[str]) -> dict[str, dict]:
    """Per record (``svdb/NNN``) and class: the seeds' mean support, true calls and calls, and hours."""
    out = {r: {c: np.zeros(3) for c in CLASSES} for r in records}
    hours = {}
    for run in runs:
        proba, y, record, h, _ = load(run)
        pred = proba.argmax(1)
        for r in records:
            m = record == r
            hours[r] = h[r]
            for c, k in CLASSES.items():
                out[r][c] += [((y == k) & m).sum(), ((y == k) & (pred == k) & m).sum(), ((pred == k) & m).sum()]
    return {r: {c: v / len(runs) for c, v in row.items()} | {"hours": hours[r]} for r, row in out.items()}


def external_counts(seeds_json: Path, records: list[str], hours: dict[str, float]) -> dict[str, dict]:
    """The same from a ``seeds.json``'s ``external`` block (float, per record, mean over its seeds)."""
    per_record = json.loads(seeds_json.read_text())["external"]["per_record"]["float"]
    out = {}
    for r in records:
        row = per_record[record_of(r)]
        out[r] = {c: np.array([row[c]["support"], row[c]["support"] * (row[c]["se_mean"] or 0.0) / 100,
                               row[c]["predicted_mean"]]) for c in CLASSES} | {"hours": hours[r]}
    return out


def summary(counts: dict[str, dict]) -> str:
    cells = []
    for c in CLASSES:
        support, true, called = sum(row[c] for row in counts.values())
        cells.append(f"{c} Se {100 * true / support:5.1f} +P {100 * true / called:5.1f}")
    false = [sum(row[c][2] - row[c][1] for c in CLASSES) / row["hours"] for row in counts.values()]
    return "  ".join(cells) + f"  false/h median {np.median(false):5.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ds1", type=Path, required=True, help="the DS1-only recipe's seeds.json (make seeds-ds1)")
    ap.add_argument("--half", type=Path, nargs="+", required=True, help="CV runs of hybrid_svdb_half.toml")
    ap.add_argument("--full", type=Path, nargs="+", required=True, help="CV runs of the default recipe")
    args = ap.parse_args()
    records = sorted(r for r in dict.fromkeys(load(args.half[0])[2]) if database_of(r) == "svdb")
    half, full = cv_counts(args.half, records), cv_counts(args.full, records)
    ds1 = external_counts(args.ds1, records, {r: row["hours"] for r, row in half.items()})
    print(f"the {len(records)} SVDB patients of {args.half[0].name}, float, mean of each row's seeds:")
    for label, counts in (("DS1 only (0 SVDB patients)", ds1), (f"half SVDB (~21), {len(args.half)} CV seeds", half),
                          (f"all SVDB (~41), {len(args.full)} CV seeds", full)):
        print(f"  {label:34s} {summary(counts)}")


if __name__ == "__main__":
    main()
