"""QRS detection scored beat by beat (EC57) on WFDB records: ours against ``wfdb``'s ``xqrs`` and ``gqrs``.

``edgeecg detect --data DIR [--records 100,101] --out DIR [--force]`` writes ``qrs.json`` (the dict
:func:`detect_records` returns) and ``qrs.md`` (:func:`markdown`).

Every detector gets the same lead: MLII, else the record's first signal (MIT-BIH 102 and 104 have no
MLII; their first lead is V5). Ours reads the raw ADC counts (``physical=False``) at the record's
own rate (any whole rate from 100 to 1000 Hz: :mod:`edgeecg.stream.rate`); ``xqrs_detect`` and
``gqrs_detect`` read the same lead in physical units (mV) at the record's rate, as ``wfdb`` documents.
Our R peaks (180 Hz) are compared at the record's rate (:meth:`RateConverter.adc_index`).
``--adc-hz`` first resamples every record (its counts, rounded, and its annotations) to another rate:
MIT-BIH at 250 or 500 Hz stands in for the front ends sold at those rates; the peers get the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
import wfdb

from edgeecg.atomic import write_dir
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import (
    check_signal_file_sizes,
    list_records,
    rdann,
    read_header,
    record_files,
    resolve_data_dir,
)
from edgeecg.processing.aami import CLASSES
from edgeecg.stream import ec57, qrs
from edgeecg.stream.decimate import FS
from edgeecg.stream.rate import rate_converter

LEAD = "MLII"
PEERS = ("xqrs", "gqrs")


@dataclass
class AdcRecord:
    """One lead of a record as the ADC gave it, with its reference annotations."""

    name: str
    lead: str
    adc: np.ndarray             # int16 counts
    fs: float
    adc_gain: float             # counts per mV
    ann_samples: np.ndarray
    ann_symbols: np.ndarray


def _lead(header, lead: str) -> str:
    names = list(header.sig_name or [])
    if not names:
        raise EdgeECGError(f"{header.record_name}.hea: no signals")
    return lead if lead in names else names[0]


def read_adc(data_dir: Path, name: str, lead: str = LEAD, fallback: bool = True) -> AdcRecord:
    """Raw ADC counts (int16) of ``lead`` (a name, or a 0-based index) and the ``.atr`` annotations. A
    record without ``lead`` gives its first signal (``fallback``: detection scores every record) or a
    one-line error."""
    return read_adcs(data_dir, name, [lead], fallback)[0]


def read_adcs(data_dir: Path, name: str, leads: Sequence[str], fallback: bool = True) -> list[AdcRecord]:
    """:func:`read_adc` of several leads of one record, the signal files read once."""
    files = record_files(data_dir, name)            # checks that every file is there
    header = read_header(data_dir, name)
    names = list(header.sig_name or [])
    leads = [names[int(lead)] if str(lead).isdigit() and int(lead) < len(names) else lead for lead in leads]
    for lead in leads:
        if not fallback and lead not in names:
            raise EdgeECGError(f"{files[0]}: no lead {lead} (leads: {', '.join(names) or 'none'})")
    check_signal_file_sizes(data_dir, header)      # a truncated .dat is a one-line error
    use = [_lead(header, lead) for lead in leads]
    try:
        rec = wfdb.rdrecord(str(data_dir / name), channel_names=list(dict.fromkeys(use)), physical=False)
    except Exception as err:
        raise EdgeECGError(f"{files[1]}: cannot read signal ({type(err).__name__}: {err})") from None
    samples, symbols = rdann(data_dir, name)
    out = []
    for lead in use:
        column = rec.sig_name.index(lead)
        d = np.asarray(rec.d_signal[:, column])
        if d.size < 2:
            raise EdgeECGError(f"{files[1]}: lead {lead} is empty")
        if int(d.min()) < -32768 or int(d.max()) > 32767:
            raise EdgeECGError(f"{files[1]}: lead {lead} has ADC values outside int16")
        out.append(AdcRecord(name=name, lead=lead, adc=d.astype(np.int16), fs=float(rec.fs),
                             adc_gain=float(rec.adc_gain[column]), ann_samples=samples, ann_symbols=symbols))
    return out


def _physical(data_dir: Path, name: str, lead: str) -> tuple[np.ndarray, float]:
    rec = wfdb.rdrecord(str(data_dir / name), channel_names=[lead])
    return np.asarray(rec.p_signal[:, 0], dtype=np.float64), float(rec.fs)


def resampled(rec: AdcRecord, fs: float, adc_gain: float | None = None) -> AdcRecord:
    """``rec`` as a front end sampling at ``fs`` (with ``adc_gain`` counts/mV, default the record's)
    would have seen it: the counts resampled (scipy's polyphase ``resample_poly``, the record's ends
    extended linearly), rescaled, rounded and clipped to int16; the annotations rounded to that rate's grid."""
    gain = rec.adc_gain if adc_gain is None else float(adc_gain)
    if fs == rec.fs and gain == rec.adc_gain:
        return rec
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(fs / rec.fs).limit_denominator(1000)
    # padtype "line": no step at the ends (zero padding would make a false beat at t = 0)
    x = resample_poly(rec.adc.astype(np.float64), ratio.numerator, ratio.denominator, padtype="line")
    x *= gain / rec.adc_gain
    adc = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    samples = np.round(rec.ann_samples * (fs / rec.fs)).astype(np.int64)
    return AdcRecord(rec.name, rec.lead, adc, float(fs), gain, samples, rec.ann_symbols)


def run_peer(peer: str, sig: np.ndarray, fs: float) -> np.ndarray:
    """R peaks (samples at ``fs``) of ``wfdb.processing.xqrs_detect`` or ``gqrs_detect``."""
    from wfdb import processing

    if peer == "xqrs":
        out = processing.xqrs_detect(sig=sig, fs=fs, verbose=False)
    elif peer == "gqrs":
        out = processing.gqrs_detect(sig=sig, fs=fs)
    else:
        raise EdgeECGError(f"unknown peer detector {peer!r} (known: {', '.join(PEERS)})")
    return np.asarray(out, dtype=np.int64)


def _stats(v: np.ndarray) -> dict:
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    pct = np.percentile(v, [0.5, 1, 5, 25, 50, 75, 95, 99, 99.5])
    return {"n": int(v.size), "mean": round(float(v.mean()), 3), "sd": round(float(v.std()), 3),
            "min": float(v.min()), "max": float(v.max()),
            **{f"p{q:g}": float(x) for q, x in zip((0.5, 1, 5, 25, 50, 75, 95, 99, 99.5), pct)}}


def detect_records(data_dir, records=None, peers=PEERS, log=None, adc_hz: float | None = None) -> dict:
    """Detect and score every record; returns the content of ``qrs.json``.

    ``records``: names (default: every record in ``data_dir``). ``peers``: the ``wfdb`` detectors to
    run on the same lead (``()`` for none). ``log``: a callable for one progress line per record.
    ``adc_hz``: resample every record to this rate first (:func:`resampled`; default: its own rate).
    """
    t_start = time.perf_counter()
    data_dir = Path(data_dir)
    names = list(records) if records else list_records(data_dir)
    if not names:
        raise EdgeECGError(f"{data_dir}: no WFDB records (*.hea) found")
    for p in peers:
        if p not in PEERS:
            raise EdgeECGError(f"unknown peer detector {p!r} (known: {', '.join(PEERS)})")
    ours, theirs = {}, {p: {} for p in peers}
    with_vf = {p: [] for p in ("ours", *peers)}    # the same counts with the flutter not excluded
    seconds = {"read": 0.0, "ours": 0.0, **{p: 0.0 for p in peers}}
    offsets, offset_classes, delays, rates = [], [], [], []
    vf_excluded, params_used = {}, None
    for name in names:
        t0 = time.perf_counter()
        rec = read_adc(data_dir, name)
        if adc_hz:
            rec = resampled(rec, float(adc_hz))
        seconds["read"] += time.perf_counter() - t0
        try:
            conv = rate_converter(rec.fs, FS)
            rates.append(rec.fs)
        except EdgeECGError as err:
            raise EdgeECGError(f"{data_dir / name}.hea: {err}") from None
        params = qrs.params_for(rec.fs, rec.adc_gain)
        params_used = params_used or asdict(params)
        t0 = time.perf_counter()
        beats, confirmed = qrs.detect(rec.adc, rec.fs, params, confirmed=True)
        seconds["ours"] += time.perf_counter() - t0

        ref, ref_cls = ec57.reference_beats(rec.ann_samples, rec.ann_symbols)
        vf = ec57.vf_intervals(rec.ann_samples, rec.ann_symbols, end=len(rec.adc))
        if vf:
            vf_excluded[name] = [[int(a), int(b)] for a, b in vf]
        tol = ec57.tolerance_samples(rec.fs)
        res = ec57.match(ref, conv.adc_index(beats), tol, vf)
        ours[name] = {**res.counts(), "beats": int(len(ref)), "detections": int(len(beats)), "lead": rec.lead}
        with_vf["ours"].append(ec57.match(ref, conv.adc_index(beats), tol).counts() if vf else res.counts())
        ref180 = np.round(ref[res.ref_index] * (FS / rec.fs)).astype(np.int64)
        offsets.append(beats[res.det_index] - ref180 - conv.delay_adc * FS / rec.fs)   # the FIR's delay out
        offset_classes.append(ref_cls[res.ref_index])
        delays.append(confirmed - beats)
        line = f"{name}: ours Se {res.se:6.2f} +P {res.ppv:6.2f} (FN {res.fn}, FP {res.fp})"

        if peers:
            t0 = time.perf_counter()
            sig, fs = _physical(data_dir, name, rec.lead)
            if fs != rec.fs:
                from edgeecg.processing.filters import resample

                sig, fs = resample(sig, fs, rec.fs), rec.fs
            seconds["read"] += time.perf_counter() - t0
            for p in peers:
                t0 = time.perf_counter()
                det = run_peer(p, sig, fs)
                seconds[p] += time.perf_counter() - t0
                r = ec57.match(ref, det, tol, vf)
                theirs[p][name] = {**r.counts(), "detections": int(len(det))}
                with_vf[p].append(ec57.match(ref, det, tol).counts() if vf else r.counts())
                line += f"; {p} Se {r.se:6.2f} +P {r.ppv:6.2f}"
        if log:
            log(line)

    off = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
    off_cls = np.concatenate(offset_classes) if offset_classes else np.zeros(0, np.int64)
    dly = np.concatenate(delays) if delays else np.zeros(0, np.int64)
    fiducial = {
        "unit": ("samples at 180 Hz: our R peak minus round(reference sample * 180 / fs), less the rate "
                 "converter's group delay (0 for a block sum), matched beats"),
        **_stats(off),
        "share_abs_le_1": round(float(np.mean(np.abs(off) <= 1)), 5) if off.size else None,
        "share_abs_le_2": round(float(np.mean(np.abs(off) <= 2)), 5) if off.size else None,
        "share_abs_gt_4": round(float(np.mean(np.abs(off) > 4)), 5) if off.size else None,
        "per_class": {c: {**{k: v for k, v in _stats(off[off_cls == i]).items() if k in ("n", "mean", "sd")},
                          "share_abs_gt_4": round(float(np.mean(np.abs(off[off_cls == i]) > 4)), 5)}
                      for i, c in enumerate(CLASSES) if np.any(off_cls == i)},
    }
    seconds = {k: round(v, 2) for k, v in seconds.items()}
    seconds["total"] = round(time.perf_counter() - t_start, 2)
    return {
        "tolerance_ms": round(ec57.TOLERANCE_S * 1000),
        "matching": ("EC57 beat by beat: reference beats are every AAMI beat symbol (N L R e j A a J S V E "
                     "F / f Q); a detection matches within the tolerance (inclusive), each reference and "
                     "each detection at most once, closest pairs first; reference-marked ventricular "
                     "flutter ([ ... ]) is excluded as bxb does; whole records, no learning period excluded"),
        "fs": FS,
        "data": Path(data_dir).name,
        "adc_hz": sorted(set(rates)),
        "resampled_to": adc_hz,
        "params": params_used,
        "gross": ec57.gross(ours.values()),
        "records": ours,
        "peers": {p: {"gross": ec57.gross(theirs[p].values()), "records": theirs[p],
                      "gross_vf_not_excluded": ec57.gross(with_vf[p])} for p in peers},
        "gross_vf_not_excluded": ec57.gross(with_vf["ours"]),
        "fiducial_offset": fiducial,
        "delay_s": {k: (round(v / FS, 3) if k not in ("n",) else v) for k, v in _stats(dly).items()},
        "vf_excluded": vf_excluded,
        "seconds": seconds,
    }


def markdown(result: dict) -> str:
    """``qrs.md``: gross and per-record Se / +P / FN / FP, ours against the peers."""
    peers = list(result.get("peers", {}))
    names = ["ours", *peers]
    head = "| record | beats | " + " | ".join(f"{n} Se | {n} +P | {n} FN | {n} FP" for n in names) + " |"
    sep = "|---|---:|" + "---:|" * (4 * len(names))

    def cells(r):           # from the counts, not the rounded percentages
        se, ppv = ec57.percent(r["tp"], r["tp"] + r["fn"]), ec57.percent(r["tp"], r["tp"] + r["fp"])
        return f"{se:.2f} | {ppv:.2f} | {r['fn']} | {r['fp']}"

    lines = [f"# QRS detection, EC57 beat by beat ({result['tolerance_ms']} ms)", "",
             result["matching"] + ".", "", head, sep]
    total = sum(r["beats"] for r in result["records"].values())
    lines.append(f"| **gross** | {total} | " + " | ".join(
        cells(result["gross"] if n == "ours" else result["peers"][n]["gross"]) for n in names) + " |")
    for rec, r in result["records"].items():
        row = [cells(r)] + [cells(result["peers"][p]["records"][rec]) for p in peers]
        lines.append(f"| {rec} | {r['beats']} | " + " | ".join(row) + " |")
    if result.get("vf_excluded"):
        lines += ["", "Without excluding the reference-marked ventricular flutter (" +
                  ", ".join(f"{r}: {len(v)} episodes" for r, v in result["vf_excluded"].items()) + "), gross: " +
                  "; ".join(f"{n} Se {g['se']:.2f} +P {g['ppv']:.2f} (FP {g['fp']})" for n, g in
                            [("ours", result["gross_vf_not_excluded"])] +
                            [(p, result["peers"][p]["gross_vf_not_excluded"]) for p in peers]) + "."]
    f = result["fiducial_offset"]
    if f.get("n"):
        pct = " / ".join(f"{f[k]:+g}" for k in ("p1", "p5", "p50", "p95", "p99"))
        lines += ["", "## Fiducial offset (ours - reference, samples at 180 Hz)", "",
                  f"{f['n']} matched beats: mean {f['mean']:+.2f}, sd {f['sd']:.2f}, percentiles 1/5/50/95/99: "
                  f"{pct}; |offset| <= 1: {100 * f['share_abs_le_1']:.1f} %, <= 2: {100 * f['share_abs_le_2']:.1f} %, "
                  f"> 4: {100 * f['share_abs_gt_4']:.2f} %.", "",
                  "| class | beats | mean | sd | share > 4 |", "|---|---:|---:|---:|---:|"]
        for c, s in f["per_class"].items():
            lines.append(f"| {c} | {s['n']} | {s['mean']:+.2f} | {s['sd']:.2f} | {100 * s['share_abs_gt_4']:.2f} % |")
    d = result.get("delay_s", {})
    if d.get("n"):
        lines += ["", f"Confirmation delay after the R peak: median {d['p50']:.2f} s, 99th percentile "
                      f"{d['p99']:.2f} s, max {d['max']:.2f} s."]
    s = result["seconds"]
    lines += ["", "Run time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in s.items()) + ".", ""]
    return "\n".join(lines)


DATA_HELP = ("Directory with the MIT-BIH records (or one holding mitdb/). "
             "Default: download from PhysioNet into $EDGEECG_DATA or ~/.cache/edgeecg/mitdb.")


@click.command("detect")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--records", help="Comma-separated record names. Default: every record in the directory.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for qrs.json and qrs.md.")
@click.option("--no-peers", is_flag=True, help="Skip wfdb's xqrs and gqrs.")
@click.option("--adc-hz", type=int, help="Resample every record to this rate first (100-1000 Hz): a stand-in "
                                         "for a front end sampling there. Default: each record's own rate.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def detect_command(data_path, records, out, no_peers, adc_hz, force):
    """Streaming integer QRS detector on every record, scored beat by beat (EC57) against xqrs and gqrs.

    \b
    Example:
      edgeecg detect --data ../shared/data/mitdb --out runs/qrs
      edgeecg detect --data ../shared/data/mitdb --records 100,207 --no-peers --out runs/qrs-2
      edgeecg detect --data ../shared/data/svdb --out runs/qrs-svdb            (128 Hz, its own rate)
      edgeecg detect --data ../shared/data/mitdb --adc-hz 250 --out runs/qrs-250
    """
    try:
        if out.exists() and not force:
            raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
        names = tuple(r.strip() for r in records.split(",") if r.strip()) if records else ()
        if records is not None and not names:
            raise EdgeECGError("--records: no record names given")
        if adc_hz is not None:
            rate_converter(adc_hz)              # a one-line error for a rate the front end cannot take
        data_dir = resolve_data_dir(data_path, names)
        if names:
            known = set(list_records(data_dir)) | {p.stem for p in data_dir.glob("*.hea")}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise EdgeECGError(f"{data_dir}: record {unknown[0]!r} not found")
        result = detect_records(data_dir, names or None, peers=() if no_peers else PEERS,
                                log=lambda m: click.echo(m, err=True), adc_hz=adc_hz)
        write_dir(out, {"qrs.json": json.dumps(result, indent=2) + "\n", "qrs.md": markdown(result)}, force=force)
    except EdgeECGError as err:
        raise click.ClickException(str(err)) from None
    g = result["gross"]
    click.echo(f"\n{len(result['records'])} records, {sum(r['beats'] for r in result['records'].values()):,d} beats: "
               f"ours Se {g['se']:.3f} % +P {g['ppv']:.3f} % (FN {g['fn']}, FP {g['fp']})")
    for p, v in result["peers"].items():
        click.echo(f"{p:>4}: Se {v['gross']['se']:.3f} % +P {v['gross']['ppv']:.3f} % "
                   f"(FN {v['gross']['fn']}, FP {v['gross']['fp']})")
    f = result["fiducial_offset"]
    if f.get("n"):
        click.echo(f"fiducial offset (180 Hz samples): mean {f['mean']:+.2f}, sd {f['sd']:.2f}, "
                   f"p1 {f['p1']:+g}, p99 {f['p99']:+g}")
    click.echo(f"{result['seconds']['total']:.1f} s; wrote {out}")
