"""The training loop: AdamW + one-cycle schedule, class-imbalance handling, early stopping on
validation macro-F1, seeded and deterministic on one machine."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from edgeecg.config import Config, TrainConfig
from edgeecg.dataset import BeatSet
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import classification_report
from edgeecg.models import build_model
from edgeecg.processing.aami import CLASSES
from edgeecg.processing.beats import round_to_input_grid

MAX_CLASS_WEIGHT = 50.0   # caps the weight of classes with very few training beats (Q in DS1)


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise EdgeECGError("--device cuda: no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def class_weights(y: np.ndarray, power: float, n_classes: int = len(CLASSES)) -> torch.Tensor:
    """``(n_max / n_class) ** power``: 1 for the largest class, capped for tiny classes."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = (counts.max() / np.maximum(counts, 1.0)) ** power
    return torch.tensor(np.minimum(w, MAX_CLASS_WEIGHT), dtype=torch.float32)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1)
    ce = F.nll_loss(logp, target, weight=weight, reduction="none")
    pt = logp.gather(1, target[:, None]).squeeze(1).exp()
    return ((1 - pt) ** gamma * ce).mean()


def to_tensors(beats: BeatSet, device: torch.device):
    return (torch.from_numpy(beats.x).to(device), torch.from_numpy(beats.rr).to(device),
            torch.from_numpy(beats.y).to(device))


@torch.no_grad()
def predict_proba(model: nn.Module, beats: BeatSet, device: torch.device | str = "cpu",
                  batch_size: int = 4096) -> np.ndarray:
    """Softmax class probabilities of every beat, shape (n, 5)."""
    model.eval()
    device = torch.device(device)
    out = []
    for i in range(0, len(beats), batch_size):
        x = torch.from_numpy(beats.x[i:i + batch_size]).to(device)
        rr = torch.from_numpy(beats.rr[i:i + batch_size]).to(device)
        out.append(torch.softmax(model(x, rr), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def _epoch_order(y: np.ndarray, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    n = len(y)
    if cfg.imbalance != "sampler":
        return torch.randperm(n, generator=gen)
    w = class_weights(y, cfg.imbalance_power)[torch.from_numpy(y)]
    return torch.multinomial(w, n, replacement=True, generator=gen)


def _augment(x: torch.Tensor, gen: torch.Generator, input_step: float) -> torch.Tensor:
    """Random shift of up to 3 samples and white noise: cheap robustness to R-peak jitter.
    The result goes back onto the beat input's int8 grid (``input_step``; 0: none)."""
    shift = int(torch.randint(-3, 4, (1,), generator=gen))
    x = torch.roll(x, shift, dims=2)
    return round_to_input_grid(x + 0.05 * torch.randn(x.shape, generator=gen).to(x.device), input_step)


def train_model(cfg: Config, splits: dict[str, BeatSet], progress: bool = True,
                init: nn.Module | None = None) -> TrainResult:
    """Train ``cfg.model`` on ``splits["train"]``; keep the epoch with the best val macro-F1.

    ``init``: start from this model (fine-tuning, e.g. after pruning) instead of a fresh one.
    """
    tc = cfg.train
    train, val = splits["train"], splits["val"]
    if len(train) == 0 or len(val) == 0:
        raise EdgeECGError("training needs beats in both the train and the val split")
    seed_everything(tc.seed)
    device = select_device(tc.device)
    if init is None:
        model = build_model(cfg.model.name, cfg.data, **cfg.model.params)
        model.rr_norm.fit(torch.from_numpy(train.rr))
    else:
        model = copy.deepcopy(init)
    model.to(device)

    x_tr, rr_tr, y_tr = to_tensors(train, device)
    weight = class_weights(train.y, tc.imbalance_power).to(device) if tc.imbalance == "weighted_loss" else None
    steps_per_epoch = max(1, len(train) // tc.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, epochs=tc.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(tc.seed)

    result = TrainResult(model=model)
    best_f1, best_state, stale = -1.0, None, 0
    for epoch in range(1, tc.epochs + 1):
        model.train()
        order = _epoch_order(train.y, tc, gen)
        total = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{tc.epochs}", leave=False,
                   disable=not progress, unit="batch")
        for step in bar:
            idx = order[step * tc.batch_size:(step + 1) * tc.batch_size].to(device)
            x = _augment(x_tr[idx], gen, cfg.data.input_step) if tc.augment else x_tr[idx]
            logits = model(x, rr_tr[idx])
            if tc.loss == "focal":
                loss = focal_loss(logits, y_tr[idx], tc.focal_gamma, weight)
            else:
                loss = F.cross_entropy(logits, y_tr[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / (step + 1):.4f}")
        proba = predict_proba(model, val, device)
        val_loss = float(F.nll_loss(torch.log(torch.from_numpy(proba).clamp_min(1e-12)),
                                    torch.from_numpy(val.y)))
        val_f1 = classification_report(val.y, proba.argmax(1))["macro_f1"]
        result.history.append({"epoch": epoch, "train_loss": total / steps_per_epoch,
                               "val_loss": val_loss, "val_macro_f1": val_f1,
                               "lr": opt.param_groups[0]["lr"]})
        if progress:
            tqdm.write(f"epoch {epoch:3d}  train loss {total / steps_per_epoch:.4f}  "
                       f"val loss {val_loss:.4f}  val macro-F1 {val_f1:.2f} %")
        if val_f1 > best_f1:
            best_f1, best_state, stale, result.best_epoch = val_f1, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            stale += 1
            if stale >= tc.patience:
                break
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    return result
