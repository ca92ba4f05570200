"""``edgeecg stream``: every record played through the generated stream C and its Python twin, the
detected-and-classified beats scored with EC57 rules, and the pipeline's RAM, flash and CPU measured.

``edgeecg stream RUN --target T [--records 100,103] [--data DIR] --out DIR [--force]`` reads the
export ``RUN/export/T`` (``edgeecg quantize RUN --target T``), compiles its
``PREFIX_{stream,qrs,model}.c`` for the host, and plays each record's ADC counts (the run's lead, MLII,
and for a two-lead recipe its second lead beside it) through it and through
:func:`edgeecg.stream.frontend.run_record`; every output (R peak, class, logits, pre-RR, the
sample at which the beat came out, the counters) must be equal. It writes ``stream.json`` (the dict
:func:`stream_records` returns) and ``stream.md`` (:func:`markdown`).

Scoring (EC57, as ``bxb``): reference beats are every AAMI beat annotation; a classified beat
matches a reference beat within 150 ms (:func:`edgeecg.stream.ec57.match`; reference-marked
ventricular flutter excluded). The confusion has a 6th row and column, "no beat": a reference beat
with no classified beat is counted in its class's row under "no beat" (so Se drops), a classified
beat with no reference beat in the "no beat" row under the class it was given (so +P drops).
``ds2_reference_beats`` is the same int8 model on the float pipeline's beats (reference R peaks,
:func:`edgeecg.processing.beats.extract_beats`): what the model scores when detection is perfect.
``twin_vs_float_inputs`` compares, on those reference R peaks, the twin's int8 inputs with the
float pipeline's inputs quantized as the ``.tflite`` does.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from edgeecg.atomic import write_dir
from edgeecg.bench.cross import PLATFORMS
from edgeecg.config import DS2, PACED, load_config
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import (
    list_records,
    read_header,
    resolve_data_dir,
    second_lead_name,
)
from edgeecg.metrics import classification_report, report_from_confusion
from edgeecg.processing.aami import CLASSES
from edgeecg.stream import ec57
from edgeecg.stream.decimate import FS
from edgeecg.stream.detection import DATA_HELP, read_adc, read_adcs, resampled
from edgeecg.stream.frontend import (
    FrontEndSpec,
    classify,
    front_end_spec,
    max_detector_delay,
    reference_inputs,
    run_record,
)
from edgeecg.stream.rate import rate_converter

NO_BEAT = "no beat"
LABELS = (*CLASSES, NO_BEAT)
CROSS_SECONDS = 300          # seconds of ECG each qemu platform runs (the first record's start)
ESP32_RAM_BAR = 16 * 1024
CPU_BAR_PERCENT = 1.0


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

def read_lead(data_dir: Path, name: str, lead: str):
    """(int16 ADC counts of ``lead``, fs, adc_gain, annotation samples, symbols, header path); one-line
    errors for a missing lead, a truncated ``.dat`` and the rest of :func:`detection.read_adc`'s checks."""
    rec = read_adc(data_dir, name, lead, fallback=False)
    return rec.adc, rec.fs, rec.adc_gain, rec.ann_samples, rec.ann_symbols, Path(data_dir) / f"{name}.hea"


def read_leads(data_dir: Path, name: str, data_cfg, fs: float | None = None, adc_gain: float | None = None):
    """:func:`read_lead` of what the front end of the recipe ``data_cfg`` reads: its lead, ``(n,)``
    counts, and for a two-lead recipe (``[data] second_lead``) its second lead beside it, ``(n, 2)``
    (rescaled to the first lead's counts/mV); both resampled to ``fs`` with ``adc_gain`` counts/mV where given."""
    leads = [data_cfg.lead]
    if data_cfg.second_lead:
        leads.append(second_lead_name(Path(data_dir), name, data_cfg.lead, data_cfg.second_lead))
    recs = read_adcs(data_dir, name, leads, fallback=False)
    recs = [recs[0]] + [resampled(r, recs[0].fs, recs[0].adc_gain) for r in recs[1:]]
    if fs is not None:
        recs = [resampled(r, float(fs), adc_gain) for r in recs]
    first = recs[0]
    adc = first.adc if len(recs) == 1 else np.stack([r.adc for r in recs], axis=1)
    return adc, first.fs, first.adc_gain, first.ann_samples, first.ann_symbols, Path(data_dir) / f"{name}.hea"


def float_beats(data_dir: Path, name: str, data_cfg):
    from edgeecg.processing.beats import read_beats
    return read_beats(data_dir, name, data_cfg)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------

def ec57_report(cm: np.ndarray) -> dict:
    """A :func:`edgeecg.metrics.classification_report`-shaped dict of a 6 x 6 confusion whose last
    row and column are "no beat": Se of a class counts its missed beats, +P its false detections."""
    k = len(CLASSES)
    return {**report_from_confusion(cm, LABELS), "missed": int(cm[:k, k].sum()),
            "false_detections": int(cm[k, :k].sum())}


def classified_confusion(ref: np.ndarray, ref_cls: np.ndarray, det: np.ndarray, det_cls: np.ndarray,
                         tolerance: int, exclude=()) -> tuple[np.ndarray, ec57.Match]:
    """6 x 6 confusion of classified beats ``det`` (class ``det_cls``) against reference beats."""
    m = ec57.match(ref, det, tolerance, exclude)
    n = len(CLASSES)
    cm = np.zeros((n + 1, n + 1), np.int64)
    np.add.at(cm, (ref_cls[m.ref_index], det_cls[m.det_index]), 1)
    np.add.at(cm, (ref_cls[m.fn_index], np.full(len(m.fn_index), n)), 1)
    np.add.at(cm, (np.full(len(m.fp_index), n), det_cls[m.fp_index]), 1)
    return cm, m


def _histogram(d: np.ndarray) -> dict:
    d = np.asarray(d, dtype=np.int64).reshape(-1)
    if d.size == 0:
        return {"values": 0}
    vals, counts = np.unique(d, return_counts=True)
    return {"values": int(d.size), "equal_pct": round(100.0 * float(np.mean(d == 0)), 4),
            "within_1_pct": round(100.0 * float(np.mean(np.abs(d) <= 1)), 4), "max_abs": int(np.abs(d).max()),
            "histogram_lsb": {str(int(v)): int(c) for v, c in zip(vals, counts)}}


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

def load_export(run_dir: Path, target):
    """(data config, int8 graph, prefix, export dir) of ``RUN/export/TARGET``."""
    from edgeecg.quant import read_tflite

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise EdgeECGError(f"{run_dir}: not a run directory (no config.toml)")
    cfg = load_config(run_dir / "config.toml")
    export = run_dir / "export" / target.name
    tfl = export / "model.int8.tflite"
    if not tfl.exists():
        raise EdgeECGError(f"{export}: no model.int8.tflite (export it first with "
                           f"`edgeecg quantize {run_dir} --target {target.name}`)")
    prefix = "edgeecg"
    if (export / "report.json").exists():
        try:
            prefix = json.loads((export / "report.json").read_text()).get("prefix", prefix)
        except json.JSONDecodeError as err:
            raise EdgeECGError(f"{export / 'report.json'}: not valid JSON ({err.msg})") from None
    graph = read_tflite(tfl.read_bytes(), str(tfl))
    return cfg, graph, prefix, export


def check_generated(export: Path, prefix: str, spec: FrontEndSpec) -> None:
    """The stream C in ``export`` must be what this twin's spec generates (else it is stale)."""
    from firmware_export.stream import render_all

    for name, text in render_all(prefix, spec).items():
        path = export / name
        if not path.exists():
            raise EdgeECGError(f"{path}: missing (re-export with `edgeecg quantize RUN --target T`)")
        if path.read_text() != text:
            raise EdgeECGError(f"{path}: differs from what this edgeecg generates for the run and target "
                               f"(re-export with `edgeecg quantize RUN --target T`)")


def _twin_vs_float(py, ref, fs, fb, fcls, spec, cfg, graph, runner, hea, diffs_beat, diffs_rr, same_class) -> dict:
    """The twin's int8 inputs on the reference R peaks against the float pipeline's, quantized: the
    differences are appended to ``diffs_beat`` / ``diffs_rr`` / ``same_class``; returns the record's shares."""
    r_ref = np.round(ref * (cfg.data.fs / fs)).astype(np.int64)
    kept, tbq, trq = reference_inputs(py.filtered, r_ref, spec)
    if not np.array_equal(kept, fb.sample):
        raise EdgeECGError(f"{hea}: the twin keeps {len(kept)} reference beats, the float pipeline "
                           f"{len(fb.sample)}")
    fbq, frq = runner.quantized_inputs(fb.x, fb.rr)
    diffs_beat.append((tbq.astype(np.int64) - fbq).reshape(-1))
    if frq is not None:
        diffs_rr.append((trq.astype(np.int64) - frq).reshape(-1))
    same_class.append(classify(graph, tbq, trq)[1] == fcls)
    pct = lambda a: round(100.0 * float(np.mean(a)), 4) if np.size(a) else None  # noqa: E731
    return {"beat_equal_pct": pct(diffs_beat[-1] == 0),
            "rr_equal_pct": pct(diffs_rr[-1] == 0) if frq is not None else None,
            "class_agreement_pct": pct(same_class[-1])}


def stream_records(run_dir, target, data_dir, records=None, cross_platforms=True, log=None,
                   adc_hz: int | None = None, lead: str | None = None) -> dict:
    """Play, check and score every record; returns the content of ``stream.json``.

    ``adc_hz``: every record resampled to this rate and rescaled to the target's ``adc_gain`` first
    (:func:`edgeecg.stream.detection.resampled`) and the front end generated for it (in a temporary
    copy of the export), a stand-in for a front end sampling there; the twin-versus-float input
    comparison is then left out (other samples). Without it, records sampled at another rate than the
    target's (SVDB at 128 Hz) run through a front end generated for their own rate, the same way.
    ``lead``: the lead to play (default: the run's, ``[data] lead``; SVDB's are ``0``/``ECG1``)."""
    from edgeecg.runtimes import Int8GraphRunner
    from firmware_export import stream as stream_c
    from firmware_export.templating import write_files

    t_start = time.perf_counter()
    cfg, graph, prefix, export = load_export(run_dir, target)
    data_dir = Path(data_dir)
    names = list(records) if records else [r for r in DS2 if r not in PACED]
    if lead is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, lead=str(lead)))
    if adc_hz is None and names:             # the data's own rate, where it is not the target's
        rates = sorted({float(read_header(data_dir, n).fs) for n in names})
        if len(rates) > 1:
            raise EdgeECGError(f"{data_dir}: the records are sampled at {', '.join(f'{r:g}' for r in rates)} Hz; "
                               f"give --adc-hz to play them at one rate")
        adc_hz = rates[0] if rates[0] != target.adc_hz else None
    resample_to = adc_hz if adc_hz is not None and adc_hz != target.adc_hz else None
    spec = front_end_spec(cfg.data, graph, resample_to or target.adc_hz, target.adc_gain)
    if resample_to is None:
        check_generated(export, prefix, spec)
    runner = Int8GraphRunner(graph)
    seconds = {"read": 0.0, "python": 0.0, "c": 0.0, "reference": 0.0, "cross": 0.0}
    n_cls = len(CLASSES)
    cm_total = np.zeros((n_cls + 1, n_cls + 1), np.int64)
    ref_y, ref_pred = [], []
    qrs_counts, per_record = [], {}
    diffs_beat, diffs_rr, same_class = [], [], []
    latency = []
    all_exact, samples, total_seconds = True, 0, 0.0
    first_adc = None
    with tempfile.TemporaryDirectory(prefix="edgeecg-stream-") as tmp:
        source = export
        if resample_to is not None:          # the export's C, with the stream and detector for this rate
            source = Path(tmp) / "export"
            shutil.copytree(export, source)
            write_files(source, stream_c.render_all(prefix, spec))
        exe = stream_c.build_host(source, Path(tmp) / "host", prefix)
        for name in names:
            t0 = time.perf_counter()
            # resample_to: as the target's ADC would deliver it, its rate and gain
            adc, fs, gain, ann, symbols, hea = read_leads(data_dir, name, cfg.data, resample_to,
                                                          target.adc_gain if resample_to is not None else None)
            seconds["read"] += time.perf_counter() - t0
            if abs(fs - spec.adc_hz) > 1e-6:
                raise EdgeECGError(f"{hea}: sampled at {fs:g} Hz, target {target.name} takes adc_hz = {spec.adc_hz:g}")
            if abs(gain - spec.adc_gain) > 1e-6 * spec.adc_gain:
                raise EdgeECGError(f"{hea}: {gain:g} ADC counts/mV, target {target.name} has adc_gain = {spec.adc_gain:g}")
            if first_adc is None:
                first_adc = adc
            samples += len(adc)
            total_seconds += len(adc) / fs
            t0 = time.perf_counter()
            py = run_record(adc, spec, graph)
            seconds["python"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            cb, counters, _ = stream_c.run_host(exe, adc, spec.n_classes)
            seconds["c"] += time.perf_counter() - t0
            exact = (len(cb) == len(py.r_peak) and all(np.array_equal(cb[f], v) for f, v in (
                ("r_peak", py.r_peak), ("cls", py.cls), ("pre_rr", py.pre_rr), ("emitted", py.emitted),
                ("logits", py.logits))) and counters == vars(py.counters))
            all_exact &= exact

            ref, ref_cls = ec57.reference_beats(ann, symbols)
            vf = ec57.vf_intervals(ann, symbols, end=len(adc))
            tol = ec57.tolerance_samples(fs)
            qrs = ec57.match(ref, spec.rate.adc_index(py.detections), tol, vf)
            qrs_counts.append(qrs.counts())
            cm, m = classified_confusion(ref, ref_cls, spec.rate.adc_index(py.r_peak), py.cls, tol, vf)
            cm_total += cm
            latency.append(np.floor((py.emitted - spec.rate.adc_index(py.r_peak)) * (FS / spec.adc_hz)).astype(np.int64))

            # the same int8 model on the float pipeline's beats, and the twin on the same R peaks
            t0 = time.perf_counter()
            fb = float_beats(data_dir, name, cfg.data)
            fcls = runner.classify(fb.x, fb.rr)[1] if len(fb.y) else np.zeros(0, np.int64)
            ref_y.append(fb.y)
            ref_pred.append(fcls)
            twin = None if resample_to is not None else _twin_vs_float(
                py, ref, fs, fb, fcls, spec, cfg, graph, runner, hea, diffs_beat, diffs_rr, same_class)
            seconds["reference"] += time.perf_counter() - t0

            rep = ec57_report(cm)
            per_record[name] = {
                "samples": int(len(adc)), "beats": int(len(ref)), "detections": int(len(py.detections)),
                "classified": int(len(py.r_peak)), "bit_exact_c_vs_python": bool(exact),
                "qrs": qrs.counts(), "counters": counters,
                "classes": {c: {k: rep["per_class"][c][k] for k in ("se", "ppv", "support")} for c in ("S", "V")},
                "macro_f1": rep["macro_f1"],
                "reference_beats": {"beats": int(len(fb.y)), "macro_f1": classification_report(
                    fb.y, fcls)["macro_f1"] if len(fb.y) else None},
                "twin_vs_float_inputs": twin,
            }
            if log:
                log(f"{name}: {len(ref)} beats, QRS Se {qrs.se:6.2f} +P {qrs.ppv:6.2f}, classified {len(py.r_peak)}, "
                    f"S Se {rep['per_class']['S']['se']:6.2f} V Se {rep['per_class']['V']['se']:6.2f}, "
                    f"C == Python: {exact}")
        cross = {"ram_bytes": None, "flash_bytes": None, "state_bytes": None, "instructions_per_ecg_second": {},
                 "front_end_instructions_per_ecg_second": {},
                 "cross": {"skipped": {cross_key(p.name): "--no-cross" for p in PLATFORMS}, "platforms": {}}}
        if cross_platforms and first_adc is not None:
            t0 = time.perf_counter()
            cross = measure_cross(source, prefix, spec, first_adc[: int(CROSS_SECONDS * spec.adc_hz)], exe, log)
            seconds["cross"] = time.perf_counter() - t0

    y = np.concatenate(ref_y) if ref_y else np.zeros(0, np.int64)
    yp = np.concatenate(ref_pred) if ref_pred else np.zeros(0, np.int64)
    lat = np.concatenate(latency) if latency else np.zeros(0, np.int64)
    db = np.concatenate(diffs_beat) if diffs_beat else np.zeros(0, np.int64)
    dr = np.concatenate(diffs_rr) if diffs_rr else np.zeros(0, np.int64)
    sc = np.concatenate(same_class) if same_class else np.zeros(0, bool)
    ds2 = ec57_report(cm_total)
    ref_report = classification_report(y, yp)
    seconds = {k: round(v, 2) for k, v in seconds.items()}
    seconds["total"] = round(time.perf_counter() - t_start, 2)
    result = {
        "run": str(run_dir), "target": target.name, "prefix": prefix, "export": str(export),
        "bit_exact_c_vs_python": bool(all_exact),
        "samples": int(samples), "ecg_seconds": round(total_seconds, 1),
        "records": names,
        "adc": {"hz": spec.adc_hz, "gain_counts_per_mv": spec.adc_gain, "rate_conversion": spec.rate.describe(),
                "records_resampled_to": resample_to},
        "qrs": {"tolerance_ms": round(ec57.TOLERANCE_S * 1000), "gross": ec57.gross(qrs_counts)},
        "scoring": ("EC57 beat by beat, 150 ms: every AAMI beat annotation is a reference beat; a reference beat "
                    "with no classified beat counts as 'no beat' in its class's row (Se drops), a classified "
                    "beat with no reference beat as 'no beat' row under its class (+P drops); reference-marked "
                    "ventricular flutter excluded"),
        "ds2": ds2,
        "ds2_reference_beats": ref_report,
        "deltas_pp": {"macro_f1": round(ds2["macro_f1"] - ref_report["macro_f1"], 3),
                      **{f"{c}_se": round(ds2["per_class"][c]["se"] - ref_report["per_class"][c]["se"], 3)
                         for c in ("N", "S", "V", "F")},
                      **{f"{c}_ppv": round(ds2["per_class"][c]["ppv"] - ref_report["per_class"][c]["ppv"], 3)
                         for c in ("N", "S", "V", "F")}},
        "twin_vs_float_inputs": {
            "beats": int(len(sc)),
            "beat_lsb": _histogram(db), "rr_lsb": _histogram(dr),
            "class_agreement_pct": round(100.0 * float(np.mean(sc)), 4) if len(sc) else None,
        },
        "latency_s": _latency(lat),
        "front_end": {"ring_samples": spec.ring_n, "pending_beats": spec.pend_n, "filter_q": spec.bandpass.g,
                      "window": [spec.before, spec.after], "max_detector_delay_samples": max_detector_delay(spec.qrs)},
        "per_record": per_record,
        **cross,
        "seconds": seconds,
    }
    add_cpu_percent(result, target.clock_mhz)
    result["checks"] = checks(result, target)
    return result


def _latency(lat: np.ndarray) -> dict:
    if lat.size == 0:
        return {"n": 0}
    q = np.percentile(lat, [50, 99, 100])
    return {"n": int(lat.size), "unit": "seconds from the R peak to the push that returns the beat",
            "min": round(float(lat.min()) / FS, 3), "p50": round(float(q[0]) / FS, 3),
            "p99": round(float(q[1]) / FS, 3), "max": round(float(q[2]) / FS, 3),
            "share_at_window_end": round(float(np.mean(lat == lat.min())), 4)}


def checks(result: dict, target) -> dict:
    """The issue's bars, each with its value and verdict."""
    d = result["deltas_pp"]
    out = {
        "bit_exact": bool(result["bit_exact_c_vs_python"]),
        "macro_f1_within_2pp": bool(d["macro_f1"] >= -2.0),
        "S_se_within_3pp": bool(d["S_se"] >= -3.0),
        "V_se_within_3pp": bool(d["V_se"] >= -3.0),
    }
    if result.get("ram_bytes") is not None:
        out["ram_le_16KiB"] = bool(result["ram_bytes"] <= ESP32_RAM_BAR)
    cpu = result.get("cpu_percent_at_clock", {})
    if cpu:
        out["cpu_le_1pct"] = bool(all(v["percent"] <= CPU_BAR_PERCENT for v in cpu.values()))
    return out


# --------------------------------------------------------------------------------------------
# Cross-compiled: RAM, flash, instructions
# --------------------------------------------------------------------------------------------

def cross_key(platform: str) -> str:
    """stream.json's name of a bench platform: ``c_cortex_m4`` -> ``cortex_m4``."""
    return platform.removeprefix("c_")


def measure_cross(export: Path, prefix: str, spec: FrontEndSpec, adc: np.ndarray, host_exe: Path, log=None) -> dict:
    """RAM and flash of the pipeline from ``size`` on the Cortex-M4 build; instructions per second
    of ECG under qemu for each platform whose tools are installed (others listed with the reason)."""
    from edgeecg.bench import cross
    from firmware_export import stream as stream_c

    secs = len(adc) / spec.adc_hz
    host_beats, _, _ = stream_c.run_host(host_exe, adc, spec.n_classes)
    out = {"ram_bytes": None, "flash_bytes": None, "state_bytes": None, "instructions_per_ecg_second": {},
           "front_end_instructions_per_ecg_second": {}, "cpu_percent_at_clock": {},
           "cross": {"ecg_seconds": round(secs, 1), "skipped": {}, "platforms": {}}}
    with tempfile.TemporaryDirectory(prefix="edgeecg-stream-cross-") as tmp:
        d = Path(tmp)
        srcs = stream_c.sources(export, prefix)
        (d / "main.c").write_text(stream_c.harness(prefix))
        (d / "ram.c").write_text(stream_c.RAM_OBJECT.format(p=prefix))
        (d / "stub_model.c").write_text(stream_c.STUB_MODEL.format(p=prefix, P=prefix.upper()))
        (d / "adc.bin").write_bytes(np.ascontiguousarray(adc, dtype="<i2").tobytes())
        plugin = None
        for plat in cross.PLATFORMS:
            key = cross_key(plat.name)
            if plat.kind == "xtensa":
                out["cross"]["skipped"][key] = ("no stream harness for the semihosted Xtensa yet "
                                                "(the bench's classifier row covers the core)")
                continue
            why = plat.missing()
            if why:
                out["cross"]["skipped"][key] = why
                continue
            try:
                flags = (*plat.flags, "-I", str(export))
                sizes = {}
                for src in [*srcs, d / "ram.c"]:
                    obj = d / f"{plat.name}_{src.stem}.c"
                    obj.write_text(Path(src).read_text())
                    sizes[src.stem] = cross.object_sizes(plat.cc, plat.size_tool, flags, obj)
                elf, stub_elf = d / f"{plat.name}.elf", d / f"{plat.name}_stub.elf"
                cross._run([plat.cc, *cross.HARNESS_FLAGS, *flags, "-o", str(elf), str(d / "main.c"), *map(str, srcs)],
                           f"linking the stream harness for {plat.name}")
                cross._run([plat.cc, *cross.HARNESS_FLAGS, *flags, "-o", str(stub_elf), str(d / "main.c"),
                            *map(str, srcs[:-1]), str(d / "stub_model.c")],
                           f"linking the stream harness without a classifier for {plat.name}")
                plugin = plugin or cross.build_plugin(d)
                counts = {}
                for mode, exe in (("run", elf), ("skip", elf), ("front_end", stub_elf)):
                    args = ["adc.bin", f"beats_{plat.name}_{mode}.bin"] + (["skip"] if mode == "skip" else [])
                    count_file = d / f"icount_{plat.name}_{mode}.txt"
                    cross._run(plat.command(exe, args, plugin, count_file), f"running {plat.name} under qemu",
                               cwd=d, timeout=1800)
                    counts[mode] = int(count_file.read_text())
                got = np.frombuffer((d / f"beats_{plat.name}_run.bin").read_bytes(),
                                    dtype=stream_c.record_dtype(spec.n_classes))
            except (RuntimeError, OSError, ValueError) as err:
                out["cross"]["skipped"][key] = f"failed: {str(err).splitlines()[0][:200]}"
                continue
            ips = (counts["run"] - counts["skip"]) / secs
            code = [s for k, s in sizes.items() if k != "ram"]
            flash = sum(s[0] + s[1] for s in code)
            data = sum(s[1] for s in sizes.values())
            bss = sum(s[2] for s in sizes.values())
            out["cross"]["platforms"][key] = {
                "description": plat.description, "isa": plat.isa,
                "bit_exact_vs_host": bool(np.array_equal(got, host_beats)), "beats": int(len(got)),
                "instructions": counts["run"] - counts["skip"],
                "flash_bytes": int(flash), "ram_bytes": int(data + bss),
                "state_bytes": int(sizes["ram"][1] + sizes["ram"][2]),
                "objects": {k: {"text": v[0], "data": v[1], "bss": v[2]} for k, v in sizes.items()},
            }
            front_end = int(round((counts["front_end"] - counts["skip"]) / secs))
            out["instructions_per_ecg_second"][key] = int(round(ips))
            out["front_end_instructions_per_ecg_second"][key] = front_end
            if log:
                log(f"{key}: {ips:,.0f} instructions per ECG second ({front_end:,d} of them the front end), "
                    f"RAM {data + bss:,d} B, bit-exact with the host: {out['cross']['platforms'][key]['bit_exact_vs_host']}")
    m4 = out["cross"]["platforms"].get("cortex_m4")
    if m4:
        out["ram_bytes"], out["flash_bytes"], out["state_bytes"] = m4["ram_bytes"], m4["flash_bytes"], m4["state_bytes"]
        out["ram_flash_from"] = "cortex_m4 (arm-none-eabi-gcc -O2, size: RAM = data + bss, flash = text + data)"
    return out


def add_cpu_percent(result: dict, clock_mhz: float) -> None:
    result["cpu_percent_at_clock"] = {
        k: {"clock_mhz": clock_mhz, "percent": round(100.0 * v / (clock_mhz * 1e6), 4)}
        for k, v in result.get("instructions_per_ecg_second", {}).items()}


# --------------------------------------------------------------------------------------------
# Markdown and the command
# --------------------------------------------------------------------------------------------

def markdown(result: dict) -> str:
    ds2, ref = result["ds2"], result["ds2_reference_beats"]
    lines = [f"# Streaming front end + int8 classifier, {result['target']} ({len(result['records'])} records, "
             f"{result['ecg_seconds'] / 3600:.2f} h of ECG)", "",
             f"C == Python twin on every output: **{result['bit_exact_c_vs_python']}** "
             f"({result['samples']:,d} ADC samples).", "",
             result["scoring"] + ".", "",
             "| | macro-F1 | N Se | N +P | S Se | S +P | V Se | V +P | F Se | F +P | missed | false det. |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def row(label, r, missed="", fp=""):
        pc = r["per_class"]
        cells = " | ".join(f"{pc[c]['se']:.2f} | {pc[c]['ppv']:.2f}" for c in ("N", "S", "V", "F"))
        return f"| {label} | {r['macro_f1']:.2f} | {cells} | {missed} | {fp} |"

    lines.append(row("detected + classified (stream)", ds2, ds2["missed"], ds2["false_detections"]))
    lines.append(row("reference R peaks, float pipeline's beats", ref))
    g = result["qrs"]["gross"]
    lines += ["", f"QRS detection (gross): Se {g['se']:.3f} %, +P {g['ppv']:.3f} % (FN {g['fn']}, FP {g['fp']}).", ""]
    t = result["twin_vs_float_inputs"]
    if t["beats"]:
        b, r = t["beat_lsb"], t["rr_lsb"]
        rr_text = (f"RR inputs {r['equal_pct']:.4f} % equal, {r['within_1_pct']:.4f} % within 1 LSB (max {r['max_abs']})"
                   if r.get("values") else "no RR input")
        lines += [f"Twin vs float pipeline on the reference R peaks ({t['beats']:,d} beats): beat inputs "
                  f"{b['equal_pct']:.4f} % equal, {b['within_1_pct']:.4f} % within 1 LSB (max {b['max_abs']}); "
                  f"{rr_text}; same class {t['class_agreement_pct']:.3f} %.", ""]
    lat = result["latency_s"]
    if lat.get("n"):
        lines += [f"Latency (R peak to output): median {lat['p50']:.3f} s, 99th percentile {lat['p99']:.3f} s, "
                  f"max {lat['max']:.3f} s.", ""]
    if result.get("instructions_per_ecg_second"):
        lines += ["| platform | instructions / ECG second | of them the front end | CPU % at clock | RAM B | flash B "
                  "| bit-exact |", "|---|---:|---:|---:|---:|---:|---|"]
        for k, v in result["instructions_per_ecg_second"].items():
            p = result["cross"]["platforms"][k]
            cpu = result["cpu_percent_at_clock"].get(k, {})
            fe = result.get("front_end_instructions_per_ecg_second", {}).get(k)
            lines.append(f"| {k} | {v:,d} | {f'{fe:,d}' if fe is not None else '–'} "
                         f"| {cpu.get('percent', float('nan')):.3f} % at {cpu.get('clock_mhz', 0):g} MHz "
                         f"| {p['ram_bytes']:,d} | {p['flash_bytes']:,d} | {p['bit_exact_vs_host']} |")
        lines.append("")
    for k, why in result.get("cross", {}).get("skipped", {}).items():
        lines.append(f"- {k}: skipped ({why})")
    lines += ["", "| record | beats | QRS Se | QRS +P | classified | S Se | S +P | V Se | V +P | macro-F1 | ref. beats macro-F1 | C == Py |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in result["per_record"].items():
        s, v = r["classes"]["S"], r["classes"]["V"]
        rf = r["reference_beats"]["macro_f1"]
        lines.append(f"| {name} | {r['beats']} | {r['qrs']['se']:.2f} | {r['qrs']['ppv']:.2f} | {r['classified']} | "
                     f"{s['se']:.2f} | {s['ppv']:.2f} | {v['se']:.2f} | {v['ppv']:.2f} | {r['macro_f1']:.2f} | "
                     f"{'' if rf is None else f'{rf:.2f}'} | {r['bit_exact_c_vs_python']} |")
    c = result["checks"]
    lines += ["", "Checks: " + ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in c.items()) + ".", "",
              "Run time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()) + ".", ""]
    return "\n".join(lines)


@click.command("stream")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, help="Target name (see `edgeecg targets`) or a TOML path.")
@click.option("--records", help="Comma-separated record names. Default: DS2 (paced records excluded).")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for stream.json and stream.md.")
@click.option("--no-cross", is_flag=True, help="Skip the qemu runs (RAM, flash, instructions).")
@click.option("--adc-hz", type=int, help="Resample every record to this rate (100-1000 Hz) and generate the front "
                                         "end for it: a stand-in for a front end sampling there. Default: the "
                                         "records' own rate (the target's front end where they match).")
@click.option("--lead", help="Lead to play: a name or a 0-based index. Default: the run's (MLII; SVDB: --lead 0).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def stream_command(run_dir, target_name, records, data_path, out, no_cross, adc_hz, lead, force):
    """Play records through the generated stream C and its Python twin; EC57 scores, RAM and CPU.

    \b
    Example:
      edgeecg stream runs/hybrid --target esp32 --data ../shared/data/mitdb --out runs/stream
      edgeecg stream runs/hybrid --target esp32 --records 100,232 --no-cross --out runs/stream-2
      edgeecg stream runs/hybrid --target esp32 --adc-hz 250 --no-cross --out runs/stream-250
      edgeecg stream runs/hybrid --target esp32 --data ../shared/data/svdb --records 800,801 --lead 0 --out runs/stream-svdb
    """
    from edgeecg.targets import load_target

    try:
        if out.exists() and not force:
            raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
        target = load_target(target_name)
        names = tuple(r.strip() for r in records.split(",") if r.strip()) if records else ()
        if records is not None and not names:
            raise EdgeECGError("--records: no record names given")
        data_dir = resolve_data_dir(data_path, names or tuple(r for r in DS2 if r not in PACED))
        if names:
            known = set(list_records(data_dir)) | {p.stem for p in data_dir.glob("*.hea")}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise EdgeECGError(f"{data_dir}: record {unknown[0]!r} not found")
        if adc_hz is not None:
            rate_converter(adc_hz)              # a one-line error for a rate the front end cannot take
        result = stream_records(run_dir, target, data_dir, names or None, cross_platforms=not no_cross,
                                log=lambda m: click.echo(m, err=True), adc_hz=adc_hz, lead=lead)
        write_dir(out, {"stream.json": json.dumps(result, indent=2) + "\n", "stream.md": markdown(result)}, force=force)
    except EdgeECGError as err:
        raise click.ClickException(str(err)) from None
    ds2, ref = result["ds2"], result["ds2_reference_beats"]
    click.echo(f"\n{len(result['records'])} records, C == Python: {result['bit_exact_c_vs_python']}; QRS Se "
               f"{result['qrs']['gross']['se']:.3f} % +P {result['qrs']['gross']['ppv']:.3f} %")
    click.echo(f"detected + classified: macro-F1 {ds2['macro_f1']:.2f}, S Se {ds2['per_class']['S']['se']:.2f}, "
               f"V Se {ds2['per_class']['V']['se']:.2f}; reference beats: macro-F1 {ref['macro_f1']:.2f}, "
               f"S Se {ref['per_class']['S']['se']:.2f}, V Se {ref['per_class']['V']['se']:.2f}")
    if result.get("ram_bytes") is not None:
        click.echo(f"RAM {result['ram_bytes']:,d} B, flash {result['flash_bytes']:,d} B (Cortex-M4 build)")
    for k, v in result.get("cpu_percent_at_clock", {}).items():
        click.echo(f"{k}: {result['instructions_per_ecg_second'][k]:,d} instructions per ECG second = "
                   f"{v['percent']:.3f} % at {v['clock_mhz']:g} MHz")
    click.echo(f"{result['seconds']['total']:.1f} s; wrote {out}")
