"""The on-device front end, in Python: one int16 ADC sample in, at most one classified beat out.

This is the bit-exact twin of ``firmware_export/templates/stream.c`` (generated as
``PREFIX_stream.{h,c}`` by :func:`firmware_export.stream.write_stream`). Every step is integer
arithmetic with the rounding rules written below, so that Python and C give the same beats, classes
and logits for the same samples. It reproduces, in fixed point, what
:func:`edgeecg.processing.beats.extract_beats` computes in float for the classifier (the default
recipe: ``DataConfig()``), with the R peaks of the streaming QRS detector (:mod:`edgeecg.stream.qrs`)
instead of the reference annotations.

Chain, per ADC sample (``push``)
--------------------------------
1. **Rate conversion** (:mod:`edgeecg.stream.rate`): the ADC samples at ``adc_hz`` (100-1000 Hz)
   to 180 Hz, the block sum of ``M = adc_hz / 180`` samples floor-shifted right by ``k`` at an
   integer multiple, else a polyphase FIR; ``|x| <= 2**16``. The detector takes the same ``x``.
2. **Band-pass** (:class:`IntBandpass`): the model's causal Butterworth band-pass (the SOS of
   :func:`~edgeecg.processing.filters.design_bandpass`) as direct-form-I biquads with coefficients
   in Q29 (``int32``) and signals in Q\\ ``G`` (``G = 12`` for the default recipe: the filtered
   signal is ``x * 2**G``). Each section keeps its output's remainder ``E`` (``0 <= E < 2**29``)
   and feeds it back (``(a1 E1 + a2 E2) >> 29``), so the recursion runs at Q(G + 29): the 0.5 Hz
   high-pass pole (radius 0.988) does not amplify rounding noise. ``int64`` accumulators, with
   the bounds checked by :func:`bandpass_design` for any int16 input. The filters start in the
   steady state of the first sample (as ``sosfilt`` from ``sosfilt_zi``).
3. **Ring** of the last ``RING_N`` filtered samples (``int32``): the window (``before + after``)
   plus the detector's worst confirmation delay (``max_age + peak_w + fid_before`` = 986 samples)
   plus a margin for the queues, so the window of a beat confirmed late is still there.
4. **QRS detector** (:class:`~edgeecg.stream.qrs.QRSDetector`, C: ``PREFIX_qrs``): fed the same ADC
   samples; its R-peak index (180 Hz) starts the beat. An index not after the previous one is ignored.
5. **RR features** at each R peak (:class:`RRState`), from its pre-RR interval ``v`` (samples,
   clamped to ``RR_CLAMP`` = 65535): the regular-RR estimate in Q16 samples, the irregularity and
   trailing-mean rings, each feature a ratio of two of them in Q24, quantized with the ``.tflite``'s
   RR scale and zero point. The first R peak (no RR) and beats whose window would start before
   sample 0 are not classified (as ``extract_beats`` skips them); their RR still counts.
6. **Pending queue** (``PEND_N`` = 8 beats): a beat is classified once the filtered sample
   ``r + after - 1`` exists (``after`` = 80 samples from the R peak, 0.44 s); a full queue drops the
   new beat, a beat whose window has left the ring is dropped (neither happens on ECG).
7. **Beat window** (:func:`window_z`): the ``W = before + after`` filtered samples around ``r``,
   z-scored (population std, floored at ``STD_FLOOR_MV`` mV) into Q24, then the template channel
   (window minus the running average of the classified beats with a regular pre-RR,
   ``alpha = 1 / template_beats``, starting at the first classified beat), then int8 with the
   ``.tflite``'s beat scale and zero point (channels-last, ``W x C``).
8. **Classifier**: the int8 graph (Python: :func:`edgeecg.quant.run_int8`; C: ``PREFIX_classify``),
   class = first index of the largest logit.

At most one beat comes out per ADC sample; others wait in the queue.

Two leads (``[data] second_lead``, ``FrontEndSpec.leads = 2``): each push takes one sample of each
lead (C: ``PREFIX_stream_push_leads``). The detector and the RR features read the first lead; steps
1-3 and 7 run once per lead (its own rate converter, band-pass, ring, z-scores and template, updated
by the same beats), and the model input is the first lead's channels, then the second's, as
:func:`~edgeecg.processing.beats.extract_beats` orders them.

Rounding rules (identical in C)
-------------------------------
* ``rshift_round(v, s)`` = ``v / 2**s`` rounded half away from zero (computed on ``|v|``).
* ``div_round(a, b)`` (``b > 0``) = ``a / b`` rounded half away from zero: ``(|a| + b // 2) // b``
  with the sign of ``a``.
* ``floor_shift(v, s)`` = ``floor(v / 2**s)`` (the biquad outputs and the rate converter's output shift).
* ``isqrt`` = floor of the square root (``math.isqrt``; a bitwise loop in C).
* int8 quantization of a Q24 value ``v``: ``clip(zp + rshift_round(clamp(v, ±vmax) * m, sh), -128,
  127)`` where ``m / 2**sh`` approximates ``1 / (scale * 2**24)`` to better than 2**-20 (``m`` < 2**31)
  and ``vmax`` is large enough that the clamp never changes the result (:class:`Requant`).

Z-scores: for the window ``w`` (Q\\ ``G``), ``S = sum w``, ``c_i = W w_i - S`` (exact). ``c`` is scaled
by ``2**L`` (left shift, exact; or ``rshift_round`` for a right shift) so that ``max |c'|`` is in
``[2**NB, 2**(NB+1)]``; ``D = isqrt(Q * sum c'^2)`` where ``Q`` is the smallest integer making
``W Q = s^2`` a square (W = 128: Q = 2, s = 16), so that ``z_i = c'_i s / D``. The floor: ``D_eff =
max(D, DFL * 2**L)`` with ``DFL = round(STD_FLOOR_MV * gain * scale * 2**G * W * s)`` (``scale``: ``x`` units per ADC count, :attr:`RateConverter.scale`).
``z_i (Q24) = rshift_round(c'_i * s * floor(2**R / D_eff), R - 24)``. A flat window (all ``c`` = 0)
gives z = 0. Template: ``T += div_round(z - T, template_beats)`` (Q24, ``int32``); with a gate, only
when ``sum |z - T| <= GATE_SUM`` or ``template_beats`` beats in a row were kept out (``int64`` sum).

RR features: with ``v`` the pre-RR, the regular-RR estimate ``est`` (Q16 samples) is the
``div_round(sum * 2**16, count)`` mean of the last ``regular_rr_beats`` regular intervals (the
first interval enters twice, as in ``regular_rr``), moved by ``div_round((v * 2**16 - est) *
num, den)`` for an irregular one (``num / den`` = ``regular_rr_follow``); ``v`` is regular when
``v * 2**16 * lo_den >= lo_num * est`` and ``v * 2**16 * hi_den <= hi_num * est`` (the band as
fractions). A run of early beats (``run_anchor``) goes on while ``v * 2**16 * keep_den < keep_num *
anchor`` (checked first: a run going on is never re-anchored); otherwise one starts when ``v * 2**16 *
lo_den < lo_num * est``, with ``anchor = est``. The primitive ``ANC`` is ``anchor`` within a run and
``est`` outside one; the twin and the C keep and step that state only where a feature reads
``ANC`` (``FrontEndSpec.anchor``). A feature ``A / B`` of two quantities
given as ``(num, den)`` is ``div_round(A_num * B_den * 2**24, A_den * B_num)`` in Q24.

Latency: a beat is classified at the later of (a) its window's last sample, ``after - 1`` = 79
samples (0.44 s) after the R peak, and (b) the detector reporting it, normally 0.35 s (at most
0.48 s) after it, later for beats found by search-back or (re)learning (up to 5.5 s). So the
window, not the detector, sets the usual latency: 0.44 s (at most 0.48 s for a wide QRS).

Indices: R peaks count 180 Hz samples from the first after construction or :meth:`reset`; the C
returns them modulo 2**31 (``int32_t``), as the detector does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from edgeecg.config import STRIP_INTERVALS, STRIP_RR_FEATURES, DataConfig, rr_feature_names
from edgeecg.errors import EdgeECGError
from edgeecg.processing.beats import RUN_KEEP, STD_FLOOR_MV
from edgeecg.processing.filters import design_bandpass
from edgeecg.stream.decimate import FS
from edgeecg.stream.qrs import Params, QRSDetector, detect, params_for
from edgeecg.stream.rate import RateConverter, rate_converter

COEF_FRAC = 29          # biquad coefficients: Q29 int32
G_MAX = 12              # filtered signal: at most Q12 (chosen by bandpass_design)
Z_FRAC = 24             # z-scores, template and RR features: Q24
EST_FRAC = 16           # regular-RR estimate: Q16 samples
RR_CLAMP = 65535        # RR intervals (samples) are clamped to this (6 min at 180 Hz)
PEND_N = 8              # beats waiting for their window
RING_MARGIN = 32        # ring samples beyond the window and the detector's worst delay
ACC_LIMIT = 1 << 62     # every int64 intermediate stays below this
RUN_KEEP_FRACTION = (RUN_KEEP.numerator, RUN_KEEP.denominator)

# Quantities the RR features are ratios of: (numerator, denominator) in samples.
# PREV2 ... PREV8: the 2nd to 8th intervals before the beat's own (the rhythm strip, STRIP_RR_FEATURES).
STRIP_PRIMITIVES = tuple(f"PREV{k}" for k in range(2, STRIP_INTERVALS + 1))
# ANC: the regular-RR estimate a run of early beats started from (the estimate itself outside runs).
PRIMITIVES = ("PRE", "PREV", "LOCAL", "AVG", "REG", "IRR", "SEC", "ANC") + STRIP_PRIMITIVES
FEATURES = {
    "pre_rr": ("PRE", "SEC"), "prev_rr": ("PREV", "SEC"), "local_rr": ("LOCAL", "SEC"),
    "avg_rr": ("AVG", "SEC"), "regular_rr": ("REG", "SEC"), "irregularity": ("IRR", "REG"),
    "pre_over_avg": ("PRE", "AVG"), "local_over_avg": ("LOCAL", "AVG"), "pre_over_local": ("PRE", "LOCAL"),
    "pre_over_regular": ("PRE", "REG"), "prev_over_regular": ("PREV", "REG"), "pre_over_prev": ("PRE", "PREV"),
    "pre_over_anchor": ("PRE", "ANC"), "prev_over_anchor": ("PREV", "ANC"),
    **{name: (prim, "REG") for name, prim in zip(STRIP_RR_FEATURES, STRIP_PRIMITIVES)},
}


# --------------------------------------------------------------------------------------------
# Integer rounding helpers (the C has the same, on int64_t)
# --------------------------------------------------------------------------------------------

def rshift_round(v: int, s: int) -> int:
    """``v / 2**s`` rounded half away from zero (``s >= 1``)."""
    half = 1 << (s - 1)
    return (v + half) >> s if v >= 0 else -((-v + half) >> s)


def div_round(a: int, b: int) -> int:
    """``a / b`` rounded half away from zero (``b > 0``)."""
    return (a + b // 2) // b if a >= 0 else -((-a + b // 2) // b)


def floor_shift(v: int, s: int) -> int:
    return v >> s         # Python's >> is floor division by 2**s, also for negative v


def np_rshift_round(v: np.ndarray, s) -> np.ndarray:
    """Vectorised :func:`rshift_round` on int64 (``s`` scalar or per row, >= 1)."""
    s = np.asarray(s, dtype=np.int64)
    half = np.left_shift(np.int64(1), s - 1)
    mag = (np.abs(v) + half) >> s
    return np.where(v >= 0, mag, -mag)


# --------------------------------------------------------------------------------------------
# Quantization to int8
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Requant:
    """``q = clip(zp + rshift_round(clamp(v, -vmax, vmax) * m, sh), -128, 127)``: a value ``v`` in
    units of ``unit`` (e.g. 2**-24) to int8 with scale ``scale`` and zero point ``zp``."""

    m: int
    sh: int
    zp: int
    vmax: int

    @staticmethod
    def design(unit: float, scale: float, zp: int) -> "Requant":
        if not (scale > 0 and math.isfinite(scale)):
            raise EdgeECGError(f"int8 input scale {scale!r} is not a positive number")
        real = unit / scale                            # q - zp per unit of v
        vmax = int(math.ceil((257 + abs(zp)) / real))  # beyond this q is clipped anyway
        sh = 31 - math.frexp(real)[1]                  # m in [2**30, 2**31)
        while sh > 1 and (vmax * int(round(real * 2.0 ** sh)) + (1 << (sh - 1)) >= ACC_LIMIT
                          or int(round(real * 2.0 ** sh)) >= 1 << 31):
            sh -= 1
        m = int(round(real * 2.0 ** sh))
        if sh < 1 or m < 1 << 20 or vmax * m + (1 << (sh - 1)) >= ACC_LIMIT:
            raise EdgeECGError(f"int8 input scale {scale!r} is outside what the integer front end supports")
        return Requant(m=m, sh=sh, zp=int(zp), vmax=vmax)

    def __call__(self, v: int) -> int:
        v = max(-self.vmax, min(self.vmax, v))
        return max(-128, min(127, self.zp + rshift_round(v * self.m, self.sh)))

    def np(self, v: np.ndarray) -> np.ndarray:
        v = np.clip(v.astype(np.int64), -self.vmax, self.vmax)
        return np.clip(self.zp + np_rshift_round(v * self.m, self.sh), -128, 127).astype(np.int8)


# --------------------------------------------------------------------------------------------
# The band-pass in fixed point
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """One biquad in Q29: ``b0 b1 b2`` (numerator), ``a1 a2`` (denominator, ``a0`` = 2**29), ``dcg``
    = its DC gain in Q29 (for the steady state of the first sample)."""

    b0: int
    b1: int
    b2: int
    a1: int
    a2: int
    dcg: int


def _quantize_section(row: np.ndarray) -> Section:
    one = 1 << COEF_FRAC
    b, a = row[:3] / row[3], row[4:] / row[3]
    b0 = int(round(b[0] * one))
    ratios = b / b[0] if b[0] != 0 else None
    if ratios is not None and np.allclose(ratios, np.round(ratios), atol=1e-9):
        b1, b2 = int(round(ratios[1])) * b0, int(round(ratios[2])) * b0   # zeros at z = +-1 exact
    else:
        b1, b2 = int(round(b[1] * one)), int(round(b[2] * one))
    a1, a2 = int(round(a[0] * one)), int(round(a[1] * one))
    den = one + a1 + a2
    dcg = 0 if b0 + b1 + b2 == 0 else int(round((b0 + b1 + b2) * one / den))
    return Section(b0, b1, b2, a1, a2, dcg)


@dataclass(frozen=True)
class BandpassDesign:
    sections: tuple[Section, ...]
    g: int                      # signal fraction bits (Q_g)
    out_bound: int              # |filtered sample| < out_bound (in Q_g units) for any int16 input


def bandpass_design(fs: float, band_hz, order: int) -> BandpassDesign:
    """The Q29 sections of the recipe's band-pass and the largest signal precision ``G <= 12`` for
    which no intermediate can overflow, for any input ``|x| <= 2**16`` (bounds from the L1 norms of
    the exact sections' impulse responses, with a 1 % margin)."""
    from scipy import signal as sps

    sos = design_bandpass(fs, tuple(band_hz), order)
    sections = tuple(_quantize_section(row) for row in sos)
    impulse = np.zeros(1 << 15)
    impulse[0] = 1.0
    xmax = float(1 << 16)
    in_bound = xmax                 # |input of section j| (real units of x)
    outs = []
    for j in range(len(sections)):
        h = sps.sosfilt(sos[: j + 1], impulse)
        if abs(h[-1]) > 1e-9:
            raise EdgeECGError("band-pass filter is not stable enough for the integer front end")
        outs.append(1.01 * float(np.abs(h).sum()) * xmax + 2.0)
    for g in range(G_MAX, -1, -1):
        ok = True
        u_bound = in_bound * 2 ** g
        for sec, v_out in zip(sections, outs):
            v_bound = v_out * 2 ** g
            acc = (abs(sec.b0) + abs(sec.b1) + abs(sec.b2)) * u_bound + (abs(sec.a1) + abs(sec.a2)) * (v_bound + 1)
            fb = (abs(sec.a1) + abs(sec.a2)) * (1 << COEF_FRAC)
            if acc + fb / (1 << COEF_FRAC) + 1 >= ACC_LIMIT or fb >= ACC_LIMIT or v_bound >= 2**31 - 1 \
                    or u_bound >= 2**31 - 1 or abs(sec.dcg) * u_bound >= ACC_LIMIT:
                ok = False
                break
            u_bound = v_bound
        if ok:
            return BandpassDesign(sections, g, int(math.ceil(outs[-1] * 2 ** g)))
    raise EdgeECGError("the band-pass cannot be run in int64 fixed point")


class IntBandpass:
    """The cascade, sample by sample (and :meth:`run` for a whole array, the same arithmetic)."""

    def __init__(self, design: BandpassDesign):
        self.design = design
        self.reset()

    def reset(self) -> None:
        n = len(self.design.sections)
        self.started = False
        self.u1, self.u2 = [0] * n, [0] * n
        self.v1, self.v2 = [0] * n, [0] * n
        self.e1, self.e2 = [0] * n, [0] * n

    def _start(self, u: int) -> None:
        for j, sec in enumerate(self.design.sections):
            ext = u * sec.dcg                       # Q(g + 29) steady-state output
            v = floor_shift(ext, COEF_FRAC)
            self.u1[j] = self.u2[j] = u
            self.v1[j] = self.v2[j] = v
            self.e1[j] = self.e2[j] = ext - (v << COEF_FRAC)
            u = v
        self.started = True

    def step(self, x: int) -> int:
        u = x << self.design.g
        if not self.started:
            self._start(u)
        for j, s in enumerate(self.design.sections):
            fb = floor_shift(s.a1 * self.e1[j] + s.a2 * self.e2[j], COEF_FRAC)
            acc = (s.b0 * u + s.b1 * self.u1[j] + s.b2 * self.u2[j]
                   - s.a1 * self.v1[j] - s.a2 * self.v2[j] - fb)
            v = acc >> COEF_FRAC
            e = acc - (v << COEF_FRAC)
            self.u2[j], self.u1[j] = self.u1[j], u
            self.v2[j], self.v1[j] = self.v1[j], v
            self.e2[j], self.e1[j] = self.e1[j], e
            u = v
        return u

    def run(self, x) -> np.ndarray:
        """Filter a whole array from a fresh state (int64 out)."""
        self.reset()
        xs = np.asarray(x, dtype=np.int64).tolist()
        if not xs:
            return np.zeros(0, np.int64)
        g = self.design.g
        out = []
        cur = [xi << g for xi in xs]
        self._start(cur[0])
        for j, s in enumerate(self.design.sections):     # section by section: the same values
            b0, b1, b2, a1, a2 = s.b0, s.b1, s.b2, s.a1, s.a2
            u1, u2, v1, v2, e1, e2 = self.u1[j], self.u2[j], self.v1[j], self.v2[j], self.e1[j], self.e2[j]
            out = [0] * len(cur)
            for i, u in enumerate(cur):
                acc = b0 * u + b1 * u1 + b2 * u2 - a1 * v1 - a2 * v2 - ((a1 * e1 + a2 * e2) >> COEF_FRAC)
                v = acc >> COEF_FRAC
                u2, u1, v2, v1, e2, e1 = u1, u, v1, v, e1, acc - (v << COEF_FRAC)
                out[i] = v
            self.u1[j], self.u2[j], self.v1[j], self.v2[j], self.e1[j], self.e2[j] = u1, u2, v1, v2, e1, e2
            cur = out
        return np.asarray(cur, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# The front end's constants
# --------------------------------------------------------------------------------------------

def _fraction(value: float, what: str) -> Fraction:
    f = Fraction(value).limit_denominator(1000)
    if f <= 0 or abs(float(f) - value) > 1e-9 * max(1.0, abs(value)):
        raise EdgeECGError(f"[data] {what} = {value!r} is not a simple positive fraction")
    return f


def _norm_constants(window: int) -> tuple[int, int, int, int]:
    """(Q, s, NB, R) of the z-score arithmetic for a window of ``window`` samples."""
    q = 1
    w = window
    p = 2
    while p * p <= w:
        while w % (p * p) == 0:
            w //= p * p
        if w % p == 0:
            q *= p
            w //= p
        p += 1
    q *= w
    s = math.isqrt(window * q)
    assert s * s == window * q
    nb = 30 - (s - 1).bit_length()       # Q * sum c'^2 <= s^2 * 2**(2 NB + 2) <= 2**62
    r = 62 - (math.isqrt(window) + 1).bit_length() - 2   # c' s floor(2**R / D) < 2**62
    return q, s, nb, r


@dataclass(frozen=True)
class FrontEndSpec:
    """Every constant of the front end (the C gets them as ``#define``s and tables)."""

    adc_hz: float
    adc_gain: float
    rate: RateConverter          # ADC rate -> 180 Hz
    bandpass: BandpassDesign
    before: int
    after: int
    ring_n: int
    pend_n: int
    beat_channel: bool
    template_beats: int          # 0: no template channel
    template_all: bool           # every beat updates the template (else only regular ones)
    template_gate_sum: int       # > 0: a beat with sum |z - T| above this (Q24) does not (DataConfig.template_gate)
    norm_q: int
    norm_s: int
    norm_nb: int
    norm_r: int
    std_floor: int               # DFL
    beat_q: Requant              # Q24 value (or grid steps) -> the graph's beat input
    grid_q: Requant | None       # Q24 -> grid steps (DataConfig.input_step), else None
    features: tuple[str, ...]
    rr_q: Requant | None         # Q24 -> the graph's RR input (None: the graph has none)
    reg_n: int
    band_lo: tuple[int, int]
    band_hi: tuple[int, int]
    follow: tuple[int, int]
    irr_n: int
    local_n: int                 # 0 when no feature needs it
    avg_n: int
    qrs: Params
    n_classes: int
    fs: int = FS
    leads: int = 1               # 2: a second ADC channel adds its beat (+ template) channels after the first's
    older_n: int = 0             # intervals kept before the previous one (PREV2 ... PREV<older_n + 1>)
    anchor: bool = False         # a feature reads ANC: the run state is kept (RRState.run_step)

    @property
    def window(self) -> int:
        return self.before + self.after

    @property
    def lead_channels(self) -> int:
        """Input channels of one lead: the beat and/or its difference from the lead's template."""
        return int(self.beat_channel) + int(self.template_beats > 0)

    @property
    def channels(self) -> int:
        return self.lead_channels * self.leads

    @property
    def rr_len(self) -> int:
        return len(self.features) if self.rr_q is not None else 0

    @property
    def latency_samples(self) -> int:
        """Samples from the R peak to the classification when the detector is not later."""
        return self.after - 1


def max_detector_delay(p: Params) -> int:
    """The most 180 Hz samples between an R peak and its confirmation (see :mod:`edgeecg.stream.qrs`)."""
    return p.max_age + p.peak_w + p.fid_before


def front_end_spec(data: DataConfig, graph, adc_hz=360, adc_gain: float = 200.0) -> FrontEndSpec:
    """The front end of a recipe (``data``) and an int8 graph (its input scales), for an ADC at
    ``adc_hz`` with ``adc_gain`` counts/mV. A one-line :class:`EdgeECGError` when the ADC rate is
    outside 100-1000 Hz or the recipe is something the integer front end cannot reproduce."""
    conv = rate_converter(adc_hz, FS)
    if not (isinstance(adc_gain, (int, float)) and adc_gain > 0 and math.isfinite(adc_gain)):
        raise EdgeECGError(f"ADC gain {adc_gain!r} counts/mV must be a positive number")
    if data.fs != FS:
        raise EdgeECGError(f"[data] fs = {data.fs}: the streaming front end runs at {FS} Hz")
    if data.mode != "realtime":
        raise EdgeECGError("[data] mode = \"diagnostic\" reads the next beat: no streaming front end")
    if data.history_options:
        name = data.history_options[0]
        raise EdgeECGError(f"[data] {name} = {getattr(data, name)!r} is not computed by the streaming front end yet")
    unknown = [f for f in rr_feature_names(data) if f not in FEATURES]
    if unknown:
        raise EdgeECGError(f"[data] rr_features: {', '.join(unknown)} not supported by the streaming front end")
    if data.before < 1 or data.after < 1:
        raise EdgeECGError("[data] before and after must be >= 1 for the streaming front end")
    window = data.before + data.after
    channels = data.channels
    if channels < 1:
        raise EdgeECGError("[data] has no beat channel and no template channel")
    bshape = tuple(graph.shapes[graph.beat_input])[-2:]
    if bshape != (window, channels):
        raise EdgeECGError(f"the int8 graph's beat input is {bshape}, the recipe makes ({window}, {channels})")
    bp = bandpass_design(FS, data.band_hz, data.filter_order)
    nq, ns, nb, nr = _norm_constants(window)
    floor_real = STD_FLOOR_MV * adc_gain * float(conv.scale) * (1 << bp.g) * window * ns
    if floor_real >= 2.0 ** 62:
        raise EdgeECGError(f"ADC gain {adc_gain} counts/mV is too large for the integer front end")
    bq = graph.qparams[graph.beat_input]
    unit = 2.0 ** -Z_FRAC
    if data.input_step:
        grid = Requant.design(unit, data.input_step, 0)
        beat = Requant.design(data.input_step, bq.scale, bq.zero_point)
    else:
        grid, beat = None, Requant.design(unit, bq.scale, bq.zero_point)
    feats = tuple(rr_feature_names(data))
    rr_q = None
    if graph.rr_input is not None:
        n_rr = int(np.prod(graph.shapes[graph.rr_input][1:]))
        if n_rr != len(feats):
            raise EdgeECGError(f"the int8 graph takes {n_rr} RR features, the recipe makes {len(feats)}")
        q = graph.qparams[graph.rr_input]
        rr_q = Requant.design(unit, q.scale, q.zero_point)
    used = {p for f in feats for p in FEATURES[f]}
    lo, hi = (_fraction(v, "regular_rr_band") for v in data.regular_rr_band)
    follow = _fraction(data.regular_rr_follow, "regular_rr_follow")
    if not lo < 1 < hi or follow >= 1 or data.regular_rr_beats < 1 or data.irregularity_beats < 1:
        raise EdgeECGError("[data] regular_rr_band / regular_rr_follow / *_beats out of range for the front end")
    local_n = data.local_rr_beats if "LOCAL" in used else 0
    avg_n = data.avg_rr_beats if "AVG" in used else 0
    if max(local_n, avg_n, data.regular_rr_beats, data.irregularity_beats) > 4096 or min(
            data.local_rr_beats, data.avg_rr_beats) < 1:
        raise EdgeECGError("[data] RR averages of more than 4096 beats are not supported by the front end")
    if data.template_beats < 0:
        raise EdgeECGError("[data] template_beats must be >= 0")
    # the largest feature intermediate (A_num * B_den * 2**24) must fit
    strip = [int(p[4:]) for p in used if p in STRIP_PRIMITIVES]
    num_max = {"PRE": RR_CLAMP, "PREV": RR_CLAMP, "LOCAL": RR_CLAMP * max(local_n, 1),
               "AVG": RR_CLAMP * max(avg_n, 1), "REG": (RR_CLAMP + 1) << EST_FRAC, "ANC": (RR_CLAMP + 1) << EST_FRAC,
               "IRR": RR_CLAMP * data.irregularity_beats, "SEC": FS} | {p: RR_CLAMP for p in STRIP_PRIMITIVES}
    den_max = {"PRE": 1, "PREV": 1, "LOCAL": max(local_n, 1), "AVG": max(avg_n, 1), "REG": 1 << EST_FRAC,
               "ANC": 1 << EST_FRAC,
               "IRR": data.irregularity_beats, "SEC": 1} | {p: 1 for p in STRIP_PRIMITIVES}
    for f in feats:
        a, b = FEATURES[f]
        if num_max[a] * den_max[b] << Z_FRAC >= ACC_LIMIT or den_max[a] * num_max[b] >= ACC_LIMIT:
            raise EdgeECGError(f"RR feature {f} does not fit the front end's int64 arithmetic")
    qp = params_for(adc_hz, adc_gain)
    return FrontEndSpec(
        adc_hz=conv.adc_hz, adc_gain=float(adc_gain), rate=conv, bandpass=bp,
        before=data.before, after=data.after,
        ring_n=data.before + max(data.after, max_detector_delay(qp) + RING_MARGIN),
        pend_n=PEND_N, beat_channel=data.beat_channel, template_beats=data.template_beats,
        template_all=data.template_update == "all",
        template_gate_sum=int(round(data.template_gate * window * (1 << Z_FRAC))) if data.template_gate > 0 else 0,
        norm_q=nq, norm_s=ns, norm_nb=nb, norm_r=nr,
        std_floor=int(round(floor_real)), beat_q=beat, grid_q=grid, features=feats, rr_q=rr_q,
        reg_n=data.regular_rr_beats, band_lo=(lo.numerator, lo.denominator),
        band_hi=(hi.numerator, hi.denominator), follow=(follow.numerator, follow.denominator),
        irr_n=data.irregularity_beats, local_n=local_n, avg_n=avg_n, qrs=qp,
        n_classes=int(np.prod(graph.shapes[graph.output][1:])), leads=data.n_leads, older_n=max(strip, default=1) - 1,
        anchor="ANC" in used)


# --------------------------------------------------------------------------------------------
# RR features
# --------------------------------------------------------------------------------------------

class _Ring:
    """The last ``n`` values with their sum and count (count saturates at ``n``)."""

    __slots__ = ("buf", "n", "pos", "count", "total")

    def __init__(self, n: int):
        self.n = max(n, 1)
        self.buf = [0] * self.n
        self.pos = self.count = self.total = 0

    def push(self, v: int) -> None:
        self.total += v - self.buf[self.pos]
        self.buf[self.pos] = v
        self.pos = self.pos + 1 if self.pos + 1 < self.n else 0
        self.count = min(self.count + 1, self.n)


class RRState:
    """RR bookkeeping at each R peak: the regular-RR estimate, the rings and the features."""

    def __init__(self, spec: FrontEndSpec):
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        s = self.spec
        self.have_last = False
        self.last_r = 0
        self.have_rr = False
        self.prev = 0
        self.older = [0] * self.spec.older_n      # the intervals before the previous one, newest first
        self.reg = _Ring(s.reg_n)
        self.est = 0
        self.anchor = 0           # Q16, the estimate a run of early beats started from
        self.in_run = False
        self.irr = _Ring(s.irr_n)
        self.local = _Ring(s.local_n)
        self.avg = _Ring(s.avg_n)

    def regular(self, v: int) -> bool:
        (ln, ld), (hn, hd) = self.spec.band_lo, self.spec.band_hi
        vq = v << EST_FRAC
        return vq * ld >= ln * self.est and vq * hd <= hn * self.est

    def run_step(self, v: int) -> None:
        """A run of early beats (``run_anchor``) goes on, starts (anchored at the estimate) or ends."""
        (ln, ld), (kn, kd) = self.spec.band_lo, RUN_KEEP_FRACTION
        vq = v << EST_FRAC
        if self.in_run and vq * kd < kn * self.anchor:
            return
        self.in_run = vq * ld < ln * self.est
        if self.in_run:
            self.anchor = self.est

    def interval(self, v: int) -> tuple[list[int], bool]:
        """Features (Q24, in the recipe's order) and regularity of a beat with pre-RR ``v``
        (1..RR_CLAMP samples); then the state moves on."""
        s = self.spec
        first = not self.have_rr
        if first:
            self.reg.push(v)
            self.est = v << EST_FRAC
            self.have_rr = True
            self.older = [v] * s.older_n
        prev = v if first else self.prev
        regular = self.regular(v)
        if s.anchor:
            self.run_step(v)
        if s.local_n:
            self.local.push(v)
        if s.avg_n:
            self.avg.push(v)
        prim = {"PRE": (v, 1), "PREV": (prev, 1), "LOCAL": (self.local.total, max(self.local.count, 1)),
                "AVG": (self.avg.total, max(self.avg.count, 1)), "REG": (self.est, 1 << EST_FRAC),
                "IRR": (self.irr.total, max(self.irr.count, 1)), "SEC": (s.fs, 1),
                "ANC": (self.anchor if self.in_run else self.est, 1 << EST_FRAC),
                **{f"PREV{k}": (older, 1) for k, older in enumerate(self.older, start=2)}}
        feats = []
        for name in s.features:
            (an, ad), (bn, bd) = (prim[p] for p in FEATURES[name])
            den = ad * bn
            feats.append(div_round((an * bd) << Z_FRAC, den) if den > 0 else s.rr_q.vmax if s.rr_q else 0)
        if regular:
            self.reg.push(v)
            self.est = div_round(self.reg.total << EST_FRAC, self.reg.count)
        else:
            fn, fd = s.follow
            self.est += div_round(((v << EST_FRAC) - self.est) * fn, fd)
        self.irr.push(0 if first else abs(v - self.prev))
        self.older = [prev] + self.older[:-1] if self.older else []
        self.prev = v
        return feats, regular


# --------------------------------------------------------------------------------------------
# Beat windows
# --------------------------------------------------------------------------------------------

def window_z(windows: np.ndarray, spec: FrontEndSpec) -> np.ndarray:
    """Q24 z-scores (int64, (n, W)) of filtered windows (Q_G, (n, W)), as the C computes them."""
    w = np.asarray(windows, dtype=np.int64)
    n, wn = w.shape
    if n == 0:
        return np.zeros((0, wn), np.int64)
    c = wn * w - w.sum(axis=1, keepdims=True)
    cmax = np.abs(c).max(axis=1)
    out = np.zeros_like(c)
    for i in range(n):
        cm = int(cmax[i])
        if cm == 0:
            continue
        shift = spec.norm_nb - (cm.bit_length() - 1)       # L
        ci = c[i] << shift if shift >= 0 else np_rshift_round(c[i], -shift)
        v = int((ci * ci).sum())
        d = math.isqrt(spec.norm_q * v)
        dfl = spec.std_floor
        if shift >= 0:
            dfl = dfl << shift if dfl.bit_length() + shift <= 62 else 1 << 62
        else:
            dfl = rshift_round(dfl, -shift)
        rcp = (1 << spec.norm_r) // max(d, dfl)
        out[i] = np_rshift_round(ci * (spec.norm_s * rcp), spec.norm_r - Z_FRAC)
    return out


class Template:
    """The running-average beat (Q24, int32 in the C) and the int8 model input of each beat."""

    def __init__(self, spec: FrontEndSpec):
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        self.t: np.ndarray | None = None
        self.refused = 0             # regular beats in a row kept out of the template by the gate

    def inputs(self, z: np.ndarray, regular: bool) -> np.ndarray:
        """int8 beat input (W, C) of one beat's Q24 z-scores; the template moves on (unless the gate,
        ``template_gate_sum``, keeps a beat far from it out: at most ``template_beats`` in a row)."""
        s = self.spec
        chans = [z] if s.beat_channel else []
        if s.template_beats:
            if self.t is None:
                self.t = z.copy()
            d = z - self.t
            chans.append(d)
            if regular or s.template_all:
                if (s.template_gate_sum and int(np.abs(d).sum()) > s.template_gate_sum
                        and self.refused < s.template_beats):
                    self.refused += 1
                else:
                    self.refused = 0
                    self.t = self.t + np_div_round(d, s.template_beats)
        v = np.stack(chans, axis=1)
        if s.grid_q is not None:
            v = s.grid_q.np(v).astype(np.int64)
        return s.beat_q.np(v)


def np_div_round(a: np.ndarray, b: int) -> np.ndarray:
    mag = (np.abs(a) + b // 2) // b
    return np.where(a >= 0, mag, -mag)


def quantize_rr(feats: list[int], spec: FrontEndSpec) -> np.ndarray:
    if spec.rr_q is None:
        return np.zeros(0, np.int8)
    return np.array([spec.rr_q(f) for f in feats], dtype=np.int8)


# --------------------------------------------------------------------------------------------
# Streaming, sample by sample
# --------------------------------------------------------------------------------------------

@dataclass
class StreamBeat:
    """One classified beat: R-peak index (180 Hz), class, int8 logits, pre-RR (samples, clamped)."""

    r_peak: int
    cls: int
    logits: np.ndarray
    pre_rr: int
    emitted: int = -1            # the ADC sample (0-based) whose push returned it


@dataclass
class _Pending:
    r: int
    rr: int
    rr_q: np.ndarray
    regular: bool


@dataclass
class Counters:
    detected: int = 0            # R peaks from the detector (after the monotonicity check)
    ignored: int = 0             # R peaks not after the previous one
    no_rr: int = 0               # first R peak after (re)start: no RR, not classified
    before_start: int = 0        # window would start before sample 0
    queue_full: int = 0
    too_late: int = 0            # window already left the ring
    classified: int = 0


class StreamFrontEnd:
    """The whole on-device chain, one ADC sample per :meth:`push` (the C's ``PREFIX_stream_push``;
    with two leads, one sample of each lead per push, ``PREFIX_stream_push_leads``). The detector
    reads the first lead; every lead has its own rate converter, band-pass, ring and template."""

    def __init__(self, spec: FrontEndSpec, graph):
        self.spec, self.graph = spec, graph
        self.rate = [spec.rate.stream() for _ in range(spec.leads)]
        self.filter = [IntBandpass(spec.bandpass) for _ in range(spec.leads)]
        self.qrs = QRSDetector(spec.adc_hz, spec.adc_gain, params=spec.qrs)
        self.rr = RRState(spec)
        self.template = [Template(spec) for _ in range(spec.leads)]
        self.reset()

    def reset(self) -> None:
        for part in (*self.rate, *self.filter, self.qrs, self.rr, *self.template):
            part.reset()
        self.ring = [[0] * self.spec.ring_n for _ in range(self.spec.leads)]
        self.n = 0                       # filtered samples
        self.adc_n = 0                   # ADC samples
        self.pending: deque[_Pending] = deque()
        self.counters = Counters()

    def push(self, sample) -> StreamBeat | None:
        """One ADC sample (an int; with two leads, one int per lead)."""
        s = self.spec
        samples = [sample] if s.leads == 1 else list(sample)
        if len(samples) != s.leads:
            raise EdgeECGError(f"the front end reads {s.leads} leads; push got {len(samples)} samples")
        xs = [rate.push(v) for rate, v in zip(self.rate, samples)]      # checks that each fits int16
        for k, x in enumerate(xs[0]):
            for lead in range(s.leads):
                self.ring[lead][self.n % s.ring_n] = self.filter[lead].step(xs[lead][k])
            self.n += 1
            self.qrs.step(x)            # the detector takes the first lead's 180 Hz sample
        r = self.qrs.pop()
        if r is not None:
            self._on_r_peak(r)
        out = self._classify_ready()
        if out is not None:
            out.emitted = self.adc_n
        self.adc_n += 1
        return out

    def _on_r_peak(self, r: int) -> None:
        on_r_peak(r, self.rr, self.counters, self.pending, self.spec)

    def _classify_ready(self) -> StreamBeat | None:
        s = self.spec
        while self.pending and self.pending[0].r + s.after <= self.n:
            p = self.pending.popleft()
            start = p.r - s.before
            if start < self.n - s.ring_n:
                self.counters.too_late += 1
                continue
            channels = []
            for ring, tmpl in zip(self.ring, self.template):        # each lead's channels, in turn
                w = np.array([[ring[(start + j) % s.ring_n] for j in range(s.window)]], dtype=np.int64)
                channels.append(tmpl.inputs(window_z(w, s)[0], p.regular))
            beat = np.concatenate(channels, axis=1)
            logits, cls = classify(self.graph, beat[None], p.rr_q[None])
            self.counters.classified += 1
            return StreamBeat(p.r, int(cls[0]), logits[0], p.rr)
        return None


def classify(graph, beat_q: np.ndarray, rr_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 logits and classes of int8 inputs (the integer reference of the generated C's
    ``PREFIX_classify``)."""
    from edgeecg.quant.reference import classify_int8

    if len(beat_q) == 0:
        return np.zeros((0, int(np.prod(graph.shapes[graph.output][1:]))), np.int8), np.zeros(0, np.int64)
    return classify_int8(graph, beat_q, rr_q if graph.rr_input is not None else None)


# --------------------------------------------------------------------------------------------
# Whole record: the same outputs, computed fast
# --------------------------------------------------------------------------------------------

@dataclass
class RecordResult:
    """What :class:`StreamFrontEnd` returns for a whole record, plus what scoring needs."""

    r_peak: np.ndarray           # classified beats (int64, 180 Hz)
    cls: np.ndarray
    logits: np.ndarray           # (n, classes) int8
    pre_rr: np.ndarray
    emitted: np.ndarray          # ADC sample (0-based) whose push returned each beat
    beat_q: np.ndarray           # (n, W, C) int8 model inputs
    rr_q: np.ndarray             # (n, K) int8
    detections: np.ndarray       # every R peak the detector returned by the end (180 Hz)
    filtered: np.ndarray         # the band-passed signal (Q_G, int64; (n, leads) with two leads)
    counters: Counters


def detector_emissions(adc: np.ndarray, spec: FrontEndSpec) -> tuple[np.ndarray, np.ndarray]:
    """R peaks and the ADC sample at which ``QRSDetector.push`` returns each (beats still queued
    at the end are left out, as a stream that stops there never returns them)."""
    beats, confirmed = detect(adc, spec.adc_hz, spec.qrs, confirmed=True)
    emitted = np.empty(len(beats), np.int64)
    last = -1
    for i, c in enumerate(spec.rate.produced_at(confirmed).tolist()):
        last = max(c, last + 1)
        emitted[i] = last
    keep = emitted < len(adc)
    return beats[keep], emitted[keep]


def on_r_peak(r: int, rr: RRState, c: Counters, pending: deque, spec: FrontEndSpec) -> None:
    """A detected R peak (180 Hz index ``r``): ignored if not after the last one, else its RR
    features computed and the beat queued for classification (unless it is the first, too close to
    the start, or the queue is full). The streaming path and :func:`run_record` both call this."""
    if rr.have_last and r <= rr.last_r:
        c.ignored += 1
        return
    c.detected += 1
    if not rr.have_last:
        rr.have_last, rr.last_r = True, r
        c.no_rr += 1
        return
    v = min(r - rr.last_r, RR_CLAMP)
    rr.last_r = r
    feats, regular = rr.interval(v)
    if r - spec.before < 0:
        c.before_start += 1
    elif len(pending) >= spec.pend_n:
        c.queue_full += 1
    else:
        pending.append(_Pending(r, v, quantize_rr(feats, spec), regular))


def filter_leads(adc: np.ndarray, spec: FrontEndSpec) -> np.ndarray:
    """The band-passed 180 Hz signal (Q_G, int64) of ADC samples ``(n,)`` (one lead) or ``(n, leads)``:
    ``(m,)`` or ``(m, leads)``."""
    if adc.ndim == 1:
        return IntBandpass(spec.bandpass).run(spec.rate.convert(adc))
    return np.stack([IntBandpass(spec.bandpass).run(spec.rate.convert(adc[:, k])) for k in range(adc.shape[1])], axis=1)


def beat_inputs(filtered: np.ndarray, r: np.ndarray, regular, spec: FrontEndSpec) -> np.ndarray:
    """int8 model inputs ``(n, W, C)`` of the beats at R peaks ``r`` (in classification order, each
    with its pre-RR's regularity): per lead its z-scored window and its difference from that lead's
    template, the leads' channels one after the other (as :func:`extract_beats` orders them)."""
    f = filtered.reshape(len(filtered), -1)
    if len(r) == 0:
        return np.zeros((0, spec.window, spec.channels), np.int8)
    idx = np.asarray(r, dtype=np.int64)[:, None] + np.arange(-spec.before, spec.after)[None, :]
    parts = []
    for lead in range(spec.leads):
        z = window_z(f[:, lead][idx], spec)
        tmpl = Template(spec)
        parts.append(np.stack([tmpl.inputs(z[j], bool(regular[j])) for j in range(len(r))]))
    return np.concatenate(parts, axis=2)


def check_leads(adc, spec: FrontEndSpec, what: str = "ADC samples") -> np.ndarray:
    """``adc`` as ``(n,)`` for one lead or ``(n, leads)``; one line naming ``what`` if its shape does not fit."""
    adc = np.asarray(adc)
    if spec.leads == 1 and adc.ndim != 1:
        raise EdgeECGError(f"{what}: shape {adc.shape}, expected one lead (1-D)")
    if spec.leads > 1 and (adc.ndim != 2 or adc.shape[1] != spec.leads):
        raise EdgeECGError(f"{what}: shape {adc.shape}, expected (n, {spec.leads}): the recipe reads {spec.leads} leads")
    return adc


def run_record(adc, spec: FrontEndSpec, graph, filtered: np.ndarray | None = None) -> RecordResult:
    """Everything :class:`StreamFrontEnd` outputs for ``adc`` (``(n,)``; with two leads ``(n, 2)``)
    pushed sample by sample from a reset, computed with whole-record steps (bit-exact with the
    streaming path and the C)."""
    adc = check_leads(adc, spec)
    s = spec
    if filtered is None:
        filtered = filter_leads(adc, s)
    beats, emitted = detector_emissions(adc if adc.ndim == 1 else adc[:, 0], s)
    rr = RRState(s)
    c = Counters()
    pending: deque[_Pending] = deque()
    out: list[tuple[_Pending, int]] = []
    n_adc = len(adc)
    i, t, k = 0, -1, len(beats)
    while True:
        cand = []
        if i < k:
            cand.append(int(emitted[i]))
        if pending:
            cand.append(max(int(s.rate.produced_at(pending[0].r + s.after - 1)), t + 1))
        if not cand:
            break
        t = min(cand)
        if t >= n_adc:
            break
        n = s.rate.outputs_by(t)
        if i < k and emitted[i] == t:
            on_r_peak(int(beats[i]), rr, c, pending, s)
            i += 1
        while pending and pending[0].r + s.after <= n:
            p = pending.popleft()
            if p.r - s.before < n - s.ring_n:
                c.too_late += 1
                continue
            out.append((p, t))
            break
    c.classified = len(out)
    r_arr = np.array([p.r for p, _ in out], dtype=np.int64)
    beat_q = beat_inputs(filtered, r_arr, [p.regular for p, _ in out], s)
    rr_q = np.stack([p.rr_q for p, _ in out]) if out else np.zeros((0, s.rr_len), np.int8)
    logits, cls = classify(graph, beat_q, rr_q)
    return RecordResult(r_peak=r_arr, cls=cls.astype(np.int64), logits=logits,
                        pre_rr=np.array([p.rr for p, _ in out], dtype=np.int64),
                        emitted=np.array([t for _, t in out], dtype=np.int64), beat_q=beat_q, rr_q=rr_q,
                        detections=beats, filtered=filtered, counters=c)


def reference_inputs(filtered: np.ndarray, r_peaks: np.ndarray, spec: FrontEndSpec):
    """The twin's int8 inputs for given R peaks (e.g. the reference annotations at 180 Hz), with
    the float pipeline's rules: every R peak's RR counts, beat 0 and beats whose window leaves
    the signal are skipped. ``filtered``: :func:`filter_leads`'s output. Returns (kept R peaks,
    beat_q (n, W, C), rr_q (n, K))."""
    s = spec
    r_peaks = np.asarray(r_peaks, dtype=np.int64)
    rr = RRState(s)
    kept, regs, rqs = [], [], []
    for j in range(1, len(r_peaks)):
        v = int(min(max(r_peaks[j] - r_peaks[j - 1], 1), RR_CLAMP))
        feats, regular = rr.interval(v)
        r = int(r_peaks[j])
        if r - s.before >= 0 and r + s.after <= len(filtered):
            kept.append(r)
            regs.append(regular)
            rqs.append(quantize_rr(feats, s))
    kept_arr = np.array(kept, dtype=np.int64)
    if not kept:
        return kept_arr, np.zeros((0, s.window, s.channels), np.int8), np.zeros((0, s.rr_len), np.int8)
    return kept_arr, beat_inputs(filtered, kept_arr, regs, s), np.stack(rqs)
