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

from edgeecg import __version__, plots
from edgeecg.atomic import atomic_dir
from edgeecg.config import Config, config_to_toml, load_config, test_key
from edgeecg.dataset import BeatSet, record_hashes, sha256_file
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import classification_report
from edgeecg.models import build_model, count_params, macs_per_beat
from edgeecg.processing.beats import rr_feature_names
from edgeecg.train import predict_proba

MODEL_FILE, CONFIG_FILE, METRICS_FILE, MANIFEST_FILE = "model.pt", "config.toml", "metrics.json", "manifest.json"


def evaluate_splits(model: nn.Module, cfg: Config, splits: dict[str, BeatSet]) -> tuple[dict, dict]:
    """``metrics.json`` content and the probabilities of each evaluated split."""
    probas = {"val": predict_proba(model, splits["val"]), test_key(cfg): predict_proba(model, splits["test"])}
    metrics = {name: classification_report(splits["val" if name == "val" else "test"].y, p.argmax(1))
               for name, p in probas.items()}
    metrics["params"] = count_params(model)
    metrics["macs_per_beat"] = macs_per_beat(model, cfg.data.window, cfg.data.channels,
                                            len(rr_feature_names(cfg.data.mode)))
    metrics["split"] = {"kind": cfg.split.kind, "leaky": cfg.split.kind == "random",
                        "beats": {k: len(v) for k, v in splits.items()}}
    return metrics, probas


def _dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def save_run(out: Path, cfg: Config, model: nn.Module, history: list[dict], best_epoch: int,
             splits: dict[str, BeatSet], data_dir: Path, force: bool = False) -> dict:
    """Write a complete run directory atomically; return its metrics."""
    metrics, probas = evaluate_splits(model, cfg, splits)
    metrics["best_epoch"] = best_epoch
    records = sorted(set(np.concatenate([s.record for s in splits.values()]).tolist()))
    with atomic_dir(out, force=force) as tmp:
        torch.save(model.state_dict(), tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(config_to_toml(cfg), encoding="utf-8")
        _dump(tmp / METRICS_FILE, metrics)
        _dump(tmp / "history.json", history)
        (tmp / "plots").mkdir()
        plots.training_curves(history, tmp / "plots" / "training_curves.png")
        for name, proba in probas.items():
            plots.confusion_matrix(metrics[name]["confusion"], name, tmp / "plots" / f"confusion_{name}.png")
            y = splits["val" if name == "val" else "test"].y
            plots.roc_pr(y, proba, name, tmp / "plots" / f"roc_{name}.png", tmp / "plots" / f"pr_{name}.png")
        inputs = {f"{r}/{f}": h for r in records for f, h in record_hashes(data_dir, r).items()}
        outputs = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        _dump(tmp / MANIFEST_FILE, {"edgeecg": __version__, "torch": torch.__version__,
                                    "data_dir": str(data_dir.resolve()), "inputs": inputs, "outputs": outputs})
    return metrics


def load_run(run_dir: Path) -> tuple[Config, nn.Module, dict]:
    """Config, model (eval mode, CPU) and manifest of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgeECGError(f"{run_dir}: run directory does not exist")
    weights = run_dir / MODEL_FILE
    if not weights.exists():
        raise EdgeECGError(f"{weights}: no model in this run directory (train one with `edgeecg train`)")
    cfg = load_config(run_dir / CONFIG_FILE)
    model = build_model(cfg.model.name, cfg.data, **cfg.model.params)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:
        raise EdgeECGError(f"{weights}: cannot load weights ({type(err).__name__})") from None
    manifest_path = run_dir / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return cfg, model.eval(), manifest
