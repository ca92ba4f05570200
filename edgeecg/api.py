"""The Python interface to an exported model: classify an ECG signal end to end as the device does.

    import edgeecg
    device = edgeecg.load_device("runs/hybrid", target="esp32")   # after `edgeecg quantize`
    beats = device.classify(adc, fs=360)               # int16 ADC counts at the target's ADC rate
    beats.sample, beats.labels                         # R peaks (ADC samples) and "N", "S", "V", ...
    beats = device.classify(adc, fs=360, engine="c")   # the generated C, compiled on first use
    beats = device.classify_mv(ecg_mv, fs=360)         # millivolts, scaled by the target's gain

Both engines run the integer front end (decimation, band-pass, QRS detector, RR features, beat
window) and the int8 classifier: ``"twin"`` is the Python integer twin, ``"c"`` the generated C
(``PREFIX_stream.c`` + ``PREFIX_qrs.c`` + ``PREFIX_model.c``) built with the host compiler and run in
a subprocess; the two are bit-exact (``edgeecg stream`` checks it on every DS2 sample). Bad input
raises :class:`edgeecg.errors.EdgeECGError` with one line; nothing reaches the C unchecked.
"""

from __future__ import annotations

import numbers
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.processing.aami import CLASSES

ENGINES = ("twin", "c")


@dataclass(frozen=True)
class Beats:
    """The beats a device classified in a signal, in time order."""

    sample: np.ndarray      # R peak, in input (ADC) samples
    classes: np.ndarray     # class index per beat (``CLASSES`` order: N, S, V, F, Q)
    logits: np.ndarray      # (n, 5) int8 logits of the classifier

    @property
    def labels(self) -> list[str]:
        return [CLASSES[int(c)] for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)


class Device:
    """An exported run for one target: its integer front end and int8 classifier (see module doc)."""

    def __init__(self, run_dir: str | Path, target: str = "esp32"):
        from edgeecg.stream.frontend import front_end_spec
        from edgeecg.stream.run import load_export
        from edgeecg.targets import load_target

        self.target = load_target(target)
        self.config, self.graph, self.prefix, self.export = load_export(Path(run_dir), self.target)
        self.spec = front_end_spec(self.config.data, self.graph, self.target.adc_hz, self.target.adc_gain)
        self._exe: Path | None = None
        self._build: tempfile.TemporaryDirectory | None = None

    @property
    def fs(self) -> float:
        """The ADC rate (Hz) the front end takes: the target's ``adc_hz``."""
        return self.spec.adc_hz

    def classify(self, adc, fs: float, engine: str = "twin") -> Beats:
        """Beats and classes of ``adc`` (1-D int16 ADC counts at ``fs`` Hz, the target's rate)."""
        samples = self._checked(adc, fs)
        if engine == "twin":
            from edgeecg.stream.frontend import run_record

            res = run_record(samples, self.spec, self.graph)
            r, cls, logits = res.r_peak, res.cls, res.logits
        elif engine == "c":
            from firmware_export import stream as stream_c

            out, _, _ = stream_c.run_host(self._compiled(), samples, self.spec.n_classes)
            r, cls, logits = out["r_peak"], out["cls"], out["logits"]
        else:
            raise EdgeECGError(f"engine {engine!r}: one of {', '.join(ENGINES)}")
        return Beats(sample=self.spec.rate.adc_index(np.asarray(r, np.int64)), classes=np.asarray(cls, np.int64),
                     logits=np.asarray(logits, np.int8).reshape(len(cls), self.spec.n_classes))

    def classify_mv(self, ecg_mv, fs: float, engine: str = "twin") -> Beats:
        """:meth:`classify` of a signal in millivolts, scaled by the target's ``adc_gain`` counts/mV."""
        x = np.asarray(ecg_mv)
        if x.dtype.kind not in "fiu":
            raise EdgeECGError(f"signal: dtype {x.dtype}, expected numbers in mV")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise EdgeECGError("signal: contains NaN or infinite values")
        counts = np.round(x.astype(np.float64) * self.target.adc_gain)
        if counts.size and np.abs(counts).max() > 32767:
            raise EdgeECGError(f"signal: {np.abs(x).max():.1f} mV exceeds the int16 ADC range at "
                               f"{self.target.adc_gain:g} counts/mV")
        return self.classify(counts.astype(np.int16), fs, engine)

    # -- helpers ---------------------------------------------------------------------------------
    def _checked(self, adc, fs) -> np.ndarray:
        x = np.asarray(adc)
        if not isinstance(fs, numbers.Real) or not np.isfinite(fs):
            raise EdgeECGError(f"fs = {fs!r}: the sampling rate must be a finite number of Hz")
        if abs(fs - self.fs) > 1e-9 * self.fs:
            raise EdgeECGError(f"fs = {fs!r} Hz: this export's front end takes {self.fs:g} Hz "
                               f"(target {self.target.name}'s adc_hz); resample the signal first")
        if x.ndim != 1:
            raise EdgeECGError(f"signal: shape {x.shape}, expected one lead (1-D)")
        if x.dtype != np.int16:
            raise EdgeECGError(f"signal: dtype {x.dtype}, expected int16 ADC counts "
                               f"(classify_mv takes millivolts)")
        if len(x) == 0:
            raise EdgeECGError("signal: empty")
        return x

    def _compiled(self) -> Path:
        if self._exe is None:
            from edgeecg.stream.run import check_generated
            from firmware_export import stream as stream_c

            check_generated(self.export, self.prefix, self.spec)
            self._build = tempfile.TemporaryDirectory(prefix="edgeecg-device-")
            self._exe = stream_c.build_host(self.export, Path(self._build.name), self.prefix)
        return self._exe


def load_device(run_dir: str | Path, target: str = "esp32") -> Device:
    """The export ``RUN/export/TARGET`` (made by ``edgeecg quantize RUN --target TARGET``) as a
    :class:`Device`; ``target`` is a shipped target's name or a target file's path."""
    return Device(run_dir, target)


__all__ = ["Beats", "Device", "load_device"]
