"""The generated C's int8 kernels against the numpy reference on hand-built graphs: every block size
(with zero-padded channel blocks), odd input counts, an even kernel, full-range weights, requantization
with left shifts that saturate, extreme inputs, and every kernel path: portable C99 and AVX2 on this
machine (also under ASan/UBSan), and the Arm DSP (Cortex-M4), NEON (AArch64) and portable RISC-V
builds cross-compiled and run under qemu."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgeecg.bench.cross import PLATFORMS, build_plugin, run_platform
from edgeecg.quant.graph import Int8Graph, Layer, QParams
from edgeecg.quant.reference import EXACT_IN_FLOAT64, class_scores, classify_int8, integer_matmul
from firmware_export import convert
from firmware_export.cmodel import blocked_weights, dsp_weights, kernel_build


def random_graph(seed: int, max_shift: int, weight_min: int = -128, length: int = 16, mid: int = 5,
                 n_rr: int = 3) -> Int8Graph:
    """beat (length, 3) -> conv k5 (mid = 5 ch, ReLU range) -> maxpool -> conv k4 (6 ch) -> concat rr (n_rr = 3)
    -> fc (5 logits).

    The first conv and the fc have odd input counts (15, 51 for length 16); the second conv an even
    kernel (SAME pads 1 before, 2 after). The first conv and the pool are one kernel call in the C
    (pooled accumulators); an odd ``length`` leaves its last position out of the pool. With ``max_shift`` > 0 one channel per layer has a left shift and a
    bias of 2^30, which saturates. ``weight_min`` -127 makes TFLite's symmetric weights (the NEON
    kernels need them; -128 falls back to the portable ones).
    """
    rng = np.random.default_rng(seed)
    half = length // 2
    shapes = {0: (1, length, 3), 1: (1, n_rr), 2: (1, length, mid), 3: (1, half, mid), 4: (1, half, 6),
              5: (1, 6 * half + n_rr), 6: (1, 5)}
    g = Int8Graph(shapes=shapes, beat_input=0, rr_input=1, output=6)
    g.qparams = {t: QParams(scale=0.05, zero_point=int(rng.integers(-128, 128))) for t in shapes}

    def dense(kind, inputs, output, wshape, act_min=-128):
        n = wshape[0]
        bias = rng.integers(-(1 << 16), 1 << 16, n)
        shift = rng.integers(-13, -7, n)                  # scales that keep most outputs inside int8
        if max_shift > 0:                                 # channel 0: left shift, saturating int32
            bias[0], shift[0] = rng.choice([-1, 1]) * (1 << 30), max_shift
        return Layer(kind, inputs, output, weights=rng.integers(weight_min, 128, wshape).astype(np.int8),
                     bias=bias.astype(np.int32), multiplier=rng.integers(1 << 30, (1 << 31) - 1, n).astype(np.int32),
                     shift=shift.astype(np.int32), act_min=act_min)

    g.layers = [dense("conv", [0], 2, (mid, 5, 3), act_min=g.qparams[2].zero_point), Layer("maxpool", [2], 3),
                dense("conv", [3], 4, (6, 4, mid)), Layer("concat", [4, 1], 5),
                dense("fc", [5], 6, (5, 6 * half + n_rr))]
    return g


def host_has(*flags: str) -> bool:
    """This CPU has every one of these /proc/cpuinfo flags (so code built for them runs here)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    have = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return all(f in have for f in flags)


AVX2_FLAGS = ("-march=x86-64-v3",)
VNNI_FLAGS = ("-march=x86-64-v4", "-mavx512vnni", "-mavx512vbmi")
RUNS_AVX2 = kernel_build(8, "cc", AVX2_FLAGS) == "avx2" and host_has("avx2")
RUNS_VNNI = kernel_build(8, "cc", VNNI_FLAGS) == "vnni" and host_has("avx512_vnni", "avx512vl", "avx512vbmi")
BUILDS = [pytest.param((), id="portable"),
          pytest.param(AVX2_FLAGS, id="avx2", marks=pytest.mark.skipif(not RUNS_AVX2, reason="no AVX2 here")),
          pytest.param(VNNI_FLAGS, id="vnni", marks=pytest.mark.skipif(not RUNS_VNNI, reason="no AVX-512 VNNI here"))]
HOST_BUILDS = [(), *([AVX2_FLAGS] if RUNS_AVX2 else []), *([VNNI_FLAGS] if RUNS_VNNI else [])]


def kernel_inputs(n: int = 400, length: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Random int8 beats and RR features, the first three beats at the extremes (-128, 127, alternating)."""
    rng = np.random.default_rng(1)
    beat = rng.integers(-128, 128, (n, length, 3), dtype=np.int8)
    rr = rng.integers(-128, 128, (n, 3), dtype=np.int8)
    beat[0], beat[1], rr[0], rr[1] = -128, 127, -128, 127
    beat[2] = np.where(np.arange(3 * length).reshape(length, 3) % 2, 127, -128)
    return beat, rr


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("block", [2, 4, 8, 16])
@pytest.mark.parametrize("max_shift", [0, 3])
def test_c_matches_the_reference_for_every_block_size(block, max_shift, build):
    g = random_graph(seed=block * 10 + max_shift, max_shift=max_shift)
    c = convert(g, "k", block=block)
    assert f"#define LEFT_SHIFT {int(max_shift > 0)}" in c.files["k_model.c"]
    assert f"#define FAST_REQUANT {int(max_shift == 0)}" in c.files["k_model.c"]
    beat, rr = kernel_inputs()
    expected, expected_cls = classify_int8(g, beat, rr)
    assert len(np.unique(expected)) > 20          # the outputs span the int8 range, not one clamped value
    logits, cls = c.run(beat, rr, extra_flags=build)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(cls, expected_cls)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("length", [15, 16])
def test_a_convolution_and_its_max_pool_are_one_kernel_call(length, build):
    """The pool is done on the convolution's accumulators (max before the requantization: the same
    result, the requantization being monotonic); an odd length drops the last position as TFLite does."""
    g = random_graph(seed=length, max_shift=0, length=length)
    c = convert(g, "k", block=8)
    src = c.files["k_model.c"]
    assert "maxpool2_s8(k_" not in src and "k_t2[" not in src          # no pool call, no conv output buffer
    assert src.count("conv1d_s8(k_") == 2
    beat, rr = kernel_inputs(length=length)
    expected, expected_cls = classify_int8(g, beat, rr)
    logits, cls = c.run(beat, rr, extra_flags=build)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal(cls, expected_cls)


def test_integer_matmul_is_exact_through_float64_and_beyond_it():
    """The reference's products go through float64 where every sum is below 2**53, and stay in int64
    where one could exceed it: both equal Python's exact integer products."""
    rng = np.random.default_rng(0)
    small_a, small_b = rng.integers(-255, 256, (7, 120)), rng.integers(-128, 128, (120, 24))
    big_a, big_b = rng.integers(-(1 << 31), 1 << 31, (3, 4)), rng.integers(-(1 << 26), 1 << 26, (4, 2))
    assert (1 << 31) * (1 << 26) * 4 > EXACT_IN_FLOAT64         # float64 would round these
    for a, b in ((small_a, small_b), (big_a, big_b)):
        exact = [[sum(int(x) * int(y) for x, y in zip(row, col)) for col in b.T] for row in a]
        np.testing.assert_array_equal(integer_matmul(a, b), np.array(exact, dtype=np.int64))


def test_the_class_is_decided_below_the_int8_step():
    """Where two int8 logits tie, the class is the one whose accumulator is larger on the common
    scale (the per-channel multipliers and shifts taken into account), in the C as in numpy."""
    g = random_graph(seed=5, max_shift=0)
    fc = g.layers[-1]
    fc.weights[:] = 0
    fc.multiplier[:] = 1 << 30                     # 0.5 * 2**(shift - 30)
    fc.shift[:] = [-6, -6, -7, -6, -6]             # class 2's scale is half the others'
    fc.bias[:] = [6400, 6410, 12830, 0, 0]         # real values 50.0, 50.08, 50.12, 0, 0 (int8 steps)
    beat = np.zeros((1, 16, 3), np.int8)
    rr = np.zeros((1, 3), np.int8)
    logits, cls = classify_int8(g, beat, rr)
    zp = g.qparams[g.output].zero_point
    assert min(127, 50 + zp) == logits[0, 0] == logits[0, 1] == logits[0, 2]     # one int8 value
    assert logits[0].argmax() == 0 and cls[0] == 2
    scores = class_scores(fc.bias[None].astype(np.int64), fc)
    assert scores[0, 2] > scores[0, 1] > scores[0, 0]
    c_logits, c_cls = convert(g, "k").run(beat, rr)
    np.testing.assert_array_equal(c_logits, logits)
    assert c_cls[0] == 2


def test_blocked_weights_layout_and_padding():
    w = np.arange(1, 5 * 3 * 3 + 1).reshape(5, 3, 3).astype(np.int8)     # (out 5, k 3, in 3): 9 inputs
    b = blocked_weights(w, 4)
    # 2 blocks, 8 input pairs (9 inputs + 7 zeros: a multiple of GROUP = 8), 2 channel pairs,
    # (input, channel) within a pair of each
    assert b.shape == (2, 8, 2, 2, 2)
    assert b[0, 2, 1, 1, 1] == w[3, 1, 2]               # channel 2 * 1 + 1, input 2 * 2 + 1 = tap 1 * 3 + 2
    assert b[0, 0, 0].ravel().tolist() == [w[0, 0, 0], w[1, 0, 0], w[0, 0, 1], w[1, 0, 1]]   # SXTB16's order
    assert b[1, :, 0, :, 0].ravel().tolist() == [*w[4].ravel()] + [0] * 7   # padded with zero weights
    assert not b[1, :, 0, :, 1].any() and not b[1, :, 1].any()          # padding channels


def test_dsp_weights_layout_and_padding():
    w = np.arange(1, 5 * 3 * 3 + 1).reshape(5, 3, 3).astype(np.int8)     # (out 5, k 3, in 3): 9 inputs
    d = dsp_weights(w, 4)
    # int16; 2 blocks, 2 channel pairs, 4 input quads (9 inputs + 7 zeros), (channel, input) within each
    assert d.dtype == np.int16 and d.shape == (2, 2, 4, 2, 4)
    assert d[0, 1, 1, 1].tolist() == w[3].ravel()[4:8].tolist()      # channel 2 * 1 + 1, inputs 4 .. 7
    assert d[1, 0, :, 0].ravel().tolist() == [*w[4].ravel()] + [0] * 7   # padded with zero weights
    assert not d[1, 0, :, 1].any() and not d[1, 1].any()               # padding channels


@pytest.mark.parametrize("block", [0, 1, 3])
def test_block_must_be_even(block):
    with pytest.raises(ValueError, match="block must be an even number"):
        convert(random_graph(0, 0), block=block)


def test_kernel_build_needs_avx2_and_a_block_of_8s():
    assert kernel_build(4, "cc", ("-march=native",)) == "portable"     # not a multiple of 8 channels
    assert kernel_build(16, "cc", ("-mno-avx2",)) == "portable"        # no AVX2 (or not x86: flag refused)
    if kernel_build(8, "cc", VNNI_FLAGS) == "vnni":                    # an x86-64 compiler
        assert kernel_build(8, "cc", AVX2_FLAGS) == "avx2"
        assert kernel_build(8, "cc", VNNI_FLAGS[:2]) == "avx2"         # VNNI without VBMI: the AVX2 kernels


def test_c_is_clean_under_asan_and_ubsan():
    """Every host build this machine runs (portable, AVX2, VNNI) of every kernel variant (block sizes,
    left shifts) under the sanitizers."""
    probe = subprocess.run(["cc", "-fsanitize=address,undefined", "-x", "c", "-", "-o", "/dev/null"],
                           input="int main(void){return 0;}", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("cc cannot build with -fsanitize=address,undefined here")
    sanitize = ("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")
    beat, rr = kernel_inputs(100)
    for block, max_shift in ((2, 0), (8, 3), (16, 0)):
        g = random_graph(seed=block + max_shift, max_shift=max_shift)
        expected = classify_int8(g, beat, rr)
        for extra in HOST_BUILDS:
            logits, cls = convert(g, "k", block=block).run(beat, rr, extra_flags=sanitize + extra)
            np.testing.assert_array_equal(logits, expected[0])
            np.testing.assert_array_equal(cls, expected[1])


@pytest.fixture(scope="module")
def qemu_plugin():
    with tempfile.TemporaryDirectory() as d:
        yield build_plugin(Path(d))


# (block, max_shift, weight_min): symmetric weights take the NEON kernels on AArch64, -128 the
# portable ones; max_shift 3 takes the general requantization (left shifts that saturate).
CROSS_CASES = [(8, 0, -127), (16, 3, -127), (2, 0, -128), (8, 3, -128)]


@pytest.mark.parametrize("plat", PLATFORMS, ids=lambda p: p.name)
@pytest.mark.parametrize("block,max_shift,weight_min", CROSS_CASES)
def test_every_kernel_path_matches_the_reference_under_qemu(plat, block, max_shift, weight_min, qemu_plugin):
    if plat.missing():
        pytest.skip(plat.missing())
    g = random_graph(seed=block + max_shift, max_shift=max_shift, weight_min=weight_min)
    c = convert(g, "k", block=block)
    expected = {(-127, "c_aarch64"): "neon" if block % 8 == 0 else "portable", (-128, "c_aarch64"): "portable",
                (-127, "c_cortex_m4"): "dsp", (-128, "c_cortex_m4"): "dsp"}.get((weight_min, plat.name), "portable")
    assert kernel_build(block, plat.cc, plat.flags, weight_min > -128) == expected
    beat, rr = kernel_inputs(60)
    result = run_platform(plat, c, c.records(beat, rr), len(beat), qemu_plugin)
    logits, cls = classify_int8(g, beat, rr)
    np.testing.assert_array_equal(result.logits, logits)
    np.testing.assert_array_equal(result.classes, cls)


@pytest.mark.parametrize("mid, n_rr", [(5, 3), (7, 7), (2, 1)])
def test_the_dsp_kernels_unrolled_loops_handle_every_remainder(mid, n_rr, qemu_plugin):
    """The DSP kernels take input quads 1, 2 and 4 at a time: a second convolution of 4 * mid inputs
    (5, 7, 2 quads) and a dense layer of 48 + n_rr (13, 14, 13 quads) reach every remainder."""
    plat = next(p for p in PLATFORMS if p.name == "c_cortex_m4")
    if plat.missing():
        pytest.skip(plat.missing())
    g = random_graph(seed=mid + n_rr, max_shift=0, mid=mid, n_rr=n_rr)
    c = convert(g, "k", block=8)
    beat, rr = kernel_inputs(30)
    result = run_platform(plat, c, c.records(beat, rr[:, :1].repeat(n_rr, axis=1)), len(beat), qemu_plugin)
    logits, cls = classify_int8(g, beat, rr[:, :1].repeat(n_rr, axis=1))
    np.testing.assert_array_equal(result.logits, logits)
    np.testing.assert_array_equal(result.classes, cls)


def test_the_dsp_and_neon_paths_are_what_the_cross_compilers_build():
    """The ISA macros the kernel choice reads are the ones these compilers define."""
    for plat, expected in (("c_cortex_m4", "dsp"), ("c_aarch64", "neon"), ("c_rv32imc", "portable")):
        p = next(p for p in PLATFORMS if p.name == plat)
        if shutil.which(p.cc) is None:
            continue
        assert kernel_build(8, p.cc, p.flags) == expected
