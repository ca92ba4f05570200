"""ANSI/AAMI EC57 beat-by-beat QRS detection scoring (the rules of PhysioNet's ``bxb``).

A detection matches a reference beat when they are at most ``tolerance`` samples apart (150 ms in
EC57, inclusive: ``|t_det - t_ref| <= tolerance``, as ``bxb``'s ``T - t <= match_dt``). Each reference
beat and each detection is matched at most once, closest pairs first: all candidate pairs are sorted
by distance (ties: earlier reference, then earlier detection) and accepted greedily. Unmatched
reference beats are false negatives, unmatched detections false positives.

Reference beats are the annotations whose symbol is a beat in :mod:`edgeecg.processing.aami`
(N L R e j A a J S V E F / f Q). As in ``bxb``, stretches of ventricular flutter or fibrillation
marked by the reference (``[`` ... ``]``) are left out: detections inside them are not counted
(``bxb`` pairs them with a pseudo-beat that it never tallies) and they hold no reference beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeecg.processing.aami import SYMBOL_TO_CLASS

TOLERANCE_S = 0.150
VF_ON, VF_OFF = "[", "]"


@dataclass
class Match:
    """Result of :func:`match`. ``ref_index[k]`` and ``det_index[k]`` are the k-th matched pair
    (indices into the arrays given to :func:`match`, sorted by reference time)."""

    tp: int
    fn: int
    fp: int
    ref_index: np.ndarray = field(repr=False)
    det_index: np.ndarray = field(repr=False)
    fn_index: np.ndarray = field(repr=False)     # reference beats never matched
    fp_index: np.ndarray = field(repr=False)     # counted detections never matched

    @property
    def se(self) -> float:
        """Sensitivity, percent (100 when there is no reference beat)."""
        return percent(self.tp, self.tp + self.fn)

    @property
    def ppv(self) -> float:
        """Positive predictivity (+P), percent (100 when there is no detection)."""
        return percent(self.tp, self.tp + self.fp)

    def counts(self) -> dict:
        return {"se": round(self.se, 3), "ppv": round(self.ppv, 3), "tp": self.tp, "fn": self.fn, "fp": self.fp}


def percent(num: int, den: int) -> float:
    return 100.0 * num / den if den else 100.0


def match(ref, det, tolerance: int, exclude=()) -> Match:
    """Match detections ``det`` to reference beats ``ref`` (both in samples, same rate).

    ``tolerance``: the match window in samples (inclusive). ``exclude``: (start, end) sample pairs,
    inclusive, whose reference beats and detections are not scored (``bxb``'s VF rule).
    """
    ref = np.asarray(ref, dtype=np.int64).reshape(-1)
    det = np.asarray(det, dtype=np.int64).reshape(-1)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, not {tolerance}")
    ref_ok = ~_inside(ref, exclude)
    det_ok = ~_inside(det, exclude)
    ref_ids = np.flatnonzero(ref_ok)
    det_ids = np.flatnonzero(det_ok)
    ref_ids = ref_ids[np.argsort(ref[ref_ids], kind="stable")]
    det_ids = det_ids[np.argsort(det[det_ids], kind="stable")]
    r, d = ref[ref_ids], det[det_ids]

    # every candidate pair (i, j) with |r[i] - d[j]| <= tolerance
    lo = np.searchsorted(d, r - tolerance, side="left")
    hi = np.searchsorted(d, r + tolerance, side="right")
    n_per = hi - lo
    pi = np.repeat(np.arange(len(r)), n_per)
    pj = (np.arange(int(n_per.sum())) - np.repeat(np.cumsum(n_per) - n_per, n_per)) + np.repeat(lo, n_per)
    dist = np.abs(r[pi] - d[pj])
    order = np.lexsort((pj, pi, dist))            # closest first; ties: earlier ref, then earlier det
    ref_used = np.zeros(len(r), bool)
    det_used = np.zeros(len(d), bool)
    pairs = []
    for k in order.tolist():
        i, j = int(pi[k]), int(pj[k])
        if not ref_used[i] and not det_used[j]:
            ref_used[i] = det_used[j] = True
            pairs.append((i, j))
    pairs.sort()
    mi = np.array([p[0] for p in pairs], dtype=np.int64)
    mj = np.array([p[1] for p in pairs], dtype=np.int64)
    return Match(tp=len(pairs), fn=int((~ref_used).sum()), fp=int((~det_used).sum()),
                 ref_index=ref_ids[mi], det_index=det_ids[mj],
                 fn_index=ref_ids[~ref_used], fp_index=det_ids[~det_used])


def _inside(t: np.ndarray, intervals) -> np.ndarray:
    out = np.zeros(len(t), bool)
    for start, end in intervals:
        out |= (t >= start) & (t <= end)
    return out


def reference_beats(samples, symbols) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices and AAMI classes of the annotations that are beats (every class, Q included)."""
    symbols = [str(s) for s in symbols]
    keep = np.array([s in SYMBOL_TO_CLASS for s in symbols], dtype=bool)
    cls = np.array([SYMBOL_TO_CLASS[s] for s, k in zip(symbols, keep) if k], dtype=np.int64)
    return np.asarray(samples, dtype=np.int64)[keep], cls


def vf_intervals(samples, symbols, end: int | None = None) -> list[tuple[int, int]]:
    """(onset, offset) of the reference's ventricular flutter/fibrillation episodes (``[`` ... ``]``);
    an episode still open at the end of the annotations runs to ``end`` (or forever)."""
    out, start = [], None
    for t, s in zip(np.asarray(samples).tolist(), [str(x) for x in symbols]):
        if s == VF_ON and start is None:
            start = int(t)
        elif s == VF_OFF and start is not None:
            out.append((start, int(t)))
            start = None
    if start is not None:
        out.append((start, int(end) if end is not None else np.iinfo(np.int64).max))
    return out


def tolerance_samples(fs: float, tolerance_s: float = TOLERANCE_S) -> int:
    """The match window in samples at ``fs`` (``bxb``: ``strtim(".15")``, rounded)."""
    return int(round(tolerance_s * fs))


def gross(results) -> dict:
    """Sum tp/fn/fp over records (EC57's gross statistics) and the Se and +P of the sums."""
    tp = sum(r["tp"] for r in results)
    fn = sum(r["fn"] for r in results)
    fp = sum(r["fp"] for r in results)
    return {"se": round(percent(tp, tp + fn), 3), "ppv": round(percent(tp, tp + fp), 3), "tp": tp, "fn": fn, "fp": fp}
