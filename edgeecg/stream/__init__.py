"""On-device streaming front end: integer rate conversion (any ADC rate to 180 Hz), a causal integer QRS detector (with a
bit-exact C twin in ``firmware_export/templates/qrs.c``), EC57 detection scoring, and the whole
front end of the classifier (:mod:`edgeecg.stream.frontend`: band-pass, beat window, RR features,
template and int8 inputs in fixed point, twin of ``firmware_export/templates/stream.c``)."""

from edgeecg.stream.decimate import FS, decimate
from edgeecg.stream.ec57 import Match, match
from edgeecg.stream.qrs import QRSDetector, detect
from edgeecg.stream.rate import RateConverter, rate_converter

__all__ = ["FS", "Match", "QRSDetector", "RateConverter", "decimate", "detect", "match", "rate_converter"]
