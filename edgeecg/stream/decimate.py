"""Integer decimation of ADC samples to the model rate: the sum of each block of M samples.

The output of block k is ``sum(adc[k*M : k*M + M])`` (int32, exact; divided by M it is the block
mean, a boxcar anti-alias filter followed by keeping one sample in M). Only integer ratios
``M = adc_hz / fs`` are supported; anything else is an :class:`~edgeecg.errors.EdgeECGError`.
For int16 input and M <= 65536 the sum fits int32.
"""

from __future__ import annotations

import numpy as np

from edgeecg.errors import EdgeECGError

FS = 180            # the model rate (Hz)
MAX_FACTOR = 64     # largest supported decimation factor (see edgeecg.stream.qrs: input scaling)


def decimation_factor(adc_hz, fs: int = FS) -> int:
    """``adc_hz // fs`` when it divides exactly (and is within 1..MAX_FACTOR), else a one-line error."""
    try:
        ratio = float(adc_hz) / float(fs)
    except (TypeError, ValueError):
        raise EdgeECGError(f"ADC rate {adc_hz!r} Hz is not a number") from None
    m = int(round(ratio))
    if not np.isfinite(ratio) or m < 1 or abs(ratio - m) > 1e-9 or abs(float(adc_hz) - m * fs) > 1e-6:
        raise EdgeECGError(f"ADC rate {adc_hz} Hz is not an integer multiple of the model rate {fs} Hz; "
                           f"resample to a multiple of {fs} Hz first")
    if m > MAX_FACTOR:
        raise EdgeECGError(f"ADC rate {adc_hz} Hz is {m} x {fs} Hz; at most {MAX_FACTOR} x is supported")
    return m


def decimate(adc, factor: int) -> np.ndarray:
    """Block sums of ``factor`` consecutive samples (int64 array; values fit int32). A trailing
    incomplete block is dropped (a streaming decimator has not produced it yet)."""
    x = np.asarray(adc)
    if x.ndim != 1:
        raise EdgeECGError(f"expected a 1-D array of ADC samples, got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise EdgeECGError(f"ADC samples must be integers (int16 counts), got dtype {x.dtype}")
    if x.size and (int(x.min()) < -32768 or int(x.max()) > 32767):
        raise EdgeECGError("ADC samples must fit int16 (-32768..32767)")
    n = x.size // factor
    return x[: n * factor].astype(np.int64).reshape(n, factor).sum(axis=1)


class Decimator:
    """Streaming twin of :func:`decimate`: ``push(sample)`` returns the block sum every ``factor``-th call."""

    def __init__(self, factor: int):
        if not 1 <= factor <= MAX_FACTOR:
            raise EdgeECGError(f"decimation factor {factor} outside 1..{MAX_FACTOR}")
        self.factor = factor
        self.reset()

    def reset(self) -> None:
        self._acc = 0
        self._count = 0

    def push(self, sample: int) -> int | None:
        """One int16 ADC sample in (else a one-line error); the block sum out every ``factor``-th call."""
        sample = int(sample)
        if not -32768 <= sample <= 32767:
            raise EdgeECGError(f"ADC sample {sample} does not fit int16")
        self._acc += sample
        self._count += 1
        if self._count < self.factor:
            return None
        out, self._acc, self._count = self._acc, 0, 0
        return out
