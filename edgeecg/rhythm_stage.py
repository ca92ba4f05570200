"""A first training stage of its own for the factorized head's N-against-S function (``[train] rhythm_epochs``).

With the factorized head, ``logit_S - logit_N`` is a small function of the RR features alone
(:meth:`edgeecg.models.nets.Hybrid.ns_logit`). Trained inside the network it gets the network's few
thousand steps on class-balanced draws, and ranks S against N worse than a small MLP fitted to the same
features does (question 32 of training/README.md). This stage fits it first, on the N and S training
beats as they come (unweighted), with binary cross-entropy for ``rhythm_epochs`` passes; the network's
training then keeps its shape fixed (:class:`FrozenEntries`) and moves only its threshold, the last layer's N
and S biases, with everything else.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeecg.config import RHYTHM_STAGE_NEEDS, TrainConfig
from edgeecg.data import BeatSet
from edgeecg.errors import EdgeECGError


BATCH = 1024    # for its cost, a quarter of batches of 256 (15 s a fold for 60 passes on 2 cores), and SVDB's
                # figure: out of fold on the pool, AP of S against N DS1 45.8 / SVDB 64.1 against 48.6 / 63.3 for
                # batches of 256 (`python training/rr_capacity.py --sizes --stage 60 --stage-batch 1024 256`)


def fit_rhythm(model: nn.Module, train: BeatSet, tc: TrainConfig, device: torch.device, batch: int = BATCH) -> None:
    """Fit ``model.ns_logit`` to the N (0) and S (1) beats of ``train`` for ``tc.rhythm_epochs`` passes:
    Adam at ``tc.lr``, no weight decay (so that the entries it does not reach stay as drawn)."""
    if not getattr(model, "rr_only_ns", False):
        raise EdgeECGError(RHYTHM_STAGE_NEEDS)
    n_or_s = train.y <= 1
    if not n_or_s.any():
        return
    rr = torch.from_numpy(train.rr[n_or_s]).to(device)
    target = torch.from_numpy((train.y[n_or_s] == 1).astype(np.float32)).to(device)
    params = list({id(p): p for p, _ in model.rhythm_entries()}.values()) + [model.ns_threshold()]
    opt = torch.optim.Adam(params, lr=tc.lr)
    gen = torch.Generator().manual_seed(tc.seed)
    for _ in range(tc.rhythm_epochs):
        order = torch.randperm(len(rr), generator=gen).to(device)
        for start in range(0, len(rr), batch):
            idx = order[start:start + batch]
            loss = F.binary_cross_entropy_with_logits(model.ns_logit(rr[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


class FrozenEntries:
    """Keeps the entries of ``model.rhythm_entries()`` at their present values: call :meth:`restore`
    after every optimiser step."""

    def __init__(self, model: nn.Module):
        self.entries = [(p, mask.to(p.device), p.detach().clone()) for p, mask in model.rhythm_entries()]

    @torch.no_grad()
    def restore(self) -> None:
        for p, mask, value in self.entries:
            p.copy_(torch.where(mask, value, p))
