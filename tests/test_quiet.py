"""A quieter CLI: third-party noise hidden (one line of ours says how much), real warnings kept; and
generated files get normal permissions (the umask's), not tempfile's private 0600 / 0700."""

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgeecg.atomic import atomic_dir, atomic_path, current_umask, write_text_atomic

NOISE_SCRIPT = textwrap.dedent("""
    import logging, os, sys, warnings
    from edgeecg.quiet import native_output_filtered, quiet_third_party
    quiet_third_party()
    warnings.warn("Statistics for quantized inputs were expected, but not specified; continuing anyway.", UserWarning)
    warnings.warn("    Warning: tf.lite.Interpreter is deprecated and is scheduled for deletion in TF 2.20.", UserWarning)
    warnings.warn("`torch.jit.load` is deprecated. Please switch to `torch.export`.", DeprecationWarning)
    logging.warning("Please consider to run pre-processing before quantization. Refer to example: ...")
    logging.getLogger("torch.onnx._internal.exporter._registration").warning("torchvision is not installed.")
    with native_output_filtered():
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        os.write(2, b"native line to keep\\n")
        os.write(1, b"stdout line to keep\\n")
    from tqdm import tqdm
    for _ in tqdm(range(20), disable=False, desc="epoch 1/1"):
        pass
    tqdm.write("epoch 1: loss 0.5")
    warnings.warn("a real warning of ours", UserWarning)
    logging.warning("a real log warning")
    if "--tf" in sys.argv:
        import tensorflow as tf
        print("tensorflow", tf.__version__, file=sys.stderr)
""")

NOISE = (
    "Statistics for quantized",
    "tf.lite.Interpreter is deprecated",
    "torch.jit.load",
    "pre-processing",
    "torchvision",
    "fully_quantize",
    "XNNPACK",
    "epoch 1/1",
    "oneDNN",
    "absl::InitializeLog",
)


def _run(tmp_path, *args, verbose=False):
    script = tmp_path / "noise.py"
    script.write_text(NOISE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "EDGEECG_VERBOSE")}
    if verbose:
        env["EDGEECG_VERBOSE"] = "1"
    # -W default shows DeprecationWarnings as pytest would; stderr is a pipe (not a terminal)
    return subprocess.run(
        [sys.executable, "-W", "default", str(script), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_third_party_noise_is_hidden_and_counted(tmp_path):
    res = _run(tmp_path)
    assert res.returncode == 0, res.stderr
    for noise in NOISE:
        assert noise not in res.stderr, (noise, res.stderr)
    for kept in ("native line to keep", "a real warning of ours", "a real log warning"):
        assert kept in res.stderr, (kept, res.stderr)
    assert "stdout line to keep" in res.stdout and "epoch 1: loss 0.5" in res.stdout  # tqdm.write: stdout
    # 3 warnings, 2 log records, 2 native lines
    assert res.stderr.strip().splitlines()[-1] == "edgeecg: hid 7 third-party warnings; EDGEECG_VERBOSE=1 shows them"


def test_verbose_shows_everything(tmp_path):
    res = _run(tmp_path, verbose=True)
    assert res.returncode == 0, res.stderr
    for noise in (
        "Statistics for quantized",
        "torch.jit.load",
        "pre-processing",
        "torchvision",
        "fully_quantize",
        "epoch 1/1",
    ):
        assert noise in res.stderr, noise
    assert "hid" not in res.stderr


def test_native_notices_printed_while_a_library_imports_are_hidden(tmp_path):
    """TensorFlow prints its oneDNN notice from its shared library as ``import tensorflow`` runs;
    the import hook captures a listed module's import (here a stand-in, not to import TF in a test)."""
    pkg = tmp_path / "fakelib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1795953651.691923   22042 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'a real import-time message\\n')\n"
        "VALUE = 42\n"
    )
    script = tmp_path / "imp.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\nimport edgeecg.quiet as q\n"
        "q.QUIET_IMPORTS = ('fakelib',)\nq.quiet_third_party()\nimport fakelib\n"
        "print('value', fakelib.VALUE, type(fakelib.__spec__.loader).__name__)\n" % str(tmp_path)
    )
    env = {k: v for k, v in os.environ.items() if k != "EDGEECG_VERBOSE"}
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "value 42 _QuietLoader"
    assert "oneDNN" not in res.stderr and "absl::InitializeLog" not in res.stderr
    assert "a real import-time message" in res.stderr and "hid 2 third-party warnings" in res.stderr


@pytest.fixture
def umask():
    def set_mask(mask):
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_atomic_outputs_respect_the_umask(tmp_path, umask):
    for mask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750), (0o077, 0o600, 0o700)):
        umask(mask)
        assert current_umask() == mask
        out = tmp_path / f"out{mask:o}"
        with atomic_dir(out) as tmp:
            write_text_atomic(tmp / "model.c", "int x;\n")
            (tmp / "plain.txt").write_text("x")
        assert _mode(out) == dir_mode
        assert _mode(out / "model.c") == file_mode == _mode(out / "plain.txt")
        with atomic_path(tmp_path / f"single{mask:o}.h") as tmp:
            tmp.write_text("#define X 1\n")
        assert _mode(tmp_path / f"single{mask:o}.h") == file_mode
    umask(0o022)
    target = tmp_path / "kept.txt"
    target.write_text("old")
    target.chmod(0o600)
    write_text_atomic(target, "new")  # replacing a file keeps its mode
    assert target.read_text() == "new" and _mode(target) == 0o600


def test_quantize_writes_readable_c_files(exported):
    _, export_dir = exported
    expected = 0o666 & ~current_umask()
    generated = [p for p in export_dir.iterdir() if p.suffix in (".c", ".h")]
    assert generated, "the export holds C sources"
    for p in generated:
        assert _mode(p) == expected, (p.name, oct(_mode(p)))
    assert _mode(export_dir) == 0o777 & ~current_umask()


def test_every_command_help_shows_an_example():
    from click.testing import CliRunner

    from edgeecg.cli import main

    def commands(group, path=()):
        for name, cmd in group.commands.items():
            yield (*path, name), cmd
            if hasattr(cmd, "commands"):
                yield from commands(cmd, (*path, name))

    for path, _ in commands(main):
        res = CliRunner().invoke(main, [*path, "--help"])
        assert res.exit_code == 0 and ("Example:" in res.output or "Examples:" in res.output), " ".join(path)
