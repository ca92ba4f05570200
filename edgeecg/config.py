"""Run configuration as dataclasses, read from and written to TOML.

A recipe file (``training/*.toml``) has the sections ``[data]``, ``[split]``, ``[model]`` and
``[train]``; every key is optional and overrides the dataclass default. Unknown sections or keys
are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from edgeecg.errors import EdgeECGError

# de Chazal et al., IEEE TBME 2004: the standard inter-patient split of MIT-BIH.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
       "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
       "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")
# Paced records, excluded from AAMI EC57 evaluation by convention.
PACED = ("102", "104", "107", "217")
# Patient-wise validation subset of DS1 (early stopping and model choice): about a fifth of
# DS1's S, V and F beats, from several patients, leaving the rest of each class for training.
DS1_VAL = ("101", "118", "124", "205", "215", "223")


@dataclass(frozen=True)
class DataConfig:
    """How a record becomes beats. Every field enters the beat-cache key."""

    fs: int = 180                 # canonical rate (Hz) all records are resampled to
    lead: str = "MLII"
    band_hz: tuple[float, float] = (0.5, 40.0)   # causal Butterworth band-pass
    filter_order: int = 2          # per side: order 2 -> 2 biquads
    before: int = 48               # samples before the R-peak in a beat window
    after: int = 80                # samples from the R-peak on (window = before + after)
    mode: str = "realtime"         # "realtime" (causal) or "diagnostic" (uses the next RR)
    local_rr_beats: int = 10       # beats in the local RR average
    avg_rr_beats: int = 300        # beats in the running "record average" RR (causal)
    template_beats: int = 16       # time constant (beats) of the running-average beat; 0 = off
    input_step: float = 0.0        # > 0: beats on this int8 grid (z-score units per step); 0: float

    @property
    def channels(self) -> int:
        """Input channels: the beat, plus the beat minus the patient's running template."""
        return 2 if self.template_beats else 1

    @property
    def window(self) -> int:
        return self.before + self.after


@dataclass(frozen=True)
class SplitConfig:
    """Which records train, validate and test. ``kind="random"`` leaks patients (flagged)."""

    kind: str = "de_chazal"        # "de_chazal" (patient-wise) or "random" (beat-wise, leaky)
    train: tuple[str, ...] = tuple(r for r in DS1 if r not in DS1_VAL)
    val: tuple[str, ...] = DS1_VAL
    test: tuple[str, ...] = DS2
    exclude: tuple[str, ...] = PACED
    random_fractions: tuple[float, float] = (0.1, 0.2)   # val, test shares for kind="random"


@dataclass(frozen=True)
class ModelConfig:
    name: str = "hybrid"
    params: dict = field(default_factory=dict)   # keyword arguments of the model's constructor


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-3
    patience: int = 8              # epochs without a better val macro-F1 before stopping
    imbalance: str = "sampler"     # "sampler", "weighted_loss" or "none"
    imbalance_power: float = 1.0   # class weight = (n_largest / n_class) ** power
    loss: str = "ce"               # "ce" or "focal"
    focal_gamma: float = 2.0
    augment: bool = True           # amplitude scaling, baseline offset and noise on train beats
    seed: int = 0
    device: str = "auto"           # "auto", "cpu" or "cuda"


@dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()


_CHOICES = {
    ("data", "mode"): ("realtime", "diagnostic"),
    ("split", "kind"): ("de_chazal", "random"),
    ("train", "imbalance"): ("sampler", "weighted_loss", "none"),
    ("train", "loss"): ("ce", "focal"),
    ("train", "device"): ("auto", "cpu", "cuda"),
}


def _coerce(value, default, where: str):
    """Turn a TOML value into the type of the dataclass default (lists -> tuples)."""
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise EdgeECGError(f"{where}: expected a list, got {value!r}")
        return tuple(str(v) if default and isinstance(default[0], str) else v for v in value)
    if isinstance(default, bool) or isinstance(default, str) or isinstance(default, dict):
        if not isinstance(value, type(default)):
            raise EdgeECGError(f"{where}: expected {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EdgeECGError(f"{where}: expected a number, got {value!r}")
        return type(default)(value)
    return value


def config_from_dict(raw: dict, source: str = "<config>") -> Config:
    """Build a :class:`Config` from a nested dict, rejecting unknown sections and keys."""
    sections = {}
    for f in dataclasses.fields(Config):
        section_raw = raw.get(f.name, {})
        if not isinstance(section_raw, dict):
            raise EdgeECGError(f"{source}: [{f.name}] must be a table")
        default = f.default
        known = {g.name for g in dataclasses.fields(default)}
        unknown = sorted(set(section_raw) - known)
        if unknown:
            raise EdgeECGError(f"{source}: unknown key(s) {', '.join(unknown)} in [{f.name}] "
                               f"(known: {', '.join(sorted(known))})")
        values = {}
        for key, value in section_raw.items():
            where = f"{source}: [{f.name}] {key}"
            values[key] = _coerce(value, getattr(default, key), where)
            allowed = _CHOICES.get((f.name, key))
            if allowed and values[key] not in allowed:
                raise EdgeECGError(f"{where} = {value!r} is not one of {', '.join(allowed)}")
        sections[f.name] = dataclasses.replace(default, **values)
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise EdgeECGError(f"{source}: unknown section(s) {', '.join(unknown)} "
                           f"(known: data, split, model, train)")
    return Config(**sections)


def load_config(path: str | Path | None) -> Config:
    """Read a TOML recipe; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeECGError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EdgeECGError(f"{path}: cannot read config ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise EdgeECGError(f"{path}: invalid TOML ({err})") from None
    return config_from_dict(raw, str(path))


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict (tuples as lists) of a config, as written to ``config.toml``."""

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {name: plain(section) for name, section in dataclasses.asdict(cfg).items()}


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(config_to_dict(cfg))


def with_overrides(cfg: Config, **train_overrides) -> Config:
    """Replace fields of ``[train]`` (e.g. from CLI flags); ``None`` values are ignored."""
    values = {k: v for k, v in train_overrides.items() if v is not None}
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **values))


def test_key(cfg: Config) -> str:
    """``"ds2"`` when the test part is de Chazal's DS2, else ``"test"`` (e.g. a random split)."""
    standard = set(DS2) - set(cfg.split.exclude)
    return "ds2" if cfg.split.kind == "de_chazal" and set(cfg.split.test) - set(cfg.split.exclude) == standard else "test"
