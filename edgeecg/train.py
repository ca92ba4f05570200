"""The training loop: AdamW, a constant learning rate after a warm-up (or one-cycle), an exponential
moving average of the weights, class-imbalance handling and augmentation; seeded and deterministic on
one machine. With validation beats it keeps the best epoch by macro-F1; without (the default recipe,
whose epoch count ``edgeecg cv`` chose) it trains every epoch and keeps the last.

Multi-label sets (``y`` of shape (n, labels): PTB-XL) train with one sigmoid per label and binary
cross-entropy, and stop early on validation macro-ROC-AUC. Under ``torchrun`` the model is wrapped in
``DistributedDataParallel`` (see :mod:`edgeecg.distributed`): every rank draws the same epoch order
from the same seed and takes its own share of each global batch (``batch_size`` is the global
batch), so the class-balanced sampler is split across ranks deterministically.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from edgeecg import distributed
from edgeecg.config import Config, TrainConfig, rr_feature_names
from edgeecg.data import BeatSet
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import classification_report, multilabel_report
from edgeecg.models import build_model
from edgeecg.processing.aami import CLASSES
from edgeecg.processing.beats import round_to_input_grid
from edgeecg.rhythm_stage import FrozenEntries, fit_rhythm

MAX_CLASS_WEIGHT = 50.0   # caps the weight of classes with very few training beats (Q in DS1)


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def class_weights(y: np.ndarray, power: float | np.ndarray, n_classes: int = len(CLASSES)) -> torch.Tensor:
    """``(n_max / n_class) ** power``: 1 for the largest class, capped for tiny classes; ``power`` is one
    number or one per class. A multi-label ``y`` (n, labels) counts each label's positives."""
    counts = (y.sum(axis=0) if y.ndim == 2 else np.bincount(y, minlength=n_classes)).astype(np.float64)
    w = (counts.max() / np.maximum(counts, 1.0)) ** power
    return torch.tensor(np.minimum(w, MAX_CLASS_WEIGHT), dtype=torch.float32)


def sampler_powers(cfg: TrainConfig) -> np.ndarray:
    """Each AAMI class's power in the sampler's class weight: ``imbalance_power``, or the class's own in
    ``class_powers`` (``{F = 0.5}``: F's weight against N's stays as at 0.5 while the others' fall)."""
    powers = np.full(len(CLASSES), cfg.imbalance_power)
    for name, power in cfg.class_powers.items():
        powers[CLASSES.index(name)] = power
    return powers


def logit_adjustment(y: np.ndarray, tau: float, n_classes: int = len(CLASSES)) -> torch.Tensor:
    """``tau * log(prior)`` per class, the prior from the training labels ``y`` (a class without beats
    counts one): added to the logits inside the loss only (Menon et al., 2021), so a network trained on
    beats drawn as they come aims at the decisions of the sampler at power ``tau`` (without the sampler's
    cap on a class weight, :data:`MAX_CLASS_WEIGHT`)."""
    counts = np.maximum(np.bincount(y, minlength=n_classes).astype(np.float64), 1.0)
    return torch.tensor(tau * np.log(counts / counts.sum()), dtype=torch.float32)


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
    """Softmax class probabilities of every beat, shape (n, 5); for a multi-label set (``y`` of shape
    (n, labels)) the sigmoid of each output instead."""
    model.eval()
    device = torch.device(device)
    squash = torch.sigmoid if beats.y.ndim == 2 else (lambda z: torch.softmax(z, dim=1))
    out = []
    for i in range(0, len(beats), batch_size):
        x = torch.from_numpy(beats.x[i:i + batch_size]).to(device)
        rr = torch.from_numpy(beats.rr[i:i + batch_size]).to(device)
        out.append(squash(model(x, rr)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def epoch_size(n: int, cfg: TrainConfig) -> int:
    """Beats drawn per epoch: ``epoch_beats`` where set (a pool of several databases), else all ``n``."""
    return cfg.epoch_beats or n


def patient_shares(y: np.ndarray, record: np.ndarray, power: float) -> np.ndarray:
    """Per beat, ``n ** -power`` where ``n`` is how many beats of its class its patient holds, rescaled
    so that every class keeps its total weight. ``power`` 0: every beat alike; 1: every patient that has
    a class weighs the same within it (a record with 1,818 S beats as much as one with 5)."""
    share = np.ones(len(y))
    for c in np.unique(y):
        m = y == c
        _, which, count = np.unique(record[m], return_inverse=True, return_counts=True)
        w = count[which].astype(np.float64) ** -power
        share[m] = w * (m.sum() / w.sum())
    return share


def regular_s(beats: BeatSet, cfg: Config) -> np.ndarray:
    """The S beats whose pre-RR over the regular RR is at least the regular band's lower edge
    (``[data] regular_rr_band``): not early against the patient's rhythm, so the factorized head's
    RR-only S-against-N decision cannot learn them (runs of SVT the estimate has locked onto, atrial
    bigeminy a few % early); ``drop_regular_s`` leaves them out of training."""
    names = rr_feature_names(cfg.data)
    if "pre_over_regular" not in names:
        raise EdgeECGError("[train] drop_regular_s needs the RR feature pre_over_regular ([data] rr_features)")
    return (beats.y == 1) & (beats.rr[:, names.index("pre_over_regular")] >= cfg.data.regular_rr_band[0])


def _epoch_order(y: np.ndarray, cfg: TrainConfig, gen: torch.Generator,
                 shares: np.ndarray | None = None) -> torch.Tensor:
    """One epoch's beat indices; ``shares`` (:func:`patient_shares`, single-label sampler only) scale each
    beat's class weight."""
    n = epoch_size(len(y), cfg)
    if cfg.imbalance != "sampler":      # every beat once, in a new order (again where an epoch holds more)
        return torch.cat([torch.randperm(len(y), generator=gen) for _ in range(-(-n // len(y)))])[:n]
    if y.ndim == 2:     # multi-label: an example weighs as much as its rarest label (1 without labels)
        w = (torch.from_numpy(y.astype(np.float32)) * class_weights(y, cfg.imbalance_power)).amax(dim=1).clamp_min(1.0)
        return torch.multinomial(w, n, replacement=True, generator=gen)
    w = class_weights(y, sampler_powers(cfg))[torch.from_numpy(y)]
    if shares is not None:
        w = w * torch.from_numpy(shares.astype(np.float32))
    return torch.multinomial(w, n, replacement=True, generator=gen)


def _stretch(x: torch.Tensor, centre: int, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Each beat (all channels alike) resampled in time about its R-peak by a factor in
    ``1 ± amount``: the same beat at another heart rate (linear interpolation, edges held)."""
    n, _, w = x.shape
    factor = 1 + amount * (2 * torch.rand(n, 1, generator=gen) - 1)
    pos = (centre + (torch.arange(w)[None, :] - centre) / factor).clamp(0, w - 1).to(x.device)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=w - 1)
    frac = (pos - lo).unsqueeze(1)
    take = lambda i: torch.gather(x, 2, i.unsqueeze(1).expand(-1, x.shape[1], -1))  # noqa: E731
    return take(lo) * (1 - frac) + take(hi) * frac


SMOOTH_KERNEL = (1.0, 4.0, 6.0, 4.0, 1.0)   # binomial low-pass: -3 dB at 0.17 fs (30 Hz at 180 Hz)


def _smooth(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """``share`` of the beats (every channel) low-pass filtered by :data:`SMOOTH_KERNEL`: a front end
    or database with less bandwidth (SVDB's 128 Hz recordings) than MIT-BIH's."""
    k = torch.tensor(SMOOTH_KERNEL, dtype=x.dtype, device=x.device) / sum(SMOOTH_KERNEL)
    c = x.shape[1]
    low = nn.functional.conv1d(nn.functional.pad(x, (2, 2), mode="replicate"), k.repeat(c, 1, 1), groups=c)
    return _for_share(x, low, share, gen)


def _for_share(x: torch.Tensor, changed: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """``changed`` for a random ``share`` of the beats (one draw per beat), ``x`` for the others."""
    pick = (torch.rand(x.shape[0], generator=gen) < share).to(x.device)[:, None, None]
    return torch.where(pick, changed, x)


def _at_spread_of(changed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``changed`` times one factor per beat (every channel alike) that gives its beat channel (0) the
    spread of ``x``'s."""
    return changed * x[:, :1].std(dim=2, keepdim=True) / changed[:, :1].std(dim=2, keepdim=True).clamp_min(1e-6)


def _flip(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """``share`` of the beats sign-inverted, every channel alike (the beat and its template difference
    stay consistent): the same heart seen with reversed electrodes, or through a lead of the other
    polarity (several shared SVDB records' ECG1 has a negative QRS where MIT-BIH's MLII is positive)."""
    return _for_share(x, -x, share, gen)


LEAD_SHAPE_ANGLE = math.pi / 4   # lead_shape: the angle is drawn in +-this (half-way to the derivative alone)


def _lead_shape(x: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """``share`` of the beats seen from a lead at another angle: ``cos(a) * beat + sin(a) * slope``, ``a``
    drawn in ``±LEAD_SHAPE_ANGLE``, ``slope`` the beat's time derivative scaled to the spread of its beat
    channel (a narrow QRS and its derivative are about a quarter-period apart, so ``a`` = 90 degrees would
    turn a monophasic complex biphasic; 180 is ``flip``). One linear filter for every channel of a beat,
    so the beat and its template difference stay consistent, as with ``smooth`` and ``flip``."""
    padded = nn.functional.pad(x, (1, 1), mode="replicate")
    slope = (padded[:, :, 2:] - padded[:, :, :-2]) / 2
    slope = _at_spread_of(slope, x)
    angle = (LEAD_SHAPE_ANGLE * (2 * torch.rand(x.shape[0], 1, 1, generator=gen) - 1)).to(x.device)
    return _for_share(x, torch.cos(angle) * x + torch.sin(angle) * slope, share, gen)


QRS_SPAN_S = (0.05, 0.07)   # qrs_gain: the stretch it scales, seconds before and after the R peak
QRS_GAIN_LOW = 0.2          # qrs_gain: the scale is drawn in [this, 1]
QRS_TAPER = 3               # qrs_gain: samples of raised-cosine edge on each side of the stretch


def _qrs_gain(x: torch.Tensor, share: float, gen: torch.Generator, centre: int,
              span: tuple[int, int]) -> torch.Tensor:
    """``share`` of the beats with their QRS (``span`` samples before and after the R peak at ``centre``,
    with :data:`QRS_TAPER`-sample raised-cosine edges) scaled by a gain drawn in ``[QRS_GAIN_LOW, 1]``, then
    every channel rescaled so that the beat channel keeps its spread: a lead that sees a small QRS beside
    its T wave (svdb/801's ECG1: a QRS of 1.8 z-units beside a T wave of 1.5, question 46 of
    training/README.md). One gain curve for every channel of a beat, so the template difference stays
    consistent."""
    w = x.shape[2]
    t = torch.arange(w, dtype=x.dtype)
    outside = torch.clamp(torch.maximum(centre - span[0] - t, t - centre - span[1]), min=0)   # samples past the span
    inside = torch.where(outside >= QRS_TAPER + 1, torch.zeros(w, dtype=x.dtype),
                         0.5 * (1 + torch.cos(torch.pi * outside / (QRS_TAPER + 1)))).to(x.device)
    gain = (QRS_GAIN_LOW + (1 - QRS_GAIN_LOW) * torch.rand(x.shape[0], 1, 1, generator=gen)).to(x.device)
    return _for_share(x, _at_spread_of(x * (1 - (1 - gain) * inside), x), share, gen)


def _augment(x: torch.Tensor, gen: torch.Generator, input_step: float, stretch: float = 0.0,
             centre: int = 0, jitter: str = "window", smooth: float = 0.0, flip: float = 0.0,
             lead_shape: float = 0.0, qrs_gain: float = 0.0, qrs_span: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Random shift of up to 3 samples and white noise: cheap robustness to R-peak jitter; with
    ``stretch``, a time-scaling about the R-peak (sample ``centre``) too. ``jitter="beat"`` shifts the
    beat but not the patient's template (channel 1 = beat - template is recomputed), as a detector's
    R-peak jitter does; ``"window"`` shifts every channel. The result goes back onto the beat
    input's int8 grid (``input_step``; 0: none)."""
    if stretch:
        x = _stretch(x, centre, stretch, gen)
    if smooth:
        x = _smooth(x, smooth, gen)
    if flip:
        x = _flip(x, flip, gen)
    if lead_shape:
        x = _lead_shape(x, lead_shape, gen)
    if qrs_gain:
        x = _qrs_gain(x, qrs_gain, gen, centre, qrs_span)
    shift = int(torch.randint(-3, 4, (1,), generator=gen))
    if jitter == "beat" and x.shape[1] == 2:
        beat = torch.roll(x[:, :1], shift, dims=2)
        x = torch.cat([beat, x[:, 1:] + beat - x[:, :1]], dim=1)
    else:
        x = torch.roll(x, shift, dims=2)
    return round_to_input_grid(x + 0.05 * torch.randn(x.shape, generator=gen).to(x.device), input_step)


def _scheduler(opt: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int):
    """``onecycle`` anneals over ``tc.epochs``; ``constant`` warms up, then holds ``tc.lr``, so the
    weights after epoch ``e`` do not depend on how many epochs were planned (what ``edgeecg cv``
    needs to choose the epoch count from one run per fold)."""
    if tc.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, epochs=tc.epochs,
                                                   steps_per_epoch=steps_per_epoch)
    warm = max(1, tc.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm))


def augment_centre(cfg: Config) -> int:
    """The sample time-stretching keeps in place: the R-peak (MIT-BIH: ``before``; a Kaggle beat starts
    at its R-peak; a PTB-XL record at its start)."""
    return cfg.data.before if cfg.data.dataset == "mitdb" else 0


def _validate(model: nn.Module, val: BeatSet, device: torch.device, multilabel: bool) -> dict:
    """Validation loss and the early-stopping figure: macro-F1 (%), or macro-ROC-AUC (multi-label)."""
    proba = predict_proba(model, val, device)
    if multilabel:
        p = torch.from_numpy(proba).clamp(1e-7, 1 - 1e-7)
        loss = float(F.binary_cross_entropy(p, torch.from_numpy(val.y.astype(np.float32))))
        report = multilabel_report(val.y, proba, [0.5] * val.y.shape[1], tuple(f"l{k}" for k in range(val.y.shape[1])))
        return {"val_loss": loss, "val_macro_auc": report["macro_auc"] if report["macro_auc"] is not None else 0.0}
    loss = float(F.nll_loss(torch.log(torch.from_numpy(proba).clamp_min(1e-12)), torch.from_numpy(val.y)))
    return {"val_loss": loss, "val_macro_f1": classification_report(val.y, proba.argmax(1))["macro_f1"]}


def train_model(cfg: Config, splits: dict[str, BeatSet], progress: bool = True,
                init: nn.Module | None = None, on_epoch=None) -> TrainResult:
    """Train ``cfg.model`` on ``splits["train"]``.

    With beats in ``splits["val"]`` and ``patience`` > 0, the epoch with the best val macro-F1 is
    kept (early stopping). Without val beats every one of ``epochs`` runs and the last epoch's
    weights are returned (their moving average with ``ema_decay`` > 0): the protocol of a final
    model trained on all of DS1 for the epoch count that ``edgeecg cv`` chose.
    ``init``: start from this model (fine-tuning, e.g. after pruning) instead of a fresh one.
    ``on_epoch(epoch, model)``: called after each epoch with the model that would be returned.
    ``rhythm_epochs`` > 0 (a factorized hybrid): N against S is first fitted alone (unless ``init`` is
    given) and then kept fixed but for its threshold (:mod:`edgeecg.rhythm_stage`).

    A multi-label set (PTB-XL) trains with binary cross-entropy and early-stops on val macro-AUC.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) this runs as one rank of a DDP job; rank 0 decides early
    stopping and every rank returns rank 0's model.
    """
    tc = cfg.train
    train, val = splits["train"], splits.get("val")
    if len(train) == 0:
        raise EdgeECGError("training needs beats in the train split")
    multilabel = train.y.ndim == 2
    if tc.drop_regular_s:
        train = train.subset(~regular_s(train, cfg))
    if tc.patient_power and (multilabel or tc.imbalance != "sampler"):
        raise EdgeECGError("[train] patient_power weighs the sampler's draws of single-label beats: it needs "
                           "imbalance = \"sampler\" and beats with one class each")
    if tc.class_powers and (multilabel or tc.imbalance != "sampler"):     # the recipe's keys: config.py
        raise EdgeECGError("[train] class_powers weigh the sampler's draws of the AAMI classes: they need "
                           "imbalance = \"sampler\" and beats with one class each")
    if multilabel and tc.imbalance == "logit_adjust":
        raise EdgeECGError("[train] imbalance = \"logit_adjust\" is for single-label beats; a multi-label set "
                           "takes \"sampler\", \"weighted_loss\" or \"none\"")
    if multilabel and tc.loss == "focal":
        raise EdgeECGError("[train] loss = \"focal\" is for single-label beats; a multi-label set trains with "
                           "binary cross-entropy (loss = \"ce\")")
    early_stopping = val is not None and len(val) > 0 and tc.patience > 0
    seed_everything(tc.seed)
    ctx, device = distributed.setup(tc.device)
    if ctx.world > 1 and tc.batch_size < ctx.world:
        raise EdgeECGError(f"[train] batch_size {tc.batch_size} is smaller than the {ctx.world} processes")
    progress = progress and ctx.main
    if init is None:
        model = build_model(cfg.model.name, cfg.data, n_classes=train.y.shape[1] if multilabel else len(CLASSES),
                            **cfg.model.params)
        if train.rr.shape[1]:      # PTB-XL and Kaggle beats have no RR features
            model.rr_norm.fit(torch.from_numpy(train.rr))
    else:
        model = copy.deepcopy(init)
    model.to(device)
    if tc.rhythm_epochs and init is None:     # a first stage for N against S, kept fixed below
        fit_rhythm(model, train, tc, device)
    ema = None
    if tc.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema_decay), use_buffers=True)
    current = (lambda: ema.module) if ema is not None else (lambda: model)
    net = model
    if ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    # after DDP's broadcast, so that every rank keeps rank 0's values; fine-tuning (``init``) keeps them too
    frozen = FrozenEntries(model) if tc.rhythm_epochs else None

    x_tr, rr_tr, y_tr = to_tensors(train, device)
    weight = None
    if tc.imbalance == "weighted_loss":
        if multilabel:   # BCE's pos_weight: (negatives / positives) ** power per label, capped
            pos = train.y.sum(axis=0).astype(np.float64)
            weight = torch.tensor(np.minimum(((len(train) - pos) / np.maximum(pos, 1.0)) ** tc.imbalance_power,
                                             MAX_CLASS_WEIGHT), dtype=torch.float32).to(device)
        else:
            weight = class_weights(train.y, tc.imbalance_power).to(device)
    adjust = logit_adjustment(train.y, tc.imbalance_power).to(device) if tc.imbalance == "logit_adjust" else None
    if multilabel:
        y_tr = y_tr.float()
    steps_per_epoch = max(1, epoch_size(len(train), tc) // tc.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = _scheduler(opt, tc, steps_per_epoch)
    gen = torch.Generator().manual_seed(tc.seed)
    shares = patient_shares(train.y, train.record, tc.patient_power) if tc.patient_power else None   # once, not per epoch
    # one process: one generator for the order and the augmentation (as always); DDP: the same order on
    # every rank (same seed), augmentation noise of each rank its own
    aug_gen = gen if ctx.world == 1 else torch.Generator().manual_seed(tc.seed + 1_000_003 * (ctx.rank + 1))
    centre = augment_centre(cfg)
    qrs_span = tuple(round(s * cfg.data.fs) for s in QRS_SPAN_S)

    result = TrainResult(model=model)
    best, best_state, stale = -1.0, None, 0
    score_key = "val_macro_auc" if multilabel else "val_macro_f1"
    for epoch in range(1, tc.epochs + 1):
        model.train()
        order = _epoch_order(train.y, tc, gen, shares)
        total = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{tc.epochs}", leave=False,
                   disable=not progress, unit="batch")
        for step in bar:
            idx = order[step * tc.batch_size:(step + 1) * tc.batch_size]
            if ctx.world > 1:
                idx = idx[ctx.rank::ctx.world]        # this rank's share of the global batch
            idx = idx.to(device)
            x = (_augment(x_tr[idx], aug_gen, cfg.data.input_step, tc.stretch, centre, tc.jitter, tc.smooth,
                          tc.flip, tc.lead_shape, tc.qrs_gain, qrs_span)
                 if tc.augment else x_tr[idx])
            logits = net(x, rr_tr[idx])
            if adjust is not None:
                logits = logits + adjust
            if multilabel:
                loss = F.binary_cross_entropy_with_logits(logits, y_tr[idx], pos_weight=weight)
            elif tc.loss == "focal":
                loss = focal_loss(logits, y_tr[idx], tc.focal_gamma, weight)
            else:
                loss = F.cross_entropy(logits, y_tr[idx], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if frozen is not None:
                frozen.restore()
            if ema is not None:
                ema.update_parameters(model)
            total += loss.item()
            bar.set_postfix(loss=f"{total / (step + 1):.4f}")
        if ctx.world > 1:       # rank 0's BatchNorm statistics everywhere: every rank holds one model
            distributed.sync_buffers(model)
            if ema is not None:
                distributed.sync_buffers(ema.module)
        entry = {"epoch": epoch, "train_loss": total / steps_per_epoch, "lr": opt.param_groups[0]["lr"]}
        line = f"epoch {epoch:3d}  train loss {entry['train_loss']:.4f}"
        if val is not None and len(val):
            if ctx.main:
                entry.update(_validate(current(), val, device, multilabel))
            entry = distributed.broadcast(entry)
            line += f"  val loss {entry['val_loss']:.4f}  " + (
                f"val macro-AUC {entry['val_macro_auc']:.4f}" if multilabel else
                f"val macro-F1 {entry['val_macro_f1']:.2f} %")
        result.history.append(entry)
        if progress:
            tqdm.write(line)
        if on_epoch is not None:
            on_epoch(epoch, current())
        if not early_stopping:
            continue
        if entry[score_key] > best:
            best, stale, result.best_epoch = entry[score_key], 0, epoch
            best_state = copy.deepcopy(current().state_dict())
        else:
            stale += 1
            if stale >= tc.patience:
                break
    final = current()
    if early_stopping:
        final.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history)
    final.to("cpu").eval()
    result.model = final
    return result
