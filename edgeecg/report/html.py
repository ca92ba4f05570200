"""HTML pieces of the report: escaping, number formatting, tables, verdicts, inline PNGs and the CSS."""

from __future__ import annotations

import base64
import html
from pathlib import Path

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;opacity:.9}nav{padding:8px 28px;background:#e8edf2;position:sticky;top:0;z-index:2}
nav a{margin-right:12px;color:#1f3b57;text-decoration:none;font-size:13px}main{padding:0 28px 40px}
section{background:#fff;border:1px solid #dde3e8;border-radius:6px;margin:18px 0;padding:6px 18px 14px}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:12.5px}th,td{border:1px solid #dde3e8;padding:3px 8px;text-align:right}
th{background:#f1f4f7}td.l,th.l{text-align:left}.pass{color:#207a3c;font-weight:600}.fail{color:#b3261e;font-weight:600}
.notrun{color:#777;font-style:italic}.err{color:#b3261e}pre{background:#f5f7f9;padding:8px;overflow:auto;font-size:12px;max-height:340px}
figure{display:inline-block;margin:6px 10px 10px 0;vertical-align:top}figcaption{font-size:12px;color:#555;max-width:780px}
img{max-width:100%;border:1px solid #eee}svg{background:#fff}code{font-size:12px}.small{font-size:12px;color:#555}
details summary{cursor:pointer;color:#1f3b57}
"""


def esc(v) -> str:
    return html.escape(str(v), quote=True)


def fmt(v, spec: str = ".1f") -> str:
    """A number as text (``spec`` ending in ``d``: rounded to an integer); None as a dash; text as is."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return format(int(round(v)), spec) if spec.endswith("d") else format(float(v), spec)
    return str(v)


def table(head: list[str], rows: list[list], left: int = 1, cls: str = "") -> str:
    """Rows of already-formatted cells (strings are escaped unless they start with '<')."""

    def cell(v, i, tag):
        text = v if isinstance(v, str) and v.startswith("<") else esc(v)
        return f"<{tag}{' class=l' if i < left else ''}>{text}</{tag}>"

    out = [f"<table{f' class={cls}' if cls else ''}>"]
    if any(str(h) for h in head):
        out.append("<tr>" + "".join(cell(h, i, "th") for i, h in enumerate(head)) + "</tr>")
    out += ["<tr>" + "".join(cell(v, i, "td") for i, v in enumerate(r)) + "</tr>" for r in rows]
    return "".join(out) + "</table>"


def not_run(what: str) -> str:
    return f'<p class="notrun">not run: {esc(what)}</p>'


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "–"
    return '<span class="pass">PASS</span>' if ok else '<span class="fail">FAIL</span>'


def img_png(path: Path, caption: str = "", width: int | None = None) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    w = f' width="{width}"' if width else ""
    return (
        f'<figure><img class="fig" alt="{esc(caption or Path(path).name)}"{w} src="data:image/png;base64,{data}">'
        + (f"<figcaption>{esc(caption)}</figcaption>" if caption else "")
        + "</figure>"
    )
