"""Report sections about the model and its accuracy: recipe, provenance, metrics, per record, training,
cross-validation and seeds."""

from __future__ import annotations

import hashlib

from edgeecg.report.html import esc, fmt, img_png, table
from edgeecg.report.inputs import Inputs
from edgeecg.report.svg import svg_confusion, svg_grouped_bars, svg_lines

CLASSES = ("N", "S", "V", "F", "Q")


def class_table(rep: dict) -> str:
    rows = [
        [c, fmt(m.get("se")), fmt(m.get("ppv")), fmt(m.get("f1")), fmt(m.get("support"), ",d")]
        for c, m in rep["per_class"].items()
    ]
    return (
        table(["class", "Se %", "+P %", "F1 %", "beats"], rows)
        + f"<p>macro-F1 (N,S,V,F) <b>{fmt(rep.get('macro_f1'))} %</b>, accuracy {fmt(rep.get('accuracy'))} %</p>"
    )


def _split_keys(metrics: dict) -> list[str]:
    return [k for k, v in metrics.items() if isinstance(v, dict) and "per_class" in v]


def sec_recipe(inp: Inputs) -> str:
    if inp.config_text is None:
        return inp.absent("config.toml", "no config.toml in the run directory")
    return f"<p class=small>{esc(inp.run / 'config.toml')}</p><pre>{esc(inp.config_text)}</pre>"


def sec_provenance(inp: Inputs) -> str:
    m = inp.manifest
    if m is None:
        return inp.absent("manifest.json", "no manifest.json in the run directory")
    inputs = m.get("inputs", {})
    records = sorted({k.split("/")[0] for k in inputs})
    combined = hashlib.sha256("".join(f"{k}={v}\n" for k, v in sorted(inputs.items())).encode()).hexdigest()
    rows = [
        ["data directory", m.get("data_dir", "–")],
        ["edgeecg", m.get("edgeecg", "–")],
        ["torch", m.get("torch", "–")],
        ["records", f"{len(records)}: {', '.join(records)}"],
        ["input files hashed", len(inputs)],
        ["SHA-256 of all input hashes", f"<code>{combined}</code>"],
        ["output files hashed", len(m.get("outputs", {}))],
    ]
    return table(["", ""], rows, left=2) + "<p class=small>Every file's SHA-256 is listed under Hashes.</p>"


def sec_metrics(inp: Inputs) -> str:
    m = inp.metrics
    if m is None:
        return inp.absent("metrics.json", "no metrics.json (train the run with `edgeecg train`)")
    parts = []
    head = [
        ["parameters", fmt(m.get("params"), ",d")],
        ["MACs per beat", fmt(m.get("macs_per_beat"), ",d")],
        ["best epoch", fmt(m.get("best_epoch"), "d")],
    ]
    split = m.get("split", {})
    if split:
        head.append(
            [
                "split",
                f"{split.get('kind')}"
                + (" (LEAKY: same patients in train and test)" if split.get("leaky") else "")
                + "; beats "
                + ", ".join(f"{k} {v:,d}" for k, v in split.get("beats", {}).items()),
            ]
        )
    parts.append(table(["", ""], head, left=2))
    for key in _split_keys(m):
        rep = m[key]
        parts.append(f"<h3>{esc(key)}</h3><div>{class_table(rep)}</div>")
        parts.append(
            svg_confusion(rep["confusion"], rep.get("labels", list(CLASSES)), f"confusion, {key} (rows: reference)")
        )
    return "".join(parts)


def per_record_chart(pr: dict, title: str) -> str:
    out = []
    for c in ("S", "V"):
        rows = [(r, v[c]) for r, v in pr.items() if c in v and (v[c].get("support") or v[c].get("predicted"))]
        if not rows:
            out.append(f"<p class=small>{esc(title)}: no {c} beats held or predicted</p>")
            continue
        out.append(
            svg_grouped_bars(
                [r for r, _ in rows],
                {"Se": [v["se"] for _, v in rows], "+P": [v["ppv"] for _, v in rows]},
                f"{c} beats per record, {title} (below: {c} beats held)",
                sublabels=[str(v.get("support", "")) for _, v in rows],
            )
        )
    return "".join(out)


def sec_per_record(inp: Inputs) -> str:
    m = inp.metrics
    if m is None or not m.get("per_record"):
        return inp.absent("metrics.json", "no per-record figures in metrics.json")
    parts = []
    for key, pr in m["per_record"].items():
        parts.append(f"<h3>{esc(key)}</h3>" + per_record_chart(pr, key))
        rows = [
            [
                r,
                *(
                    fmt(v[c].get(k)) if k != "support" else v[c].get("support")
                    for c in ("S", "V")
                    for k in ("support", "se", "ppv")
                ),
            ]
            for r, v in pr.items()
        ]
        parts.append(
            "<details><summary>table</summary>"
            + table(["record", "S beats", "S Se", "S +P", "V beats", "V Se", "V +P"], rows)
            + "</details>"
        )
    return "".join(parts)


def sec_training(inp: Inputs) -> str:
    parts = []
    h = inp.history
    if h and not (inp.run / "plots" / "training_curves.png").exists():
        epochs = [e["epoch"] for e in h]
        series = {"train loss": [e.get("train_loss") for e in h]}
        if "val_loss" in h[0]:
            series["val loss"] = [e.get("val_loss") for e in h]
        top = max([v for s in series.values() for v in s if v is not None] + [1e-9])
        parts.append(svg_lines(epochs, series, "loss per epoch", ymax=float(f"{top * 1.1:.2g}")))
    plots = sorted((inp.run / "plots").glob("*.png")) if (inp.run / "plots").is_dir() else []
    for p in plots:
        if p.name.startswith(("training_curves", "roc_", "pr_")):
            parts.append(img_png(p, f"plots/{p.name}", 760 if p.name.startswith("training") else 420))
    return "".join(parts) or inp.absent("history.json", "no history.json or plots/")


def sec_cv(inp: Inputs) -> str:
    cv = inp.cv
    if cv is None:
        return inp.absent("cv.json", "no cv.json (`edgeecg cv`, then pass --cv PATH or put it beside the run)")
    parts = [
        f"<p class=small>{esc(inp.used['cv.json'])}: {cv.get('n_folds')} folds, seed {cv.get('seed')}, "
        f"chosen epochs {cv.get('chosen_epochs')}</p>"
    ]
    rows = [["pooled", *_srow(cv["pooled"])]]
    if cv.get("pooled_with_offsets"):
        rows.append([f"pooled, logit offsets {cv.get('logit_offsets')}", *_srow(cv["pooled_with_offsets"])])
    for i, f in enumerate(cv.get("folds", [])):
        rows.append([f"fold {i + 1}: {', '.join(f['records'])}", *_srow(f["report"])])
    parts.append(table(SROW_HEAD, rows))
    macro = [f["report"]["macro_f1"] for f in cv.get("folds", [])]
    if len(macro) > 1:
        import statistics

        parts.append(
            f"<p>fold spread of macro-F1: mean {statistics.mean(macro):.1f}, sd {statistics.stdev(macro):.1f}, "
            f"min {min(macro):.1f}, max {max(macro):.1f}</p>"
        )
    curve = cv.get("curve") or []
    if curve:
        parts.append(
            svg_lines(
                [c["epoch"] for c in curve],
                {
                    k: [c.get(kk) for c in curve]
                    for k, kk in (
                        ("macro-F1", "macro_f1"),
                        ("S Se", "S_se"),
                        ("S +P", "S_ppv"),
                        ("V Se", "V_se"),
                        ("V +P", "V_ppv"),
                    )
                },
                "pooled out-of-fold figures per epoch (dashed: chosen)",
                marker_x=cv.get("chosen_epochs"),
            )
        )
    if cv.get("per_record"):
        parts.append(per_record_chart(cv["per_record"], "DS1 out-of-fold"))
    return "".join(parts)


SROW_HEAD = ["", "macro-F1", "S Se", "S +P", "V Se", "V +P", "F Se", "N Se"]


def _srow(rep: dict) -> list[str]:
    pc = rep["per_class"]
    return [
        fmt(rep["macro_f1"]),
        fmt(pc["S"]["se"]),
        fmt(pc["S"]["ppv"]),
        fmt(pc["V"]["se"]),
        fmt(pc["V"]["ppv"]),
        fmt(pc["F"]["se"]),
        fmt(pc["N"]["se"]),
    ]


def sec_seeds(inp: Inputs) -> str:
    s = inp.seeds
    if s is None:
        return inp.absent(
            "seeds.json", "no seeds.json (`edgeecg seeds`, then pass --seeds PATH or put it beside the run)"
        )
    seeds = s.get("seeds", list(range(len(s["c_int8"]["per_seed"]))))
    parts = [
        f"<p class=small>{esc(inp.used['seeds.json'])}: {len(seeds)} seeds, target {esc(s.get('target', '–'))}</p>"
    ]
    rows_def = (
        ("S Se", "S", "se"),
        ("S +P", "S", "ppv"),
        ("V Se", "V", "se"),
        ("V +P", "V", "ppv"),
        ("F Se", "F", "se"),
        ("N Se", "N", "se"),
        ("macro-F1", None, "macro_f1"),
    )
    series = {}
    for kind in ("c_int8", "float"):
        block = s.get(kind)
        if not block:
            continue

        def val(rep, c, k):
            return rep[k] if c is None else rep["per_class"][c][k]

        rows = []
        for label, c, k in rows_def:
            vals = [val(r, c, k) for r in block["per_seed"]]
            rows.append(
                [
                    label,
                    *[fmt(v) for v in vals],
                    f"{val(block['mean'], c, k):.1f} ± {val(block['sd'], c, k):.1f}",
                    fmt(val(block["worst"], c, k)),
                ]
            )
            if kind == "c_int8":
                series[label] = (val(block["mean"], c, k), val(block["sd"], c, k))
        parts.append(
            f"<h3>{'int8 C (what the device runs)' if kind == 'c_int8' else 'float model'}</h3>"
            + table(["", *[f"seed {x}" for x in seeds], "mean ± sd", "worst"], rows)
        )
    if series:
        parts.append(
            svg_grouped_bars(
                list(series),
                {"mean": [v[0] for v in series.values()], "mean - sd": [max(v[0] - v[1], 0) for v in series.values()]},
                "int8 C across seeds: mean and mean minus one sd",
            )
        )
    return "".join(parts)
