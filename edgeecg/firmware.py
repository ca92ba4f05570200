"""``edgeecg firmware``: ESP-IDF, Arduino and Linux projects around a quantized run's generated C
(:mod:`firmware_export.projects`)."""

from __future__ import annotations

from pathlib import Path

import click

from edgeecg.errors import EdgeECGError

DATA_HELP = ("Directory with the MIT-BIH records (or one holding mitdb/) to take the playback samples from. "
             "Default: the one the run was trained on.")


@click.command("firmware")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, help="Target name (see `edgeecg targets`) or a TOML path.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write the projects into.")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--record", help="Record whose first 10 s the playback examples embed. Default: 100, else the "
                               "first DS2 record, else the first record found.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def firmware_command(run_dir, target_name, out, data_path, record, force):
    """Write ESP-IDF, Arduino and Linux (Raspberry Pi) projects around the C of `edgeecg quantize`.

    OUT gets esp-idf/ (a component and a playback app), arduino/edgeecg/ (a library with a playback
    example), linux/ (edgeecg_run for WFDB records or raw samples), README.md, and
    expected_playback.txt: the lines the examples must print.

    \b
    Example:
      edgeecg quantize runs/hybrid --target esp32
      edgeecg firmware runs/hybrid --target esp32 --out firmware/esp32
    """
    from edgeecg.targets import load_target
    from firmware_export.projects import write_projects

    try:
        target = load_target(target_name)
        summary = write_projects(run_dir, target, out, data_path, record, force)
    except EdgeECGError as err:
        raise click.ClickException(str(err)) from None
    except OSError as err:
        raise click.ClickException(f"{err.filename or ''}: {err.strerror or err}") from None
    click.echo(f"wrote {out}: esp-idf/, arduino/edgeecg/, linux/ (prefix {summary['prefix']}; playback: "
               f"{summary['seconds']:g} s of record {summary['record']}, {summary['beats']} beats in "
               f"expected_playback.txt)")
