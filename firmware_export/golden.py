"""``golden.h``: a few real beats with their expected int8 logits and classes, and a self-test function."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeecg.atomic import write_text_atomic
from firmware_export.carray import c_array, c_identifier


def write_golden(directory: Path, beat: np.ndarray, rr: np.ndarray | None, expected: np.ndarray,
                 classes: np.ndarray, prefix: str = "edgeecg") -> Path:
    """``beat`` (n, W, C) int8, ``rr`` (n, K) int8, ``expected`` (n, 5) int8 logits, ``classes`` (n,)."""
    p, P = c_identifier(prefix), prefix.upper()
    n = len(beat)
    rr = np.zeros((n, 1), np.int8) if rr is None else rr
    text = [
        f"/* golden.h: {n} beats with the int8 outputs the Python integer reference gives. */",
        f"#ifndef {P}_GOLDEN_H", f"#define {P}_GOLDEN_H", "", f'#include "{p}_model.h"', "",
        f"#define {P}_GOLDEN_N {n}",
        f"#define {P}_GOLDEN_RR_LEN {rr.shape[1]}",
        c_array("int8_t", f"{p}_golden_beat", beat),
        c_array("int8_t", f"{p}_golden_rr", rr),
        c_array("int8_t", f"{p}_golden_logits", expected),
        c_array("int8_t", f"{p}_golden_class", np.asarray(classes, dtype=np.int8)),
        "/* Runs every golden beat through the model; returns the number of mismatching outputs (0 = pass). */",
        f"static int {p}_self_test(void)", "{", "    int i, j, bad = 0;", f"    int8_t out[{P}_N_CLASSES];",
        f"    for (i = 0; i < {P}_GOLDEN_N; ++i) {{",
        (f"        bad += {p}_classify({p}_golden_beat + i * {P}_BEAT_LEN, {p}_golden_rr + i * {P}_GOLDEN_RR_LEN, out)"
         f" != {p}_golden_class[i];"),
        f"        for (j = 0; j < {P}_N_CLASSES; ++j) {{", f"            bad += out[j] != {p}_golden_logits[i * {P}_N_CLASSES + j];",
        "        }", "    }", "    return bad;", "}", "", f"#endif /* {P}_GOLDEN_H */", "",
    ]
    path = Path(directory) / "golden.h"
    write_text_atomic(path, "\n".join(text))
    return path
