"""How far each fold's int8 graph lands from its float model, out of fold on the pool, under other
quantization options (calibration beats, the RR input's calibration percentile).

`edgeecg cv` scores each fold's model quantized with `edgeecg quantize`'s defaults; this script runs
the same cross-validation (same seed, same host: the same models) and has `cross_validate` quantize
each fold's model once more per option set, so the options are compared on the same float models.
Nothing here reads DS2.

    python training/int8_options.py --data ../shared/data/mitdb --config training/hybrid.toml --seeds 0,1,2,3,4

prints, per option set, the int8-minus-float differences (pp) of macro-F1, S Se and V Se per database
and seed, their worst absolute value, and the mean agreement with float; `--out FILE` keeps them as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgeecg.config import load_config, with_overrides
from edgeecg.cv import cross_validate, database_figures, int8_vs_float
from edgeecg.metrics import DELTAS
from edgeecg.quantize import QuantizeOptions

OPTIONS = {                                   # name: the fields of QuantizeOptions it sets (the rest: defaults)
    "default": {},
    "calib8000": {"calib_beats": 8000},
    "rr99.99": {"calib_rr_percentile": 99.99},
    "rr99": {"calib_rr_percentile": 99.0},
    "calib8000+rr99.99": {"calib_beats": 8000, "calib_rr_percentile": 99.99},
    "offsets": {"decision_offsets": True, "decision_offsets_min_z": 0.0},     # question 26
    "offsets_z2": {"decision_offsets": True, "decision_offsets_min_z": 2.0},   # question 27 (the default since)
    "no_offsets": {"decision_offsets": False},                                 # the default until question 27
}


def fold_predictions(cfg, data_dir: Path, seed: int, options: dict) -> tuple[np.ndarray, dict, np.ndarray, dict]:
    """(labels, {"float" | option name: out-of-fold classes}, patients, hours) of one CV seed: the
    recipe's five folds at its last epoch, as `edgeecg cv --at-last-epoch` trains and scores them."""
    further = {name: QuantizeOptions(**fields) for name, fields in options.items() if fields}
    res = cross_validate(cfg, data_dir, 5, seed, choose=False, quantize=further,
                         log=lambda m: print(f"seed {seed} {m}", flush=True))
    if res.int8 is None:
        raise SystemExit(f"{cfg.model.name}: no int8 graph ({res.int8_unavailable})")
    preds = {"float": res.proba[-1].argmax(1)}
    for name, fields in options.items():
        preds[name] = res.int8_options[name] if fields else res.int8
    return res.y, preds, res.record, res.hours


def differences(y, preds, record, hours) -> dict:
    """Per option set and database: int8 minus float (pp) of macro-F1, S Se, V Se, and the agreement (%),
    as `edgeecg cv` writes them (``cv.json``'s ``int8.vs_float``)."""
    float_per_db = database_figures(y, preds["float"], record, hours)[0]
    return {name: int8_vs_float(y, p, preds["float"], record, float_per_db)
            for name, p in preds.items() if name != "float"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--config", default="hybrid")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--options", default=",".join(OPTIONS), help="option sets, comma-separated: " + ", ".join(OPTIONS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    options = {name: OPTIONS[name] for name in args.options.split(",")}
    per_seed = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = with_overrides(load_config(args.config), seed=seed, device="cpu", epochs=None)
        per_seed[seed] = differences(*fold_predictions(cfg, args.data, seed, options))
        if args.out:
            args.out.write_text(json.dumps(per_seed, indent=1))
    for name in options:
        rows = [per_seed[s][name][db] for s in per_seed for db in per_seed[s][name]]
        worst = max(abs(r[k]) for r in rows for k in DELTAS)
        print(f"{name:<20} worst |int8 - float| {worst:.2f} pp, "
              f"mean agreement {np.mean([r['agreement_with_float'] for r in rows]):.3f} %")
        for s in per_seed:
            print("   seed", s, json.dumps(per_seed[s][name]))


if __name__ == "__main__":
    main()
