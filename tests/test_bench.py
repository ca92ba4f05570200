"""`edgeecg bench` on the tiny exported model: every row present, consistent, and a budget verdict."""

import json
import sys

import pytest
from click.testing import CliRunner

from conftest import TARGET
from edgeecg.bench.cross import PLATFORMS
from edgeecg.cli import main

HOST_ROWS = {"torch_fp32", "torchscript", "pt2", "onnx_fp32", "onnx_int8", "tflite_fp32", "tflite_int8", "tflm",
             "c_int8"}
QUICK = ["--repeat", "20", "--warmup", "2", "--max-beats", "300"]


def _bench(exported, synth_dir, target, out, *extra):
    d, export = exported
    return CliRunner().invoke(main, ["bench", str(d / "run"), "--target", str(target), "--export", str(export),
                                     "--out", str(out), "--data", str(synth_dir), *QUICK, *extra])


@pytest.fixture(scope="module")
def benched(exported, synth_dir):
    d, _ = exported
    res = _bench(exported, synth_dir, d / "roomy.toml", d / "bench")
    assert res.exit_code == 0, res.output
    return res, json.loads((d / "bench" / "bench.json").read_text()), d / "bench"


def test_every_row_is_present_or_skipped_with_a_reason(benched):
    res, result, out = benched
    assert {p.name for p in out.iterdir()} == {"bench.json", "bench.md", "bench.png"}
    rows = {r["artifact"]: r for r in result["rows"]}
    skipped = {s["artifact"]: s["why"] for s in result["skipped"]}
    assert HOST_ROWS <= set(rows)
    for plat in PLATFORMS:
        assert (plat.name in rows) != (plat.name in skipped), plat.name
        assert plat.name in rows or skipped[plat.name] == plat.missing()
    assert 0 < result["beats"] <= 300 and result["target"] == "roomy" and result["pass"] is True
    for name in rows:
        assert name in res.output and name in (out / "bench.md").read_text()


def test_rows_are_numerically_consistent(benched):
    _, result, _ = benched
    rows = {r["artifact"]: r for r in result["rows"]}
    assert result["reference"] == "torch_fp32"
    assert rows["torch_fp32"]["delta_macro_f1"] == 0
    for name in ("torchscript", "pt2", "onnx_fp32"):   # float exports of the same model
        assert abs(rows[name]["delta_macro_f1"]) < 1.0, name
    int8_c = [n for n in rows if n.startswith("c_")] + ["tflm"]
    for name in int8_c:                      # one integer graph: the same int8 logits everywhere
        assert rows[name]["bit_exact_vs_c"] is True, name
        assert rows[name]["macro_f1"] == rows["c_int8"]["macro_f1"]
    for name in HOST_ROWS:
        r = rows[name]
        assert 0 < r["latency_us_p50"] <= r["latency_us_p99"], name
        assert r["throughput_beats_per_s"] > 0 and r["pass"] and r["why"] == "ok"
        f1 = [r["per_class"][c]["f1"] for c in "NSVF"]
        assert r["macro_f1"] == pytest.approx(sum(f1) / 4, abs=0.01)
    assert rows["c_int8"]["weight_bytes"] < rows["torch_fp32"]["weight_bytes"]
    assert result["speed"]["c_vs_tflite_int8"] > 0
    assert result["speed"]["fastest_int8_at_batch1"] in {"onnx_int8", "tflite_int8", "tflm", "c_int8"}
    assert result["speed"]["c_fastest_int8_at_batch1"] == (result["speed"]["fastest_int8_at_batch1"] == "c_int8")
    assert rows["c_int8"]["build"].startswith("block 16, cc -O3")    # the host build; the device keeps its block
    assert rows["c_int8"]["build"].endswith((", vnni kernels", ", avx2 kernels", ", portable kernels"))


@pytest.mark.parametrize("plat", PLATFORMS, ids=lambda p: p.name)
def test_cross_compiled_c_under_qemu(benched, plat):
    """The C built for another ISA gives the host's int8 logits, and its instructions are counted."""
    if plat.missing():
        pytest.skip(f"{plat.name}: {plat.missing()} (.ci/run installs the cross toolchains and qemu)")
    _, result, _ = benched
    row = next(r for r in result["rows"] if r["artifact"] == plat.name)
    assert row["bit_exact_vs_c"] is True and row["pass"] is True
    assert row["instructions_per_beat"] > result["macs_per_beat"] / 16
    assert row["est_ms_at_target_clock"] == pytest.approx(row["instructions_per_beat"] / 1e6, abs=1e-3)  # 1 GHz
    assert row["flash_bytes"] > row["weight_bytes"] and row["ram_bytes"] > 0


def test_over_budget_target_fails_with_the_reason(exported, synth_dir):
    d, _ = exported
    (d / "tight.toml").write_text(TARGET.format(name="tight", flash=100))
    res = _bench(exported, synth_dir, d / "tight.toml", d / "bench-tight", "--no-cross")
    assert res.exit_code == 1
    assert "Error: tight: bench failed: " in res.output and "over the flash budget 100 B by" in res.output
    result = json.loads((d / "bench-tight" / "bench.json").read_text())
    rows = {r["artifact"]: r for r in result["rows"]}
    assert result["pass"] is False and rows["c_int8"]["pass"] is False
    assert rows["onnx_int8"]["pass"] is True          # not deployed on this target: accuracy only


def test_runs_without_torch(exported, synth_dir, monkeypatch):
    """The runtime extra (no torch, no tensorflow): the torch rows are skipped, ONNX is the reference."""
    d, _ = exported
    for module in ("torch", "tensorflow", "edgeecg.run"):
        monkeypatch.setitem(sys.modules, module, None)
    res = _bench(exported, synth_dir, d / "roomy.toml", d / "bench-notorch", "--no-cross")
    assert res.exit_code == 0, res.output
    result = json.loads((d / "bench-notorch" / "bench.json").read_text())
    skipped = {s["artifact"]: s["why"] for s in result["skipped"]}
    assert {"torch_fp32", "torchscript", "pt2"} <= set(skipped)
    assert "not installed" in skipped["torchscript"]
    assert result["reference"] == "onnx_fp32"


def test_bad_inputs_give_one_line_errors(exported, synth_dir, tmp_path):
    d, _ = exported
    res = _bench(exported, synth_dir, d / "roomy.toml", d / "bench")     # exists already
    assert res.exit_code == 1 and "already exists (use --force" in res.output
    res = CliRunner().invoke(main, ["bench", str(d / "run"), "--target", str(d / "roomy.toml"),
                                    "--export", str(tmp_path), "--data", str(synth_dir), "--out", str(tmp_path / "b")])
    assert res.exit_code == 1 and "no report.json" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "b").exists()
    res = CliRunner().invoke(main, ["bench", str(d / "run"), "--target", "esp64"])
    assert res.exit_code == 1 and "unknown target 'esp64'" in res.output


def test_the_default_bench_directory_is_named_in_the_last_line(exported, synth_dir, tmp_path):
    import shutil

    d, _ = exported
    run = tmp_path / "run"                       # a copy: the shared run's bench directory stays unmade
    shutil.copytree(d / "run", run)
    res = CliRunner().invoke(main, ["bench", str(run), "--target", str(d / "roomy.toml"), "--data", str(synth_dir),
                                    "--max-beats", "30", "--repeat", "2", "--warmup", "0", "--no-cross"])
    assert res.exit_code == 0, res.output
    assert res.output.rstrip().endswith(f"wrote {run / 'bench' / 'roomy'}")
    assert (run / "bench" / "roomy" / "bench.json").exists()


def test_a_model_too_big_for_a_platform_is_a_skipped_row_with_the_linker_s_figure(monkeypatch, tmp_path):
    """A linker's region overflow (PTB-XL's model in the lx106's 80 KB dram) is the platform's
    reason to be skipped, with the bytes; any other link error still stops the bench."""
    from types import SimpleNamespace

    from edgeecg.bench import cross

    class Model:
        prefix = "m"

        def save(self, d):
            (d / "m_model.c").write_text("")

    message = "ld: region `dram' overflowed by 13532 bytes"

    def fake_run(cmd, what, cwd=None, timeout=None):
        if what == "size":
            return SimpleNamespace(stdout="text data bss\n1 2 3\n")
        if what.startswith("linking"):
            raise RuntimeError(f"{what} failed:\n{message}")
        return SimpleNamespace(stdout="")

    monkeypatch.setattr(cross, "_run", fake_run)
    xtensa = next(p for p in PLATFORMS if p.kind == "xtensa")
    with pytest.raises(cross.DoesNotFit, match="overflow c_xtensa_lx106's dram region by 13,532 B"):
        cross.run_platform(xtensa, Model(), b"", 0, tmp_path / "icount.so")
    message = "ld: undefined reference to `main'"
    with pytest.raises(RuntimeError, match="undefined reference") as err:
        cross.run_platform(xtensa, Model(), b"", 0, tmp_path / "icount.so")
    assert not isinstance(err.value, cross.DoesNotFit)
