"""``edgeecg bench``: every exported artifact on the same beats, with accuracy, size, latency and a verdict.

:func:`bench_export` is the entry point; :mod:`~edgeecg.bench.cross` runs the generated C under qemu,
:mod:`~edgeecg.bench.latency` times the host rows and :mod:`~edgeecg.bench.report` writes the table.
"""

from edgeecg.bench.harness import BenchOptions, bench_export

__all__ = ["BenchOptions", "bench_export"]
