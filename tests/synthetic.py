"""Small synthetic WFDB records (written with wfdb.wrsamp / wfdb.wrann) so tests need no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb


def _bump(t: np.ndarray, centre: float, width: float, height: float) -> np.ndarray:
    return height * np.exp(-0.5 * ((t - centre) / width) ** 2)


def synthetic_ecg(n_beats: int = 80, fs: float = 360.0, v_every: int = 5, a_every: int = 7,
                  seed: int = 0, run: range = range(0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two leads (MLII-like, V1-like) with N beats, premature narrow beats (``A``) and wide
    ventricular beats (``V``); the beats in ``run`` are a run of supraventricular tachycardia (``A``,
    each as premature as a lone ``A``). Returns (signal (n, 2) in mV, R-peak samples, symbols)."""
    rng = np.random.default_rng(seed)
    peaks, symbols, t_r = [], [], 1.0
    for i in range(n_beats):
        sym = "V" if v_every and i % v_every == v_every - 1 else "A" if a_every and i % a_every == a_every - 1 else "N"
        sym = "A" if i in run else sym
        rr = 0.8 + 0.03 * rng.standard_normal()
        t_r += rr * (0.65 if sym in "AV" else 1.0)
        peaks.append(t_r)
        symbols.append(sym)
    duration = t_r + 1.5
    t = np.arange(int(duration * fs)) / fs
    x = 0.05 * np.sin(2 * np.pi * 0.3 * t) + 0.01 * rng.standard_normal(t.size)
    for tr, sym in zip(peaks, symbols):
        if sym == "V":
            x += _bump(t, tr, 0.035, 1.6) - _bump(t, tr + 0.08, 0.05, 0.6)
        else:
            x += _bump(t, tr - 0.16, 0.02, 0.15) + _bump(t, tr, 0.01, 1.0) + _bump(t, tr + 0.25, 0.04, 0.3)
    signal = np.stack([x, -0.5 * x], axis=1)
    return signal, np.round(np.array(peaks) * fs).astype(np.int64), np.array(symbols)


def write_record(directory: Path, name: str, fs: float = 360.0, fmt: str = "212", signal=None,
                 with_annotations: bool = True, sig_names=("MLII", "V1"), symbols=None, **kwargs) -> Path:
    """Write ``name.hea``, ``name.dat`` and (optionally) ``name.atr`` into ``directory``.
    ``symbols`` replaces the annotation symbols (e.g. only rhythm or noise annotations)."""
    sig, peaks, beat_symbols = synthetic_ecg(fs=fs, **kwargs)
    if signal is not None:
        sig = signal
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=list(sig_names), p_signal=sig,
                fmt=[fmt, fmt], adc_gain=[200.0, 200.0], baseline=[0, 0], write_dir=str(directory))
    if with_annotations:
        labels = beat_symbols if symbols is None else [symbols[i % len(symbols)] for i in range(len(peaks))]
        wfdb.wrann(name, "atr", sample=peaks, symbol=list(labels), write_dir=str(directory))
    return Path(directory)
