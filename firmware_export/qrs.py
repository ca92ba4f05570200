"""Writer of the C twin of :mod:`edgeecg.stream.qrs` (``PREFIX_qrs.h`` / ``PREFIX_qrs.c``), and a host
build of it for tests and checks.

The templates (``templates/qrs.h``, ``templates/qrs.c``) are valid C with the prefix ``prefix`` and
the default parameters; :func:`write_qrs` substitutes the prefix and the ``#define PREFIX_QRS_*``
values of the given :class:`~edgeecg.stream.qrs.Params` and ADC, so Python and C share one set of
numbers.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.stream.qrs import Params, params_for
from edgeecg.stream.rate import RateConverter, rate_converter
from firmware_export.cmodel import CFLAGS
from firmware_export.templating import compile_c, render_module, write_files

# Host harness: int16 ADC samples on stdin; for every beat, (R-peak index, ADC sample count when it
# came out of push, or -1 when it came out of the final pops) as two little-endian int64 on stdout.
HOST_MAIN = """\
#include <stdio.h>
#include "{p}_qrs.h"

int main(void)
{{
    static {p}_qrs_state st;
    static int16_t buf[4096];
    long long n = 0, rec[2];
    size_t got, k;
    int32_t r;
    {p}_qrs_init(&st);
    while ((got = fread(buf, sizeof buf[0], sizeof buf / sizeof buf[0], stdin)) > 0) {{
        for (k = 0; k < got; ++k) {{
            ++n;
            if ({p}_qrs_push(&st, buf[k], &r)) {{
                rec[0] = r;
                rec[1] = n;
                fwrite(rec, sizeof rec, 1, stdout);
            }}
        }}
    }}
    while ({p}_qrs_pop(&st, &r)) {{
        rec[0] = r;
        rec[1] = -1;
        fwrite(rec, sizeof rec, 1, stdout);
    }}
    return 0;
}}
"""


def rate_defines(conv: RateConverter) -> dict[str, str]:
    """The ``#define PREFIX_QRS_RATE_*`` values (and ``ADC_HZ``) of a rate converter."""
    coeffs = conv.coeffs or (0,)
    return {"ADC_HZ": str(int(conv.adc_hz)), "RATE_UP": str(conv.up), "RATE_DOWN": str(conv.down),
            "RATE_TAPS": str(conv.taps), "RATE_SHIFT": str(conv.shift),
            "RATE_COEFFS": "{" + ", ".join(str(v) for v in coeffs) + "}"}


def _defines(params: Params, adc_hz, mirror: bool = True) -> dict:
    values: dict = rate_defines(rate_converter(adc_hz))
    values.update({k.upper(): v for k, v in dataclasses.asdict(params).items()})
    values["MIRROR"] = int(mirror)
    return values


def render(prefix: str = "edgeecg", params: Params | None = None, adc_hz=360,
           adc_gain: float = 200.0, mirror: bool = True) -> dict[str, str]:
    """``{file name: text}`` of the C twin for ``prefix`` (``params`` default: :func:`params_for`).
    ``mirror``: keep the MWI ring twice over (faster; 0 saves its RAM, same outputs)."""
    params = params if params is not None else params_for(adc_hz, adc_gain)
    return render_module(prefix, "qrs", _defines(params, adc_hz, mirror))


def write_qrs(out_dir, prefix: str = "edgeecg", params: Params | None = None, adc_hz=360,
              adc_gain: float = 200.0) -> list[Path]:
    """Write ``PREFIX_qrs.h`` and ``PREFIX_qrs.c`` into ``out_dir``; returns their paths."""
    return write_files(out_dir, render(prefix, params, adc_hz, adc_gain))


def build_host(build_dir, prefix: str = "edgeecg", params: Params | None = None, adc_hz=360,
               adc_gain: float = 200.0, cc: str = "cc", extra_flags=(), cflags=CFLAGS) -> Path:
    """Write the C twin and :data:`HOST_MAIN` into ``build_dir`` and compile them with ``cc``."""
    if shutil.which(cc) is None:
        raise EdgeECGError(f"{cc}: C compiler not found")
    build_dir = Path(build_dir)
    write_qrs(build_dir, prefix, params, adc_hz, adc_gain)
    main = build_dir / "qrs_main.c"
    main.write_text(HOST_MAIN.format(p=prefix))
    exe = build_dir / "qrs_host"
    compile_c([cc, *cflags, *extra_flags, "-o", str(exe), str(main), str(build_dir / f"{prefix}_qrs.c")], build_dir)
    return exe


def run_host(exe, adc: np.ndarray, env=None) -> tuple[np.ndarray, np.ndarray, str]:
    """Run a :func:`build_host` binary on int16 samples: (R-peak indices, ADC sample count at which
    each came out, -1 for the final pops; stderr)."""
    data = np.ascontiguousarray(np.asarray(adc), dtype="<i2").tobytes()
    res = subprocess.run([str(exe)], input=data, capture_output=True, env=env)
    if res.returncode != 0:
        raise EdgeECGError(f"{exe}: exit {res.returncode}: {res.stderr.decode(errors='replace')[:500]}")
    rec = np.frombuffer(res.stdout, dtype="<i8").reshape(-1, 2)
    return rec[:, 0].copy(), rec[:, 1].copy(), res.stderr.decode(errors="replace")
