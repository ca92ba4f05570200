"""Per-beat latency at batch 1: the same beats, the same warm-up and repeat count for every row.

Python runtimes are timed around one prepared call (``runner.call_one``: set the inputs, invoke,
read the output), so the binding overhead a Python caller pays is included. The generated C is
timed inside its harness around the ``classify`` call (``clock_gettime``), as firmware calls it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeecg.bench.cross import HARNESS_FLAGS, object_sizes, write_harness
from firmware_export.cmodel import kernel_build, read_outputs


def summary_us(ns: np.ndarray) -> dict:
    """Median, p99 and the relative inter-quartile range (machine noise) of timings in ns."""
    ns = np.asarray(ns, dtype=np.float64)
    q25, p50, q75, p99 = np.percentile(ns, [25, 50, 75, 99])
    return {"latency_us_p50": round(p50 / 1e3, 2), "latency_us_p99": round(p99 / 1e3, 2),
            "noise_iqr_pct": round(100.0 * (q75 - q25) / p50, 1) if p50 else None}


def time_runner(runner, x, rr, repeat: int, warmup: int) -> np.ndarray:
    """ns of ``repeat`` single-beat calls (beats cycled from the start of ``x``) after ``warmup``."""
    calls = [runner.call_one(x[i % len(x):i % len(x) + 1], rr[i % len(x):i % len(x) + 1])
             for i in range(warmup + repeat)]
    ns = np.empty(repeat, dtype=np.int64)
    for i, call in enumerate(calls):
        t0 = time.perf_counter_ns()
        call()
        if i >= warmup:
            ns[i - warmup] = time.perf_counter_ns() - t0
    return ns


def time_batched(runner, x, rr) -> float:
    """Beats per second of ``runner.logits`` on all of ``x`` (its own batching)."""
    t0 = time.perf_counter()
    runner.logits(x, rr)
    return len(x) / (time.perf_counter() - t0)


HOST_FLAGS = ("-O3", "-march=native")  # the host row is built for this machine, as its user would
HOST_BLOCK = 16         # output channels per block: two AVX2 registers, or four NEON ones


class HostC:
    """The generated C built for the host with a timing harness (``-O3 -march=native``, or ``-O3``
    where the compiler has no ``-march=native``)."""

    def __init__(self, c_model, cc: str = "cc"):
        self.c_model = c_model
        self._dir = tempfile.TemporaryDirectory(prefix="edgeecg-bench-c-")
        d = Path(self._dir.name)
        c_model.save(d)
        harness = write_harness(d, c_model.prefix)
        self.exe = d / "bench"
        for flags in (HOST_FLAGS, HOST_FLAGS[:1]):
            cmd = [cc, *HARNESS_FLAGS, *flags, "-DBENCH_TIMING", "-o", str(self.exe), str(harness),
                   str(d / f"{c_model.prefix}_model.c")]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode == 0:
                break
        else:
            raise RuntimeError(f"compiling the C bench harness failed:\n{res.stderr}")
        self.flags = " ".join(flags)
        self.kernels = kernel_build(c_model.block, cc, flags, c_model.weights_above_min)   # "avx2", "neon", ...
        text, data, bss = object_sizes(cc, "size", flags, d / f"{c_model.prefix}_model.c")
        self.flash_bytes, self.static_ram_bytes = text + data, data + bss

    def run(self, records: bytes, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """int8 logits (n, 5), classes (n,) and ns per classify call (n,) of ``n`` records."""
        d = Path(self._dir.name)
        (d / "in.bin").write_bytes(records)
        subprocess.run([str(self.exe), "in.bin", "out.bin", "time", "times.bin"], cwd=d, check=True)
        logits, classes = read_outputs((d / "out.bin").read_bytes())
        if len(logits) != n:
            raise RuntimeError(f"the C bench harness wrote {len(logits)} outputs for {n} beats")
        return logits, classes, np.frombuffer((d / "times.bin").read_bytes(), dtype=np.uint32).astype(np.int64)
