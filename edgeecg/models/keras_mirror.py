"""Float TFLite of the models without an int8 path (``cnn_lstm``, ``cnn_bilstm``, ``spectrogram_cnn``):
a Keras model with the same float function (BatchNorm and the RR standardiser folded), converted
with TensorFlow's converter. Inputs as in :mod:`edgeecg.export.tflite`: the beat channels-last
(1, window, channels) and the RR features (1, n_rr), batch 1.
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
from torch import nn

from edgeecg.errors import EdgeECGError
from edgeecg.export.fold import fold_bn, fold_rr_dense
from edgeecg.models.families import CNNBiLSTM, SpectrogramCNN
from edgeecg.models.nets import CNNLSTM

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MIRRORED = (CNNLSTM, CNNBiLSTM, SpectrogramCNN)


def _stages(features: nn.Sequential):
    convs = [m for m in features if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    norms = [m for m in features if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for conv in convs:
        if any(k % 2 == 0 for k in conv.kernel_size):
            raise EdgeECGError(f"float TFLite mirror: even conv kernel {conv.kernel_size} (padding differs from 'same')")
    return [fold_bn(c, b) for c, b in zip(convs, norms, strict=True)]


def _lstm_weights(lstm: nn.LSTM, suffix: str = "") -> list[np.ndarray]:
    """PyTorch LSTM weights (gates i, f, g, o) as Keras's (kernel, recurrent kernel, bias; i, f, c, o)."""
    g = lambda name: getattr(lstm, name + suffix).detach().numpy()   # noqa: E731
    return [g("weight_ih_l0").T, g("weight_hh_l0").T, g("bias_ih_l0") + g("bias_hh_l0")]


def keras_mirror(model: nn.Module, window: int, in_channels: int, n_rr: int):
    """The Keras model of a :data:`MIRRORED` model (eval mode) and its weights set."""
    import keras

    if not isinstance(model, MIRRORED):
        raise EdgeECGError(f"no float TFLite mirror for {type(model).__name__}")
    model = model.eval()
    beat = keras.Input((window, in_channels), batch_size=1, name="beat")
    rr = keras.Input((n_rr,), batch_size=1, name="rr")
    weights: list[tuple] = []

    def add(layer, values):
        weights.append((layer, values))
        return layer

    if isinstance(model, SpectrogramCNN):
        h = _spectrogram_front(keras, model, beat, in_channels, window, add)
        f, t = model.n_bins, model.frames
        for i, (w, b) in enumerate(_stages(model.features)):
            conv = add(keras.layers.Conv2D(w.shape[0], w.shape[2:], padding="same", activation="relu", name=f"conv{i}"),
                       [w.transpose(2, 3, 1, 0), b])
            h = keras.layers.MaxPooling2D(2, name=f"pool{i}")(conv(h))
            f, t = f // 2, t // 2
        c = model.features[-4].out_channels
        morph = keras.layers.Reshape((f * t * c,), name="flatten")(h)
        first = [m for m in model.head if isinstance(m, nn.Linear)][0]
        w = first.weight.detach().numpy()
        torch_cols = np.arange(c * f * t).reshape(c, f, t).transpose(1, 2, 0).reshape(-1)   # keras (f,t,c) order
        perm = np.concatenate([torch_cols, np.arange(c * f * t, w.shape[1])])
        head_first = w[:, perm]
    else:
        h = beat
        for i, (w, b) in enumerate(_stages(model.features)):
            conv = add(keras.layers.Conv1D(w.shape[0], w.shape[2], padding="same", activation="relu", name=f"conv{i}"),
                       [w.transpose(2, 1, 0), b])
            h = keras.layers.MaxPooling1D(2, name=f"pool{i}")(conv(h))
        units = model.lstm.hidden_size
        if model.lstm.bidirectional:
            bi = keras.layers.Bidirectional(keras.layers.LSTM(units, name="lstm"), name="bilstm")
            morph = bi(h)
            weights.append((bi, _lstm_weights(model.lstm) + _lstm_weights(model.lstm, "_reverse")))
        else:
            lstm = add(keras.layers.LSTM(units, name="lstm"), _lstm_weights(model.lstm))
            morph = lstm(h)
        head_first = None
    w_rr, b_rr = fold_rr_dense(model)
    rr_dense = add(keras.layers.Dense(w_rr.shape[0], activation="relu", name="rr_dense"), [w_rr.T, b_rr])
    z = keras.layers.Concatenate(name="concat")([morph, rr_dense(rr)])
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    for i, lin in enumerate(linears):
        w = lin.weight.detach().numpy() if not (i == 0 and head_first is not None) else head_first
        last = i == len(linears) - 1
        dense = add(keras.layers.Dense(w.shape[0], activation=None if last else "relu", name=f"dense{i}"),
                    [w.T, lin.bias.detach().numpy()])
        z = dense(z)
    km = keras.Model([beat, rr], z, name="edgeecg_float")
    for layer, values in weights:
        layer.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return km


def _spectrogram_front(keras, model: SpectrogramCNN, beat, channels: int, window: int, add):
    """beat (W, C) -> log magnitude (bins, frames, C), the STFT as a fixed Conv2D."""
    import keras.ops as ops

    n_bins = model.n_bins

    class LogMagnitude(keras.layers.Layer):
        def call(self, x):
            re, im = x[..., :n_bins], x[..., n_bins:]
            return 0.5 * ops.log(re * re + im * im + 1e-6)

    h = keras.layers.Permute((2, 1), name="to_channels_first")(beat)          # (C, W)
    h = keras.layers.Reshape((channels, window, 1), name="frames_in")(h)       # (C, W, 1)
    stft = add(keras.layers.Conv2D(2 * n_bins, (1, model.n_fft), strides=(1, model.hop), use_bias=False, name="stft"),
               [model.stft.weight.detach().numpy().transpose(2, 3, 1, 0)])
    h = LogMagnitude(name="log_magnitude")(stft(h))                            # (C, T, F)
    return keras.layers.Permute((3, 2, 1), name="to_bins_frames_channels")(h)  # (F, T, C)


def float_tflite(model: nn.Module, window: int, in_channels: int, n_rr: int) -> bytes:
    """Float ``.tflite`` of a :data:`MIRRORED` model."""
    import tensorflow as tf

    km = keras_mirror(model, window, in_channels, n_rr)
    converter = tf.lite.TFLiteConverter.from_keras_model(km)
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()
