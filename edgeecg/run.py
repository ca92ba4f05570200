"""The run directory: what ``edgeecg train`` writes and ``edgeecg evaluate`` reads.

::

    runs/hybrid/
      model.pt         state_dict (read back with torch.load(weights_only=True))
      config.toml      the resolved config
      metrics.json     val and DS2 metrics, params, MACs per beat
      history.json     per-epoch losses and val macro-F1
      plots/*.png      training curves, confusion matrices, ROC and PR curves
      manifest.json    SHA-256 of the input record files and of every output file
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeecg import __version__, distributed, plots
from edgeecg.atomic import atomic_dir
from edgeecg.config import (
    Config,
    config_to_toml,
    load_config,
    rr_feature_names,
    test_key,
)
from edgeecg.data import BeatSet, input_hashes, is_leaky, record_hours
from edgeecg.digest import sha256_file
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import classification_report, false_alarms, per_record_report
from edgeecg.models import build_model, count_params, macs_per_beat
from edgeecg.train import predict_proba

MODEL_FILE, CONFIG_FILE, METRICS_FILE, MANIFEST_FILE = "model.pt", "config.toml", "metrics.json", "manifest.json"


def evaluated_splits(cfg: Config, splits: dict[str, BeatSet]) -> dict[str, BeatSet]:
    """The parts a run reports, by their report name: ``val`` (where the recipe holds DS1 records
    out) and the test part (``ds2``, or ``test`` for another split)."""
    out = {"val": splits["val"]} if len(splits["val"]) else {}
    out[test_key(cfg)] = splits["test"]
    return out


# Strodthoff et al. 2021 (IEEE JBHI), PTB-XL superdiagnostic, fold 10 of the full database.
PUBLISHED_PTBXL_MACRO_AUC = (0.925, 0.930)


def evaluate_multilabel(model: nn.Module, cfg: Config, splits: dict[str, BeatSet]) -> tuple[dict, dict]:
    """``metrics.json`` of a multi-label run (PTB-XL): per label and macro ROC-AUC; Se, +P, F1 at
    thresholds chosen on val (fold 9) for each label, applied unchanged to the test fold."""
    from edgeecg.metrics import choose_thresholds, multilabel_report
    from edgeecg.data.labels import SUPERCLASSES

    parts = evaluated_splits(cfg, splits)
    probas = {name: predict_proba(model, beats) for name, beats in parts.items()}
    chosen_on = "val" if "val" in probas else None
    thresholds = (choose_thresholds(parts["val"].y, probas["val"]) if chosen_on
                  else [0.5] * len(SUPERCLASSES))
    metrics = {name: multilabel_report(parts[name].y, p, thresholds, SUPERCLASSES) for name, p in probas.items()}
    metrics["thresholds"] = {"chosen_on": chosen_on or "none (0.5)", "criterion": "best F1 per label",
                             "values": {c: round(float(t), 6) for c, t in zip(SUPERCLASSES, thresholds)}}
    metrics["params"] = count_params(model)
    metrics["macs_per_beat"] = macs_per_beat(model, cfg.data.window, cfg.data.channels,
                                            len(rr_feature_names(cfg.data)))
    metrics["split"] = {"kind": "strat_fold", "leaky": False,
                        "folds": {"train": list(cfg.split.train_folds), "val": list(cfg.split.val_folds),
                                  "test": list(cfg.split.test_folds)},
                        "records": {k: len(v) for k, v in splits.items()}}
    n_test = len(parts[test_key(cfg)])
    metrics["caution"] = (
        f"the test fold holds {n_test:,d} records" + (
            f" (the full PTB-XL's fold 10 holds about 2,160): per-label AUCs rest on a handful of positives "
            f"(see support) and are not comparable with the published {PUBLISHED_PTBXL_MACRO_AUC[0]}-"
            f"{PUBLISHED_PTBXL_MACRO_AUC[1]} macro-AUC (Strodthoff et al. 2021)" if n_test < 1000 else ""))
    return metrics, probas


def evaluate_splits(model: nn.Module, cfg: Config, splits: dict[str, BeatSet],
                    hours: dict[str, float] | None = None) -> tuple[dict, dict]:
    """``metrics.json`` content and the probabilities of each evaluated split; with ``hours`` (each
    record's length) also the false S and V calls per hour of each record."""
    if cfg.data.multilabel:
        return evaluate_multilabel(model, cfg, splits)
    parts = evaluated_splits(cfg, splits)
    probas = {name: predict_proba(model, beats) for name, beats in parts.items()}
    metrics = {name: classification_report(parts[name].y, p.argmax(1)) for name, p in probas.items()}
    metrics["per_record"] = {name: per_record_report(parts[name].y, p.argmax(1), parts[name].record)
                             for name, p in probas.items()}
    if hours:
        metrics["hours"] = {r: round(h, 6) for r, h in hours.items()}
        metrics["false_alarms"] = {name: false_alarms(pr, hours) for name, pr in metrics["per_record"].items()}
    metrics["params"] = count_params(model)
    metrics["macs_per_beat"] = macs_per_beat(model, cfg.data.window, cfg.data.channels,
                                            len(rr_feature_names(cfg.data)))
    metrics["split"] = {"kind": cfg.split.kind, "leaky": is_leaky(cfg),
                        "beats": {k: len(v) for k, v in splits.items()}}
    if cfg.data.dataset == "kaggle_csv":
        metrics["split"].update(kind="kaggle_csv", val="stratified hold-out of the train CSV",
                                test="the test CSV", why_leaky="beats of all 48 MIT-BIH records were shuffled "
                                "before the Kaggle train/test cut: the same patients are in train and test")
    return metrics, probas


def _dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def save_run(out: Path, cfg: Config, model: nn.Module, history: list[dict], best_epoch: int,
             splits: dict[str, BeatSet], data_dir: Path, force: bool = False) -> dict:
    """Write a complete run directory atomically; return its metrics.

    Under ``torchrun`` only rank 0 evaluates and writes; the other ranks get its metrics."""
    if not distributed.is_main():
        return distributed.broadcast(None)
    hours = None
    if cfg.data.dataset == "mitdb" and cfg.split.kind == "de_chazal":
        scored = np.concatenate([b.record for b in evaluated_splits(cfg, splits).values()])
        hours = record_hours(data_dir, sorted(set(scored.tolist())), cfg)
    metrics, probas = evaluate_splits(model, cfg, splits, hours)
    metrics["best_epoch"] = best_epoch
    records = sorted(set(np.concatenate([s.record for s in splits.values()]).tolist()))
    try:
        _write_run(out, cfg, model, history, splits, data_dir, force, metrics, probas, records)
    finally:
        distributed.broadcast(metrics)      # the other ranks wait for rank 0 (a no-op in one process)
    return metrics


def _write_run(out: Path, cfg: Config, model: nn.Module, history: list[dict], splits: dict[str, BeatSet],
               data_dir: Path, force: bool, metrics: dict, probas: dict, records: list[str]) -> None:
    with atomic_dir(out, force=force) as tmp:
        torch.save(model.state_dict(), tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(config_to_toml(cfg), encoding="utf-8")
        _dump(tmp / METRICS_FILE, metrics)
        _dump(tmp / "history.json", history)
        (tmp / "plots").mkdir()
        parts = evaluated_splits(cfg, splits)
        plots.training_curves(history, tmp / "plots" / "training_curves.png")
        if cfg.data.multilabel:
            from edgeecg.data.labels import SUPERCLASSES
            for name, proba in probas.items():
                plots.roc_pr(parts[name].y, proba, name, tmp / "plots" / f"roc_{name}.png",
                             tmp / "plots" / f"pr_{name}.png", labels=SUPERCLASSES)
        for name, proba in ({} if cfg.data.multilabel else probas).items():
            plots.confusion_matrix(metrics[name]["confusion"], name, tmp / "plots" / f"confusion_{name}.png")
            plots.roc_pr(parts[name].y, proba, name, tmp / "plots" / f"roc_{name}.png", tmp / "plots" / f"pr_{name}.png")
            plots.per_record(metrics["per_record"][name], name, tmp / "plots" / f"per_record_{name}.png")
        inputs = input_hashes(data_dir, cfg, records)
        outputs = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        _dump(tmp / MANIFEST_FILE, {"edgeecg": __version__, "torch": torch.__version__,
                                    "data_dir": str(data_dir.resolve()), "inputs": inputs, "outputs": outputs})


def load_model(config_path: Path, weights: Path) -> tuple[Config, nn.Module]:
    """The recipe and the model (eval mode, CPU) of a config TOML and its weights (never unpickled)."""
    cfg = load_config(config_path)
    model = build_model(cfg.model.name, cfg.data, **cfg.model.params)
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as err:
        raise EdgeECGError(f"{weights}: cannot load weights ({type(err).__name__})") from None
    return cfg, model.eval()


def load_run(run_dir: Path) -> tuple[Config, nn.Module, dict]:
    """Config, model (eval mode, CPU) and manifest of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgeECGError(f"{run_dir}: run directory does not exist")
    weights = run_dir / MODEL_FILE
    if not weights.exists():
        raise EdgeECGError(f"{weights}: no model in this run directory (train one with `edgeecg train`)")
    cfg, model = load_model(run_dir / CONFIG_FILE, weights)
    manifest_path = run_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return cfg, model, manifest
