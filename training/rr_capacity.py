"""Is the RR stream too small for the N-against-S decision it alone makes (the factorized head)?

Two measures of the same thing, the average precision (AP) of S against N on the N and S beats of DS1
and the shared SVDB records, patient-grouped and out of fold:
1. what trained networks give: ``P(S) / (P(N) + P(S))`` from each CV run's ``oof.npz`` (``--runs``);
   with the factorized head this ranks beats by a function of the RR features alone;
2. what scikit-learn's MLPs of given hidden sizes give on the same three RR features (the default
   recipe's cached beats), in the 5 patient-grouped folds of ``rr_screen.py``, trained on N and S only.

    python training/rr_capacity.py --runs runs/cv-hybrid runs/cv-hybrid-seed1 --sizes 8 32 32x8 32x16
    (about 1 min per size on 2 cores)
    python training/rr_capacity.py --sizes 8 32x8 --weighted --epochs 4
    (S weighted by the square root of its rarity, as the default's sampler drew it until question 44, and trained for about
    as many steps as the network's 10 epochs of 64,000 beats in batches of 256, 2,500: each fold trains on
    about 130,000 N and S beats, 650 batches of 200 an epoch)
    python training/rr_capacity.py --sizes 8 32x8 --pretrain 60 --weighted --epochs 4
    (a first stage of 60 unweighted epochs, then the network's weighted 2,500 steps: does the ranking survive?)
    python training/rr_capacity.py --sizes --stage 60 --stage-batch 256 1024
    (edgeecg's own first stage, ``[train] rhythm_epochs``, alone: the default recipe's RR stream and N-against-S
    weights fitted in each fold as ``edgeecg.rhythm_stage.fit_rhythm`` fits them, for each batch size;
    ``--config hybrid_svdb_rr2`` fits that recipe's two-layer RR stream instead)
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch
from rr_screen import patient_folds
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edgeecg.config import load_config
from edgeecg.cv import cv_pool, pool_label
from edgeecg.data import database_of, load_pool
from edgeecg.models import build_model
from edgeecg.rhythm_stage import fit_rhythm


def ap_by_database(y: np.ndarray, score: np.ndarray, record: np.ndarray) -> str:
    db = np.array([pool_label(database_of(str(r))) for r in record])
    return " | ".join(f"{name} AP {100 * average_precision_score(y[db == name] == 1, score[db == name]):4.1f}"
                      for name in dict.fromkeys(db))


def network_line(run: Path) -> str:
    oof = np.load(run / "oof.npz")
    m = oof["y"] <= 1
    p = oof["proba"][m]
    return ap_by_database(oof["y"][m], p[:, 1] / (p[:, 0] + p[:, 1]), oof["record"][m])


def mlp_line(x: np.ndarray, y: np.ndarray, record: np.ndarray, sizes: tuple[int, ...], epochs: int = 60,
             weighted: bool = False, pretrain: int = 0) -> str:
    """``pretrain`` > 0: first that many epochs unweighted, then ``epochs`` more as asked (a first stage)."""
    score = np.zeros(len(y))
    for train, test in patient_folds(y, record):
        yt = y[train]
        w = np.where(yt == 1, ((yt == 0).sum() / (yt == 1).sum()) ** 0.5, 1.0) if weighted else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make_pipeline(StandardScaler(), MLPClassifier(sizes, max_iter=pretrain or epochs, random_state=0))
            model.fit(x[train], yt, mlpclassifier__sample_weight=None if pretrain else w)
            if pretrain:
                model.set_params(mlpclassifier__warm_start=True, mlpclassifier__max_iter=epochs)
                model.fit(x[train], yt, mlpclassifier__sample_weight=w)
        score[test] = model.predict_proba(x[test])[:, 1]
    return ap_by_database(y, score, record)


def stage_line(beats, cfg, epochs: int, batch: int) -> str:
    """What ``fit_rhythm`` alone makes of the N and S beats (``beats`` holds those only), out of fold. The RR
    standardiser is fitted on those beats (``train_model`` fits it on every class: a small difference)."""
    tc = dataclasses.replace(cfg.train, rhythm_epochs=epochs)
    score = np.zeros(len(beats))
    for train, test in patient_folds(beats.y, beats.record):
        torch.manual_seed(tc.seed)
        model = build_model(cfg.model.name, cfg.data, **cfg.model.params)
        model.rr_norm.fit(torch.from_numpy(beats.rr[train]))
        fit_rhythm(model, beats.subset(train), tc, torch.device("cpu"), batch)
        with torch.no_grad():
            score[test] = model.ns_logit(torch.from_numpy(beats.rr[test])).numpy()
    return ap_by_database(beats.y, score, beats.record)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--runs", type=Path, nargs="*", default=[], help="CV runs (folders with oof.npz)")
    ap.add_argument("--sizes", nargs="*", default=["8", "32", "32x8", "32x16"],
                    help="MLP hidden sizes, layers joined by x (8: one layer of 8 units, like the default's RR stream)")
    ap.add_argument("--epochs", type=int, default=60, help="passes over the training folds (Adam, batches of 200)")
    ap.add_argument("--weighted", action="store_true", help="S beats weigh the square root of their rarity")
    ap.add_argument("--pretrain", type=int, default=0, metavar="EPOCHS",
                    help="a first stage of EPOCHS unweighted epochs before --epochs as asked")
    ap.add_argument("--stage", type=int, default=0, metavar="EPOCHS",
                    help="also edgeecg's first stage ([train] rhythm_epochs = EPOCHS) alone, per --stage-batch")
    ap.add_argument("--stage-batch", type=int, nargs="*", default=[1024], help="the first stage's batch sizes")
    ap.add_argument("--config", default="hybrid", help="the recipe whose model --stage fits (its beats are the default's)")
    args = ap.parse_args()
    for run in args.runs:
        print(f"network {run}: {network_line(run)}", flush=True)
    if args.sizes or args.stage:
        cfg = load_config("hybrid")
        beats = load_pool(args.data, cfg, cv_pool(args.data, cfg))
        sv = beats.y <= 1
        stage_cfg = load_config(args.config)
        for batch in args.stage_batch if args.stage else []:
            line = stage_line(beats.subset(sv), stage_cfg, args.stage, batch)
            print(f"stage {args.config}, {args.stage} epochs, batches of {batch}: {line}", flush=True)
        for size in args.sizes:
            layers = tuple(int(v) for v in size.split("x"))
            line = mlp_line(beats.rr[sv], beats.y[sv], beats.record[sv], layers, args.epochs, args.weighted,
                            args.pretrain)
            print(f"MLP {size:6s}: {line}", flush=True)


if __name__ == "__main__":
    main()
