"""``bench.md`` (readable as is, also what the CLI prints) and ``bench.png``."""

from __future__ import annotations

from pathlib import Path

from edgeecg.atomic import write_text_atomic


def _fmt(v, spec: str = ",.0f", none: str = "–") -> str:
    return none if v is None else format(v, spec)


# The columns after the accuracy ones, shared by both tables.
_TAIL_HEAD = (f"{'file B':>9}{'weight B':>9}{'flash B':>9}{'RAM B':>8}{'p50 µs':>11}{'p99 µs':>11}"
              f"{'beats/s':>9}{'instr/beat':>11}{'ms@clk':>8}  result")


def _tail(r: dict) -> str:
    """Sizes, speed and verdict of one row."""
    ms = _fmt(r["est_ms_at_target_clock"], ".2f") + ("*" if r.get("isa_proxy") else "")
    return (f"{_fmt(r['bytes']):>9}{_fmt(r['weight_bytes']):>9}{_fmt(r['flash_bytes']):>9}{_fmt(r['ram_bytes']):>8}"
            f"{_fmt(r['latency_us_p50'], ',.1f'):>11}{_fmt(r['latency_us_p99'], ',.1f'):>11}"
            f"{_fmt(r['throughput_beats_per_s']):>9}{_fmt(r['instructions_per_beat']):>11}{ms:>8}  "
            f"{'FAIL: ' + r['why'] if not r['pass'] else 'PASS (' + r['note'] + ')' if r.get('note') else 'PASS'}")


def _multilabel_table(result: dict) -> str:
    """Rows of a multi-label model: macro-ROC-AUC, its Δ vs the float model, and each label's AUC."""
    labels = list(result["rows"][0]["per_class"])
    head = f"{'artifact':<15}{'mAUC':>7}{'Δ':>8}" + "".join(f"{c:>6}" for c in labels) + _TAIL_HEAD
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(
            f"{r['artifact']:<15}{_fmt(r['macro_auc'], '.4f'):>7}{_fmt(r['delta_macro_auc'], '+.4f'):>8}"
            + "".join(f"{_fmt(r['per_class'][c]['auc'], '.3f'):>6}" for c in labels) + _tail(r))
    return "\n".join(lines)


def table(result: dict) -> str:
    """The fixed-width table of every row."""
    if result.get("multilabel"):
        return _multilabel_table(result)
    head = f"{'artifact':<15}{'mF1':>6}{'Δ pp':>7}{'S Se':>6}{'S +P':>6}{'V Se':>6}{'V +P':>6}{'F Se':>6}" + _TAIL_HEAD
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        pc = r["per_class"]
        lines.append(
            f"{r['artifact']:<15}{r['macro_f1']:>6.1f}{r['delta_macro_f1']:>+7.2f}{pc['S']['se']:>6.1f}"
            f"{pc['S']['ppv']:>6.1f}{pc['V']['se']:>6.1f}{pc['V']['ppv']:>6.1f}{pc['F']['se']:>6.1f}" + _tail(r))
    return "\n".join(lines)


def summary(result: dict) -> str:
    """Verdict, speed ratios and skipped rows, below the table."""
    lines = []
    speed = result["speed"]
    ratios = {k.removeprefix("c_vs_"): v for k, v in speed.items() if k.startswith("c_vs_")}
    if ratios:
        lines.append("generated C per beat at batch 1: " + ", ".join(
            f"{v:g}x the speed of {k}" for k, v in ratios.items()))
    for key, which in (("", "artifact"), ("_int8", "int8 artifact")):
        fastest = speed.get(f"fastest{key}_at_batch1")
        if fastest:
            lines.append(f"speed goal (generated C the fastest {which} at batch 1 on this host): "
                         f"{'met' if speed[f'c_fastest{key}_at_batch1'] else 'MISSED, fastest is ' + fastest}")
    lines.append(f"MACs/beat {result['macs_per_beat']:,d}; ideal time at {result['target']}'s clock "
                 f"{result['ideal_us_at_target_clock']:,.1f} µs (MACs / (peak MACs per cycle × clock))")
    for s in result["skipped"]:
        lines.append(f"skipped {s['artifact']}: {s['why']}")
    lines.append(f"{result['target']}: {'PASS' if result['pass'] else 'FAIL'}" +
                 ("" if result["pass"] else " — " + "; ".join(result["problems"])))
    return "\n".join(lines)


def write_markdown(path: Path, result: dict) -> None:
    h, b = result["host"], result["budget"]
    if result.get("multilabel"):
        from edgeecg.metrics import MAX_MACRO_AUC_LOSS
        accuracy = (f"Multi-label model: the accuracy columns are macro-ROC-AUC, its Δ vs the float model "
                    f"(allowed -{MAX_MACRO_AUC_LOSS}), and each label's ROC-AUC")
    else:
        accuracy = "Columns: macro-F1 (N,S,V,F) %, its Δ vs the float model, per-class Se/+P %"
    text = f"""# edgeecg bench: {result['target']}

- run `{result['run']}`, export `{result['export']}`
- beats: {result['beats']:,d} {result['beats_split']} beats; accuracy Δ against `{result['reference']}` (float)
- budget: flash {b['flash_bytes']:,d} B, RAM {b['ram_bytes']:,d} B (checked on {', '.join(b['deploy'])});
  allowed loss {b['max_macro_f1_loss_pp']} pp macro-F1, {b['max_se_loss_pp']} pp S and V Se
- host: {h['cpu']} ({h['machine']}, {h['cores']} cores, load {h['load_average_1min']} at start);
  latency = median and p99 of {result['repeat']} single-beat calls after {result['warmup']} warm-up calls;
  `noise_iqr_pct` in bench.json is the inter-quartile range relative to the median

{accuracy}, file bytes, weight bytes,
flash (model object text+data, or the .tflite for TFLite Micro without its interpreter), RAM
(static data+bss of the C, or the measured TFLite Micro arena), latency, batched throughput,
instructions per beat counted under qemu, and that count at the target's clock at one instruction
per cycle (* = another ISA standing in for the target's).

```
{table(result)}
```

{summary(result)}
"""
    write_text_atomic(path, text)


def write_plot(path: Path, result: dict) -> None:
    """Accuracy delta vs size, and latency per artifact."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    multilabel = bool(result.get("multilabel"))
    key = "delta_macro_auc" if multilabel else "delta_macro_f1"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in rows:
        size = r["flash_bytes"] or r["bytes"] or r["weight_bytes"]
        color = "tab:red" if not r["pass"] else ("tab:blue" if r["dtype"] == "int8" else "tab:gray")
        delta = r[key] or 0.0
        ax1.scatter(size, delta, color=color)
        ax1.annotate(r["artifact"], (size, delta), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if multilabel:
        from edgeecg.metrics import MAX_MACRO_AUC_LOSS
        ax1.axhline(-MAX_MACRO_AUC_LOSS, color="tab:red", linestyle="--", linewidth=1)
    else:
        ax1.axhline(-result["budget"]["max_macro_f1_loss_pp"], color="tab:red", linestyle="--", linewidth=1)
    ax1.set_xscale("log")
    ax1.set_xlabel("bytes (flash, else file)")
    ax1.set_ylabel(f"Δ macro-AUC vs {result['reference']}" if multilabel else
                   f"Δ macro-F1 vs {result['reference']} (pp)")
    ax1.set_title(f"{result['target']}: accuracy vs size ({result['beats']:,d} {result['beats_split']} beats)")
    timed = [r for r in rows if r["latency_us_p50"] is not None]
    emulated = [r for r in rows if r["est_ms_at_target_clock"] is not None]
    names = [r["artifact"] for r in timed] + [f"{r['artifact']} (est.)" for r in emulated]
    values = [r["latency_us_p50"] for r in timed] + [1e3 * r["est_ms_at_target_clock"] for r in emulated]
    ax2.barh(names, values, color=["tab:blue"] * len(timed) + ["tab:orange"] * len(emulated))
    ax2.set_xscale("log")
    ax2.set_xlabel("µs per beat (host p50; qemu rows: instructions at target clock)")
    ax2.invert_yaxis()
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
