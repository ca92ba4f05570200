"""Beat windows around R-peaks and RR-interval features.

``realtime`` mode is causal: a beat's features use only the past RR intervals and its window
ends ``after`` samples past the R-peak, so a device can classify it that long after the beat.
``diagnostic`` mode also uses the next RR interval (offline analysis of a whole recording).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeecg.config import DataConfig
from edgeecg.io.wfdb_records import Record
from edgeecg.processing.aami import aami_labels
from edgeecg.processing.filters import causal_filter, design_bandpass, resample

REALTIME_RR_FEATURES = ("pre_rr", "local_rr", "avg_rr", "pre_over_avg", "local_over_avg", "pre_over_local")
DIAGNOSTIC_RR_FEATURES = REALTIME_RR_FEATURES + ("post_rr", "post_over_avg", "post_over_pre")
STD_FLOOR_MV = 0.05   # beats flatter than this are not blown up to unit variance


def rr_feature_names(mode: str) -> tuple[str, ...]:
    return REALTIME_RR_FEATURES if mode == "realtime" else DIAGNOSTIC_RR_FEATURES


@dataclass
class Beats:
    """Beats of one record: windows ``x`` (n, channels, window), RR features ``rr`` (n, k), labels ``y``."""

    x: np.ndarray
    rr: np.ndarray
    y: np.ndarray
    sample: np.ndarray   # R-peak position at the canonical rate


def _trailing_mean(values: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last ``n`` values up to and including each position (causal)."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - n, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def rr_features(r_peaks: np.ndarray, fs: float, cfg: DataConfig) -> np.ndarray:
    """RR features (seconds and ratios) of beats 1..n-1 (beat 0 has no previous RR).

    Row ``i`` belongs to beat ``i + 1``. In diagnostic mode the last beat's ``post_rr`` is NaN.
    """
    rr = np.diff(r_peaks).astype(np.float64) / fs
    local = _trailing_mean(rr, cfg.local_rr_beats)
    avg = _trailing_mean(rr, cfg.avg_rr_beats)
    feats = [rr, local, avg, rr / avg, local / avg, rr / local]
    if cfg.mode == "diagnostic":
        post = np.append(rr[1:], np.nan)
        feats += [post, post / avg, post / rr]
    return np.stack(feats, axis=1)


def normalise_windows(windows: np.ndarray) -> np.ndarray:
    """Per-beat zero mean and unit standard deviation (the device does the same per window)."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    std = np.maximum(centred.std(axis=1, keepdims=True), STD_FLOOR_MV)
    return centred / std


def round_to_input_grid(x, step: float):
    """The int8 beat input the device computes: ``step`` times ``clip(round(x / step), -128, 127)``.

    Training and evaluating on these values means the float model sees exactly what the int8
    model gets, so quantizing the beat input costs nothing. ``step=0`` returns ``x`` unchanged.
    ``x`` is a numpy array or a torch tensor (training rounds its augmented beats with it too).
    """
    if not step:
        return x
    return (x / step).round().clip(-128, 127) * step


def template_channel(windows: np.ndarray, time_constant: int) -> np.ndarray:
    """Each beat minus the exponential running average of the beats before it (causal).

    The average is the patient's own "usual beat", so this channel shows how a beat differs from
    that patient's normal morphology. A device keeps one window-sized buffer for it.
    """
    alpha = 1.0 / time_constant
    out = np.empty_like(windows)
    template = windows[0].copy()
    for i, w in enumerate(windows):
        out[i] = w - template
        template += alpha * (w - template)
    return out


def preprocess_signal(signal: np.ndarray, fs_in: float, cfg: DataConfig) -> np.ndarray:
    """Resample to the canonical rate, then causal band-pass."""
    x = resample(signal, fs_in, cfg.fs)
    return causal_filter(x, design_bandpass(cfg.fs, cfg.band_hz, cfg.filter_order))


def extract_beats(record: Record, cfg: DataConfig) -> Beats:
    """Filtered, normalised beat windows with RR features and AAMI labels for one record."""
    x = preprocess_signal(record.signal, record.fs, cfg)
    labels = aami_labels(record.ann_symbols)
    is_beat = labels >= 0
    r = np.round(record.ann_samples[is_beat] * (cfg.fs / record.fs)).astype(np.int64)
    y = labels[is_beat]
    if len(r) < 3:
        return Beats(np.zeros((0, cfg.channels, cfg.window), np.float32),
                     np.zeros((0, len(rr_feature_names(cfg.mode))), np.float32),
                     np.zeros(0, np.int64), np.zeros(0, np.int64))
    rr = rr_features(r, cfg.fs, cfg)
    r, y = r[1:], y[1:]
    keep = (r - cfg.before >= 0) & (r + cfg.after <= len(x)) & np.all(np.isfinite(rr), axis=1)
    r, y, rr = r[keep], y[keep], rr[keep]
    idx = r[:, None] + np.arange(-cfg.before, cfg.after)[None, :]
    windows = normalise_windows(x[idx])
    channels = [windows] + ([template_channel(windows, cfg.template_beats)] if cfg.template_beats else [])
    x = round_to_input_grid(np.stack(channels, axis=1).astype(np.float32), cfg.input_step)
    return Beats(x, rr.astype(np.float32), y, r)
