"""Writer of the dependency-free C99 int8 inference library, and its host build for ``predict``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from edgeecg.processing.aami import CLASSES
from edgeecg.quant.graph import Int8Graph
from edgeecg.quant.reference import score_bits
from firmware_export.carray import c_array, c_identifier, qparam_defines
from firmware_export.templating import write_files

DEFAULT_BLOCK = 8     # output channels per block; targets set their own (`c_block`)
GROUP = 8             # a layer's inputs are padded (zero weights) to a multiple of this: NEON reads 8 at a time
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]

HOST_MAIN = """\
/* Host harness: int8 beats on stdin (beat then rr, raw bytes); per beat, the int8 logits and the
   class (one byte) on stdout. */
#include <stdio.h>
#include "{p}_model.h"

int main(void)
{{
    int8_t beat[{P}_BEAT_LEN], rr[{P}_RR_LEN > 0 ? {P}_RR_LEN : 1], out[{P}_N_CLASSES];
    while (fread(beat, 1, sizeof beat, stdin) == sizeof beat) {{
        if ({P}_RR_LEN > 0 && fread(rr, 1, {P}_RR_LEN, stdin) != {P}_RR_LEN) {{
            return 1;
        }}
        const int8_t cls = (int8_t){p}_classify(beat, rr, out);
        fwrite(out, 1, sizeof out, stdout);
        fwrite(&cls, 1, 1, stdout);
    }}
    return 0;
}}
"""


def _numel(shape) -> int:
    return int(np.prod(shape))


def _pad_channels(a: np.ndarray, block: int) -> np.ndarray:
    """``a`` with its first axis (output channels) zero-padded to a multiple of ``block``."""
    extra = -len(a) % block
    return np.concatenate([a, np.zeros((extra, *a.shape[1:]), dtype=a.dtype)]) if extra else a


def blocked_weights(weights: np.ndarray, block: int) -> np.ndarray:
    """Weights (out, ...) as the kernels read them: (out / block, inputs / 2, block / 2, 2, 2).

    The inputs are in memory order (a conv's (out, k, in) flattens to ``tap * in + channel``, the
    order of a channels-last window), padded with zero weights to a multiple of :data:`GROUP`. For output
    channels c, c + 1 and inputs j, j + 1 the four bytes are w[c][j], w[c+1][j], w[c][j+1],
    w[c+1][j+1] (``[..., input, channel]``): what SXTB16 splits into each channel's pair. The output
    channels are zero-padded to a multiple of ``block`` (even).
    """
    w = _pad_channels(weights.reshape(len(weights), -1), block)
    w = np.pad(w, ((0, 0), (0, -w.shape[1] % GROUP)))
    blocks, pairs = len(w) // block, w.shape[1] // 2
    return np.ascontiguousarray(w.reshape(blocks, block // 2, 2, pairs, 2).transpose(0, 3, 1, 4, 2))


def dsp_weights(weights: np.ndarray, block: int) -> np.ndarray:
    """Weights (out, ...) as the DSP kernels read them: int16, (out / block, block / 2, inputs / 4, 2, 4).

    Per channel pair c, c + 1 and input quad j .. j + 3: w[c][j .. j + 3], then w[c + 1][j .. j + 3],
    so that each channel's quad is two SMLAD operands (int16 pairs) loaded by one LDRD. Inputs and
    channels padded as in :func:`blocked_weights`.
    """
    w = _pad_channels(weights.reshape(len(weights), -1), block)
    w = np.pad(w, ((0, 0), (0, -w.shape[1] % GROUP))).astype(np.int16)
    blocks, quads = len(w) // block, w.shape[1] // 4
    return np.ascontiguousarray(w.reshape(blocks, block // 2, 2, quads, 4).transpose(0, 1, 3, 2, 4))


@dataclass
class Buffer:
    """One static int8 buffer of the generated C: a tensor with the margins its readers need."""

    name: str
    size: int           # bytes of the tensor itself
    zero_point: int
    before: int = 0     # bytes of zero-point rows before the tensor (a SAME convolution's left edge)
    after: int = 0      # ... and after it
    slack: int = 0      # bytes a reader reads past the input: up to its input count rounded up to GROUP

    @property
    def total(self) -> int:
        return self.before + self.size + self.after + self.slack

    @property
    def data(self) -> str:
        """C expression of the tensor's first byte."""
        return f"{self.name} + {self.before}" if self.before else self.name


class CModel:
    """The generated C sources of one :class:`Int8Graph`."""

    def __init__(self, graph: Int8Graph, prefix: str = "edgeecg", block: int = DEFAULT_BLOCK):
        if block < 2 or block % 2:
            raise ValueError(f"block must be an even number >= 2, not {block}")
        graph.output_layer()       # the class is decided on its accumulators: checked before any C is made
        self.graph = graph
        self.prefix = c_identifier(prefix)
        self.block = block
        self.pooled = self._pooled_convs()
        self._buffers = self._plan_buffers()
        self.files = {f"{prefix}_model.h": self._header(), f"{prefix}_model.c": self._source()}
        self._binaries: dict[tuple[str, ...], Path] = {}      # per extra_flags
        self._build_dirs: list[tempfile.TemporaryDirectory] = []

    @property
    def activation_bytes(self) -> int:
        """Bytes of the static activation buffers (tensors, zero-point margins and input copies)."""
        return sum(b.total for b in self._buffers.values())

    # -- generation -------------------------------------------------------------------------
    def _header(self) -> str:
        g, p, P = self.graph, self.prefix, self.prefix.upper()
        window, channels = g.shapes[g.beat_input][-2:]
        rr_len = _numel(g.shapes[g.rr_input][1:]) if g.rr_input is not None else 0
        lines = [
            f"/* {p}_model.h: int8 ECG beat classifier generated by edgeecg. C99, no malloc, no float. */",
            f"#ifndef {P}_MODEL_H", f"#define {P}_MODEL_H", "", "#include <stdint.h>", "",
            f"#define {P}_WINDOW {window}", f"#define {P}_CHANNELS {channels}",
            f"#define {P}_BEAT_LEN ({P}_WINDOW * {P}_CHANNELS) /* channels-last: beat[t * CHANNELS + c] */",
            f"#define {P}_RR_LEN {rr_len}", f"#define {P}_N_CLASSES {len(CLASSES)}",
            f"#define {P}_WEIGHT_BYTES {g.weight_bytes}", f"#define {P}_ACTIVATION_BYTES {self.activation_bytes}", "",
            "/* Quantization of the inputs and the output: real = scale * (q - zero_point).",
            "   The scales are for the caller's float front end; the int8 path never uses them. */",
            *qparam_defines(g, P), "",
            "/* AAMI EC57 classes, in output order. */",
            "enum { " + ", ".join(f"{P}_CLASS_{c} = {i}" for i, c in enumerate(CLASSES)) + " };", "",
            "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
            "/* Classify one beat: int8 window and RR features in; writes the int8 logits and returns the",
            f"   class ({P}_CLASS_N ...). The class is decided on the output layer's int32 accumulators, so",
            "   it is not always the argmax of the logits: two logits can round to the same int8 value. */",
            f"int {p}_classify(const int8_t beat[{P}_BEAT_LEN], const int8_t rr[], int8_t logits[{P}_N_CLASSES]);",
            "",
            "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {P}_MODEL_H */", "",
        ]
        return "\n".join(lines)

    def _has_left_shift(self) -> bool:
        return any(int(np.max(lay.shift)) > 0 for lay in self.graph.layers if lay.shift is not None)

    @property
    def weights_above_min(self) -> bool:
        """No weight is -128 (TFLite's symmetric int8 weights never are): two products then sum in int16."""
        return all(int(lay.weights.min()) > -128 for lay in self.graph.layers if lay.weights is not None)

    def _bias_zp(self, lay) -> np.ndarray:
        """``bias - in_zp * sum(w)`` per output channel (int64): the bias the kernels start from,
        with the input zero point folded in."""
        in_zp = self.graph.qparams[lay.inputs[0]].zero_point
        return lay.bias.astype(np.int64) - in_zp * lay.weights.reshape(len(lay.weights), -1).sum(1, dtype=np.int64)

    def _fast_requant(self) -> bool:
        """Every requantization shifts right (>= 1) and no accumulator can reach 2^30 for any int8
        input: the kernels' short requantization (``FAST_REQUANT``) is then exact."""
        for lay in self.graph.layers:
            if lay.weights is None:
                continue
            if int(np.max(lay.shift)) > -1:
                return False
            w = lay.weights.reshape(len(lay.weights), -1).astype(np.int64)
            if int(np.max(np.abs(self._bias_zp(lay)) + 128 * np.abs(w).sum(1))) >= 1 << 30:
                return False
        return True

    def _pooled_convs(self) -> dict[int, int]:
        """Convolution layer -> the max pool right after it, where that pool is the only reader of
        its output: the kernels then pool the accumulators of each pair of positions (exact, since
        the requantization is monotonic) and the convolution's output is never stored."""
        g = self.graph
        readers = [t for lay in g.layers for t in lay.inputs]
        return {i: i + 1 for i, (lay, nxt) in enumerate(zip(g.layers, g.layers[1:]))
                if lay.kind == "conv" and nxt.kind == "maxpool" and nxt.inputs == [lay.output]
                and readers.count(lay.output) == 1 and lay.output != g.output}

    def _arguments(self) -> dict[int, str]:
        """The graph inputs, as the arguments of ``classify`` name them."""
        g = self.graph
        return {g.beat_input: "beat", **({g.rr_input: "rr"} if g.rr_input is not None else {})}

    def _plan_buffers(self) -> dict[int, Buffer]:
        """A static buffer per layer output, with the margins and slack its readers need; a graph
        input gets a buffer (a copy) only where its reader needs either, else it is read in place."""
        g, p = self.graph, self.prefix
        bufs = {t: Buffer(f"{p}_{name}", _numel(g.shapes[t]), g.qparams[t].zero_point)
                for t, name in self._arguments().items()}
        bufs.update({lay.output: Buffer(f"{p}_t{lay.output}", _numel(g.shapes[lay.output]),
                                        g.qparams[lay.output].zero_point) for lay in g.layers})
        for lay in g.layers:
            if lay.weights is None:
                continue
            b = bufs[lay.inputs[0]]
            b.slack = max(b.slack, -lay.weights[0].size % GROUP)
            if lay.kind == "conv":
                k, cin = lay.weights.shape[1:]
                b.before, b.after = max(b.before, (k - 1) // 2 * cin), max(b.after, k // 2 * cin)
        unstored = {g.layers[i].output for i in self.pooled}
        return {t: b for t, b in bufs.items()
                if t not in unstored and (t not in self._arguments() or b.before or b.after or b.slack)}

    def _longest_input(self) -> int:
        """Bytes that the longest layer input spans: its rows, margins and slack."""
        g, bufs = self.graph, self._buffers
        return max(bufs[t].total if t in bufs else _numel(g.shapes[t])
                   for t in (lay.inputs[0] for lay in g.layers if lay.weights is not None))

    def _source(self) -> str:
        g, p, P = self.graph, self.prefix, self.prefix.upper()
        kernels = resources.files("firmware_export").joinpath("templates/kernels.c").read_text()
        parts = [f"/* {p}_model.c: generated by edgeecg from model.int8.tflite. Do not edit. */",
                 "#include <string.h>", f'#include "{p}_model.h"', "",
                 f"#define BLOCK {self.block} /* output channels computed together (accumulators) */",
                 f"#define GROUP {GROUP} /* each layer's inputs padded with zero weights to a multiple of this */",
                 f"#define LEFT_SHIFT {int(self._has_left_shift())} /* some requantization multiplier is > 1 */",
                 f"#define WIDE_INPUT_MAX {self._longest_input()} /* values in the longest layer input */",
                 f"#define WEIGHTS_ABOVE_MIN {int(self.weights_above_min)} /* no weight is -128 */",
                 f"#define FAST_REQUANT {int(self._fast_requant())} /* right shifts only, |accumulators| < 2^30 */",
                 "", kernels]
        pad = lambda a: _pad_channels(np.asarray(a), self.block)  # noqa: E731
        for i, lay in enumerate(g.layers):
            if lay.weights is None:
                continue
            parts += ["#if defined(KERNELS_DSP)",          # each path's own weight layout (kernels.c: weight_t)
                      c_array("int16_t", f"{p}_w{i}", dsp_weights(lay.weights, self.block)),
                      "#else", c_array("int8_t", f"{p}_w{i}", blocked_weights(lay.weights, self.block)), "#endif",
                      c_array("int32_t", f"{p}_z{i}", pad(self._bias_zp(lay).astype(np.int32)), per_line=8),
                      c_array("int32_t", f"{p}_m{i}", pad(lay.multiplier), per_line=8),
                      "#if SHIFT_INVERTED",                # kernels.c: the DSP path's requantization
                      c_array("int32_t", f"{p}_s{i}", ~pad(lay.shift).astype(np.int32), per_line=16),
                      "#else", c_array("int32_t", f"{p}_s{i}", pad(lay.shift), per_line=16), "#endif"]
        bufs = self._buffers
        for b in bufs.values():
            parts.append(f"static int8_t {b.name}[{b.total}];")
        data = lambda t: bufs[t].data if t in bufs else self._arguments()[t]  # noqa: E731
        body = []
        for b in bufs.values():       # no layer writes the margins: the zero point, set on every call
            if b.before:
                body.append(f"    memset({b.name}, {b.zero_point}, {b.before});")
            if b.after:
                body.append(f"    memset({b.name} + {b.before + b.size}, {b.zero_point}, {b.after});")
        for t, arg in self._arguments().items():
            if t in bufs:
                body.append(f"    memcpy({bufs[t].data}, {arg}, {bufs[t].size});")
        pools = set(self.pooled.values())
        for i, lay in enumerate(g.layers):
            if i in pools:
                continue                # done by the convolution before it
            pooled = i in self.pooled
            src = lay.inputs[0]
            dst = data(g.layers[self.pooled[i]].output if pooled else lay.output)
            in_shape = g.shapes[src]
            out_q = g.qparams[lay.output]
            if lay.kind == "conv":
                length, cin = in_shape[-2], in_shape[-1]
                cout, k = lay.weights.shape[0], lay.weights.shape[1]
                first = (k - 1) // 2 * cin      # the window of output 0 starts this far before the data
                window = f"{bufs[src].name} + {bufs[src].before - first}" if src in bufs else data(src)
                body.append(f"    conv1d_s8({window}, {length}, {cin}, {p}_w{i}, {p}_z{i}, {p}_m{i}, {p}_s{i}, "
                            f"{cout}, {k}, {out_q.zero_point}, {lay.act_min}, {lay.act_max}, {int(pooled)}, {dst});")
            elif lay.kind == "maxpool":
                body.append(f"    maxpool2_s8({data(src)}, {in_shape[-2]}, {in_shape[-1]}, {dst});")
            elif lay.kind == "fc":
                n_out, n_in = lay.weights.shape
                body.append(f"    fc_s8({data(src)}, {n_in}, {p}_w{i}, {p}_z{i}, {p}_m{i}, {p}_s{i}, {n_out}, "
                            f"{out_q.zero_point}, {lay.act_min}, {lay.act_max}, {dst});")
            elif lay.kind == "concat":
                offset = 0
                for t in lay.inputs:
                    n = _numel(g.shapes[t])
                    body.append(f"    memcpy({bufs[lay.output].name} + {bufs[lay.output].before + offset}, "
                                f"{data(t)}, {n});")
                    offset += n
        last, i_last = g.output_layer(), len(g.layers) - 1
        n_out, n_in = last.weights.shape
        rr_unused = "    (void)rr;\n" if g.rr_input is None else ""
        parts += ["", f"int {p}_classify(const int8_t beat[{P}_BEAT_LEN], const int8_t rr[], "
                      f"int8_t logits[{P}_N_CLASSES])", "{", rr_unused + "\n".join(body),
                  f"    memcpy(logits, {data(g.output)}, {P}_N_CLASSES);",
                  (f"    return decide_fc({data(last.inputs[0])}, {n_in}, {p}_w{i_last}, {p}_z{i_last}, "
                   f"{p}_m{i_last}, {p}_s{i_last}, {n_out}, {score_bits(last)});"), "}", ""]
        return "\n".join(parts)

    # -- use --------------------------------------------------------------------------------
    def save(self, directory: Path) -> list[Path]:
        return write_files(directory, self.files)

    def compile(self, cc: str = "cc", extra_flags: tuple[str, ...] = ()) -> Path:
        """Build the host harness (``-Wall -Wextra -Werror`` and ``extra_flags``); returns the
        executable, built once per ``extra_flags``."""
        extra_flags = tuple(extra_flags)
        if extra_flags in self._binaries:
            return self._binaries[extra_flags]
        if shutil.which(cc) is None:
            raise RuntimeError(f"C compiler {cc!r} not found")
        build_dir = tempfile.TemporaryDirectory(prefix="edgeecg-c-")
        self._build_dirs.append(build_dir)
        d = Path(build_dir.name)
        self.save(d)
        (d / "main.c").write_text(HOST_MAIN.format(p=self.prefix, P=self.prefix.upper()))
        exe = d / "model"
        cmd = [cc, *CFLAGS, *extra_flags, "-o", str(exe), str(d / "main.c"), str(d / f"{self.prefix}_model.c")]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"compiling the generated C failed:\n{res.stderr}")
        self._binaries[extra_flags] = exe
        return exe

    def records(self, beat: np.ndarray, rr: np.ndarray | None = None) -> bytes:
        """The harnesses' input: per beat, the int8 window (W*C bytes) then the int8 RR features."""
        n = len(beat)
        parts = [beat.reshape(n, -1).astype(np.int8)]
        if self.graph.rr_input is not None:
            parts.append(rr.reshape(n, -1).astype(np.int8))
        return np.concatenate(parts, axis=1).tobytes()

    def run(self, beat: np.ndarray, rr: np.ndarray | None = None,
            extra_flags: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
        """int8 logits (n, 5) and classes (n,) of int8 beats (n, W, C) and RR features (n, K), run by
        the C compiled with ``extra_flags`` (e.g. ``("-march=native",)`` for this machine's SIMD kernels)."""
        exe = self.compile(extra_flags=extra_flags)
        res = subprocess.run([str(exe)], input=self.records(beat, rr), capture_output=True, check=True)
        logits, classes = read_outputs(res.stdout)
        if len(logits) != len(beat):
            raise RuntimeError(f"the generated C wrote {len(logits)} outputs for {len(beat)} beats")
        return logits, classes

    def predict(self, beat: np.ndarray, rr: np.ndarray | None = None,
                extra_flags: tuple[str, ...] = ()) -> np.ndarray:
        """The class of every beat (n,), as the compiled C decides it (see :meth:`run`)."""
        return self.run(beat, rr, extra_flags)[1]

    def logits(self, beat: np.ndarray, rr: np.ndarray | None = None,
               extra_flags: tuple[str, ...] = ()) -> np.ndarray:
        """The int8 logits (n, 5) the compiled C writes (see :meth:`run`)."""
        return self.run(beat, rr, extra_flags)[0]


def read_outputs(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """What a harness of the generated C writes (the host one above, and the bench's): per beat the
    int8 logits, then the class byte. Returns logits (n, 5) and classes (n,)."""
    out = np.frombuffer(data, dtype=np.int8).reshape(-1, len(CLASSES) + 1)
    return out[:, :-1].copy(), out[:, -1].astype(np.int64)


def kernel_build(block: int, cc: str = "cc", flags: tuple[str, ...] = (), weights_above_min: bool = True) -> str:
    """Which kernels of ``templates/kernels.c`` ``cc flags`` compiles, from the compiler's ISA macros:
    "vnni" (x86-64 with AVX-512 VNNI, VL and VBMI), "avx2" (x86-64 with AVX2), "neon" (AArch64; no
    weight of -128), each for a block that is a multiple of 8; "dsp" (32-bit Arm with the DSP
    extension: Cortex-M4/M7/M33, Armv7-A) or "portable" (C99 on every other core)."""
    res = subprocess.run([cc, *flags, "-dM", "-E", "-x", "c", os.devnull], capture_output=True, text=True,
                         check=False)
    macros = set(res.stdout.splitlines()) if res.returncode == 0 else set()
    defined = lambda name: any(line.startswith(f"#define {name} ") for line in macros)  # noqa: E731
    if defined("__AVX2__") and block % 8 == 0:
        vnni = all(defined(m) for m in ("__AVX512VNNI__", "__AVX512VL__", "__AVX512VBMI__"))
        return "vnni" if vnni else "avx2"
    if defined("__aarch64__") and defined("__ARM_NEON") and block % 8 == 0 and weights_above_min:
        return "neon"
    if defined("__ARM_FEATURE_SIMD32") and defined("__ARM_FEATURE_DSP"):
        return "dsp"
    return "portable"


def convert(graph: Int8Graph, prefix: str = "edgeecg", block: int = DEFAULT_BLOCK) -> CModel:
    """The C library of an int8 graph (see :func:`edgeecg.quant.read_tflite`).

    ``block``: output channels computed together. 8 keeps the accumulators in the registers of a
    scalar MCU core (fewest instructions per beat measured on Cortex-M4 and rv32imc); 16 fills two
    AVX2 or four NEON registers.
    """
    return CModel(graph, prefix, block)
