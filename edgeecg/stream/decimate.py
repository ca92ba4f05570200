"""The block sum: :mod:`edgeecg.stream.rate`'s converter for an ADC rate that is an integer multiple
``M`` of the model rate (180 Hz).

The output of block k is ``sum(adc[k*M : k*M + M])`` (int32, exact; divided by M it is the block
mean, a boxcar anti-alias filter followed by keeping one sample in M). For int16 input and
M <= 65536 the sum fits int32.
"""

from __future__ import annotations

import numpy as np

from edgeecg.errors import EdgeECGError

FS = 180            # the model rate (Hz)
MAX_FACTOR = 64     # largest block (see edgeecg.stream.rate.input_shift)


def check_adc(adc) -> np.ndarray:
    """``adc`` as a 1-D integer array of int16 values, else a one-line :class:`EdgeECGError`."""
    x = np.asarray(adc)
    if x.ndim != 1:
        raise EdgeECGError(f"expected a 1-D array of ADC samples, got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise EdgeECGError(f"ADC samples must be integers (int16 counts), got dtype {x.dtype}")
    if x.size and (int(x.min()) < -32768 or int(x.max()) > 32767):
        raise EdgeECGError("ADC samples must fit int16 (-32768..32767)")
    return x


def decimate(adc, factor: int) -> np.ndarray:
    """Block sums of ``factor`` consecutive samples (int64 array; values fit int32). A trailing
    incomplete block is dropped (a streaming decimator has not produced it yet)."""
    x = check_adc(adc)
    n = x.size // factor
    return x[: n * factor].astype(np.int64).reshape(n, factor).sum(axis=1)
