"""Where the int8 graph loses accuracy: its rounding simulated on the float model, point by point.

The int8 graph rounds at a few points: the two inputs, each layer's weights (per channel,
symmetric) and each layer's output (per tensor, at the scale and zero point the ``.tflite`` holds).
:func:`rounding_budget` runs the folded float model with every point rounded, then with each point
rounded alone, and counts the beats whose class changes against the float model. With every point
on and the biases the graph holds (:func:`with_graph_biases`: bias-corrected, see
:mod:`edgeecg.quant.bias_correction`), the simulation is the int8 graph except for the integer
arithmetic's own rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.export.fold import FoldedModel, forward
from edgeecg.processing.aami import CLASSES
from edgeecg.quant.graph import Int8Graph, Layer, QParams
from edgeecg.runtimes import quantize_input


def round_activation(a: np.ndarray, q: QParams) -> np.ndarray:
    """``a`` through int8 at scale and zero point ``q`` (saturating), back in float."""
    return (quantize_input(a, q.scale, q.zero_point).astype(np.float64) - q.zero_point) * q.scale


def round_weights(w: np.ndarray) -> np.ndarray:
    """Per-output-channel symmetric int8 weights in [-127, 127], as the TFLite converter makes them."""
    scale = np.abs(w).max(axis=tuple(range(1, w.ndim)), keepdims=True) / 127.0
    return np.round(w / np.where(scale > 0, scale, 1.0)) * scale


def graph_layers(fm: FoldedModel, g: Int8Graph) -> dict[str, Layer]:
    """The int8 graph's weight layers under the folded model's names (``conv0``, ``rr_dense``, ...)."""
    convs = [lay for lay in g.layers if lay.kind == "conv"]
    fcs = [lay for lay in g.layers if lay.kind == "fc"]
    rr_fc = [lay for lay in fcs if g.rr_input is not None and lay.inputs[0] == g.rr_input]
    head = [lay for lay in fcs if g.rr_input is None or lay.inputs[0] != g.rr_input]
    if (len(convs), len(head), len(rr_fc)) != (len(fm.convs), len(fm.head), int(fm.rr_dense is not None)):
        raise EdgeECGError("the int8 graph does not have the folded model's layers")
    layers = {f"conv{i}": lay for i, lay in enumerate(convs)}
    if rr_fc:
        layers["rr_dense"] = rr_fc[0]
    layers.update({f"dense{i}": lay for i, lay in enumerate(head)})
    return layers


def rounding_points(fm: FoldedModel, g: Int8Graph) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each rounding point of ``g``, by the names :func:`edgeecg.export.fold.forward` uses."""
    layers = graph_layers(fm, g)

    def act(tensor: int):
        return lambda a: round_activation(a, g.qparams[tensor])

    points = {"beat input": act(g.beat_input)}
    if "rr_dense" in layers:
        points["rr input"] = act(g.rr_input)
    for name, lay in layers.items():
        points.update({f"{name} weights": round_weights, f"{name} output": act(lay.output)})
    return points


def with_graph_biases(fm: FoldedModel, g: Int8Graph) -> FoldedModel:
    """``fm`` with the biases that ``g`` holds, back in float (int32 bias x input scale x weight scale)."""
    out = copy.deepcopy(fm)
    for name, lay in graph_layers(fm, g).items():
        out.set_bias(name, lay.bias * g.qparams[lay.inputs[0]].scale * lay.weight_scale)
    return out


def rounding_budget(fm: FoldedModel, g: Int8Graph, x: np.ndarray, rr: np.ndarray, y: np.ndarray) -> dict:
    """Beats whose class changes against the float model (in all, and by their labelled class) and
    the mean |logit error|: with every rounding point of ``g`` on and the graph's biases (``all``),
    the same with the float model's biases (``all_float_biases``), and each point alone."""
    points = rounding_points(fm, g)
    reference = forward(fm, x, rr)
    ref_pred = reference.argmax(1)

    def row(active: set[str], model: FoldedModel = fm) -> dict:
        logits = forward(model, x, rr, lambda p, a: points[p](a) if p in active else a)
        changed = logits.argmax(1) != ref_pred
        return {"changed": int(changed.sum()),
                "changed_by_class": {c: int(np.sum(changed & (y == k))) for k, c in enumerate(CLASSES)},
                "mean_abs_logit_error": round(float(np.abs(logits - reference).mean()), 4)}

    return {"beats": len(y), "all": row(set(points), with_graph_biases(fm, g)),
            "all_float_biases": row(set(points)), "alone": {p: row({p}) for p in points}}


def summary(budget: dict, top: int = 3) -> str:
    """One line: beats changed by all rounding, and the points that change most alone."""
    alone = sorted(budget["alone"].items(), key=lambda kv: -kv[1]["changed"])[:top]
    return (f"simulated int8 rounding changes the class of {budget['all']['changed']} of {budget['beats']:,d} "
            f"beats against the float model ({budget['all_float_biases']['changed']} with the float biases); "
            "rounded alone: " + ", ".join(f"{p} {r['changed']}" for p, r in alone))
