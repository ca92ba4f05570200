"""The data layer: where records come from (sources), the beats made of them (beat sets, cached per
record) and the patient-wise splits. It imports nothing above it (training, metrics, the CLI).

Modules: :mod:`~edgeecg.data.sources` (MIT-BIH and the recipe's further WFDB databases; a patient is
(database, record)), :mod:`~edgeecg.data.cache` (beats per record, on disk), :mod:`~edgeecg.data.splits`
(DS1/DS2 and the other datasets' splits), :mod:`~edgeecg.data.ptbxl` and :mod:`~edgeecg.data.kaggle`
(the two other datasets' readers).
"""

from edgeecg.data.beatset import BeatSet
from edgeecg.data.cache import (
    default_cache_dir,
    load_beats,
    load_pool,
    load_record_beats,
    other_lead_beats,
    swap_other_lead,
    training_beats,
)
from edgeecg.data.sources import (
    PRIMARY,
    Source,
    database_of,
    patient_id,
    record_hours,
    record_of,
    resolve_sources,
    source_patients,
)
from edgeecg.data.splits import check_split, input_hashes, is_leaky, make_splits, split_records

__all__ = ["BeatSet", "PRIMARY", "Source", "check_split", "database_of", "default_cache_dir", "input_hashes",
           "is_leaky", "load_beats", "load_pool", "load_record_beats", "make_splits", "other_lead_beats",
           "patient_id", "record_hours", "record_of", "resolve_sources", "source_patients", "split_records",
           "swap_other_lead", "training_beats"]
