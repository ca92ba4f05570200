"""The report's charts, drawn as inline SVG by hand: grouped bars, horizontal bars, lines, confusion matrices."""

from __future__ import annotations

from edgeecg.report.html import esc

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<figure><svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>'
        + "".join(body)
        + f"</svg><figcaption>{esc(title)}</figcaption></figure>"
    )


def _text(x, y, s, anchor="middle", size=11, rotate=None, fill="#333") -> str:
    tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{tr}>{esc(s)}</text>'


def svg_grouped_bars(
    groups: list[str],
    series: dict[str, list],
    title: str,
    ymax: float = 100.0,
    ylabel: str = "%",
    sublabels: list[str] | None = None,
    ybase: float = 0.0,
) -> str:
    """Vertical grouped bars (None: no bar), one colour per series, a legend and a y axis from
    ``ybase`` to ``ymax`` (values below ``ybase`` get no bar)."""
    n, k = len(groups), max(1, len(series))
    slot = max(22, 9 * k + 8)
    left, top, bottom, h = 44, 26, 58, 200
    width = max(left + n * slot + 20, left + 20 + 90 * k, 360)
    height = top + h + bottom
    body = [f'<line x1="{left}" y1="{top + h}" x2="{width - 10}" y2="{top + h}" stroke="#999"/>']
    for t in range(0, 5):
        v = ybase + (ymax - ybase) * t / 4
        y = top + h - h * t / 4
        body += [
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#eee"/>',
            _text(left - 4, y + 4, f"{v:g}", "end", 10),
        ]
    body.append(_text(12, top + h / 2, ylabel, "middle", 10, -90))
    bw = (slot - 6) / k
    for gi, g in enumerate(groups):
        x0 = left + gi * slot + 3
        for si, (name, values) in enumerate(series.items()):
            v = values[gi]
            if v is None:
                continue
            bh = h * (min(max(float(v), ybase), ymax) - ybase) / ((ymax - ybase) or 1.0)
            body.append(
                f'<rect x="{x0 + si * bw:.1f}" y="{top + h - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{esc(g)} {esc(name)}: {float(v):.1f}</title></rect>'
            )
        body.append(_text(x0 + slot / 2 - 3, top + h + 12, g, "end", 9, -45))
        if sublabels:
            body.append(_text(x0 + slot / 2 - 3, top + h + 48, sublabels[gi], "middle", 8, None, "#777"))
    for si, name in enumerate(series):
        x = left + 10 + si * 90
        body += [
            f'<rect x="{x}" y="6" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>',
            _text(x + 14, 15, name, "start", 10),
        ]
    return _svg(width, height, body, title)


def svg_hbars(
    labels: list[str],
    values: list[float],
    title: str,
    unit: str = "",
    log: bool = False,
    colours: list[str] | None = None,
) -> str:
    """Horizontal bars with the value written at the end; ``log``: a log10 length scale."""
    import math

    left, right, row = 170, 90, 18
    width, height = 640, 30 + row * len(labels)
    vals = [max(float(v), 0.0) for v in values]
    if log:
        lo = math.floor(math.log10(min([v for v in vals if v > 0] or [1.0])))
        hi = math.ceil(math.log10(max(vals + [10.0 ** (lo + 1)])))
        span = max(hi - lo, 1)

        def length(v):
            return 0.0 if v <= 0 else (math.log10(v) - lo + 0.05) / (span + 0.05)

    else:
        top_v = max(vals + [1e-12])

        def length(v):
            return v / top_v

    body = []
    for i, (lab, v) in enumerate(zip(labels, vals)):
        y = 20 + i * row
        w = (width - left - right) * length(v)
        c = (colours or [PALETTE[0]] * len(labels))[i]
        body += [
            _text(left - 6, y + 11, lab, "end", 11),
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 4}" fill="{c}"><title>{esc(lab)}: '
            f"{v:,.2f} {esc(unit)}</title></rect>",
            _text(
                left + w + 4, y + 11, f"{v:,.0f} {unit}" if float(v).is_integer() else f"{v:,.1f} {unit}", "start", 10
            ),
        ]
    body.append(_text(left, 12, "log scale" if log else "", "start", 9, None, "#777"))
    return _svg(width, height, body, title)


def svg_lines(
    x: list[float],
    series: dict[str, list[float]],
    title: str,
    ymax: float = 100.0,
    marker_x: float | None = None,
    xlabel: str = "epoch",
) -> str:
    left, top, w, h = 44, 26, 520, 200
    width, height = left + w + 20, top + h + 40
    x0, x1 = min(x), max(x) if len(x) > 1 else min(x) + 1

    def px(v):
        return left + w * (v - x0) / ((x1 - x0) or 1)

    def py(v):
        return top + h - h * min(max(v, 0.0), ymax) / ymax

    body = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>']
    for t in range(5):
        y = top + h - h * t / 4
        body += [
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#eee"/>',
            _text(left - 4, y + 4, f"{ymax * t / 4:g}", "end", 10),
        ]
    for v in x:
        body.append(_text(px(v), top + h + 14, f"{v:g}", "middle", 9))
    body.append(_text(left + w / 2, top + h + 32, xlabel, "middle", 10))
    if marker_x is not None:
        body.append(
            f'<line x1="{px(marker_x):.1f}" y1="{top}" x2="{px(marker_x):.1f}" y2="{top + h}" '
            f'stroke="#888" stroke-dasharray="4 3"/>'
        )
    for si, (name, ys) in enumerate(series.items()):
        c = PALETTE[si % len(PALETTE)]
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, ys) if b is not None)
        body.append(
            f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"><title>{esc(name)}</title></polyline>'
        )
        lx = left + 10 + si * 90
        body += [f'<rect x="{lx}" y="6" width="10" height="10" fill="{c}"/>', _text(lx + 14, 15, name, "start", 10)]
    return _svg(width, height, body, title)


def svg_confusion(cm: list[list], labels: list[str], title: str) -> str:
    """Confusion matrix with rows shaded by the share of their reference class."""
    n = len(cm)
    cell, left, top = 46, 70, 44
    width, height = left + n * cell + 10, top + n * cell + 30
    body = [
        _text(left + n * cell / 2, 14, "predicted", "middle", 11),
        _text(14, top + n * cell / 2, "reference", "middle", 11, -90),
    ]
    for j, lab in enumerate(labels):
        body.append(_text(left + j * cell + cell / 2, top - 6, lab, "middle", 11))
    for i, rowv in enumerate(cm):
        total = sum(rowv) or 1
        body.append(_text(left - 8, top + i * cell + cell / 2 + 4, labels[i], "end", 11))
        for j, v in enumerate(rowv):
            share = float(v) / total
            fill = f"rgba(31,90,160,{0.08 + 0.85 * share:.3f})" if v else "#fff"
            body += [
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" fill="{fill}" '
                f'stroke="#dde3e8"><title>{labels[i]} as {labels[j]}: {v}</title></rect>',
                _text(
                    left + j * cell + cell / 2,
                    top + i * cell + cell / 2 + 4,
                    f"{v:g}" if isinstance(v, float) else str(v),
                    "middle",
                    10,
                    None,
                    "#fff" if share > 0.5 else "#222",
                ),
            ]
    return _svg(width, height, body, title)
