"""A causal, integer-only streaming QRS detector: the Python twin of ``firmware_export/templates/qrs.c``.

After Pan & Tompkins (1985) and Hamilton & Tompkins (1986): a band-pass made of integer FIR moving
sums, a five-point derivative, its magnitude and a moving-window integral (MWI); the peaks of the
MWI are classified with adaptive levels:

* QRS level = mean of the last 8 QRS peaks (each clamped to twice the level, so one artefact cannot
  blow it up); noise level = mean of the last 8 noise peaks (each clamped to half the QRS level);
  threshold = noise + 5/16 (QRS - noise) (Hamilton & Tompkins' 0.3125), never below ``min_thresh``.
* T-wave discrimination (Pan & Tompkins): a peak within 360 ms of a QRS with less than half its
  maximal slope is a T wave.
* Search-back: 1.5 mean RR intervals after the last QRS, the largest peak more than 360 ms after it
  and above half the threshold is a QRS.
* Learning: the first 3 s set the QRS level to the second-largest peak (one transient cannot set
  it) and are then classified. Re-learning from the last 3 s when no QRS was found for 4 s, or when
  search-back fails while every peak of the last 3 s is below a quarter of the QRS level (after noise
  bursts, saturation, lead-off). When a learning window holds nothing (flat line) the detector
  tries again at every new peak.

Everything is integer: Python ints here, ``int32_t`` / ``int64_t`` in the C, and only additions,
multiplications by small constants, comparisons and right shifts of non-negative values (one floor
shift of the input, written portably in the C), so the two give the same beats, bit for bit.

Signal chain at ``fs`` = 180 Hz, sample i. ``x`` is the ADC signal converted to 180 Hz by
:mod:`edgeecg.stream.rate` (the block sum of M samples shifted right by ``k`` at an integer multiple
of 180 Hz, else a polyphase FIR in ADC counts), so that ``|x| <= 65536`` for any int16 input:

=====  =========================================================  =====  ===========================
       formula                                                    delay  bound for any int16 input
=====  =========================================================  =====  ===========================
s      ``x[i-4] + ... + x[i]``                                    2      ``5 * 2**16``
lp     ``s[i-4] + ... + s[i]`` (triangular low-pass, zero 36 Hz)  4      ``25 * 2**16 < 2**21``
h      ``31 lp[i-15] - (lp[i-30] + ... + lp[i])`` (high-pass)     19     ``60 * 25 * 2**16 < 2**27``
d      ``2 h[i] + h[i-1] - h[i-3] - 2 h[i-4]``                    21     ``6 * 60 * 25 * 2**16 < 2**30``
a      ``|d| >> 4``                                               21     ``< 2**26``
f      MWI: ``a[i-15] + ... + a[i]`` (``MWI_N`` = 16, 89 ms)      --     ``16 * 2**26 < 2**31``
u      ``x[i-2] + x[i-1] + x[i]`` (zero at 60 Hz)                 1      ``3 * 2**16``
g      ``31 u[i-15] - (u[i-30] + ... + u[i])`` (fiducial signal)  16     ``60 * 3 * 2**16 < 2**24``
=====  =========================================================  =====  ===========================

Levels and thresholds are sums of 8 MWI values (< 2**34: ``int64_t`` in the C).

Conventions
-----------
* Sample indices count converted (180 Hz) samples from the first one after construction or
  :meth:`QRSDetector.reset`. The filters start in the steady state of that first sample (as if it
  had always been there), so there is no start-up transient.
* A *peak* is a sample c of the MWI with ``f[c] > 0``, greater than each of the ``PEAK_W`` = 36
  samples before it and not less than any of the 36 after it (200 ms each way, which is also the
  refractory period: peaks are always more than 200 ms apart). It is known at sample ``c + 36``; the
  decision logic runs on the clock ``tau = i - 36`` (peak time).
* The *fiducial* (the R peak reported) is the sample of the largest ``|g|`` (the first on ties) in
  ``[max(c - 50, previous peak + 1), c]``, compensated for the 16-sample delay of ``g`` (a 3-sample
  moving sum minus its 31-sample moving average: the ECG without its baseline). Successive fiducials
  therefore increase strictly, and never precede sample 0.
* Delay: a beat is normally confirmed 36 samples after its MWI peak, i.e. ``36 + (c - R)`` samples
  after its R peak: 0.35 s typically (c - R is 28 samples for a narrow QRS), at most 86 samples
  (0.48 s). Beats found by search-back or by (re)learning are confirmed later; none is ever confirmed
  more than ``MAX_AGE + PEAK_W + FID_BEFORE`` = 986 samples (5.5 s) after its R peak, since peaks
  older than ``MAX_AGE`` are never reconsidered. :meth:`QRSDetector.push` returns at most one beat per call;
  beats confirmed together (learning, search-back) wait in a queue of at most ``FIFO_N`` = 16, so a
  beat may come out a few ADC samples after its confirmation.
* Indices are returned modulo 2**31 by the C (``int32_t``, 138 days at 180 Hz); its internal clock
  is ``int64_t``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.stream.rate import RateConverter, rate_converter

# Structure of the filters (fixed: the C has them as #defines too).
LP_N = 5            # each of the two moving sums of the low-pass
HP_N = 31           # the high-pass's moving sum (odd: an integer group delay)
HP_HALF = HP_N // 2
DER_SHIFT = 4
BP_DELAY = (LP_N - 1) + HP_HALF         # 19: group delay of the band-pass h
FID_N = 3           # the fiducial signal: a 3-sample moving sum (zero at 60 Hz) minus its HP_N mean
FID_DELAY = (FID_N - 1) // 2 + HP_HALF  # 16
N_AVG = 8           # QRS, noise and RR levels: the mean of the last 8 (a sum >> 3)
FIFO_N = 16         # recent MWI peaks kept for search-back and (re)learning
MAX_A = (6 * 60 * 25 * 65536) >> DER_SHIFT      # the largest derivative magnitude a
BASE_MIN_THRESH = 20000     # MIN_THRESH at 200 ADC counts/mV and M / 2**k = 2 (about a 0.05 mV QRS)


@dataclass(frozen=True)
class Params:
    """Detection parameters, in samples at 180 Hz or MWI units. The C's ``#define PREFIX_QRS_*``
    get these values from :func:`firmware_export.qrs.write_qrs`; every record uses the same ones."""

    mwi_n: int = 16             # MWI window (89 ms)
    peak_w: int = 36            # peak neighbourhood each way = refractory period (200 ms)
    t_win: int = 65             # T-wave discrimination window after a QRS (360 ms)
    sb_min: int = 65            # search-back only considers peaks this long after the last QRS (360 ms)
    sb_num: int = 12            # search-back after sb_num / 8 mean RR intervals (1.5)
    rr_init: int = 180          # initial mean RR (1 s)
    rr_max: int = 360           # longer RR intervals do not update the mean RR (2 s)
    learn_n: int = 540          # learning window (3 s)
    lost_n: int = 720           # re-learn when no QRS for this long (4 s)
    max_age: int = 900          # peaks older than this are never reconsidered (5 s)
    min_thresh: int = BASE_MIN_THRESH   # floor of the detection threshold (MWI units)
    th_num: int = 5             # threshold = noise + th_num / 16 (qrs - noise)
    q_clamp: int = 2            # a QRS peak enters the QRS level clamped to q_clamp x the level
    relearn_shift: int = 2      # re-learn when search-back fails and every peak of the last learn_n
                                #   samples is below the QRS level >> relearn_shift (0: never)
    n_shift: int = 1            # a noise peak enters the noise level clamped to the QRS level >> n_shift
    fid_before: int = 50        # fiducial search window [c - fid_before, c] (278 ms)

    def __post_init__(self):
        for k, v in asdict(self).items():
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{k} must be a non-negative int, not {v!r}")
        if not 1 <= self.mwi_n <= min(self.peak_w, (2**31 - 1) // MAX_A):
            raise ValueError("mwi_n must be in 1..min(peak_w, 58) (int32 MWI)")
        if FID_DELAY > self.peak_w or self.fid_before > self.peak_w + FID_DELAY:
            raise ValueError("fiducial window reaches outside the samples kept")
        if not (self.learn_n < self.lost_n <= self.max_age):
            raise ValueError("need learn_n < lost_n <= max_age")
        if not (1 <= self.peak_w <= 255 and self.th_num <= 16 and self.q_clamp <= 64 and self.n_shift <= 31):
            raise ValueError("peak_w in 1..255, th_num <= 16, q_clamp <= 64, n_shift <= 31")


DEFAULT = Params()


def min_threshold(adc_gain: float = 200.0, conv: RateConverter | None = None) -> int:
    """``MIN_THRESH`` for an ADC of ``adc_gain`` counts/mV converted by ``conv`` (default: 360 Hz's
    block sum of 2): the MWI of a QRS scales with its amplitude in ``x`` units, i.e. with
    ``adc_gain * conv.scale``."""
    if not adc_gain > 0:
        raise EdgeECGError(f"ADC gain must be > 0 counts/mV, not {adc_gain}")
    conv = conv if conv is not None else rate_converter(360)
    scale = adc_gain / 200.0 * float(conv.scale) / 2.0
    return max(1, int(round(BASE_MIN_THRESH * scale)))


def params_for(adc_hz=360, adc_gain: float = 200.0, **overrides) -> Params:
    """:data:`DEFAULT` with ``min_thresh`` scaled for the ADC (and any field overridden)."""
    conv = rate_converter(adc_hz)
    return Params(**{**asdict(DEFAULT), "min_thresh": min_threshold(adc_gain, conv), **overrides})


# --------------------------------------------------------------------------------------------
# Decision logic, shared by the streaming detector and the whole-record function
# --------------------------------------------------------------------------------------------

_NEVER = 1 << 62


class _Peak:
    __slots__ = ("t", "h", "slope", "fid", "qrs")

    def __init__(self, t, h, slope, fid):
        self.t, self.h, self.slope, self.fid, self.qrs = t, h, slope, fid, False


class _Decider:
    """Adaptive levels, T-wave rule, search-back and (re)learning on the stream of MWI peaks.

    For each clock value ``tau``: ``on_peak`` if a peak at ``t = tau`` is known, then ``tick(tau)``.
    The whole-record path calls ``tick`` only where :meth:`next_due` says it can act (it is a no-op
    everywhere else), which gives the same decisions.
    """

    def __init__(self, p: Params):
        self.p = p
        self.reset()

    def reset(self):
        p = self.p
        self.learning = True
        self.learn_start = 0
        self.fifo: list[_Peak] = []
        self.qbuf, self.nbuf, self.rbuf = [0] * N_AVG, [0] * N_AVG, [p.rr_init] * N_AVG
        self.qsum, self.nsum, self.rsum = 0, 0, p.rr_init * N_AVG
        self.qpos = self.npos = self.rpos = 0
        self.have_last = False
        self.last = 0
        self.last_slope = 0
        self.sb_idle = False
        self.learn_idle = False
        self.out: list[int] = []
        self.confirmed: list[int] = []     # the clock value at which each beat of `out` was declared
        self.now = 0

    def qlevel(self) -> int:
        return self.qsum >> 3

    def threshold(self) -> int:
        qm, nm = self.qlevel(), self.nsum >> 3
        thr = nm + (((qm - nm) * self.p.th_num) >> 4) if qm > nm else nm
        return max(thr, self.p.min_thresh)

    def sb_interval(self) -> int:
        return (self.rsum * self.p.sb_num) >> 6

    def _push_q(self, h):
        self.qsum += h - self.qbuf[self.qpos]
        self.qbuf[self.qpos] = h
        self.qpos = (self.qpos + 1) & (N_AVG - 1)

    def _push_n(self, h):
        h = min(h, self.qlevel() >> self.p.n_shift)
        self.nsum += h - self.nbuf[self.npos]
        self.nbuf[self.npos] = h
        self.npos = (self.npos + 1) & (N_AVG - 1)

    def _push_rr(self, rr):
        self.rsum += rr - self.rbuf[self.rpos]
        self.rbuf[self.rpos] = rr
        self.rpos = (self.rpos + 1) & (N_AVG - 1)

    def on_peak(self, pk: _Peak):
        self.now = pk.t
        self.fifo.append(pk)
        if len(self.fifo) > FIFO_N:
            del self.fifo[0]
        self.sb_idle = self.learn_idle = False
        if not self.learning:
            self._classify(pk)

    def _classify(self, pk: _Peak):
        if pk.h > self.threshold() and not (
                self.have_last and pk.t - self.last < self.p.t_win and 2 * pk.slope < self.last_slope):
            self._declare(pk)
        else:
            self._push_n(pk.h)

    def _declare(self, pk: _Peak):
        if self.have_last and pk.t - self.last <= self.p.rr_max:
            self._push_rr(pk.t - self.last)
        self._push_q(min(pk.h, self.p.q_clamp * self.qlevel()))
        self.have_last = True
        self.last = pk.t
        self.last_slope = pk.slope
        self.sb_idle = False
        pk.qrs = True
        self.out.append(pk.fid)
        self.confirmed.append(self.now)

    def _searchback(self, tau) -> bool:
        """Declare the largest non-QRS peak more than ``sb_min`` after the last QRS and above half
        the threshold (the earliest of equal ones); False when there is none."""
        thr2 = self.threshold() >> 1
        best = None
        for pk in self.fifo:
            if (not pk.qrs and pk.t - self.last > self.p.sb_min and tau - pk.t <= self.p.max_age
                    and pk.h > thr2 and (best is None or pk.h > best.h)):
                best = pk
        if best is None:
            return False
        self._declare(best)
        return True

    def _recent_top2(self, tau) -> tuple[int, int]:
        """The largest and second-largest heights of the peaks of the last ``learn_n`` samples."""
        top1 = top2 = 0
        for pk in self.fifo:
            if tau - pk.t <= self.p.learn_n:
                if pk.h > top1:
                    top1, top2 = pk.h, top1
                elif pk.h > top2:
                    top2 = pk.h
        return top1, top2

    def _learn(self, tau):
        """Levels from the peaks since ``learn_start``: the QRS level is the second-largest peak
        (one transient cannot set it), the noise level 0; then those peaks are classified again."""
        p = self.p
        window = [pk for pk in self.fifo if tau - pk.t <= p.learn_n]
        top2 = self._recent_top2(tau)[1]
        if top2 <= p.min_thresh:           # try again at the next peak
            self.learning = self.learn_idle = True
            return
        self.learning = False
        self.qbuf, self.qsum = [top2] * N_AVG, top2 * N_AVG
        self.nbuf, self.nsum = [0] * N_AVG, 0
        self.rbuf, self.rsum = [p.rr_init] * N_AVG, p.rr_init * N_AVG
        self.have_last = False
        self.sb_idle = False
        for pk in window:
            pk.qrs = False
            self._classify(pk)

    def tick(self, tau):
        p = self.p
        self.now = tau
        if self.learning:
            if not self.learn_idle and tau - self.learn_start >= p.learn_n:
                self._learn(tau)
            return
        while not self.sb_idle and tau - self.last > self.sb_interval():
            if not self._searchback(tau):
                self.sb_idle = True
                if p.relearn_shift and self._recent_top2(tau)[0] < self.qlevel() >> p.relearn_shift:
                    self.learn_start = tau - p.learn_n      # the QRS level is far above every
                    self._learn(tau)                        # recent peak: learn it again
                    if self.learning:
                        return
        if tau - self.last > p.lost_n:
            self.learn_start = tau - p.learn_n
            self._learn(tau)

    def next_due(self, tau) -> int:
        """The first clock value >= tau at which :meth:`tick` may change anything."""
        if self.learning:
            return _NEVER if self.learn_idle else max(tau, self.learn_start + self.p.learn_n)
        due = self.last + self.p.lost_n + 1
        if not self.sb_idle:
            due = min(due, self.last + self.sb_interval() + 1)
        return max(tau, due)


# --------------------------------------------------------------------------------------------
# Whole-record path: vectorised filters (exact integer moving sums), event-driven decisions
# --------------------------------------------------------------------------------------------

_PAD = 128          # leading samples of the steady state: > the memory of the filter chain


def _moving_sum(v: np.ndarray, n: int) -> np.ndarray:
    """``out[i] = v[i-n+1] + ... + v[i]`` for i >= n - 1 (the first n - 1 entries are not)."""
    cs = np.cumsum(v)
    out = cs.copy()
    out[n:] = cs[n:] - cs[:-n]
    return out


def _high_pass(v: np.ndarray) -> np.ndarray:
    """``HP_N * v[i - HP_HALF] - (v[i-HP_N+1] + ... + v[i])``."""
    return HP_N * np.concatenate([np.zeros(HP_HALF, np.int64), v[:-HP_HALF]]) - _moving_sum(v, HP_N)


def _fwd_max(v: np.ndarray, w: int) -> np.ndarray:
    """``out[j] = max(v[j:j+w])`` for j in 0..len(v)-w (a sparse-table sliding maximum, exact)."""
    t, s = v, 1
    while 2 * s <= w:
        t = np.maximum(t[:-s], t[s:])
        s *= 2
    return np.maximum(t[: len(v) - w + 1], t[w - s: w - s + len(v) - w + 1])


def filter_chain(x: np.ndarray, p: Params = DEFAULT):
    """(g, a, f) of the converted input ``x``: the fiducial signal, the derivative magnitude
    and the MWI (int64), each after ``_PAD`` samples of the steady state of ``x[0]`` (index
    ``_PAD + i`` is sample i; the steady state of g, a and f is 0)."""
    x = np.asarray(x, dtype=np.int64)
    xp = np.concatenate([np.full(_PAD, x[0], dtype=np.int64), x])
    g = _high_pass(_moving_sum(xp, FID_N))
    h = _high_pass(_moving_sum(_moving_sum(xp, LP_N), LP_N))
    d = 2 * h
    d[1:] += h[:-1]
    d[3:] -= h[:-3]
    d[4:] -= 2 * h[:-4]
    a = np.abs(d) >> DER_SHIFT
    f = _moving_sum(a, p.mwi_n)
    for v in (g, a, f):
        v[:_PAD] = 0    # the steady state (this also overwrites the moving sums' start-up garbage)
    return g, a, f


def _peaks(f: np.ndarray, w: int) -> np.ndarray:
    """The peaks (indices into the padded ``f``) that are known by the end of ``f``."""
    n = len(f)
    if n < _PAD + w + 1:
        return np.zeros(0, np.int64)
    fm = _fwd_max(f, w)                   # fm[j] = max(f[j : j + w])
    c = np.arange(_PAD, n - w)
    v = f[c]
    return c[(v > 0) & (v > fm[c - w]) & (v >= fm[c + 1])]


def scaled_input(adc, adc_hz) -> np.ndarray:
    """The detector's input ``x``: the ADC samples converted to 180 Hz (:mod:`edgeecg.stream.rate`, int64)."""
    return rate_converter(adc_hz).convert(adc)


def detect(adc: np.ndarray, adc_hz=360, params: Params | None = None, confirmed: bool = False):
    """R-peak indices (at 180 Hz, from the first converted sample) for a whole record of int16 ADC
    counts at ``adc_hz``: exactly what :class:`QRSDetector` returns sample by sample (its ``push``
    results, then :meth:`QRSDetector.drain`). ``params`` default: :func:`params_for` ``(adc_hz)``.

    With ``confirmed``, also the 180 Hz sample at which each beat was confirmed (``push`` returns
    it then, or a few ADC samples later when several beats are confirmed at once)."""
    p = params if params is not None else params_for(adc_hz)
    x = scaled_input(adc, adc_hz)
    if x.size == 0:
        empty = np.zeros(0, np.int64)
        return (empty, empty.copy()) if confirmed else empty
    g, a, f = filter_chain(x, p)
    dec = _Decider(p)
    done = -p.peak_w - 1                   # the clock has been ticked up to `done`

    def ticks_until(end):
        nonlocal done
        tau = done + 1
        while tau <= end:
            due = dec.next_due(tau)
            if due > end:
                break
            dec.tick(due)
            tau = due + 1
        done = max(done, end)

    prev = -1                              # the previous peak
    for c in _peaks(f, p.peak_w).tolist():
        t = c - _PAD
        ticks_until(t - 1)
        lo = max(t - p.fid_before, prev + 1)
        fid = lo + int(np.argmax(np.abs(g[_PAD + lo + FID_DELAY: c + FID_DELAY + 1])))
        slope = int(a[c - p.mwi_n + 1: c + 1].max())
        dec.on_peak(_Peak(t, int(f[c]), slope, fid))
        dec.tick(t)
        done = prev = t
    ticks_until(len(x) - 1 - p.peak_w)
    beats = np.asarray(dec.out, dtype=np.int64)
    if confirmed:
        return beats, np.asarray(dec.confirmed, dtype=np.int64) + p.peak_w
    return beats


# --------------------------------------------------------------------------------------------
# Streaming detector
# --------------------------------------------------------------------------------------------

class QRSDetector:
    """Sample-by-sample QRS detector holding all its state (the C's ``PREFIX_qrs_state``).

    ``push(adc_sample)`` takes one int16 ADC sample at ``adc_hz`` and returns the index (at 180 Hz,
    counted from the first converted sample) of an R peak confirmed by then, or None.
    """

    def __init__(self, adc_hz=360, adc_gain: float = 200.0, params: Params | None = None):
        self.rate = rate_converter(adc_hz)
        self.p = params if params is not None else params_for(adc_hz, adc_gain)
        self._rate = self.rate.stream()
        self._dec = _Decider(self.p)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample is sample 0 and the detector learns again."""
        p = self.p
        self._rate.reset()
        self._dec.reset()
        self._taken = 0                         # beats of self._dec.out already returned
        self.n = 0                              # 180 Hz samples seen
        self._xb, self._sb, self._ub = [0] * LP_N, [0] * LP_N, [0] * FID_N
        self._lb, self._vb = [0] * HP_N, [0] * HP_N
        self._s = self._lp = self._hsum = self._u = self._gsum = 0
        self._lpos = self._upos = self._hpos = 0
        self._hh = [0] * 4                      # h[i-1], h[i-2], h[i-3], h[i-4]
        self._ab = [0] * p.mwi_n
        self._apos = 0
        self._fsum = 0
        self._ring_n = 2 * p.peak_w + 1         # f, a and g of the last 2 PEAK_W + 1 samples
        self._fr = [0] * self._ring_n
        self._ar = [0] * self._ring_n
        self._gr = [0] * self._ring_n
        self._rpos = 0
        self._prev = -1                         # the previous peak

    def push(self, sample: int) -> int | None:
        """One int16 ADC sample in (the rate converter checks it); an R-peak index out when one is ready
        (at most one per call, as the C's ``prefix_qrs_push``: the others wait for the next calls)."""
        for x in self._rate.push(sample):
            self.step(x)
        return self.pop()

    def drain(self) -> list[int]:
        """The beats already confirmed but not yet returned by :meth:`push`."""
        out = []
        while (r := self.pop()) is not None:
            out.append(r)
        return out

    def pop(self) -> int | None:
        """The oldest R peak confirmed but not yet returned, or None."""
        out = self._dec.out
        if self._taken == len(out):
            return None
        r = out[self._taken]
        self._taken += 1
        if self._taken == len(out):
            out.clear()
            self._dec.confirmed.clear()
            self._taken = 0
        return r

    def step(self, x: int) -> None:
        """One 180 Hz sample in (the output of the rate converter), for a caller that converts the
        ADC itself (the stream front end); :meth:`pop` returns the beats it confirms."""
        p = self.p
        if self.n == 0:                           # the steady state of the first sample
            self._xb, self._ub = [x] * LP_N, [x] * FID_N
            self._s, self._u = LP_N * x, FID_N * x
            self._sb = [self._s] * LP_N
            self._lp = LP_N * self._s
            self._lb, self._vb = [self._lp] * HP_N, [self._u] * HP_N
            self._hsum, self._gsum = HP_N * self._lp, HP_N * self._u
        # low-pass: two moving sums of LP_N
        k = self._lpos
        self._s += x - self._xb[k]
        self._xb[k] = x
        self._lp += self._s - self._sb[k]
        self._sb[k] = self._s
        self._lpos = k + 1 if k + 1 < LP_N else 0
        # fiducial chain: a moving sum of FID_N
        k = self._upos
        self._u += x - self._ub[k]
        self._ub[k] = x
        self._upos = k + 1 if k + 1 < FID_N else 0
        # high-passes: HP_N * v[i - HP_HALF] - the moving sum of HP_N (lp -> h, u -> g)
        k = self._hpos
        mid = k - HP_HALF if k >= HP_HALF else k - HP_HALF + HP_N
        self._hsum += self._lp - self._lb[k]
        self._lb[k] = self._lp
        h = HP_N * self._lb[mid] - self._hsum
        self._gsum += self._u - self._vb[k]
        self._vb[k] = self._u
        g = HP_N * self._vb[mid] - self._gsum
        self._hpos = k + 1 if k + 1 < HP_N else 0
        # derivative, magnitude, moving-window integral
        hh = self._hh
        d = 2 * h + hh[0] - hh[2] - 2 * hh[3]
        hh[3], hh[2], hh[1], hh[0] = hh[2], hh[1], hh[0], h
        a = (d if d >= 0 else -d) >> DER_SHIFT
        k = self._apos
        self._fsum += a - self._ab[k]
        self._ab[k] = a
        self._apos = k + 1 if k + 1 < p.mwi_n else 0
        f = self._fsum
        # rings of the last 2 PEAK_W + 1 samples
        r = self._rpos
        self._fr[r], self._ar[r], self._gr[r] = f, a, g
        self._rpos = r + 1 if r + 1 < self._ring_n else 0
        i = self.n
        self.n += 1
        w, n_r = p.peak_w, self._ring_n
        tau = i - w
        if tau >= 0:
            cs = (r - w) % n_r                  # the slot of the candidate c = tau
            v = self._fr[cs]
            if v > 0 and all(self._fr[(cs - j) % n_r] < v and self._fr[(cs + j) % n_r] <= v
                             for j in range(1, w + 1)):
                self._dec.on_peak(self._peak(tau, v, r))
                self._prev = tau
        self._dec.tick(tau)

    def _peak(self, t: int, v: int, r: int) -> _Peak:
        """The peak at t = i - PEAK_W; ``r`` is the ring slot of sample i."""
        p, n_r = self.p, self._ring_n
        slope = max(self._ar[(r - p.peak_w - j) % n_r] for j in range(p.mwi_n))
        lo = max(t - p.fid_before, self._prev + 1)
        best, fid = -1, lo
        for j in range(lo, t + 1):              # g of x-time j is sample j + FID_DELAY
            back = p.peak_w + t - j - FID_DELAY
            gv = self._gr[(r - back) % n_r]
            gv = gv if gv >= 0 else -gv
            if gv > best:
                best, fid = gv, j
        return _Peak(t, v, slope, fid)
