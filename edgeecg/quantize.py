"""``edgeecg quantize``: a run directory -> every artifact for one target, checked and reported.

Float: TorchScript, torch.export (.pt2), ONNX, TFLite. int8: ONNX QDQ (onnxruntime static
quantization) and full-integer TFLite (TF converter on a Keras mirror of the folded model). The
int8 ``.tflite`` is the one quantized graph: the C library, ``model_data.c`` and the Python integer
reference are all derived from it, so the C is bit-exact with the reference and TFLite Micro.

Quantization is calibrated on DS1 *training* beats only; accuracy is reported on the DS1
validation beats (model choice) and on DS2 (final figures, never used to choose anything).
The calibration inputs are clipped to the 0.01–99.99th percentiles of the DS1 training inputs:
plain min-max let one RR interval of 100 s (a gap in a record) set the RR input's int8 scale, and
with it the whole model's accuracy. The device clips out-of-range inputs to int8 the same way.
Beats already on an int8 grid (``DataConfig.input_step`` > 0) are not clipped: the beat input takes
the grid's scale, so that its rounding costs nothing.
The int8 biases are bias-corrected on the same calibration beats (:mod:`edgeecg.quant.bias_correction`).
``report.json``'s ``rounding_budget_val`` says which rounding point of the int8 graph changes the
class of how many val beats (:mod:`edgeecg.quant.budget`): where to look when the accuracy check fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.atomic import atomic_dir
from edgeecg.config import Config, config_to_toml, test_key
from edgeecg.dataset import BeatSet, make_splits
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import agreement, summarise
from edgeecg.models import count_params, macs_per_beat
from edgeecg.processing.beats import rr_feature_names
from edgeecg.targets import Target

def artifact_files(prefix: str) -> dict[str, str]:
    """File of each artifact in an export directory; the C library is named after its prefix."""
    return {"torchscript": "model.ts.pt", "pt2": "model.pt2", "onnx_fp32": "model.fp32.onnx",
            "onnx_int8": "model.int8.onnx", "tflite_fp32": "model.fp32.tflite", "tflite_int8": "model.int8.tflite",
            "tflm": "model_data.c", "c_int8": f"{prefix}_model.c"}


GOLDEN_BEATS = 8


@dataclass
class QuantizeOptions:
    calib_beats: int = 2000
    calib_percentile: float = 99.99     # input ranges: this percentile of DS1 training (100: min-max)
    prefix: str = "edgeecg"
    seed: int = 0
    prune: float = 0.0          # fraction of each conv stage's channels to remove (0: no pruning)
    prune_epochs: int = 5       # fine-tuning epochs after pruning
    bias_correction: bool = True  # int8 biases cancel the mean rounding error (edgeecg.quant.bias_correction)


def calibration_set(train: BeatSet, n: int, seed: int, percentile: float = 100.0,
                    input_step: float = 0.0) -> BeatSet:
    """A class-stratified sample of DS1 training beats (every class's range is seen), its inputs
    clipped per channel and per RR feature to the [100 - p, p] percentiles of all of ``train``.

    With ``input_step`` the beats are already on their int8 grid (see ``DataConfig.input_step``):
    they are not clipped, and the two training beats that reach the grid's ends join the sample,
    so that the converter's beat-input scale and zero point are exactly the grid's.
    """
    if len(train) == 0 or n <= 0:
        raise EdgeECGError("calibration set is empty: need DS1 training beats (--calib-beats > 0)")
    rng = np.random.default_rng(seed)
    per_class = max(1, n // 10)
    rare = np.concatenate([rng.permutation(np.flatnonzero(train.y == c))[:per_class] for c in np.unique(train.y)])
    rest = rng.permutation(np.setdiff1d(np.arange(len(train)), rare))[: max(0, n - len(rare))]
    chosen = np.concatenate([rare, rest])
    if input_step:
        flat = train.x.reshape(len(train), -1)
        ends = [flat.min(axis=1).argmin(), flat.max(axis=1).argmax()]
        chosen = np.concatenate([chosen[: max(0, n - 2)], ends])
    calib = train.subset(np.unique(chosen))
    if percentile >= 100.0:
        return calib
    q = (100.0 - percentile, percentile)
    x = calib.x
    if not input_step:
        x_lo, x_hi = np.percentile(train.x, q, axis=(0, 2), keepdims=True)[:, 0]
        x = np.clip(x, x_lo, x_hi).astype(x.dtype)
    rr_lo, rr_hi = np.percentile(train.rr, q, axis=0)
    return BeatSet(x, np.clip(calib.rr, rr_lo, rr_hi).astype(calib.rr.dtype), calib.y, calib.record)


def beat_input_on_grid(graph, input_step: float) -> bool:
    """Whether the int8 graph quantizes the beat input on the data's grid (scale = step, zero point 0)."""
    q = graph.qparams[graph.beat_input]
    return bool(input_step) and q.zero_point == 0 and abs(q.scale / input_step - 1.0) < 1e-5


def quantize_run(run_dir: Path, cfg: Config, model, target: Target, data_dir: Path, out: Path,
                 opts: QuantizeOptions, force: bool = False, log=print) -> dict:
    """Write every artifact of ``target`` into ``out``; return the report (also ``report.json``)."""
    import torch

    from edgeecg.export import tflite as tfl
    from edgeecg.export import torch_onnx
    from edgeecg.export.fold import fold
    from edgeecg.quant import read_tflite
    from edgeecg.quant.bias_correction import correct_biases
    from edgeecg.quant.budget import rounding_budget
    from edgeecg.runtimes import (Int8GraphRunner, OnnxRunner, TFLiteRunner, TFLMRunner, TorchRunner,
                                  tflm_arena_bytes)
    from firmware_export import convert
    from firmware_export.golden import write_golden
    from firmware_export.tflm import write_model_data

    splits = make_splits(data_dir, cfg)
    calib = calibration_set(splits["train"], opts.calib_beats, opts.seed, opts.calib_percentile,
                            cfg.data.input_step)
    original = model
    if opts.prune:
        from edgeecg.prune import prune_and_fine_tune
        log(f"pruning {opts.prune:.0%} of each conv stage's channels, fine-tuning {opts.prune_epochs} epochs ...")
        model, cfg = prune_and_fine_tune(model, cfg, splits, opts.prune, opts.prune_epochs)
    n_rr = len(rr_feature_names(cfg.data.mode))
    example = torch_onnx.example_inputs(cfg.data.channels, cfg.data.window, n_rr, batch=2)
    folded = fold(model)
    files = artifact_files(opts.prefix)
    with atomic_dir(out, force=force) as tmp:
        log("exporting TorchScript, torch.export, ONNX ...")
        torch_onnx.export_torchscript(model, example, tmp / files["torchscript"])
        torch_onnx.export_pt2(model, example, tmp / files["pt2"])
        torch_onnx.export_onnx(model, example, tmp / files["onnx_fp32"])
        torch_onnx.quantize_onnx(tmp / files["onnx_fp32"], tmp / files["onnx_int8"], calib.x, calib.rr)
        log("converting to TFLite (float and full int8) ...")
        (tmp / files["tflite_fp32"]).write_bytes(tfl.convert(folded))
        int8_tflite = tfl.convert(folded, calib.x, calib.rr)
        if opts.bias_correction:
            log("correcting the int8 biases for the mean rounding error on the calibration beats ...")
            int8_tflite = tfl.convert(correct_biases(folded, read_tflite(int8_tflite), calib.x, calib.rr),
                                      calib.x, calib.rr)
        (tmp / files["tflite_int8"]).write_bytes(int8_tflite)
        graph = read_tflite(int8_tflite)
        on_grid = beat_input_on_grid(graph, cfg.data.input_step)
        if cfg.data.input_step and not on_grid:
            log(f"warning: the calibration beats do not reach both ends of the beat input's int8 grid "
                f"(step {cfg.data.input_step}), so the .tflite rounds the beat input again")
        n_inputs = 1 + (graph.rr_input is not None)
        arena = tflm_arena_bytes(int8_tflite, n_inputs)
        c_model = convert(graph, opts.prefix, target.c_block)
        c_model.save(tmp)
        write_model_data(tmp, int8_tflite, graph, arena, cfg.data, opts.prefix)

        runners = {
            "torch_fp32": TorchRunner(model),
            "torchscript": TorchRunner(torch.jit.load(str(tmp / files["torchscript"]))),
            "pt2": TorchRunner(torch.export.load(str(tmp / files["pt2"])).module()),
            "onnx_fp32": OnnxRunner(tmp / files["onnx_fp32"]),
            "onnx_int8": OnnxRunner(tmp / files["onnx_int8"]),
            "tflite_fp32": TFLiteRunner(tmp / files["tflite_fp32"]),
            "tflite_int8": TFLiteRunner(tmp / files["tflite_int8"]),
            "tflite_int8_builtin": TFLiteRunner(tmp / files["tflite_int8"], xnnpack=False),
            **({"torch_fp32_unpruned": TorchRunner(original)} if opts.prune else {}),
            "tflm": TFLMRunner(tmp / files["tflite_int8"], n_inputs),
            "c_int8": Int8GraphRunner(graph, c_model),
            "int8_reference": Int8GraphRunner(graph),
        }
        accuracy, consistency = {}, {}
        for split_name in ("val", "test"):
            beats = splits[split_name]
            log(f"running every artifact on {len(beats):,d} {split_name} beats ...")
            logits = {name: r.logits(beats.x, beats.rr) for name, r in runners.items()}
            ref = summarise(beats.y, logits["torch_fp32"])
            key = "val" if split_name == "val" else test_key(cfg)
            accuracy[key] = {name: summarise(beats.y, lg, ref) for name, lg in logits.items()}
            consistency[key] = {
                "beats": len(beats),
                "bit_exact_c_vs_reference": bool(np.array_equal(logits["c_int8"], logits["int8_reference"])),
                "bit_exact_c_vs_tflm": bool(np.array_equal(logits["c_int8"], logits["tflm"])),
                "c_vs_tflite_int8_agreement": agreement(logits["c_int8"], logits["tflite_int8_builtin"]),
                "c_vs_tflite_int8_xnnpack_agreement": agreement(logits["c_int8"], logits["tflite_int8"]),
                "c_vs_float_agreement": agreement(logits["c_int8"], logits["torch_fp32"]),
            }
        val = splits["val"]
        log(f"simulating each int8 rounding point alone on the {len(val):,d} val beats ...")
        rounding = rounding_budget(folded, graph, val.x, val.rr, val.y)
        beat_q, rr_q = runners["int8_reference"].quantized_inputs(val.x[:GOLDEN_BEATS], val.rr[:GOLDEN_BEATS])
        write_golden(tmp, beat_q, rr_q, runners["int8_reference"].logits(val.x[:GOLDEN_BEATS], val.rr[:GOLDEN_BEATS]),
                     opts.prefix)

        artifacts = {}
        for name, fname in files.items():
            path = tmp / fname
            weight_bytes = graph.weight_bytes if name in ("c_int8", "tflm", "tflite_int8", "onnx_int8") else None
            arena_bytes = {"tflm": arena, "c_int8": c_model.activation_bytes}.get(name)
            artifacts[name] = {"path": fname, "bytes": path.stat().st_size, "weight_bytes": weight_bytes,
                               "arena_bytes": arena_bytes}
        report = {
            "target": target.name,
            "run": str(run_dir),
            "prefix": opts.prefix, "c_block": target.c_block,
            "artifacts": artifacts,
            "ops": graph.ops,
            "params": count_params(model),
            "macs_per_beat": macs_per_beat(model, cfg.data.window, cfg.data.channels, n_rr),
            "weight_bytes_int8": graph.weight_bytes,
            "activation_bytes_c": c_model.activation_bytes,
            "tflm_arena_bytes": arena,
            "calibration_beats": len(calib), "calibration_percentile": opts.calib_percentile,
            "beat_input_on_data_grid": on_grid, "bias_correction": opts.bias_correction,
            "bit_exact_c_vs_reference": all(c["bit_exact_c_vs_reference"] for c in consistency.values()),
            "beats_compared": sum(c["beats"] for c in consistency.values()),
            "c_vs_tflite_int8_agreement": min(c["c_vs_tflite_int8_agreement"] for c in consistency.values()),
            "c_vs_tflite_int8_xnnpack_agreement": min(c["c_vs_tflite_int8_xnnpack_agreement"]
                                                      for c in consistency.values()),
            "consistency": consistency,
            "accuracy": accuracy,
            "rounding_budget_val": rounding,
        }
        if opts.prune:
            report["pruning"] = pruning_report(original, model, opts, int8_tflite=int8_tflite,
                                               calib=calib, accuracy=accuracy)
            torch.save(model.state_dict(), tmp / "model.pruned.pt")
            (tmp / "config.pruned.toml").write_text(config_to_toml(cfg))
        report["budget"] = check_budget(report, target)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def pruning_report(original, pruned, opts: QuantizeOptions, int8_tflite: bytes, calib: BeatSet,
                   accuracy: dict) -> dict:
    """What pruning saved, measured on the int8 ``.tflite`` of both models, and what it cost."""
    from edgeecg.export import tflite as tfl
    from edgeecg.export.fold import fold
    from edgeecg.prune import conv_channels
    from edgeecg.quant import read_tflite

    before = tfl.convert(fold(original), calib.x, calib.rr)
    return {
        "fraction": opts.prune, "fine_tune_epochs": opts.prune_epochs,
        "channels_before": conv_channels(original), "channels_after": conv_channels(pruned),
        "params_before": count_params(original), "params_after": count_params(pruned),
        "weight_bytes_int8_before": read_tflite(before).weight_bytes,
        "weight_bytes_int8_after": read_tflite(int8_tflite).weight_bytes,
        "tflite_int8_bytes_before": len(before), "tflite_int8_bytes_after": len(int8_tflite),
        "macro_f1_float_before": {k: v["torch_fp32_unpruned"]["macro_f1"] for k, v in accuracy.items()},
        "macro_f1_float_after": {k: v["torch_fp32"]["macro_f1"] for k, v in accuracy.items()},
        "macro_f1_c_int8_after": {k: v["c_int8"]["macro_f1"] for k, v in accuracy.items()},
    }


def check_budget(report: dict, target: Target) -> dict:
    """Size and accuracy-loss checks against the target (accuracy on the DS1 validation beats)."""
    problems = []
    if report["weight_bytes_int8"] > target.flash_bytes:
        problems.append(f"int8 weights {report['weight_bytes_int8']} B exceed the flash budget "
                        f"{target.flash_bytes} B by {report['weight_bytes_int8'] - target.flash_bytes} B")
    ram = max(report["tflm_arena_bytes"], report["activation_bytes_c"])
    if ram > target.ram_bytes:
        problems.append(f"activation RAM {ram} B exceeds the RAM budget {target.ram_bytes} B by "
                        f"{ram - target.ram_bytes} B")
    for name in ("onnx_int8", "tflite_int8", "tflm", "c_int8"):
        row = report["accuracy"]["val"][name]
        for key, limit in (("delta_macro_f1", target.max_macro_f1_loss_pp), ("delta_S_se", target.max_se_loss_pp),
                           ("delta_V_se", target.max_se_loss_pp)):
            if row[key] < -limit:
                problems.append(f"{name}: {key} {row[key]:+.2f} pp on val is beyond the allowed -{limit} pp")
    return {"pass": not problems, "problems": problems}
