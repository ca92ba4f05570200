"""Run configuration as dataclasses, read from and written to TOML.

A recipe file (``training/*.toml``) has the sections ``[data]``, ``[split]``, ``[model]`` and
``[train]``; every key is optional and overrides the dataclass default. Unknown sections or keys
are errors, so a typo never silently falls back to a default. A variant names the recipe it changes
(``base = "hybrid"``) and holds only what it changes.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from edgeecg import resources
from edgeecg.errors import EdgeECGError

# de Chazal et al., IEEE TBME 2004: the standard inter-patient split of MIT-BIH.
DS1 = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
       "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230")
DS2 = ("100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
       "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234")
CLASSES = ("N", "S", "V", "F", "Q")     # the AAMI EC57 beat classes (edgeecg.processing.aami: from annotations)
# Paced records, excluded from AAMI EC57 evaluation by convention.
PACED = ("102", "104", "107", "217")


# RR features a recipe can name (``[data] rr_features``); ratios are unit-free, so a model that
# sees only ratios cannot learn a patient's heart rate. The ``post_*`` ones read the next RR
# interval and are allowed in diagnostic mode only.
# A short rhythm strip: the k-th interval before the beat's own over the regular-RR estimate
# (prev_over_regular is k = 1); row 34 of training/README.md.
STRIP_INTERVALS = 8      # the strip reaches back to the 8th interval before the beat's own
STRIP_RR_FEATURES = tuple(f"prev{k}_over_regular" for k in range(2, STRIP_INTERVALS + 1))
# Two features of the P wave, measured on the beat window rather than the RR intervals and fed to
# the RR stream (question 31 of training/README.md): how much the stretch before the QRS differs from
# the patient's template (mean absolute difference, and the correlation of the two), each against its
# own median over the patient's 32 beats before (edgeecg.processing.beats.p_wave_features).
P_WAVE_FEATURES = ("p_diff_rel", "p_corr_rel")
# pre_over_anchor, prev_over_anchor: the intervals over the rhythm a run of early beats interrupted
# (edgeecg.processing.beats.run_anchor; the regular-RR estimate outside runs; question 40).
CAUSAL_RR_FEATURES = ("pre_rr", "prev_rr", "local_rr", "avg_rr", "regular_rr", "pre_over_avg", "local_over_avg",
                      "pre_over_local", "pre_over_regular", "prev_over_regular", "pre_over_prev", "irregularity",
                      "pre_z_regular", "irregular_fraction", "pre_over_anchor", "prev_over_anchor"
                      ) + STRIP_RR_FEATURES + P_WAVE_FEATURES
FUTURE_RR_FEATURES = ("post_rr", "post_over_avg", "post_over_pre", "post_over_regular")
RR_FEATURES = CAUSAL_RR_FEATURES + FUTURE_RR_FEATURES
# Models that read the window backwards (a bidirectional recurrence): diagnostic mode only.
DIAGNOSTIC_ONLY_MODELS = ("cnn_bilstm",)


# [data] options read off the patient's earlier beats, off at their default: they need WFDB records with beat
# annotations; lone beats (the Kaggle CSVs) cannot have them, and the streaming front end does not compute them yet.
HISTORY_OPTIONS = ("polarity", "scale")


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
    rr_features: tuple[str, ...] = ("pre_over_regular", "prev_over_regular", "irregularity")
    regular_rr_band: tuple[float, float] = (0.8, 1.2)   # an RR within this share of the estimate is regular
    regular_rr_beats: int = 8      # regular RR intervals averaged into the estimate
    regular_rr_follow: float = 1 / 64   # share of an irregular interval's difference the estimate follows
    irregularity_beats: int = 16   # successive RR differences averaged into the irregularity feature
    template_beats: int = 16       # time constant (beats) of the running-average beat; 0 = off
    template_update: str = "regular"   # beats that update the template: "regular" (regular pre-RR) or "all"
    template_gate: float = 0.0     # > 0: only beats whose mean |beat - template| is at most this update it
    polarity: str = "as_recorded"  # "template": each beat's channels times the sign of the patient's template's
                                   # largest QRS deflection (before the beat; edgeecg.processing.beats.template_polarity)
    scale: str = "beat"            # a window's spread unit: its own ("beat", a z-score) or the patient's usual
                                   # beat's ("patient": the size against that beat is kept; processing.beats.patient_scale)
    beat_channel: bool = True      # the beat itself is channel 0 (False: only beat minus template)
    input_step: float = 0.0        # > 0: beats on this int8 grid (z-score units per step); 0: float
    record_fs: int = 0             # > 0: each record first resampled to this rate, its annotations onto
                                   # that grid (MIT-BIH as a 128 Hz front end such as SVDB's saw it); 0: off
    # Which database the examples come from (see edgeecg.data.make_splits): "mitdb" (WFDB records
    # with beat annotations, the fields above), "ptbxl" (PTB-XL 12-lead 10 s records, 5 diagnostic
    # superclasses, multi-label; `fs` 100 or 500 picks records100/ or records500/) or "kaggle_csv"
    # (the Kaggle heartbeat CSVs: 187 samples per beat at 125 Hz, one lead, classes N S V F Q).
    dataset: str = "mitdb"
    segment: int = 0               # ptbxl/kaggle_csv: samples per example, cropped or zero-padded at
                                   # the end (0: the native length: 10 s x fs, or 187)
    leads: tuple[str, ...] = ()    # ptbxl: leads in input order (empty: all 12 in the record's order)
    second_lead: str = ""          # mitdb: a second lead's beat (+ template) channels after the first's:
                                   # "other" (a two-lead record's other lead: V1, V2, V4 or V5 beside
                                   # MIT-BIH's MLII; SVDB's ECG2 beside ECG1), a name, an index; "": one lead

    @property
    def channels(self) -> int:
        """Input channels: the beat, plus the beat minus the patient's running template, per lead
        (MIT-BIH); the leads of a PTB-XL record; the one lead of a Kaggle beat."""
        if self.dataset in ("ptbxl", "kaggle_csv"):
            return self.n_leads
        return (int(self.beat_channel) + (1 if self.template_beats else 0)) * self.n_leads

    @property
    def history_options(self) -> tuple[str, ...]:
        """Those of :data:`HISTORY_OPTIONS` the recipe turns on."""
        return tuple(name for name in HISTORY_OPTIONS if getattr(self, name) != getattr(DataConfig, name))

    @property
    def n_leads(self) -> int:
        """Leads the recipe reads: a PTB-XL recipe's ``leads`` (all 12 if empty), one Kaggle beat, and
        a WFDB record's ``lead`` plus its ``second_lead`` where one is named."""
        if self.dataset == "ptbxl":
            return len(self.leads) or 12
        if self.dataset == "kaggle_csv":
            return 1
        return 2 if self.second_lead else 1

    @property
    def window(self) -> int:
        if self.segment:
            return self.segment
        if self.dataset == "ptbxl":
            return 10 * self.fs
        if self.dataset == "kaggle_csv":
            return 187
        return self.before + self.after

    @property
    def multilabel(self) -> bool:
        """Several labels per example (sigmoid outputs, binary cross-entropy): PTB-XL."""
        return self.dataset == "ptbxl"


def rr_feature_names(data: DataConfig) -> tuple[str, ...]:
    """The RR features a model of this data config takes, in input order (none outside MIT-BIH:
    a PTB-XL record or a Kaggle beat comes without beat annotations to measure RR from)."""
    return data.rr_features if data.dataset == "mitdb" else ()


@dataclass(frozen=True)
class SplitConfig:
    """Which records train, validate and test. ``kind="random"`` leaks patients (flagged)."""

    kind: str = "de_chazal"        # "de_chazal" (patient-wise) or "random" (beat-wise, leaky)
    train: tuple[str, ...] = DS1   # the final protocol: every DS1 record (choices come from `edgeecg cv`)
    val: tuple[str, ...] = ()      # DS1 records held out for early stopping (none in the final protocol)
    test: tuple[str, ...] = DS2
    exclude: tuple[str, ...] = PACED
    random_fractions: tuple[float, float] = (0.1, 0.2)   # val, test shares for kind="random"
                                                        # (kaggle_csv: the val share of the train CSV)
    # PTB-XL: the recommended split by `strat_fold` (patient-wise, label-stratified; folds 9 and 10
    # hold only records a human validated). The MIT-BIH record lists above do not apply there.
    train_folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    val_folds: tuple[int, ...] = (9,)
    test_folds: tuple[int, ...] = (10,)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "hybrid"
    params: dict = field(default_factory=dict)   # keyword arguments of the model's constructor


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 35               # chosen by `edgeecg cv` (pooled out-of-fold macro-F1)
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-3
    patience: int = 8              # epochs without a better val macro-F1 before stopping (0: never)
    schedule: str = "constant"     # "constant" (warm-up, then flat lr) or "onecycle" over `epochs`
    warmup_epochs: int = 2         # linear warm-up of the "constant" schedule
    ema_decay: float = 0.998       # > 0: keep and return an exponential moving average of the weights
    imbalance: str = "sampler"     # "sampler", "weighted_loss", "logit_adjust" or "none"
    imbalance_power: float = 0.5   # class weight = (n_largest / n_class) ** power; logit_adjust: tau
    class_powers: dict = field(default_factory=dict)   # sampler: a class's own power, e.g. {F = 0.5}
    patient_power: float = 0.0     # sampler: a beat also weighs (its patient's beats of its class) ** -power
    drop_regular_s: bool = False   # leave out of training the S beats whose pre-RR is not early (edgeecg.train)
    loss: str = "ce"               # "ce" or "focal"
    focal_gamma: float = 2.0
    augment: bool = True           # R-peak jitter (up to 3 samples) and white noise on train beats
    stretch: float = 0.12          # > 0: also stretch each train beat in time by up to this share (heart rate)
    jitter: str = "window"         # "window": shift every channel; "beat": shift the beat, not the template
    smooth: float = 0.0            # share of train beats low-pass filtered ([1 4 6 4 1] / 16): less bandwidth
    flip: float = 0.0              # share of train beats sign-inverted (every channel): reversed electrodes, another lead
    lead_shape: float = 0.0        # share of train beats turned up to 45 degrees towards their time derivative
                                   # (every channel): the QRS as a lead at another angle sees it (edgeecg.train)
    qrs_gain: float = 0.0          # share of train beats whose QRS is scaled by 0.2-1 against the rest of the
                                   # window (every channel): a lead that sees a small QRS beside its T wave
    epoch_beats: int = 0           # > 0: beats drawn per epoch (a large pool trains in bounded time); 0: all
    rhythm_epochs: int = 0         # > 0: first fit the factorized head's N-against-S function alone on the N and
                                   # S beats, unweighted, for this many passes, then keep it fixed but for its
                                   # threshold, the N and S biases (edgeecg.rhythm_stage)
    seed: int = 0
    device: str = "auto"           # "auto", "cpu" or "cuda"


@dataclass(frozen=True)
class SourceConfig:
    """A further WFDB database with beat annotations whose records join the training pool
    (``[[sources]]`` in a recipe). Its patients are ``database/record`` everywhere (splits, CV groups,
    caches, reports); MIT-BIH's, the primary source named by ``--data``, keep their bare names."""

    database: str = ""             # PhysioNet name and folder beside --data ("svdb": ../shared/data/svdb)
    records: tuple[str, ...] = ("all",)   # "all" (its RECORDS file, else every .hea) or record names
    lead: str = "0"                # a lead name or a 0-based index (SVDB has ECG1/ECG2, no MLII)
    path: str = ""                 # its folder when not beside --data ("": beside it, else downloaded)
    train_other_lead: bool = False  # training also reads each of its two-lead records' other lead, as more
                                    # one-lead beats of the same patient (a lead augmentation; never scored)
    other_lead_mode: str = "add"    # train_other_lead: "add" the other lead's beats to the recipe lead's, or
                                    # "swap": a fixed half of each patient's beats read from it instead (the
                                    # pool's size and balance unchanged)


@dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    sources: tuple[SourceConfig, ...] = ()


def _sources_from(raw, source: str) -> tuple[SourceConfig, ...]:
    """``[[sources]]``: an array of tables, each checked like a section."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise EdgeECGError(f"{source}: [[sources]] must be an array of tables")
    known = {f.name for f in dataclasses.fields(SourceConfig)}
    out = []
    for k, table in enumerate(raw):
        where = f"{source}: [[sources]] #{k + 1}"
        unknown = sorted(set(table) - known)
        if unknown:
            raise EdgeECGError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(table)
        if isinstance(values.get("records"), str):
            values["records"] = [values["records"]]
        if isinstance(values.get("lead"), int) and not isinstance(values["lead"], bool):
            values["lead"] = str(values["lead"])
        values = {key: _checked(v, getattr(SourceConfig, key), f"{where} {key}", ("sources", key))
                  for key, v in values.items()}
        if not values.get("database") or "/" in values["database"]:
            raise EdgeECGError(f"{where}: database must name a database (a folder name such as \"svdb\")")
        if values["database"] == "mitdb":
            raise EdgeECGError(f"{where}: mitdb is the primary source (--data, [split]); it cannot be a further one")
        src = SourceConfig(**values)
        if src.other_lead_mode != "add" and not src.train_other_lead:
            raise EdgeECGError(f"{where} other_lead_mode = {src.other_lead_mode!r} says how training reads "
                               f"the other lead: it needs train_other_lead = true")
        out.append(src)
    names = [s.database for s in out]
    if len(set(names)) != len(names):
        raise EdgeECGError(f"{source}: [[sources]] names a database twice")
    return tuple(out)


_CHOICES = {
    ("data", "mode"): ("realtime", "diagnostic"),
    ("data", "dataset"): ("mitdb", "ptbxl", "kaggle_csv"),
    ("data", "template_update"): ("all", "regular"),
    ("data", "polarity"): ("as_recorded", "template"),
    ("data", "scale"): ("beat", "patient"),
    ("split", "kind"): ("de_chazal", "random"),
    ("train", "imbalance"): ("sampler", "weighted_loss", "logit_adjust", "none"),
    ("train", "loss"): ("ce", "focal"),
    ("train", "device"): ("auto", "cpu", "cuda"),
    ("train", "schedule"): ("onecycle", "constant"),
    ("train", "jitter"): ("window", "beat"),
    ("sources", "other_lead_mode"): ("add", "swap"),
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


def _checked(value, default, where: str, choice: tuple[str, str]):
    """:func:`_coerce`, then the value must be one of :data:`_CHOICES` for ``choice`` (section, key) where listed."""
    value = _coerce(value, default, where)
    allowed = _CHOICES.get(choice)
    if allowed and value not in allowed:
        raise EdgeECGError(f"{where} = {value!r} is not one of {', '.join(allowed)}")
    return value


def config_from_dict(raw: dict, source: str = "<config>") -> Config:
    """Build a :class:`Config` from a nested dict, rejecting unknown sections and keys."""
    sections = {}
    for f in dataclasses.fields(Config):
        if f.name == "sources":
            sections["sources"] = _sources_from(raw.get("sources", []), source)
            continue
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
            values[key] = _checked(value, getattr(default, key), f"{source}: [{f.name}] {key}", (f.name, key))
        sections[f.name] = dataclasses.replace(default, **values)
    _check_rr_features(sections["data"], source)
    _check_rhythm_stage(sections, source)
    _check_class_powers(sections, source)
    _check_shares(sections, source)
    data = sections["data"]
    if data.history_options and data.dataset != "mitdb":
        name = data.history_options[0]
        raise EdgeECGError(f"{source}: [data] {name} = \"{getattr(data, name)}\" reads the patient's earlier beats: "
                           f"it needs dataset = \"mitdb\" (WFDB records with beat annotations)")
    if data.polarity == "template" and not data.template_beats:
        raise EdgeECGError(f"{source}: [data] polarity = \"template\" reads the patient's template: it needs "
                           f"template_beats > 0")
    if sections["data"].second_lead and sections["data"].dataset != "mitdb":
        raise EdgeECGError(f"{source}: [data] second_lead is for WFDB records with beat annotations "
                           f"(dataset = \"mitdb\"); PTB-XL names its leads in [data] leads")
    if sections["model"].name in DIAGNOSTIC_ONLY_MODELS and sections["data"].mode != "diagnostic":
        raise EdgeECGError(f"{source}: [model] name = {sections['model'].name!r} reads the whole window backwards "
                           f"(bidirectional LSTM): it is for [data] mode = \"diagnostic\" only, not "
                           f"{sections['data'].mode!r}")
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise EdgeECGError(f"{source}: unknown section(s) {', '.join(unknown)} "
                           f"(known: data, split, model, train, sources)")
    if sections["data"].second_lead and any(s.train_other_lead for s in sections["sources"]):
        raise EdgeECGError(f"{source}: [[sources]] train_other_lead trains a one-lead model on the other lead too; "
                           f"[data] second_lead already reads both leads as input")
    if sections["sources"] and (sections["data"].dataset != "mitdb" or sections["split"].kind != "de_chazal"):
        raise EdgeECGError(f"{source}: [[sources]] add WFDB records to a patient-wise MIT-BIH split: they need "
                           f"[data] dataset = \"mitdb\" and [split] kind = \"de_chazal\"")
    return Config(**sections)


RHYTHM_STAGE_NEEDS = ("[train] rhythm_epochs trains the factorized head's RR-only N-against-S function: it needs "
                      "model \"hybrid\" with factorized = true and morph_ns_units = 0, on beats with RR features "
                      "(dataset = \"mitdb\")")


def _check_rhythm_stage(sections: dict, source: str) -> None:
    epochs, model = sections["train"].rhythm_epochs, sections["model"]
    if epochs < 0:
        raise EdgeECGError(f"{source}: [train] rhythm_epochs = {epochs}: it must be 0 (off) or more")
    if epochs and (model.name != "hybrid" or not model.params.get("factorized", True)
                   or model.params.get("morph_ns_units", 0) or sections["data"].dataset != "mitdb"):
        raise EdgeECGError(f"{source}: {RHYTHM_STAGE_NEEDS}")


def _check_class_powers(sections: dict, source: str) -> None:
    train = sections["train"]
    if not train.class_powers:
        return
    if train.imbalance != "sampler" or sections["data"].dataset != "mitdb":
        raise EdgeECGError(f"{source}: [train] class_powers weigh the sampler's draws of the AAMI classes: they need "
                           f"imbalance = \"sampler\" and dataset = \"mitdb\"")
    bad = [str(k) for k, v in train.class_powers.items() if k not in CLASSES or isinstance(v, bool)
           or not isinstance(v, (int, float)) or not 0 <= v <= 2]
    if bad:
        raise EdgeECGError(f"{source}: [train] class_powers: {', '.join(bad)}: each key is a class "
                           f"({', '.join(CLASSES)}) and its value a power from 0 to 2")


# [train] keys that are a share of the training beats an augmentation changes
AUGMENT_SHARES = ("smooth", "flip", "lead_shape", "qrs_gain")


def _check_shares(sections: dict, source: str) -> None:
    train = sections["train"]
    for key in AUGMENT_SHARES:
        value = getattr(train, key)
        if not 0.0 <= value <= 1.0:
            raise EdgeECGError(f"{source}: [train] {key} = {value!r}: a share of the training beats, from 0 to 1")
    if train.qrs_gain and sections["data"].dataset != "mitdb":
        raise EdgeECGError(f"{source}: [train] qrs_gain scales the QRS around the R peak of a beat window: it needs "
                           f"dataset = \"mitdb\"")


def _check_rr_features(data: DataConfig, source: str) -> None:
    if data.dataset != "mitdb":
        return      # no RR features outside MIT-BIH (see rr_feature_names)
    unknown = [f for f in data.rr_features if f not in RR_FEATURES]
    if unknown:
        raise EdgeECGError(f"{source}: [data] rr_features: unknown {', '.join(unknown)} "
                           f"(known: {', '.join(RR_FEATURES)})")
    future = [f for f in data.rr_features if f in FUTURE_RR_FEATURES]
    if future and data.mode == "realtime":
        raise EdgeECGError(f"{source}: [data] rr_features {', '.join(future)} read the next beat: "
                           f"they need mode = \"diagnostic\"")
    if not data.rr_features:
        raise EdgeECGError(f"{source}: [data] rr_features is empty")
    p_wave = [f for f in data.rr_features if f in P_WAVE_FEATURES]
    if p_wave and not (data.template_beats and data.beat_channel):
        raise EdgeECGError(f"{source}: [data] rr_features {', '.join(p_wave)} compare the beat with the patient's "
                           f"template: they need template_beats > 0 and beat_channel = true")


def load_config(path: str | Path | None) -> Config:
    """Read a TOML recipe: a file, or a shipped recipe by name (``hybrid``: see :func:`recipe_names`);
    ``None`` gives the defaults. A recipe that starts with ``base = "hybrid"`` (a shipped recipe's
    name, or a ``.toml`` path beside it) is that recipe with its own keys on top (see :func:`read_recipe`)."""
    if path is None:
        return Config()
    raw, source = read_recipe(path)
    return config_from_dict(raw, source)


BASE_KEY = "base"   # as in a target file (edgeecg.targets)


def read_recipe(path: str | Path, _chain: tuple[str, ...] = ()) -> tuple[dict, str]:
    """A recipe's raw tables and the name errors give it, with its ``base`` chain resolved: the
    base recipe's tables, then this file's keys on top, table by table (``[model.params]`` key by key;
    an array such as ``[[sources]]`` or ``rr_features`` replaces the base's whole)."""
    name = str(path)
    if not resources.is_path(name) and not Path(name).is_file():
        text = resources.read("recipes", name)
        if text is None:
            raise EdgeECGError(f"unknown recipe {name!r} (shipped: {', '.join(recipe_names())}, "
                               f"or the path of a .toml file)")
        path, key = Path(f"{name}.toml"), f"recipe {name}"
    else:
        path = Path(path)
        text = resources.read_file(path, "config file")
        key = str(path.resolve())
    if key in _chain:
        raise EdgeECGError(f"{path}: {BASE_KEY} goes round in a loop")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise EdgeECGError(f"{path}: invalid TOML ({err})") from None
    base = raw.pop(BASE_KEY, None)
    if base is None:
        return raw, str(path)
    if not isinstance(base, str) or not base:
        raise EdgeECGError(f"{path}: {BASE_KEY} must name a shipped recipe or a .toml file, got {base!r}")
    if resources.is_path(base) and not Path(base).is_absolute():
        base = str(path.parent / base)
    try:
        base_raw, _ = read_recipe(base, _chain + (key,))
    except EdgeECGError as err:
        raise EdgeECGError(f"{path}: {BASE_KEY} = {base!r}: {err}") from None
    return resources.on_top(base_raw, raw), str(path)


def recipe_summary(name: str) -> tuple[str, str]:
    """A shipped recipe's base (``""``: none) and the first sentence of the comment it starts with."""
    text = resources.read("recipes", name) or ""
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    base = tomllib.loads(text).get(BASE_KEY, "")
    return (base if isinstance(base, str) else ""), _first_sentence(" ".join(comment))


def _first_sentence(text: str, width: int = 90) -> str:
    """Up to the first '.' or ':' outside brackets that ends a sentence (not "et al."), at most ``width``
    characters (cut at a word, with an ellipsis)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and ch in ".:" and text[i + 1:i + 2] in ("", " ") and not text[:i].endswith(" al"):
            text = text[:i]
            break
    return text if len(text) <= width else text[:width - 1].rsplit(" ", 1)[0] + "…"


def recipe_names() -> list[str]:
    """The recipes shipped in the package (``edgeecg/resources/recipes``; ``training/`` links to them)."""
    return resources.names("recipes")


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict (tuples as lists) of a config, as written to ``config.toml``."""

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    out = {name: plain(section) for name, section in dataclasses.asdict(cfg).items()}
    if not out["sources"]:
        del out["sources"]          # TOML has no empty array of tables; absent means none
    return out


def config_to_toml(cfg: Config) -> str:
    return tomli_w.dumps(config_to_dict(cfg))


def with_overrides(cfg: Config, **train_overrides) -> Config:
    """Replace fields of ``[train]`` (e.g. from CLI flags); ``None`` values are ignored."""
    values = {k: v for k, v in train_overrides.items() if v is not None}
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **values))


def test_key(cfg: Config) -> str:
    """``"ds2"`` when the test part is de Chazal's DS2, else ``"test"`` (e.g. a random split, PTB-XL's
    fold 10, the Kaggle test CSV)."""
    if cfg.data.dataset != "mitdb":
        return "test"
    standard = set(DS2) - set(cfg.split.exclude)
    return "ds2" if cfg.split.kind == "de_chazal" and set(cfg.split.test) - set(cfg.split.exclude) == standard else "test"
