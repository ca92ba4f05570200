"""PNG figures of a run: training curves, confusion matrices, per-class ROC and PR curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from edgeecg.metrics import pr_curve, roc_curve  # noqa: E402
from edgeecg.processing.aami import CLASSES  # noqa: E402


def training_curves(history: list[dict], path: Path) -> None:
    """Loss per epoch, and the val score (macro-F1, or macro-ROC-AUC of a multi-label run) where the
    run held records out."""
    epochs = [h["epoch"] for h in history]
    has_val = bool(history) and "val_loss" in history[0]
    fig, axes = plt.subplots(1, 2 if has_val else 1, figsize=(9 if has_val else 4.5, 3.5), squeeze=False)
    ax1 = axes[0, 0]
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    if has_val:
        ax1.plot(epochs, [h["val_loss"] for h in history], label="val")
        if "val_macro_auc" in history[0]:
            axes[0, 1].plot(epochs, [h["val_macro_auc"] for h in history])
            axes[0, 1].set(xlabel="epoch", ylabel="ROC-AUC", title="val macro-AUC")
        else:
            axes[0, 1].plot(epochs, [h["val_macro_f1"] for h in history])
            axes[0, 1].set(xlabel="epoch", ylabel="%", title="val macro-F1 (N,S,V,F)")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_matrix(cm: list[list[int]], title: str, path: Path) -> None:
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set(xticks=range(len(CLASSES)), yticks=range(len(CLASSES)), xticklabels=CLASSES,
           yticklabels=CLASSES, xlabel="predicted", ylabel="reference", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def roc_pr(y: np.ndarray, score: np.ndarray, title: str, roc_path: Path, pr_path: Path,
           labels: tuple[str, ...] = CLASSES) -> None:
    """One-vs-rest curves for each label present: ``y`` holds class indices (AAMI classes) or, for a
    multi-label run, one 0/1 column per label of ``labels``."""
    targets = y.astype(bool) if y.ndim == 2 else np.equal.outer(y, np.arange(len(labels)))
    fig_roc, ax_roc = plt.subplots(figsize=(4.5, 4))
    fig_pr, ax_pr = plt.subplots(figsize=(4.5, 4))
    for i, name in enumerate(labels):
        target = targets[:, i]
        if not target.any():
            continue
        if not target.all():
            fpr, tpr, auc = roc_curve(target, score[:, i])
            ax_roc.plot(fpr, tpr, label=f"{name} AUC {auc:.3f} (n={int(target.sum())})")
        recall, precision, ap = pr_curve(target, score[:, i])
        ax_pr.plot(recall, precision, label=f"{name} AP {ap:.3f}")
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax_roc.set(xlabel="false-positive rate", ylabel="sensitivity", title=f"ROC, {title}")
    ax_pr.set(xlabel="sensitivity (recall)", ylabel="+P (precision)", title=f"PR, {title}")
    for fig, ax, path in ((fig_roc, ax_roc, roc_path), (fig_pr, ax_pr, pr_path)):
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def per_record(per_record_report: dict, title: str, path: Path, classes: tuple[str, ...] = ("S", "V")) -> None:
    """Se and +P of each class per record, as bars, for the records that hold or get that class."""
    fig, axes = plt.subplots(len(classes), 1, figsize=(10, 2.6 * len(classes)), squeeze=False)
    for ax, c in zip(axes[:, 0], classes):
        rows = [(r, v[c]) for r, v in per_record_report.items() if v[c]["support"] or v[c]["predicted"]]
        x = np.arange(len(rows))
        se = [v["se"] or 0.0 for _, v in rows]
        ppv = [v["ppv"] or 0.0 for _, v in rows]
        ax.bar(x - 0.2, se, 0.4, label="Se")
        ax.bar(x + 0.2, ppv, 0.4, label="+P")
        ax.set_xticks(x, [f"{r}\n{v['support']}" for r, v in rows], fontsize=7)
        ax.set(ylim=(0, 105), ylabel="%", title=f"{c} beats per record ({title}; below each record: its {c} beats)")
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cv_curve(curve: list[dict], chosen: int, path: Path) -> None:
    """Pooled out-of-fold macro-F1 and S/V Se, +P after each epoch."""
    epochs = [c["epoch"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("macro_f1", "macro-F1"), ("S_se", "S Se"), ("S_ppv", "S +P"), ("V_se", "V Se"),
                       ("V_ppv", "V +P")):
        ax.plot(epochs, [c[key] for c in curve], label=label)
    ax.axvline(chosen, color="grey", ls="--", lw=1)
    ax.set(xlabel="epoch", ylabel="%", title="pooled out-of-fold figures (DS1)", ylim=(0, 100))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
