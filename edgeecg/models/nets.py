"""The model families: ``hybrid`` (CNN + RR MLP), ``cnn`` (morphology only), ``cnn_lstm``.

They are built from a few int8-friendly parts only: Conv1d + BatchNorm (folded at export),
ReLU, MaxPool1d, Linear and concatenation (the LSTM is the exception, in ``cnn_lstm``).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_stack(in_channels: int, channels: tuple[int, ...], kernels: tuple[int, ...]) -> nn.Sequential:
    """Conv1d -> BatchNorm -> ReLU -> MaxPool(2) per stage; halves the length each stage."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for c_out, k in zip(channels, kernels, strict=True):
        layers += [nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm1d(c_out),
                   nn.ReLU(), nn.MaxPool1d(2)]
        c_in = c_out
    return nn.Sequential(*layers)


class RRStandardiser(nn.Module):
    """``(rr - mean) / std`` with the training set's statistics kept as buffers."""

    def __init__(self, n_rr: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_rr))
        self.register_buffer("std", torch.ones(n_rr))

    def fit(self, rr: torch.Tensor) -> None:
        self.mean.copy_(rr.mean(dim=0))
        self.std.copy_(rr.std(dim=0).clamp_min(1e-3))

    def forward(self, rr: torch.Tensor) -> torch.Tensor:
        return (rr - self.mean) / self.std


class Hybrid(nn.Module):
    """1-D CNN on the beat window, small MLP on the RR features, fused by a dense head."""

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5,
                 channels=(8, 16, 16, 16), kernels=(7, 5, 5, 5), rr_hidden: int = 8,
                 hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.rr_norm = RRStandardiser(n_rr)
        self.features = conv_stack(in_channels, tuple(channels), tuple(kernels))
        flat = channels[-1] * (window >> len(channels))
        self.rr_mlp = nn.Sequential(nn.Linear(n_rr, rr_hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(flat + rr_hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        morph = torch.flatten(self.features(x), 1)
        rhythm = self.rr_mlp(self.rr_norm(rr))
        return self.head(torch.cat([morph, rhythm], dim=1))


class CNN(nn.Module):
    """Morphology only: the RR input is accepted and ignored (same call signature)."""

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5,
                 channels=(8, 16, 16, 16), kernels=(7, 5, 5, 5), hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.rr_norm = RRStandardiser(n_rr)
        self.features = conv_stack(in_channels, tuple(channels), tuple(kernels))
        flat = channels[-1] * (window >> len(channels))
        self.head = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class CNNLSTM(nn.Module):
    """CNN front end, an LSTM over the downsampled sequence, then fused with the RR MLP."""

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5,
                 channels=(8, 16, 16), kernels=(7, 5, 5), lstm_hidden: int = 16, rr_hidden: int = 8,
                 dropout: float = 0.1):
        super().__init__()
        self.rr_norm = RRStandardiser(n_rr)
        self.features = conv_stack(in_channels, tuple(channels), tuple(kernels))
        self.lstm = nn.LSTM(channels[-1], lstm_hidden, batch_first=True)
        self.rr_mlp = nn.Sequential(nn.Linear(n_rr, rr_hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(lstm_hidden + rr_hidden, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        seq = self.features(x).transpose(1, 2)          # (batch, time, channels)
        _, (h, _) = self.lstm(seq)
        rhythm = self.rr_mlp(self.rr_norm(rr))
        return self.head(torch.cat([h[-1], rhythm], dim=1))
