"""Attributions of a beat's class, from `captum <https://captum.ai>`_ rather than hand-written gradients:

* **Grad-CAM** (:class:`captum.attr.LayerGradCam`) on the model's *last* ``Conv1d``: the layer's
  output channels weighted by the mean gradient of the class logit, summed, ReLU'd (positive
  evidence only) and upsampled linearly to the beat window. One curve per beat (it mixes the
  input channels), shown as shading behind the beat.
* **Integrated gradients** (:class:`captum.attr.IntegratedGradients`) on both inputs at once: every
  sample of every input channel and every RR feature gets a share of ``logit(beat) - logit(baseline)``
  (completeness; captum's convergence delta is kept in ``explain.json``). The baseline is a flat
  window (zeros: the z-scored beat's mean, and "no difference from the template" for the template
  channel) and the RR features at their training mean (the model's ``rr_norm.mean`` buffer, i.e. the
  patient's usual rhythm), so an RR attribution says how much *this* beat's timing moved the logit.
  Shown as the colour of the beat line and as bars beside it.

With the ``hybrid`` recipe's factorized head, N versus S is decided by the RR stream alone
(:func:`edgeecg.models.nets.factorized_head`): the window's attributions of ``logit_S - logit_N`` are
exactly zero, which ``explain.json`` reports (``s_vs_n_window_attribution``) as a check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.processing.aami import CLASSES

IG_STEPS = 32


def last_conv(model):
    """Name and module of the model's last ``Conv1d`` (the Grad-CAM layer)."""
    from torch import nn

    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv1d)]
    if not convs:
        raise EdgeECGError(f"{type(model).__name__}: no Conv1d layer for Grad-CAM")
    return convs[-1]


def _targets(target, n: int):
    import torch

    t = torch.as_tensor(np.broadcast_to(np.asarray(target, dtype=np.int64), (n,)).copy())
    return t


def gradcam(model, x: np.ndarray, rr: np.ndarray, target, relu: bool = True) -> np.ndarray:
    """Grad-CAM of class ``target`` (one int, or one per beat) on the last conv layer, upsampled
    to the window: shape (n, window). ``relu``: keep positive evidence only (Grad-CAM's definition)."""
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    _, layer = last_conv(model)
    xt, rt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(rr, dtype=torch.float32)
    att = LayerGradCam(model, layer).attribute((xt, rt), target=_targets(target, len(xt)), relu_attributions=relu)
    up = LayerAttribution.interpolate(att, (xt.shape[-1],), interpolate_mode="linear")
    return up[:, 0].detach().numpy().astype(np.float32)


def rr_baseline(model, rr: np.ndarray) -> np.ndarray:
    """The RR features at the training mean (standardised zero), or zeros for a model without them."""
    norm = getattr(model, "rr_norm", None)
    if norm is not None and hasattr(norm, "mean"):
        return np.broadcast_to(norm.mean.detach().numpy(), rr.shape).astype(np.float32).copy()
    return np.zeros_like(rr, dtype=np.float32)


def integrated_gradients(
    model, x: np.ndarray, rr: np.ndarray, target, steps: int = IG_STEPS, forward=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated gradients of class ``target`` for the window and the RR features:
    ``(ig_x (n, C, W), ig_rr (n, K), delta (n,))``; ``delta`` is captum's completeness error.
    ``forward``: another function of ``(x, rr)`` to explain (default: the model's logits)."""
    import torch
    from captum.attr import IntegratedGradients

    model.eval()
    xt, rt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(rr, dtype=torch.float32)
    base = (torch.zeros_like(xt), torch.as_tensor(rr_baseline(model, rr)))
    ig = IntegratedGradients(forward or model)
    kwargs = {} if forward is not None and target is None else {"target": _targets(target, len(xt))}
    (ax, ar), delta = ig.attribute(
        (xt, rt), baselines=base, n_steps=steps, internal_batch_size=1024, return_convergence_delta=True, **kwargs
    )
    return (
        ax.detach().numpy().astype(np.float32),
        ar.detach().numpy().astype(np.float32),
        delta.detach().numpy().astype(np.float32),
    )


def probabilities(model, x: np.ndarray, rr: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Softmax of the model's logits, (n, 5)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(
                torch.softmax(model(torch.as_tensor(x[i : i + batch]), torch.as_tensor(rr[i : i + batch])), 1).numpy()
            )
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


@dataclass
class Attribution:
    """Attributions of a set of beats for one target class each."""

    target: np.ndarray  # (n,) class explained
    cam: np.ndarray  # (n, W) Grad-CAM, last conv layer, upsampled
    ig_x: np.ndarray  # (n, C, W) integrated gradients of the window
    ig_rr: np.ndarray  # (n, K) integrated gradients of the RR features
    delta: np.ndarray  # (n,) IG completeness error


def attribute(model, x: np.ndarray, rr: np.ndarray, target, steps: int = IG_STEPS, chunk: int = 256) -> Attribution:
    """Grad-CAM and integrated gradients of ``target`` for beats ``x``/``rr``, in chunks."""
    target = np.broadcast_to(np.asarray(target, dtype=np.int64), (len(x),)).copy()
    parts = []
    for i in range(0, len(x), chunk):
        s = slice(i, i + chunk)
        cam = gradcam(model, x[s], rr[s], target[s])
        ig_x, ig_rr, delta = integrated_gradients(model, x[s], rr[s], target[s], steps)
        parts.append((cam, ig_x, ig_rr, delta))
    if not parts:
        w = x.shape[-1]
        return Attribution(
            target, np.zeros((0, w), np.float32), np.zeros_like(x), np.zeros_like(rr), np.zeros(0, np.float32)
        )
    cam, ig_x, ig_rr, delta = (np.concatenate(p) for p in zip(*parts))
    return Attribution(target, cam, ig_x, ig_rr, delta)


def s_vs_n_window_attribution(model, x: np.ndarray, rr: np.ndarray, steps: int = IG_STEPS) -> float:
    """Largest |integrated gradient| of ``logit_S - logit_N`` over the window samples: 0 for a model
    whose N-versus-S decision depends on the RR features only (the factorized ``hybrid`` head)."""
    if not len(x):
        return 0.0

    def diff(xx, rr_):
        out = model(xx, rr_)
        return out[:, 1] - out[:, 0]

    ig_x, _, _ = integrated_gradients(model, x, rr, None, steps, forward=diff)
    return float(np.abs(ig_x).max())
