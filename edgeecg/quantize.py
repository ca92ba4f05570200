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
Then S's and V's output biases are shifted to where the int8 classes agree most with float on training
beats, where that gain is not chance (:mod:`edgeecg.quant.decision_offsets`; ``--no-decision-offsets``
leaves them).
The output tensor's int8 range is then narrowed so that the argmax of the int8 logits, which TFLite
Micro, LiteRT and ONNX Runtime users take, decides as the C does on the accumulators
(:mod:`edgeecg.quant.output_range`, chosen on DS1 training beats).
``report.json``'s ``rounding_budget_val`` says which rounding point of the int8 graph changes the
class of how many val beats (:mod:`edgeecg.quant.budget`): where to look when the accuracy check fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeecg.atomic import atomic_dir
from edgeecg.config import Config, config_to_toml, rr_feature_names, test_key
from edgeecg.data import BeatSet, check_split, make_splits
from edgeecg.errors import EdgeECGError
from edgeecg.metrics import (
    MAX_MACRO_AUC_LOSS,
    agreement,
    classification_report,
    per_record_report,
    predicted,
    summarise_artifact,
)
from edgeecg.models import count_params, macs_per_beat
from edgeecg.models.nets import plain
from edgeecg.targets import Target, accuracy_loss_problems

if TYPE_CHECKING:
    from edgeecg.quant.decision_offsets import DecisionOffsets
    from edgeecg.quant.output_range import OutputRange


def artifact_files(prefix: str) -> dict[str, str]:
    """File of each artifact in an export directory; the C library is named after its prefix."""
    return {"torchscript": "model.ts.pt", "pt2": "model.pt2", "onnx_fp32": "model.fp32.onnx",
            "onnx_int8": "model.int8.onnx", "tflite_fp32": "model.fp32.tflite", "tflite_int8": "model.int8.tflite",
            "tflm": "model_data.c", "c_int8": f"{prefix}_model.c"}


GOLDEN_BEATS = 8
BUDGET_BEATS = 15_000   # the rounding budget simulates every point on this many DS1 check beats at most


@dataclass
class QuantizeOptions:
    calib_beats: int = 2000
    calib_percentile: float = 99.99     # beat input range: this percentile of DS1 training (100: min-max)
    calib_rr_percentile: float = 99.9   # RR input range, likewise: one int8 scale for every RR feature,
                                        # so a long pause must not set it (docs/int8.md)
    prefix: str = "edgeecg"
    seed: int = 0
    prune: float = 0.0          # fraction of each conv stage's channels to remove (0: no pruning)
    prune_epochs: int = 5       # fine-tuning epochs after pruning
    bias_correction: bool = True  # int8 biases cancel the mean rounding error (edgeecg.quant.bias_correction)
    decision_offsets: bool = True   # S and V offsets in the int8 output biases so that its classes agree
                                    # most with float on training beats (edgeecg.quant.decision_offsets)
    decision_offsets_min_z: float = 2.0  # ... kept only where their gain is this many coin-flip sds
                                         # (training/README.md, questions 26 and 27)


def calibration_set(train: BeatSet, n: int, seed: int, percentile: float = 100.0,
                    input_step: float = 0.0, rr_percentile: float | None = None) -> BeatSet:
    """A class-stratified sample of DS1 training beats (every class's range is seen), its inputs
    clipped per channel to the [100 - p, p] percentiles of all of ``train``, and per RR feature to
    the [100 - r, r] percentiles (``rr_percentile``, default ``percentile``). The RR features share
    one int8 scale, so the widest feature's range sets every feature's step.

    With ``input_step`` the beats are already on their int8 grid (see ``DataConfig.input_step``):
    they are not clipped, and the two training beats that reach the grid's ends join the sample,
    so that the converter's beat-input scale and zero point are exactly the grid's.
    """
    if len(train) == 0 or n <= 0:
        raise EdgeECGError("calibration set is empty: need DS1 training beats (--calib-beats > 0)")
    rng = np.random.default_rng(seed)
    per_class = max(1, n // 10)
    positives = ([train.y[:, k] > 0 for k in range(train.y.shape[1])] if train.y.ndim == 2     # multi-label
                 else [train.y == c for c in np.unique(train.y)])
    rare = np.concatenate([rng.permutation(np.flatnonzero(m))[:per_class] for m in positives])
    rest = rng.permutation(np.setdiff1d(np.arange(len(train)), rare))[: max(0, n - len(rare))]
    chosen = np.concatenate([rare, rest])
    if input_step:
        flat = train.x.reshape(len(train), -1)
        ends = [flat.min(axis=1).argmin(), flat.max(axis=1).argmax()]
        chosen = np.concatenate([chosen[: max(0, n - 2)], ends])
    calib = train.subset(np.unique(chosen))
    rr_percentile = percentile if rr_percentile is None else rr_percentile
    x, rr = calib.x, calib.rr
    if percentile < 100.0 and not input_step:
        x_lo, x_hi = np.percentile(train.x, (100.0 - percentile, percentile), axis=(0, 2), keepdims=True)[:, 0]
        x = np.clip(x, x_lo, x_hi).astype(x.dtype)
    if rr_percentile < 100.0 and rr.shape[1]:
        rr_lo, rr_hi = np.percentile(train.rr, (100.0 - rr_percentile, rr_percentile), axis=0)
        rr = np.clip(rr, rr_lo, rr_hi).astype(rr.dtype)
    return BeatSet(x, rr, calib.y, calib.record)


def budget_sample(beats: BeatSet, n: int, seed: int) -> BeatSet:
    """Every non-N beat and enough N beats for ``n`` in all (all beats when there are fewer)."""
    if len(beats) <= n:
        return beats
    if beats.y.ndim == 2:          # multi-label: the first n
        return beats.subset(np.arange(n))
    rare = np.flatnonzero(beats.y != 0)
    normal = np.random.default_rng(seed).permutation(np.flatnonzero(beats.y == 0))[: max(0, n - len(rare))]
    return beats.subset(np.sort(np.concatenate([rare, normal])))


def beat_input_on_grid(graph, input_step: float) -> bool:
    """Whether the int8 graph quantizes the beat input on the data's grid (scale = step, zero point 0)."""
    q = graph.qparams[graph.beat_input]
    return bool(input_step) and q.zero_point == 0 and abs(q.scale / input_step - 1.0) < 1e-5


def quantize_run(run_dir: Path, cfg: Config, model, target: Target, data_dir: Path, out: Path,
                 opts: QuantizeOptions, force: bool = False, log=print, splits: dict | None = None) -> dict:
    """Write every artifact of ``target`` into ``out``; return the report (also ``report.json``).
    ``splits``: the beats the model was trained and is scored on (default: made from ``data_dir``)."""
    import torch

    from edgeecg.export import tflite as tfl
    from edgeecg.export import torch_onnx
    from edgeecg.export.fold import fold
    from edgeecg.quant import read_tflite
    from edgeecg.quant.budget import rounding_budget
    from edgeecg.quant.output_range import set_onnx_output
    from edgeecg.runtimes import (
        Int8GraphRunner,
        TorchRunner,
        load_artifact,
        outputs,
        tflm_arena_bytes,
    )
    from edgeecg.stream.rate import rate_converter
    from firmware_export import convert
    from firmware_export.golden import write_golden
    from firmware_export.tflm import write_model_data

    rate_converter(target.adc_hz)           # the stream front end's ADC rate: checked before any work
    if not target.adc_gain > 0:
        raise EdgeECGError(f"target {target.name}: adc_gain = {target.adc_gain} must be > 0 counts/mV")
    splits = splits if splits is not None else make_splits(data_dir, cfg)
    why = int8_unavailable(model, cfg)
    if why is not None:
        return quantize_float_only(run_dir, cfg, model, target, splits, out, opts, why, force, log)
    if opts.prune and cfg.data.multilabel:
        raise EdgeECGError("--prune reports macro-F1 before and after: not available for a multi-label model")
    calib = calibration_set(splits["train"], opts.calib_beats, opts.seed, opts.calib_percentile,
                            cfg.data.input_step, opts.calib_rr_percentile)
    original = plain(model) if opts.prune else None     # the unpruned model, for the pruning report
    if opts.prune:
        from edgeecg.prune import prune_and_fine_tune
        log(f"pruning {opts.prune:.0%} of each conv stage's channels, fine-tuning {opts.prune_epochs} epochs ...")
        model, cfg = prune_and_fine_tune(model, cfg, splits, opts.prune, opts.prune_epochs)
    trained, model = model, plain(model)   # constrained layers as dense layers, logit offsets in the last bias
    n_rr = len(rr_feature_names(cfg.data))
    example = torch_onnx.example_inputs(cfg.data.channels, cfg.data.window, n_rr, batch=2)
    folded = fold(model)
    files = artifact_files(opts.prefix)
    with atomic_dir(out, force=force) as tmp:
        log("exporting TorchScript, torch.export, ONNX ...")
        torch_onnx.export_torchscript(model, example, tmp / files["torchscript"])
        torch_onnx.export_pt2(model, example, tmp / files["pt2"])
        torch_onnx.export_onnx(model, example, tmp / files["onnx_fp32"])
        torch_onnx.quantize_onnx(tmp / files["onnx_fp32"], tmp / files["onnx_int8"], calib.x, calib.rr)
        log("converting to TFLite (float and full int8"
            + (", int8 biases corrected for the mean rounding error" if opts.bias_correction else "")
            + (", decision offsets chosen on training beats" if opts.decision_offsets else "")
            + "; output range chosen) ...")
        (tmp / files["tflite_fp32"]).write_bytes(tfl.convert(folded))
        check_key, check = check_split(splits)
        conversion = convert_int8(folded, calib, splits["train"], check, opts, cfg.data.multilabel)
        int8_tflite = conversion.tflite
        if conversion.output_range is None:
            out_range = {"skipped": "multi-label model: its classes are not an argmax"}
        else:
            set_onnx_output(tmp / files["onnx_int8"], conversion.output_range.qparams)
            out_range = {"split": check_key, **conversion.output_range.as_dict()}
        offsets = (conversion.offsets.as_dict() if conversion.offsets is not None else
                   {"skipped": "multi-label model" if cfg.data.multilabel else "not asked for"})
        sample = budget_sample(check, BUDGET_BEATS, opts.seed)
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
        stream = stream_export(tmp, opts.prefix, cfg.data, graph, target)
        write_model_data(tmp, int8_tflite, graph, arena, device_data_config(cfg.data), opts.prefix)

        runners = {
            "torch_fp32": TorchRunner(model),
            **{name: load_artifact(name, tmp / files[name]) for name in
               ("torchscript", "pt2", "onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8")},
            "tflite_int8_builtin": load_artifact("tflite_int8_builtin", tmp / files["tflite_int8"]),
            **({"torch_fp32_unpruned": TorchRunner(original)} if opts.prune else {}),
            "tflm": load_artifact("tflm", tmp / files["tflite_int8"], n_inputs),
            "c_int8": Int8GraphRunner(graph, c_model),
            "int8_reference": Int8GraphRunner(graph),
        }
        accuracy, consistency, reports, per_record = {}, {}, {}, {}
        for key, beats in ((check_key, check), (test_key(cfg), splits["test"])):
            log(f"running every artifact on {len(beats):,d} {key} beats ...")
            outs = {name: outputs(r, beats.x, beats.rr) for name, r in runners.items()}
            logits = {name: lg for name, (lg, _) in outs.items()}
            classes = {name: cls for name, (_, cls) in outs.items()}
            accuracy[key], reports[key], per_record[key] = score_artifacts(beats, logits, ("torch_fp32", "c_int8"),
                                                                           classes)
            consistency[key] = {
                "beats": len(beats),
                "bit_exact_c_vs_reference": bool(np.array_equal(logits["c_int8"], logits["int8_reference"])
                                                 and np.array_equal(classes["c_int8"], classes["int8_reference"])),
                "bit_exact_c_vs_tflm": bool(np.array_equal(logits["c_int8"], logits["tflm"])),
                # the class the C decides on its int32 accumulators, against the argmax of the others
                "c_vs_tflm_class_agreement": agreement(classes["c_int8"], classes["tflm"]),
                "c_vs_tflite_int8_agreement": agreement(classes["c_int8"], classes["tflite_int8_builtin"]),
                "c_vs_tflite_int8_xnnpack_agreement": agreement(classes["c_int8"], classes["tflite_int8"]),
                "c_vs_float_agreement": agreement(classes["c_int8"], classes["torch_fp32"]),
            }
        log(f"simulating each int8 rounding point alone on {len(sample):,d} {check_key} beats ...")
        rounding = (rounding_budget(folded, graph, sample.x, sample.rr, sample.y) if not cfg.data.multilabel else
                    {"skipped": "multi-label model: the budget counts beats whose argmax class changes"})
        gold = check.subset(np.arange(min(GOLDEN_BEATS, len(check))))
        beat_q, rr_q = runners["int8_reference"].quantized_inputs(gold.x, gold.rr)
        write_golden(tmp, beat_q, rr_q, *runners["int8_reference"].classify(gold.x, gold.rr), opts.prefix)

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
            "calibration_rr_percentile": opts.calib_rr_percentile,
            "beat_input_on_data_grid": on_grid, "bias_correction": opts.bias_correction,
            "bit_exact_c_vs_reference": all(c["bit_exact_c_vs_reference"] for c in consistency.values()),
            "beats_compared": sum(c["beats"] for c in consistency.values()),
            "c_vs_tflite_int8_agreement": min(c["c_vs_tflite_int8_agreement"] for c in consistency.values()),
            "c_vs_tflite_int8_xnnpack_agreement": min(c["c_vs_tflite_int8_xnnpack_agreement"]
                                                      for c in consistency.values()),
            "consistency": consistency,
            "check_split": check_key,
            "accuracy": accuracy,
            "reports": reports,
            "per_record": per_record,
            "rounding_budget": {"split": check_key, "beats": len(sample), **rounding},
            "output_range": out_range,
            "decision_offsets": offsets,
            "stream": stream,
        }
        if opts.prune:
            report["pruning"] = pruning_report(original, model, opts, int8_tflite=int8_tflite,
                                               calib=calib, accuracy=accuracy)
            torch.save(trained.state_dict(), tmp / "model.pruned.pt")
            (tmp / "config.pruned.toml").write_text(config_to_toml(cfg))
        report["budget"] = check_budget(report, target)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


@dataclass
class Int8Conversion:
    """The int8 ``.tflite`` that ``quantize`` ships, and what was chosen on the way."""
    tflite: bytes
    offsets: DecisionOffsets | None         # None: not asked for, or a multi-label model
    output_range: OutputRange | None        # None: a multi-label model (its classes are not an argmax)


def uniform_sample(beats: BeatSet, n: int, seed: int) -> BeatSet:
    """``n`` beats drawn evenly from ``beats`` (all of them when there are fewer), in their order."""
    if len(beats) <= n:
        return beats
    return beats.subset(np.sort(np.random.default_rng(seed).permutation(len(beats))[:n]))


def convert_int8(folded, calib: BeatSet, train: BeatSet, check: BeatSet, opts: QuantizeOptions,
                 multilabel: bool = False) -> Int8Conversion:
    """The full-integer ``.tflite`` of a folded model, calibrated on ``calib``. With
    ``opts.bias_correction`` converted again with int8 biases that cancel the mean rounding error on
    those beats; with ``opts.decision_offsets`` once more with the S and V offsets under which its
    classes agree most with float on ``train`` beats (:mod:`edgeecg.quant.decision_offsets`); then
    its output range is chosen on ``check`` beats (:mod:`edgeecg.quant.output_range`)."""
    from edgeecg.export import tflite as tfl
    from edgeecg.quant import read_tflite
    from edgeecg.quant.bias_correction import correct_biases
    from edgeecg.quant.decision_offsets import OFFSET_BEATS, choose_decision_offsets, with_decision_offsets
    from edgeecg.quant.output_range import choose_output_range, set_tflite_output
    from edgeecg.runtimes import Int8GraphRunner

    int8_model = folded
    data = tfl.convert(int8_model, calib.x, calib.rr)
    if opts.bias_correction:
        int8_model = correct_biases(folded, read_tflite(data), calib.x, calib.rr)
        data = tfl.convert(int8_model, calib.x, calib.rr)
    offsets = out_range = None
    if opts.decision_offsets and not multilabel:
        sample, graph = uniform_sample(train, OFFSET_BEATS, opts.seed), read_tflite(data)
        offsets = choose_decision_offsets(folded, graph, sample.x, sample.rr,
                                          *Int8GraphRunner(graph).quantized_inputs(sample.x, sample.rr),
                                          min_z=opts.decision_offsets_min_z)
        if any(offsets.offsets):
            data = tfl.convert(with_decision_offsets(int8_model, offsets), calib.x, calib.rr)
    if not multilabel:
        sample, graph = budget_sample(check, BUDGET_BEATS, opts.seed), read_tflite(data)
        out_range = choose_output_range(graph, *Int8GraphRunner(graph).quantized_inputs(sample.x, sample.rr))
        data = set_tflite_output(data, out_range.qparams)
    return Int8Conversion(data, offsets, out_range)


def shipped_conversion(model, cfg: Config, splits: dict[str, BeatSet],
                       opts: QuantizeOptions | None = None) -> Int8Conversion:
    """The int8 ``.tflite`` ``edgeecg quantize`` ships for ``model`` trained on ``splits`` (``train``, and
    ``val`` if any), and what was chosen on the way, without writing anything: the same calibration,
    bias correction, decision offsets and output range."""
    from edgeecg.export.fold import fold

    opts = opts or QuantizeOptions()
    calib = calibration_set(splits["train"], opts.calib_beats, opts.seed, opts.calib_percentile, cfg.data.input_step,
                            opts.calib_rr_percentile)
    return convert_int8(fold(plain(model)), calib, splits["train"], check_split(splits)[1], opts, cfg.data.multilabel)


def shipped_graph(model, cfg: Config, splits: dict[str, BeatSet], opts: QuantizeOptions | None = None):
    """The int8 graph of :func:`shipped_conversion`. Its integer reference decides each beat's class as
    the generated C does, bit for bit (``edgeecg cv`` scores each fold's graph out of fold)."""
    from edgeecg.quant import read_tflite

    return read_tflite(shipped_conversion(model, cfg, splits, opts).tflite)


def stream_export(directory: Path, prefix: str, data_cfg, graph, target: Target) -> dict:
    """``PREFIX_stream.{h,c}`` and ``PREFIX_qrs.{h,c}`` (the streaming front end, see
    :mod:`edgeecg.stream.frontend`) beside the C model; what ``report.json`` says about them. A
    recipe the integer front end cannot reproduce (e.g. diagnostic mode) gets no stream files and
    the reason instead; an ADC rate that is not a multiple of 180 Hz is an error (checked earlier)."""
    from edgeecg.stream.frontend import front_end_spec
    from firmware_export.stream import write_spec

    try:
        spec = front_end_spec(data_cfg, graph, target.adc_hz, target.adc_gain)
    except EdgeECGError as err:
        return {"written": False, "reason": str(err)}
    paths = write_spec(directory, prefix, spec)
    return {"written": True, "files": {p.name: p.stat().st_size for p in paths},
            "adc_hz": spec.adc_hz, "adc_gain": spec.adc_gain, "rate_conversion": spec.rate.describe(),
            "filter_fraction_bits": spec.bandpass.g, "ring_samples": spec.ring_n,
            "window_latency_samples": spec.latency_samples, "pending_beats": spec.pend_n, "leads": spec.leads}


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
    """Size and accuracy-loss checks against the target (accuracy on the DS1 check beats). The loss
    budget holds the int8 formats the target deploys; a host reference over it (``tflite_int8`` for
    an esp32) is named in ``note`` and does not fail the export."""
    problems, host = [], []
    if report["weight_bytes_int8"] > target.flash_bytes:
        problems.append(f"int8 weights {report['weight_bytes_int8']} B exceed the flash budget "
                        f"{target.flash_bytes} B by {report['weight_bytes_int8'] - target.flash_bytes} B")
    ram = max(report["tflm_arena_bytes"], report["activation_bytes_c"])
    if ram > target.ram_bytes:
        problems.append(f"activation RAM {ram} B exceeds the RAM budget {target.ram_bytes} B by "
                        f"{ram - target.ram_bytes} B")
    check = report["check_split"]
    for name in ("onnx_int8", "tflite_int8", "tflm", "c_int8"):
        found = [f"{name} on {check}: {p}" for p in accuracy_loss_problems(report["accuracy"][check][name], target)]
        (problems if target.deploys(name) else host).extend(found)
    budget = {"pass": not problems, "problems": problems}
    if host:
        budget["note"] = (f"host references over the accuracy budget (not what {target.name} runs, "
                          f"which deploys {', '.join(target.deploy)}): " + "; ".join(host))
    return budget


# --- multi-label scoring, models without an int8 path, the CLI's summary -----------------------------


def score_artifacts(beats: BeatSet, logits: dict, reported: tuple[str, ...],
                    classes: dict | None = None) -> tuple[dict, dict, dict]:
    """``accuracy`` (every artifact against ``torch_fp32``), ``reports`` and ``per_record`` (the
    ``reported`` artifacts) of one split. Single-label: macro-F1 and Se/+P (AAMI) of ``classes``
    (default: the argmax of the logits). Multi-label: per label and macro ROC-AUC of the logits
    (order only: int8 logits need no sigmoid), no per-record rows."""
    chosen = classes or {}
    ref = summarise_artifact(beats.y, logits["torch_fp32"], chosen.get("torch_fp32"))
    accuracy = {name: summarise_artifact(beats.y, lg, chosen.get(name), ref) for name, lg in logits.items()}
    if beats.y.ndim == 2:
        return accuracy, {name: accuracy[name] for name in reported if name in logits}, {}
    pred = {name: chosen.get(name, predicted(lg)) for name, lg in logits.items()}
    reports = {name: classification_report(beats.y, pred[name]) for name in reported if name in pred}
    per_record = {name: per_record_report(beats.y, pred[name], beats.record) for name in reported if name in pred}
    return accuracy, reports, per_record


def device_data_config(data):
    """The preprocessing constants ``model_data.h`` states: for a whole-record or fixed-length dataset
    (PTB-XL, Kaggle) the window starts at sample 0 (before 0, after = window) and has no template."""
    import dataclasses
    if data.dataset == "mitdb":
        return data
    return dataclasses.replace(data, before=0, after=data.window, template_beats=0, rr_features=(),
                               dataset="mitdb", segment=0)


def int8_unavailable(model, cfg: Config) -> str | None:
    """Why ``model`` has no int8/C export (None when it has one). A conv stack whose window is not a
    multiple of 2^stages is an error: the int8 graph's window is read back from the flatten width."""
    from edgeecg.models.nets import CNN, Hybrid

    if not isinstance(model, (Hybrid, CNN)):
        kinds = sorted({type(m).__name__ for m in model.modules()} & {"LSTM", "Conv2d", "GRU"})
        return (f"{cfg.model.name} has {', '.join(kinds) or type(model).__name__}: the int8 exporters and the C "
                f"generator take Conv1d + BatchNorm + ReLU + MaxPool stages and dense layers only")
    stages = sum(1 for _ in model.features if type(_).__name__ == "MaxPool1d")
    if cfg.data.window % (1 << stages):
        raise EdgeECGError(f"[data] window {cfg.data.window} is not a multiple of 2^{stages} (the model's "
                           f"{stages} pooling stages): the int8 export needs one (set [data] segment)")
    return None


FLOAT_FORMATS = ("torchscript", "pt2", "onnx_fp32", "tflite_fp32")
INT8_FORMATS = ("onnx_int8", "tflite_int8", "tflm", "c_int8")


def quantize_float_only(run_dir: Path, cfg: Config, model, target: Target, splits: dict, out: Path,
                        opts: QuantizeOptions, why: str, force: bool = False, log=print) -> dict:
    """A model without an int8 path (``cnn_lstm``, ``cnn_bilstm``, ``spectrogram_cnn``): the float formats
    that export (TorchScript, torch.export, ONNX, TFLite through a Keras mirror), each checked against
    the trained model; the int8 rows are reported as not available, with the reason."""
    from edgeecg.export import torch_onnx
    from edgeecg.models.keras_mirror import MIRRORED, float_tflite
    from edgeecg.runtimes import TorchRunner, load_artifact

    if opts.prune:
        raise EdgeECGError(f"--prune supports hybrid and cnn, not {cfg.model.name!r}")
    log(f"int8 and C: not available for {cfg.model.name} ({why}); writing the float formats")
    model = plain(model)
    n_rr = len(rr_feature_names(cfg.data))
    example = torch_onnx.example_inputs(cfg.data.channels, cfg.data.window, n_rr, batch=2)
    files = {k: v for k, v in artifact_files(opts.prefix).items() if k in FLOAT_FORMATS}
    not_available = {name: why for name in INT8_FORMATS}

    def tflite(path):
        if not isinstance(model, MIRRORED):
            raise EdgeECGError(f"no Keras mirror of {type(model).__name__} for TFLite")
        path.write_bytes(float_tflite(model, cfg.data.window, cfg.data.channels, n_rr))

    exporters = {"torchscript": lambda p: torch_onnx.export_torchscript(model, example, p),
                 "pt2": lambda p: torch_onnx.export_pt2(model, example, p),
                 "onnx_fp32": lambda p: torch_onnx.export_onnx(model, example, p),
                 "tflite_fp32": tflite}
    with atomic_dir(out, force=force) as tmp:
        runners = {"torch_fp32": TorchRunner(model)}
        for name, fname in files.items():
            log(f"exporting {name} ...")
            try:
                exporters[name](tmp / fname)
                runners[name] = load_artifact(name, tmp / fname)
            except Exception as err:     # one format failing must not cost the others
                (tmp / fname).unlink(missing_ok=True)
                first = (str(err).strip().splitlines() or [""])[0][:160]
                not_available[name] = f"export failed: {type(err).__name__}: {first}"
                log(f"{name}: not written ({not_available[name]})")
        accuracy, reports, per_record = {}, {}, {}
        check_key, check = check_split(splits)
        for key, beats in ((check_key, check), (test_key(cfg), splits["test"])):
            log(f"running every float artifact on {len(beats):,d} {key} beats ...")
            logits = {name: r.logits(beats.x, beats.rr) for name, r in runners.items()}
            accuracy[key], reports[key], per_record[key] = score_artifacts(beats, logits, ("torch_fp32",))
        artifacts = {name: {"path": fname, "bytes": (tmp / fname).stat().st_size, "weight_bytes": None,
                            "arena_bytes": None} for name, fname in files.items() if (tmp / fname).exists()}
        params = count_params(model)
        report = {
            "target": target.name, "run": str(run_dir), "prefix": opts.prefix, "model": cfg.model.name,
            "int8": False, "int8_unavailable": why, "not_available": not_available,
            "artifacts": artifacts, "params": params,
            "macs_per_beat": macs_per_beat(model, cfg.data.window, cfg.data.channels, n_rr),
            "weight_bytes_fp32": 4 * params, "weight_bytes_int8": None, "activation_bytes_c": None,
            "tflm_arena_bytes": None, "bit_exact_c_vs_reference": None, "consistency": {},
            "check_split": check_key, "accuracy": accuracy, "reports": reports, "per_record": per_record,
            "stream": {"written": False, "reason": why},
        }
        problems = []
        for key, rows in accuracy.items():     # a float export must compute what the trained model does
            for name, row in rows.items():
                d = row.get("delta_macro_auc", row.get("delta_macro_f1"))
                limit = MAX_MACRO_AUC_LOSS if "delta_macro_auc" in row else target.max_macro_f1_loss_pp
                if d is not None and abs(d) > limit:
                    problems.append(f"{name}: differs from the trained model on {key} ({d:+.3f})")
        deployable = [f for f in target.deploy if f in artifacts]
        report["budget"] = {"pass": not problems, "problems": problems,
                            "note": f"{target.name} deploys {', '.join(target.deploy)}: "
                                    + (f"written: {', '.join(deployable)}" if deployable else
                                       "none exists for this model (float formats only; no size check)")}
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_report(report: dict, target: Target | None = None) -> str:
    """What ``edgeecg quantize`` prints after writing an export directory: sizes (against ``target``'s
    budgets where given), bit-exactness and the accuracy of every artifact; for a multi-label model
    macro-AUC instead of macro-F1 and S/V Se; for a model without an int8 path the float rows and the
    int8 rows' reason."""
    def n(v):
        return "–" if v is None else f"{v:,d}"

    flash = f" (budget {target.flash_bytes:,d})" if target else ""
    ram = f" (budget {target.ram_bytes:,d})" if target else ""
    lines = [f"{report['target']}: {report['params']:,d} params, {report['macs_per_beat']:,d} MACs/beat, "
             f"int8 weights {n(report['weight_bytes_int8'])} B{flash}, C activations {n(report['activation_bytes_c'])} B, "
             f"TFLM arena {n(report['tflm_arena_bytes'])} B{ram}"]
    if "pruning" in report:
        p = report["pruning"]
        lines.append(f"pruned {p['fraction']:.0%} of conv channels {p['channels_before']} -> {p['channels_after']}: "
                     f"params {p['params_before']:,d} -> {p['params_after']:,d}, int8 weights "
                     f"{p['weight_bytes_int8_before']:,d} -> {p['weight_bytes_int8_after']:,d} B, .tflite "
                     f"{p['tflite_int8_bytes_before']:,d} -> {p['tflite_int8_bytes_after']:,d} B; float macro-F1 "
                     + ", ".join(f"{k} {p['macro_f1_float_before'][k]:.2f} -> {p['macro_f1_float_after'][k]:.2f}"
                                 for k in p["macro_f1_float_before"]))
    if report.get("int8") is False:
        lines.append(f"int8 and C: not available ({report['int8_unavailable']})")
        lines += [f"  {name}: {why}" for name, why in report["not_available"].items() if name not in INT8_FORMATS]
    for key, c in report.get("consistency", {}).items():
        lines.append(f"{key}: {c['beats']:,d} beats, C == integer reference: {c['bit_exact_c_vs_reference']}, "
                     f"C == TFLite Micro (logits): {c['bit_exact_c_vs_tflm']}; same class as TFLite Micro's "
                     f"argmax {c.get('c_vs_tflm_class_agreement', float('nan')):.3f} %, as LiteRT int8's "
                     f"{c['c_vs_tflite_int8_agreement']:.3f} % (builtin kernels), "
                     f"{c['c_vs_tflite_int8_xnnpack_agreement']:.3f} % (XNNPACK), "
                     f"C vs the float model {c['c_vs_float_agreement']:.3f} %")
    for key, rows in report["accuracy"].items():
        first = next(iter(rows.values()))
        if "macro_auc" in first:
            labels = list(first["per_class"])
            lines.append(f"\n{key:<20}{'macro-AUC':>10}{'Δ':>8}" + "".join(f"{c:>7}" for c in labels))
            for name, row in rows.items():
                d = row["delta_macro_auc"]
                lines.append(f"{name:<20}{row['macro_auc'] or float('nan'):>10.4f}"
                             f"{(d if d is not None else float('nan')):>+8.4f}"
                             + "".join(f"{(row['per_class'][c]['auc'] or float('nan')):>7.3f}" for c in labels))
            continue
        lines.append(f"\n{key:<20}{'macro-F1':>9}{'Δ':>7}{'S Se':>7}{'ΔS Se':>7}{'V Se':>7}{'ΔV Se':>7}")
        for name, row in rows.items():
            lines.append(f"{name:<20}{row['macro_f1']:>9.2f}{row['delta_macro_f1']:>+7.2f}"
                         f"{row['per_class']['S']['se']:>7.1f}{row['delta_S_se']:>+7.2f}"
                         f"{row['per_class']['V']['se']:>7.1f}{row['delta_V_se']:>+7.2f}")
    budget = report.get("rounding_budget")
    if budget and "alone" in budget:
        from edgeecg.quant.budget import summary as rounding_summary
        lines.append(f"\n{budget['split']}: {rounding_summary(budget)}")
    if report["budget"].get("note"):
        lines.append(f"\n{report['budget']['note']}")
    return "\n".join(lines)
