"""Deployment targets: ``targets/*.toml`` with clock, budgets and the artifacts each one gets."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgeecg.errors import EdgeECGError

TARGETS_DIR = Path(__file__).resolve().parents[1] / "targets"
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
    deploy: tuple[str, ...]     # the formats that run on the device: the ones held to the size budget
    c_block: int = 8            # output channels the generated C computes together (see firmware_export)
    adc_hz: float = 360.0       # ADC sampling rate the stream front end takes (integer multiple of the model's)
    adc_gain: float = 200.0     # ADC counts per mV (MIT-BIH: 200)


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


def target_names(directory: Path = TARGETS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_target(name_or_path: str, directory: Path = TARGETS_DIR) -> Target:
    """A target by name (``esp32``) or by the path of a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = directory / f"{name_or_path}.toml"
        if not path.exists():
            raise EdgeECGError(f"unknown target {name_or_path!r} (valid: {', '.join(target_names(directory))})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        budget, artifacts = raw["budget"], raw["artifacts"]
        formats = tuple(artifacts["formats"])
        deploy = tuple(artifacts.get("deploy", formats))
        unknown = [f for f in formats + deploy if f not in FORMATS]
        if unknown:
            raise EdgeECGError(f"{path}: unknown artifact format(s) {', '.join(unknown)}")
        return Target(name=raw["name"], description=raw.get("description", ""), isa=raw["isa"],
                      clock_mhz=float(raw["clock_mhz"]), peak_macs_per_cycle=float(raw["peak_macs_per_cycle"]),
                      flash_bytes=int(budget["flash_bytes"]), ram_bytes=int(budget["ram_bytes"]),
                      max_macro_f1_loss_pp=float(budget["max_macro_f1_loss_pp"]),
                      max_se_loss_pp=float(budget["max_se_loss_pp"]), formats=formats,
                      deploy=deploy, c_block=int(raw.get("c_block", Target.c_block)),
                      adc_hz=float(raw.get("adc_hz", Target.adc_hz)), adc_gain=float(raw.get("adc_gain", Target.adc_gain)))
    except FileNotFoundError:
        raise EdgeECGError(f"{path}: target file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise EdgeECGError(f"{path}: invalid TOML ({err})") from None
    except KeyError as err:
        raise EdgeECGError(f"{path}: missing key {err}") from None
