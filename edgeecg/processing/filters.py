"""Resampling and the causal band-pass filter.

The band-pass is a cascade of second-order sections (biquads) run causally with
:func:`scipy.signal.sosfilt`. A microcontroller runs the same sections sample by sample;
:class:`BiquadCascade` is that per-sample form, and the tests check both give the same output.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """A whole record from ``fs_in`` to ``fs_out`` Hz.

    An integer ratio (360 -> 180 Hz) is the mean of each block of ``fs_in / fs_out`` samples: what
    the device's front end does to its ADC samples at such a rate (:mod:`edgeecg.stream.rate`), so
    the model trains on the signal it will get. Any other ratio is scipy's polyphase resampling (the
    device converts those rates with its own integer polyphase FIR, flat to 40 Hz like this one).
    """
    x = np.asarray(x, dtype=np.float64)
    if fs_in == fs_out:
        return x
    factor = fs_in / fs_out
    if factor > 1 and abs(factor - round(factor)) < 1e-9:
        m = int(round(factor))
        n = len(x) // m
        return x[: n * m].reshape(n, m).mean(axis=1)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator)


def design_bandpass(fs: float, band_hz: tuple[float, float], order: int = 2) -> np.ndarray:
    """Butterworth band-pass as SOS biquads, shape (n_sections, 6)."""
    return sps.butter(order, band_hz, btype="bandpass", fs=fs, output="sos")


def initial_state(sos: np.ndarray, x0: float) -> np.ndarray:
    """Filter state for a signal that has sat at ``x0`` forever (no start-up transient)."""
    return sps.sosfilt_zi(sos) * x0


def causal_filter(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Run the biquad cascade forward in time only, starting in the steady state of ``x[0]``."""
    y, _ = sps.sosfilt(sos, x, zi=initial_state(sos, float(x[0])))
    return y


class BiquadCascade:
    """Sample-by-sample transposed direct-form II biquads: what a device runs per ADC sample."""

    def __init__(self, sos: np.ndarray, state: np.ndarray | None = None):
        self.sos = np.asarray(sos, dtype=np.float64)
        self.state = np.zeros((len(self.sos), 2)) if state is None else np.array(state, dtype=np.float64)

    def step(self, x: float) -> float:
        for k, (b0, b1, b2, _a0, a1, a2) in enumerate(self.sos):
            s1, s2 = self.state[k]
            y = b0 * x + s1
            self.state[k] = (b1 * x - a1 * y + s2, b2 * x - a2 * y)
            x = y
        return x
