"""Does ONNX Runtime's int8 graph classify as the float model, with its graph fusion on and off?

On an x86 CPU without VNNI ONNX Runtime's fused int8 kernels (``ORT_ENABLE_EXTENDED`` and above) sum
pairs of u8 x s8 products in int16 (``vpmaddubsw``), which saturates with 8-bit weights; with fusion
off (``ORT_DISABLE_ALL``) the same QDQ file computes in float. The share of beats whose class equals
the float ONNX's at each level shows whether a file is hit (docs/int8.md, "ONNX Runtime int8").

    python benchmarks/onnx_fusion.py --run runs/hybrid --target esp32 --data ../shared/data/mitdb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")


def main() -> None:
    from edgeecg.config import load_config
    from edgeecg.data import make_splits
    from edgeecg.runtimes import OnnxRunner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/hybrid"))
    ap.add_argument("--target", default="esp32")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    ap.add_argument("--export", type=Path, default=None, help="the export folder (default: RUN/export/TARGET)")
    ap.add_argument("--beats", type=int, default=5000, help="DS1 training beats drawn (seed 0)")
    args = ap.parse_args()
    export = args.export or args.run / "export" / args.target
    train = make_splits(args.data, load_config(args.run / "config.toml"))["train"]
    pick = np.random.default_rng(0).choice(len(train), min(args.beats, len(train)), replace=False)
    x, rr = train.x[pick].astype(np.float32), train.rr[pick].astype(np.float32)
    reference = OnnxRunner(export / "model.fp32.onnx").logits(x, rr).argmax(1)
    print(f"{export / 'model.int8.onnx'}: the float ONNX's class on {len(pick):,d} DS1 training beats")
    for level in LEVELS:
        same = np.mean(OnnxRunner(export / "model.int8.onnx", level).logits(x, rr).argmax(1) == reference)
        print(f"  {level:20s} {100 * same:6.2f} %")


if __name__ == "__main__":
    main()
