"""Writer of the streaming front end's C (``PREFIX_stream.h`` / ``PREFIX_stream.c``, with the QRS
detector ``PREFIX_qrs.{h,c}`` it calls), the C twin of :mod:`edgeecg.stream.frontend`, and a
harness to run it on the host or under qemu.

The templates (``templates/stream.h``, ``templates/stream.c``) hold every constant as a
``#define PREFIX_STREAM_*`` line; :func:`render` substitutes the values of the
:class:`~edgeecg.stream.frontend.FrontEndSpec` of a recipe, an int8 graph and a target's ADC, so
Python and C share one set of numbers. The stream C calls ``PREFIX_classify`` of the generated
model (``PREFIX_model.{h,c}``, :mod:`firmware_export.cmodel`), written beside it by ``quantize``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.stream.frontend import FEATURES, PRIMITIVES, RUN_KEEP_FRACTION, FrontEndSpec, front_end_spec
from firmware_export import qrs as qrs_c
from firmware_export.cmodel import CFLAGS
from firmware_export.templating import compile_c, render_module, write_files

# Harness: ADC samples (int16, little-endian; with two leads interleaved, one sample of each lead per
# time step) from the file IN; for every beat, four int64 (the
# 0-based ADC sample whose push returned it, R peak, pre-RR, class) and the int8 logits to OUT.
# "skip" reads the samples without running the front end (the instruction-count baseline);
# any other third argument names a file for the counters (7 x uint32).
HARNESS = """\
#include <stdio.h>
#include <string.h>
#include "{p}_stream.h"

int main(int argc, char **argv)
{{
    static {p}_stream_t st;
    static int16_t buf[2048 * {P}_STREAM_LEADS];
    {p}_beat_t beat;
    FILE *in, *out, *cnt;
    long long n = 0, rec[4];
    int32_t check = 0;
    size_t got, k;
    const int skip = argc > 3 && strcmp(argv[3], "skip") == 0;
    if (argc < 3 || (in = fopen(argv[1], "rb")) == NULL) {{
        return 2;
    }}
    if ((out = fopen(argv[2], "wb")) == NULL) {{
        return 2;
    }}
    {p}_stream_init(&st);
    while ((got = fread(buf, sizeof buf[0] * {P}_STREAM_LEADS, 2048, in)) > 0) {{
        for (k = 0; k < got; ++k, ++n) {{
            if (skip) {{
                check += buf[k * {P}_STREAM_LEADS];
            }} else if ({p}_stream_push_leads(&st, &buf[k * {P}_STREAM_LEADS], &beat)) {{
                rec[0] = n;
                rec[1] = beat.r_peak;
                rec[2] = beat.pre_rr;
                rec[3] = beat.cls;
                fwrite(rec, sizeof rec, 1, out);
                fwrite(beat.logits, 1, sizeof beat.logits, out);
            }}
        }}
    }}
    if (skip) {{
        fwrite(&check, sizeof check, 1, out);
    }} else if (argc > 3 && (cnt = fopen(argv[3], "wb")) != NULL) {{
        fwrite(&st.counters, sizeof st.counters, 1, cnt);
        fclose(cnt);
    }}
    fclose(in);
    fclose(out);
    return 0;
}}
"""

# For the front end's own cost: a classifier that does nothing (class 0, zero logits), linked in
# place of the model; the front end does not depend on the class, so (run with it - skip) counts the
# band-pass, the detector, the RR features and the beat window alone.
STUB_MODEL = """\
#include <string.h>
#include "{p}_model.h"

int {p}_classify(const int8_t beat[{P}_BEAT_LEN], const int8_t rr[], int8_t logits[{P}_N_CLASSES])
{{
    (void)beat;
    (void)rr;
    memset(logits, 0, {P}_N_CLASSES);
    return 0;
}}
"""

# For `size`: the front end's state as a static object, as firmware would hold it.
RAM_OBJECT = """\
#include "{p}_stream.h"
{p}_stream_t {p}_stream_state;
"""

COUNTERS = ("detected", "ignored", "no_rr", "before_start", "queue_full", "too_late", "classified")


def harness(prefix: str) -> str:
    """The C of :data:`HARNESS` for ``prefix``."""
    return HARNESS.format(p=prefix, P=prefix.upper())


def _i64(v: int) -> str:
    return f"INT64_C({int(v)})" if abs(int(v)) >= 2**31 else str(int(v))


def defines(spec: FrontEndSpec) -> dict[str, str]:
    """The value of every generated ``#define PREFIX_STREAM_*`` (C expressions)."""
    bp = spec.bandpass
    sections = ", ".join("{" + ", ".join(str(v) for v in (s.b0, s.b1, s.b2, s.a1, s.a2, s.dcg)) + "}"
                         for s in bp.sections)
    feats = ", ".join("{" + ", ".join(str(PRIMITIVES.index(p)) for p in FEATURES[f]) + "}" for f in spec.features)
    grid = spec.grid_q
    rr = spec.rr_q
    adc_hz = spec.adc_hz
    out = {
        "ADC_HZ": str(int(adc_hz)),
        "ADC_GAIN_X1000": str(int(round(spec.adc_gain * 1000))),
        "N_SECTIONS": str(len(bp.sections)), "G": str(bp.g), "SECTIONS": "{" + sections + "}",
        "BEFORE": str(spec.before), "AFTER": str(spec.after), "RING_N": str(spec.ring_n),
        "PEND_N": str(spec.pend_n), "LEADS": str(spec.leads), "BEAT_CHANNEL": str(int(spec.beat_channel)),
        "TEMPLATE_BEATS": str(spec.template_beats), "TEMPLATE_ALL": str(int(spec.template_all)),
        "TEMPLATE_GATE_SUM": _i64(spec.template_gate_sum),
        "NORM_Q": str(spec.norm_q), "NORM_S": str(spec.norm_s), "NORM_NB": str(spec.norm_nb),
        "NORM_R": str(spec.norm_r), "STD_FLOOR": _i64(spec.std_floor),
        "NORM_S_SHIFT": str(spec.norm_s.bit_length() - 1 if spec.norm_s & (spec.norm_s - 1) == 0 else -1),
        "GRID": str(int(grid is not None)),
        "GRID_M": _i64(grid.m if grid else 0), "GRID_SH": str(grid.sh if grid else 1),
        "GRID_VMAX": _i64(grid.vmax if grid else 0),
        "BEAT_M": _i64(spec.beat_q.m), "BEAT_SH": str(spec.beat_q.sh), "BEAT_ZP": str(spec.beat_q.zp),
        "BEAT_VMAX": _i64(spec.beat_q.vmax),
        "RR_M": _i64(rr.m if rr else 0), "RR_SH": str(rr.sh if rr else 1), "RR_ZP": str(rr.zp if rr else 0),
        "RR_VMAX": _i64(rr.vmax if rr else 0),
        "N_FEATURES": str(len(spec.features)), "FEATURES": "{" + feats + "}",
        "RR_INPUT": str(int(rr is not None)), "REG_N": str(spec.reg_n), "IRR_N": str(spec.irr_n),
        "LOCAL_N": str(spec.local_n), "AVG_N": str(spec.avg_n), "OLDER_N": str(spec.older_n),
        "BAND_LO_NUM": str(spec.band_lo[0]), "BAND_LO_DEN": str(spec.band_lo[1]),
        "BAND_HI_NUM": str(spec.band_hi[0]), "BAND_HI_DEN": str(spec.band_hi[1]),
        "FOLLOW_NUM": str(spec.follow[0]), "FOLLOW_DEN": str(spec.follow[1]),
        "ANCHOR": str(int(spec.anchor)),
        "RUN_KEEP_NUM": str(RUN_KEEP_FRACTION[0]), "RUN_KEEP_DEN": str(RUN_KEEP_FRACTION[1]),
    }
    return out


def render(prefix: str, spec: FrontEndSpec) -> dict[str, str]:
    """``{file name: text}`` of ``PREFIX_stream.h`` and ``PREFIX_stream.c`` for ``spec``."""
    return render_module(prefix, "stream", defines(spec))


def render_all(prefix: str, spec: FrontEndSpec) -> dict[str, str]:
    """The stream C and the QRS detector C it calls."""
    # a two-lead stream's second ring and template need the RAM the detector's mirrored ring would take
    return {**render(prefix, spec), **qrs_c.render(prefix, spec.qrs, spec.adc_hz, spec.adc_gain,
                                                  mirror=spec.leads == 1)}


def write_stream(out_dir, prefix: str, data_cfg, graph, target) -> list[Path]:
    """Write ``PREFIX_stream.{h,c}`` and ``PREFIX_qrs.{h,c}`` for the recipe ``data_cfg``, the int8
    ``graph`` and ``target``'s ADC (``adc_hz``, ``adc_gain``) into ``out_dir``; returns the paths.
    Everything is checked first: an ADC rate that is not an integer multiple of 180 Hz, or a recipe
    the integer front end cannot reproduce, is a one-line :class:`EdgeECGError` and nothing is written."""
    return write_spec(out_dir, prefix, front_end_spec(data_cfg, graph, target.adc_hz, target.adc_gain))


def write_spec(out_dir, prefix: str, spec: FrontEndSpec) -> list[Path]:
    """Write the stream and QRS C of a checked ``spec`` into ``out_dir``; returns the paths."""
    return write_files(out_dir, render_all(prefix, spec))


def sources(directory, prefix: str) -> list[Path]:
    """The C files of the whole pipeline in ``directory`` (stream, detector, model), checked to exist."""
    d = Path(directory)
    files = [d / f"{prefix}_{n}.c" for n in ("stream", "qrs", "model")]
    for f in files + [d / f"{prefix}_{n}.h" for n in ("stream", "qrs", "model")]:
        if not f.exists():
            raise EdgeECGError(f"{f}: missing (export with `edgeecg quantize RUN --target T`)")
    return files


def build_host(src_dir, build_dir, prefix: str = "edgeecg", cc: str = "cc", cflags=CFLAGS,
               extra_flags=()) -> Path:
    """Compile the pipeline in ``src_dir`` (``PREFIX_{stream,qrs,model}.{h,c}``) with
    :data:`HARNESS` into ``build_dir``; returns the executable."""
    if shutil.which(cc) is None:
        raise EdgeECGError(f"{cc}: C compiler not found")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    srcs = sources(src_dir, prefix)
    main = build_dir / "stream_main.c"
    main.write_text(harness(prefix))
    exe = build_dir / "stream_host"
    compile_c([cc, *cflags, *extra_flags, "-I", str(src_dir), "-o", str(exe), str(main), *map(str, srcs)], src_dir)
    return exe


def record_dtype(n_classes: int) -> np.dtype:
    return np.dtype([("emitted", "<i8"), ("r_peak", "<i8"), ("pre_rr", "<i8"), ("cls", "<i8"),
                     ("logits", "i1", (n_classes,))])


def run_host(exe, adc: np.ndarray, n_classes: int = 5, env=None, timeout: float | None = None):
    """Run a :func:`build_host` binary on int16 samples (``(n,)``, or ``(n, leads)`` for a two-lead
    front end): (structured array of beats with fields emitted, r_peak, pre_rr, cls, logits; counters
    dict; stderr)."""
    with tempfile.TemporaryDirectory(prefix="edgeecg-stream-") as tmp:
        d = Path(tmp)
        (d / "adc.bin").write_bytes(np.ascontiguousarray(np.asarray(adc), dtype="<i2").tobytes())
        res = subprocess.run([str(exe), str(d / "adc.bin"), str(d / "beats.bin"), str(d / "counters.bin")],
                             capture_output=True, env=env, timeout=timeout)
        if res.returncode != 0:
            raise EdgeECGError(f"{exe}: exit {res.returncode}: {res.stderr.decode(errors='replace')[:500]}")
        beats = np.frombuffer((d / "beats.bin").read_bytes(), dtype=record_dtype(n_classes)).copy()
        raw = np.frombuffer((d / "counters.bin").read_bytes(), dtype="<u4")
    return beats, dict(zip(COUNTERS, (int(v) for v in raw))), res.stderr.decode(errors="replace")


__all__ = ["build_host", "defines", "harness", "render", "render_all", "run_host", "write_stream", "front_end_spec"]
