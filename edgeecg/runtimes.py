"""One way to run every artifact: each runner here has ``.logits(x, rr)``.

``x`` is float beats (n, C, W) as the training pipeline makes them and ``rr`` the raw RR features
(n, K). int8 runners quantize the inputs with the scale and zero point stored in the model, as the
device's front end does, and return int8 logits. The int8 graph's own runners (the generated C
and its numpy reference) also have ``.classify(x, rr)``, which returns the logits and the class
decided on the output layer's int32 accumulators (:mod:`edgeecg.quant.reference`); for every
other runner the class is the argmax of the logits (:func:`outputs`).
Only numpy is imported at module level, so the runtime extra (numpy, onnxruntime, ai-edge-litert)
can run the ONNX and TFLite rows without torch or tensorflow.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def quantize_input(a: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(a / scale) + zero_point, -128, 127).astype(np.int8)


class TorchRunner:
    def __init__(self, module):
        self.module = module

    def call_one(self, x1, rr1):
        """A zero-argument callable that classifies one prepared beat (for latency timing)."""
        import torch
        beat, rr = torch.from_numpy(x1), torch.from_numpy(rr1)

        def call():
            with torch.inference_mode():
                self.module(beat, rr)
        return call

    def logits(self, x, rr, batch: int = 4096):
        import torch
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                out.append(self.module(torch.from_numpy(x[i:i + batch]), torch.from_numpy(rr[i:i + batch])).numpy())
        return np.concatenate(out)


class OnnxRunner:
    """ONNX Runtime on one CPU thread; float or QDQ int8 model. It feeds ``rr`` only where the graph
    has that input (an exporter may drop the unused input of a model without RR, ``cnn``).
    ``optimization``: ONNX Runtime's graph optimisation level by name (its default, all fusions on;
    ``"ORT_DISABLE_ALL"`` runs a QDQ graph's plain arithmetic, docs/int8.md)."""

    def __init__(self, path: Path, optimization: str = "ORT_ENABLE_ALL"):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, optimization)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.uses_rr = "rr" in {i.name for i in self.session.get_inputs()}

    def _feeds(self, x, rr) -> dict:
        return {"beat": x, "rr": rr} if self.uses_rr else {"beat": x}

    def call_one(self, x1, rr1):
        feeds = self._feeds(x1, rr1)
        return lambda: self.session.run(None, feeds)

    def logits(self, x, rr, batch: int = 4096):
        return np.concatenate([self.session.run(None, self._feeds(x[i:i + batch], rr[i:i + batch]))[0]
                               for i in range(0, len(x), batch)])


class TFLiteRunner:
    """LiteRT interpreter (``ai-edge-litert``), batch 1; int8 or float model.

    By default LiteRT hands the graph to its XNNPACK delegate, whose int8 kernels requantize in
    fp32; ``xnnpack=False`` runs TFLite's own builtin kernels (the fixed-point arithmetic that
    TFLite Micro and the generated C implement).
    """

    def __init__(self, path: Path, xnnpack: bool = True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        kind = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
        from edgeecg.quiet import native_output_filtered

        with native_output_filtered():       # LiteRT prints its XNNPACK delegate line
            self.interpreter = Interpreter(model_path=str(path), num_threads=1, **kind)
            self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.output = self.interpreter.get_output_details()[0]

    def _feed(self, d, beat_nwc, rr_row):
        a = beat_nwc if len(d["shape"]) == 3 else rr_row
        if d["dtype"] == np.int8:
            a = quantize_input(a, *d["quantization"])
        self.interpreter.set_tensor(d["index"], a.astype(d["dtype"]))

    def call_one(self, x1, rr1):
        beat = np.ascontiguousarray(x1.transpose(0, 2, 1))

        def call():
            for d in self.inputs:
                self._feed(d, beat, rr1)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output["index"])
        return call

    def logits(self, x, rr):
        return np.concatenate([self.call_one(x[i:i + 1], rr[i:i + 1])() for i in range(len(x))])


class TFLMRunner:
    """TFLite Micro's reference kernels (the ``tflite-micro`` wheel), batch 1, int8."""

    def __init__(self, path: Path, n_inputs: int = 2, arena_size: int = 64 * 1024):
        from tflite_micro.python.tflite_micro import runtime
        self.interpreter = runtime.Interpreter.from_bytes(Path(path).read_bytes(), arena_size=arena_size)
        self.details = [self.interpreter.get_input_details(i) for i in range(n_inputs)]

    def call_one(self, x1, rr1):
        beat = np.ascontiguousarray(x1.transpose(0, 2, 1))

        def call():
            for k, d in enumerate(self.details):
                a = beat if len(d["shape"]) == 3 else rr1
                scale, zp = d["quantization_parameters"]["scales"][0], d["quantization_parameters"]["zero_points"][0]
                self.interpreter.set_input(quantize_input(a, scale, zp), k)
            self.interpreter.invoke()
            return self.interpreter.get_output(0)[0].copy()
        return call

    def logits(self, x, rr):
        return np.array([self.call_one(x[i:i + 1], rr[i:i + 1])() for i in range(len(x))])


@contextmanager
def _silenced_stdio():
    """TFLite Micro reports failed allocations on the C stdout/stderr; hide them while probing."""
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


class Int8GraphRunner:
    """The numpy integer reference, or the compiled C (``c_model``) of the same graph."""

    def __init__(self, graph, c_model=None):
        self.graph, self.c_model = graph, c_model

    def quantized_inputs(self, x, rr):
        """Float beats (n, C, W) and RR (n, K) as the graph's int8 inputs (n, W, C) and (n, K)."""
        g = self.graph
        beat = quantize_input(x.transpose(0, 2, 1), g.qparams[g.beat_input].scale, g.qparams[g.beat_input].zero_point)
        rr_q = None
        if g.rr_input is not None:
            rr_q = quantize_input(rr, g.qparams[g.rr_input].scale, g.qparams[g.rr_input].zero_point)
        return beat, rr_q

    def classify(self, x, rr) -> tuple[np.ndarray, np.ndarray]:
        """int8 logits (n, 5) and classes (n,)."""
        beat, rr_q = self.quantized_inputs(x, rr)
        if self.c_model is not None:
            return self.c_model.run(beat, rr_q)
        from edgeecg.quant.reference import classify_int8
        return classify_int8(self.graph, beat, rr_q)

    def logits(self, x, rr):
        return self.classify(x, rr)[0]


def load_artifact(name: str, path: Path, n_inputs: int = 2):
    """The runner of exported artifact ``name`` (a key of ``report.json``'s ``artifacts``, or
    ``tflite_int8_builtin``: the int8 ``.tflite`` on LiteRT's builtin kernels) read from ``path``."""
    if name in ("torchscript", "pt2"):
        import torch
        module = torch.jit.load(str(path)) if name == "torchscript" else torch.export.load(str(path)).module()
        return TorchRunner(module)
    if name in ("onnx_fp32", "onnx_int8"):
        return OnnxRunner(path)
    if name in ("tflite_fp32", "tflite_int8", "tflite_int8_builtin"):
        return TFLiteRunner(path, xnnpack=name != "tflite_int8_builtin")
    if name == "tflm":
        return TFLMRunner(path, n_inputs)
    raise ValueError(f"no runner for artifact {name!r}")


def outputs(runner, x, rr) -> tuple[np.ndarray, np.ndarray]:
    """A runner's logits and classes: its own decision where it has one (``.classify``), else the
    argmax of the logits."""
    if hasattr(runner, "classify"):
        return runner.classify(x, rr)
    logits = runner.logits(x, rr)
    return logits, np.asarray(logits).argmax(1)


def tflm_arena_bytes(tflite: bytes, n_inputs: int = 2, upper: int = 256 * 1024) -> int:
    """Smallest tensor arena (16-byte steps) in which TFLite Micro allocates and runs the model."""
    from tflite_micro.python.tflite_micro import runtime

    def works(size: int) -> bool:
        try:
            interp = runtime.Interpreter.from_bytes(tflite, arena_size=size)
            for k in range(n_inputs):
                d = interp.get_input_details(k)
                interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), k)
            interp.invoke()
            return True
        except Exception:
            return False

    with _silenced_stdio():
        if not works(upper):
            raise RuntimeError(f"TFLite Micro cannot run the model in {upper} bytes")
        lo, hi = 0, upper
        while hi - lo > 16:
            mid = (lo + hi) // 2 // 16 * 16
            lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return hi
