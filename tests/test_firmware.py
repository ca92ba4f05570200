"""``edgeecg firmware``: the ESP-IDF, Arduino and Linux projects. Every C file compiles warning-free as
C99 (and the library and the Arduino sketch as C++) for the host and cross for Cortex-M4, rv32imc,
aarch64 and Xtensa LX106 (-mtext-section-literals) where those compilers are installed; the ESP-IDF
app and the sketch, run on the host, and the Linux runner, native and aarch64 under qemu, print the
Python twin's lines on synthetic records in formats 212 and 16, raw samples and a real MIT-BIH
record; bad input is one line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import wfdb
from click.testing import CliRunner

from edgeecg.cli import main
from synthetic import write_record

STRICT_C = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
STRICT_CXX = ["-x", "c++", "-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
COMPONENT = "esp-idf/components/edgeecg"
SKETCH = "arduino/edgeecg/examples/PlaybackBeats"
CROSS = {   # name: compiler and flags (bare-metal ones get picolibc's headers where it is installed)
    "cortex_m4": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"],
    "rv32imc": ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32"],
    "aarch64": ["aarch64-linux-gnu-gcc"],
    "xtensa_lx106": ["xtensa-lx106-elf-gcc", "-mtext-section-literals"],
}
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on PATH")
needs_make = pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None,
                                reason="cc or make not on PATH")


def run_cmd(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, (cmd, res.stderr[-3000:])
    return res.stdout


def beat_lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


@pytest.fixture(scope="module")
def projects(exported, tmp_path_factory):
    d, _ = exported
    out = tmp_path_factory.mktemp("firmware") / "fw"
    res = CliRunner().invoke(main, ["firmware", str(d / "run"), "--target", str(d / "roomy.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "record s1" in res.output
    return out


@pytest.fixture(scope="module")
def twin(exported):
    """The Python twin's lines for int16 ADC samples."""
    from edgeecg.stream.frontend import front_end_spec, run_record
    from edgeecg.stream.run import load_export
    from edgeecg.targets import load_target
    from firmware_export.projects import beat_lines

    d, _ = exported
    target = load_target(str(d / "roomy.toml"))
    cfg, graph, _, _ = load_export(d / "run", target)
    spec = front_end_spec(cfg.data, graph, target.adc_hz, target.adc_gain)
    return lambda adc: beat_lines(run_record(np.asarray(adc, np.int16), spec, graph), spec.rate)


def lead_samples(directory: Path, name: str, lead: str = "MLII") -> np.ndarray:
    """The stored (digital) samples of one lead, as wfdb reads them."""
    rec = wfdb.rdrecord(str(directory / name), channel_names=[lead], physical=False)
    return np.asarray(rec.d_signal[:, 0]).astype(np.int16)


@pytest.fixture(scope="module")
def runner(projects, tmp_path_factory):
    """edgeecg_run built natively with `make` (strict flags)."""
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("cc or make not on PATH")
    build = tmp_path_factory.mktemp("linux") / "linux"
    shutil.copytree(projects / "linux", build)
    run_cmd(["make", "-C", build, f"CFLAGS={' '.join(STRICT_C)}"])
    return build / "edgeecg_run"


def cross_flags(name: str) -> list[str]:
    cc, *flags = CROSS[name]
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    if name != "aarch64":
        probe = subprocess.run([cc, "-print-file-name=picolibc.specs"], capture_output=True, text=True).stdout.strip()
        beside = Path("/usr/lib") / cc.removesuffix("-gcc") / "picolibc.specs"     # Debian's xtensa-lx106 puts it here
        specs = probe if probe not in ("", "picolibc.specs") else str(beside) if beside.exists() else None
        if specs:
            flags.append(f"--specs={specs}")
    return [cc, *flags]


# -- layout and the command ------------------------------------------------------------------------

def test_layout_and_contents(projects, synth_dir, twin):
    files = {str(p.relative_to(projects)) for p in projects.rglob("*") if p.is_file()}
    lib = {f"ecg_{n}.{e}" for n in ("stream", "qrs", "model") for e in "ch"} | {"ecg_print.h"}
    assert files == ({"README.md", "expected_playback.txt", "esp-idf/CMakeLists.txt", "esp-idf/main/CMakeLists.txt",
                      "esp-idf/main/main.c", "esp-idf/main/ecg_sample.h", f"{COMPONENT}/CMakeLists.txt",
                      f"{COMPONENT}/idf_component.yml", "arduino/edgeecg/library.properties",
                      f"{SKETCH}/PlaybackBeats.ino", f"{SKETCH}/ecg_sample.h", "linux/Makefile", "linux/main.c"}
                     | {f"{d}/{n}" for d in (COMPONENT, "arduino/edgeecg/src", "linux") for n in lib})
    text = {f: (projects / f).read_text() for f in files}
    assert "include($ENV{IDF_PATH}/tools/cmake/project.cmake)" in text["esp-idf/CMakeLists.txt"]
    assert re.search(r'idf_component_register\(SRCS "ecg_model.c" "ecg_qrs.c" "ecg_stream.c"\s+INCLUDE_DIRS "\."',
                     text[f"{COMPONENT}/CMakeLists.txt"])
    assert "REQUIRES edgeecg" in text["esp-idf/main/CMakeLists.txt"]
    props = dict(line.split("=", 1) for line in text["arduino/edgeecg/library.properties"].splitlines())
    assert {"name", "version", "author", "maintainer", "sentence", "paragraph", "category", "architectures"} <= set(props)
    assert props["includes"] == "ecg_stream.h,ecg_print.h"
    assert "SRCS = main.c ecg_model.c ecg_qrs.c ecg_stream.c" in text["linux/Makefile"]
    assert "$(CC)" in text["linux/Makefile"]
    for f, t in text.items():       # every placeholder substituted, every generated file as exported
        assert not re.search(r"@[A-Z_]+@", t) and "prefix_" not in t and "PREFIX_" not in t, f
    assert "read_adc_sample" in text["README.md"] and "read_adc_sample" in text["esp-idf/main/main.c"]
    # the embedded samples: the first 10 s of record s1's MLII; the expected lines: the twin's on them
    sample = text["esp-idf/main/ecg_sample.h"]
    assert sample == text[f"{SKETCH}/ecg_sample.h"] and '#define ECG_SAMPLE_RECORD "s1"' in sample
    values = np.array([int(v) for v in re.search(r"\{(.*)\}", sample, re.DOTALL).group(1).replace(",", " ").split()])
    adc = lead_samples(synth_dir, "s1")[:3600]
    assert np.array_equal(values, adc) and "#define ECG_SAMPLE_N 3600" in sample
    assert text["expected_playback.txt"].splitlines() == twin(adc) and len(twin(adc)) >= 5


def test_help_shows_an_example():
    res = CliRunner().invoke(main, ["firmware", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output and "edgeecg firmware runs/" in res.output


@pytest.mark.parametrize("case, message", [
    ("not_quantized", "run `edgeecg quantize"), ("exists", "already exists"), ("record", "'nope' not found"),
    ("rate", "sampled at 250 Hz"), ("not_run", "not a run directory"), ("data", "data directory does not exist"),
    ("target", "unknown target"),
])
def test_firmware_bad_input_is_one_line_and_writes_nothing(exported, synth_dir, tmp_path, case, message):
    from conftest import TARGET

    d, _ = exported
    out = tmp_path / "fw"
    (tmp_path / "other.toml").write_text(TARGET.format(name="other", flash=1 << 20))
    target = str(tmp_path / "other.toml") if case == "not_quantized" else str(d / "roomy.toml")
    args = [str(tmp_path if case == "not_run" else d / "run"), "--target", "nope" if case == "target" else target,
            "--out", str(out)]
    args += {"record": ["--record", "nope"], "rate": ["--record", "s4"], "data": ["--data", str(tmp_path / "no")]
             }.get(case, [])
    if case == "exists":
        out.mkdir()
        (out / "mine.txt").write_text("keep")
    res = CliRunner().invoke(main, ["firmware", *args])
    assert res.exit_code == 1 and message in res.output and res.output.count("\n") == 1, res.output
    if case == "exists":
        assert [p.name for p in out.iterdir()] == ["mine.txt"]
    else:
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fw.")]


def test_force_replaces_the_output(exported, tmp_path):
    d, _ = exported
    out = tmp_path / "fw"
    out.mkdir()
    (out / "old.txt").write_text("old")
    res = CliRunner().invoke(main, ["firmware", str(d / "run"), "--target", str(d / "roomy.toml"), "--out", str(out),
                                    "--record", "s2", "--force"])
    assert res.exit_code == 0, res.output
    assert not (out / "old.txt").exists() and (out / "linux" / "main.c").exists()
    assert '"s2"' in (out / "esp-idf" / "main" / "ecg_sample.h").read_text()


# -- compiling -----------------------------------------------------------------------------------

@needs_cc
def test_every_c_file_compiles_strictly_as_c99_and_the_library_as_cplusplus(projects, tmp_path):
    sources = sorted(projects.rglob("*.c"))
    assert len(sources) == 3 * 3 + 2
    for src in sources:
        run_cmd(["cc", *STRICT_C, "-I", projects / COMPONENT, "-c", src, "-o", tmp_path / "x.o"])
    if shutil.which("g++") is None:
        pytest.skip("g++ not on PATH")
    for src in sorted((projects / "arduino/edgeecg/src").glob("*.c")):
        run_cmd(["g++", *STRICT_CXX, "-c", src, "-o", tmp_path / "x.o"])


@pytest.mark.parametrize("platform", sorted(CROSS))
def test_cross_compiles(projects, tmp_path, platform):
    cmd = cross_flags(platform)
    sources = [*sorted((projects / COMPONENT).glob("*.c")), projects / "esp-idf/main/main.c"]
    if platform == "aarch64":
        sources.append(projects / "linux/main.c")
    for src in sources:
        run_cmd([*cmd, *STRICT_C, "-I", projects / COMPONENT, "-c", src, "-o", tmp_path / f"{src.stem}.o"])


# -- the examples, run on the host -----------------------------------------------------------------

HOST_APP_MAIN = "void app_main(void);\nint main(void) { app_main(); return 0; }\n"

ARDUINO_HOST = """\
#include <cstdio>
#include <cstdint>
struct SerialStub {                 // the part of Arduino's Serial the sketch uses
    void begin(long) {}
    void println(const char *s) { std::printf("%s\\n", s); }
    explicit operator bool() const { return true; }
};
static SerialStub Serial;
#include "PlaybackBeats.ino"
int main() { setup(); for (long i = 0; i <= ECG_SAMPLE_N + 1; ++i) loop(); return 0; }
"""


@needs_cc
def test_esp_idf_app_prints_the_twins_lines(projects, tmp_path):
    (tmp_path / "host.c").write_text(HOST_APP_MAIN)
    exe = tmp_path / "app"
    run_cmd(["cc", *STRICT_C, "-I", projects / COMPONENT, "-o", exe, projects / "esp-idf/main/main.c",
             tmp_path / "host.c", *sorted((projects / COMPONENT).glob("*.c"))])
    out = run_cmd([exe])
    expected = (projects / "expected_playback.txt").read_text().splitlines()
    assert beat_lines_of(out) == expected
    assert out.startswith("# edgeecg playback: record s1, 3600 samples at 360 Hz\n")
    assert out.endswith(f"# done: {len(expected)} beats\n")


@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("cc") is None, reason="g++ or cc not on PATH")
def test_arduino_sketch_compiles_as_cplusplus_and_prints_the_twins_lines(projects, tmp_path):
    src = projects / "arduino/edgeecg/src"
    objs = []
    for c in sorted(src.glob("*.c")):        # Arduino compiles a library's .c files as C
        objs.append(tmp_path / f"{c.stem}.o")
        run_cmd(["cc", *STRICT_C, "-c", c, "-o", objs[-1]])
    (tmp_path / "host.cpp").write_text(ARDUINO_HOST)
    exe = tmp_path / "sketch"
    run_cmd(["g++", "-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror", "-I", src, "-I", projects / SKETCH,
             "-o", exe, tmp_path / "host.cpp", *objs])
    out = run_cmd([exe])
    assert beat_lines_of(out) == (projects / "expected_playback.txt").read_text().splitlines()
    assert out.count("# done:") == 1


# -- the Linux runner --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Synthetic records in format 212 and 16 (an MLII-like lead second, and negative samples)."""
    d = tmp_path_factory.mktemp("fmt")
    write_record(d, "r212", fmt="212", seed=5, sig_names=("V1", "MLII"))
    write_record(d, "r16", fmt="16", seed=6)
    return d


@pytest.fixture(scope="module")
def aarch64_runner(projects, tmp_path_factory):
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    build = tmp_path_factory.mktemp("linux-aarch64") / "linux"
    shutil.copytree(projects / "linux", build)
    run_cmd(["make", "-C", build, "CC=aarch64-linux-gnu-gcc", "LDFLAGS=-static", f"CFLAGS={' '.join(STRICT_C)}"])
    return ["qemu-aarch64", build / "edgeecg_run"]


def test_linux_runner_matches_the_twin_on_212_16_and_raw(runner, records, twin):
    r212, r16 = lead_samples(records, "r212"), lead_samples(records, "r16")
    assert r212.min() < 0 and r16.min() < 0
    assert run_cmd([runner, records / "r212"]).splitlines() == twin(r212) != []
    assert run_cmd([runner, records / "r16.hea"]).splitlines() == twin(r16) != []
    assert run_cmd([runner, "--channel", "1", "--samples", "5000", records / "r212.hea"]).splitlines() == twin(r212[:5000])
    v1 = lead_samples(records, "r212", "V1")
    assert run_cmd([runner, "--channel", "0", records / "r212"]).splitlines() == twin(v1)
    raw = r16.astype("<i2").tobytes()
    res = subprocess.run([str(runner), "--raw", "-"], input=raw, capture_output=True)
    assert res.returncode == 0 and res.stdout.decode().splitlines() == twin(r16)
    (records / "r16.raw").write_bytes(raw)
    assert run_cmd([runner, "--samples", "4000", "--raw", records / "r16.raw"]).splitlines() == twin(r16[:4000])


def test_linux_runner_for_aarch64_under_qemu_matches_the_twin(aarch64_runner, records, twin):
    for name in ("r212", "r16"):
        assert run_cmd([*aarch64_runner, records / name]).splitlines() == twin(lead_samples(records, name)) != []


@pytest.mark.realdata
def test_linux_runner_matches_the_twin_on_a_real_record(runner, aarch64_runner, mitdb, twin):
    adc = lead_samples(mitdb, "100")
    expected = twin(adc)
    assert run_cmd([runner, mitdb / "100.hea"]).splitlines() == expected and len(expected) > 2000
    minute = twin(adc[:60 * 360])
    assert run_cmd([*aarch64_runner, "--samples", str(60 * 360), mitdb / "100"]).splitlines() == minute
    assert expected[:len(minute)] == minute


def _header(path: Path, fn) -> None:
    path.write_text(fn(path.read_text()))


@pytest.mark.parametrize("case, message", [
    ("missing", "No such file"), ("no_dat", "r.dat: No such file"), ("format", "format 310 is not supported"),
    ("odd_nsig", "odd record line"), ("few_lines", "2 signal lines for 3 signals"), ("odd_fs", "odd sampling"),
    ("spf", "samples per frame"), ("multiseg", "multi-segment"), ("rate", "sampled at 250 Hz"),
    ("gain", "100 ADC counts per mV"), ("no_lead", "no MLII signal"), ("channel", "no signal 5"),
    ("truncated", "truncated signal file"), ("raw_odd", "odd number of bytes"), ("usage", "usage:"),
])
def test_linux_runner_bad_input_is_one_line(runner, tmp_path, case, message):
    rec = tmp_path / "r"
    write_record(tmp_path, "r", n_beats=20, fs=250.0 if case == "rate" else 360.0,
                 sig_names=("V1", "V2") if case == "no_lead" else ("MLII", "V1"))
    hea = tmp_path / "r.hea"
    first = lambda f: lambda t: "\n".join([f(t.splitlines()[0]), *t.splitlines()[1:]]) + "\n"
    edits = {
        "format": lambda t: t.replace(" 212 ", " 310 "),
        "odd_nsig": first(lambda line: line.replace(" 2 ", " x ", 1)),
        "few_lines": first(lambda line: line.replace(" 2 ", " 3 ", 1)),
        "odd_fs": first(lambda line: line.replace(" 360 ", " fast ", 1)),
        "spf": lambda t: t.replace(" 212 ", " 212x2 "),
        "multiseg": first(lambda line: line.replace("r ", "r/2 ", 1)),
        "gain": lambda t: t.replace(" 200.0(0)/mV", " 100(0)/mV"),
    }
    if case in edits:
        _header(hea, edits[case])
    if case == "no_dat":
        (tmp_path / "r.dat").unlink()
    if case == "truncated":
        (tmp_path / "r.dat").write_bytes((tmp_path / "r.dat").read_bytes()[:1000])
    (tmp_path / "odd.raw").write_bytes(b"\x01\x02\x03")
    args = {"missing": [tmp_path / "nope"], "channel": ["--channel", "5", rec], "raw_odd": ["--raw", tmp_path / "odd.raw"],
            "usage": []}.get(case, [rec])
    res = subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True)
    assert res.returncode == (2 if case == "usage" else 1), (res.stdout, res.stderr)
    assert message in res.stderr and res.stderr.count("\n") == 1 and res.stdout == "", res.stderr


# -- a two-lead recipe ([data] second_lead) ----------------------------------------------------------

@pytest.fixture(scope="module")
def two_lead_projects(synth_dir, tmp_path_factory):
    """A tiny two-lead model (MLII and the other lead, V1) exported and wrapped in projects, and its twin."""
    from conftest import TARGET
    from test_train_cli import TINY

    from edgeecg.stream.frontend import front_end_spec, run_record
    from edgeecg.stream.run import load_export
    from edgeecg.targets import load_target
    from firmware_export.projects import beat_lines

    d = tmp_path_factory.mktemp("two-lead")
    (d / "tiny.toml").write_text(TINY.replace("epochs = 3", "epochs = 1") + '\n[data]\nsecond_lead = "other"\n')
    (d / "roomy.toml").write_text(TARGET.format(name="roomy", flash=1 << 20))
    runner = CliRunner()
    for args in (["train", "--data", synth_dir, "--out", d / "run", "--config", d / "tiny.toml", "--quiet"],
                 ["quantize", d / "run", "--target", d / "roomy.toml", "--prefix", "ecg", "--calib-beats", "100",
                  "--data", synth_dir],
                 ["firmware", d / "run", "--target", d / "roomy.toml", "--out", d / "fw"]):
        res = runner.invoke(main, [str(a) for a in args])
        assert res.exit_code == 0, res.output
    target = load_target(str(d / "roomy.toml"))
    cfg, graph, _, _ = load_export(d / "run", target)
    spec = front_end_spec(cfg.data, graph, target.adc_hz, target.adc_gain)
    assert spec.leads == 2
    return d / "fw", lambda adc: beat_lines(run_record(np.asarray(adc, np.int16), spec, graph), spec.rate)


@needs_make
def test_two_lead_projects_play_both_leads_as_the_twin(two_lead_projects, records, tmp_path):
    projects, twin = two_lead_projects
    sample_h = (projects / "esp-idf/main/ecg_sample.h").read_text()
    assert "#define ECG_SAMPLE_LEADS 2" in sample_h and "lead MLII and V1" in sample_h
    (tmp_path / "host.c").write_text(HOST_APP_MAIN)
    app = tmp_path / "app"
    run_cmd(["cc", *STRICT_C, "-I", projects / COMPONENT, "-o", app, projects / "esp-idf/main/main.c",
             tmp_path / "host.c", *sorted((projects / COMPONENT).glob("*.c"))])
    expected = (projects / "expected_playback.txt").read_text().splitlines()
    assert beat_lines_of(run_cmd([app])) == expected != []

    build = tmp_path / "linux"
    shutil.copytree(projects / "linux", build)
    run_cmd(["make", "-C", build, f"CFLAGS={' '.join(STRICT_C)}"])
    exe = build / "edgeecg_run"
    both = np.stack([lead_samples(records, "r212", "MLII"), lead_samples(records, "r212", "V1")], axis=1)
    lines = twin(both)
    assert lines != twin(np.stack([both[:, 0], both[:, 0]], axis=1))      # the second lead counts
    assert run_cmd([exe, records / "r212"]).splitlines() == lines != []    # MLII is signal 1, V1 the other
    assert run_cmd([exe, "--channel", "1", "--channel2", "0", records / "r212"]).splitlines() == lines
    res = subprocess.run([str(exe), "--raw", "-"], input=both.astype("<i2").tobytes(), capture_output=True)
    assert res.returncode == 0 and res.stdout.decode().splitlines() == lines
    res = subprocess.run([str(exe), "--raw", "-"], input=both.astype("<i2").tobytes()[:-2], capture_output=True, text=False)
    assert res.returncode == 1 and b"odd number of bytes" in res.stderr
    res = subprocess.run([str(exe), "--channel2", "1", records / "r212"], capture_output=True, text=True)
    assert res.returncode == 1 and "the first lead's" in res.stderr


def test_a_two_lead_device_classifies_both_leads_in_every_engine(two_lead_projects, records):
    import edgeecg
    from edgeecg.errors import EdgeECGError

    projects, twin = two_lead_projects
    run = projects.parent / "run"
    device = edgeecg.load_device(run, str(projects.parent / "roomy.toml"))
    both = np.stack([lead_samples(records, "r212", "MLII"), lead_samples(records, "r212", "V1")], axis=1)
    beats = device.classify(both, fs=360)
    assert [f"{s} {c} " + " ".join(map(str, g)) for s, c, g in zip(beats.sample, beats.labels, beats.logits)] == twin(both)
    c = device.classify(both, fs=360, engine="c")
    assert np.array_equal(c.sample, beats.sample) and np.array_equal(c.logits, beats.logits)
    flt = device.classify(both, fs=360, engine="float")
    assert len(flt) > 0.9 * len(beats) and flt.logits.dtype == np.float32
    with pytest.raises(EdgeECGError, match=r"expected \(n, 2\): the recipe reads 2 leads"):
        device.classify(both[:, 0], fs=360)
