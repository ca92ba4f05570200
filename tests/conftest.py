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


# A test target (format with name and flash); everything it exports is held to its budget.
TARGET = """name = "{name}"
description = "test target"
isa = "x86-64"
clock_mhz = 1000
peak_macs_per_cycle = 1
[budget]
flash_bytes = {flash}
ram_bytes = 65536
max_macro_f1_loss_pp = 100
max_se_loss_pp = 100
[artifacts]
formats = ["torchscript", "c_int8"]
"""


@pytest.fixture(scope="session")
def exported(synth_dir, tmp_path_factory):
    """A tiny model trained on the synthetic records and quantized for a roomy test target."""
    from click.testing import CliRunner

    from edgeecg.cli import main
    from test_train_cli import TINY

    d = tmp_path_factory.mktemp("export")
    (d / "tiny.toml").write_text(TINY.replace("epochs = 3", "epochs = 2"))
    (d / "roomy.toml").write_text(TARGET.format(name="roomy", flash=1 << 20))
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--data", str(synth_dir), "--out", str(d / "run"),
                               "--config", str(d / "tiny.toml"), "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["quantize", str(d / "run"), "--target", str(d / "roomy.toml"), "--prefix", "ecg",
                               "--calib-beats", "100", "--data", str(synth_dir)])
    assert res.exit_code == 0, res.output
    return d, d / "run" / "export" / "roomy"
