"""The package as a user installs it: a wheel built from this checkout, unpacked into a fresh virtual
environment outside it (the dependencies come from this environment's site-packages, without its
editable install), then run from another directory: shipped targets and recipes found by name, a
target file by path, a bad target file refused with one line; and the Raspberry Pi's runtime-only
use (bench and classify an exported run) with torch and TensorFlow made unimportable, and the same
from a real `pip install "edgeecg[runtime]"` into a fresh environment (dependencies from the index)."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    d = tmp_path_factory.mktemp("install")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                          "-w", str(d / "dist")], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {res.stderr.strip().splitlines()[-1:]}")
    wheel = next((d / "dist").glob("edgeecg-*.whl"))
    venv = d / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    # the dependencies: this environment's site-packages as a plain path (its .pth files, the
    # editable install among them, are not processed from there)
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "runtime_only_blocker.py").write_text(BLOCKER)
    (site / "aa_runtime_only.pth").write_text("import runtime_only_blocker\n")
    work = d / "elsewhere"
    work.mkdir()
    return venv / "bin" / "python", site, work, wheel


def run(installed, *args, code=None, runtime_only=False):
    python, _, work, _ = installed
    cmd = [str(python), "-c", code] if code else [str(python), "-m", "edgeecg", *args]
    env = {"PATH": "/usr/bin:/bin", **({"EDGEECG_TEST_RUNTIME_ONLY": "1"} if runtime_only else {})}
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)


# What `pip install "edgeecg[runtime]"` leaves out, made unimportable in the installed environment
# when EDGEECG_TEST_RUNTIME_ONLY is set (a .pth line runs this at start-up).
BLOCKER = """import importlib.abc, os, sys
BLOCKED = {"torch", "tensorflow", "tflite_micro", "torchao", "onnxscript", "keras"}
class RuntimeOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (runtime-only test)")
        return None
if os.environ.get("EDGEECG_TEST_RUNTIME_ONLY"):
    sys.meta_path.insert(0, RuntimeOnly())
"""


def test_the_wheel_carries_the_targets_and_recipes(installed):
    names = zipfile.ZipFile(installed[3]).namelist()
    assert "edgeecg/resources/targets/esp32.toml" in names and "edgeecg/resources/recipes/hybrid.toml" in names
    assert "edgeecg/bench/csrc/xtensa_lx106.ld" in names and "firmware_export/templates/kernels.c" in names


def test_installed_package_runs_from_outside_the_checkout(installed):
    _, site, _, _ = installed
    res = run(installed, code="import edgeecg, edgeecg.config as c; print(edgeecg.__file__); "
                              "cfg = c.load_config('hybrid'); print(cfg.train.epochs, cfg.sources[0].database); "
                              "v = c.load_config('hybrid_two_lead_power035'); print(v.train.imbalance_power, "
                              "v.data.second_lead, v.train.epochs)")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(str(site)) and lines[1] == "10 svdb"
    assert lines[2] == "0.35 other 10"          # a variant's base chain, read from the wheel
    res = run(installed, "targets")
    assert res.returncode == 0 and all(t in res.stdout for t in ("esp32", "esp32c3", "rpi4")), res.stderr


def test_installed_quantize_takes_a_shipped_target_and_a_target_file(installed, exported, synth_dir):
    d, _ = exported
    python, _, work, _ = installed
    res = run(installed, "quantize", str(d / "run"), "--target", "esp32", "--data", str(synth_dir),
              "--calib-beats", "100", "--out", str(work / "esp32"))
    assert "unknown target" not in res.stderr + res.stdout
    assert (work / "esp32" / "report.json").exists(), res.stderr + res.stdout     # written even if over budget
    roomy = (d / "roomy.toml").read_text()
    (work / "board.toml").write_text(roomy)
    res = run(installed, "quantize", str(d / "run"), "--target", "./board.toml", "--data", str(synth_dir),
              "--calib-beats", "100", "--out", str(work / "board"))
    assert res.returncode == 0, res.stderr + res.stdout
    (work / "bad.toml").write_text(roomy.replace('isa = "x86-64"\n', 'isa = "x86-64"\nc_block = 3\n'))
    res = run(installed, "quantize", str(d / "run"), "--target", "./bad.toml", "--out", str(work / "bad"))
    assert res.returncode == 1, res.stderr + res.stdout
    assert "bad.toml: c_block = 3 must be an even number >= 2" in res.stderr + res.stdout
    assert (res.stderr + res.stdout).strip().count("\n") == 0 and not (work / "bad").exists()


def test_runtime_only_bench_and_classify_an_exported_run(installed, exported, synth_dir):
    """No torch, no TensorFlow: the bench skips their rows and runs the rest; the Python interface
    classifies a record with the compiled C and with the integer twin, identically."""
    d, export = exported
    _, _, work, _ = installed
    res = run(installed, code="import torch", runtime_only=True)
    assert res.returncode != 0 and "runtime-only test" in res.stderr
    res = run(installed, "bench", str(d / "run"), "--target", str(d / "roomy.toml"), "--export", str(export),
              "--out", str(work / "bench-runtime"), "--data", str(synth_dir), "--max-beats", "60", "--repeat", "3",
              "--warmup", "1", "--no-cross", runtime_only=True)
    assert res.returncode == 0, res.stderr + res.stdout
    bench = (work / "bench-runtime" / "bench.json").read_text()
    assert '"reference": "onnx_fp32"' in bench and '"c_int8"' in bench
    code = (f"import edgeecg\nfrom edgeecg.stream.run import read_lead\nfrom pathlib import Path\n"
            f"adc, fs, *_ = read_lead(Path({str(synth_dir)!r}), 's1', 'MLII')\n"
            f"dev = edgeecg.load_device({str(d / 'run')!r}, {str(d / 'roomy.toml')!r})\n"
            f"a, b = dev.classify(adc, fs), dev.classify(adc, fs, engine='c')\n"
            f"assert len(a) > 10 and (a.classes == b.classes).all() and (a.sample == b.sample).all()\n"
            f"import sys; assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules\nprint(len(a))")
    res = run(installed, code=code, runtime_only=True)
    assert res.returncode == 0 and int(res.stdout.strip()) > 10, res.stderr


@pytest.fixture(scope="module")
def runtime_venv(installed, tmp_path_factory):
    """``pip install "edgeecg[runtime] @ file://WHEEL"`` into a fresh virtual environment, its
    dependencies resolved by pip from the package index (as a Raspberry Pi user gets them); skipped
    where no index answers. No blocker: torch and TensorFlow are simply not installed."""
    wheel = installed[3]
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}   # nothing of this checkout
    res = subprocess.run([*pip, "install", f"edgeecg[runtime] @ {wheel.as_uri()}"], capture_output=True, text=True,
                         timeout=1200, env=env)
    if res.returncode != 0:
        pytest.skip(f"pip could not install the runtime extra here: {res.stderr.strip().splitlines()[-1:]}")
    return venv / "bin" / "python"


def test_a_real_runtime_only_install_benches_and_classifies(runtime_venv, installed, exported, synth_dir):
    d, export = exported
    work = installed[2]
    python = str(runtime_venv)
    env = {"PATH": f"{runtime_venv.parent}:/usr/bin:/bin"}
    res = subprocess.run([python, "-c", "import importlib.util as u; print([m for m in ('torch', 'tensorflow', "
                                        "'onnxscript', 'tflite_micro') if u.find_spec(m)])"],
                         capture_output=True, text=True, env=env, cwd=work)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr
    res = subprocess.run([python, "-m", "edgeecg", "bench", str(d / "run"), "--target", str(d / "roomy.toml"),
                          "--export", str(export), "--out", str(work / "bench-pip-runtime"), "--data", str(synth_dir),
                          "--max-beats", "60", "--repeat", "3", "--warmup", "1", "--no-cross"],
                         capture_output=True, text=True, env=env, cwd=work)
    assert res.returncode == 0, res.stderr + res.stdout
    assert '"c_int8"' in (work / "bench-pip-runtime" / "bench.json").read_text()
    code = (f"import edgeecg\nfrom edgeecg.stream.run import read_lead\nfrom pathlib import Path\n"
            f"adc, fs, *_ = read_lead(Path({str(synth_dir)!r}), 's1', 'MLII')\n"
            f"dev = edgeecg.load_device({str(d / 'run')!r}, {str(d / 'roomy.toml')!r})\n"
            f"a, b = dev.classify(adc, fs), dev.classify(adc, fs, engine='c')\n"
            f"assert (a.classes == b.classes).all()\nprint(len(a))")
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd=work)
    assert res.returncode == 0 and int(res.stdout.strip()) > 10, res.stderr


@pytest.mark.realdata
def test_installed_train_takes_a_shipped_recipe_by_name(installed, mitdb):
    """`edgeecg train --config hybrid` from the wheel, outside the checkout: the shipped default recipe
    (DS1 + the shared SVDB records beside --data) found by name; one epoch."""
    python, _, work, _ = installed
    env = {"PATH": "/usr/bin:/bin", "EDGEECG_CACHE": os.environ["EDGEECG_CACHE"]}
    res = subprocess.run([str(python), "-m", "edgeecg", "train", "--config", "hybrid", "--data", str(mitdb),
                          "--epochs", "1", "--out", str(work / "hybrid"), "--quiet"],
                         capture_output=True, text=True, env=env, cwd=work, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]
    config = (work / "hybrid" / "config.toml").read_text()
    assert 'database = "svdb"' in config and "epochs = 1" in config
    assert "ds2" in (work / "hybrid" / "metrics.json").read_text()
