"""TFLite through a Keras mirror of the folded model: float and full-integer int8.

The int8 file is the single source of truth of the quantized graph: the C library and the
Python integer reference read their weights, scales and zero points from it
(:mod:`edgeecg.quant.tflite_graph`), so C and TFLite can differ only in rounding.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np

from edgeecg.export.fold import FoldedModel
from edgeecg.quiet import native_output_filtered

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def keras_mirror(fm: FoldedModel):
    """A Keras model with the same float function as ``fm``; inputs channels-last (W, C) and (K,)."""
    import keras

    beat = keras.Input((fm.window, fm.in_channels), batch_size=1, name="beat")   # batch 1: static shapes
    h = beat
    layers = []
    for i, (w, b) in enumerate(fm.convs):
        conv = keras.layers.Conv1D(w.shape[0], w.shape[2], padding="same", activation="relu", name=f"conv{i}")
        h = keras.layers.MaxPooling1D(2, name=f"pool{i}")(conv(h))
        layers.append((conv, [w.transpose(2, 1, 0), b]))            # keras kernel: (k, in, out)
    flat = fm.flat_length * fm.convs[-1][0].shape[0]
    h = keras.layers.Reshape((flat,), name="flatten")(h)              # (L, C) order; torch's is (C, L)
    inputs = [beat]
    if fm.rr_dense is not None:
        rr = keras.Input((fm.n_rr,), batch_size=1, name="rr")
        inputs.append(rr)
        dense = keras.layers.Dense(fm.rr_dense[0].shape[0], activation="relu", name="rr_dense")
        h = keras.layers.Concatenate(name="concat")([h, dense(rr)])
        layers.append((dense, [fm.rr_dense[0].T, fm.rr_dense[1]]))
    for i, (w, b) in enumerate(fm.head):
        last = i == len(fm.head) - 1
        dense = keras.layers.Dense(w.shape[0], activation=None if last else "relu", name=f"dense{i}")
        h = dense(h)
        if i == 0:
            w = _torch_flatten_to_keras(w, fm)
        layers.append((dense, [w.T, b]))
    model = keras.Model(inputs, h, name="edgeecg")
    for layer, weights in layers:
        layer.set_weights([np.asarray(a, dtype=np.float32) for a in weights])
    return model


def _torch_flatten_to_keras(w: np.ndarray, fm: FoldedModel) -> np.ndarray:
    """Permute the input columns of the first head layer from (C, L) to (L, C) flatten order."""
    channels, length = fm.convs[-1][0].shape[0], fm.flat_length
    morph = w[:, :channels * length].reshape(-1, channels, length).transpose(0, 2, 1).reshape(w.shape[0], -1)
    return np.concatenate([morph, w[:, channels * length:]], axis=1)


def to_keras_inputs(fm: FoldedModel, x: np.ndarray, rr: np.ndarray) -> list[np.ndarray]:
    """Torch-layout beats (n, C, W) and RR (n, K) as the mirror's inputs."""
    beat = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)
    return [beat, rr.astype(np.float32)] if fm.rr_dense is not None else [beat]


def convert(fm: FoldedModel, calib_x: np.ndarray | None = None, calib_rr: np.ndarray | None = None) -> bytes:
    """TFLite flatbuffer: float without calibration data, full int8 (int8 in and out) with it."""
    import tensorflow as tf

    model = keras_mirror(fm)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib_x is not None:
        names = [t.name.split(":")[0] for t in model.inputs]
        inputs = dict(zip(names, to_keras_inputs(fm, calib_x, calib_rr)))

        def representative():   # keyed by input name: the converter's input order is its own
            for i in range(len(calib_x)):
                yield {name: a[i:i + 1] for name, a in inputs.items()}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), native_output_filtered():   # the converter's own prints
        return converter.convert()
