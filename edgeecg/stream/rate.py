"""ADC samples at any rate from 100 to 1000 Hz to the model's 180 Hz, in integers: the first step of
the device pipeline (the QRS detector and the stream front end both take its output ``x``).

Two converters, chosen by the ratio (:func:`rate_converter`):

* **Block sum** when ``adc_hz`` is an integer multiple ``M`` of 180 Hz (180, 360, 540, ... Hz): the
  sum of each block of ``M`` samples floor-shifted right by ``k`` (:mod:`edgeecg.stream.decimate`),
  so ``x`` is ``M / 2**k`` ADC counts. This is what the front end did before any other rate existed,
  kept bit for bit. Its anti-alias filter is the block mean (a boxcar): cheap, and weak at some
  frequencies (:func:`response` measures it).
* **Polyphase FIR** for every other rate (125, 128, 250, 256, 500, 512, 1000 Hz, ...): with
  ``180 / adc_hz = L / M`` in lowest terms, the input is (conceptually) up-sampled by ``L``,
  low-pass filtered by a Kaiser-window FIR (pass band to 40 Hz, the model's band; stop band from
  ``min(adc_hz, 180) - 40`` Hz, where aliases and images would land inside 0-40 Hz; 60 dB) and
  down-sampled by ``M``. Only the ``taps`` coefficients of one phase are used per output sample.
  Coefficients are int16 in Q14, each phase's summing exactly to ``2**14`` (unit gain at DC in
  every phase), so ``x = floor(sum(c * adc) / 2**14)`` is in ADC counts (scale 1) and
  ``|x| < 2**16`` for any int16 input (checked when designing: ``sum |c| * 32768 < 2**31``, an
  ``int32`` accumulator in the C).

Streaming (:class:`RateStream`, C: ``PREFIX_rate_push`` in ``PREFIX_qrs.c``): each ADC sample enters a
delay line of ``taps`` samples; the outputs due at that sample (0, 1 or 2 when up-sampling) are
produced with the phase ``p = k M - n L`` of output ``k`` at input ``n``. The delay line starts
filled with the first sample (the steady state of a constant signal, as the filters after it).
Output ``k`` belongs to ADC time ``k M / L`` minus the filter's group delay (:meth:`RateConverter.adc_index`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.stream.decimate import FS, MAX_FACTOR, check_adc, decimate

MIN_HZ, MAX_HZ = 100, 1000     # the ADC rates the front end takes
COEF_FRAC = 14                 # polyphase coefficients in Q14
PASS_HZ = 40.0                 # pass band edge: the model's band-pass ends at 40 Hz
STOP_DB = 60.0                 # Kaiser design attenuation
MAX_UP = 256                   # L at most (phases of the coefficient table)
MAX_TAPS = 64                  # taps per phase at most


def input_shift(factor: int) -> int:
    """Right shift of a block sum of ``factor`` int16 samples so that ``|x| <= 65536`` (M / 2**k <= 2)."""
    if not 1 <= factor <= MAX_FACTOR:
        raise EdgeECGError(f"decimation factor {factor} outside 1..{MAX_FACTOR}")
    return max(0, (factor - 1).bit_length() - 1)


@dataclass(frozen=True)
class RateConverter:
    """How ``adc_hz`` becomes 180 Hz: a block sum (``taps == 0``) or a polyphase FIR."""

    adc_hz: float
    up: int                      # L (1 for a block sum)
    down: int                    # M
    taps: int                    # per phase; 0: block sum of M samples
    coeffs: tuple[int, ...]      # polyphase table, phase-major: coeffs[p * taps + i] = h[p + i * L]
    shift: int                   # floor shift of the block sum or of the FIR accumulator

    @property
    def is_block(self) -> bool:
        return self.taps == 0

    @property
    def scale(self) -> Fraction:
        """``x`` units per ADC count: ``M / 2**k`` for a block sum, 1 for the FIR."""
        return Fraction(self.down, 1 << self.shift) if self.is_block else Fraction(1)

    @property
    def delay_adc(self) -> float:
        """Group delay of the anti-alias filter in ADC samples (the block mean's (M - 1) / 2 is not
        counted: before this module the R peaks were reported at ``r * M``, and still are)."""
        return 0.0 if self.is_block else (self.up * self.taps - 1) / 2 / self.up

    def adc_index(self, r) -> np.ndarray:
        """ADC sample index of 180 Hz sample index(es) ``r``: ``r M`` for a block sum; for the FIR
        ``r M / L`` minus the group delay, rounded half up and at least 0, in integers (the C's
        ``PREFIX_ADC_INDEX`` in ``PREFIX_print.h``)."""
        r = np.asarray(r, np.int64)
        if self.is_block:
            return r * self.down
        num = 2 * r * self.down - (self.up * self.taps - 1) + self.up
        return np.maximum(num // (2 * self.up), 0)

    def produced_at(self, j) -> np.ndarray:
        """The ADC sample (0-based) whose arrival produces 180 Hz output ``j``."""
        j = np.asarray(j, np.int64)
        return (j + 1) * self.down - 1 if self.is_block else (j * self.down) // self.up

    def outputs_by(self, t: int) -> int:
        """How many 180 Hz outputs ADC samples ``0..t`` have produced."""
        if self.is_block:
            return (t + 1) // self.down
        return ((t + 1) * self.up + self.down - 1) // self.down

    def describe(self) -> dict:
        """The conversion for reports (JSON)."""
        if self.is_block:
            return {"kind": "block sum", "adc_hz": self.adc_hz, "factor": self.down, "shift": self.shift}
        return {"kind": "polyphase FIR", "adc_hz": self.adc_hz, "up": self.up, "down": self.down,
                "taps_per_phase": self.taps, "coefficients": len(self.coeffs)}

    def table(self) -> np.ndarray:
        """The polyphase coefficients as an ``(L, taps)`` int64 array."""
        return np.asarray(self.coeffs, np.int64).reshape(self.up, self.taps)

    def convert(self, adc) -> np.ndarray:
        """A whole record of int16 ADC samples to ``x`` at 180 Hz (int64; the same values, one by one,
        as :class:`RateStream`). Bad input is a one-line :class:`EdgeECGError`."""
        if self.is_block:
            return decimate(adc, self.down) >> self.shift      # decimate checks the samples
        x = check_adc(adc)
        n = len(x)
        if not n:
            return np.zeros(0, np.int64)
        n_out = (n * self.up + self.down - 1) // self.down   # outputs k with floor(k M / L) <= n - 1
        table = self.table()
        padded = np.concatenate([np.full(self.taps - 1, x[0], np.int64), x.astype(np.int64)])
        out = np.empty(n_out, np.int64)
        for start in range(0, n_out, 1 << 16):
            k = np.arange(start, min(n_out, start + (1 << 16)), dtype=np.int64)
            pos = k * self.down
            n_k, phase = pos // self.up, pos % self.up
            # sample n_k - i sits at padded[n_k - i + taps - 1]
            idx = n_k[:, None] + (self.taps - 1) - np.arange(self.taps)[None, :]
            out[start:start + len(k)] = (table[phase] * padded[idx]).sum(axis=1) >> self.shift
        return out

    def stream(self) -> RateStream:
        return RateStream(self)


class RateStream:
    """Streaming twin of :meth:`RateConverter.convert`: ``push(sample)`` returns the outputs due (a list)."""

    def __init__(self, conv: RateConverter):
        self.conv = conv
        self.reset()

    def reset(self) -> None:
        self._acc = 0            # block: running sum; FIR: phase k M - n L of the next output
        self._count = 0          # block: samples in the running sum
        self._hist: list[int] = []

    def push(self, sample: int) -> list[int]:
        sample = int(sample)
        if not -32768 <= sample <= 32767:
            raise EdgeECGError(f"ADC sample {sample} does not fit int16")
        c = self.conv
        if c.is_block:
            self._acc += sample
            self._count += 1
            if self._count < c.down:
                return []
            out, self._acc, self._count = self._acc >> c.shift, 0, 0
            return [out]
        if not self._hist:
            self._hist = [sample] * c.taps
        self._hist = self._hist[1:] + [sample]         # oldest first
        out = []
        while self._acc < c.up:
            row = c.coeffs[self._acc * c.taps:(self._acc + 1) * c.taps]
            out.append(sum(h * v for h, v in zip(row, reversed(self._hist))) >> c.shift)
            self._acc += c.down
        self._acc -= c.up
        return out


def _as_rate(adc_hz) -> Fraction:
    try:
        value = float(adc_hz)
    except (TypeError, ValueError):
        raise EdgeECGError(f"ADC rate {adc_hz!r} Hz is not a number") from None
    if not (math.isfinite(value) and MIN_HZ <= value <= MAX_HZ and value.is_integer()):
        raise EdgeECGError(f"ADC rate {adc_hz} Hz: a whole number of Hz from {MIN_HZ} to {MAX_HZ} is supported")
    return Fraction(int(value))


def rate_converter(adc_hz, fs: int = FS) -> RateConverter:
    """The converter from ``adc_hz`` (a whole number of Hz, 100-1000) to ``fs``; a one-line
    :class:`EdgeECGError` otherwise."""
    return _design(_as_rate(adc_hz), fs)


@lru_cache(maxsize=32)
def _design(rate: Fraction, fs: int) -> RateConverter:
    ratio = Fraction(fs) / rate                   # L / M
    if rate % fs == 0:                            # an integer multiple: the block sum
        m = int(rate // fs)
        return RateConverter(float(rate), 1, m, 0, (), input_shift(m))
    up, down = ratio.numerator, ratio.denominator
    if up > MAX_UP:
        raise EdgeECGError(f"ADC rate {float(rate):g} Hz: {fs} / {float(rate):g} = {up} / {down} needs more than "
                           f"{MAX_UP} phases; use a rate whose ratio to {fs} Hz has a smaller numerator")
    from scipy.signal import firwin, kaiserord

    fin = float(rate)
    stop = min(fin, fs) - PASS_HZ
    high = up * fin                                          # the up-sampled rate
    n, beta = kaiserord(STOP_DB, (stop - PASS_HZ) / (high / 2))
    taps = -(-n // up)
    if taps > MAX_TAPS:
        raise EdgeECGError(f"ADC rate {fin:g} Hz needs {taps} taps per phase (at most {MAX_TAPS})")
    h = firwin(up * taps, (PASS_HZ + stop) / 2, window=("kaiser", beta), fs=high) * up
    table = np.round(h.reshape(taps, up).T * (1 << COEF_FRAC)).astype(np.int64)   # (L, taps): h[p + i L]
    for row in table:          # every phase sums to exactly 2**14: unit DC gain, no tone at the phase rate
        row[np.argmax(np.abs(row))] += (1 << COEF_FRAC) - row.sum()
    if int(np.abs(table).sum(axis=1).max()) * 32768 >= 1 << 31 or np.abs(table).max() > 32767:
        raise EdgeECGError(f"ADC rate {fin:g} Hz: the anti-alias filter does not fit int16 / int32")
    return RateConverter(fin, up, down, taps, tuple(int(v) for v in table.ravel()), COEF_FRAC)


def response(conv: RateConverter, freqs_hz) -> np.ndarray:
    """Gain (dB) of the converter's anti-alias filter at ``freqs_hz`` (at the ADC's rate, for input
    frequencies; a component above 90 Hz folds into 0-90 Hz at 180 Hz)."""
    f = np.asarray(freqs_hz, float)
    if conv.is_block:
        w = np.pi * f / conv.adc_hz
        m = conv.down
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where(w == 0, 1.0, np.abs(np.sin(m * w) / (m * np.sin(w))))
    else:
        h = conv.table().T.ravel().astype(float) / (1 << COEF_FRAC) / conv.up   # back to h[j], unit DC gain
        z = np.exp(-2j * np.pi * np.outer(f / (conv.up * conv.adc_hz), np.arange(len(h))))
        g = np.abs(z @ h)
    return 20 * np.log10(np.maximum(g, 1e-12))
