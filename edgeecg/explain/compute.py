"""What ``edgeecg explain`` computes and writes (PNG figures and an index ``explain.json``) into
``RUN/explain/<record>/``:

* ``beat_<i>.png``: chosen beats of the record (``--beats``, indices into the record's classified
  beats; default: the first beat of each class and the first few beats the model gets wrong),
  attributions of the float model's predicted class;
* ``class_means_record.png`` and ``class_means_<test>.png``: per reference class, the mean beat
  and the mean attributions of that class's logit over up to ``--per-class`` beats, for the
  record and for the run's test split (DS2);
* ``int8_<i>.png`` / ``int8_<test>_<record>_<i>.png``: beats where the int8 model (the integer
  reference, bit-exact with the generated C) and the float model give different classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.explain.attribution import (
    IG_STEPS,
    attribute,
    last_conv,
    probabilities,
    s_vs_n_window_attribution,
)
from edgeecg.explain.figures import beat_figure, class_means_figure, save_figure
from edgeecg.explain.inputs import Int8Model, RecordBeats, find_export, load_record
from edgeecg.processing.aami import CLASSES


def class_name(i: int) -> str:
    return CLASSES[i] if 0 <= int(i) < len(CLASSES) else "?"


def default_beats(y: np.ndarray, pred: np.ndarray, n_wrong: int = 3) -> list[int]:
    """The first beat of each reference class present, then the first ``n_wrong`` misclassified ones."""
    chosen = [int(np.flatnonzero(y == c)[0]) for c in range(len(CLASSES)) if np.any(y == c)]
    wrong = [int(i) for i in np.flatnonzero((y >= 0) & (y != pred)) if int(i) not in chosen][:n_wrong]
    return sorted(chosen + wrong)


def explain_beats(
    model,
    rb: RecordBeats,
    indices: list[int],
    cfg,
    steps: int = IG_STEPS,
    int8: np.ndarray | None = None,
    proba: np.ndarray | None = None,
):
    """Per chosen beat: its attributions of the predicted class, a figure and a summary."""
    b = rb.beats
    idx = np.asarray(indices, dtype=np.int64)
    proba = probabilities(model, b.x[idx], b.rr[idx]) if proba is None else proba[idx]
    pred = proba.argmax(1)
    att = attribute(model, b.x[idx], b.rr[idx], pred, steps)
    out = []
    for k, i in enumerate(idx.tolist()):
        ref = class_name(b.y[i])
        q = "" if int8 is None else f", int8 C {class_name(int8[i])}"
        title = (
            f"record {rb.name}, beat {i} (t = {b.sample[i] / rb.fs:.2f} s): reference {ref}, "
            f"float {class_name(pred[k])} (p = {proba[k, pred[k]]:.2f}){q}; explaining {class_name(pred[k])}"
        )
        fig = beat_figure(b.x[i], att.cam[k], att.ig_x[k], att.ig_rr[k], b.rr[i], cfg, title)
        summary = {
            "index": i,
            "sample": int(b.sample[i]),
            "time_s": round(float(b.sample[i]) / rb.fs, 3),
            "reference": ref,
            "float": class_name(pred[k]),
            "proba": {c: round(float(p), 4) for c, p in zip(CLASSES, proba[k])},
            **({"int8": class_name(int8[i])} if int8 is not None else {}),
            "explained_class": class_name(pred[k]),
            "gradcam_peak_ms": (
                round((int(np.argmax(att.cam[k])) - cfg.before) * 1000.0 / cfg.fs, 1) if att.cam[k].max() > 0 else None
            ),  # None: no positive evidence
            "ig_window_sum": round(float(att.ig_x[k].sum()), 4),
            "ig_rr": {n: round(float(v), 4) for n, v in zip(cfg.rr_features, att.ig_rr[k])},
            "ig_delta": round(float(att.delta[k]), 5),
        }
        out.append((summary, fig))
    return out


def class_mean_rows(
    model,
    x: np.ndarray,
    rr: np.ndarray,
    y: np.ndarray,
    per_class: int,
    steps: int,
    seed: int = 0,
    pred: np.ndarray | None = None,
    before: int = 0,
    fs: float = 1000.0,
) -> tuple[list[dict], list[dict]]:
    """Mean beat and mean attributions of each reference class's own logit, over up to ``per_class``
    beats of it (a seeded random sample). Returns the figure rows and their JSON summaries."""
    rng = np.random.default_rng(seed)
    rows, summaries = [], []
    for c in range(len(CLASSES)):
        members = np.flatnonzero(y == c)
        if not len(members):
            continue
        pick = np.sort(rng.permutation(members)[:per_class])
        att = attribute(model, x[pick], rr[pick], c, steps)
        cam = att.cam / np.maximum(att.cam.max(axis=1, keepdims=True), 1e-12)
        se = None if pred is None else round(100.0 * float(np.mean(pred[members] == c)), 1)
        label = f"{CLASSES[c]}: {len(members)}" + ("" if se is None else f", Se {se:.0f}%")
        rows.append(
            {
                "label": label,
                "x": x[pick].mean(0),
                "x_sd": x[pick].std(0),
                "cam": cam.mean(0),
                "ig_x": att.ig_x.mean(0),
                "ig_rr": att.ig_rr.mean(0),
            }
        )
        summaries.append(
            {
                "class": CLASSES[c],
                "beats": int(len(members)),
                "explained": int(len(pick)),
                "se_float": se,
                "gradcam_peak_ms": (
                    round((int(np.argmax(cam.mean(0))) - before) * 1000.0 / fs, 1) if cam.max() > 0 else None
                ),
                "ig_rr_mean": [round(float(v), 4) for v in att.ig_rr.mean(0)],
                "ig_window_mean_sum": round(float(att.ig_x.sum(axis=(1, 2)).mean()), 4),
            }
        )
    return rows, summaries


def _parse_beats(text: str | None, n: int) -> list[int] | None:
    if not text:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EdgeECGError(f"--beats {text!r}: expected comma-separated beat indices") from None
    bad = [v for v in values if not 0 <= v < n]
    if bad:
        raise EdgeECGError(f"--beats: {', '.join(map(str, bad))} out of range (the record has {n} beats: 0..{n - 1})")
    return sorted(dict.fromkeys(values))


def run_data_dir(run_dir: Path, manifest: dict, data_path: Path | None, records=()) -> Path:
    """``--data``, else the records directory the run was trained on, else the download default."""
    from edgeecg.io import resolve_data_dir

    if data_path is None and manifest.get("data_dir") and Path(manifest["data_dir"]).is_dir():
        data_path = Path(manifest["data_dir"])
    return resolve_data_dir(data_path, tuple(records))


def explain_run(
    run_dir: Path,
    record: str,
    out: Path,
    data_path: Path | None = None,
    beats: str | None = None,
    target: str | None = None,
    test_split: bool = True,
    per_class: int = 64,
    max_int8: int = 6,
    steps: int = IG_STEPS,
    force: bool = False,
    log=print,
) -> dict:
    """Everything ``edgeecg explain`` writes into ``out``; returns ``explain.json``'s content."""
    import torch

    from edgeecg.atomic import atomic_dir
    from edgeecg.config import test_key
    from edgeecg.data import load_beats, split_records
    from edgeecg.run import load_run

    torch.manual_seed(0)
    run_dir = Path(run_dir)
    cfg, model, manifest = load_run(run_dir)
    data_dir = run_data_dir(run_dir, manifest, data_path, (record,))
    rb = load_record(data_dir, record, cfg.data)
    b = rb.beats
    if not len(b.y):
        raise EdgeECGError(f"{data_dir / record}: no classifiable beats")
    proba = probabilities(model, b.x, b.rr)
    pred = proba.argmax(1)
    chosen = _parse_beats(beats, len(b.y)) or default_beats(b.y, pred)

    export_dir = find_export(run_dir, target)
    int8_model = int8_rec = None
    int8_note = "no export (run `edgeecg quantize`)"
    if export_dir is not None:
        try:
            int8_model = Int8Model(export_dir, model)
            int8_rec = int8_model.classes(b.x, b.rr)
        except (ImportError, EdgeECGError) as err:
            int8_note, int8_model = f"int8 model not run: {err}", None
    result = {
        "run": str(run_dir),
        "record": record,
        "data_dir": str(data_dir),
        "beats_in_record": len(b.y),
        "fs": cfg.data.fs,
        "before": cfg.data.before,
        "rr_features": list(cfg.data.rr_features),
        "methods": {
            "gradcam": {
                "library": "captum.attr.LayerGradCam",
                "layer": last_conv(model)[0],
                "relu": True,
                "upsampling": "linear",
            },
            "integrated_gradients": {
                "library": "captum.attr.IntegratedGradients",
                "steps": steps,
                "baseline": "window zeros; RR features at the training mean",
            },
        },
        "counts": {
            "reference": {c: int(np.sum(b.y == i)) for i, c in enumerate(CLASSES)},
            "float": {c: int(np.sum(pred == i)) for i, c in enumerate(CLASSES)},
        },
        "figures": [],
    }
    with atomic_dir(Path(out), force=force) as tmp:
        log(f"record {record}: {len(b.y)} beats; explaining {len(chosen)} of them ...")
        result["beats"] = []
        for summary, fig in explain_beats(model, rb, chosen, cfg.data, steps=steps, int8=int8_rec, proba=proba):
            name = f"beat_{summary['index']}.png"
            save_figure(fig, tmp / name)
            result["beats"].append({**summary, "figure": name})
            result["figures"].append(
                {
                    "file": name,
                    "kind": "beat",
                    "caption": f"record {record}, beat {summary['index']}: "
                    f"reference {summary['reference']}, float {summary['float']}"
                    + (f", int8 {summary['int8']}" if "int8" in summary else ""),
                }
            )
        rows, summ = class_mean_rows(
            model, b.x, b.rr, b.y, per_class, steps, pred=pred, before=cfg.data.before, fs=cfg.data.fs
        )
        save_figure(
            class_means_figure(rows, cfg.data, f"record {record}: class averages"), tmp / "class_means_record.png"
        )
        result["class_means"] = {"record": {"figure": "class_means_record.png", "classes": summ}}
        result["figures"].append(
            {
                "file": "class_means_record.png",
                "kind": "class_means",
                "caption": f"record {record}: mean beat and attributions per reference class",
            }
        )
        sample = b.x[: min(len(b.x), 256)], b.rr[: min(len(b.x), 256)]
        result["s_vs_n_window_attribution"] = round(s_vs_n_window_attribution(model, *sample, steps), 8)

        key = test_key(cfg)
        test_beats = None
        if test_split:
            test_records = split_records(cfg.split)["test"]
            if test_records:
                log(f"{key}: loading {len(test_records)} records ...")
                test_beats = load_beats(data_dir, test_records, cfg.data)
                test_pred = probabilities(model, test_beats.x, test_beats.rr).argmax(1)
                rows, summ = class_mean_rows(
                    model,
                    test_beats.x,
                    test_beats.rr,
                    test_beats.y,
                    per_class,
                    steps,
                    pred=test_pred,
                    before=cfg.data.before,
                    fs=cfg.data.fs,
                )
                fname = f"class_means_{key}.png"
                save_figure(
                    class_means_figure(rows, cfg.data, f"{key} ({len(test_beats):,d} beats): class averages"),
                    tmp / fname,
                )
                result["class_means"][key] = {"figure": fname, "classes": summ}
                result["figures"].append(
                    {
                        "file": fname,
                        "kind": "class_means",
                        "caption": f"{key}: mean beat and attributions per reference class",
                    }
                )

        result["int8"] = {
            "export": str(export_dir) if export_dir else None,
            "note": (
                int8_note
                if int8_model is None
                else "int8 = the integer reference of model.int8.tflite (bit-exact with the generated C)"
            ),
        }
        if int8_model is not None:
            fm = int8_model.float_model
            f_rec = pred if not int8_model.pruned else probabilities(fm, b.x, b.rr).argmax(1)
            diff = np.flatnonzero(f_rec != int8_rec)
            result["int8"].update(
                {
                    "float_model": "pruned" if int8_model.pruned else "run",
                    "record": {
                        "beats": len(b.y),
                        "disagreements": int(len(diff)),
                        "indices": diff.tolist()[:200],
                        "figures": [],
                    },
                }
            )
            log(f"record {record}: int8 and float differ on {len(diff)} beats")
            for summary, fig in explain_beats(fm, rb, diff[:max_int8].tolist(), cfg.data, steps=steps, int8=int8_rec):
                name = f"int8_{summary['index']}.png"
                save_figure(fig, tmp / name)
                result["int8"]["record"]["figures"].append(name)
                result["figures"].append(
                    {
                        "file": name,
                        "kind": "int8",
                        "caption": f"record {record}, beat "
                        f"{summary['index']}: float {summary['float']}, int8 {summary['int8']}",
                    }
                )
            if test_beats is not None:
                t_float = test_pred if not int8_model.pruned else probabilities(fm, test_beats.x, test_beats.rr).argmax(1)
                t_int8 = int8_model.classes(test_beats.x, test_beats.rr)
                tdiff = np.flatnonzero(t_float != t_int8)
                pairs: dict[str, int] = {}
                for i in tdiff:
                    k = f"{class_name(t_float[i])}->{class_name(t_int8[i])}"
                    pairs[k] = pairs.get(k, 0) + 1
                block = {
                    "beats": len(test_beats),
                    "disagreements": int(len(tdiff)),
                    "float_to_int8": pairs,
                    "figures": [],
                }
                log(f"{key}: int8 and float differ on {len(tdiff)} of {len(test_beats):,d} beats")
                for i in tdiff[:max_int8].tolist():
                    rec_name = str(test_beats.record[i])
                    local = int(i - np.flatnonzero(test_beats.record == rec_name)[0])
                    one = RecordBeats(rec_name, _one_beat(test_beats, i), rb.signal[:0], cfg.data.fs)
                    [(summary, fig)] = explain_beats(fm, one, [0], cfg.data, steps=steps, int8=t_int8[i : i + 1])
                    name = f"int8_{key}_{rec_name}_{local}.png"
                    fig.suptitle(
                        f"{key} record {rec_name}, beat {local}: reference {summary['reference']}, "
                        f"float {summary['float']}, int8 C {summary['int8']}",
                        fontsize=9,
                    )
                    save_figure(fig, tmp / name)
                    block["figures"].append(name)
                    result["figures"].append(
                        {
                            "file": name,
                            "kind": "int8",
                            "caption": f"{key} record {rec_name}, "
                            f"beat {local}: float {summary['float']}, int8 {summary['int8']}",
                        }
                    )
                result["int8"][key] = block
        (tmp / "explain.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _one_beat(beats, i: int):
    """A one-beat :class:`Beats` (sample unknown: -1) from a BeatSet."""
    from edgeecg.processing.beats import Beats

    return Beats(beats.x[i : i + 1], beats.rr[i : i + 1], beats.y[i : i + 1], np.array([-1], dtype=np.int64))
