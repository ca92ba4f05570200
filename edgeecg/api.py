"""The Python interface: train a recipe, export it for a target, bench the artifacts, and classify an
ECG signal end to end as the device does. The ``edgeecg`` commands call these functions.

    import edgeecg
    edgeecg.train_recipe("hybrid", data="../shared/data/mitdb", out="runs/hybrid", seed=0)
    edgeecg.export_run("runs/hybrid", target="esp32")    # -> report dict (report["budget"]["pass"])
    edgeecg.bench_run("runs/hybrid", target="esp32", beats="ds2")

    import edgeecg
    device = edgeecg.load_device("runs/hybrid", target="esp32")   # after `edgeecg quantize`
    beats = device.classify(adc, fs=360)               # int16 ADC counts, any whole rate 100-1000 Hz
    beats.sample, beats.labels                         # R peaks (ADC samples) and "N", "S", "V", ...
    beats = device.classify(adc, fs=360, engine="c")   # the generated C, compiled on first use
    beats = device.classify(adc, fs=360, engine="float")   # the float model on the device's R peaks
    beats = device.classify_mv(ecg_mv, fs=360)         # millivolts, scaled by the target's gain

Both engines run the integer front end (rate conversion to 180 Hz, band-pass, QRS detector, RR
features, beat window) and the int8 classifier: ``"twin"`` is the Python integer twin, ``"c"`` the generated C
(``PREFIX_stream.c`` + ``PREFIX_qrs.c`` + ``PREFIX_model.c``) built with the host compiler and run in
a subprocess; the two are bit-exact (``edgeecg stream`` checks it on every DS2 sample). ``"float"``
takes the same detector's R peaks and classifies them with the run's float PyTorch model on the
training pipeline's beats (needs the ``train`` extra; its logits are float): what was trained,
beside what ships. Bad input raises :class:`edgeecg.errors.EdgeECGError` with one line; nothing
reaches the C unchecked.

At the target's ``adc_hz`` the front end is the exported one; at another rate it is generated for
that rate (the C in a temporary copy of the export), as ``edgeecg quantize`` would for a target
with that ``adc_hz``.
"""

from __future__ import annotations

import numbers
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeecg.errors import EdgeECGError
from edgeecg.processing.aami import CLASSES

ENGINES = ("twin", "c", "float")


@dataclass(frozen=True)
class Beats:
    """The beats a device classified in a signal, in time order."""

    sample: np.ndarray      # R peak, in input (ADC) samples
    classes: np.ndarray     # class index per beat (``CLASSES`` order: N, S, V, F, Q)
    logits: np.ndarray      # (n, 5) logits of the classifier: int8 (twin, C) or float32 (float)

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
        self._specs = {self.spec.adc_hz: self.spec}
        self._exes: dict[float, Path] = {}
        self._build: tempfile.TemporaryDirectory | None = None
        self.run_dir = Path(run_dir)
        self._float = None                   # the float model, loaded on the first engine="float"

    @property
    def fs(self) -> float:
        """The ADC rate (Hz) of the exported front end: the target's ``adc_hz``."""
        return self.spec.adc_hz

    def classify(self, adc, fs: float, engine: str = "twin") -> Beats:
        """Beats and classes of ``adc`` (1-D int16 ADC counts at ``fs`` Hz: a whole rate from 100 to
        1000 Hz; the target's ``adc_hz`` runs the exported front end). A two-lead recipe
        (``[data] second_lead``) takes ``(n, 2)`` counts: the first lead (the detector's), then the second."""
        if engine not in ENGINES:
            raise EdgeECGError(f"engine {engine!r}: one of {', '.join(ENGINES)}")
        spec = self._spec_at(fs)
        samples = self._checked(adc, spec)
        if engine == "float":
            return self._classify_float(samples, spec)
        if engine == "twin":
            from edgeecg.stream.frontend import run_record

            res = run_record(samples, spec, self.graph)
            r, cls, logits = res.r_peak, res.cls, res.logits
        else:
            from firmware_export import stream as stream_c

            out, _, _ = stream_c.run_host(self._compiled(spec), samples, spec.n_classes)
            r, cls, logits = out["r_peak"], out["cls"], out["logits"]
        return Beats(sample=spec.rate.adc_index(np.asarray(r, np.int64)), classes=np.asarray(cls, np.int64),
                     logits=np.asarray(logits, np.int8).reshape(len(cls), spec.n_classes))

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
    def _classify_float(self, samples: np.ndarray, spec) -> Beats:
        """The device's detector, then the float model on the training pipeline's beats at its R peaks."""
        from edgeecg.io.wfdb_records import Record
        from edgeecg.processing.beats import extract_beats
        from edgeecg.runtimes import TorchRunner
        from edgeecg.stream.qrs import detect

        if self._float is None:
            from edgeecg.run import load_run

            self._float = TorchRunner(load_run(self.run_dir)[1])
        leads = samples.reshape(len(samples), -1).T
        r_adc = spec.rate.adc_index(detect(leads[0], spec.adc_hz, spec.qrs))
        record, *second = (Record("signal", lead.astype(np.float64) / self.target.adc_gain, float(spec.adc_hz),
                                  r_adc, np.array(["N"] * len(r_adc))) for lead in leads)
        beats = extract_beats(record, self.config.data, *second)  # beat 0 (no RR) and edge beats left out
        if not len(beats.y):
            return Beats(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, spec.n_classes), np.float32))
        logits = self._float.logits(beats.x, beats.rr).astype(np.float32)
        at = np.round(beats.sample * (spec.adc_hz / self.config.data.fs)).astype(np.int64)
        return Beats(sample=at, classes=logits.argmax(axis=1).astype(np.int64), logits=logits)

    def _spec_at(self, fs):
        """The front end for ``fs`` Hz (made once per rate); a one-line error for a rate it cannot take."""
        if isinstance(fs, bool) or not isinstance(fs, numbers.Real) or not np.isfinite(fs):
            raise EdgeECGError(f"fs = {fs!r}: the sampling rate must be a finite number of Hz")
        if float(fs) not in self._specs:
            from edgeecg.stream.frontend import front_end_spec

            try:
                spec = front_end_spec(self.config.data, self.graph, fs, self.target.adc_gain)
            except EdgeECGError as err:
                raise EdgeECGError(f"fs = {fs!r}: {err}") from None
            self._specs[float(fs)] = spec
        return self._specs[float(fs)]

    def _checked(self, adc, spec) -> np.ndarray:
        from edgeecg.stream.frontend import check_leads

        x = check_leads(adc, spec, "signal")
        if x.dtype != np.int16:
            raise EdgeECGError(f"signal: dtype {x.dtype}, expected int16 ADC counts "
                               f"(classify_mv takes millivolts)")
        if len(x) == 0:
            raise EdgeECGError("signal: empty")
        return x

    def _compiled(self, spec) -> Path:
        """The host build of the stream C for ``spec``'s rate: the exported C at the target's rate,
        else the export with its stream and detector generated for that rate."""
        if spec.adc_hz not in self._exes:
            import shutil

            from edgeecg.stream.run import check_generated
            from firmware_export import stream as stream_c
            from firmware_export.templating import write_files

            if self._build is None:
                self._build = tempfile.TemporaryDirectory(prefix="edgeecg-device-")
            where = Path(self._build.name) / f"{spec.adc_hz:g}hz"
            source = self.export
            if spec is self.spec:
                check_generated(self.export, self.prefix, self.spec)
            else:
                source = where / "export"
                shutil.copytree(self.export, source)
                write_files(source, stream_c.render_all(self.prefix, spec))
            self._exes[spec.adc_hz] = stream_c.build_host(source, where / "host", self.prefix)
        return self._exes[spec.adc_hz]


def load_device(run_dir: str | Path, target: str = "esp32") -> Device:
    """The export ``RUN/export/TARGET`` (made by ``edgeecg quantize RUN --target TARGET``) as a
    :class:`Device`; ``target`` is a shipped target's name or a target file's path."""
    return Device(run_dir, target)


def records_dir(manifest: dict, data, cfg) -> Path:
    """``data``, else the records directory a run was trained on (its manifest), else the download default."""
    from edgeecg.io import resolve_data_dir

    if data is None and manifest.get("data_dir"):
        data = Path(manifest["data_dir"])
    return resolve_data_dir(data, cfg.split.train + cfg.split.val + cfg.split.test)


@dataclass
class TrainedRun:
    """What :func:`train_recipe` wrote: the run directory, its recipe, its metrics (``metrics.json``)."""

    path: Path
    config: object               # edgeecg.config.Config
    metrics: dict
    best_epoch: int
    splits: dict                 # the beat sets it trained and was scored on, by part


def train_recipe(config: str | Path | None = "hybrid", data: str | Path | None = None,
                 out: str | Path = "runs/run", *, seed: int | None = None, device: str | None = None,
                 epochs: int | None = None, random_split: bool = False, force: bool = False,
                 progress: bool = False, log=None, warn=None) -> TrainedRun:
    """Train ``config`` (a shipped recipe's name, a TOML path, or None for the built-in defaults) on its
    training pool and score it on its test records (DS2); writes the run directory ``out``.
    ``random_split`` shuffles beats of all records together (leaks patients: never a valid claim; ``warn``,
    default ``log``, says so). ``log``: a callable for the progress lines."""
    import dataclasses

    from edgeecg.config import load_config, with_overrides
    from edgeecg.data import make_splits
    from edgeecg.io import resolve_data_dir
    from edgeecg.run import save_run
    from edgeecg.train import train_model

    log = log or (lambda m: None)
    cfg = with_overrides(load_config(config), seed=seed, device=device, epochs=epochs)
    if random_split:
        if cfg.sources:
            raise EdgeECGError(f"{config}: --random-split shuffles MIT-BIH beats; a recipe with [[sources]] "
                               f"is patient-wise only")
        cfg = dataclasses.replace(cfg, split=dataclasses.replace(cfg.split, kind="random"))
    elif cfg.split.kind == "random":
        raise EdgeECGError(f"{config}: [split] kind = 'random' leaks patients; it needs the explicit --random-split flag")
    out = Path(out)
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    data_dir = resolve_data_dir(data, cfg.split.train + cfg.split.val + cfg.split.test)
    splits = make_splits(data_dir, cfg)
    if cfg.split.kind == "random":
        (warn or log)("WARNING: random beat split: the same patients are in train and test (leaky); "
                      "its accuracy is not an inter-patient result.")
    for name, beats in splits.items():
        log(f"{name:<6}{len(beats):>7,d} beats  " + "  ".join(f"{k} {v:,d}" for k, v in beats.counts().items()))
    result = train_model(cfg, splits, progress=progress)
    metrics = save_run(out, cfg, result.model, result.history, result.best_epoch, splits, data_dir, force)
    return TrainedRun(out, cfg, metrics, result.best_epoch, splits)


def export_run(run_dir: str | Path, target: str = "esp32", *, out: str | Path | None = None,
               data: str | Path | None = None, force: bool = False, log=None, **options) -> dict:
    """Export the run for ``target`` (int8 graph, ONNX, TFLite, TFLite Micro data, the generated C and
    its stream front end) into ``out`` (default ``RUN/export/TARGET``); returns the report
    (``report.json``; ``report["budget"]["pass"]`` says whether the target's budgets hold).
    ``options``: the fields of :class:`edgeecg.quantize.QuantizeOptions` (``calib_beats``, ``prune``, ...)."""
    from edgeecg.quantize import QuantizeOptions, quantize_run
    from edgeecg.run import load_run
    from edgeecg.targets import load_target
    from firmware_export.carray import c_identifier

    tgt = load_target(target)
    cfg, model, manifest = load_run(run_dir)
    opts = QuantizeOptions(**options)
    c_identifier(opts.prefix)
    out = Path(out) if out else Path(run_dir) / "export" / tgt.name
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    return quantize_run(Path(run_dir), cfg, model, tgt, records_dir(manifest, data, cfg), out, opts,
                        force=force, log=log or (lambda m: None))


def bench_run(run_dir: str | Path, target: str = "esp32", *, beats: str = "ds1", out: str | Path | None = None,
              export: str | Path | None = None, data: str | Path | None = None, force: bool = False, log=None,
              **options) -> dict:
    """Run every exported artifact of ``RUN/export/TARGET`` on the same ``beats`` ("ds1" check beats or
    "ds2"): accuracy and its delta against the float model, size, latency, pass or fail; writes
    ``out`` (default ``RUN/bench/TARGET``) and returns the result (``result["pass"]``). Needs only the
    ``runtime`` extra. ``options``: the other fields of :class:`edgeecg.bench.BenchOptions`."""
    import json

    from edgeecg.bench import BenchOptions, bench_export
    from edgeecg.config import load_config
    from edgeecg.targets import load_target

    tgt = load_target(target)
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise EdgeECGError(f"{run_dir}: not a run directory (no config.toml)")
    export = Path(export) if export else run_dir / "export" / tgt.name
    out = Path(out) if out else run_dir / "bench" / tgt.name
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    cfg = load_config(run_dir / "config.toml")
    manifest_path = run_dir / "manifest.json"     # read as JSON: edgeecg.run (load_run) needs torch
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return bench_export(run_dir, cfg, export, tgt, records_dir(manifest, data, cfg), out,
                        BenchOptions(beats=beats, **options), force=force, log=log or (lambda m: None))


__all__ = ["Beats", "Device", "TrainedRun", "bench_run", "export_run", "load_device", "train_recipe"]
