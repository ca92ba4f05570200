"""Read a full-integer ``.tflite`` (as written by :mod:`edgeecg.export.tflite`) into a small IR.

The IR holds only what the int8 kernels need: per layer the int8 weights, int32 biases and the
fixed-point requantization multipliers (TFLite's ``QuantizeMultiplier``), plus the scale and zero
point of the inputs and the output. Shape-only ops (RESHAPE, EXPAND_DIMS) disappear: in the
channels-last layout they do not move data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgeecg.errors import EdgeECGError

SHAPE_ONLY = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}


@dataclass
class QParams:
    scale: float
    zero_point: int


@dataclass
class Layer:
    """One int8 op. ``kind``: ``conv`` (1-D, SAME, stride 1), ``maxpool`` (2/2), ``fc`` or ``concat``."""

    kind: str
    inputs: list[int]               # tensor ids
    output: int
    weights: np.ndarray | None = None     # conv: (out, k, in); fc: (out, in); int8
    bias: np.ndarray | None = None        # int32
    multiplier: np.ndarray | None = None  # int32 per output channel
    shift: np.ndarray | None = None       # int32 per output channel (TFLite sign convention)
    weight_scale: np.ndarray | None = None  # float per output channel: real weight = scale * int8
    act_min: int = -128
    act_max: int = 127


@dataclass
class Int8Graph:
    """Tensors are ids into ``shapes``/``qparams``; the model inputs are beat (W, C) and rr (K,)."""

    shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    qparams: dict[int, QParams] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    beat_input: int = -1
    rr_input: int | None = None
    output: int = -1
    ops: list[str] = field(default_factory=list)    # builtin op names in the .tflite, for TFLM

    @property
    def weight_bytes(self) -> int:
        return sum(lay.weights.size + 4 * lay.bias.size for lay in self.layers if lay.weights is not None)

    def output_layer(self) -> Layer:
        """The dense layer that writes the graph's output, whose int32 accumulators decide the class
        (:func:`edgeecg.quant.reference.class_scores`); ValueError if the graph ends otherwise."""
        last = self.layers[-1] if self.layers else None
        if last is None or last.kind != "fc" or last.output != self.output:
            raise ValueError("the int8 graph must end with its output dense layer")
        return last


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real ~= q * 2**(shift - 31)`` with q a Q31 int32."""
    if real == 0.0:
        return 0, 0
    frac, shift = math.frexp(real)
    q = int(round(frac * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def channel_multipliers(in_scale: float, weight_scales, out_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The int32 multipliers and shifts (per output channel) that requantize a layer's accumulators
    from ``in_scale * weight_scale`` to ``out_scale``, as TFLite's kernels compute them."""
    mults = [quantize_multiplier(in_scale * s / out_scale) for s in weight_scales]
    return np.array([m for m, _ in mults], np.int32), np.array([s for _, s in mults], np.int32)


def _builtin_names():
    from ai_edge_litert import schema_py_generated as schema
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}, schema


def read_tflite(data: bytes, source: str = "model.int8.tflite") -> Int8Graph:
    """Parse a full-integer TFLite flatbuffer into an :class:`Int8Graph`."""
    names, schema = _builtin_names()
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as err:
        raise EdgeECGError(f"{source}: not a TFLite flatbuffer ({type(err).__name__})") from None
    sub = model.subgraphs[0]
    g = Int8Graph()
    alias: dict[int, int] = {}

    def tid(i: int) -> int:
        while i in alias:
            i = alias[i]
        return i

    def const(i: int) -> np.ndarray:
        t = sub.tensors[i]
        dtype = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32}[t.type]
        return np.frombuffer(bytes(model.buffers[t.buffer].data), dtype=dtype).reshape(t.shape)

    for i, t in enumerate(sub.tensors):
        g.shapes[i] = tuple(int(d) for d in t.shape)
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) == 1 and t.type == schema.TensorType.INT8:
            g.qparams[i] = QParams(float(q.scale[0]), int(q.zeroPoint[0]))
    for i in sub.inputs:
        if sub.tensors[i].type != schema.TensorType.INT8:
            raise EdgeECGError(f"{source}: input {i} is not int8 (export with full-integer quantization)")
        if len(g.shapes[i]) == 3:
            g.beat_input = i
        else:
            g.rr_input = i
    g.output = int(sub.outputs[0])

    relu = schema.ActivationFunctionType.RELU
    for op in sub.operators:
        name = names[model.operatorCodes[op.opcodeIndex].builtinCode
                     or model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode]
        if name not in g.ops:
            g.ops.append(name)
        ins, out = [int(i) for i in op.inputs], int(op.outputs[0])
        opts = op.builtinOptions
        if name in SHAPE_ONLY:
            alias[out] = tid(ins[0])
            continue
        x = tid(ins[0])
        if name in ("CONV_2D", "FULLY_CONNECTED"):
            w = const(ins[1])
            w = w.reshape(w.shape[0], w.shape[2], w.shape[3]) if name == "CONV_2D" else w
            w_scales = np.asarray(sub.tensors[ins[1]].quantization.scale, dtype=np.float64)
            if w_scales.size == 1:
                w_scales = np.full(w.shape[0], w_scales[0])
            if name == "CONV_2D" and (opts.strideW != 1 or opts.padding != schema.Padding.SAME):
                raise EdgeECGError(f"{source}: only stride-1 SAME convolutions are supported")
            in_q, out_q = g.qparams[x], g.qparams[out]
            layer = Layer("conv" if name == "CONV_2D" else "fc", [x], out, w, const(ins[2]).astype(np.int32),
                          *channel_multipliers(in_q.scale, w_scales, out_q.scale), weight_scale=w_scales)
            if opts.fusedActivationFunction == relu:
                layer.act_min = max(-128, out_q.zero_point)
            elif opts.fusedActivationFunction != schema.ActivationFunctionType.NONE:
                raise EdgeECGError(f"{source}: fused activation {opts.fusedActivationFunction} not supported")
            g.layers.append(layer)
        elif name == "MAX_POOL_2D":
            if (opts.filterWidth, opts.strideW) != (2, 2):
                raise EdgeECGError(f"{source}: only 2/2 max pooling is supported")
            g.layers.append(Layer("maxpool", [x], out))
        elif name == "CONCATENATION":
            srcs = [tid(i) for i in ins]
            if any((g.qparams[s].scale, g.qparams[s].zero_point) != (g.qparams[out].scale, g.qparams[out].zero_point)
                   for s in srcs):
                raise EdgeECGError(f"{source}: concatenation inputs with different quantization")
            g.layers.append(Layer("concat", srcs, out))
        else:
            raise EdgeECGError(f"{source}: op {name} is not supported by the C generator")
    g.output = tid(g.output)
    return g
