"""Where a recipe's records come from: MIT-BIH (``--data``, the primary source) and the WFDB databases
its ``[[sources]]`` add to the training pool. A patient is (database, record): MIT-BIH's keep their
bare names (``208``), every other database's are ``database/record`` (``svdb/801``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from edgeecg.config import Config, DataConfig, SourceConfig
from edgeecg.errors import EdgeECGError
from edgeecg.io.wfdb_records import PHYSIONET_DB, list_records, read_header, resolve_data_dir

PRIMARY = PHYSIONET_DB


def patient_id(database: str, record: str) -> str:
    """``record`` for MIT-BIH (the primary source keeps its bare names), else ``database/record``."""
    return record if database == PRIMARY else f"{database}/{record}"


def database_of(patient: str) -> str:
    return patient.split("/", 1)[0] if "/" in patient else PRIMARY


def record_of(patient: str) -> str:
    return patient.split("/", 1)[1] if "/" in patient else patient


@dataclass(frozen=True)
class Source:
    """A resolved source: where its records are, which of them, and which lead."""

    database: str
    path: Path
    records: tuple[str, ...]
    lead: str
    train_other_lead: bool = False
    other_lead_mode: str = "add"

    @property
    def patients(self) -> tuple[str, ...]:
        return tuple(patient_id(self.database, r) for r in self.records)


def resolve_source(data_dir: Path, src: SourceConfig) -> Source:
    """A ``[[sources]]`` entry's folder (``path``, else beside ``--data``, else downloaded) and records."""
    if src.path:
        path = Path(src.path)
        if not path.is_dir():
            raise EdgeECGError(f"{path}: data directory of source {src.database!r} does not exist")
    elif (Path(data_dir).parent / src.database).is_dir():
        path = Path(data_dir).parent / src.database
    else:
        explicit = () if src.records == ("all",) else src.records
        path = resolve_data_dir(None, explicit, database=src.database)
    records = tuple(list_records(path)) if src.records == ("all",) else src.records
    if not records:
        raise EdgeECGError(f"{path}: no WFDB records (*.hea) for source {src.database!r}")
    return Source(src.database, path, records, src.lead, src.train_other_lead, src.other_lead_mode)


def resolve_sources(data_dir: Path, cfg: Config) -> dict[str, Source]:
    """Every further source of a recipe by database name (MIT-BIH, the primary, is not among them)."""
    return {s.database: resolve_source(data_dir, s) for s in cfg.sources}


def source_patients(data_dir: Path, cfg: Config, sources: dict[str, Source] | None = None) -> tuple[str, ...]:
    """The patients the recipe's ``[[sources]]`` add to the training pool (``sources``: already resolved)."""
    sources = resolve_sources(data_dir, cfg) if sources is None else sources
    return tuple(p for s in sources.values() for p in s.patients)


def locate(data_dir: Path, patient: str, cfg: DataConfig,
           sources: dict[str, Source] | None = None) -> tuple[Path, str, DataConfig]:
    """Folder, record name and data config (its source's lead) of a patient."""
    db = database_of(patient)
    if db == PRIMARY:
        return Path(data_dir), patient, cfg
    if not sources or db not in sources:
        raise EdgeECGError(f"{patient}: database {db!r} is not a [[sources]] entry of this recipe")
    src = sources[db]
    return src.path, record_of(patient), dataclasses.replace(cfg, lead=src.lead)


def hours_of(folder: Path, name: str) -> float:
    """Hours of recording of one record, from its header's length and rate: false alarms are per hour."""
    header = read_header(folder, name)
    return float(header.sig_len) / float(header.fs) / 3600.0


def record_hours(data_dir: Path, patients, cfg: Config) -> dict[str, float]:
    """:func:`hours_of` each patient of a recipe's sources."""
    sources = resolve_sources(data_dir, cfg) if cfg.sources else None
    return {p: hours_of(*locate(data_dir, p, cfg.data, sources)[:2]) for p in dict.fromkeys(patients)}
