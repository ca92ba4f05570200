"""``edgeecg report``: one self-contained ``report.html`` of a run directory.

Everything is inline: CSS in a ``<style>`` element, charts as inline SVG drawn here, figures already
on disk (training curves, explanations) as base64 ``data:`` PNGs. The page loads nothing at view
time (no script, no font, no network). Every section renders from whatever inputs exist and says
"not run" when its input is absent, or "could not read" when it is unreadable:

=================  ==========================================================================
recipe             ``config.toml``
provenance         ``manifest.json``: data directory, versions, input records (SHA-256)
metrics            ``metrics.json``: per-class tables and confusion matrices of each split
per record         ``metrics.json`` ``per_record``: S and V Se / +P per record (SVG bars)
training           ``history.json`` / ``plots/*.png``
cross-validation   ``cv.json`` (``edgeecg cv``; ``--cv``, else ``RUN/cv.json`` or beside the run)
seeds              ``seeds.json`` (``edgeecg seeds``; ``--seeds``, else found likewise)
quantization       ``export/<target>/report.json``: accuracy deltas, consistency, rounding budget
export sizes       the same ``report.json``'s ``artifacts``
bench              ``bench/<target>/bench.json``: the table, and a latency / size chart
QRS detection      ``qrs.json`` (``edgeecg detect``; ``--qrs``)
stream             ``stream.json`` (``edgeecg stream``; ``--stream``)
explanations       ``explain/*/explain.json`` and its figures (``edgeecg explain``)
hashes             every input hash of the manifest, its output hashes, and the SHA-256 of each
                   file this report was made from
=================  ==========================================================================

Modules: :mod:`~edgeecg.report.inputs` finds and reads those files; :mod:`~edgeecg.report.sections_model`
and :mod:`~edgeecg.report.sections_deploy` render the sections, from the pieces in
:mod:`~edgeecg.report.html` and the charts in :mod:`~edgeecg.report.svg`; :mod:`~edgeecg.report.command`
puts the page together and holds the click command.
"""

from edgeecg.report.command import SECTIONS, render, report_command, write_report
from edgeecg.report.inputs import Inputs

__all__ = ["SECTIONS", "Inputs", "render", "report_command", "write_report"]
