"""AAMI EC57-style metrics: per-class sensitivity (Se), positive predictivity (+P), F1.

Values are percentages. ``macro_f1`` averages the F1 of N, S, V and F: the classes the
inter-patient literature reports (DS2 holds only a handful of Q beats once paced records are
excluded, so a Q F1 would be noise). Q still has its own row in ``per_class``.
"""

from __future__ import annotations

import numpy as np

from edgeecg.data.sources import database_of
from edgeecg.processing.aami import CLASSES

MACRO_CLASSES = ("N", "S", "V", "F")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """Rows: reference class, columns: predicted class (scikit-learn's, every class kept)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=np.arange(n)).astype(np.int64)


def _pct(num: float, den: float) -> float:
    return round(100.0 * num / den, 3) if den else 0.0


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The ``metrics.json`` block of one beat set."""
    return report_from_confusion(confusion(y_true, y_pred))


def report_from_confusion(cm: np.ndarray, labels: tuple[str, ...] = CLASSES) -> dict:
    """:func:`classification_report` of a confusion (rows: reference, columns: predicted) whose first
    rows and columns are the AAMI classes; ``labels`` names them all (EC57 adds "no beat", whose row
    and column then count as misses and false detections in Se and +P)."""
    per_class = {}
    for i, name in enumerate(CLASSES):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        se, ppv = _pct(tp, support), _pct(tp, predicted)
        f1 = _pct(2 * tp, support + predicted)
        per_class[name] = {"se": se, "ppv": ppv, "f1": f1, "support": int(support)}
    k = len(CLASSES)
    return {
        "per_class": per_class,
        "macro_f1": round(float(np.mean([per_class[c]["f1"] for c in MACRO_CLASSES])), 3),
        "accuracy": _pct(np.trace(cm[:k, :k]), cm.sum()),
        "confusion": cm.tolist(),
        "labels": list(labels),
    }


def per_record_report(y_true: np.ndarray, y_pred: np.ndarray, record: np.ndarray,
                      classes: tuple[str, ...] = ("S", "V")) -> dict:
    """Se and +P of ``classes`` in each record (EC57's per-record statistics beside the gross ones).

    A record with no beat of a class and none predicted has ``se`` and ``ppv`` None for it.
    """
    out = {}
    for rec in sorted(set(np.asarray(record).tolist())):
        m = record == rec
        t, p = np.asarray(y_true)[m], np.asarray(y_pred)[m]
        row = {}
        for c in classes:
            i = CLASSES.index(c)
            tp, support, predicted = int(np.sum((t == i) & (p == i))), int(np.sum(t == i)), int(np.sum(p == i))
            row[c] = {"se": _pct(tp, support) if support else None, "ppv": _pct(tp, predicted) if predicted else None,
                      "support": support, "predicted": predicted, "tp": tp}
        out[str(rec)] = row
    return out


def false_alarms(per_record: dict, hours: dict[str, float]) -> dict:
    """False S and V calls per hour of recording, per record and summarised over the records.

    ``per_record``: :func:`per_record_report` (S and V); ``hours``: each record's length. A false S
    call is a beat called S whose reference class is not S (likewise V): an alarm a device would
    raise for nothing. The summary gives the median, 90th percentile, mean and largest false S+V
    calls per hour over the records, and the worst record.
    """
    rows = {}
    for rec, row in per_record.items():
        h = float(hours[rec])
        fs, fv = (row[c]["predicted"] - row[c]["tp"] for c in ("S", "V"))
        rows[rec] = {"hours": round(h, 4), "false_S": fs, "false_V": fv, "false_S_per_hour": round(fs / h, 2),
                     "false_V_per_hour": round(fv / h, 2), "false_SV_per_hour": round((fs + fv) / h, 2)}
    rates = np.array([r["false_SV_per_hour"] for r in rows.values()], dtype=np.float64)
    if not len(rates):
        return {"summary": {"records": 0}, "per_record": rows}
    stat = {"median": np.median(rates), "p90": np.percentile(rates, 90), "mean": np.mean(rates), "max": np.max(rates)}
    summary = {"records": len(rates), **{k: round(float(v), 2) for k, v in stat.items()},
               "worst_record": max(rows, key=lambda r: rows[r]["false_SV_per_hour"])}
    return {"summary": summary, "per_record": rows}


def database_masks(record: np.ndarray) -> dict[str, np.ndarray]:
    """Which beats belong to each database, by the patient names (``svdb/801`` is SVDB's; a bare name MIT-BIH's)."""
    dbs = np.array([database_of(str(r)) for r in np.asarray(record).tolist()])
    return {db: dbs == db for db in sorted(set(dbs.tolist()))}


def database_reports(y_true: np.ndarray, y_pred: np.ndarray, record: np.ndarray) -> dict:
    """One classification report per database of the records."""
    return {db: classification_report(np.asarray(y_true)[m], np.asarray(y_pred)[m])
            for db, m in database_masks(record).items()}


def predicted(out: np.ndarray) -> np.ndarray:
    """Classes (n,) as they are, or the argmax class of logits (n, k)."""
    out = np.asarray(out)
    return out if out.ndim == 1 else out.argmax(1)


DELTAS = ("delta_macro_f1", "delta_S_se", "delta_V_se")   # what summarise adds against a reference (pp)


def summarise(y: np.ndarray, pred: np.ndarray, reference: dict | None = None) -> dict:
    """One artifact's row from its classes (n,) or logits (n, k): macro-F1, accuracy, Se/+P/F1 of
    N S V F; with ``reference``, the deltas (pp)."""
    rep = classification_report(y, predicted(pred))
    row = {"macro_f1": rep["macro_f1"], "accuracy": rep["accuracy"],
           "per_class": {c: {k: rep["per_class"][c][k] for k in ("se", "ppv", "f1")} for c in MACRO_CLASSES}}
    if reference is not None:
        row["delta_macro_f1"] = round(row["macro_f1"] - reference["macro_f1"], 3)
        for c in ("S", "V"):
            row[f"delta_{c}_se"] = round(row["per_class"][c]["se"] - reference["per_class"][c]["se"], 3)
    return row


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Percentage of beats given the same class by both (classes, or logits: their argmax; 3 decimals)."""
    return round(100.0 * float(np.mean(predicted(a) == predicted(b))), 3)


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest ROC of a binary target: false-positive rate, true-positive rate, AUC (scikit-learn)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    t = np.asarray(y_true, dtype=bool)
    if t.all() or not t.any():
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    fpr, tpr, _ = sk_roc(t, score)
    return fpr, tpr, float(roc_auc_score(t, score))


def pr_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest precision-recall: recall, precision, average precision (scikit-learn)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    t = np.asarray(y_true, dtype=bool)
    if not t.any():
        return np.array([0.0, 1.0]), np.array([1.0, 0.0]), float("nan")
    precision, recall, _ = precision_recall_curve(t, score)
    return recall, precision, float(average_precision_score(t, score))


def format_table(report: dict, title: str) -> str:
    """A fixed-width table of one report, as the CLI prints it (a multi-label report: see
    :func:`format_multilabel_table`)."""
    if "macro_auc" in report:
        return format_multilabel_table(report, title)
    lines = [title, f"{'class':<6}{'Se %':>8}{'+P %':>8}{'F1 %':>8}{'beats':>8}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<6}{m['se']:>8.1f}{m['ppv']:>8.1f}{m['f1']:>8.1f}{m['support']:>8d}")
    lines.append(f"macro-F1 (N,S,V,F) {report['macro_f1']:.1f} %   accuracy {report['accuracy']:.1f} %")
    return "\n".join(lines)


# --- multi-label (PTB-XL): one sigmoid output per label ------------------------------------------

MAX_MACRO_AUC_LOSS = 0.01   # a multi-label artifact (int8, export) may lose this much macro-ROC-AUC vs float

def _round(v: float, digits: int = 4):
    """A float for JSON: rounded, and None where undefined (a label without positives)."""
    return None if v is None or not np.isfinite(v) else round(float(v), digits)


def choose_thresholds(y_true: np.ndarray, score: np.ndarray) -> list[float]:
    """Per label, the score threshold with the best F1 on these examples (PTB-XL: fold 9); 0.5 for a
    label without positives here."""
    from sklearn.metrics import precision_recall_curve

    out = []
    for k in range(y_true.shape[1]):
        t = np.asarray(y_true[:, k], dtype=bool)
        if not t.any():
            out.append(0.5)
            continue
        precision, recall, thresholds = precision_recall_curve(t, score[:, k])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        out.append(float(thresholds[int(np.argmax(f1))]))
    return out


def multilabel_report(y_true: np.ndarray, score: np.ndarray, thresholds, labels: tuple[str, ...]) -> dict:
    """The ``metrics.json`` block of a multi-label set: per label ROC-AUC and average precision
    (scikit-learn, threshold-free), and Se, +P and F1 (%) at the given thresholds; ``macro_auc`` is
    the mean ROC-AUC over the labels that have positives and negatives here, ``macro_f1`` the mean F1."""
    y_true = np.asarray(y_true)
    per_class = {}
    for k, name in enumerate(labels):
        t = np.asarray(y_true[:, k], dtype=bool)
        pred = score[:, k] >= thresholds[k]
        tp, support, predicted = int(np.sum(t & pred)), int(t.sum()), int(pred.sum())
        per_class[name] = {"auc": _round(roc_curve(t, score[:, k])[2]), "ap": _round(pr_curve(t, score[:, k])[2]),
                           "se": _pct(tp, support), "ppv": _pct(tp, predicted), "f1": _pct(2 * tp, support + predicted),
                           "threshold": _round(thresholds[k], 6), "support": support}
    aucs = [m["auc"] for m in per_class.values() if m["auc"] is not None]
    return {"per_class": per_class, "macro_auc": _round(np.mean(aucs)) if aucs else None,
            "macro_f1": round(float(np.mean([m["f1"] for m in per_class.values()])), 3),
            "examples": int(len(y_true)), "labels": list(labels)}


def summarise_multilabel(y: np.ndarray, logits: np.ndarray, labels: tuple[str, ...],
                         reference: dict | None = None) -> dict:
    """One artifact's row of a multi-label model: macro and per-label ROC-AUC of its outputs (logits,
    float or int8: AUC depends on their order only, so no sigmoid is needed); with ``reference``,
    the deltas (AUC units)."""
    logits = np.asarray(logits, dtype=np.float64)
    aucs = {name: roc_curve(np.asarray(y)[:, k].astype(bool), logits[:, k])[2] for k, name in enumerate(labels)}
    defined = [v for v in aucs.values() if np.isfinite(v)]
    row = {"macro_auc": _round(np.mean(defined)) if defined else None,
           "per_class": {name: {"auc": _round(v)} for name, v in aucs.items()}}
    if reference is not None:
        def delta(a, b):
            return None if a is None or b is None else round(a - b, 4)
        row["delta_macro_auc"] = delta(row["macro_auc"], reference["macro_auc"])
        for name in labels:
            row[f"delta_{name}_auc"] = delta(row["per_class"][name]["auc"], reference["per_class"][name]["auc"])
    return row


def summarise_artifact(y: np.ndarray, logits: np.ndarray, classes: np.ndarray | None = None,
                       reference: dict | None = None) -> dict:
    """One artifact's row, whatever the labels: AAMI beats (``y`` (n,)) by :func:`summarise` of its
    ``classes`` (default: the logits' argmax); multi-label (``y`` (n, k), PTB-XL's superclasses) by
    :func:`summarise_multilabel` of its logits."""
    if np.ndim(y) == 2:
        from edgeecg.data.labels import SUPERCLASSES
        return summarise_multilabel(y, logits, SUPERCLASSES, reference)
    return summarise(y, logits if classes is None else classes, reference)


def format_multilabel_table(report: dict, title: str) -> str:
    """A fixed-width table of a :func:`multilabel_report`."""
    def f(v, spec):
        return "–" if v is None else format(v, spec)

    lines = [title, f"{'label':<6}{'AUC':>8}{'AP':>8}{'Se %':>8}{'+P %':>8}{'F1 %':>8}{'thr':>8}{'n':>7}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<6}{f(m['auc'], '.3f'):>8}{f(m['ap'], '.3f'):>8}{m['se']:>8.1f}{m['ppv']:>8.1f}"
                     f"{m['f1']:>8.1f}{f(m['threshold'], '.3f'):>8}{m['support']:>7d}")
    lines.append(f"macro-AUC {f(report['macro_auc'], '.4f')}   macro-F1 {report['macro_f1']:.1f} % "
                 f"({report['examples']:,d} records)")
    return "\n".join(lines)
