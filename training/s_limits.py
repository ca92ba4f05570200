"""What limits S: where the default's out-of-fold S beats go, and whether the P wave adds to RR.

1. From a cross-validation run's out-of-fold probabilities (``runs/cv-hybrid/oof.npz``), per database:
   the S beats called N, S and V, and the S-against-N decision alone (S more probable than N) on the
   N and S beats, the factorized head's RR-only decision.
2. Patient-grouped 5-fold gradient-boosted trees (scikit-learn) on the N and S beats of DS1 and the
   shared SVDB records, from the three RR features alone and with features of the P-wave window
   (250-60 ms and 160-40 ms before the R peak) of the beat against the patient's template, taken
   from the model's own inputs (the beat and the beat minus the template, z-scored): mean
   |beat - template|, the correlation of beat and template, and the log ratio of their energies there;
   and with how abnormal the beat before was (its QRS window against the template: ``+prev qrs``).
   The screen is ``rr_screen.py``'s (its ``screen``); the result is in training/README.md.
3. The false S/V calls of the records around the median (the middle two fifths by false calls an
   hour) by kind, and the records that hold the most (the worst tenth per database): their false
   calls by kind and by fifth of the record, and the RR features the model saw (median pre-RR over
   the regular RR, irregularity) for their normal beats called S, against those it called N. The
   results are in training/README.md.
4. S against V on the S and V beats: the network's out-of-fold choice beside patient-grouped trees on
   the RR features and scalar QRS features of the beat against its template (mean |difference|,
   correlation, energy ratio, width), same folds: whether a hand-made morphology feature would find
   the aberrant S beats the network calls V.

    python training/s_limits.py --data ../shared/data/mitdb --cv runs/cv-hybrid     (about 3 min on 2 cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from edgeecg.config import load_config, rr_feature_names
from edgeecg.cv import cv_pool
from edgeecg.data.cache import load_pool
from edgeecg.data.sources import database_of
from rr_screen import patient_folds, screen     # beside this script: the same tree screen
from seed_ensemble import load                  # and the same reading of a CV run

WINDOWS_MS = {"p": (250, 60), "pq": (160, 40), "qrs": (50, -60)}      # before the R peak (-60: after it)
SETS = {"rr": [], "+p |diff|": ["p_absdiff"], "+p corr": ["p_corr"],
        "+p all": ["p_absdiff", "p_corr", "p_energy"], "+pq all": ["pq_absdiff", "pq_corr", "pq_energy"],
        # how abnormal the beat *before* was: a beat after an interpolated V beat is early without being S
        "+prev qrs": ["prev_qrs_absdiff", "prev_width_over_template"]}


def where_s_goes(cv_run: Path) -> None:
    z = np.load(cv_run / "oof.npz")
    y, proba, record = z["y"], z["proba"], z["record"]
    pred = proba.argmax(1)
    db = np.array([database_of(r) for r in record])
    for d in dict.fromkeys(db):
        m = db == d
        s = (y == 1) & m
        rr_says_s = proba[:, 1] > proba[:, 0]
        print(f"{cv_run.name} {d}: {s.sum()} S beats called N {(pred[s] == 0).sum()}, S {(pred[s] == 1).sum()}, "
              f"V {(pred[s] == 2).sum()}; S against N alone: S Se {100 * rr_says_s[s].mean():.1f}, "
              f"N beats called S {(rr_says_s & (y == 0) & m).sum()}")


def where_false_calls_come_from(cv_run: Path, beats, names: tuple[str, ...]) -> None:
    proba, y, record, hours, _ = load(cv_run)
    if not (np.array_equal(y, beats.y) and np.array_equal(record, beats.record)):
        print(f"{cv_run}: its beats are not the pool's (another recipe or data); false calls skipped")
        return
    pred = proba.argmax(1)
    false = ((pred == 1) & (y != 1)) | ((pred == 2) & (y != 2))      # as metrics.false_alarms counts them
    db = np.array([database_of(r) for r in record])
    cols = {n: beats.rr[:, names.index(n)] for n in ("pre_over_regular", "irregularity") if n in names}
    kinds = {"N called S": (0, 1), "N called V": (0, 2), "S called V": (1, 2), "V called S": (2, 1)}
    for d in dict.fromkeys(db):
        recs = sorted(dict.fromkeys(record[db == d]), key=lambda r: -false[record == r].sum() / hours[r])
        worst = recs[:max(1, round(len(recs) / 10))]
        share = false[np.isin(record, worst)].sum() / max(false[db == d].sum(), 1)
        middle = recs[round(0.3 * len(recs)):round(0.7 * len(recs))]      # the records around the median
        m, h = np.isin(record, middle), sum(hours[r] for r in middle)
        print(f"{d}: the middle two fifths of the records ({len(middle)}, by false calls an hour), false calls an hour "
              "by kind: " + ", ".join(f"{k} {((m & (y == t) & (pred == c)).sum()) / h:.1f}"
                                      for k, (t, c) in kinds.items()) + f", of {false[m].sum() / h:.1f}")
        print(f"{d}: the worst tenth of the records ({', '.join(worst)}) holds {100 * share:.0f} % of its false S/V calls")
        for r in worst:
            m = record == r
            counts = {k: int((m & (y == true) & (pred == called)).sum()) for k, (true, called) in kinds.items()}
            fs, ok = m & (y == 0) & (pred == 1), m & (y == 0) & (pred == 0)
            med = "  ".join(f"{n} median: N called S {np.median(c[fs]) if fs.any() else float('nan'):.2f}, "
                            f"called N {np.median(c[ok]):.2f}" for n, c in cols.items())
            fifths = np.histogram(np.flatnonzero(false[m]), bins=5, range=(0, m.sum()))[0]
            print(f"  {r}: {false[m].sum()} false calls ({false[m].sum() / hours[r]:.0f} an hour); "
                  + ", ".join(f"{k} {n}" for k, n in counts.items())
                  + f", F or Q called S or V {false[m].sum() - sum(counts.values())}; by fifth of its beats "
                  f"{fifths.tolist()}; {med}")


def window_features(x: np.ndarray, before: int, fs: float) -> dict[str, np.ndarray]:
    """Per window of WINDOWS_MS: mean |beat - template|, their correlation and log energy ratio; and the
    QRS width (samples within 100 ms before to 120 ms after the R peak above half the peak), the beat's
    and the beat's minus the template's."""
    beat, diff = x[:, 0], x[:, 1]
    template = beat - diff
    out = {}
    for name, (lo_ms, hi_ms) in WINDOWS_MS.items():
        sl = slice(before - round(lo_ms * fs / 1000), before - round(hi_ms * fs / 1000))
        b, t = beat[:, sl], template[:, sl]
        bc, tc = b - b.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
        out[f"{name}_absdiff"] = np.abs(diff[:, sl]).mean(1)
        out[f"{name}_corr"] = (bc * tc).sum(1) / np.sqrt((bc ** 2).sum(1) * (tc ** 2).sum(1) + 1e-6)
        out[f"{name}_energy"] = np.log((bc ** 2).mean(1) + 1e-4) - np.log((tc ** 2).mean(1) + 1e-4)
    wide = slice(before - round(100 * fs / 1000), before + round(120 * fs / 1000))
    width = {k: (np.abs(w[:, wide]) > 0.5 * np.abs(w[:, wide]).max(1, keepdims=True)).sum(1)
             for k, w in (("beat", beat), ("template", template))}
    out["width"], out["width_over_template"] = width["beat"], width["beat"] - width["template"]
    return out


def previous_beat(values: np.ndarray, record: np.ndarray) -> np.ndarray:
    """Each beat's value for the beat before it in the same record (the first beat of a record: its own).
    "Before" is in the pool's beats, which leave out beats the data layer drops (too near a record's ends)."""
    out = np.roll(values, 1)
    first = np.r_[True, record[1:] != record[:-1]]
    out[first] = values[first]
    return out


def s_against_v(cv_run: Path, beats, feats: dict) -> None:
    """S against V on the pool's S and V beats: the network's out-of-fold choice (S or V, whichever is
    more probable) beside patient-grouped trees on the RR features and scalar QRS features of the beat
    against the template: can a hand-made morphology feature tell aberrant S beats from V beats?"""
    proba, y, record, _, _ = load(cv_run)
    m = (y == 1) | (y == 2)
    ys, gs = (y[m] == 2).astype(int), record[m]
    dbs = np.array([database_of(r) for r in gs])
    folds = patient_folds(ys, gs)

    def line(label: str, called_v: np.ndarray) -> None:
        print(f"{label:24s} " + " | ".join(
            f"{d}: S called V {(called_v & (ys == 0) & (dbs == d)).sum()} of {((ys == 0) & (dbs == d)).sum()}, "
            f"V called S {(~called_v & (ys == 1) & (dbs == d)).sum()} of {((ys == 1) & (dbs == d)).sum()}"
            for d in dict.fromkeys(dbs)))

    line("network", proba[m, 2] > proba[m, 1])
    qrs = ["qrs_absdiff", "qrs_corr", "qrs_energy", "width", "width_over_template"]
    for label, rr, cols in (("trees, RR", True, []), ("trees, RR + QRS", True, qrs), ("trees, QRS", False, qrs)):
        xs = np.concatenate(([beats.rr[m]] if rr else []) + [feats[c][m][:, None] for c in cols], axis=1)
        called = np.zeros(len(ys), bool)
        for train, test in folds:
            w = np.where(ys[train] == 1, (ys[train] == 0).sum() / (ys[train] == 1).sum(), 1.0)
            tree = HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15, random_state=0)
            called[test] = tree.fit(xs[train], ys[train], sample_weight=w).predict(xs[test]) == 1
        line(label, called)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--cv", type=Path, default=Path("runs/cv-hybrid"), help="a CV run of the default recipe")
    args = ap.parse_args()
    if (args.cv / "oof.npz").is_file():
        where_s_goes(args.cv)
    cfg = load_config("hybrid")
    patients = cv_pool(args.data, cfg)
    beats = load_pool(args.data, cfg, patients)
    if (args.cv / "oof.npz").is_file():
        where_false_calls_come_from(args.cv, beats, rr_feature_names(cfg.data))
    feats = window_features(beats.x, cfg.data.before, cfg.data.fs)
    feats |= {f"prev_{k}": previous_beat(feats[k], beats.record) for k in ("qrs_absdiff", "width_over_template")}
    db = np.array([database_of(r) for r in beats.record])
    sv = beats.y <= 1                                   # N and S beats only
    ys, gs, dbs = beats.y[sv], beats.record[sv], db[sv]
    folds = patient_folds(ys, gs)
    for label, cols in SETS.items():
        xs = np.concatenate([beats.rr[sv]] + [feats[c][sv][:, None] for c in cols], axis=1)
        print(f"{label:10s} " + screen(xs, ys, gs, dbs, folds), flush=True)
    if (args.cv / "oof.npz").is_file():
        s_against_v(args.cv, beats, feats)

if __name__ == "__main__":
    main()
