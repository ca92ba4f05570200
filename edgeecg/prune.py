"""Structured pruning: whole conv channels are removed, so every exported artifact really shrinks.

A channel's importance is ``|BatchNorm gamma| * L1(filter)``: the least important ``fraction`` of
each conv stage's output channels go, with the matching input channels of the next conv and the
matching columns of the first dense layer. The smaller model is then fine-tuned for a few epochs
on DS1 training beats, with early stopping on the DS1 validation beats, as training is.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from edgeecg.config import Config
from edgeecg.data import BeatSet
from edgeecg.errors import EdgeECGError
from edgeecg.models import build_model

PRUNABLE = ("hybrid", "cnn")
STAGE = 4   # conv_stack: Conv1d, BatchNorm1d, ReLU, MaxPool1d per stage


def _stages(model: nn.Module) -> list[tuple[nn.Conv1d, nn.BatchNorm1d]]:
    f = model.features
    return [(f[i], f[i + 1]) for i in range(0, len(f), STAGE)]


def conv_channels(model: nn.Module) -> list[int]:
    """Output channels of each conv stage."""
    return [conv.out_channels for conv, _ in _stages(model)]


def channel_importance(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> torch.Tensor:
    return bn.weight.detach().abs() * conv.weight.detach().abs().sum(dim=(1, 2))


def prune_channels(model: nn.Module, cfg: Config, fraction: float) -> tuple[nn.Module, Config]:
    """A copy of ``model`` without the least important ``fraction`` of each conv stage's channels."""
    if cfg.model.name not in PRUNABLE:
        raise EdgeECGError(f"--prune supports {', '.join(PRUNABLE)}, not {cfg.model.name!r}")
    if not 0 < fraction < 1:
        raise EdgeECGError(f"--prune {fraction}: the fraction of channels to remove must be in (0, 1)")
    keep = []
    for conv, bn in _stages(model):
        n_keep = max(1, math.ceil(conv.out_channels * (1 - fraction)))
        top = torch.topk(channel_importance(conv, bn), n_keep).indices
        keep.append(torch.sort(top).values)
    params = dict(cfg.model.params, channels=[len(k) for k in keep])
    new_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, params=params))
    pruned = build_model(cfg.model.name, cfg.data, **params)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    prev = torch.arange(cfg.data.channels)
    for i, k in enumerate(keep):
        conv, bn = f"features.{STAGE * i}", f"features.{STAGE * i + 1}"
        state[f"{conv}.weight"] = state[f"{conv}.weight"][k][:, prev]
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"{bn}.{name}"] = state[f"{bn}.{name}"][k]
        prev = k
    length = cfg.data.window >> len(keep)
    old_flat = _stages(model)[-1][0].out_channels * length
    cols = (prev[:, None] * length + torch.arange(length)).reshape(-1)      # flatten is channel-major
    extra = state["head.0.weight"].shape[1] - old_flat                      # the RR MLP's outputs
    cols = torch.cat([cols, old_flat + torch.arange(extra)])
    for key in [k for k, v in state.items() if k.startswith("head.0.") and v.dim() == 2]:
        state[key] = state[key][:, cols]          # the weight, and a factorized head's mask and fixed part
    pruned.load_state_dict(state)
    return pruned.eval(), new_cfg


def prune_and_fine_tune(model: nn.Module, cfg: Config, splits: dict[str, BeatSet], fraction: float,
                        epochs: int, progress: bool = False) -> tuple[nn.Module, Config]:
    """Prune, then fine-tune at a tenth of the training learning rate; returns the best val epoch."""
    from edgeecg.train import train_model

    pruned, new_cfg = prune_channels(model, cfg, fraction)
    tune = dataclasses.replace(new_cfg, train=dataclasses.replace(cfg.train, epochs=epochs, lr=cfg.train.lr / 10,
                                                                  patience=max(epochs, 1)))
    result = train_model(tune, splits, progress=progress, init=pruned)
    return result.model, new_cfg
