"""A trained model as plain float arrays, BatchNorm folded into the convolutions and the RR
standardiser folded into the first RR layer: what every exporter and the C generator start from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from edgeecg.errors import EdgeECGError
from edgeecg.models.nets import CNN, Hybrid, plain


@dataclass
class FoldedModel:
    """Float weights of a conv stack + dense head. Conv weights are (out, in, k)."""

    window: int
    in_channels: int
    n_rr: int
    convs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)   # (w, b) per stage
    rr_dense: tuple[np.ndarray, np.ndarray] | None = None                       # (w (out,in), b)
    head: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)     # dense layers

    @property
    def flat_length(self) -> int:
        return self.window >> len(self.convs)

    def layer_names(self) -> list[str]:
        """Weight layers in the order they run: ``conv{i}``, ``rr_dense``, ``dense{i}``."""
        return ([f"conv{i}" for i in range(len(self.convs))] + (["rr_dense"] if self.rr_dense is not None else [])
                + [f"dense{i}" for i in range(len(self.head))])

    def _slot(self, name: str) -> tuple[list, int]:
        """The list holding a conv or dense layer, and its index there."""
        index = int(name.removeprefix("conv").removeprefix("dense"))
        return (self.convs if name.startswith("conv") else self.head), index

    def layer(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(weights, bias)`` of a layer named as in :meth:`layer_names`."""
        if name == "rr_dense":
            return self.rr_dense
        stack, i = self._slot(name)
        return stack[i]

    def set_bias(self, name: str, bias: np.ndarray) -> None:
        """Replace a layer's bias (kept in the bias's dtype)."""
        w, b = self.layer(name)
        new = (w, np.asarray(bias, dtype=b.dtype))
        if name == "rr_dense":
            self.rr_dense = new
        else:
            stack, i = self._slot(name)
            stack[i] = new


def fold_bn(conv, bn) -> tuple[np.ndarray, np.ndarray]:
    """A conv (1-D or 2-D, no bias) followed by an eval-mode BatchNorm as one conv's weights and bias."""
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().numpy()
    w = conv.weight.detach().numpy() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    b = bn.bias.detach().numpy() - bn.running_mean.detach().numpy() * scale
    return w.astype(np.float32), b.astype(np.float32)


def fold_rr_dense(model) -> tuple[np.ndarray, np.ndarray]:
    """The RR standardiser folded into the first dense layer of the RR stream: (weights, bias)."""
    lin = model.rr_mlp[0]
    mean, std = model.rr_norm.mean.numpy(), model.rr_norm.std.numpy()
    w = lin.weight.detach().numpy() / std[None, :]
    return w.astype(np.float32), (lin.bias.detach().numpy() - w @ mean).astype(np.float32)


def fold(model: nn.Module) -> FoldedModel:
    """Fold a :class:`Hybrid` or :class:`CNN` (eval mode) into a :class:`FoldedModel`."""
    if not isinstance(model, (Hybrid, CNN)):
        raise EdgeECGError(f"int8 export supports the hybrid and cnn models, not {type(model).__name__}")
    model = plain(model)
    convs = [m for m in model.features if isinstance(m, nn.Conv1d)]
    norms = [m for m in model.features if isinstance(m, nn.BatchNorm1d)]
    first = convs[0]
    # window is not stored in the model: recover it from the first dense layer's width
    head_linears = [m for m in model.head if isinstance(m, nn.Linear)]
    n_rr = model.rr_norm.mean.numel()
    rr_hidden = model.rr_mlp[0].out_features if isinstance(model, Hybrid) else 0
    flat = head_linears[0].in_features - rr_hidden
    window = (flat // convs[-1].out_channels) << len(convs)
    out = FoldedModel(window=window, in_channels=first.in_channels, n_rr=n_rr)
    out.convs = [fold_bn(conv, bn) for conv, bn in zip(convs, norms, strict=True)]
    if isinstance(model, Hybrid):
        out.rr_dense = fold_rr_dense(model)
    out.head = [(m.weight.detach().numpy().astype(np.float32), m.bias.detach().numpy().astype(np.float32))
                for m in head_linears]
    return out


BATCH = 1024     # beats per pass of :func:`forward`: each layer's im2col array stays a few MB


def forward(fm: FoldedModel, x: np.ndarray, rr: np.ndarray, rounding=None, batch: int | None = BATCH) -> np.ndarray:
    """Float reference of the folded graph, inputs (n, C, W) and (n, K): logits (n, classes),
    ``batch`` beats at a time (every beat is computed on its own); ``batch=None``: all at once, for
    a ``rounding`` hook that looks across beats (:mod:`edgeecg.quant.bias_correction` averages).

    ``rounding(point, array) -> array``, if given, is applied at each named point where the int8
    graph rounds: ``beat input``, ``rr input``, ``conv{i} weights``/``output``, ``rr_dense
    weights``/``output``, ``dense{i} weights``/``output`` (see :mod:`edgeecg.quant.budget`). It
    also sees each layer's pre-activation (weighted sum + bias) as ``{layer} sum``, which the int8
    graph keeps in int32 and does not round (:mod:`edgeecg.quant.bias_correction` reads it).
    """
    if batch is not None and len(x) > batch:
        return np.concatenate([forward(fm, x[i:i + batch], None if rr is None else rr[i:i + batch], rounding, None)
                               for i in range(0, len(x), batch)])

    def r(point: str, a: np.ndarray) -> np.ndarray:
        return a if rounding is None else rounding(point, a)

    h = r("beat input", x.astype(np.float64))
    for i, (w, b) in enumerate(fm.convs):
        w, k = r(f"conv{i} weights", w), w.shape[2]
        pad = np.pad(h, ((0, 0), (0, 0), (k // 2, k // 2)))
        cols = np.stack([pad[:, :, j:j + h.shape[2]] for j in range(k)], axis=-1)   # n, C, L, k
        cols = cols.transpose(0, 2, 1, 3).reshape(len(h), h.shape[2], -1)          # n, L, C*k
        conv = (cols @ w.reshape(len(w), -1).T).transpose(0, 2, 1)                  # n, out, L
        h = r(f"conv{i} output", np.maximum(r(f"conv{i} sum", conv + b[None, :, None]), 0))
        h = h.reshape(h.shape[0], h.shape[1], -1, 2).max(axis=3)
    z = h.reshape(h.shape[0], -1)
    if fm.rr_dense is not None:
        w, b = fm.rr_dense
        rr_sum = r("rr input", rr.astype(np.float64)) @ r("rr_dense weights", w).T + b
        hidden = np.maximum(r("rr_dense sum", rr_sum), 0)
        z = np.concatenate([z, r("rr_dense output", hidden)], axis=1)
    for i, (w, b) in enumerate(fm.head):
        z = r(f"dense{i} sum", z @ r(f"dense{i} weights", w).T + b)
        if i < len(fm.head) - 1:
            z = np.maximum(z, 0)
        z = r(f"dense{i} output", z)
    return z
