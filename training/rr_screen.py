"""Screen RR normalisations for N versus S without training a network: patient-grouped 5-fold
gradient-boosted trees (scikit-learn) on the supraventricular beats (N and S) of DS1 and the shared
SVDB records, from RR features alone (the shape of the factorized head's S-against-N decision).
Prints the average precision of S against N, S Se / +P and the false S calls per database for each
feature set, and how many S beats of svdb/865 and svdb/822 it finds (training/README.md).

    python training/rr_screen.py --data ../shared/data/mitdb        (about 5 min on 2 cores)
    python training/rr_screen.py --data ../shared/data/mitdb --estimators   (the regular-RR estimate's settings, 15 min)
    python training/rr_screen.py --data ../shared/data/mitdb --sets base,+strip8 --ectopic 1   (timing learnt from V beats too)
    python training/rr_screen.py --data ../shared/data/mitdb --sets base,run85,run90,run85s10   (the run anchor, question 40)
    python training/rr_screen.py --data ../shared/data/mitdb --sets run85,mem85,mem85s10   (an anchor no run moves, question 43)
    python training/rr_screen.py --data ../shared/data/mitdb --sets run85,mem85,mem85l64,mem85l256   (... that a run moves slowly, question 45)
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedGroupKFold

from edgeecg.config import load_config
from edgeecg.io.wfdb_records import list_records, rdann
from edgeecg.processing.aami import aami_labels
from edgeecg.processing.beats import (
    irregular_fraction,
    irregularity,
    older_interval,
    regular_rr_step,
    regular_rr_steps,
    trailing,
)

BASE = ["pre_reg", "prev_reg", "irr"]
SETS = {"base": BASE, "+q75": BASE + ["pre_q75"], "+q90": BASE + ["pre_q90"], "+max16": BASE + ["pre_max16"],
        "+med32": BASE + ["pre_med32"], "+avg": BASE + ["pre_avg"], "+post": BASE + ["post_pre"],
        "+q75+post": BASE + ["pre_q75", "post_pre"], "+q90_300": BASE + ["pre_q90_300"],
        "+pre_prev": BASE + ["pre_prev"], "+q90_300+post": BASE + ["pre_q90_300", "post_pre"],
        # for atrial fibrillation, where most false S calls are (training/README.md, row 30)
        "+irr64": BASE + ["irr64"], "+irrfrac32": BASE + ["irrfrac32"], "+medsd32": BASE + ["medsd32"],
        "+all AF": BASE + ["irr64", "irrfrac32", "medsd32"],
        # a short rhythm strip: the intervals before the previous one, each over the regular-RR estimate
        "+strip4": BASE + [f"prev{k}_reg" for k in range(2, 5)],
        "+strip8": BASE + [f"prev{k}_reg" for k in range(2, 9)],
        # the rate itself, in seconds: a run of supraventricular tachycardia is fast for anyone
        "+pre_s": BASE + ["pre_s"], "+reg_s": BASE + ["reg_s"], "+pre_s+reg_s": BASE + ["pre_s", "reg_s"],
        # bigeminy: how much the last intervals alternate short-long, in the phase of the beat's own
        "+alt4": BASE + ["alt4"], "+alt8": BASE + ["alt8"], "+alt8+pre_s": BASE + ["alt8", "pre_s"],
        # a run of early beats against the rhythm before it began (svdb/865's tachycardia runs)
        "+run85": BASE + ["pre_run85"], "+run90": BASE + ["pre_run90"],
        "+run85+len": BASE + ["pre_run85", "run_len85"], "+run90+len": BASE + ["pre_run90", "run_len90"],
        # ... in place of the regular-RR estimate: both intervals over the anchor
        "run85": ["pre_run85", "prev_run85", "irr"], "run90": ["pre_run90", "prev_run90", "irr"],
        "run85+len": ["pre_run85", "prev_run85", "irr", "run_len85"],
        # ... a run that also ends at an unsteady interval (more than 10 or 20 % of the anchor off the last)
        "run85s10": ["pre_run85s10", "prev_run85s10", "irr"], "run85s20": ["pre_run85s20", "prev_run85s20", "irr"],
        # ... with an anchor that no run moves: the regular-RR estimate fed only the intervals outside runs,
        # so a run that follows another after a few sinus beats starts from the sinus rhythm (question 43)
        "mem85": ["pre_mem85", "prev_mem85", "irr"], "mem85+irr_mem": ["pre_mem85", "prev_mem85", "irr_mem85"],
        "run85+mem85": ["pre_run85", "prev_run85", "irr", "pre_mem85"],
        "mem85s10": ["pre_mem85s10", "prev_mem85s10", "irr"],
        # ... that a lasting run moves slowly: within a run the estimate follows each interval by 1/64 or 1/256
        "mem85l64": ["pre_mem85l64", "prev_mem85l64", "irr"], "mem85l256": ["pre_mem85l256", "prev_mem85l256", "irr"]}
WATCH = ("svdb/865", "svdb/822")     # the two records with 61 % of the pool's missed S beats
# --estimators: the base set with the regular-RR estimate's own settings changed ([data] regular_rr_*)
ESTIMATORS = {"base": {}, "band .85-1.15": {"regular_rr_band": (0.85, 1.15)},
              "band .9-1.1": {"regular_rr_band": (0.9, 1.1)}, "band .75-1.25": {"regular_rr_band": (0.75, 1.25)},
              "band .85-1.3": {"regular_rr_band": (0.85, 1.3)}, "follow 1/16": {"regular_rr_follow": 1 / 16},
              "follow 1/32": {"regular_rr_follow": 1 / 32}, "follow 1/128": {"regular_rr_follow": 1 / 128},
              "beats 4": {"regular_rr_beats": 4}, "beats 16": {"regular_rr_beats": 16},
              "beats 32": {"regular_rr_beats": 32}}


def trailing_quantile(pre: np.ndarray, n: int, q: float) -> np.ndarray:
    """The ``q`` quantile of the ``n`` intervals before each one (the first: its own)."""
    return trailing(pre, n, lambda before: np.quantile(before, q))


def alternation(pre: np.ndarray, regular: np.ndarray, n: int) -> np.ndarray:
    """The mean of (-1)^k times the k-th interval before each beat's own (k = 0: its own), over the
    regular RR, k < ``n``: negative when a short interval ends a short-long alternation (bigeminy)."""
    return sum((-1) ** k * (older_interval(pre, k) if k else pre) for k in range(n)) / (n * regular)


def run_anchor(pre: np.ndarray, regular: np.ndarray, keep: float, start: float = 0.8,
               steady: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The rhythm a run of early beats interrupted: a run starts at an interval shorter than ``start``
    times the regular-RR estimate and goes on while each interval stays shorter than ``keep`` times
    the estimate the run started from (its anchor). Per beat: the anchor (the regular-RR estimate
    outside runs) and how many beats the run has lasted (0 outside runs). A run of tachycardia stays
    early against its anchor while the regular-RR estimate follows it; a gradual speed-up starts none.
    ``steady`` > 0: a run also ends at an interval more than ``steady`` times the anchor away from the
    one before it (a tachycardia is regular; atrial fibrillation is not). The product's is
    :func:`edgeecg.processing.beats.run_anchor` (keep 0.85, start at the regular band's low edge)."""
    anchor, length = regular.copy(), np.zeros(len(pre))
    current, n = 0.0, 0
    for i, (v, reg) in enumerate(zip(pre, regular)):
        if n and v < keep * current and (not steady or abs(v - pre[i - 1]) <= steady * current):
            n += 1
        elif v < start * reg:
            current, n = float(reg), 1
        else:
            n = 0
        if n:
            anchor[i], length[i] = current, n
    return anchor, length


def memory_anchor(steps: np.ndarray, data_cfg, keep: float = 0.85, steady: float = 0.0,
                  leak: float = 0.0) -> np.ndarray:
    """The rhythm outside runs of early beats, per interval (same unit as ``steps``): the regular-RR
    estimate (:func:`regular_rr_steps`'s rule) fed only the intervals outside runs. A run starts at an
    interval below the band's low edge times this estimate and goes on while each interval stays below
    ``keep`` times it; within a run the estimate does not move, so no run, however long, becomes the
    rhythm that the next run is measured against. ``steady`` > 0: only a steady run holds it
    (|interval - the one before| <= ``steady`` * estimate, as a tachycardia is and atrial fibrillation
    is not). The interval that ends a run, long or unsteady, moves the estimate and starts no run, so
    through atrial fibrillation the estimate keeps following. ``leak`` > 0: within a run the estimate
    moves by ``leak`` of the way to each interval, so a lasting change of rate ends its run in a time
    that grows with its depth (a sinus speed-up of a fifth within about 30 beats at 1/64; a tachycardia
    at half the sinus interval within about 100)."""
    lo = data_cfg.regular_rr_band[0]
    out = np.empty(len(steps))
    if not len(steps):
        return out
    recent, estimate, in_run = [float(steps[0])], float(steps[0]), False
    for i, v in enumerate(steps):
        out[i] = estimate
        if in_run and v < keep * estimate and not (steady and abs(v - steps[i - 1]) > steady * estimate):
            estimate += leak * (float(v) - estimate)
            continue
        if not in_run and v < lo * estimate:
            in_run = True
            continue
        in_run = False          # the run is over (a long or an unsteady interval): this one moves the estimate
        recent, estimate, _ = regular_rr_step(recent, estimate, float(v), data_cfg)
    return out


def features(folder: Path, name: str, data_cfg) -> tuple[dict, np.ndarray, float]:
    """The RR features of every annotated beat of a record but the first, its AAMI classes and its hours."""
    samples, symbols = rdann(folder, name)
    labels = aami_labels(symbols)
    r, y = samples[labels >= 0], labels[labels >= 0]
    head = (folder / f"{name}.hea").read_text().split()
    fs, hours = float(head[2].split("/")[0]), int(head[3]) / float(head[2].split("/")[0]) / 3600
    steps = np.diff(r).astype(float)
    pre = steps / fs
    regular = regular_rr_steps(steps, data_cfg)[0] / fs
    prev = older_interval(pre, 1)
    strip = {f"prev{k}_reg": older_interval(pre, k) / regular for k in range(2, 9)}
    post = np.append(pre[1:], pre[-1])
    successive = np.abs(np.diff(pre, prepend=pre[0]))
    runs = {k: run_anchor(pre, regular, k / 100) for k in (85, 90)}
    runs |= {f"85s{k}": run_anchor(pre, regular, 0.85, steady=k / 100) for k in (10, 20)}
    runs = {**{f"pre_run{k}": pre / a for k, (a, _) in runs.items()},
            **{f"prev_run{k}": prev / a for k, (a, _) in runs.items()},
            **{f"run_len{k}": np.log1p(n) for k, (_, n) in runs.items()}}
    memory = memory_anchor(steps, data_cfg) / fs
    runs |= {"pre_mem85": pre / memory, "prev_mem85": prev / memory, "irr_mem85": irregularity(pre, 16) / memory}
    steady = memory_anchor(steps, data_cfg, steady=0.1) / fs
    runs |= {"pre_mem85s10": pre / steady, "prev_mem85s10": prev / steady}
    for k in (64, 256):
        leaky = memory_anchor(steps, data_cfg, leak=1 / k) / fs
        runs |= {f"pre_mem85l{k}": pre / leaky, f"prev_mem85l{k}": prev / leaky}
    return {"pre_reg": pre / regular, "prev_reg": prev / regular, "irr": irregularity(pre, 16) / regular,
            "pre_q75": pre / trailing_quantile(pre, 32, 0.75), "pre_q90": pre / trailing_quantile(pre, 32, 0.9),
            "pre_max16": pre / trailing_quantile(pre, 16, 1.0), "pre_med32": pre / trailing_quantile(pre, 32, 0.5),
            "pre_avg": pre / (np.cumsum(pre) / np.arange(1, len(pre) + 1)), "post_pre": post / pre,
            "pre_q90_300": pre / trailing_quantile(pre, 300, 0.9), "pre_prev": pre / prev,
            "irr64": irregularity(pre, 64) / regular, "irrfrac32": irregular_fraction(pre, regular, 32, 0.12),
            "medsd32": trailing_quantile(successive, 32, 0.5) / regular, "pre_s": pre, "reg_s": regular,
            "alt4": alternation(pre, regular, 4), "alt8": alternation(pre, regular, 8),
            **strip, **runs}, y[1:], hours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--estimators", action="store_true",
                    help="screen the regular-RR estimate's settings (ESTIMATORS) with the base set instead")
    ap.add_argument("--sets", default="", help="comma-separated feature sets to screen (default: all of SETS)")
    ap.add_argument("--ectopic", type=float, default=0.0, metavar="WEIGHT",
                    help="> 0: also train each fold on its patients' V beats as premature (N against S or V), "
                         "each weighing WEIGHT of an S beat, scored on N and S beats as before: does V's timing teach S's?")
    args = ap.parse_args()
    cfg = load_config("hybrid")
    svdb = args.data.parent / "svdb"
    pool = [(args.data, r, "DS1") for r in cfg.split.train if r not in cfg.split.exclude]
    pool += [(svdb, r, "SVDB") for r in list_records(svdb)]
    runs = ({label: (dataclasses.replace(cfg.data, **kw), {label: BASE}) for label, kw in ESTIMATORS.items()}
            if args.estimators else {"": (cfg.data, {k: SETS[k] for k in args.sets.split(",")} if args.sets else SETS)})
    for data_cfg, sets in runs.values():
        parts = [(db, name if db == "DS1" else f"svdb/{name}", *features(folder, name, data_cfg))
                 for folder, name, db in pool]
        x = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
        y = np.concatenate([p[3] for p in parts])
        hours = {p[1]: p[4] for p in parts}
        group = np.concatenate([[p[1]] * len(p[3]) for p in parts])
        db = np.concatenate([[p[0]] * len(p[3]) for p in parts])
        sv = y <= 1                                   # N and S beats only
        ys, gs, dbs = y[sv], group[sv], db[sv]
        folds = patient_folds(ys, gs)
        vb = y == 2
        for label, cols in sets.items():
            cols_of = lambda m: np.stack([x[c][m] for c in cols], axis=1)  # noqa: E731
            extra = (cols_of(vb), group[vb], args.ectopic) if args.ectopic > 0 else None
            print(f"{label:14s} " + screen(cols_of(sv), ys, gs, dbs, folds, hours, extra), flush=True)


def patient_folds(ys: np.ndarray, groups: np.ndarray) -> list:
    """5 patient-grouped folds, stratified by class (the same for every feature set)."""
    return list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(np.zeros(len(ys)), ys, groups))


def screen(xs: np.ndarray, ys: np.ndarray, gs: np.ndarray, dbs: np.ndarray, folds: list, hours: dict | None = None,
           extra: tuple[np.ndarray, np.ndarray, float] | None = None) -> str:
    """Out-of-fold gradient-boosted trees on features ``xs`` of N (0) and S (1) beats, S weighted by
    the square root of its rarity: one line of the average precision of S against N (threshold-free), S Se, +P, false S calls and the median record's false S
    calls per hour (with ``hours``, each patient's) per database, and the S beats found in the WATCH records.
    ``extra``: (features, patients, weight) of more premature beats (V) added to each fold's training
    patients as class 1, each weighing ``weight`` of an S beat; the held-out beats scored are N and S as before."""
    pred, prob = np.zeros(len(ys), int), np.zeros(len(ys))
    for train, test in folds:
        xt, yt, w = xs[train], ys[train], np.ones(len(train))
        if extra is not None:
            mine = np.isin(extra[1], np.unique(gs[train]))
            xt, yt = np.concatenate([xt, extra[0][mine]]), np.concatenate([yt, np.ones(mine.sum(), int)])
            w = np.concatenate([w, np.full(mine.sum(), extra[2])])
        w = w * np.where(yt == 1, (yt == 0).sum() / w[yt == 1].sum(), 1.0) ** 0.5
        model = HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15, random_state=0)
        prob[test] = model.fit(xt, yt, sample_weight=w).predict_proba(xs[test])[:, 1]
        pred[test] = model.predict(xs[test])
    cells = []
    for d in dict.fromkeys(dbs):
        m = dbs == d
        tp = int(((pred == 1) & (ys == 1) & m).sum())
        cell = (f"{d} AP {100 * average_precision_score(ys[m], prob[m]):4.1f} S Se {100 * tp / ((ys == 1) & m).sum():5.1f} +P "
                f"{100 * tp / max(((pred == 1) & m).sum(), 1):5.1f} false S {((pred == 1) & (ys == 0) & m).sum():6d}")
        if hours:
            per_hour = [((pred == 1) & (ys == 0) & (gs == g)).sum() / hours[g] for g in np.unique(gs[m])]
            cell += f" median/h {np.median(per_hour):5.1f}"
        cells.append(cell)
    watch = ", ".join(f"{r} {((pred == 1) & (ys == 1) & (gs == r)).sum()}/{((ys == 1) & (gs == r)).sum()}"
                      for r in WATCH)
    return " | ".join(cells) + f" | S found: {watch}"


if __name__ == "__main__":
    main()
