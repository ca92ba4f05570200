"""The model families: ``hybrid`` (CNN + RR MLP), ``cnn`` (morphology only), ``cnn_lstm``.

They are built from a few int8-friendly parts only: Conv1d + BatchNorm (folded at export),
ReLU, MaxPool1d, Linear and concatenation (the LSTM is the exception, in ``cnn_lstm``).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_stack(in_channels: int, channels: tuple[int, ...], kernels: tuple[int, ...], dims: int = 1) -> nn.Sequential:
    """Conv -> BatchNorm -> ReLU -> MaxPool(2) per stage (1-D, or 2-D with ``dims=2``); halves every
    axis each stage."""
    conv, norm, pool = ((nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d) if dims == 1 else
                        (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d))
    layers: list[nn.Module] = []
    c_in = in_channels
    for c_out, k in zip(channels, kernels, strict=True):
        layers += [conv(c_in, c_out, k, padding=k // 2, bias=False), norm(c_out), nn.ReLU(), pool(2)]
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


class ConstrainedLinear(nn.Linear):
    """A dense layer whose effective weight is ``weight * mask + fixed`` (bias likewise), with row
    ``tie[0]``'s first ``tie[2]`` columns copied from row ``tie[1]``. :func:`plain` turns it into an
    ordinary ``nn.Linear`` holding the effective weights, which is what every exporter reads."""

    def __init__(self, in_features: int, out_features: int, weight_mask: torch.Tensor,
                 weight_fixed: torch.Tensor, bias_mask: torch.Tensor, tie: tuple[int, int, int] | None = None):
        super().__init__(in_features, out_features)
        self.register_buffer("weight_mask", weight_mask)
        self.register_buffer("weight_fixed", weight_fixed)
        self.register_buffer("bias_mask", bias_mask)
        self.tie = tie

    def effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight * self.weight_mask + self.weight_fixed
        if self.tie is not None:
            dst, src, n = self.tie
            row = torch.cat([w[src, :n], w[dst, n:]])[None]
            w = torch.cat([w[:dst], row, w[dst + 1:]])
        return w, self.bias * self.bias_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.effective()
        return nn.functional.linear(x, w, b)


def factorized_head(flat: int, hidden: int, rr_hidden: int, n_classes: int, morph_ns_units: int = 0,
                    rhythm_to_v: bool = False, rr_units: int = 0) -> nn.Sequential:
    """A ``Linear, ReLU, Linear`` head in which N versus S depends on the RR stream alone.

    The first layer's last ``rr_hidden`` units copy the RR stream's (non-negative) outputs; its other
    ``hidden`` units ("morphology units") mix the CNN's features with the RR stream's. The output layer
    gives the N and S logits the same weights on the morphology units, and V, F and Q no weight on
    the copied RR units. So ``logit_S - logit_N`` is a function of the RR features only: the shape
    (with the rhythm through the mixed units) decides supraventricular (N or S) against V, F and Q,
    the rhythm alone decides premature or not. With a handful of S patients to learn from, a
    morphology-based S/N boundary is a memory of those patients; this one is not. Exported, both
    layers are plain dense layers.
    ``morph_ns_units``: the last that many hidden units may also move S against N (0: none, the
    factorization above; ``hidden``: a plain head), a middle ground for cross-validation to rank.
    ``rhythm_to_v``: V's logit may weigh the copied RR units directly too (F and Q never do);
    N against S stays RR-only either way.
    ``rr_units`` > 0: instead of copying the RR stream's units, the first layer's last ``rr_units``
    units are a second dense layer of the RR stream (they read its units and nothing else), so N
    against S is a two-layer function of the RR features (question 32 of training/README.md), still
    with no other layer in the exported graph.
    """
    if not 0 <= morph_ns_units <= hidden:
        raise ValueError(f"morph_ns_units must be between 0 and hidden ({hidden}), got {morph_ns_units}")
    rr_rows = rr_units or rr_hidden
    width = hidden + rr_rows
    mask = torch.ones(width, flat + rr_hidden)
    mask[hidden:] = 0
    fixed = torch.zeros(width, flat + rr_hidden)
    bias_mask = torch.ones(width)
    if rr_units:
        mask[hidden:, flat:] = 1
    else:
        fixed[hidden:, flat:] = torch.eye(rr_hidden)
        bias_mask[hidden:] = 0
    first = ConstrainedLinear(flat + rr_hidden, width, mask, fixed, bias_mask)
    if rr_units:        # nn.Linear drew these rows for flat + rr_hidden inputs; they read rr_hidden
        with torch.no_grad():
            first.weight[hidden:] *= ((flat + rr_hidden) / rr_hidden) ** 0.5
    out_mask = torch.ones(n_classes, width)
    out_mask[2:, hidden:] = 0        # class order N, S, V, F, Q (edgeecg.processing.aami.CLASSES)
    if rhythm_to_v:
        out_mask[2, hidden:] = 1
    last = ConstrainedLinear(width, n_classes, out_mask, torch.zeros(n_classes, width), torch.ones(n_classes),
                             tie=(1, 0, hidden - morph_ns_units))
    return nn.Sequential(first, nn.ReLU(), last)


class Hybrid(nn.Module):
    """1-D CNN on the beat window, small MLP on the RR features, fused by a dense head.

    ``factorized``: N versus S is decided by the RR stream alone, or with ``morph_ns_units`` of the
    head's morphology units too, and ``rhythm_to_v`` lets V's logit weigh the rhythm; ``rr_units``
    gives the RR stream a second layer inside the head (see :func:`factorized_head`).
    ``logit_offsets``: added to the logits in evaluation only (a class-prior shift of the decision
    thresholds; export folds it into the last bias). Training never sees it, else the last bias would
    learn it away.
    """

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5,
                 channels=(8, 16, 16, 16), kernels=(7, 5, 5, 5), rr_hidden: int = 8,
                 hidden: int = 16, dropout: float = 0.1, factorized: bool = True, logit_offsets=None,
                 morph_ns_units: int = 0, rhythm_to_v: bool = False, rr_units: int = 0):
        super().__init__()
        self.rr_norm = RRStandardiser(n_rr)
        self.features = conv_stack(in_channels, tuple(channels), tuple(kernels))
        flat = channels[-1] * (window >> len(channels))
        self.rr_mlp = nn.Sequential(nn.Linear(n_rr, rr_hidden), nn.ReLU())
        self.flat, self.hidden = flat, hidden
        self.rr_only_ns = factorized and morph_ns_units == 0      # N against S from the RR features alone
        if factorized:
            self.morph_dropout = nn.Dropout(dropout)
            self.head = factorized_head(flat, hidden, rr_hidden, n_classes, morph_ns_units, rhythm_to_v, rr_units)
        else:
            self.morph_dropout = nn.Identity()
            self.head = nn.Sequential(nn.Linear(flat + rr_hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, n_classes))
        offsets = torch.zeros(n_classes) if logit_offsets is None else torch.tensor(logit_offsets, dtype=torch.float32)
        if offsets.shape != (n_classes,):
            raise TypeError(f"logit_offsets needs {n_classes} values, got {offsets.numel()}")
        self.register_buffer("logit_offsets", offsets)

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        morph = self.morph_dropout(torch.flatten(self.features(x), 1))
        rhythm = self.rr_mlp(self.rr_norm(rr))
        logits = self.head(torch.cat([morph, rhythm], dim=1))
        return logits if self.training else logits + self.logit_offsets

    def ns_logit(self, rr: torch.Tensor) -> torch.Tensor:
        """``logit_S - logit_N`` from the RR features alone: with the factorized head (``rr_only_ns``)
        it is the same for every beat window."""
        if not self.rr_only_ns:
            raise ValueError("N against S depends on the beat too: the head is not factorized, or morph_ns_units > 0")
        first, last = self.head[0], self.head[2]
        w1, b1 = first.effective()
        w2, b2 = last.effective()
        units = torch.relu(nn.functional.linear(self.rr_mlp(self.rr_norm(rr)), w1[self.hidden:, self.flat:],
                                                b1[self.hidden:]))
        offset = 0.0 if self.training else self.logit_offsets[1] - self.logit_offsets[0]
        return units @ (w2[1, self.hidden:] - w2[0, self.hidden:]) + (b2[1] - b2[0]) + offset

    def ns_threshold(self) -> nn.Parameter:
        """The last layer's biases, whose N and S entries set :meth:`ns_logit`'s threshold."""
        return self.head[2].bias

    def rhythm_entries(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """The parameters, each with a mask of its entries, that shape :meth:`ns_logit` (all but its
        threshold, the last layer's N and S biases): the RR stream, the head's RR rows, and the N and S
        weights on them."""
        first, last = self.head[0], self.head[2]
        rows = torch.zeros_like(first.weight, dtype=torch.bool)
        rows[self.hidden:] = True
        row_bias = torch.zeros_like(first.bias, dtype=torch.bool)
        row_bias[self.hidden:] = True
        ns_weights = torch.zeros_like(last.weight, dtype=torch.bool)
        ns_weights[:2, self.hidden:] = True        # class order N, S, V, F, Q
        return ([(p, torch.ones_like(p, dtype=torch.bool)) for p in self.rr_mlp.parameters()]
                + [(first.weight, rows), (first.bias, row_bias), (last.weight, ns_weights)])


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
    """CNN front end, an LSTM over the downsampled sequence, then fused with the RR MLP.
    ``bidirectional`` adds a backward LSTM (it reads the end of the window first: ``cnn_bilstm``)."""

    def __init__(self, window: int, in_channels: int, n_rr: int, n_classes: int = 5,
                 channels=(8, 16, 16), kernels=(7, 5, 5), lstm_hidden: int = 16, rr_hidden: int = 8,
                 dropout: float = 0.1, bidirectional: bool = False):
        super().__init__()
        self.rr_norm = RRStandardiser(n_rr)
        self.features = conv_stack(in_channels, tuple(channels), tuple(kernels))
        self.lstm = nn.LSTM(channels[-1], lstm_hidden, batch_first=True, bidirectional=bidirectional)
        self.rr_mlp = nn.Sequential(nn.Linear(n_rr, rr_hidden), nn.ReLU())
        directions = 2 if bidirectional else 1
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(directions * lstm_hidden + rr_hidden, n_classes))

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        seq = self.features(x).transpose(1, 2)          # (batch, time, channels)
        _, (h, _) = self.lstm(seq)                      # h: (directions, batch, hidden)
        last = [h[-2], h[-1]] if self.lstm.bidirectional else [h[-1]]
        rhythm = self.rr_mlp(self.rr_norm(rr))
        return self.head(torch.cat([*last, rhythm], dim=1))


def plain(model: nn.Module) -> nn.Module:
    """A copy whose constrained layers are ordinary ``nn.Linear`` layers and whose logit offsets are
    folded into the last bias: the same function, as plain layers for export and pruning."""
    import copy

    model = copy.deepcopy(model)
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, ConstrainedLinear):
                w, b = child.effective()
                layer = nn.Linear(child.in_features, child.out_features)
                with torch.no_grad():
                    layer.weight.copy_(w)
                    layer.bias.copy_(b)
                setattr(parent, name, layer)
    offsets = getattr(model, "logit_offsets", None)
    if offsets is not None and bool(offsets.any()):
        last = [m for m in model.head if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            last.bias += offsets
            offsets.zero_()
    return model.eval()
