"""Reading WFDB records, and the one-line errors for every kind of bad file."""

import shutil

import numpy as np
import pytest

from edgeecg.errors import EdgeECGError
from edgeecg.io import list_records, rdann, rdrecord, resolve_data_dir
from synthetic import synthetic_ecg, write_record


def test_reads_synthetic_record(synth_dir):
    rec = rdrecord(synth_dir, "s1")
    sig, peaks, symbols = synthetic_ecg(seed=0)
    assert rec.fs == 360.0
    np.testing.assert_allclose(rec.signal, sig[:, 0], atol=1 / 200)   # one ADC step
    np.testing.assert_array_equal(rec.ann_samples, peaks)
    assert list(rec.ann_symbols) == list(symbols)


def test_lists_records(synth_dir):
    assert list_records(synth_dir) == ["s1", "s2", "s3", "s4"]


def test_parent_folder_holding_mitdb_is_accepted(tmp_path, synth_dir):
    shutil.copytree(synth_dir, tmp_path / "mitdb")
    assert resolve_data_dir(tmp_path) == tmp_path / "mitdb"


def _copy(synth_dir, tmp_path, name="s1"):
    for ext in ("hea", "dat", "atr"):
        shutil.copy(synth_dir / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    return tmp_path


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "s1.dat").unlink(), "s1.dat: signal file missing"),
    (lambda d: (d / "s1.atr").unlink(), "s1.atr: annotations missing"),
    (lambda d: (d / "s1.dat").write_bytes((d / "s1.dat").read_bytes()[:1000]), "s1.dat: truncated signal file"),
    (lambda d: (d / "s1.hea").write_text("s1 two 360 abc\ngarbage\n"), "s1.hea: corrupt header"),
    (lambda d: (d / "s1.atr").write_bytes(b"\x00\x01garbage"), "s1.atr: cannot read annotations"),
])
def test_bad_files_give_one_line_naming_the_file(synth_dir, tmp_path, damage, message):
    d = _copy(synth_dir, tmp_path)
    damage(d)
    with pytest.raises(EdgeECGError) as err:
        rdrecord(d, "s1")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_directory_and_unknown_record(tmp_path, synth_dir):
    with pytest.raises(EdgeECGError, match="data directory does not exist"):
        resolve_data_dir(tmp_path / "nope")
    with pytest.raises(EdgeECGError, match=r"record '999' not found"):
        rdrecord(synth_dir, "999")


def test_nan_and_flat_signals_are_rejected(tmp_path):
    sig, _, _ = synthetic_ecg()
    nan = sig.copy()
    nan[100:200, 0] = np.nan
    write_record(tmp_path, "nan", fmt="16", signal=nan)
    with pytest.raises(EdgeECGError, match="nan.dat: lead MLII has 100 NaN samples"):
        rdrecord(tmp_path, "nan")
    write_record(tmp_path, "flat", fmt="16", signal=np.full_like(sig, 0.5))
    with pytest.raises(EdgeECGError, match="flat.dat: lead MLII is a flat line"):
        rdrecord(tmp_path, "flat")


def test_missing_lead_is_named(synth_dir):
    with pytest.raises(EdgeECGError, match=r"no lead 'II' \(leads: MLII, V1\)"):
        rdrecord(synth_dir, "s1", lead="II")


def test_rdann_reads_symbols(synth_dir):
    samples, symbols = rdann(synth_dir, "s2")
    assert len(samples) == len(symbols) == 80
    assert set(symbols) == {"N", "A", "V"}


def test_download_failure_says_how_to_use_a_local_copy(tmp_path, monkeypatch):
    import wfdb

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(wfdb, "dl_database", offline)
    monkeypatch.setenv("EDGEECG_DATA", str(tmp_path / "dl"))
    with pytest.raises(EdgeECGError, match="cannot download mitdb from PhysioNet.*--data"):
        resolve_data_dir(None, ("100",))
