from __future__ import annotations

from pathlib import Path

import pytest

from synthetic import write_record

REAL_MITDB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mitdb"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Beat caches go to a per-session temp dir; nothing is downloaded or written to ~."""
    monkeypatch.setenv("EDGEECG_CACHE", str(tmp_path_factory.getbasetemp() / "beat-cache"))
    monkeypatch.setenv("EDGEECG_DATA", str(tmp_path_factory.getbasetemp() / "no-download"))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """Four synthetic records: s1..s3 at 360 Hz, s4 at 250 Hz (exercises resampling)."""
    d = tmp_path_factory.mktemp("synth")
    for i, name in enumerate(("s1", "s2", "s3")):
        write_record(d, name, seed=i)
    write_record(d, "s4", fs=250.0, seed=3)
    return d


@pytest.fixture(scope="session")
def mitdb() -> Path:
    if not (REAL_MITDB / "100.hea").exists():
        pytest.skip(f"real MIT-BIH data not found at {REAL_MITDB}")
    return REAL_MITDB
