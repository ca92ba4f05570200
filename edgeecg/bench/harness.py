"""``edgeecg bench``: every artifact of one export run on the same beats; one table, pass or fail.

Rows: the float model and its exports (torch, TorchScript, torch.export, ONNX, TFLite), the int8
ones (ONNX QDQ, TFLite, TFLite Micro), the generated C on the host, and the same C cross-compiled
and run under qemu (see :mod:`edgeecg.bench.cross`). A row whose runtime is not installed is
listed under ``skipped`` with the reason, so the harness runs with the ``runtime`` extra alone
(numpy, onnxruntime, ai-edge-litert; no torch, no tensorflow).

Each row is checked against the target: accuracy loss vs the float model (every row), flash and
RAM (the rows the target deploys), and bit-exactness of the int8 rows that must equal the C. The
speed goal (the generated C is the fastest row at batch 1) is reported beside the verdict.
"""

from __future__ import annotations

import json
import os
import platform as host_platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.atomic import atomic_dir
from edgeecg.bench import cross, latency
from edgeecg.config import Config, test_key
from edgeecg.data import check_split, make_splits
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import agreement, summarise_artifact
from edgeecg.targets import Target, accuracy_loss_problems

FLOAT_REFERENCES = ("torch_fp32", "onnx_fp32", "tflite_fp32")
INT8_ROWS = {"onnx_int8", "tflite_int8", "tflm", "c_int8"} | {p.name for p in cross.PLATFORMS}
RUNTIMES = {
    "torch_fp32": "PyTorch eager (the trained model)", "torchscript": "TorchScript (torch.jit)",
    "pt2": "torch.export program", "onnx_fp32": "ONNX Runtime, fp32", "onnx_int8": "ONNX Runtime, QDQ int8",
    "tflite_fp32": "LiteRT interpreter, fp32", "tflite_int8": "LiteRT interpreter, int8",
    "tflm": "TFLite Micro reference kernels, int8", "c_int8": "generated C, host cc -O3 -march=native",
    **{p.name: p.description for p in cross.PLATFORMS},
}


@dataclass
class BenchOptions:
    beats: str = "ds1"               # "ds1" (DS1 check beats, see check_split) or "ds2" (final figures)
    repeat: int = 200                # timed single-beat calls per row
    warmup: int = 20
    max_beats: int | None = None     # first N beats only (quick runs, tests)
    cross: bool = True               # the qemu rows, where toolchains are installed


def load_export(export_dir: Path) -> dict:
    path = Path(export_dir) / "report.json"
    if not path.exists():
        raise EdgeECGError(f"{export_dir}: no report.json (export it first with `edgeecg quantize RUN --target T`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EdgeECGError(f"{path}: not valid JSON ({err.msg})") from None


def _python_runners(run_dir: Path, export_dir: Path, report: dict, n_inputs: int):
    """Runners of every exported artifact whose runtime is installed, and why the others are not."""
    from edgeecg import runtimes as rt

    files = {name: export_dir / a["path"] for name, a in report["artifacts"].items()}

    def trained():
        from edgeecg.run import load_run
        return load_run(run_dir)[1]

    makers = {"torch_fp32": lambda: rt.TorchRunner(trained())}
    for name in ("torchscript", "pt2", "onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8"):
        makers[name] = lambda name=name: rt.load_artifact(name, files[name])
    makers["tflm"] = lambda: rt.load_artifact("tflm", files["tflite_int8"], n_inputs)
    runners, skipped = {}, {}
    for name, make in makers.items():
        if name != "torch_fp32" and name not in files:
            skipped[name] = report.get("not_available", {}).get(name, "not exported for this target")
            continue
        try:
            runners[name] = make()
        except ImportError as err:
            skipped[name] = f"{err.name or err} is not installed"
    return runners, skipped


def host_info() -> dict:
    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith(("model name", "Model"))), "")
    except OSError:
        pass
    return {"machine": host_platform.machine(), "cpu": model or host_platform.processor(),
            "cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)}


def bench_export(run_dir: Path, cfg: Config, export_dir: Path, target: Target, data_dir: Path, out: Path,
                 opts: BenchOptions, force: bool = False, log=print) -> dict:
    """Bench every artifact in ``export_dir``; write ``bench.json/.md/.png`` into ``out``; return the result."""
    from edgeecg.bench.report import write_markdown, write_plot
    from edgeecg.quant import read_tflite
    from edgeecg.runtimes import Int8GraphRunner, outputs
    from firmware_export import convert
    from firmware_export.cmodel import DEFAULT_BLOCK

    report = load_export(export_dir)
    if opts.beats not in ("ds1", "val", "ds2", "test"):
        raise EdgeECGError(f"--beats {opts.beats!r}: use ds1 or {test_key(cfg)}")
    splits = make_splits(data_dir, cfg)
    beats = splits["test"] if opts.beats in ("ds2", "test") else check_split(splits)[1]
    if opts.max_beats:
        beats = beats.subset(np.arange(min(opts.max_beats, len(beats))))
    if len(beats) == 0:
        raise EdgeECGError(f"{data_dir}: no {opts.beats} beats to bench on")
    x, rr, y, n = beats.x, beats.rr, beats.y, len(beats)

    has_int8 = report.get("int8", True)      # False: a model without an int8/C path (float formats only)
    prefix = report.get("prefix", "edgeecg")
    cycled = np.arange(opts.warmup + opts.repeat) % n
    if has_int8:
        graph = read_tflite((export_dir / report["artifacts"]["tflite_int8"]["path"]).read_bytes())
        c_model = convert(graph, prefix, report.get("c_block", DEFAULT_BLOCK))   # what the device gets
        int8_in = Int8GraphRunner(graph)
        records = c_model.records(*int8_in.quantized_inputs(x, rr))
        timed_records = c_model.records(*int8_in.quantized_inputs(x[cycled], rr[cycled]))
    no_c = f"no int8 C for this model: {report.get('int8_unavailable', '')}"

    runners, skipped = _python_runners(Path(run_dir), export_dir, report,
                                       1 + (graph.rr_input is not None) if has_int8 else 2)
    logits, classes, timing, extra = {}, {}, {}, {}
    for name, runner in runners.items():
        log(f"{name}: {n:,d} beats, then {opts.repeat} timed calls at batch 1 ...")
        t0 = time.perf_counter()
        logits[name], classes[name] = outputs(runner, x, rr)
        throughput = n / (time.perf_counter() - t0)
        ns = latency.time_runner(runner, x, rr, opts.repeat, opts.warmup)
        timing[name] = {**latency.summary_us(ns), "throughput_beats_per_s": round(throughput, 1)}

    if not has_int8:
        skipped["c_int8"] = no_c
    elif shutil.which("cc") and shutil.which("size"):
        log(f"c_int8: {n:,d} beats on the host ...")
        host = latency.HostC(convert(graph, prefix, latency.HOST_BLOCK))      # built for this machine
        logits["c_int8"], classes["c_int8"], ns_all = host.run(records, n)
        _, _, ns = host.run(timed_records, len(cycled))
        timing["c_int8"] = {**latency.summary_us(ns[opts.warmup:]),
                            "throughput_beats_per_s": round(n / (ns_all.sum() / 1e9), 1)}
        extra["c_int8"] = {"flash_bytes": host.flash_bytes, "ram_bytes": host.static_ram_bytes,
                           "build": f"block {latency.HOST_BLOCK}, cc {host.flags}, {host.kernels} kernels"}
    else:
        skipped["c_int8"] = "no host C compiler (cc) or size"

    if not has_int8:
        for plat in cross.PLATFORMS:
            skipped[plat.name] = no_c
    elif opts.cross:
        with tempfile.TemporaryDirectory(prefix="edgeecg-qemu-") as tmp:
            plugin = None
            for plat in cross.PLATFORMS:
                why = plat.missing()
                if why:
                    skipped[plat.name] = why
                    continue
                plugin = plugin or cross.build_plugin(Path(tmp))
                log(f"{plat.name}: {n:,d} beats under qemu, instructions counted ...")
                try:
                    res = cross.run_platform(plat, c_model, records, n, plugin)
                except cross.DoesNotFit as err:
                    skipped[plat.name] = str(err)
                    continue
                logits[plat.name], classes[plat.name] = res.logits, res.classes
                ipb = res.instructions_per_beat
                extra[plat.name] = {"flash_bytes": res.flash_bytes, "ram_bytes": res.static_ram_bytes,
                                    "instructions_per_beat": round(ipb, 1),
                                    "est_ms_at_target_clock": round(ipb / (target.clock_mhz * 1e3), 3),
                                    "isa_proxy": plat.isa != target.isa}
    else:
        for plat in cross.PLATFORMS:
            skipped[plat.name] = "--no-cross"

    reference = next((r for r in FLOAT_REFERENCES if r in logits), None)
    if reference is None:
        raise EdgeECGError(f"{export_dir}: no float artifact could be run, so there is no reference")
    ref = summarise_artifact(y, logits[reference], classes[reference])
    c_out = (logits["c_int8"], classes["c_int8"]) if "c_int8" in logits else None
    rows = [_row(name, y, lg, classes[name], ref, report, timing.get(name, {}), extra.get(name, {}), c_out)
            for name, lg in logits.items()]
    macs = report["macs_per_beat"]
    result = {
        "target": target.name, "run": str(run_dir), "export": str(export_dir),
        "multilabel": y.ndim == 2, "int8": has_int8,
        "beats_split": opts.beats, "beats": n, "reference": reference, "host": host_info(),
        "repeat": opts.repeat, "warmup": opts.warmup,
        "macs_per_beat": macs,
        "ideal_us_at_target_clock": round(macs / (target.peak_macs_per_cycle * target.clock_mhz), 2),
        "budget": {"flash_bytes": target.flash_bytes, "ram_bytes": target.ram_bytes,
                   "max_macro_f1_loss_pp": target.max_macro_f1_loss_pp, "max_se_loss_pp": target.max_se_loss_pp,
                   "deploy": list(target.deploy)},
        "speed": _speed(timing),
        "rows": rows,
        "skipped": [{"artifact": k, "why": v} for k, v in skipped.items()],
    }
    _check(result, target)
    with atomic_dir(out, force=force) as tmp:
        (tmp / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
        write_markdown(tmp / "bench.md", result)
        write_plot(tmp / "bench.png", result)
    return result


def _row(name: str, y, lg, cls, ref: dict, report: dict, timing: dict, extra: dict, c_out) -> dict:
    """One artifact's row; ``cls`` its classes, ``c_out`` the host C's (logits, classes) or None."""
    art = report["artifacts"].get("c_int8" if name.startswith("c_") else name, {})
    int8 = name in INT8_ROWS
    row = {"artifact": name, "runtime": RUNTIMES[name], "dtype": "int8" if int8 else "fp32",
           **summarise_artifact(y, lg, cls, ref),
           "bytes": art.get("bytes"),
           "weight_bytes": report["weight_bytes_int8"] if int8 else 4 * report["params"],
           "flash_bytes": extra.get("flash_bytes", report["artifacts"]["tflite_int8"]["bytes"] if name == "tflm" else None),
           "ram_bytes": extra.get("ram_bytes", report["tflm_arena_bytes"] if name == "tflm" else None),
           "latency_us_p50": timing.get("latency_us_p50"), "latency_us_p99": timing.get("latency_us_p99"),
           "noise_iqr_pct": timing.get("noise_iqr_pct"),
           "throughput_beats_per_s": timing.get("throughput_beats_per_s"),
           "instructions_per_beat": extra.get("instructions_per_beat"),
           "est_ms_at_target_clock": extra.get("est_ms_at_target_clock"),
           "isa_proxy": extra.get("isa_proxy"), **({"build": extra["build"]} if "build" in extra else {})}
    if int8 and c_out is not None:
        same_class = not name.startswith("c_") or np.array_equal(cls, c_out[1])   # a C build decides alike
        row["bit_exact_vs_c"] = bool(np.array_equal(lg, c_out[0]) and same_class)
        row["class_agreement_vs_c_pct"] = agreement(cls, c_out[1])
    return row


def _speed(timing: dict) -> dict:
    """The project's speed goal (the generated C is the fastest row per beat at batch 1 on the host)
    and how many times faster the C is than the int8 interpreters. Reported, not a target budget."""
    p50 = {name: t["latency_us_p50"] for name, t in timing.items()}
    int8 = {name: v for name, v in p50.items() if name in INT8_ROWS}
    c = p50.get("c_int8")
    out = {"fastest_at_batch1": min(p50, key=p50.get) if p50 else None,
           "fastest_int8_at_batch1": min(int8, key=int8.get) if int8 else None}
    out["c_fastest_at_batch1"] = out["fastest_at_batch1"] == "c_int8"
    out["c_fastest_int8_at_batch1"] = out["fastest_int8_at_batch1"] == "c_int8"
    for other in ("onnx_int8", "tflite_int8", "tflm"):
        o = timing.get(other, {}).get("latency_us_p50")
        if c and o:
            out[f"c_vs_{other}"] = round(o / c, 1)
    return out


def _check(result: dict, target: Target) -> None:
    """Set ``pass`` and ``why`` on every row and on the whole result. The accuracy-loss and size budgets
    hold what the target deploys (as ``quantize.check_budget``); a host reference over the loss budget
    passes with a ``note``."""
    for row in result["rows"]:
        problems = accuracy_loss_problems(row, target)
        if not target.deploys(row["artifact"]):
            if problems:
                row["note"] = f"over the accuracy budget; {target.name} does not run it: " + "; ".join(problems)
            problems = []
        else:
            if row["weight_bytes"] > target.flash_bytes:
                problems.append(f"weights {row['weight_bytes']:,d} B over the flash budget {target.flash_bytes:,d} B "
                                f"by {row['weight_bytes'] - target.flash_bytes:,d} B")
            if row["ram_bytes"] is not None and row["ram_bytes"] > target.ram_bytes:
                problems.append(f"RAM {row['ram_bytes']:,d} B over the budget {target.ram_bytes:,d} B "
                                f"by {row['ram_bytes'] - target.ram_bytes:,d} B")
        if row.get("bit_exact_vs_c") is False and row["artifact"] in ("tflm", *(p.name for p in cross.PLATFORMS)):
            problems.append("output differs from the host C")
        row["pass"] = not problems
        row["why"] = "; ".join(problems) if problems else "ok"
    failed = [f"{r['artifact']}: {r['why']}" for r in result["rows"] if not r["pass"]]
    result["pass"] = not failed
    result["problems"] = failed


