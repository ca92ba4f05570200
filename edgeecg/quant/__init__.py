"""The int8 graph read from a full-integer ``.tflite`` and its bit-exact numpy integer reference."""

from edgeecg.quant.graph import Int8Graph, read_tflite
from edgeecg.quant.reference import run_int8

__all__ = ["Int8Graph", "read_tflite", "run_int8"]
