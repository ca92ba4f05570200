"""Formatting numbers as C array initialisers."""

from __future__ import annotations

import numpy as np


def c_array(ctype: str, name: str, values, per_line: int = 16, static: bool = True,
            attributes: str = "") -> str:
    flat = np.asarray(values).reshape(-1)
    rows = [", ".join(str(int(v)) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(rows) if rows else "0"
    storage = "static const" if static else "const"
    return f"{storage} {ctype} {name}[{max(len(flat), 1)}]{attributes} = {{\n    {body}\n}};\n"


def c_identifier(prefix: str) -> str:
    if not prefix.isidentifier() or not prefix.isascii():
        raise ValueError(f"C prefix {prefix!r} is not a valid C identifier")
    return prefix
