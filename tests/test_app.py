"""The Streamlit app: AppTest on the tiny quantized run and synthetic records (WFDB folder, uploaded
WFDB files, a CSV of samples, bad uploads), and once served by ``streamlit run`` in headless Chromium."""

import os
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("streamlit", reason="streamlit is not installed (pip install streamlit)")
pytest.importorskip("captum", reason="captum is not installed (pip install captum)")
from streamlit.testing.v1 import AppTest  # noqa: E402

from edgeecg.app import (
    APP_PATH,
    TITLE,
    app_command,
    class_counts_table,
    parse_csv,
    signal_column,
    streamlit_args,
)  # noqa: E402
from headless import chromium, console_errors  # noqa: E402
from synthetic import synthetic_ecg, write_record  # noqa: E402


@pytest.fixture(scope="module")
def app_env(exported, synth_dir):
    from edgeecg.explain import Int8Model, find_export, load_record, probabilities
    from edgeecg.run import load_run

    d, _ = exported
    run = d / "run"
    cfg, model, _ = load_run(run)
    int8 = Int8Model(find_export(run), model)
    expected = {}
    for name in ("s1", "s2"):
        rb = load_record(synth_dir, name, cfg.data)
        pred = probabilities(model, rb.beats.x, rb.beats.rr).argmax(1)
        expected[name] = (rb, pred, int8.classes(rb.beats.x, rb.beats.rr))
    return run, synth_dir, expected


def _app(monkeypatch, run, data) -> AppTest:
    monkeypatch.setenv("EDGEECG_APP_RUN", str(run))
    monkeypatch.setenv("EDGEECG_APP_DATA", str(data))
    at = AppTest.from_file(str(APP_PATH), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _kinds(at) -> set[str]:
    out = set()

    def walk(node):
        out.add(type(node).__name__)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return out


def test_wfdb_folder_record_beats_classes_and_explanation(app_env, monkeypatch):
    run, data, expected = app_env
    at = _app(monkeypatch, run, data)
    assert at.title[0].value == TITLE
    rb, pred, int8 = expected["s1"]
    m = _metrics(at)
    assert m["record"] == "s1" and m["beats"] == f"{len(rb.beats.y):,d}"
    table = at.dataframe[0].value
    counts = class_counts_table(rb.beats.y, pred, int8)
    assert list(table.columns) == ["reference", "float", "int8 C"]
    for col in table.columns:
        assert table[col].tolist() == counts[col]
    assert at.get("vega_lite_chart"), "the ECG strip"
    assert "Image" in _kinds(at), "the beat's explanation figure"

    # browse the beats the model gets wrong, pick one: its classes and its explanation
    wrong = np.flatnonzero(pred != rb.beats.y)
    key = "float ≠ reference" if len(wrong) else "all beats"
    at.selectbox(key="beat_filter").set_value(key).run()
    beat = int(wrong[-1]) if len(wrong) else 3
    at.selectbox(key="beat").set_value(beat).run()
    assert not at.exception
    m = _metrics(at)
    names = "NSVFQ"
    assert m["reference"] == names[rb.beats.y[beat]]
    assert m["float"].startswith(names[pred[beat]])
    assert m["int8 C"] == names[int8[beat]]
    assert "Image" in _kinds(at)
    assert any(f"Beat {beat}" == h.value for h in at.subheader)

    # a click on a beat of the strip (the chart's selection event, as the browser sends it) selects it
    at.session_state["strip"] = {"selection": {"beat_pick": [{"beat": 2}]}}
    at.run()
    assert at.selectbox(key="beat").value == 2 and at.selectbox(key="beat_filter").value == "all beats"
    assert any("Beat 2" == h.value for h in at.subheader)

    at.selectbox(key="record").set_value("s2").run()
    assert _metrics(at)["record"] == "s2"
    assert _metrics(at)["beats"] == f"{len(expected['s2'][0].beats.y):,d}"


def _files(directory, name, skip=()):
    return [
        (f"{name}.{ext}", (directory / f"{name}.{ext}").read_bytes(), "application/octet-stream")
        for ext in ("hea", "dat", "atr")
        if ext not in skip
    ]


def test_uploaded_wfdb_files_and_bad_uploads(app_env, monkeypatch, tmp_path):
    run, data, expected = app_env
    at = _app(monkeypatch, run, data)
    at.radio(key="source").set_value("Upload WFDB files").run()
    at.file_uploader(key="wfdb_files").set_value(_files(data, "s2")).run()
    assert not at.exception and not at.error
    assert _metrics(at)["record"] == "s2"
    assert _metrics(at)["beats"] == f"{len(expected['s2'][0].beats.y):,d}"

    at.file_uploader(key="wfdb_files").set_value(_files(data, "s2", skip=("dat",))).run()
    assert at.error and "s2.dat missing" in at.error[0].value
    write_record(tmp_path, "cut", seed=5)
    dat = (tmp_path / "cut.dat").read_bytes()
    files = [f for f in _files(tmp_path, "cut") if not f[0].endswith(".dat")] + [("cut.dat", dat[: len(dat) // 2], "x")]
    at.file_uploader(key="wfdb_files").set_value(files).run()
    assert at.error and "truncated signal file" in at.error[0].value
    at.file_uploader(key="wfdb_files").set_value([("notes.txt", b"hello", "text/plain")]).run()
    assert at.error and "unexpected file type" in at.error[0].value

    # no .atr: the beats come from the QRS detector and have no reference class
    at.file_uploader(key="wfdb_files").set_value(_files(data, "s1", skip=("atr",))).run()
    assert not at.error and any("No reference annotations" in i.value for i in at.info)
    n_ref = len(expected["s1"][0].beats.y)
    assert abs(int(_metrics(at)["beats"]) - n_ref) <= 3
    assert list(at.dataframe[0].value.columns) == ["float", "int8 C"]


def test_csv_of_samples_and_a_bad_csv(app_env, monkeypatch):
    run, data, expected = app_env
    signal, _, _ = synthetic_ecg(seed=0)  # the signal of record s1, in mV at 360 Hz
    t = np.arange(len(signal)) / 360.0
    csv = "# fs = 360\ntime,MLII,V1\n" + "\n".join(f"{a:.5f},{b:.4f},{c:.4f}" for a, b, c in zip(t, *signal.T))
    at = _app(monkeypatch, run, data)
    at.radio(key="source").set_value("CSV of samples").run()
    at.file_uploader(key="csv_file").set_value(("strip.csv", csv.encode(), "text/csv")).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="csv_column").value == "MLII" and at.number_input(key="csv_fs").value == 360.0
    assert abs(int(_metrics(at)["beats"]) - len(expected["s1"][0].beats.y)) <= 3
    assert "Image" in _kinds(at)

    at.file_uploader(key="csv_file").set_value(("bad.csv", b"MLII\n" + b"0.1\n" * 20 + b"lead off\n", "text/csv")).run()
    assert at.error and "bad.csv: row 22 of column 'MLII' is 'lead off', not a number" in at.error[0].value
    at.file_uploader(key="csv_file").set_value(("flat.csv", b"0\n" * 2000, "text/csv")).run()
    assert at.error and "flat line" in at.error[0].value


def test_parse_csv():
    cols, fs = parse_csv(b"1.0;2.0\n" * 12, "x.csv")
    assert list(cols) == ["column 1", "column 2"] and fs is None and signal_column(cols) == "column 1"
    cols, fs = parse_csv(b"sample,ecg,fs\n" + b"".join(b"%d,0.5,250\n" % i for i in range(20)))
    assert fs == 250.0 and signal_column(cols) == "ecg" and "fs" not in cols
    with pytest.raises(Exception, match="empty"):
        parse_csv(b"\n# fs=360\n")
    with pytest.raises(Exception, match="not a text file"):
        parse_csv(b"\xff\xfe\x00\x81" * 10)


def test_app_command_starts_streamlit(monkeypatch, tmp_path):
    import edgeecg.app as app

    calls = []
    monkeypatch.setattr(app.subprocess, "call", lambda args, env: calls.append((args, env)) or 0)
    res = CliRunner().invoke(app_command, ["--run", str(tmp_path), "--data", str(tmp_path), "--port", "8599"])
    assert res.exit_code == 0, res.output
    args, env = calls[0]
    assert args[1:4] == ["-m", "streamlit", "run"] and args[4] == str(APP_PATH)
    assert args[args.index("--server.port") + 1] == "8599"
    assert env["EDGEECG_APP_RUN"] == str(tmp_path.resolve())
    res = CliRunner().invoke(app_command, ["--run", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "run directory does not exist" in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_page_in_headless_chromium(app_env, tmp_path):
    run, data, _ = app_env
    from headless import require_browser

    require_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    env = dict(os.environ, EDGEECG_APP_RUN=str(run), EDGEECG_APP_DATA=str(data))
    log = open(tmp_path / "streamlit.log", "wb")
    server = subprocess.Popen(streamlit_args(port, "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "streamlit.log").read_text()
            assert time.monotonic() < deadline, "streamlit did not start in 60 s"
            time.sleep(0.3)
        with chromium() as driver:
            driver.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(driver, 90)
            wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), TITLE))
            wait.until(
                ec.presence_of_element_located(
                    (By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"] canvas, ' '[data-testid="stVegaLiteChart"] svg')
                )
            )
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="stImage"] img')))
            assert driver.title == TITLE
            assert not driver.find_elements(
                By.CSS_SELECTOR, '[data-testid="stException"], [data-testid="stAlertContentError"]'
            )
            shot = tmp_path / "app.png"
            assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
            assert console_errors(driver) == []
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_a_bad_run_directory_is_one_clear_message(monkeypatch, tmp_path, synth_dir):
    at = _app(monkeypatch, tmp_path / "nope", synth_dir)
    assert at.error and "not a run directory (no model.pt" in at.error[0].value
