"""An int8 output range in which the logits' argmax decides as the int32 accumulators do.

The converter gives the output tensor the full range of the calibration logits (about ±13 for the
default model: one int8 step is 0.1 of a logit). Where the two largest logits of a beat are closer
than that, they round to one int8 value and every runtime that takes the argmax of the int8 logits
(TFLite Micro, LiteRT, ONNX Runtime) gives the tie to the lower class, N: S beats are lost that the
float model and the generated C (which decides on the accumulators) find.

For an argmax only two things matter: that the largest logit is not clamped at the bottom (so the
range must start below the per-beat maximum) and that the runner-up is not clamped at the top
together with it (so the range must reach the per-beat second largest). :func:`choose_output_range`
tries ranges between those percentiles of the output layer's values on the given beats and keeps the
one whose int8 argmax disagrees least with the accumulators' decision (the current range is a
candidate, so nothing gets worse on those beats); :func:`set_tflite_output` and
:func:`set_onnx_output` write it into the artifacts, whose kernels then requantize to the new scale.
The float model, the weights and the biases are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgeecg.quant.graph import Int8Graph, QParams, channel_multipliers
from edgeecg.quant.reference import class_scores, forward_int8, requantize, score_bits

LOW_PERCENTILES = (0.0, 0.1, 0.5, 1.0)          # of the per-beat largest logit: where the range starts
HIGH_PERCENTILES = (99.0, 99.5, 99.9, 100.0)    # of the per-beat second largest: where it ends


@dataclass(frozen=True)
class OutputRange:
    qparams: QParams
    before: QParams
    disagreements: int          # beats whose int8 argmax differs from the accumulators' class, new range
    disagreements_before: int   # ... with the converter's range
    beats: int

    def as_dict(self) -> dict:
        return {"scale": self.qparams.scale, "zero_point": self.qparams.zero_point,
                "converter_scale": self.before.scale, "converter_zero_point": self.before.zero_point,
                "argmax_disagreements": self.disagreements,
                "argmax_disagreements_converter_range": self.disagreements_before, "beats": self.beats}


def qparams_for(lo: float, hi: float) -> QParams:
    """int8 scale and zero point of the real range [lo, hi] (widened to contain 0 if needed, as TFLite does)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    return QParams(float(np.float32(scale)), int(np.clip(round(-128 - lo / scale), -128, 127)))


def int8_logits(acc: np.ndarray, graph: Int8Graph, out: QParams) -> np.ndarray:
    """The output layer's int8 logits from its int32 accumulators if its output had ``out``."""
    last = graph.output_layer()
    mult, shift = channel_multipliers(graph.qparams[last.inputs[0]].scale, last.weight_scale, out.scale)
    return requantize(acc, replace(last, multiplier=mult, shift=shift), out.zero_point)


def disagreements(acc: np.ndarray, graph: Int8Graph, out: QParams, decided: np.ndarray) -> int:
    return int(np.sum(int8_logits(acc, graph, out).argmax(1) != decided))


def scores_in_logits(acc: np.ndarray, graph: Int8Graph) -> np.ndarray:
    """The output layer's class scores (the C's decision values, :func:`class_scores` of its int32
    accumulators ``acc``) in float logits, shape (n, classes)."""
    last = graph.output_layer()
    return class_scores(acc, last) * (graph.qparams[graph.output].scale / 2 ** score_bits(last))


def choose_output_range(graph: Int8Graph, beat_q: np.ndarray, rr_q: np.ndarray | None) -> OutputRange:
    """The output range for ``graph`` chosen on int8 beats ``beat_q``/``rr_q`` (training beats)."""
    acc = forward_int8(graph, beat_q, rr_q)[1]
    real = scores_in_logits(acc, graph)                 # the class scores in logits, on one scale
    decided = real.argmax(1)
    before = graph.qparams[graph.output]
    real = np.sort(real, axis=1)
    best = (disagreements(acc, graph, before, decided), 0, before)
    for i, p_lo in enumerate(LOW_PERCENTILES):
        for j, p_hi in enumerate(HIGH_PERCENTILES):
            lo, hi = np.percentile(real[:, -1], p_lo), np.percentile(real[:, -2], p_hi)
            if hi - lo <= 0:
                continue
            q = qparams_for(lo, hi)
            # fewest disagreements; among equals the widest range (fewest clamped logits)
            best = min(best, (disagreements(acc, graph, q, decided), -q.scale, q), key=lambda b: b[:2])
    return OutputRange(best[2], before, best[0], disagreements(acc, graph, before, decided), len(beat_q))


def set_tflite_output(tflite: bytes, out: QParams) -> bytes:
    """``tflite`` with its output tensor quantized as ``out`` (the op computes its multiplier from it)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    sub = model.subgraphs[0]
    q = sub.tensors[sub.outputs[0]].quantization
    q.scale, q.zeroPoint = [float(out.scale)], [int(out.zero_point)]
    builder = flatbuffers.Builder(len(tflite) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def set_onnx_output(path: Path, out: QParams) -> None:
    """Quantize every QuantizeLinear between the last Gemm and the output of a QDQ ONNX model as ``out``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    last_gemm = max(k for k, n in enumerate(g.node) if n.op_type in ("Gemm", "MatMul"))
    for node in g.node[last_gemm + 1:]:
        if node.op_type == "QuantizeLinear":
            scale, zp = inits[node.input[1]], inits[node.input[2]]
            scale.CopyFrom(numpy_helper.from_array(np.array(out.scale, np.float32), scale.name))
            zp.CopyFrom(numpy_helper.from_array(np.array(out.zero_point, np.int8), zp.name))
    onnx.save(model, str(path))
