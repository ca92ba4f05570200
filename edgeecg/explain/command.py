"""``edgeecg explain``: the click command (:func:`edgeecg.explain.compute.explain_run` does the work)."""

from __future__ import annotations

from pathlib import Path

import click

from edgeecg.errors import EdgeECGError
from edgeecg.explain.attribution import IG_STEPS
from edgeecg.explain.compute import explain_run


@click.command("explain")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--record", required=True, help="Record name in the data directory (e.g. 208).")
@click.option(
    "--beats",
    help="Comma-separated beat indices of the record (0-based, in the order of its classified "
    "beats). Default: the first beat of each class and the first 3 the model gets wrong.",
)
@click.option("--out", type=click.Path(path_type=Path), help="Default: RUN_DIR/explain/RECORD.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="Records directory. Default: the one the run was trained on.",
)
@click.option("--target", "target_name", help="Export to compare with (RUN_DIR/export/TARGET). Default: the first one.")
@click.option(
    "--test-split/--no-test-split",
    default=True,
    show_default=True,
    help="Also the class averages and int8 disagreements of the run's test split (DS2).",
)
@click.option(
    "--per-class",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Beats per class averaged for the class figures.",
)
@click.option(
    "--max-int8",
    type=click.IntRange(0),
    default=6,
    show_default=True,
    help="int8 disagreements drawn per scope (record, test split).",
)
@click.option(
    "--steps", type=click.IntRange(2), default=IG_STEPS, show_default=True, help="Integrated-gradients steps."
)
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def explain_command(run_dir, record, beats, out, data_path, target_name, test_split, per_class, max_int8, steps, force):
    """Grad-CAM and integrated gradients (captum) drawn over beats: chosen beats, class averages, int8 disagreements.

    \b
    Example:
      edgeecg explain runs/hybrid --record 208 --beats 10,20
    """
    out = out or Path(run_dir) / "explain" / record
    try:
        if out.exists() and not force:
            raise EdgeECGError(f"{out}: already exists (use --force to overwrite)")
        result = explain_run(
            Path(run_dir),
            record,
            out,
            data_path,
            beats,
            target_name,
            test_split,
            per_class,
            max_int8,
            steps,
            force,
            log=lambda m: click.echo(m, err=True),
        )
    except EdgeECGError as err:
        raise click.ClickException(str(err)) from None
    except ImportError as err:
        raise click.ClickException(f"this command needs {err.name}: pip install captum") from None
    for b in result["beats"]:
        click.echo(
            f"beat {b['index']:>5} t {b['time_s']:>8.2f} s  reference {b['reference']}  float {b['float']}"
            + (f"  int8 {b['int8']}" if "int8" in b else "")
            + (
                "  Grad-CAM peak "
                + (f"{b['gradcam_peak_ms']:+.0f} ms" if b["gradcam_peak_ms"] is not None else "none")
                + "  RR IG "
            )
            + ", ".join(f"{k} {v:+.2f}" for k, v in b["ig_rr"].items())
        )
    i8 = result["int8"]
    for key in [k for k in i8 if isinstance(i8[k], dict)]:
        click.echo(f"int8 vs float, {key}: {i8[key]['disagreements']} of {i8[key]['beats']:,d} beats differ")
    click.echo(f"wrote {out} ({len(result['figures'])} figures)")
