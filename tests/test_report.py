"""``edgeecg report``: one self-contained report.html, every section present, rendered in headless
Chromium without console errors or network loads; absent inputs say "not run"."""

import json
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgeecg.report import SECTIONS, report_command
from headless import chromium, console_errors

SECTION_IDS = [sid for sid, _ in SECTIONS]
try:
    import captum  # noqa: F401

    HAVE_CAPTUM = True
except ImportError:  # the explanations section is then "not run"
    HAVE_CAPTUM = False


@pytest.fixture(scope="module")
def full_run(exported, synth_dir, tmp_path_factory):
    """A copy of the tiny quantized run with a bench, an explanation, and cv/seeds/qrs/stream JSON."""
    from edgeecg.cli import main
    from edgeecg.config import load_config
    from edgeecg.cv import CVResult, cv_json
    from edgeecg.explain import explain_run
    from edgeecg.metrics import classification_report
    from edgeecg.seeds import collect
    from edgeecg.stream.detection import detect_records

    d, _ = exported
    root = tmp_path_factory.mktemp("report")
    run = root / "run"
    shutil.copytree(d / "run", run)
    res = CliRunner().invoke(
        main,
        [
            "bench",
            str(run),
            "--target",
            str(d / "roomy.toml"),
            "--data",
            str(synth_dir),
            "--no-cross",
            "--max-beats",
            "60",
            "--repeat",
            "3",
            "--warmup",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    if HAVE_CAPTUM:
        explain_run(
            run,
            "s1",
            run / "explain" / "s1",
            synth_dir,
            beats="1,2",
            test_split=False,
            per_class=4,
            max_int8=1,
            steps=4,
            log=lambda m: None,
        )

    cfg = load_config(run / "config.toml")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    record = np.where(np.arange(300) < 150, "s1", "s2")
    proba = rng.dirichlet(np.ones(5), size=(3, 300)).astype(np.float32)
    (root / "cv.json").write_text(json.dumps(cv_json(CVResult([("s1",), ("s2",)], y, record, proba, 2), cfg, 2, 0)))
    seeds = collect([run, run], "roomy", "test") | {"seeds": [0, 1], "target": "roomy", "test_key": "test"}
    (root / "seeds.json").write_text(json.dumps(seeds))
    (root / "qrs").mkdir()
    (root / "qrs" / "qrs.json").write_text(json.dumps(detect_records(synth_dir, ["s1", "s2"], peers=())))
    stream = {
        "bit_exact_c_vs_python": True,
        "ds2": classification_report(y, y),
        "ds2_reference_beats": classification_report(y, proba[0].argmax(1)),
        "ram_bytes": 5120,
        "records": 2,
    }
    (root / "stream.json").write_text(json.dumps(stream))
    return root, run


def _report(run, out, *extra):
    res = CliRunner().invoke(report_command, [str(run), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def test_full_report_renders_every_section_in_chromium(full_run, tmp_path):
    root, run = full_run
    out = tmp_path / "report.html"
    page = _report(
        run,
        out,
        "--cv",
        str(root / "cv.json"),
        "--seeds",
        str(root),
        "--qrs",
        str(root / "qrs"),
        "--stream",
        str(root / "stream.json"),
    )
    # self-contained: nothing is fetched at view time
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script" not in page and "@import" not in page
    for sid in SECTION_IDS:
        body = _section(page, sid)
        if sid == "explanations" and not HAVE_CAPTUM:
            assert "not run" in body
            continue
        assert "not run" not in body and "could not" not in body, (sid, body[:300])
    # the figures each section must hold (inline SVG charts, base64 PNGs)
    n_svg = {sid: _section(page, sid).count("<svg") for sid in SECTION_IDS}
    n_img = {sid: _section(page, sid).count("<img") for sid in SECTION_IDS}
    for sid in ("metrics", "per-record", "cv", "seeds", "quantization", "sizes", "qrs", "stream"):
        assert n_svg[sid] >= 1, sid
    assert n_svg["bench"] >= 2  # latency and size charts
    assert n_img["explanations"] >= (3 if HAVE_CAPTUM else 0) and n_img["training"] >= 1
    assert "c_int8" in _section(page, "bench") and "rounding budget" in _section(page, "quantization")
    manifest = json.loads((run / "manifest.json").read_text())
    hashes = _section(page, "hashes")
    assert all(h in hashes for h in manifest["inputs"].values())
    assert all(h in hashes for h in manifest["outputs"].values())
    assert out.stat().st_mode & 0o044 == 0o044  # readable like any file (umask 022)

    with chromium() as driver:
        from selenium.webdriver.common.by import By

        driver.get(out.as_uri())
        assert driver.title.startswith("edgeecg report")
        for sid, title in SECTIONS:
            el = driver.find_element(By.ID, sid)
            assert el.is_displayed() and el.find_element(By.TAG_NAME, "h2").text == title
        imgs = driver.find_elements(By.CSS_SELECTOR, "img")
        assert imgs and all(
            driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in imgs
        )
        svgs = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(svgs) == page.count('<svg class="chart"')
        assert all(s.size["width"] > 50 and s.size["height"] > 50 for s in svgs)
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(height, 12000))
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 50_000
        assert console_errors(driver) == []


def test_absent_inputs_say_not_run(full_run, tmp_path):
    _, run = full_run
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "config.toml", bare / "config.toml")
    (bare / "metrics.json").write_text("{ not json")
    page = _report(bare, tmp_path / "bare.html")
    assert "could not read" in _section(page, "metrics") and "metrics.json" in _section(page, "metrics")
    for sid in SECTION_IDS:
        if sid in ("recipe", "metrics", "per-record", "hashes"):
            continue
        assert "not run" in _section(page, sid), sid
    assert "[model]" in _section(page, "recipe")

    empty = tmp_path / "empty"
    empty.mkdir()
    page = _report(empty, tmp_path / "empty.html")
    for sid in SECTION_IDS:
        body = _section(page, sid)
        assert "not run" in body or "could not" in body, sid
    with chromium() as driver:
        driver.get((tmp_path / "empty.html").as_uri())
        assert len(driver.find_elements("css selector", "section")) == len(SECTIONS)
        assert console_errors(driver) == []


def test_report_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(report_command, [str(tmp_path / "nope")])
    assert res.exit_code == 1 and "run directory does not exist" in res.output
    (tmp_path / "run").mkdir()
    res = CliRunner().invoke(report_command, [str(tmp_path / "run"), "--cv", str(tmp_path / "missing.json")])
    assert res.exit_code == 1 and "missing.json: not found" in res.output
