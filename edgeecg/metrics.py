"""AAMI EC57-style metrics: per-class sensitivity (Se), positive predictivity (+P), F1.

Values are percentages. ``macro_f1`` averages the F1 of N, S, V and F: the classes the
inter-patient literature reports (DS2 holds only a handful of Q beats once paced records are
excluded, so a Q F1 would be noise). Q still has its own row in ``per_class``.
"""

from __future__ import annotations

import numpy as np

from edgeecg.processing.aami import CLASSES

MACRO_CLASSES = ("N", "S", "V", "F")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """Rows: reference class, columns: predicted class."""
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def _pct(num: float, den: float) -> float:
    return round(100.0 * num / den, 3) if den else 0.0


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The ``metrics.json`` block of one beat set."""
    cm = confusion(y_true, y_pred)
    per_class = {}
    for i, name in enumerate(CLASSES):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        se, ppv = _pct(tp, support), _pct(tp, predicted)
        f1 = _pct(2 * tp, support + predicted)
        per_class[name] = {"se": se, "ppv": ppv, "f1": f1, "support": int(support)}
    return {
        "per_class": per_class,
        "macro_f1": round(float(np.mean([per_class[c]["f1"] for c in MACRO_CLASSES])), 3),
        "accuracy": _pct(np.trace(cm), cm.sum()),
        "confusion": cm.tolist(),
        "labels": list(CLASSES),
    }


def summarise(y: np.ndarray, logits: np.ndarray, reference: dict | None = None) -> dict:
    """One artifact's row: macro-F1, accuracy, Se/+P/F1 of N S V F; with ``reference``, the deltas (pp)."""
    rep = classification_report(y, np.asarray(logits).argmax(1))
    row = {"macro_f1": rep["macro_f1"], "accuracy": rep["accuracy"],
           "per_class": {c: {k: rep["per_class"][c][k] for k in ("se", "ppv", "f1")} for c in MACRO_CLASSES}}
    if reference is not None:
        row["delta_macro_f1"] = round(row["macro_f1"] - reference["macro_f1"], 3)
        for c in ("S", "V"):
            row[f"delta_{c}_se"] = round(row["per_class"][c]["se"] - reference["per_class"][c]["se"], 3)
    return row


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Percentage of beats whose argmax class is the same in both logits (3 decimals)."""
    return round(100.0 * float(np.mean(a.argmax(1) == b.argmax(1))), 3)


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest ROC of a binary target: false-positive rate, true-positive rate, AUC."""
    order = np.argsort(-score, kind="stable")
    t = np.asarray(y_true, dtype=bool)[order]
    tps, fps = np.cumsum(t), np.cumsum(~t)
    tpr = np.concatenate([[0.0], tps / max(tps[-1], 1)])
    fpr = np.concatenate([[0.0], fps / max(fps[-1], 1)])
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def pr_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest precision-recall: recall, precision, average precision."""
    order = np.argsort(-score, kind="stable")
    t = np.asarray(y_true, dtype=bool)[order]
    tps = np.cumsum(t)
    precision = tps / np.arange(1, len(t) + 1)
    recall = tps / max(tps[-1], 1)
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    return recall, precision, ap


def format_table(report: dict, title: str) -> str:
    """A fixed-width table of one report, as the CLI prints it."""
    lines = [title, f"{'class':<6}{'Se %':>8}{'+P %':>8}{'F1 %':>8}{'beats':>8}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<6}{m['se']:>8.1f}{m['ppv']:>8.1f}{m['f1']:>8.1f}{m['support']:>8d}")
    lines.append(f"macro-F1 (N,S,V,F) {report['macro_f1']:.1f} %   accuracy {report['accuracy']:.1f} %")
    return "\n".join(lines)
