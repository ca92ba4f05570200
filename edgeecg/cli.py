"""The ``edgeecg`` command line. Errors print one line naming the file and the problem."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import click

from edgeecg.config import DS1, DS2, load_config, with_overrides
from edgeecg.errors import EdgeECGError


class _Group(click.Group):
    """Turns :class:`EdgeECGError` and OS errors into a one-line ``Error: ...`` and exit code 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeECGError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            raise click.ClickException(f"{err.filename or ''}: {err.strerror or err}") from None


def _require(module: str, extra: str) -> None:
    """A one-line error, not an ImportError, when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise EdgeECGError(f"this command needs {module}: pip install 'edgeecg[{extra}]'")


def _run_records_dir(manifest: dict, data_path: Path | None, cfg) -> Path:
    """``--data``, else the records directory the run was trained on, else the download default."""
    from edgeecg.io import resolve_data_dir

    if data_path is None and manifest.get("data_dir"):
        data_path = Path(manifest["data_dir"])
    return resolve_data_dir(data_path, cfg.split.train + cfg.split.val + cfg.split.test)


@click.group(cls=_Group)
@click.version_option(package_name="edgeecg")
def main():
    """ECG arrhythmia classifiers, from PhysioNet records to microcontrollers."""


DATA_HELP = ("Directory with the MIT-BIH records (or one holding mitdb/). "
             "Default: download from PhysioNet into $EDGEECG_DATA or ~/.cache/edgeecg/mitdb.")


@main.group(cls=_Group)
def data():
    """Inspect a database."""


@data.command("info")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
def data_info(data_path):
    """Records, beats per AAMI class, and the DS1/DS2 split sizes."""
    from edgeecg.io import list_records, rdann, resolve_data_dir
    from edgeecg.processing.aami import CLASSES, aami_labels

    cfg = load_config(None)
    data_dir = resolve_data_dir(data_path, DS1 + DS2)
    records = list_records(data_dir)
    if not records:
        raise EdgeECGError(f"{data_dir}: no WFDB records (*.hea) found")
    per_record = {r: aami_labels(rdann(data_dir, r)[1]) for r in records}

    def row(label, recs):
        labels = [per_record[r] for r in recs if r in per_record]
        counts = [sum(int((lab == i).sum()) for lab in labels) for i in range(len(CLASSES))]
        cells = "".join(f"{c:>9,d}" for c in counts)
        click.echo(f"{label:<22}{len(labels):>8d}{cells}{sum(counts):>10,d}")

    click.echo(f"{data_dir}: {len(records)} records")
    click.echo(f"{'':<22}{'records':>8}" + "".join(f"{c:>9}" for c in CLASSES) + f"{'total':>10}")
    row("all", records)
    excluded = cfg.split.exclude
    row("DS1 (train)", [r for r in DS1 if r not in excluded])
    row("  of which val", [r for r in cfg.split.val if r not in excluded])
    row("DS2 (test)", [r for r in DS2 if r not in excluded])
    click.echo(f"paced records excluded from DS1/DS2: {', '.join(excluded)}")


@main.command()
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run directory to write.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Recipe TOML (see training/). Default: the hybrid recipe's defaults.")
@click.option("--seed", type=int, help="Overrides [train] seed.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Overrides [train] device.")
@click.option("--epochs", type=int, help="Overrides [train] epochs.")
@click.option("--random-split", is_flag=True,
              help="Shuffle beats of all records together. Leaks patients: not a valid claim.")
@click.option("--force", is_flag=True, help="Replace an existing run directory.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(data_path, out, config_path, seed, device, epochs, random_split, force, quiet):
    """Train a model on DS1 and evaluate it on the DS1 validation records and DS2."""
    _require("torch", "train")
    from edgeecg.dataset import make_splits
    from edgeecg.io import resolve_data_dir
    from edgeecg.metrics import format_table
    from edgeecg.config import test_key
    from edgeecg.run import save_run
    from edgeecg.train import train_model

    cfg = with_overrides(load_config(config_path), seed=seed, device=device, epochs=epochs)
    if random_split:
        cfg = dataclasses.replace(cfg, split=dataclasses.replace(cfg.split, kind="random"))
    elif cfg.split.kind == "random":
        raise EdgeECGError(f"{config_path}: [split] kind = 'random' leaks patients; "
                           f"it needs the explicit --random-split flag")
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    data_dir = resolve_data_dir(data_path, cfg.split.train + cfg.split.val + cfg.split.test)
    splits = make_splits(data_dir, cfg)
    if cfg.split.kind == "random":
        click.secho("WARNING: random beat split: the same patients are in train and test (leaky); "
                    "its accuracy is not an inter-patient result.", fg="yellow", err=True)
    for name, beats in splits.items():
        click.echo(f"{name:<6}{len(beats):>7,d} beats  " +
                   "  ".join(f"{k} {v:,d}" for k, v in beats.counts().items()))
    result = train_model(cfg, splits, progress=not quiet)
    metrics = save_run(out, cfg, result.model, result.history, result.best_epoch, splits, data_dir, force)
    click.echo(f"\n{cfg.model.name}: {metrics['params']:,d} parameters, {metrics['macs_per_beat']:,d} MACs/beat, "
               f"best epoch {result.best_epoch}")
    key = test_key(cfg)
    for name in ("val", key):
        click.echo("\n" + format_table(metrics[name], f"{name}{' (LEAKY random split)' if cfg.split.kind == 'random' else ''}"))
    click.echo(f"\nwrote {out}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Records directory. Default: the one the run was trained on.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(run_dir, data_path, as_json):
    """Re-compute the metrics of a run directory from its saved model."""
    _require("torch", "train")
    from edgeecg.dataset import make_splits
    from edgeecg.metrics import format_table
    from edgeecg.config import test_key
    from edgeecg.run import METRICS_FILE, evaluate_splits, load_run

    cfg, model, manifest = load_run(run_dir)
    data_dir = _run_records_dir(manifest, data_path, cfg)
    metrics, _ = evaluate_splits(model, cfg, make_splits(data_dir, cfg))
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    saved_path = Path(run_dir) / METRICS_FILE
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    for name in ("val", test_key(cfg)):
        click.echo(format_table(metrics[name], name) + "\n")
        if name in saved:
            same = saved[name]["confusion"] == metrics[name]["confusion"]
            click.echo(f"  {'matches' if same else 'DIFFERS from'} {saved_path}\n")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, help="Target name (see `edgeecg targets`) or a TOML path.")
@click.option("--calib-beats", type=int, default=2000, show_default=True,
              help="DS1 training beats used to calibrate int8 ranges.")
@click.option("--calib-percentile", type=click.FloatRange(50, 100), default=99.99, show_default=True,
              help="Clip the calibration RR inputs (and beats without an int8 grid) to this percentile of DS1 training (100: plain min-max).")
@click.option("--prefix", default="edgeecg", show_default=True, help="Prefix of the generated C identifiers.")
@click.option("--no-bias-correction", is_flag=True,
              help="Keep the trained biases in the int8 graph (default: correct them for the mean rounding error).")
@click.option("--prune", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="Remove this fraction of each conv stage's channels, then fine-tune (hybrid, cnn).")
@click.option("--prune-epochs", type=click.IntRange(1), default=5, show_default=True,
              help="Fine-tuning epochs after --prune.")
@click.option("--out", type=click.Path(path_type=Path), help="Default: RUN_DIR/export/TARGET.")
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Records directory. Default: the one the run was trained on.")
@click.option("--force", is_flag=True, help="Replace an existing export directory.")
def quantize(run_dir, target_name, calib_beats, calib_percentile, prefix, no_bias_correction, prune, prune_epochs,
             out, data_path, force):
    """Export a trained run for a target: int8, ONNX, TFLite, TFLite Micro data and C."""
    for module in ("torch", "tensorflow", "onnxruntime"):
        _require(module, "export")
    from edgeecg.quant.budget import summary as rounding_summary
    from edgeecg.quantize import QuantizeOptions, quantize_run
    from edgeecg.run import load_run
    from edgeecg.targets import load_target

    from firmware_export.carray import c_identifier

    target = load_target(target_name)
    cfg, model, manifest = load_run(run_dir)
    c_identifier(prefix)
    out = out or Path(run_dir) / "export" / target.name
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    data_dir = _run_records_dir(manifest, data_path, cfg)
    report = quantize_run(Path(run_dir), cfg, model, target, data_dir, out,
                          QuantizeOptions(calib_beats=calib_beats, calib_percentile=calib_percentile,
                                          prefix=prefix, prune=prune, prune_epochs=prune_epochs,
                                          bias_correction=not no_bias_correction), force=force,
                          log=lambda m: click.echo(m, err=True))
    click.echo(f"\n{target.name}: {report['params']:,d} params, {report['macs_per_beat']:,d} MACs/beat, "
               f"int8 weights {report['weight_bytes_int8']:,d} B (budget {target.flash_bytes:,d}), "
               f"C activations {report['activation_bytes_c']:,d} B, TFLM arena {report['tflm_arena_bytes']:,d} B "
               f"(budget {target.ram_bytes:,d})")
    if "pruning" in report:
        p = report["pruning"]
        click.echo(f"pruned {p['fraction']:.0%} of conv channels {p['channels_before']} -> {p['channels_after']}: "
                   f"params {p['params_before']:,d} -> {p['params_after']:,d}, int8 weights "
                   f"{p['weight_bytes_int8_before']:,d} -> {p['weight_bytes_int8_after']:,d} B, .tflite "
                   f"{p['tflite_int8_bytes_before']:,d} -> {p['tflite_int8_bytes_after']:,d} B; float macro-F1 "
                   + ", ".join(f"{k} {p['macro_f1_float_before'][k]:.2f} -> {p['macro_f1_float_after'][k]:.2f}"
                               for k in p["macro_f1_float_before"]))
    for key, c in report["consistency"].items():
        click.echo(f"{key}: {c['beats']:,d} beats, C == integer reference: {c['bit_exact_c_vs_reference']}, "
                   f"C == TFLite Micro: {c['bit_exact_c_vs_tflm']}, "
                   f"C vs LiteRT int8 argmax agreement {c['c_vs_tflite_int8_agreement']:.3f} % (builtin kernels), "
                   f"{c['c_vs_tflite_int8_xnnpack_agreement']:.3f} % (XNNPACK), "
                   f"C vs the float model {c['c_vs_float_agreement']:.3f} %")
    for key in report["accuracy"]:
        click.echo(f"\n{key:<20}{'macro-F1':>9}{'Δ':>7}{'S Se':>7}{'ΔS Se':>7}{'V Se':>7}{'ΔV Se':>7}")
        for name, row in report["accuracy"][key].items():
            click.echo(f"{name:<20}{row['macro_f1']:>9.2f}{row['delta_macro_f1']:>+7.2f}"
                       f"{row['per_class']['S']['se']:>7.1f}{row['delta_S_se']:>+7.2f}"
                       f"{row['per_class']['V']['se']:>7.1f}{row['delta_V_se']:>+7.2f}")
    click.echo(f"\nval: {rounding_summary(report['rounding_budget_val'])}")
    click.echo(f"\nwrote {out}")
    if not report["budget"]["pass"]:
        raise EdgeECGError(f"{target.name}: over budget: " + "; ".join(report["budget"]["problems"]))


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, help="Target name (see `edgeecg targets`) or a TOML path.")
@click.option("--beats", type=click.Choice(["val", "ds2"]), default="val", show_default=True,
              help="DS1 validation beats, or DS2 for final figures.")
@click.option("--repeat", type=click.IntRange(1), default=200, show_default=True,
              help="Timed single-beat calls per artifact.")
@click.option("--warmup", type=click.IntRange(0), default=20, show_default=True)
@click.option("--max-beats", type=click.IntRange(1), help="Bench on the first N beats only.")
@click.option("--no-cross", is_flag=True, help="Skip the cross-compiled C rows run under qemu.")
@click.option("--export", "export_dir", type=click.Path(path_type=Path),
              help="Export directory to bench. Default: RUN_DIR/export/TARGET.")
@click.option("--out", type=click.Path(path_type=Path), help="Default: RUN_DIR/bench/TARGET.")
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Records directory. Default: the one the run was trained on.")
@click.option("--force", is_flag=True, help="Replace an existing bench directory.")
def bench(run_dir, target_name, beats, repeat, warmup, max_beats, no_cross, export_dir, out, data_path, force):
    """Run every exported artifact on the same beats: accuracy, size, latency, pass or fail."""
    _require("ai_edge_litert", "runtime")
    from edgeecg.bench import BenchOptions, bench_export
    from edgeecg.bench.report import summary, table
    from edgeecg.targets import load_target

    target = load_target(target_name)
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise EdgeECGError(f"{run_dir}: not a run directory (no config.toml)")
    export_dir = export_dir or run_dir / "export" / target.name
    out = out or run_dir / "bench" / target.name
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    cfg = load_config(run_dir / "config.toml")
    manifest_path = run_dir / "manifest.json"     # read as JSON: edgeecg.run (load_run) needs torch
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    data_dir = _run_records_dir(manifest, data_path, cfg)
    opts = BenchOptions(beats=beats, repeat=repeat, warmup=warmup, max_beats=max_beats, cross=not no_cross)
    result = bench_export(run_dir, cfg, export_dir, target, data_dir, out, opts, force=force,
                          log=lambda m: click.echo(m, err=True))
    click.echo(f"\n{target.name}: {result['beats']:,d} {beats} beats, Δ vs {result['reference']}\n")
    click.echo(table(result))
    click.echo("\n" + summary(result))
    click.echo(f"\nwrote {out}")
    if not result["pass"]:
        raise EdgeECGError(f"{target.name}: bench failed: " + "; ".join(result["problems"]))


@main.command("targets")
def list_targets():
    """List the deployment targets (targets/*.toml) with their budgets."""
    from edgeecg.targets import load_target, target_names

    click.echo(f"{'target':<10}{'ISA':<13}{'MHz':>6}{'flash B':>10}{'RAM B':>10}  description")
    for name in target_names():
        t = load_target(name)
        click.echo(f"{t.name:<10}{t.isa:<13}{t.clock_mhz:>6.0f}{t.flash_bytes:>10,d}{t.ram_bytes:>10,d}  {t.description}")
