"""On-device streaming front end: integer decimation, a causal integer QRS detector (with a
bit-exact C twin in ``firmware_export/templates/qrs.c``), EC57 detection scoring, and the whole
front end of the classifier (:mod:`edgeecg.stream.frontend`: band-pass, beat window, RR features,
template and int8 inputs in fixed point, twin of ``firmware_export/templates/stream.c``)."""

from edgeecg.stream.decimate import FS, Decimator, decimate, decimation_factor
from edgeecg.stream.ec57 import Match, match
from edgeecg.stream.qrs import QRSDetector, detect

__all__ = ["FS", "Decimator", "Match", "QRSDetector", "decimate", "decimation_factor", "detect", "match"]
