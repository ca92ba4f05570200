"""Beat windows around R-peaks and RR-interval features.

``realtime`` mode is causal: a beat's features use only the past RR intervals and its window
ends ``after`` samples past the R-peak, so a device can classify it that long after the beat.
``diagnostic`` mode may also use the next RR interval (offline analysis of a whole recording).
Which RR features a model gets is ``DataConfig.rr_features`` (names in :data:`RR_FEATURES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from edgeecg.config import P_WAVE_FEATURES, STRIP_RR_FEATURES, DataConfig, rr_feature_names
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import Record, read_records, second_lead_name
from edgeecg.processing.aami import aami_labels
from edgeecg.processing.filters import causal_filter, design_bandpass, resample

STD_FLOOR_MV = 0.05   # beats flatter than this are not blown up to unit variance


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


def _band(cfg: DataConfig) -> tuple[Fraction, Fraction]:
    return _fractions(tuple(cfg.regular_rr_band))


@lru_cache(maxsize=8)
def _fractions(band: tuple[float, ...]) -> tuple[Fraction, ...]:
    """The band as exact fractions: made once per band, not on every comparison (3 per beat)."""
    return tuple(Fraction(b).limit_denominator(100) for b in band)


def in_band(interval, estimate, cfg: DataConfig) -> bool:
    """``lo * estimate <= interval <= hi * estimate`` with the band as exact fractions (4/5, 6/5):
    the comparison the device makes in integers, so that ties fall the same way."""
    lo, hi = _band(cfg)
    return lo.denominator * interval >= lo.numerator * estimate and hi.denominator * interval <= hi.numerator * estimate


def regular_rr(rr: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """The patient's regular RR interval *before* each beat, robust to ectopic beats and pauses.

    The estimate is the mean of the last ``regular_rr_beats`` RR intervals that fell within
    ``regular_rr_band`` of the estimate (Pan & Tompkins' "RR average 2"). An interval outside the
    band moves the estimate only by ``regular_rr_follow`` of the difference, so a premature beat
    or a pause barely shifts it while a lasting change of rhythm is followed within tens of beats.
    Entry ``i`` uses intervals ``0..i-1`` only: the estimate a device holds when beat ``i`` arrives.
    ``rr`` in any unit (the device uses samples); the estimate is in the same unit.
    """
    return regular_rr_steps(rr, cfg)[0]


def regular_rr_steps(rr: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`regular_rr`, and per interval whether it fell in the band of the estimate before it."""
    out = np.empty(len(rr))
    regular = np.zeros(len(rr), bool)
    if not len(rr):
        return out, regular
    recent = [float(rr[0])]
    estimate = float(rr[0])
    for i, v in enumerate(rr):
        out[i] = estimate
        recent, estimate, regular[i] = regular_rr_step(recent, estimate, float(v), cfg)
    return out, regular


def regular_rr_step(recent: list[float], estimate: float, interval: float,
                    cfg: DataConfig) -> tuple[list[float], float, bool]:
    """One interval into the regular-RR estimate: an interval in the band joins the last
    ``regular_rr_beats`` and the estimate is their mean; one outside it moves the estimate by
    ``regular_rr_follow`` of the difference. Returns the recent intervals, the estimate and whether
    the interval was in the band."""
    if in_band(interval, estimate, cfg):
        recent = (recent + [interval])[-cfg.regular_rr_beats:]
        return recent, float(np.mean(recent)), True
    return recent, estimate + cfg.regular_rr_follow * (interval - estimate), False


# A run of early beats goes on while each interval stays below this fraction of its anchor.
RUN_KEEP = Fraction(17, 20)


def run_anchor(rr: np.ndarray, estimate: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """The rhythm a run of early beats interrupted, per interval (same unit as ``rr``).

    A run starts at an interval below the regular-RR band of the estimate before it
    (``regular_rr_band[0] * estimate``) and takes that estimate as its anchor; it goes on while
    each interval stays below :data:`RUN_KEEP` of the anchor (checked first: a run going on is never
    re-anchored; both comparisons are strict). Within a run the anchor stays put,
    while the regular-RR estimate follows the run (by ``regular_rr_follow``, then by joining it),
    so a long run of supraventricular tachycardia stays early against the anchor where it stops
    being early against the estimate (svdb/865, question 40 of training/README.md). Outside a run
    it is the estimate itself. A gradual speed-up starts no run: no interval falls out of the band.
    """
    lo = _band(cfg)[0]
    out = np.array(estimate, dtype=np.float64)
    anchor, in_run = 0.0, False
    for i, (v, est) in enumerate(zip(rr, estimate)):
        if in_run and RUN_KEEP.denominator * v < RUN_KEEP.numerator * anchor:
            pass
        elif lo.denominator * v < lo.numerator * est:
            anchor, in_run = float(est), True
        else:
            in_run = False
        if in_run:
            out[i] = anchor
    return out


def regular_spread(rr: np.ndarray, estimate: np.ndarray, regular: np.ndarray, n: int) -> np.ndarray:
    """Mean distance of the last ``n`` regular intervals (``regular``, from :func:`regular_rr_steps`)
    from the estimate ``estimate`` *before* each beat: how much this patient's own regular rhythm
    varies (same unit as ``rr``). A beat 7 % early is premature in a metronomic patient and not in
    one with sinus arrhythmia."""
    out = np.empty(len(rr))
    recent: list[float] = []
    for i, v in enumerate(rr):
        out[i] = float(np.mean(recent)) if recent else 0.0
        if regular[i]:
            recent = (recent + [abs(float(v) - float(estimate[i]))])[-n:]
    return out


def irregularity(rr: np.ndarray, n: int) -> np.ndarray:
    """Mean absolute difference of successive RR intervals over the ``n`` differences *before* each
    interval (0 for the first): high in atrial fibrillation, where every beat looks premature."""
    diffs = np.abs(np.diff(rr, prepend=rr[:1]))
    csum = np.concatenate([[0.0], np.cumsum(diffs)])
    idx = np.arange(len(rr))
    start = np.maximum(idx - n, 0)
    return (csum[idx] - csum[start]) / np.maximum(idx - start, 1)


IRREGULAR_BEATS, IRREGULAR_BAND = 32, 0.12     # the irregular_fraction feature's window and band


def irregular_fraction(rr: np.ndarray, estimate: np.ndarray, n: int = IRREGULAR_BEATS,
                       band: float = IRREGULAR_BAND) -> np.ndarray:
    """Share of the ``n`` intervals *before* each interval (the first: its own) that were more than
    ``band`` away from the regular-RR estimate of their time: near 1 through atrial fibrillation,
    near 0 in sinus rhythm with an occasional premature beat (training/README.md, row 30)."""
    off = (np.abs(rr / estimate - 1.0) > band).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(off)])
    idx = np.arange(len(rr))
    start = np.maximum(idx - n, 0)
    return np.where(idx > 0, (csum[idx] - csum[start]) / np.maximum(idx - start, 1), off[0] if len(rr) else 0.0)


def rr_features(r_peaks: np.ndarray, fs: float, cfg: DataConfig) -> np.ndarray:
    """The RR features ``cfg.rr_features`` (seconds and ratios) of beats 1..n-1 (beat 0 has no RR).

    Row ``i`` belongs to beat ``i + 1``; ``pre`` is the interval ending at that beat, ``prev`` the one
    before it (the first beat's own), ``post`` the next one (diagnostic mode; NaN for the last beat).
    The P-wave features (:data:`~edgeecg.config.P_WAVE_FEATURES`) are read off the beat windows, not the
    intervals: their columns are 0 here, and :func:`extract_beats` fills them in (:func:`p_wave_features`).
    """
    samples = np.diff(r_peaks).astype(np.float64)
    pre = samples / fs
    prev = older_interval(pre, 1)
    local = _trailing_mean(pre, cfg.local_rr_beats)
    avg = _trailing_mean(pre, cfg.avg_rr_beats)
    estimate, in_band_flags = regular_rr_steps(samples, cfg)    # on whole samples, as the device does
    regular = estimate / fs
    post = np.append(pre[1:], np.nan)
    values = {}
    if {"pre_over_anchor", "prev_over_anchor"} & set(cfg.rr_features):     # a run of early beats
        anchor = run_anchor(samples, estimate, cfg) / fs
        values |= {"pre_over_anchor": pre / anchor, "prev_over_anchor": prev / anchor}
    if "pre_z_regular" in cfg.rr_features:   # how early, in units of the patient's own regular spread
        spread = regular_spread(samples, estimate, in_band_flags, cfg.regular_rr_beats) / fs
        values["pre_z_regular"] = np.clip((pre - regular) / (spread + regular / 64), -16, 16)
    values |= {
        "pre_rr": pre, "prev_rr": prev, "local_rr": local, "avg_rr": avg, "regular_rr": regular,
        "irregularity": irregularity(pre, cfg.irregularity_beats) / regular,
        "irregular_fraction": irregular_fraction(samples, estimate),
        "pre_over_avg": pre / avg, "local_over_avg": local / avg, "pre_over_local": pre / local,
        "pre_over_regular": pre / regular, "prev_over_regular": prev / regular, "pre_over_prev": pre / prev,
        "post_rr": post, "post_over_avg": post / avg, "post_over_pre": post / pre,
        "post_over_regular": post / regular,
    }
    for k, name in enumerate(STRIP_RR_FEATURES, start=2):     # the rhythm strip
        values[name] = older_interval(pre, k) / regular
    for name in P_WAVE_FEATURES:      # measured on the windows: extract_beats fills them in (p_wave_features)
        values[name] = np.zeros_like(pre)
    return np.stack([values[name] for name in cfg.rr_features], axis=1)


# Where the P wave is: from 0.25 s to 0.075 s before the R peak (the PR interval ends at the QRS onset).
P_WAVE_SECONDS = (0.25, 0.075)
P_WAVE_HISTORY = 32     # the patient's beats before this one each feature is measured against


def trailing(values: np.ndarray, n: int, statistic=np.median) -> np.ndarray:
    """``statistic`` of the ``n`` values before each one (the first: its own): causal, as a device keeps it."""
    return np.array([statistic(values[max(0, i - n):i] if i else values[:1]) for i in range(len(values))])


def p_wave_region(cfg: DataConfig) -> slice:
    """The window's samples between :data:`P_WAVE_SECONDS` before the R peak (index ``cfg.before``)."""
    start, end = (cfg.before - int(round(s * cfg.fs)) for s in P_WAVE_SECONDS)
    return slice(max(start, 0), max(end, 1))


def p_wave_measures(windows: np.ndarray, diff: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per beat, over the P-wave stretch (:func:`p_wave_region`): the mean absolute difference from the
    template, and the correlation of the beat's stretch with the template's. ``windows``: the normalised
    beats; ``diff``: each minus the patient's template (:func:`template_channel`)."""
    region = p_wave_region(cfg)
    beat, template = windows[:, region], (windows - diff)[:, region]
    p_diff = np.abs(diff[:, region]).mean(axis=1)
    b = beat - beat.mean(axis=1, keepdims=True)
    t = template - template.mean(axis=1, keepdims=True)
    p_corr = (b * t).sum(axis=1) / np.maximum(np.sqrt((b * b).sum(axis=1) * (t * t).sum(axis=1)), 1e-6)
    return p_diff, p_corr


def p_wave_features(windows: np.ndarray, diff: np.ndarray, cfg: DataConfig) -> dict[str, np.ndarray]:
    """:data:`~edgeecg.config.P_WAVE_FEATURES` of one record's beats in time order (arguments as
    :func:`p_wave_measures`).

    ``p_diff_rel``: the mean absolute difference from the template over the P-wave stretch, over its
    median in the patient's 32 beats before; ``p_corr_rel``: the correlation of the beat's stretch with
    the template's, less its median in those beats. Both are relative to the patient's own history,
    so a lead or a patient whose P wave is small or noisy is not abnormal for that alone."""
    p_diff, p_corr = p_wave_measures(windows, diff, cfg)
    return {"p_diff_rel": p_diff / np.maximum(trailing(p_diff, P_WAVE_HISTORY), 1e-3),
            "p_corr_rel": p_corr - trailing(p_corr, P_WAVE_HISTORY)}


def older_interval(pre: np.ndarray, k: int) -> np.ndarray:
    """The k-th interval before each beat's own (k = 1: the previous one); before the first interval
    it stands in for the ones the record does not have, as the device's ring starts."""
    return np.concatenate([np.repeat(pre[:1], k), pre[:-k]])[:len(pre)]


def centred_windows(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window less its mean, and its standard deviation floored at :data:`STD_FLOOR_MV` (n,)."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    return centred, np.maximum(centred.std(axis=1), STD_FLOOR_MV)


def normalise_windows(windows: np.ndarray) -> np.ndarray:
    """Per-beat zero mean and unit standard deviation (the device does the same per window)."""
    centred, std = centred_windows(windows)
    return centred / std[:, None]


SCALE_BEATS = 16       # time constant (beats) of the patient's usual spread under [data] scale = "patient"
SCALE_CLIP = 16.0      # in those units: an artefact many times the usual beat's size is not passed on unbounded


def patient_scale(windows: np.ndarray, update: np.ndarray) -> np.ndarray:
    """Per-beat zero mean, over the spread of the patient's usual beat instead of the beat's own
    (``[data] scale = "patient"``, causal): the running mean, time constant :data:`SCALE_BEATS`, of the
    standard deviations of the earlier beats that ``update`` marks (``extract_beats``: those with a regular
    RR); the first beat's own spread starts it. A beat twice the usual size stays twice as large, which the
    per-beat z-score (:func:`normalise_windows`) hides; a gain common to the whole record still cancels."""
    centred, std = centred_windows(windows)
    if not len(centred):
        return centred
    usual = np.empty_like(std)
    level = std[0]
    for i, (s, moves) in enumerate(zip(std, update)):
        usual[i] = level
        if moves:
            level += (s - level) / SCALE_BEATS
    return np.clip(centred / usual[:, None], -SCALE_CLIP, SCALE_CLIP)


def round_to_input_grid(x, step: float):
    """The int8 beat input the device computes: ``step`` times ``clip(round(x / step), -128, 127)``.

    Training and evaluating on these values means the float model sees exactly what the int8
    model gets, so quantizing the beat input costs nothing. ``step=0`` returns ``x`` unchanged.
    ``x`` is a numpy array or a torch tensor (training rounds its augmented beats with it too).
    """
    if not step:
        return x
    return (x / step).round().clip(-128, 127) * step


def template_channel(windows: np.ndarray, time_constant: int, update: np.ndarray | None = None,
                     gate: float = 0.0) -> np.ndarray:
    """Each beat minus the exponential running average of the beats before it (causal).

    The average is the patient's own "usual beat", so this channel shows how a beat differs from
    that patient's normal morphology. A device keeps one window-sized buffer for it. ``update``
    (bool per beat): only these beats move the average (e.g. the beats with a regular RR).
    ``gate`` > 0: of those, only beats whose mean absolute difference from the average is at most
    ``gate`` (z-score units) move it, so a run of regular ectopic beats (ventricular bigeminy that
    looks regular) cannot take the template over; after ``time_constant`` such beats in a row are
    refused, the next one is taken (the patient's morphology may really have changed).
    """
    alpha = 1.0 / time_constant
    out = np.empty_like(windows)
    template = windows[0].copy()
    refused = 0
    for i, w in enumerate(windows):
        out[i] = w - template
        if update is None or update[i]:
            if gate > 0 and np.abs(out[i]).mean() > gate and refused < time_constant:
                refused += 1
                continue
            refused = 0
            template += alpha * (w - template)
    return out


QRS_SPAN_S = (0.045, 0.065)     # the QRS region around the R peak (s before, s after) where the polarity is read


def template_polarity(windows: np.ndarray, diff: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Per beat, +1 or -1: the sign of the largest deflection of the patient's template (as it stood
    before the beat: ``windows - diff``, see :func:`template_channel`) within :data:`QRS_SPAN_S` of the R peak.
    Multiplying a beat's channels by it (``[data] polarity = "template"``) shows every patient's usual
    QRS upright, whatever the lead's sign, and keeps each beat's sign against that usual QRS (a V beat
    opposite to the patient's normal one stays opposite). A record recorded inverted gives the same
    beats."""
    lo = max(0, cfg.before - round(QRS_SPAN_S[0] * cfg.fs))
    hi = min(cfg.window, cfg.before + round(QRS_SPAN_S[1] * cfg.fs))
    qrs = (windows - diff)[:, lo:hi]
    peak = qrs[np.arange(len(qrs)), np.abs(qrs).argmax(axis=1)]
    return np.where(peak < 0, -1.0, 1.0).astype(windows.dtype)


def is_regular(r_peaks: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """Whether each beat 1..n-1's pre-RR is within ``regular_rr_band`` of the regular RR before it."""
    pre = np.diff(r_peaks).astype(np.float64)
    reg = regular_rr(pre, cfg)
    return np.array([in_band(v, e, cfg) for v, e in zip(pre, reg)], dtype=bool)


def preprocess_signal(signal: np.ndarray, fs_in: float, cfg: DataConfig) -> np.ndarray:
    """Resample to the canonical rate, then causal band-pass."""
    x = resample(signal, fs_in, cfg.fs)
    return causal_filter(x, design_bandpass(cfg.fs, cfg.band_hz, cfg.filter_order))


def as_sampled_at(record: Record, fs: float) -> Record:
    """The record as a front end sampling at ``fs`` would have seen it: the signal resampled to ``fs``
    and the annotations on that rate's sample grid (e.g. MIT-BIH at SVDB's 128 Hz)."""
    if not fs or fs == record.fs:
        return record
    samples = np.round(record.ann_samples * (fs / record.fs)).astype(np.int64)
    return Record(record.name, resample(record.signal, record.fs, fs), float(fs), samples, record.ann_symbols)


def read_recipe_leads(data_dir, name: str, cfg: DataConfig, lead: str | int | None = None,
                      annotator: str = "atr") -> list[Record]:
    """The leads of a record on disk that the recipe reads: ``lead`` (default ``cfg.lead``) and, where
    the recipe asks for one, its second lead (``cfg.second_lead``); one read, every file checked."""
    lead = cfg.lead if lead is None else lead
    leads = [lead] + ([second_lead_name(data_dir, name, lead, cfg.second_lead)] if cfg.second_lead else [])
    return read_records(data_dir, name, leads, annotator)


def read_beats(data_dir, name: str, cfg: DataConfig, lead: str | int | None = None,
               annotator: str = "atr") -> Beats:
    """:func:`extract_beats` of a record on disk (:func:`read_recipe_leads`)."""
    record, *second = read_recipe_leads(data_dir, name, cfg, lead, annotator)
    return extract_beats(record, cfg, *second)


def extract_beats(record: Record, cfg: DataConfig, second: Record | None = None) -> Beats:
    """Filtered, normalised beat windows with RR features and AAMI labels for one record (first
    resampled to ``cfg.record_fs`` where set: a stand-in for a front end sampling at that rate).
    With ``cfg.second_lead``, ``second`` is the same record's second lead (same annotations): its
    beat and template channels follow the first lead's."""
    if cfg.second_lead and second is None:
        raise EdgeECGError(f"{record.name}: the recipe reads two leads ([data] second_lead = "
                           f"{cfg.second_lead!r}); this path gives one")
    leads = [as_sampled_at(lead, cfg.record_fs) for lead in ([record, second] if cfg.second_lead else [record])]
    record = leads[0]
    x = preprocess_signal(record.signal, record.fs, cfg)
    labels = aami_labels(record.ann_symbols)
    is_beat = labels >= 0
    r = np.round(record.ann_samples[is_beat] * (cfg.fs / record.fs)).astype(np.int64)
    y = labels[is_beat]
    if len(r) < 3:
        return Beats(np.zeros((0, cfg.channels, cfg.window), np.float32),
                     np.zeros((0, len(rr_feature_names(cfg))), np.float32),
                     np.zeros(0, np.int64), np.zeros(0, np.int64))
    rr = rr_features(r, cfg.fs, cfg)
    regular = is_regular(r, cfg)
    r, y = r[1:], y[1:]
    keep = (r - cfg.before >= 0) & (r + cfg.after <= len(x)) & np.all(np.isfinite(rr), axis=1)
    r, y, rr, regular = r[keep], y[keep], rr[keep], regular[keep]
    idx = r[:, None] + np.arange(-cfg.before, cfg.after)[None, :]
    channels = []
    for k, lead in enumerate(leads):                 # each lead's beat and template channels, in turn
        raw = (x if k == 0 else preprocess_signal(lead.signal, lead.fs, cfg))[idx]
        windows = patient_scale(raw, regular) if cfg.scale == "patient" else normalise_windows(raw)
        diff = None
        if cfg.template_beats:
            update = regular if cfg.template_update == "regular" else None
            diff = template_channel(windows, cfg.template_beats, update, cfg.template_gate)
            if cfg.polarity == "template":
                sign = template_polarity(windows, diff, cfg)[:, None]
                windows, diff = windows * sign, diff * sign
        if cfg.beat_channel:
            channels.append(windows)
        if diff is not None:
            channels.append(diff)
        if k == 0 and any(name in P_WAVE_FEATURES for name in cfg.rr_features):
            p_wave = p_wave_features(windows, diff, cfg)       # the config makes sure there is a template
            for j, name in enumerate(cfg.rr_features):
                if name in p_wave:
                    rr[:, j] = p_wave[name]
    x = round_to_input_grid(np.stack(channels, axis=1).astype(np.float32), cfg.input_step)
    return Beats(x, rr.astype(np.float32), y, r)
