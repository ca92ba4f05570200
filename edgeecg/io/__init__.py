"""Reading ECG databases: PhysioNet WFDB records (MIT-BIH) with clear errors on bad files."""

from edgeecg.io.wfdb_records import Record, list_records, rdann, rdrecord, read_header, record_files, resolve_data_dir

__all__ = ["Record", "list_records", "rdann", "rdrecord", "read_header", "record_files", "resolve_data_dir"]
