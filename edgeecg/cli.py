"""The ``edgeecg`` command line. Errors print one line naming the file and the problem."""

from __future__ import annotations

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
    from edgeecg.api import records_dir

    return records_dir(manifest, data_path, cfg)


@click.group(cls=_Group)
@click.version_option(package_name="edgeecg")
def main():
    """ECG arrhythmia classifiers, from PhysioNet records to microcontrollers."""
    from edgeecg.quiet import quiet_third_party

    quiet_third_party()


DATA_HELP = ("Directory with the MIT-BIH records (or one holding mitdb/). "
             "Default: download from PhysioNet into $EDGEECG_DATA or ~/.cache/edgeecg/mitdb.")


@main.group(cls=_Group)
def data():
    """Inspect a database.

    \b
    Example:
      edgeecg data info --data ../shared/data/mitdb
    """


@data.command("info")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Recipe TOML: also list the databases its [[sources]] add (e.g. training/hybrid.toml).")
def data_info(data_path, config_path):
    """Every source's records and beats per AAMI class, the DS1/DS2 split sizes, and every signal file
    checked (present, long enough, readable header and annotations) before any work reads it.

    \b
    Examples:
      edgeecg data info --data ../shared/data/mitdb
      edgeecg data info --data ../shared/data/mitdb --config training/hybrid.toml
    """
    from edgeecg.data import resolve_sources
    from edgeecg.io import list_records, rdann, read_header, record_files, resolve_data_dir
    from edgeecg.io.wfdb_records import check_signal_file_sizes, second_lead_name
    from edgeecg.processing.aami import CLASSES, aami_labels

    cfg = load_config(config_path)
    data_dir = resolve_data_dir(data_path, DS1 + DS2)
    further = resolve_sources(data_dir, cfg)
    sources = [("mitdb", data_dir, list_records(data_dir))]
    sources += [(s.database, s.path, list(s.records)) for s in further.values()]
    labels = {}
    for db, folder, records in sources:          # every file checked before anything is printed
        if not records:
            raise EdgeECGError(f"{folder}: no WFDB records (*.hea) found")
        for r in records:
            record_files(folder, r)
            check_signal_file_sizes(folder, read_header(folder, r))
            if db in further and further[db].train_other_lead:     # training reads its other lead too
                second_lead_name(folder, r, further[db].lead, "other")
            labels[(db, r)] = aami_labels(rdann(folder, r)[1])

    def row(label, db, recs):
        found = [labels[(db, r)] for r in recs if (db, r) in labels]
        counts = [sum(int((lab == i).sum()) for lab in found) for i in range(len(CLASSES))]
        cells = "".join(f"{c:>9,d}" for c in counts)
        click.echo(f"{label:<22}{len(found):>8d}{cells}{sum(counts):>10,d}")

    for db, folder, records in sources:
        click.echo(f"{folder}: {db}, {len(records)} records, every signal file checked")
        click.echo(f"{'':<22}{'records':>8}" + "".join(f"{c:>9}" for c in CLASSES) + f"{'total':>10}")
        row("all", db, records)
        if db == "mitdb":
            excluded = cfg.split.exclude
            row("DS1 (train)", db, [r for r in DS1 if r not in excluded])
            row("DS2 (test)", db, [r for r in DS2 if r not in excluded])
            click.echo(f"paced records excluded from DS1/DS2: {', '.join(excluded)}")
        else:
            both = ("" if not further[db].train_other_lead else
                    ", each with its other lead for training only" if further[db].other_lead_mode == "add" else
                    ", half of each patient's training beats read from its other lead")
            click.echo(f"all {len(records)} join the training pool (patients {db}/<record>{both})")


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
    """Train a model on DS1 and evaluate it on DS2 (and on DS1 validation records, where the recipe holds some out).

    \b
    Example:
      edgeecg train --data ../shared/data/mitdb --out runs/hybrid --seed 0
    """
    _require("torch", "train")
    from edgeecg.api import train_recipe
    from edgeecg.metrics import format_table
    from edgeecg.run import evaluated_splits

    run = train_recipe(config_path, data_path, out, seed=seed, device=device, epochs=epochs,
                       random_split=random_split, force=force, progress=not quiet, log=click.echo,
                       warn=lambda m: click.secho(m, fg="yellow", err=True))
    cfg, splits, best_epoch, metrics = run.config, run.splits, run.best_epoch, run.metrics
    click.echo(f"\n{cfg.model.name}: {metrics['params']:,d} parameters, {metrics['macs_per_beat']:,d} MACs/beat, "
               f"best epoch {best_epoch}")
    for name in evaluated_splits(cfg, splits):
        click.echo("\n" + format_table(metrics[name], f"{name}{' (LEAKY random split)' if cfg.split.kind == 'random' else ''}"))
    click.echo(f"\nwrote {out}")


@main.command()
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Recipe TOML (see training/). Default: the default recipe.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True, help="Patient-grouped folds.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of training (and of the fold assignment where StratifiedGroupKFold has ties to "
                   "break: on MIT-BIH and SVDB every seed gets the same folds).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Overrides [train] device.")
@click.option("--epochs", type=int, help="Overrides [train] epochs (the most epochs the curve covers).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write cv.json into.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--at-last-epoch", is_flag=True,
              help="Score at the last epoch (the recipe's epoch count as it is) instead of choosing the best.")
@click.option("--int8/--no-int8", default=True, show_default=True,
              help="Also score each fold's int8 graph (integer reference = generated C) at the chosen epoch.")
def cv(data_path, config_path, folds, seed, device, epochs, out, force, quiet, at_last_epoch, int8):
    """Patient-grouped cross-validation on the training pool (DS1 and the recipe's [[sources]]): pooled
    and per-database out-of-fold figures, false alarms per hour, and the epoch count.

    \b
    Example:
      edgeecg cv --data ../shared/data/mitdb --config training/hybrid.toml --out runs/cv-hybrid
    """
    _require("torch", "train")
    _require("sklearn", "train")
    import sys

    from edgeecg.cv import cross_validate, cv_records, pool_label, write_cv
    from edgeecg.io import resolve_data_dir
    from edgeecg.metrics import format_table

    cfg = with_overrides(load_config(config_path), seed=seed, device=device, epochs=epochs)
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    data_dir = resolve_data_dir(data_path, cv_records(cfg))
    result = cross_validate(cfg, data_dir, folds, seed, progress=not quiet and sys.stderr.isatty(),
                            log=lambda m: click.echo(m, err=True), choose=not at_last_epoch, int8=int8)
    command = "edgeecg cv " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    report = write_cv(out, result, cfg, folds, seed, command, force)
    epoch = report["chosen_epochs"]
    click.echo("\n" + format_table(report["pooled"], f"out-of-fold, {folds} folds, epoch {epoch}, every patient"))
    if len(report["per_database"]) > 1:
        for db, rep in report["per_database"].items():
            click.echo("\n" + format_table(rep, f"out-of-fold, {pool_label(db)} only"))
    q = report["int8"]
    for db, rep in (q.get("per_database") or {}).items():
        click.echo("\n" + format_table(rep, f"out-of-fold, {pool_label(db)}, int8 (integer reference = generated C)"))
    for kind, alarms in (("float", report.get("false_alarms")), ("int8", q.get("false_alarms"))):
        for db, fa in (alarms or {}).items():
            sm = fa["summary"]
            click.echo(f"{pool_label(db)}, {kind}: false S+V calls per hour per record: median {sm['median']:.1f}, "
                       f"90th percentile {sm['p90']:.1f}, worst {sm['max']:.1f} ({sm['worst_record']})")
    if cfg.train.schedule == "constant" and not at_last_epoch:
        click.echo(f"\nchosen epochs: {epoch} (best pooled macro-F1 of {cfg.train.epochs}); a final model trained "
                   f"on the whole pool for that many epochs is what each fold was then")
    click.echo(f"\nwrote {out}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Score on this WFDB database (any rate, beat annotations). Default: recompute the run's "
                   "own metrics from the records it was trained on.")
@click.option("--records", help="Comma-separated records of --data (default: all).")
@click.option("--lead", help="Lead of --data records: a name (MLII) or a 0-based index. Default: the run's lead.")
@click.option("--annotator", default="atr", show_default=True, help="Annotation file extension of --data records.")
@click.option("--out", type=click.Path(path_type=Path),
              help="With --data: directory for evaluation.json (default RUN_DIR/evaluate/<database folder>).")
@click.option("--force", is_flag=True, help="Replace an existing --out directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--target", "target_name",
              help="With --data: score the int8 graph exported for this target too (RUN/export/TARGET). "
                   "Default: the run's only export, if it has exactly one.")
@click.option("--int8", "int8_kind", type=click.Choice(["reference", "c", "none"]), default="reference",
              show_default=True, help="With --data: the int8 classes from the integer reference, the compiled "
                                      "generated C (bit-exact with it; needs cc), or none.")
def evaluate(run_dir, data_path, records, lead, annotator, out, force, as_json, target_name, int8_kind):
    """Score a run: its own metrics again, or any WFDB database with beat annotations (float and int8,
    gross and per record, with false S and V calls per hour).

    \b
    Examples:
      edgeecg evaluate runs/hybrid
      edgeecg evaluate runs/hybrid --data ../shared/data/svdb --lead 0
      edgeecg evaluate runs/hybrid --data /data/incartdb --lead II --records I01,I02 --int8 c
    """
    _require("torch", "train")
    from edgeecg.metrics import format_table
    from edgeecg.run import load_run

    cfg, model, manifest = load_run(run_dir)
    if data_path is None:
        _evaluate_own(run_dir, cfg, model, manifest, as_json)
        return
    from edgeecg.atomic import atomic_dir
    from edgeecg.evaluate import evaluate_database

    out = out or Path(run_dir) / "evaluate" / Path(data_path).resolve().name
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    names = [r.strip() for r in records.split(",") if r.strip()] if records else None
    int8 = None if int8_kind == "none" else _exported_int8(Path(run_dir), target_name, int8_kind == "c")
    result = evaluate_database(model, cfg, Path(data_path), names, lead, annotator, int8)
    with atomic_dir(out, force=force) as tmp:
        (tmp / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    blocks = [("float", result)] + ([(f"int8 {result['int8']['kind']}", result["int8"])] if "int8" in result else [])
    for label, block in blocks:
        fa = block["false_alarms"]["summary"]
        click.echo(format_table(block["report"], f"{data_path}: {len(result['records'])} records, lead {result['lead']}, "
                                                 f"{result['beats']:,d} beats, {label}"))
        click.echo(f"false S+V calls per hour, per record: median {fa['median']:.1f}, 90th percentile {fa['p90']:.1f}, "
                   f"mean {fa['mean']:.1f}, worst {fa['max']:.1f} ({fa['worst_record']})\n")
    if "int8" not in result:
        click.echo("int8: not scored (no export of this run: `edgeecg quantize RUN --target T` first)")
    click.echo(f"wrote {out}")


def _exported_int8(run_dir: Path, target_name: str | None, compiled: bool):
    """The int8 graph runner of ``RUN/export/TARGET`` (integer reference or compiled C); None without an export."""
    from edgeecg.quant import read_tflite
    from edgeecg.runtimes import Int8GraphRunner

    exports = sorted(p.parent.name for p in (run_dir / "export").glob("*/model.int8.tflite"))
    if target_name is None:
        if len(exports) != 1:
            return None
        target_name = exports[0]
    path = run_dir / "export" / target_name / "model.int8.tflite"
    if not path.exists():
        raise EdgeECGError(f"{path}: no int8 export for target {target_name!r} "
                           f"(exports: {', '.join(exports) or 'none'}; run `edgeecg quantize` first)")
    graph = read_tflite(path.read_bytes(), str(path))
    c_model = None
    if compiled:
        from firmware_export import convert
        report = json.loads((path.parent / "report.json").read_text())
        c_model = convert(graph, report.get("prefix", "edgeecg"), report.get("c_block", 8))
    return Int8GraphRunner(graph, c_model)


def _evaluate_own(run_dir, cfg, model, manifest, as_json):
    """Recompute a run's metrics from its saved model and say whether they match ``metrics.json``."""
    from edgeecg.data import make_splits
    from edgeecg.metrics import format_table
    from edgeecg.run import METRICS_FILE, evaluate_splits, evaluated_splits

    data_dir = _run_records_dir(manifest, None, cfg)
    splits = make_splits(data_dir, cfg)
    metrics, _ = evaluate_splits(model, cfg, splits)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    saved_path = Path(run_dir) / METRICS_FILE
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    for name in evaluated_splits(cfg, splits):
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
              help="Clip the calibration beats (without an int8 grid) to this percentile of DS1 training (100: plain min-max).")
@click.option("--calib-rr-percentile", type=click.FloatRange(50, 100),
              help="Clip the calibration RR features to this percentile of DS1 training.  [default: 99.9]")
@click.option("--prefix", default="edgeecg", show_default=True, help="Prefix of the generated C identifiers.")
@click.option("--no-bias-correction", is_flag=True,
              help="Keep the trained biases in the int8 graph (default: correct them for the mean rounding error).")
@click.option("--decision-offsets/--no-decision-offsets", default=None,
              help="Shift the int8 graph's S and V output biases so that its classes agree most with float on "
                   "training beats, where the beats they fix outnumber those they break by 2 sd.  [default: on]")
@click.option("--prune", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="Remove this fraction of each conv stage's channels, then fine-tune (hybrid, cnn).")
@click.option("--prune-epochs", type=click.IntRange(1), default=5, show_default=True,
              help="Fine-tuning epochs after --prune.")
@click.option("--out", type=click.Path(path_type=Path), help="Default: RUN_DIR/export/TARGET.")
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              help="Records directory. Default: the one the run was trained on.")
@click.option("--force", is_flag=True, help="Replace an existing export directory.")
def quantize(run_dir, target_name, calib_beats, calib_percentile, calib_rr_percentile, prefix, no_bias_correction,
             decision_offsets, prune, prune_epochs, out, data_path, force):
    """Export a trained run for a target: int8, ONNX, TFLite, TFLite Micro data and C.

    \b
    Example:
      edgeecg quantize runs/hybrid --target esp32
      edgeecg quantize runs/hybrid --target esp32 --prune 0.25 --out runs/hybrid/export/esp32-pruned
    """
    for module in ("torch", "tensorflow", "onnxruntime"):
        _require(module, "export")
    from edgeecg.api import export_run
    from edgeecg.quantize import format_report
    from edgeecg.targets import load_target

    target = load_target(target_name)
    out = out or Path(run_dir) / "export" / target.name
    report = export_run(run_dir, target_name, out=out, data=data_path, force=force,
                          log=lambda m: click.echo(m, err=True),
                          calib_beats=calib_beats, calib_percentile=calib_percentile,
                          **({} if calib_rr_percentile is None else {"calib_rr_percentile": calib_rr_percentile}),
                          **({} if decision_offsets is None else {"decision_offsets": decision_offsets}),
                          prefix=prefix, prune=prune, prune_epochs=prune_epochs,
                          bias_correction=not no_bias_correction)
    click.echo("\n" + format_report(report, target))
    click.echo(f"\nwrote {out}")
    if not report["budget"]["pass"]:
        raise EdgeECGError(f"{target.name}: over budget: " + "; ".join(report["budget"]["problems"]))


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, help="Target name (see `edgeecg targets`) or a TOML path.")
@click.option("--beats", type=click.Choice(["ds1", "val", "ds2", "test"]), default="ds1", show_default=True,
              help="DS1 check beats (the val records where the recipe holds some out, else all DS1; "
                   "'val' is the same), or DS2 ('test': a PTB-XL run's fold 10) for final figures.")
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
    """Run every exported artifact on the same beats: accuracy, size, latency, pass or fail.

    \b
    Example:
      edgeecg bench runs/hybrid --target esp32 --beats ds2
    """
    _require("ai_edge_litert", "runtime")
    from edgeecg.api import bench_run
    from edgeecg.bench.report import summary, table
    from edgeecg.targets import load_target

    target = load_target(target_name)
    out = out or Path(run_dir) / "bench" / target.name
    result = bench_run(run_dir, target_name, beats=beats, out=out, export=export_dir, data=data_path, force=force,
                       log=lambda m: click.echo(m, err=True), repeat=repeat, warmup=warmup, max_beats=max_beats,
                       cross=not no_cross)
    click.echo(f"\n{target.name}: {result['beats']:,d} {beats} beats, Δ vs {result['reference']}\n")
    click.echo(table(result))
    click.echo("\n" + summary(result))
    click.echo(f"\nwrote {out}")
    if not result["pass"]:
        raise EdgeECGError(f"{target.name}: bench failed: " + "; ".join(result["problems"]))


@main.command()
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Recipe TOML (see training/). Default: the default recipe.")
@click.option("--seeds", "seed_list", default="0,1,2,3,4", show_default=True, help="Comma-separated seeds.")
@click.option("--target", "target_name", default="esp32", show_default=True, help="Target to quantize for.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Overrides [train] device.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for seeds.json and the runs.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--external", "external_path", type=click.Path(path_type=Path),
              help="A WFDB database the recipe does not train on (e.g. ../shared/data/svdb), scored as a second set.")
@click.option("--external-lead", default="0", show_default=True, help="Lead of --external records (name or index).")
@click.option("--cv", "cv_paths", type=click.Path(path_type=Path), multiple=True,
              help="cv.json (or its directory) of this recipe, one per CV seed: the out-of-fold figures of the "
                   "databases its [[sources]] add, which the seeds train on (required for such a recipe).")
def seeds(data_path, config_path, seed_list, target_name, device, out, force, external_path, external_lead, cv_paths):
    """Train and quantize the recipe for several seeds; DS2 mean, sd and worst, float and int8 C.

    \b
    Example:
      edgeecg seeds --data ../shared/data/mitdb --config training/hybrid.toml --seeds 0,1,2,3,4 \\
          --target esp32 --cv runs/cv --out runs/seeds
    """
    for module in ("torch", "tensorflow", "onnxruntime"):
        _require(module, "export")
    import sys

    from edgeecg.io import resolve_data_dir
    from edgeecg.seeds import run_seeds, seeds_markdown
    from edgeecg.targets import load_target

    try:
        seed_values = [int(s) for s in seed_list.split(",") if s.strip()]
    except ValueError:
        raise EdgeECGError(f"--seeds {seed_list!r}: expected comma-separated integers") from None
    if not seed_values or len(set(seed_values)) != len(seed_values):
        raise EdgeECGError(f"--seeds {seed_list!r}: expected distinct seeds")
    target = load_target(target_name)
    cfg = with_overrides(load_config(config_path), device=device)
    if out.exists() and not force:
        raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
    data_dir = resolve_data_dir(data_path, cfg.split.train + cfg.split.val + cfg.split.test)
    command = "edgeecg seeds " + " ".join(sys.argv[2:])
    if external_path is not None and not Path(external_path).is_dir():
        raise EdgeECGError(f"{external_path}: data directory does not exist")
    external = (Path(external_path), external_lead) if external_path is not None else None
    from edgeecg.results import load_json

    cvs = [load_json(p, "cv.json") for p in cv_paths]
    result = run_seeds(cfg, data_dir, seed_values, target, out, command, force, log=lambda m: click.echo(m, err=True),
                       external=external, cvs=cvs)
    click.echo("\n" + seeds_markdown(result))
    click.echo(f"wrote {out}")


@main.command()
@click.option("--cv", "cv_path", type=click.Path(path_type=Path), help="cv.json or its directory.")
@click.option("--cv-seed", "cv_seed_paths", type=click.Path(path_type=Path), multiple=True,
              help="cv.json of the same recipe with another CV seed (`cv --seed N --at-last-epoch`): the "
                   "out-of-fold figures of a database the default trains on become a spread; repeatable.")
@click.option("--seeds", "seeds_path", type=click.Path(path_type=Path),
              help="seeds.json (default recipe) or its directory (with --cv; without both only the device block is written).")
@click.option("--diagnostic", "diagnostic_path", type=click.Path(path_type=Path),
              help="seeds.json of the diagnostic-mode recipe, shown beside the default.")
@click.option("--other", "other_paths", type=click.Path(path_type=Path), multiple=True,
              help="seeds.json of another recipe (model family), shown below the default; repeatable.")
@click.option("--stream", "stream_paths", type=click.Path(path_type=Path), multiple=True,
              help="stream.json (edgeecg stream) or its directory; repeatable (one per ADC rate).")
@click.option("--qrs", "qrs_paths", type=click.Path(path_type=Path), multiple=True,
              help="qrs.json (edgeecg detect) or its directory; repeatable (one per database or rate).")
@click.option("--readme", type=click.Path(path_type=Path), default=Path("README.md"), show_default=True)
@click.option("--docs", type=click.Path(path_type=Path), default=Path("docs/results.md"), show_default=True)
def results(cv_path, cv_seed_paths, seeds_path, diagnostic_path, other_paths, stream_paths, qrs_paths, readme, docs):
    """Regenerate the README's results section and docs/results.md from cv.json and seeds.json, and
    its device block from stream.json and qrs.json.

    \b
    Examples:
      edgeecg results --cv runs/cv-hybrid --seeds runs/seeds --readme README.md
      edgeecg results --stream runs/stream --qrs runs/qrs        (the device block alone)
    """
    from edgeecg.results import write_results

    write_results(cv_path, seeds_path, readme, docs, diagnostic_path, other_paths, stream_paths, qrs_paths, cv_seed_paths)
    written = ["results section"] * (cv_path is not None) + ["device block"] * bool(stream_paths or qrs_paths)
    click.echo(f"wrote {readme} ({' and '.join(written)})" + (f" and {docs}" if cv_path is not None else ""))


@main.command("targets")
def list_targets():
    """List the deployment targets (targets/*.toml) with their budgets.

    \b
    Example:
      edgeecg targets
    """
    from edgeecg.targets import load_target, target_names

    click.echo(f"{'target':<18}{'ISA':<12}{'MHz':>6}{'flash B':>10}{'RAM B':>9}{'ADC Hz':>8}{'counts/mV':>11}  description")
    for name in target_names():
        t = load_target(name)
        click.echo(f"{t.name:<18}{t.isa:<12}{t.clock_mhz:>6.0f}{t.flash_bytes:>10,d}{t.ram_bytes:>9,d}{t.adc_hz:>8.0f}"
                   f"{t.adc_gain:>11.2f}  {t.description}")


@main.command("recipes")
def list_recipes():
    """List the shipped training recipes (recipes/*.toml, `--config NAME`): the recipe a variant is
    based on, its model, epochs, training sources and what it is.

    \b
    Example:
      edgeecg recipes
    """
    from edgeecg.config import load_config, recipe_names, recipe_summary

    click.echo(f"{'recipe':<28}{'base':<18}{'model':<17}{'epochs':>6}  {'trains on':<12}what")
    for name in recipe_names():
        cfg, (base, what) = load_config(name), recipe_summary(name)
        pool = "+".join([cfg.data.dataset] + [s.database for s in cfg.sources])
        click.echo(f"{name:<28}{base or '-':<18}{cfg.model.name:<17}{cfg.train.epochs:>6}  {pool:<12}{what}")


def _register_commands() -> None:
    """Commands that live in their own modules (each imports only click, numpy and the standard
    library at load, so ``--help`` stays fast)."""
    from edgeecg.app import app_command
    from edgeecg.explain import explain_command
    from edgeecg.firmware import firmware_command
    from edgeecg.report import report_command
    from edgeecg.stream.detection import detect_command
    from edgeecg.stream.run import stream_command

    for command in (detect_command, stream_command, explain_command, report_command, app_command, firmware_command):
        main.add_command(command)


_register_commands()
