"""Formatting numbers as C array initialisers."""

from __future__ import annotations

import numpy as np

from edgeecg.errors import EdgeECGError


def c_array(ctype: str, name: str, values, per_line: int = 16, static: bool = True,
            attributes: str = "") -> str:
    flat = np.asarray(values).reshape(-1)
    rows = [", ".join(str(int(v)) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(rows) if rows else "0"
    storage = "static const" if static else "const"
    return f"{storage} {ctype} {name}[{max(len(flat), 1)}]{attributes} = {{\n    {body}\n}};\n"


def c_identifier(prefix: str) -> str:
    """``prefix`` itself if it can start C identifiers, else a one-line error."""
    if not prefix.isidentifier() or not prefix.isascii():
        raise EdgeECGError(f"--prefix {prefix!r} is not a valid C identifier")
    return prefix


def qparam_defines(graph, P: str) -> list[str]:
    """``#define``s of the scale and zero point of the beat, RR and output tensors."""
    tensors = [("BEAT", graph.beat_input), ("RR", graph.rr_input), ("OUT", graph.output)]
    lines = []
    for label, tensor in tensors:
        if tensor is not None:
            q = graph.qparams[tensor]
            lines += [f"#define {P}_{label}_SCALE {q.scale!r}f", f"#define {P}_{label}_ZERO_POINT {q.zero_point}"]
    return lines
