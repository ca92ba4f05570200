"""Report sections about what follows training: quantization, export sizes, bench, QRS detection,
streaming, explanations and hashes."""

from __future__ import annotations

import json

from edgeecg.digest import sha256_file
from edgeecg.report.html import esc, fmt, img_png, not_run, table, verdict
from edgeecg.report.inputs import Inputs
from edgeecg.report.sections_model import CLASSES, class_table, per_record_chart
from edgeecg.report.svg import PALETTE, svg_confusion, svg_grouped_bars, svg_hbars


def offsets_text(block: dict | None) -> str:
    """``report.json``'s ``decision_offsets`` in a few words (older reports have none)."""
    if not block:
        return "not recorded"
    if "skipped" in block:
        return block["skipped"]
    if block.get("kept") is False:
        return (f"none kept: the best pair fixed {block['fixed']:,d} and broke {block['broken']:,d} of "
                f"{block['beats']:,d} training beats (z {block['z']:.2f}, below the minimum)")
    o = block["offsets"]
    return (f"S {o[1]:+.2f}, V {o[2]:+.2f} logits (int8 agrees with float on {block['agreement_with_float']:,d} "
            f"of {block['beats']:,d} training beats, {block['agreement_with_float_before']:,d} without)")


def sec_quantization(inp: Inputs) -> str:
    if not inp.exports:
        return inp.absent(
            next((k for k in inp.errors if k.startswith("export/")), "export"),
            "no export/<target>/report.json (`edgeecg quantize RUN --target T`)",
        )
    parts = []
    for name, (d, rep) in inp.exports.items():
        b = rep.get("budget", {})
        parts.append(
            f"<h3>target {esc(name)}</h3><p>budget: {verdict(b.get('pass'))} "
            + esc("; ".join(b.get("problems", [])))
            + f"; {fmt(rep.get('params'), ',d')} parameters, "
            f"{fmt(rep.get('macs_per_beat'), ',d')} MACs/beat, calibration {fmt(rep.get('calibration_beats'), ',d')} "
            f"beats, bias correction {fmt(rep.get('bias_correction'))}, "
            f"decision offsets {esc(offsets_text(rep.get('decision_offsets')))}</p>"
        )
        for split, rows in rep.get("accuracy", {}).items():
            body = [
                [
                    a,
                    fmt(r["macro_f1"], ".2f"),
                    f"{r.get('delta_macro_f1', 0):+.2f}",
                    fmt(r["per_class"]["S"]["se"]),
                    f"{r.get('delta_S_se', 0):+.2f}",
                    fmt(r["per_class"]["V"]["se"]),
                    f"{r.get('delta_V_se', 0):+.2f}",
                ]
                for a, r in rows.items()
            ]
            parts.append(
                f"<h3>{esc(name)}: accuracy on {esc(split)} (Δ against the float model, pp)</h3>"
                + table(["artifact", "macro-F1", "Δ", "S Se", "ΔS Se", "V Se", "ΔV Se"], body)
            )
        cons = rep.get("consistency", {})
        if cons:
            body = [
                [
                    k,
                    fmt(c.get("beats"), ",d"),
                    fmt(c.get("bit_exact_c_vs_reference")),
                    fmt(c.get("bit_exact_c_vs_tflm")),
                    fmt(c.get("c_vs_tflite_int8_agreement"), ".3f"),
                    fmt(c.get("c_vs_tflite_int8_xnnpack_agreement"), ".3f"),
                    fmt(c.get("c_vs_float_agreement"), ".3f"),
                ]
                for k, c in cons.items()
            ]
            parts.append(
                "<h3>consistency</h3>"
                + table(
                    [
                        "split",
                        "beats",
                        "C == int reference",
                        "C == TFLM",
                        "C vs LiteRT int8 %",
                        "C vs XNNPACK %",
                        "C vs float %",
                    ],
                    body,
                )
            )
        rb = rep.get("rounding_budget")
        if rb:
            alone = sorted(rb.get("alone", {}).items(), key=lambda kv: -kv[1]["changed"])
            body = [
                [
                    p,
                    r["changed"],
                    *[r["changed_by_class"].get(c, 0) for c in CLASSES],
                    fmt(r["mean_abs_logit_error"], ".4f"),
                ]
                for p, r in [
                    ("all points (graph biases)", rb["all"]),
                    ("all points (float biases)", rb["all_float_biases"]),
                ]
                + alone
            ]
            parts.append(
                f"<h3>rounding budget ({esc(rb.get('split'))}, {fmt(rb.get('beats'), ',d')} beats): beats whose "
                f"class changes against the float model</h3>"
                + table(["rounding point", "changed", *CLASSES, "mean |logit error|"], body)
            )
            parts.append(
                svg_hbars(
                    [p for p, _ in alone],
                    [r["changed"] for _, r in alone],
                    f"{name}: beats changed by each rounding point alone",
                    "beats",
                )
            )
    return "".join(parts)


def sec_sizes(inp: Inputs) -> str:
    if not inp.exports:
        return not_run("no export/<target>/report.json")
    parts = []
    for name, (d, rep) in inp.exports.items():
        arts = rep.get("artifacts", {})
        body = [
            [
                a,
                v.get("path"),
                fmt(v.get("bytes"), ",d"),
                fmt(v.get("weight_bytes"), ",d"),
                fmt(v.get("arena_bytes"), ",d"),
            ]
            for a, v in arts.items()
        ]
        parts.append(
            f"<h3>{esc(name)}</h3>"
            + table(["artifact", "file", "bytes", "weight bytes", "RAM / arena bytes"], body, 2)
            + f"<p>int8 weights {fmt(rep.get('weight_bytes_int8'), ',d')} B, C activations "
            f"{fmt(rep.get('activation_bytes_c'), ',d')} B, TFLite Micro arena {fmt(rep.get('tflm_arena_bytes'), ',d')} B; "
            f"ops {esc(', '.join(rep.get('ops', [])))}</p>"
        )
        sized = [(a, v["bytes"]) for a, v in arts.items() if v.get("bytes")]
        if sized:
            parts.append(
                svg_hbars([a for a, _ in sized], [b for _, b in sized], f"{name}: file size per artifact", "B")
            )
    return "".join(parts)


def sec_bench(inp: Inputs) -> str:
    if not inp.benches:
        return inp.absent(
            next((k for k in inp.errors if k.startswith("bench/")), "bench"),
            "no bench/<target>/bench.json (`edgeecg bench RUN --target T`)",
        )
    parts = []
    for name, (d, b) in inp.benches.items():
        parts.append(
            f"<h3>{esc(name)}: {fmt(b.get('beats'), ',d')} {esc(b.get('beats_split'))} beats, Δ against "
            f"{esc(b.get('reference'))} — {verdict(b.get('pass'))}</h3>"
        )
        body = []
        for r in b.get("rows", []):
            pc = r["per_class"]
            body.append(
                [
                    r["artifact"],
                    r.get("dtype"),
                    fmt(r["macro_f1"]),
                    f"{r.get('delta_macro_f1', 0):+.2f}",
                    fmt(pc["S"]["se"]),
                    fmt(pc["V"]["se"]),
                    fmt(r.get("bytes"), ",d"),
                    fmt(r.get("flash_bytes"), ",d"),
                    fmt(r.get("ram_bytes"), ",d"),
                    fmt(r.get("latency_us_p50"), ",.1f"),
                    fmt(r.get("latency_us_p99"), ",.1f"),
                    fmt(r.get("throughput_beats_per_s"), ",.0f"),
                    fmt(r.get("instructions_per_beat"), ",d"),
                    fmt(r.get("est_ms_at_target_clock"), ".2f"),
                    verdict(r.get("pass")) if r.get("pass") else verdict(False) + " " + esc(r.get("why", "")),
                ]
            )
        parts.append(
            table(
                [
                    "artifact",
                    "dtype",
                    "mF1",
                    "Δ pp",
                    "S Se",
                    "V Se",
                    "file B",
                    "flash B",
                    "RAM B",
                    "p50 µs",
                    "p99 µs",
                    "beats/s",
                    "instr/beat",
                    "ms@clk",
                    "result",
                ],
                body,
                2,
            )
        )
        timed = [r for r in b.get("rows", []) if r.get("latency_us_p50") is not None]
        if timed:
            parts.append(
                svg_hbars(
                    [r["artifact"] for r in timed],
                    [r["latency_us_p50"] for r in timed],
                    f"{name}: latency per beat at batch 1 (host p50)",
                    "µs",
                    log=True,
                    colours=[PALETTE[0] if r["dtype"] == "int8" else PALETTE[7] for r in timed],
                )
            )
        sized = [r for r in b.get("rows", []) if (r.get("flash_bytes") or r.get("bytes"))]
        if sized:
            parts.append(
                svg_hbars(
                    [r["artifact"] for r in sized],
                    [r.get("flash_bytes") or r.get("bytes") for r in sized],
                    f"{name}: size per artifact (flash where measured, else file)",
                    "B",
                    log=True,
                    colours=[PALETTE[0] if r["dtype"] == "int8" else PALETTE[7] for r in sized],
                )
            )
        for s in b.get("skipped", []):
            parts.append(f"<p class=small>skipped {esc(s['artifact'])}: {esc(s['why'])}</p>")
        if (d / "bench.png").exists():
            parts.append("<details><summary>bench.png</summary>" + img_png(d / "bench.png", "bench.png") + "</details>")
    return "".join(parts)


def sec_qrs(inp: Inputs) -> str:
    q = inp.qrs
    if q is None:
        return inp.absent("qrs.json", "no qrs.json (`edgeecg detect`, then pass --qrs PATH)")
    g = q["gross"]
    rows = [["ours", fmt(g["se"], ".2f"), fmt(g["ppv"], ".2f"), g["tp"], g["fn"], g["fp"]]]
    for p, v in q.get("peers", {}).items():
        pg = v["gross"]
        rows.append([p, fmt(pg["se"], ".2f"), fmt(pg["ppv"], ".2f"), pg["tp"], pg["fn"], pg["fp"]])
    parts = [
        f"<p class=small>{esc(inp.used['qrs.json'])}: EC57 beat by beat, tolerance {q.get('tolerance_ms')} ms, "
        f"{len(q.get('records', {}))} records</p>",
        table(["detector", "Se %", "+P %", "TP", "FN", "FP"], rows),
    ]
    recs = q.get("records", {})
    if recs:
        series = {"ours Se": [r["se"] for r in recs.values()], "ours +P": [r["ppv"] for r in recs.values()]}
        lo = min([v for s in series.values() for v in s] + [100.0])
        floor = max(0.0, float(int(lo) // 5 * 5))
        parts.append(
            svg_grouped_bars(list(recs), series, f"QRS detection per record, ours (axis from {floor:g} %)", ybase=floor)
        )
        body = [
            [
                r,
                v.get("beats"),
                fmt(v["se"], ".2f"),
                fmt(v["ppv"], ".2f"),
                v["fn"],
                v["fp"],
                *[fmt(q["peers"][p]["records"].get(r, {}).get("se"), ".2f") for p in q.get("peers", {})],
            ]
            for r, v in recs.items()
        ]
        parts.append(
            "<details><summary>per record</summary>"
            + table(["record", "beats", "Se", "+P", "FN", "FP", *[f"{p} Se" for p in q.get("peers", {})]], body)
            + "</details>"
        )
    return "".join(parts)


def sec_stream(inp: Inputs) -> str:
    s = inp.stream
    if s is None:
        return inp.absent("stream.json", "no stream.json (`edgeecg stream`, then pass --stream PATH)")
    parts = [f"<p class=small>{esc(inp.used['stream.json'])}</p>"]
    scalars = [
        [
            k,
            (
                fmt(v, ",d")
                if isinstance(v, int) and not isinstance(v, bool)
                else fmt(v, ".3f") if isinstance(v, float) else fmt(v)
            ),
        ]
        for k, v in s.items()
        if not isinstance(v, (dict, list))
    ]
    if scalars:
        parts.append(table(["", ""], scalars, left=2))
    reports = {k: v for k, v in s.items() if isinstance(v, dict) and "per_class" in v}
    for k, rep in reports.items():
        parts.append(f"<h3>{esc(k)}</h3>" + class_table(rep))
        if rep.get("confusion"):
            parts.append(svg_confusion(rep["confusion"], rep.get("labels", list(CLASSES)), f"confusion, {k}"))
    checks = s.get("checks")
    if isinstance(checks, dict) and checks:
        parts.append("<h3>checks</h3>" + table(["check", "result"], [[k, verdict(bool(v))] for k, v in checks.items()]))
    q = s.get("qrs")
    if isinstance(q, dict) and isinstance(q.get("gross"), dict):
        g = q["gross"]
        parts.append(
            f"<p>QRS detection while streaming ({q.get('tolerance_ms', '–')} ms): Se {fmt(g.get('se'), '.2f')} %, "
            f"+P {fmt(g.get('ppv'), '.2f')} % (FN {fmt(g.get('fn'), ',d')}, FP {fmt(g.get('fp'), ',d')})</p>"
        )
    deltas = s.get("deltas_pp")
    if isinstance(deltas, dict) and deltas:
        parts.append(
            "<h3>streamed against the reference beats (pp)</h3>"
            + table(
                list(deltas), [[f"{v:+.2f}" if isinstance(v, (int, float)) else fmt(v) for v in deltas.values()]], 0
            )
        )
    lat = s.get("latency_s")
    if isinstance(lat, dict) and lat.get("n"):
        parts.append(
            f"<p>latency from the R peak: median {fmt(lat.get('p50'), '.3f')} s, 99th percentile "
            f"{fmt(lat.get('p99'), '.3f')} s, max {fmt(lat.get('max'), '.3f')} s ({fmt(lat['n'], ',d')} beats)</p>"
        )
    pr = s.get("per_record")
    if isinstance(pr, dict) and pr and all(isinstance(v, dict) and "classes" in v for v in pr.values()):
        chart = {
            r: {
                c: {
                    "se": v["classes"][c].get("se"),
                    "ppv": v["classes"][c].get("ppv"),
                    "support": v["classes"][c].get("support"),
                    "predicted": 1,
                }
                for c in ("S", "V")
                if c in v["classes"]
            }
            for r, v in pr.items()
        }
        parts.append(per_record_chart(chart, "streamed"))
        rows = [
            [
                r,
                fmt(v.get("beats"), ",d"),
                fmt(v.get("classified"), ",d"),
                fmt(v.get("macro_f1")),
                fmt(v.get("bit_exact_c_vs_python")),
            ]
            for r, v in pr.items()
        ]
        parts.append(
            "<details><summary>per record</summary>"
            + table(["record", "beats", "classified", "macro-F1", "C == Python"], rows)
            + "</details>"
        )
    shown = set(reports) | {"checks", "qrs", "deltas_pp", "latency_s", "per_record"}
    other = {k: v for k, v in s.items() if isinstance(v, (dict, list)) and k not in shown}
    if other:
        parts.append(
            "<details><summary>other fields</summary><pre>"
            + esc(json.dumps(other, indent=1)[:20000])
            + "</pre></details>"
        )
    if len(reports) > 1:
        keys = list(reports)
        parts.append(
            svg_grouped_bars(
                ["S Se", "S +P", "V Se", "V +P", "macro-F1"],
                {
                    k: [
                        reports[k]["per_class"]["S"]["se"],
                        reports[k]["per_class"]["S"]["ppv"],
                        reports[k]["per_class"]["V"]["se"],
                        reports[k]["per_class"]["V"]["ppv"],
                        reports[k]["macro_f1"],
                    ]
                    for k in keys
                },
                "streaming (detected beats) against the reference beats",
            )
        )
    return "".join(parts)


def sec_explanations(inp: Inputs) -> str:
    if not inp.explains:
        return not_run("no explain/*/explain.json (`edgeecg explain RUN --record R`)")
    parts = []
    for d, e in inp.explains:
        i8 = e.get("int8", {})
        lines = [
            f"{k}: {v['disagreements']} of {v['beats']:,d} beats differ between int8 and float"
            for k, v in i8.items()
            if isinstance(v, dict)
        ]
        parts.append(
            f"<h3>record {esc(e.get('record'))}</h3><p class=small>Grad-CAM ({esc(e['methods']['gradcam']['layer'])}, "
            f"captum) as shading, integrated gradients ({e['methods']['integrated_gradients']['steps']} steps) as "
            f"line colour and RR bars. " + esc("; ".join(lines) or i8.get("note", "")) + "</p>"
        )
        for f in e.get("figures", []):
            p = d / f["file"]
            if p.exists():
                parts.append(img_png(p, f["caption"], 760))
    return "".join(parts)


def sec_hashes(inp: Inputs) -> str:
    parts = []
    used = [[k, str(p), f"<code>{sha256_file(p)}</code>"] for k, p in inp.used.items()]
    parts.append(
        "<h3>files this report was made from</h3>"
        + (table(["input", "path", "SHA-256"], used, 2) if used else not_run("no inputs"))
    )
    m = inp.manifest
    if m is None:
        parts.append(inp.absent("manifest.json", "no manifest.json"))
        return "".join(parts)
    for key, title in (("inputs", "input records (manifest.json)"), ("outputs", "run outputs (manifest.json)")):
        rows = [[k, f"<code>{esc(v)}</code>"] for k, v in m.get(key, {}).items()]
        parts.append(
            f"<details{' open' if key == 'outputs' else ''}><summary>{esc(title)}: {len(rows)} files</summary>"
            + table(["file", "SHA-256"], rows)
            + "</details>"
        )
    return "".join(parts)
