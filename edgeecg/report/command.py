"""The page (:func:`render`: every section in order), :func:`write_report` and ``edgeecg report``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click

from edgeecg.errors import EdgeECGError
from edgeecg.report.html import CSS, esc
from edgeecg.report.inputs import Inputs
from edgeecg.report.sections_deploy import (
    sec_bench,
    sec_explanations,
    sec_hashes,
    sec_qrs,
    sec_quantization,
    sec_sizes,
    sec_stream,
)
from edgeecg.report.sections_model import (
    sec_cv,
    sec_metrics,
    sec_per_record,
    sec_provenance,
    sec_recipe,
    sec_seeds,
    sec_training,
)

SECTIONS = (
    ("recipe", "Recipe"),
    ("provenance", "Data provenance"),
    ("metrics", "Metrics"),
    ("per-record", "Per record: S and V"),
    ("training", "Training"),
    ("cv", "Cross-validation"),
    ("seeds", "Seed spread"),
    ("quantization", "Quantization"),
    ("sizes", "Export sizes"),
    ("bench", "Bench"),
    ("qrs", "QRS detection"),
    ("stream", "Streaming"),
    ("explanations", "Explanations"),
    ("hashes", "Hashes"),
)


RENDERERS = {
    "recipe": sec_recipe,
    "provenance": sec_provenance,
    "metrics": sec_metrics,
    "per-record": sec_per_record,
    "training": sec_training,
    "cv": sec_cv,
    "seeds": sec_seeds,
    "quantization": sec_quantization,
    "sizes": sec_sizes,
    "bench": sec_bench,
    "qrs": sec_qrs,
    "stream": sec_stream,
    "explanations": sec_explanations,
    "hashes": sec_hashes,
}


def render(inp: Inputs) -> str:
    """The whole page. A section whose input has an unexpected shape says so instead of failing the page."""
    from edgeecg import __version__

    body = []
    for sid, title in SECTIONS:
        try:
            content = RENDERERS[sid](inp)
        except Exception as err:  # a malformed input must not lose the other sections
            content = f'<p class="err">could not render this section: {esc(type(err).__name__)}: {esc(err)}</p>'
        body.append(f'<section id="{sid}"><h2>{esc(title)}</h2>{content}</section>')
    m = inp.metrics or {}
    name = "–"
    if inp.config_text:
        import tomllib

        try:
            name = tomllib.loads(inp.config_text).get("model", {}).get("name", "–")
        except tomllib.TOMLDecodeError:
            pass
    ds2 = m.get("ds2") or m.get("test")
    headline = (
        f"DS2 macro-F1 {ds2['macro_f1']:.1f} %, S Se {ds2['per_class']['S']['se']:.1f} %, "
        f"V Se {ds2['per_class']['V']['se']:.1f} %"
        if ds2
        else "no test metrics"
    )
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t in SECTIONS)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>edgeecg report: {esc(inp.run.name)}</title>'
        f'<link rel="icon" href="data:,"><style>{CSS}</style></head><body><header><h1>edgeecg run report: '
        f"{esc(inp.run.name)}</h1><p>{esc(inp.run.resolve())} — model {esc(name)} — {esc(headline)}</p>"
        f"<p class=small>generated {now} by edgeecg {esc(__version__)}; self-contained (no network)</p></header>"
        f'<nav>{nav}</nav><main>{"".join(body)}</main></body></html>\n'
    )


def write_report(
    run_dir: Path, out: Path | None = None, cv=None, seeds=None, qrs=None, stream=None, target: str | None = None
) -> Path:
    from edgeecg.atomic import write_text_atomic

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgeECGError(f"{run_dir}: run directory does not exist")
    out = Path(out) if out else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, render(Inputs(run_dir, cv, seeds, qrs, stream, target)))
    return out


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Default: RUN_DIR/report.html.")
@click.option(
    "--cv", "cv_path", type=click.Path(path_type=Path), help="cv.json or its directory (default: found beside the run)."
)
@click.option("--seeds", "seeds_path", type=click.Path(path_type=Path), help="seeds.json or its directory.")
@click.option(
    "--qrs", "qrs_path", type=click.Path(path_type=Path), help="qrs.json of `edgeecg detect`, or its directory."
)
@click.option(
    "--stream",
    "stream_path",
    type=click.Path(path_type=Path),
    help="stream.json of `edgeecg stream`, or its directory.",
)
@click.option("--target", "target_name", help="Only this export/bench target (default: every one found).")
def report_command(run_dir, out, cv_path, seeds_path, qrs_path, stream_path, target_name):
    """One self-contained report.html of a run: recipe, metrics, CV, seeds, int8, bench, QRS, explanations.

    \b
    Example:
      edgeecg report runs/hybrid --cv runs/cv-hybrid --seeds runs/seeds --qrs runs/qrs
    """
    try:
        path = write_report(run_dir, out, cv_path, seeds_path, qrs_path, stream_path, target_name)
    except EdgeECGError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {path} ({path.stat().st_size:,d} bytes)")
