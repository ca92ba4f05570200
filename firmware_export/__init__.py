"""C for firmware, generated from the int8 graph that ``model.int8.tflite`` holds.

:func:`convert` returns a :class:`CModel`: ``.save(dir)`` writes ``PREFIX_model.h/.c``,
``.predict(beat, rr)`` compiles the C with the host compiler and returns the class of every beat
(``.run`` the int8 logits too; both bit-exact with :func:`edgeecg.quant.classify_int8`). :mod:`firmware_export.tflm` writes the ``.tflite`` as a C array
for TFLite Micro, and :mod:`firmware_export.golden` a self-test header.
"""

from firmware_export.cmodel import CModel, convert

__all__ = ["CModel", "convert"]
