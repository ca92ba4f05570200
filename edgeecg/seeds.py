"""Mean and spread of DS2 metrics over several run directories: ``python -m edgeecg.seeds RUN...``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROWS = [("V Se", "V", "se"), ("V +P", "V", "ppv"), ("S Se", "S", "se"), ("S +P", "S", "ppv"),
        ("F Se", "F", "se"), ("N Se", "N", "se")]


def summary(run_dirs: list[Path], split: str = "ds2") -> str:
    metrics = [json.loads((Path(d) / "metrics.json").read_text()) for d in run_dirs]
    lines = [f"{split}, {len(metrics)} runs: " + ", ".join(str(d) for d in run_dirs),
             f"{'':<10}" + "".join(f"{'run ' + str(i):>9}" for i in range(len(metrics))) + f"{'mean':>9}{'± sd':>8}"]
    values = [(label, [m[split]["per_class"][c][k] for m in metrics]) for label, c, k in ROWS]
    values.append(("macro-F1", [m[split]["macro_f1"] for m in metrics]))
    for label, v in values:
        lines.append(f"{label:<10}" + "".join(f"{x:>9.1f}" for x in v) + f"{np.mean(v):>9.1f}{np.std(v, ddof=1) if len(v) > 1 else 0:>8.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary([Path(a) for a in sys.argv[1:]]))
