"""The int8 graph read from a full-integer ``.tflite`` and its bit-exact numpy integer reference."""

from edgeecg.quant.graph import Int8Graph, read_tflite
from edgeecg.quant.reference import classify_int8, run_int8

__all__ = ["Int8Graph", "classify_int8", "read_tflite", "run_int8"]
