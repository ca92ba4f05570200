"""The explanation figures (matplotlib, Agg): Grad-CAM as shading behind the beat, integrated gradients
as the colour of its line and as bars for the RR features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASS_COLOURS = {"N": "#4c72b0", "S": "#dd8452", "V": "#c44e52", "F": "#8172b3", "Q": "#937860", "?": "#7f7f7f"}


def _channel_names(cfg) -> list[str]:
    names = ["beat"] if cfg.beat_channel else []
    if cfg.template_beats:
        names.append("beat − template")
    return names


def _draw_channel(ax, t_ms, wave, cam, ig, ig_scale, label):
    from matplotlib.collections import LineCollection

    lo, hi = float(np.min(wave)), float(np.max(wave))
    pad = max(0.1 * (hi - lo), 0.25)
    if cam is not None and np.max(cam) > 0:
        ax.imshow(
            cam[None, :] / np.max(cam),
            aspect="auto",
            cmap="Greens",
            alpha=0.45,
            vmin=0,
            vmax=1,
            extent=(t_ms[0], t_ms[-1], lo - pad, hi + pad),
            origin="lower",
            zorder=0,
        )
    pts = np.stack([t_ms, wave], axis=1)
    seg = np.stack([pts[:-1], pts[1:]], axis=1)
    lc = LineCollection(seg, cmap="coolwarm", linewidths=2.2, zorder=2)
    lc.set_array(0.5 * (ig[:-1] + ig[1:]))
    lc.set_clim(-ig_scale, ig_scale)
    ax.add_collection(lc)
    ax.axvline(0, color="k", lw=0.6, ls=":", zorder=1)
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(label, fontsize=8)
    ax.tick_params(labelsize=7)
    return lc


def _draw_rr(ax, names, ig_rr, values=None, title="RR features (IG)"):
    colours = ["#c44e52" if v > 0 else "#4c72b0" for v in ig_rr]
    labels = [
        f"{n}\n= {v:.2f}" if values is not None else n for n, v in zip(names, values if values is not None else ig_rr)
    ]
    ax.barh(np.arange(len(names)), ig_rr, color=colours)
    ax.set_yticks(np.arange(len(names)), labels, fontsize=7)
    ax.axvline(0, color="k", lw=0.6)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def beat_figure(
    x: np.ndarray,
    cam: np.ndarray,
    ig_x: np.ndarray,
    ig_rr: np.ndarray,
    rr: np.ndarray | None,
    cfg,
    title: str,
    rr_names=None,
):
    """One beat (channels × window) with Grad-CAM shading, IG-coloured line and RR attribution bars."""
    from matplotlib.figure import Figure

    names = _channel_names(cfg) or [f"ch{i}" for i in range(x.shape[0])]
    rr_names = list(rr_names or cfg.rr_features)
    t_ms = (np.arange(x.shape[-1]) - cfg.before) * 1000.0 / cfg.fs
    fig = Figure(figsize=(9, 1.9 * x.shape[0] + 0.9), layout="constrained")
    gs = fig.add_gridspec(x.shape[0], 2, width_ratios=(3.2, 1.2))
    scale = float(np.max(np.abs(ig_x))) or 1.0
    lc = None
    for c in range(x.shape[0]):
        ax = fig.add_subplot(gs[c, 0])
        lc = _draw_channel(ax, t_ms, x[c], cam, ig_x[c], scale, names[c] if c < len(names) else f"ch{c}")
        if c == x.shape[0] - 1:
            ax.set_xlabel(
                "ms from the R peak (shading: Grad-CAM, last conv; line colour: integrated gradients)", fontsize=7
            )
    _draw_rr(fig.add_subplot(gs[:, 1]), rr_names, ig_rr, rr)
    fig.colorbar(lc, ax=fig.axes[: x.shape[0]], shrink=0.8, pad=0.01).ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    return fig


def class_means_figure(rows: list[dict], cfg, title: str, rr_names=None):
    """One row per class: mean beat (channel 0) with mean Grad-CAM and mean IG, and mean RR IG."""
    from matplotlib.figure import Figure

    rr_names = list(rr_names or cfg.rr_features)
    n = max(1, len(rows))
    fig = Figure(figsize=(9, 1.8 * n + 0.8), layout="constrained")
    gs = fig.add_gridspec(n, 2, width_ratios=(3.2, 1.2))
    if not rows:
        ax = fig.add_subplot(gs[0, :])
        ax.text(0.5, 0.5, "no beats", ha="center", va="center")
        ax.set_axis_off()
    for k, row in enumerate(rows):
        t_ms = (np.arange(row["x"].shape[-1]) - cfg.before) * 1000.0 / cfg.fs
        ax = fig.add_subplot(gs[k, 0])
        scale = float(np.max(np.abs(row["ig_x"][0]))) or 1.0
        _draw_channel(ax, t_ms, row["x"][0], row["cam"], row["ig_x"][0], scale, row["label"])
        sd = row.get("x_sd")
        if sd is not None:
            ax.fill_between(t_ms, row["x"][0] - sd[0], row["x"][0] + sd[0], color="grey", alpha=0.15, zorder=1)
        if k == n - 1:
            ax.set_xlabel("ms from the R peak (mean beat ± sd; shading: mean Grad-CAM; colour: mean IG)", fontsize=7)
        _draw_rr(fig.add_subplot(gs[k, 1]), rr_names, row["ig_rr"], None, "mean RR IG" if k == 0 else "")
    fig.suptitle(title, fontsize=9)
    return fig


def save_figure(fig, path: Path) -> None:
    fig.savefig(path, dpi=90)


def figure_png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
