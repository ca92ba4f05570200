"""TorchScript, torch.export (.pt2) and ONNX (fp32, and int8 QDQ through onnxruntime)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


def example_inputs(model_channels: int, window: int, n_rr: int, batch: int = 1):
    return (torch.zeros(batch, model_channels, window), torch.ones(batch, n_rr))


def export_torchscript(model: nn.Module, example, path: Path) -> None:
    """Traced TorchScript (deprecated in torch 2.13 but still the format C++ libtorch loads)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, example).save(str(path))


def export_pt2(model: nn.Module, example, path: Path) -> None:
    """torch.export program: TorchScript's successor."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, str(path))


def export_onnx(model: nn.Module, example, path: Path) -> None:
    """Float ONNX with a dynamic batch dimension (torch's dynamo exporter; needs onnxscript)."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, example, input_names=["beat", "rr"], output_names=["logits"],
                                    dynamic_shapes=({0: batch}, {0: batch}), dynamo=True, verbose=False)
    program.save(str(path))


def quantize_onnx(fp32_path: Path, int8_path: Path, calib_x: np.ndarray, calib_rr: np.ndarray) -> None:
    """Static int8 QDQ ONNX: per-channel symmetric weights, per-tensor activations, calibrated on
    the given (DS1 training) beats with onnxruntime's min-max calibration.

    The weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2, AVX-512F) onnxruntime's
    fused int8 kernels multiply u8 activations by s8 weights with ``vpmaddubsw``, whose int16 sums
    of two products saturate with 8-bit weights (255 * 127 * 2 > 32767). There the default model's
    int8 ONNX lost 5 pp of macro-F1 against the same file run with graph fusion off (docs/int8.md);
    7-bit weights cannot saturate on any CPU (255 * 64 * 2 < 32768)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    import onnx
    names = {i.name for i in onnx.load(str(fp32_path)).graph.input}

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(calib_x):
                return None
            batch = {"beat": calib_x[self.i:self.i + 64], "rr": calib_rr[self.i:self.i + 64]}
            batch = {k: v for k, v in batch.items() if k in names}     # cnn: no rr input
            self.i += 64
            return batch

    quantize_static(str(fp32_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
