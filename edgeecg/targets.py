"""Deployment targets: the shipped ``edgeecg/resources/targets/*.toml`` (by name) or a TOML file of
the user's (by path), with clock, budgets, the artifacts each one gets and the ECG front end.

A target may start from another shipped one (``base = "esp32"``): its keys are the base's with the
file's own on top (tables merged key by key). The front-end presets (``esp32-max30003``, ...) are
written that way: the chip's target plus the ADC rate and gain of an analog front end."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgeecg import resources
from edgeecg.errors import EdgeECGError

FORMATS = ("torchscript", "pt2", "onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8", "tflm", "c_int8")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    isa: str
    clock_mhz: float
    peak_macs_per_cycle: float
    flash_bytes: int
    ram_bytes: int
    max_macro_f1_loss_pp: float
    max_se_loss_pp: float
    formats: tuple[str, ...]
    deploy: tuple[str, ...]     # the formats that run on the device: the ones held to the size and loss budgets
    c_block: int = 8            # output channels the generated C computes together (see firmware_export)
    adc_hz: float = 360.0       # ADC rate the stream front end takes: a whole number of Hz, 100-1000
    adc_gain: float = 200.0     # ADC counts per mV (MIT-BIH: 200), as the int16 samples reach the stream
    front_end: str = ""         # the analog front end the ADC figures come from (a preset's datasheet)

    @property
    def input_range_mv(self) -> float:
        """The largest ECG amplitude the int16 samples hold: 32768 / adc_gain mV."""
        return 32768.0 / self.adc_gain

    def deploys(self, artifact: str) -> bool:
        """Whether the device runs ``artifact`` (a ``c_*`` row, the generated C on any platform, is ``c_int8``)."""
        return ("c_int8" if artifact.startswith("c_") else artifact) in self.deploy


def accuracy_loss_problems(row: dict, target: Target) -> list[str]:
    """The accuracy losses of one artifact's row (its ``delta_*`` against the float model) beyond what
    ``target`` allows: macro-F1, S Se and V Se in pp for AAMI beats, macro-ROC-AUC for multi-label."""
    from edgeecg.metrics import MAX_MACRO_AUC_LOSS

    if "delta_macro_auc" in row:        # multi-label: AUC units, not pp
        d = row["delta_macro_auc"]
        return [f"macro_auc {d:+.4f} (allowed -{MAX_MACRO_AUC_LOSS})"] if d is not None and d < -MAX_MACRO_AUC_LOSS else []
    limits = (("macro_f1", target.max_macro_f1_loss_pp), ("S_se", target.max_se_loss_pp),
              ("V_se", target.max_se_loss_pp))
    return [f"{key} {row[f'delta_{key}']:+.2f} pp (allowed -{limit})" for key, limit in limits
            if f"delta_{key}" in row and row[f"delta_{key}"] < -limit]


def target_names() -> list[str]:
    """The shipped targets' names."""
    return resources.names("targets")


def load_target(name_or_path: str) -> Target:
    """A shipped target by name (``esp32``) or a target file by path (``./my-board.toml``)."""
    if resources.is_path(name_or_path):
        path = Path(name_or_path)
        text = resources.read_file(path, "target file")
    else:
        path, text = Path(f"{name_or_path}.toml"), resources.read("targets", name_or_path)
        if text is None:
            raise EdgeECGError(f"unknown target {name_or_path!r} (valid: {', '.join(target_names())}, "
                               f"or the path of a .toml file)")
    try:
        raw = tomllib.loads(text)
        if "base" in raw:
            raw = _on_base(raw, path)
        budget, artifacts = raw["budget"], raw["artifacts"]
        formats = tuple(artifacts["formats"])
        deploy = tuple(artifacts.get("deploy", formats))
        unknown = [f for f in formats + deploy if f not in FORMATS]
        if unknown:
            raise EdgeECGError(f"{path}: unknown artifact format(s) {', '.join(unknown)}")
        target = Target(name=raw["name"], description=raw.get("description", ""), isa=raw["isa"],
                      clock_mhz=float(raw["clock_mhz"]), peak_macs_per_cycle=float(raw["peak_macs_per_cycle"]),
                      flash_bytes=int(budget["flash_bytes"]), ram_bytes=int(budget["ram_bytes"]),
                      max_macro_f1_loss_pp=float(budget["max_macro_f1_loss_pp"]),
                      max_se_loss_pp=float(budget["max_se_loss_pp"]), formats=formats,
                      deploy=deploy, c_block=int(raw.get("c_block", Target.c_block)),
                      adc_hz=float(raw.get("adc_hz", Target.adc_hz)), adc_gain=float(raw.get("adc_gain", Target.adc_gain)),
                      front_end=str(raw.get("front_end", "")))
    except tomllib.TOMLDecodeError as err:
        raise EdgeECGError(f"{path}: invalid TOML ({err})") from None
    except KeyError as err:
        raise EdgeECGError(f"{path}: missing key {err}") from None
    except (TypeError, ValueError) as err:
        raise EdgeECGError(f"{path}: bad value ({err})") from None
    for field, value in (("clock_mhz", target.clock_mhz), ("peak_macs_per_cycle", target.peak_macs_per_cycle),
                         ("budget.flash_bytes", target.flash_bytes), ("budget.ram_bytes", target.ram_bytes),
                         ("adc_hz", target.adc_hz), ("adc_gain", target.adc_gain)):
        if not value > 0:
            raise EdgeECGError(f"{path}: {field} = {value} must be > 0")
    from edgeecg.stream.rate import MAX_HZ, MIN_HZ

    if not (MIN_HZ <= target.adc_hz <= MAX_HZ and float(target.adc_hz).is_integer()):
        raise EdgeECGError(f"{path}: adc_hz = {target.adc_hz:g}: the stream front end takes a whole number of Hz "
                           f"from {MIN_HZ} to {MAX_HZ}")
    if target.adc_gain > 32768.0 / 2.0:
        raise EdgeECGError(f"{path}: adc_gain = {target.adc_gain:g} counts/mV leaves an int16 sample less than "
                           f"2 mV of range (32768 / adc_gain)")
    if target.c_block < 2 or target.c_block % 2:
        raise EdgeECGError(f"{path}: c_block = {target.c_block} must be an even number >= 2")
    return target


def _on_base(raw: dict, path: Path) -> dict:
    """``raw`` merged onto the shipped target it names as ``base`` (one level: a base has no base)."""
    name = raw["base"]
    text = resources.read("targets", name) if isinstance(name, str) else None
    if text is None:
        raise EdgeECGError(f"{path}: base = {name!r} is not a shipped target (valid: {', '.join(target_names())})")
    base = tomllib.loads(text)
    if "base" in base:
        raise EdgeECGError(f"{path}: base target {name!r} has a base itself")
    return resources.on_top(base, {k: v for k, v in raw.items() if k != "base"})

