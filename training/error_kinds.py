"""Where a recipe's out-of-fold errors are: per database, how many beats a CV seed calls S or V wrongly
(N -> S, N -> V, S -> V, V -> S) and the records that make most of each kind; then how often the S
beats are called V by the interval that follows them (the window reaches 0.44 s past the R peak, so in
a tachycardia the next QRS falls inside it); with ``--usual``, what a record's normal beat looks like to the
network; with ``--template``, whether the beat's distance from the patient's template (the window's second
channel) tells the normal beats called V from the V beats called V. Questions 45, 46 and 49 of
training/README.md.

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

from matched_false_alarms import bare_runs, shipped_offsets

from edgeecg.config import CLASSES, load_config
from edgeecg.cv import cv_pool, pool_label
from edgeecg.data import database_of, load_pool

KINDS = (("N", "S"), ("N", "V"), ("S", "V"), ("V", "S"))
N, S, V = (CLASSES.index(c) for c in "NSV")
NEXT_INTERVAL_BINS = ((0.0, 0.36), (0.36, 0.44), (0.44, 0.6), (0.6, np.inf))   # seconds


def calls(runs: list[Path], s_offset: float | None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The runs' out-of-fold classes (as each recipe ships them, or with S's logit offset ``s_offset`` in
    place of the recipe's), and their common labels and records."""
    preds = []
    for run, (logp, y, record, _) in zip(runs, bare_runs(runs)):
        shift = shipped_offsets(run)
        if s_offset is not None:
            shift[S] = s_offset
        preds.append((logp + shift).argmax(1))
    return preds, y, record


def pool_beats(data: Path, recipe: str, y: np.ndarray, record: np.ndarray):
    """The pool's beats of ``recipe`` with ``rr_features = ["pre_rr"]`` (the same windows; the interval
    in seconds as their one RR feature), checked to be in the out-of-fold arrays' order."""
    cfg = load_config(recipe)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, rr_features=("pre_rr",)))
    beats = load_pool(data, cfg, cv_pool(data, cfg))
    if not (np.array_equal(beats.y, y) and np.array_equal(beats.record, record)):
        raise SystemExit(f"{recipe}: the pool's beats are not in the out-of-fold order of the runs")
    return beats, cfg


def next_interval(beats) -> np.ndarray:
    """Seconds from each beat to the next one of the same record (NaN for a record's last)."""
    following = np.append(beats.rr[1:, 0], np.nan)
    following[np.append(beats.record[1:] != beats.record[:-1], True)] = np.nan
    return following


def usual_beat_lines(beats, cfg, records: list[str]) -> list[str]:
    """For each record, its normal beats' mean window (the beat channel, as the network sees it): the
    largest and the smallest value and where they fall against the R peak (milliseconds)."""
    lines = []
    for rec in records:
        m = (beats.record == rec) & (beats.y == N)
        if not m.any():
            raise SystemExit(f"{rec}: no normal beats in the pool")
        usual = beats.x[m, 0].mean(axis=0)
        at = lambda i: 1000 * (int(i) - cfg.data.before) / cfg.data.fs      # noqa: E731
        lines.append(f"  {rec}: {int(m.sum()):,d} normal beats, largest {usual.max():+.2f} at "
                     f"{at(usual.argmax()):+.0f} ms, smallest {usual.min():+.2f} at {at(usual.argmin()):+.0f} ms")
    return lines


def template_lines(beats, preds: list[np.ndarray], y: np.ndarray, db: np.ndarray,
                   keeps: tuple[float, ...] = (0.99, 0.98, 0.95)) -> list[str]:
    """Among the beats each run calls V, each beat's distance from the patient's template (the mean
    absolute value of channel 1, z-units): per database, the median distance of the V beats and of the
    normal beats, and how well it ranks V above N (ROC AUC); then a veto with one cut for the whole pool
    (the distance below which ``1 - keep`` of the pool's V beats called V fall; calls below it become N):
    per database, the normal beats called V it turns back and the V beats it loses, and V Se and +P
    before and after. Means over the runs; a database without both kinds among its V calls prints "-"."""
    from sklearn.metrics import roc_auc_score

    distance = np.abs(beats.x[:, 1]).mean(axis=1)
    lines = []
    for name in dict.fromkeys(db):
        rows = []
        for p in preds:
            v, n = (db == name) & (p == V) & (y == V), (db == name) & (p == V) & (y == N)
            if v.any() and n.any():
                rows.append((np.median(distance[v]), np.median(distance[n]),
                             roc_auc_score(np.r_[np.ones(v.sum()), np.zeros(n.sum())], np.r_[distance[v], distance[n]])))
        if not rows:
            lines.append(f"  {name}: -")
            continue
        dv, dn, auc = np.mean(rows, axis=0)
        lines.append(f"  {name}: median distance of the V calls: V beats {dv:.2f}, normal beats {dn:.2f}; AUC {auc:.3f}")
    for keep in keeps:
        cuts = [np.quantile(distance[(p == V) & (y == V)], 1 - keep) for p in preds]
        parts = []
        for name in dict.fromkeys(db):
            m = db == name
            rows = []
            for p, cut in zip(preds, cuts):
                vetoed = np.where((p == V) & (distance < cut), N, p)
                rows.append([((p == V) & (y == N) & m).sum() - ((vetoed == V) & (y == N) & m).sum(),
                             ((p == V) & (y == V) & m).sum() - ((vetoed == V) & (y == V) & m).sum()]
                            + [100 * ((q == V) & (y == V) & m).sum() / max(k, 1) for q in (p, vetoed)
                               for k in (((y == V) & m).sum(), ((q == V) & m).sum())])
            back, lost, se0, ppv0, se1, ppv1 = np.mean(rows, axis=0)
            parts.append(f"{name} N -> V {back:,.0f} fewer, V beats lost {lost:,.0f}, "
                         f"V Se {se0:.1f} -> {se1:.1f}, +P {ppv0:.1f} -> {ppv1:.1f}")
        lines.append(f"  one cut keeping {100 * keep:.0f} % of the pool's V beats called V ({np.mean(cuts):.2f}): "
                     + "; ".join(parts))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="CV runs of one recipe (oof.npz)")
    ap.add_argument("--s-offset", type=float, help="S's logit offset in place of the recipe's (default: as shipped)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--config", default="hybrid", help="the runs' recipe (for the pool's beats)")
    ap.add_argument("--top", type=int, default=4, help="records listed per kind")
    ap.add_argument("--usual", nargs="*", default=[], metavar="RECORD",
                    help="also print these records' mean normal beat: its peak and trough, in z-units, and when")
    ap.add_argument("--template", action="store_true",
                    help="also print how the distance from the patient's template separates N from V among V calls")
    args = ap.parse_args()

    preds, y, record = calls(args.runs, args.s_offset)
    db = np.array([pool_label(database_of(str(r))) for r in record])
    n = len(preds)
    where = "as their recipe ships them" if args.s_offset is None else f"at S offset {args.s_offset:+g}"
    print(f"beats a seed, mean of {n} CV seeds, {where}")
    for true, called in KINDS:
        t, c = CLASSES.index(true), CLASSES.index(called)
        wrong = sum((y == t) & (p == c) for p in preds) / n
        parts = [f"{name} {wrong[db == name].sum():,.0f}" for name in dict.fromkeys(db)]
        per_record = {r: wrong[record == r].sum() for r in np.unique(record)}
        top = sorted(per_record.items(), key=lambda kv: -kv[1])[:args.top]
        print(f"{true} -> {called}: " + ", ".join(parts) + " | most: " + ", ".join(f"{r} {v:.0f}" for r, v in top))

    for name in dict.fromkeys(db):        # V +P, and without the record whose normal beats are called V most
        m = db == name
        worst = max(np.unique(record[m]), key=lambda r: sum(((record == r) & (y == N) & (p == V)).sum()
                                                             for p in preds))
        keep = m & ~((record == worst) & (y == N))
        ppv = [[100 * ((p == V) & (y == V) & k).sum() / max(((p == V) & k).sum(), 1) for p in preds]
               for k in (m, keep)]
        print(f"{name} V +P {np.mean(ppv[0]):.1f}; without {worst}'s normal beats called V {np.mean(ppv[1]):.1f}")

    beats, cfg = pool_beats(args.data, args.config, y, record)
    following = next_interval(beats)
    print("S beats called V by the interval after them (seconds):")
    for name in dict.fromkeys(db):
        for lo, hi in NEXT_INTERVAL_BINS:
            m = (db == name) & (y == S) & (following >= lo) & (following < hi)
            if m.sum():
                share = np.mean([(p[m] == V).mean() for p in preds])
                print(f"  {name} {lo:.2f}-{hi:.2f} s: {m.sum():,d} S beats, called V {100 * share:.1f} %")
    if args.usual:
        print("the mean normal beat of each record, as the network sees it (z-units; time from the R peak):")
        print("\n".join(usual_beat_lines(beats, cfg, args.usual)))
    if args.template:
        print("among the beats called V, the distance from the patient's template (mean |channel 1|, z-units):")
        print("\n".join(template_lines(beats, preds, y, db)))


if __name__ == "__main__":
    main()
