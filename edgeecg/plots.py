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
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="val")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax1.legend()
    ax2.plot(epochs, [h["val_macro_f1"] for h in history])
    ax2.set(xlabel="epoch", ylabel="%", title="val macro-F1 (N,S,V,F)")
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


def roc_pr(y: np.ndarray, proba: np.ndarray, title: str, roc_path: Path, pr_path: Path) -> None:
    """One-vs-rest curves for each class present in ``y``."""
    fig_roc, ax_roc = plt.subplots(figsize=(4.5, 4))
    fig_pr, ax_pr = plt.subplots(figsize=(4.5, 4))
    for i, name in enumerate(CLASSES):
        target = y == i
        if not target.any():
            continue
        fpr, tpr, auc = roc_curve(target, proba[:, i])
        ax_roc.plot(fpr, tpr, label=f"{name} AUC {auc:.3f}")
        recall, precision, ap = pr_curve(target, proba[:, i])
        ax_pr.plot(recall, precision, label=f"{name} AP {ap:.3f}")
    ax_roc.set(xlabel="false-positive rate", ylabel="sensitivity", title=f"ROC, {title}")
    ax_pr.set(xlabel="sensitivity (recall)", ylabel="+P (precision)", title=f"PR, {title}")
    for fig, ax, path in ((fig_roc, ax_roc, roc_path), (fig_pr, ax_pr, pr_path)):
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
