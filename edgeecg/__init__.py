"""edgeecg: ECG arrhythmia classifiers from PhysioNet records to microcontrollers."""

__version__ = "0.1.0"
