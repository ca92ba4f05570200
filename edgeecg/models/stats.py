"""Parameter and multiply-accumulate counts of a model for one beat."""

from __future__ import annotations

import math

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm included; it folds into the convolutions at export)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def macs_per_beat(model: nn.Module, window: int, in_channels: int, n_rr: int) -> int:
    """Multiply-accumulates of Conv1d, Conv2d, Linear and LSTM layers for one beat (batch 1)."""
    total = 0

    def conv(m: nn.Conv1d | nn.Conv2d, _inp, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    def lstm(m: nn.LSTM, inp, _out):
        nonlocal total
        steps = inp[0].shape[1] if m.batch_first else inp[0].shape[0]
        total += steps * 4 * m.hidden_size * (m.input_size + m.hidden_size) * (2 if m.bidirectional else 1)

    hooks = []
    for m in model.modules():
        for kind, fn in (((nn.Conv1d, nn.Conv2d), conv), (nn.Linear, linear), (nn.LSTM, lstm)):
            if isinstance(m, kind):
                hooks.append(m.register_forward_hook(fn))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, window), torch.ones(1, n_rr))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total
