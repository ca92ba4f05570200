"""``edgeecg app``: a Streamlit page to look at a run's classes and explanations, beat by beat.

Pick a run directory and a record: a record of a WFDB folder, an uploaded ``.hea``/``.dat``/``.atr``
set (without ``.atr`` the beats come from the project's QRS detector and have no reference class),
or a CSV of samples with its sampling rate. The page shows the ECG strip with every beat coloured by
class (reference above the trace, the float model's class on it), the beats per class (reference,
float, int8), and for the selected beat (pick it in the list or click it on the strip) its Grad-CAM
and integrated-gradients explanation (:mod:`edgeecg.explain`) and its float and int8 class (the
int8 class is the export's integer reference, bit-exact with the generated C).

This file is the Streamlit script (``streamlit run edgeecg/app.py``); ``edgeecg app`` starts it
with ``--run``/``--data`` passed in the environment (``EDGEECG_APP_RUN``, ``EDGEECG_APP_DATA``).
"""

from __future__ import annotations

import os
import sys

# Streamlit puts the script's own directory (edgeecg/) first on sys.path, where edgeecg's
# subpackages (io, models, ...) would shadow top-level modules of the same name: take it off.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402
import numpy as np  # noqa: E402

from edgeecg.errors import EdgeECGError  # noqa: E402
from edgeecg.processing.aami import CLASSES, class_counts  # noqa: E402

APP_PATH = Path(__file__).resolve()
TITLE = "edgeecg: beats, classes and explanations"
STRIP_SECONDS = 10.0
WFDB_SUFFIXES = ("hea", "dat", "atr")


# ---------------------------------------------------------------------------------------------
# Reading what a user gives (pure functions: testable without Streamlit)
# ---------------------------------------------------------------------------------------------


def parse_csv(data: bytes, name: str = "upload.csv") -> tuple[dict[str, np.ndarray], float | None]:
    """Numeric columns of a CSV of samples, and a sampling rate found in it (a ``# fs = 360`` comment
    line, or an ``fs``/``sampling_rate`` column's first value), else None.

    Separators: comma, semicolon, tab or spaces; one optional header row. A file with no numeric
    column, with text in a numeric column, or with fewer than 10 rows is an error naming the file.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EdgeECGError(f"{name}: not a text file (expected a CSV of samples)") from None
    fs_hint = None
    lines = []
    for raw in text.splitlines():
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s.lstrip("#").replace(":", "=").split("=")
            if len(body) == 2 and body[0].strip().lower() in ("fs", "sampling_rate", "sampling rate", "hz", "rate"):
                try:
                    fs_hint = float(body[1].strip().split()[0])
                except (ValueError, IndexError):
                    pass
            continue
        lines.append(s)
    if not lines:
        raise EdgeECGError(f"{name}: empty (expected one sample per row)")
    sep = next((c for c in (",", ";", "\t") if c in lines[0]), None)
    spaced = sep is None and len(lines[0].split()) > 1  # columns separated by spaces

    def split(line):
        cells = line.split(sep) if sep else line.split() if spaced else [line]
        return [c.strip().strip('"') for c in cells]

    first = split(lines[0])

    def is_number(c):
        try:
            float(c)
            return True
        except ValueError:
            return False

    header = None if all(is_number(c) for c in first) else first
    rows = [split(ln) for ln in (lines[1:] if header else lines)]
    width = len(header) if header else len(first)
    names = header or [f"column {i + 1}" for i in range(width)]
    if len(rows) < 10:
        raise EdgeECGError(f"{name}: {len(rows)} rows of samples; need a signal (one sample per row)")
    columns = {}
    for j, col in enumerate(names):
        values = [r[j] if j < len(r) else "" for r in rows]
        try:
            columns[col] = np.array([float(v) for v in values], dtype=np.float64)
        except ValueError:
            bad = next(k for k, v in enumerate(values) if not is_number(v))
            if col.lower() in ("time", "t", "label", "annotation"):
                continue
            raise EdgeECGError(
                f"{name}: row {bad + 1 + bool(header)} of column {col!r} is {values[bad]!r}, " f"not a number"
            ) from None
    for key in list(columns):
        if key.strip().lower() in ("fs", "sampling_rate", "sampling rate"):
            fs_hint = fs_hint or float(columns.pop(key)[0])
    if not columns:
        raise EdgeECGError(f"{name}: no numeric column")
    return columns, fs_hint


def signal_column(columns: dict[str, np.ndarray]) -> str:
    """The column most likely to hold the ECG: one named like a lead, else the first that is not time."""
    for key in columns:
        if key.strip().lower() in ("mlii", "ii", "ecg", "lead ii", "signal", "mv"):
            return key
    rest = [k for k in columns if k.strip().lower() not in ("time", "t", "time_s", "seconds", "sample", "index")]
    return (rest or list(columns))[0]


def check_wfdb_upload(files: list[tuple[str, bytes]]) -> tuple[str, bool]:
    """Record name of an uploaded WFDB set and whether it has ``.atr`` annotations; a one-line
    error for anything else (no header, several records, a missing signal file)."""
    by_ext: dict[str, list[str]] = {}
    for fname, _ in files:
        stem, _, ext = fname.rpartition(".")
        by_ext.setdefault(ext.lower(), []).append(stem)
    other = sorted(set(by_ext) - set(WFDB_SUFFIXES))
    if other:
        raise EdgeECGError(
            f"unexpected file type(s) {', '.join('.' + e for e in other)}: upload a record's "
            f".hea, .dat and (optionally) .atr"
        )
    heads = by_ext.get("hea", [])
    if len(heads) != 1:
        raise EdgeECGError(
            f"upload exactly one header (.hea), not {len(heads)}: " "a WFDB record is name.hea + name.dat (+ name.atr)"
        )
    name = heads[0]
    stems = {s for v in by_ext.values() for s in v}
    if stems != {name}:
        raise EdgeECGError(f"files of several records ({', '.join(sorted(stems))}): upload one record")
    if "dat" not in by_ext:
        raise EdgeECGError(f"{name}.dat missing: the header needs its signal file")
    return name, "atr" in by_ext


def read_wfdb_upload(files: list[tuple[str, bytes]], cfg, workdir: Path):
    """:class:`edgeecg.explain.RecordBeats` of an uploaded WFDB record (every file checked, as for
    a folder). Without ``.atr`` the R peaks come from the QRS detector (no reference classes)."""
    from edgeecg.explain import load_record, unannotated_record_beats
    from edgeecg.io.wfdb_records import read_header, read_signal

    name, annotated = check_wfdb_upload(files)
    for fname, content in files:
        (workdir / Path(fname).name).write_bytes(content)
    leads = list(read_header(workdir, name).sig_name or [])
    lead = cfg.lead if cfg.lead in leads else 0
    if annotated:
        return load_record(workdir, name, cfg, lead)
    signal, fs = read_signal(workdir, name, lead)
    return unannotated_record_beats(signal, fs, cfg, name)


def classify_record(model, rb, int8_model=None) -> dict:
    """Float probabilities and classes of every beat, and the int8 classes where an export exists."""
    from edgeecg.explain import probabilities

    proba = probabilities(model, rb.beats.x, rb.beats.rr)
    out = {"proba": proba, "float": proba.argmax(1), "int8": None}
    if int8_model is not None:
        out["int8"] = int8_model.classes(rb.beats.x, rb.beats.rr)
    return out


def class_counts_table(y: np.ndarray, pred: np.ndarray, int8: np.ndarray | None) -> dict[str, list]:
    """Beats per class: reference (where known), float, int8 (where exported)."""
    table = {"class": list(CLASSES)}
    if np.any(y >= 0):
        table["reference"] = list(class_counts(y).values())
    table["float"] = list(class_counts(pred).values())
    if int8 is not None:
        table["int8 C"] = list(class_counts(int8).values())
    return table


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _cls(i) -> str:
    return CLASSES[int(i)] if 0 <= int(i) < len(CLASSES) else "?"


def strip_chart(rb, classes: dict, centre: int, seconds: float = STRIP_SECONDS):
    """Altair layers: the preprocessed lead around beat ``centre``, the float class on each R peak,
    the reference class above the trace, and the selected beat ringed. Clicking a beat selects it."""
    import altair as alt
    import pandas as pd

    from edgeecg.explain import CLASS_COLOURS

    b, fs = rb.beats, rb.fs
    t_c = b.sample[centre] / fs
    t0 = max(0.0, t_c - seconds / 2)
    t1 = min(len(rb.signal) / fs, t0 + seconds)
    i0, i1 = int(t0 * fs), int(t1 * fs)
    sig = pd.DataFrame({"t": np.arange(i0, i1) / fs, "mV": rb.signal[i0:i1]})
    in_view = np.flatnonzero((b.sample >= i0) & (b.sample < i1))
    top = float(sig["mV"].max()) if len(sig) else 1.0
    span = float(sig["mV"].max() - sig["mV"].min()) if len(sig) else 1.0
    beats = pd.DataFrame(
        {
            "beat": in_view,
            "t": b.sample[in_view] / fs,
            "mV": rb.signal[np.clip(b.sample[in_view], 0, len(rb.signal) - 1)],
            "ref_y": np.full(len(in_view), top + 0.15 * span),
            "float": [_cls(classes["float"][i]) for i in in_view],
            "reference": [_cls(b.y[i]) for i in in_view],
            "int8": [_cls(classes["int8"][i]) if classes["int8"] is not None else "–" for i in in_view],
        }
    )
    domain = list(CLASS_COLOURS)
    colour = alt.Scale(domain=domain, range=[CLASS_COLOURS[c] for c in domain])
    pick = alt.selection_point(name="beat_pick", fields=["beat"], on="click")
    base = (
        alt.Chart(sig)
        .mark_line(color="#444", strokeWidth=1)
        .encode(
            x=alt.X("t:Q", title="time (s)", scale=alt.Scale(domain=[t0, t1])),
            y=alt.Y("mV:Q", title="band-passed lead"),
        )
    )
    tips = ["beat:Q", "t:Q", "reference:N", "float:N", "int8:N"]
    pred_pts = (
        alt.Chart(beats)
        .mark_circle(size=90, opacity=0.9)
        .encode(x="t:Q", y="mV:Q", color=alt.Color("float:N", scale=colour, title="class"), tooltip=tips)
        .add_params(pick)
    )
    layers = [base, pred_pts]
    if rb.annotated:
        layers.append(
            alt.Chart(beats)
            .mark_point(shape="triangle-down", size=80, filled=True)
            .encode(x="t:Q", y="ref_y:Q", color=alt.Color("reference:N", scale=colour), tooltip=tips)
        )
    sel = beats[beats["beat"] == centre]
    layers.append(alt.Chart(sel).mark_point(size=400, color="black", strokeWidth=2).encode(x="t:Q", y="mV:Q"))
    return alt.layer(*layers).properties(height=280)


def _picked_beat(state) -> int | None:
    """The beat clicked on the strip in the previous run, if any."""
    try:
        points = state["selection"]["beat_pick"]
    except (KeyError, TypeError):
        return None
    if points and "beat" in points[0]:
        return int(points[0]["beat"])
    return None


def main_page() -> None:
    import pandas as pd
    import streamlit as st

    from edgeecg import explain as ex

    st.set_page_config(page_title=TITLE, layout="wide")
    st.title(TITLE)

    @st.cache_resource(show_spinner=False)
    def load(run: str, stamp: float):
        from edgeecg.run import load_run

        cfg, model, manifest = load_run(Path(run))
        export = ex.find_export(Path(run))
        int8, note = None, "no export: run `edgeecg quantize RUN --target T` to compare with int8"
        if export is not None:
            try:
                int8, note = ex.Int8Model(export, model), f"int8: {export}"
            except (ImportError, EdgeECGError) as err:
                note = f"int8 model not loaded: {err}"
        return cfg, model, manifest, int8, note

    @st.cache_data(show_spinner=False, max_entries=8)
    def folder_record(data_dir: str, record: str, _cfg, cfg_key: str):
        return ex.load_record(Path(data_dir), record, _cfg.data)

    @st.cache_data(show_spinner=False, max_entries=8)
    def uploaded_record(files: tuple, _cfg, cfg_key: str):
        with tempfile.TemporaryDirectory(prefix="edgeecg-upload-") as d:
            return read_wfdb_upload(list(files), _cfg.data, Path(d))

    @st.cache_data(show_spinner=False, max_entries=8)
    def csv_record(signal_bytes: bytes, fs: float, name: str, _cfg, cfg_key: str):
        return ex.unannotated_record_beats(np.frombuffer(signal_bytes, dtype=np.float64), fs, _cfg.data, name)

    @st.cache_data(show_spinner=False, max_entries=8)
    def record_classes(_model, _int8, _rb, run_key: tuple, record_key: tuple):
        """Every beat's classes, once per run and record (not on every click of a beat)."""
        return classify_record(_model, _rb, _int8)

    # ---- run -------------------------------------------------------------------------------
    side = st.sidebar
    side.header("Run")
    run = side.text_input(
        "Run directory",
        value=os.environ.get("EDGEECG_APP_RUN", ""),
        help="A directory written by `edgeecg train` (model.pt, config.toml).",
    )
    if not run:
        st.info("Enter a run directory (written by `edgeecg train`) in the sidebar.")
        st.stop()
    weights = Path(run) / "model.pt"
    try:
        if not weights.exists():
            raise EdgeECGError(f"{run}: not a run directory (no model.pt; train one with `edgeecg train`)")
        run_key = (str(Path(run).resolve()), weights.stat().st_mtime)
        cfg, model, manifest, int8_model, int8_note = load(*run_key)
    except EdgeECGError as err:
        st.error(str(err))
        st.stop()
    side.caption(f"{cfg.model.name}, {cfg.data.fs} Hz, window {cfg.data.window}; {int8_note}")
    cfg_key = repr(cfg.data)

    # ---- record ----------------------------------------------------------------------------
    side.header("Record")
    source = side.radio("Source", ["WFDB folder", "Upload WFDB files", "CSV of samples"], key="source")
    rb = None
    try:
        if source == "WFDB folder":
            default = os.environ.get("EDGEECG_APP_DATA") or manifest.get("data_dir", "")
            data_dir = side.text_input("Records directory", value=default, key="data_dir")
            if not data_dir or not Path(data_dir).is_dir():
                st.info("Enter a directory of WFDB records (name.hea, name.dat, name.atr) in the sidebar.")
                st.stop()
            from edgeecg.io import list_records

            names = list_records(Path(data_dir))
            if not names:
                raise EdgeECGError(f"{data_dir}: no WFDB records (*.hea) found")
            record = side.selectbox("Record", names, key="record")
            with st.spinner(f"reading record {record} ..."):
                record_key = ("folder", str(Path(data_dir).resolve()), record)
                rb = folder_record(*record_key[1:], cfg, cfg_key)
        elif source == "Upload WFDB files":
            up = side.file_uploader("Record files (.hea, .dat, .atr)", accept_multiple_files=True, key="wfdb_files")
            if not up:
                st.info("Upload one record's .hea and .dat files (and its .atr for reference classes).")
                st.stop()
            files = tuple((f.name, f.getvalue()) for f in up)
            record_key = ("upload", files)
            rb = uploaded_record(files, cfg, cfg_key)
        else:
            up = side.file_uploader("CSV of samples (mV, one row per sample)", key="csv_file")
            if up is None:
                st.info("Upload a CSV with one sample per row (a column per lead, in mV) and give its sampling rate.")
                st.stop()
            columns, fs_hint = parse_csv(up.getvalue(), up.name)
            keys = list(columns)
            col = side.selectbox("Signal column", keys, index=keys.index(signal_column(columns)), key="csv_column")
            fs = side.number_input(
                "Sampling rate (Hz)",
                min_value=50.0,
                max_value=20000.0,
                value=float(fs_hint or 360.0),
                step=1.0,
                key="csv_fs",
            )
            record_key = ("csv", columns[col].tobytes(), float(fs), Path(up.name).stem)
            rb = csv_record(*record_key[1:], cfg, cfg_key)
    except EdgeECGError as err:
        st.error(f"Cannot use this record: {err}")
        st.stop()
    b = rb.beats
    if not len(b.y):
        st.error(f"Record {rb.name}: no beat could be classified (too short, or no R peaks found).")
        st.stop()
    classes = record_classes(model, int8_model, rb, run_key, record_key)
    pred, i8 = classes["float"], classes["int8"]
    if not rb.annotated:
        st.info(
            "No reference annotations: beats were found by the project's QRS detector; "
            "only the model's classes are shown."
        )

    # ---- summary ---------------------------------------------------------------------------
    cols = st.columns(4)
    cols[0].metric("beats", f"{len(b.y):,d}")
    if rb.annotated:
        cols[1].metric("float agrees with reference", f"{100 * np.mean(pred == b.y):.1f} %")
    if i8 is not None:
        cols[2].metric(
            "int8 C agrees with float",
            f"{100 * np.mean(pred == i8):.2f} %",
            help="int8 = the integer reference of model.int8.tflite, bit-exact with the generated C",
        )
    cols[3].metric("record", rb.name)
    st.subheader("Beats per class")
    st.dataframe(pd.DataFrame(class_counts_table(b.y, pred, i8)).set_index("class"), width="content")

    # ---- beat selection --------------------------------------------------------------------
    filters = {"all beats": np.arange(len(b.y))}
    if rb.annotated:
        filters["float ≠ reference"] = np.flatnonzero(pred != b.y)
    if i8 is not None:
        filters["int8 ≠ float"] = np.flatnonzero(pred != i8)
    for c in range(len(CLASSES)):
        ref = b.y == c if rb.annotated else pred == c
        if ref.any():
            filters[f"{'reference' if rb.annotated else 'float'} {CLASSES[c]}"] = np.flatnonzero(ref)
    clicked = _picked_beat(st.session_state.get("strip"))
    if clicked is not None and clicked != st.session_state.get("last_click"):
        st.session_state["last_click"] = clicked
        st.session_state["beat_filter"] = "all beats"
        st.session_state["beat"] = clicked
    side.header("Beat")
    which = side.selectbox(
        "Browse", list(filters), key="beat_filter", format_func=lambda k: f"{k} ({len(filters[k]):,d})"
    )
    options = filters[which].tolist() or [0]
    if st.session_state.get("beat") not in options:
        st.session_state["beat"] = options[0]

    def label(i):
        s = f"beat {i}, {b.sample[i] / rb.fs:.2f} s: float {_cls(pred[i])}"
        if rb.annotated:
            s += f", reference {_cls(b.y[i])}"
        if i8 is not None:
            s += f", int8 {_cls(i8[i])}"
        return s

    beat = side.selectbox("Beat", options, key="beat", format_func=label)

    # ---- strip -----------------------------------------------------------------------------
    st.subheader(f"ECG strip around beat {beat}")
    st.caption(
        "Dots: the float model's class on each R peak; triangles above: the reference class. "
        "Click a dot to explain that beat."
    )
    st.altair_chart(
        strip_chart(rb, classes, beat), key="strip", on_select="rerun", selection_mode="beat_pick", width="stretch"
    )

    # ---- explanation -----------------------------------------------------------------------
    st.subheader(f"Beat {beat}")
    c1, c2, c3 = st.columns(3)
    c1.metric("reference", _cls(b.y[beat]) if rb.annotated else "–")
    c2.metric("float", f"{_cls(pred[beat])} ({classes['proba'][beat].max():.2f})")
    if i8 is not None:
        same = "same as float" if i8[beat] == pred[beat] else "DIFFERS from float"
        c3.metric("int8 C", _cls(i8[beat]), delta=same, delta_color="off" if i8[beat] == pred[beat] else "inverse")
    else:
        c3.caption(int8_note)
    with st.spinner("explaining (captum: Grad-CAM, integrated gradients) ..."):
        [(summary, fig)] = ex.explain_beats(model, rb, [beat], cfg.data, int8=i8, proba=classes["proba"])
    st.image(ex.figure_png(fig), width="stretch")
    st.caption(
        f"Explaining the float model's class {summary['explained_class']}. Shading: Grad-CAM on "
        f"{ex.last_conv(model)[0]}; line colour: integrated gradients; bars: the RR features' share "
        f"of the logit (baseline: the training mean)."
    )
    st.dataframe(
        pd.DataFrame(
            {
                "RR feature": list(summary["ig_rr"]),
                "value": [float(v) for v in b.rr[beat]],
                "integrated gradient": list(summary["ig_rr"].values()),
            }
        ),
        hide_index=True,
        width="content",
    )


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def streamlit_args(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


@click.command("app")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), help="Run directory to open first.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="WFDB records directory to offer first (default: the one the run was trained on).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to serve on.")
def app_command(run_dir, data_path, port, address):
    """A web page to browse a record's beats, classes (float and int8) and explanations (Streamlit).

    \b
    Example:
      edgeecg app --run runs/hybrid --data ../shared/data/mitdb --port 8501
    """
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        raise click.ClickException("this command needs streamlit: pip install streamlit")
    for p, what in ((run_dir, "run directory"), (data_path, "data directory")):
        if p is not None and not Path(p).is_dir():
            raise click.ClickException(f"{p}: {what} does not exist")
    env = dict(os.environ)
    env["EDGEECG_APP_RUN"] = str(Path(run_dir).resolve()) if run_dir else ""
    env["EDGEECG_APP_DATA"] = str(Path(data_path).resolve()) if data_path else ""
    click.echo(f"edgeecg app on http://{address}:{port} (Ctrl-C stops it)", err=True)
    try:
        rc = subprocess.call(streamlit_args(port, address), env=env)
    except KeyboardInterrupt:
        rc = 0
    if rc:
        raise click.ClickException(f"streamlit exited with status {rc}")


if __name__ == "__main__":
    main_page()
