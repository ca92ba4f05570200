"""Question 42's rule: is a candidate recipe a better detector than the default at a matched rate of
false alarms? From CV runs already made (``oof.npz``, several seeds of each recipe, float out of fold).

The default's curve is its S Se against its median false S/V calls per hour per record (each the mean
over its seeds) at the S logit offsets of ``operating_points.py`` and at the one its recipe ships, its
other classes' offsets as shipped; the candidate is scored at one S offset (``--s-offset``, what its
``[model.params] logit_offsets`` would ship), the others as the default's. Per database the default's
S Se at the candidate's false-call rate is read off its curve by linear interpolation. Conditions 2, 4
and 5 compare with the default as shipped (today's: S -0.25). The five conditions of question 42
(training/README.md) are printed with their figures, each PASS or FAIL.

Offsets are measured from each run's bare model: a recipe that ships ``logit_offsets`` (today's default,
S -0.25) has them taken off its out-of-fold log-probabilities first, so none is applied twice.

    python training/matched_false_alarms.py --default runs/regular-seed{5..9} --candidate runs/run-seed{5..9} --s-offset -0.25
    python training/matched_false_alarms.py --default runs/run-seed{5..9} --default-recipe hybrid ...   (question 44)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from edgeecg.config import load_config
from operating_points import S_OFFSETS
from seed_ensemble import figures, load, macro_f1_of_databases, mean_of


def recipe_offsets(params: dict | None) -> np.ndarray:
    """A recipe's ``[model.params] logit_offsets`` (zeros if none)."""
    return np.asarray((params or {}).get("logit_offsets") or [0.0] * 5, dtype=np.float64)


def shipped_offsets(run: Path) -> np.ndarray:
    """The ``logit_offsets`` the run's recipe added to its out-of-fold probabilities (zeros if none)."""
    return recipe_offsets(json.loads((run / "cv.json").read_text())["config"]["model"].get("params"))


def bare_runs(runs: list[Path]) -> list[tuple]:
    """Each run's out-of-fold log-probabilities without its recipe's offsets, with its labels, patients
    and hours, read once; every run must hold the first run's beats."""
    loaded = []
    for run in runs:
        proba, y, record, hours, _ = load(run)
        if loaded and not (np.array_equal(y, loaded[0][1]) and np.array_equal(record, loaded[0][2])):
            raise SystemExit(f"{run}: its beats are not the other runs' (another pool or data)")
        loaded.append((np.log(np.clip(proba, 1e-12, 1.0)) - shipped_offsets(run), y, record, hours))
    return loaded


def scored(loaded: list[tuple], s_offset: float, offsets: np.ndarray) -> dict:
    """Per database, the mean over the runs of their figures with the bare model's log-probabilities
    moved by ``offsets``, S's replaced by ``s_offset``."""
    shift = np.array(offsets, dtype=np.float64)
    shift[1] = s_offset
    return mean_of([figures(logp + shift, y, record, hours) for logp, y, record, hours in loaded])


def se_at(curve: list[tuple[float, float]], false_rate: float) -> float:
    """S Se on a curve of (median false calls, S Se) points at ``false_rate``, linearly interpolated
    (clamped to the curve's ends)."""
    f, se = np.array(sorted(curve)).T
    return float(np.interp(false_rate, f, se))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default", nargs="+", type=Path, required=True, help="the default's CV runs, one per seed")
    ap.add_argument("--candidate", nargs="+", type=Path, required=True, help="the candidate's CV runs, one per seed")
    ap.add_argument("--s-offset", type=float, default=-0.25, help="the candidate's S logit offset")
    ap.add_argument("--default-recipe", help="the default's recipe, whose logit_offsets it ships (default: the "
                    "ones its runs' recipe names), for runs trained from the same network's recipe without them")
    args = ap.parse_args()
    loaded = bare_runs(args.default + args.candidate)
    default, candidate = loaded[:len(args.default)], loaded[len(args.default):]
    if args.default_recipe:
        shipped = recipe_offsets(load_config(args.default_recipe).model.params)
    else:
        kinds = {tuple(shipped_offsets(run)) for run in args.default}
        if len(kinds) != 1:
            raise SystemExit(f"the default's runs ship different logit_offsets: {sorted(kinds)}")
        shipped = np.array(kinds.pop())
    curve = {s: scored(default, s, shipped) for s in sorted({*S_OFFSETS, shipped[1]})}
    base, cand = curve[shipped[1]], scored(candidate, args.s_offset, shipped)
    print(f"the default as shipped: logit_offsets {shipped.tolist()}; its curve moves S's alone")
    checks = []
    for db in sorted(base):
        points = [(c[db]["false_median"], c[db]["S_se"]) for c in curve.values()]
        at = se_at(points, cand[db]["false_median"])
        print(f"{db}: default S Se / median false calls {base[db]['S_se']:.1f} / {base[db]['false_median']:.1f}; "
              f"candidate {cand[db]['S_se']:.1f} / {cand[db]['false_median']:.1f}; "
              f"the default's curve at the candidate's false calls {at:.1f}")
        if db not in ("svdb", "mitdb"):
            continue
        if db == "svdb":
            checks.append((f"1. {db} S Se >= curve + 3 pp", cand[db]["S_se"] - at, cand[db]["S_se"] - at >= 3.0))
        else:
            checks.append((f"3. {db} S Se >= curve - 1 pp", cand[db]["S_se"] - at, cand[db]["S_se"] - at >= -1.0))
        checks.append((f"2. {db} median false calls not above the default's",
                       cand[db]["false_median"] - base[db]["false_median"],
                       cand[db]["false_median"] <= base[db]["false_median"]))
        for k in ("V_se", "V_ppv"):
            checks.append((f"4. {db} {k} >= default - 2 pp", cand[db][k] - base[db][k], cand[db][k] - base[db][k] >= -2.0))
    dm = macro_f1_of_databases(cand) - macro_f1_of_databases(base)
    checks.append(("5. mean macro-F1 >= default - 0.5 pp", dm, dm >= -0.5))
    print(f"mean of the two macro-F1: default {macro_f1_of_databases(base):.2f}, candidate {macro_f1_of_databases(cand):.2f}")
    for name, delta, ok in sorted(checks):
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {delta:+.2f}")
    print("ADOPT" if all(ok for *_, ok in checks) else "NOT ADOPTED")


if __name__ == "__main__":
    main()
