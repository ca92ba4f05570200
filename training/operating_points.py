"""How far decision thresholds alone move the false alarms, from cross-validation runs already made: the
out-of-fold log-probabilities (``oof.npz``) of one recipe's CV seeds with offsets added to S's and V's
(the same change as ``[model.params] logit_offsets``, which export folds into the last bias), scored per
database like ``edgeecg cv`` (mean over the runs), and the best S Se that stays within the issue's
false-alarm bar on SVDB (median false S/V calls per hour of recording per record <= 10, 90th
percentile <= 60; each the mean over the runs), if any offset does.

The offsets are not fitted: the grid is coarse and the same for every run, so the figures are the
trade-off's shape on patients none of the models saw, not a tuned operating point.

    python training/operating_points.py runs/cv-hybrid runs/cv-hybrid-seed1 ... runs/cv-hybrid-seed4   (a minute)
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from seed_ensemble import figures, load, macro_f1_of_databases, mean_of

S_OFFSETS = (0.5, 0.25, 0.0, -0.25, -0.5, -1.0, -2.0, -3.0)
V_OFFSETS = (0.0, -0.5, -1.0, -2.0, -3.0)
BAR = {"false_median": 10.0, "false_p90": 60.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="CV run folders of one recipe, one per seed")
    ap.add_argument("--database", default="svdb", help="the database the false-alarm bar is read on")
    args = ap.parse_args()
    loaded = [load(r) for r in args.runs]
    logs = [np.log(np.clip(p, 1e-12, 1.0)) for p, *_ in loaded]
    rows = []
    for ds, dv in itertools.product(S_OFFSETS, V_OFFSETS):
        shift = np.zeros(logs[0].shape[1])
        shift[1], shift[2] = ds, dv
        rows.append((ds, dv, mean_of([figures(lg + shift, y, rec, hours)
                                      for lg, (_, y, rec, hours, _) in zip(logs, loaded)])))
    print(f"mean of {len(loaded)} runs; S and V offsets added to the log-probabilities")
    for ds, dv, m in rows:
        cells = f"macro-F1 of the databases {macro_f1_of_databases(m):5.2f}  " + "  ".join(f"{db} S {f['S_se']:5.1f}/{f['S_ppv']:5.1f} V {f['V_se']:5.1f}/{f['V_ppv']:5.1f} "
                          f"false/h {f['false_median']:5.1f}/{f['false_p90']:4.0f}" for db, f in m.items())
        print(f"S {ds:+5.2f} V {dv:+5.2f}  {cells}")
    ds, dv, m = max(rows, key=lambda r: macro_f1_of_databases(r[2]))
    print(f"the highest mean macro-F1 of the databases: S {ds:+.2f} V {dv:+.2f}, {macro_f1_of_databases(m):.2f}")
    within = [(ds, dv, m) for ds, dv, m in rows if all(m[args.database][k] <= v for k, v in BAR.items())]
    if not within:
        best = min(rows, key=lambda r: r[2][args.database]["false_p90"])
        f = best[2][args.database]
        print(f"no offset meets the {args.database} false-alarm bar (median <= {BAR['false_median']:g}, "
              f"90th percentile <= {BAR['false_p90']:g} an hour); "
              f"the fewest at the 90th percentile: S {best[0]:+.2f} V {best[1]:+.2f}, false/h {f['false_median']:.1f} / "
              f"{f['false_p90']:.0f}, S Se {f['S_se']:.1f}, V Se {f['V_se']:.1f}")
    else:
        ds, dv, m = max(within, key=lambda r: r[2][args.database]["S_se"])
        f = m[args.database]
        print(f"within the bar, the most S found: S {ds:+.2f} V {dv:+.2f}, S Se {f['S_se']:.1f}, V Se {f['V_se']:.1f}")


if __name__ == "__main__":
    main()
