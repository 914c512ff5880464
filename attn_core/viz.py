"""Figures used by every lesson: attention heatmaps, grids of heads, positional-encoding
heatmaps and a BertViz-style "lines between tokens" view, all plain matplotlib (no
JavaScript, nothing fetched), with colour-blind-safe colour maps and labelled axes.

Each plot function draws into `ax` (or `fig`) when given one and otherwise makes a new
pyplot figure, so a lesson can call it and end the cell with `plt.show()`. Explorers draw
into one pyplot-free `explorer_figure()` each (rendered for a device pixel ratio of 2,
opaque white) and turn it into PNG bytes with `figure_to_png`.
"""

from __future__ import annotations

import io
import struct
import zlib

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

try:  # ISA-L's deflate (the isal package): about 10x faster than zlib's at level 1, and smaller
    from isal.isal_zlib import compress as _deflate
except ImportError:  # not installed (it is a dependency of attn-core): zlib, the same format
    from zlib import compress as _deflate

__all__ = [
    "to_numpy",
    "new_figure",
    "explorer_figure",
    "figure_to_png",
    "attention_heatmap",
    "head_grid",
    "encoding_heatmap",
    "attention_lines",
]

CSS_DPI = 80
"""Dots per inch of one CSS pixel in the explorers: a figure of `w` inches is shown `80 * w` px wide."""
DEVICE_PIXEL_RATIO = 2
"""Explorer pictures carry 2 image pixels per CSS pixel, sharp on high-DPI screens."""
EXPLORER_MAX_FIGSIZE = (8.0, 6.0)
"""The largest explorer picture, in inches: 640 x 480 CSS px, so that controls beside it fit a 1366 x 768 screen."""
CMAP = "viridis"  # perceptually uniform and readable with the common colour-vision deficiencies
DIVERGING = "PuOr"  # for signed values (encodings): purple / orange, colour-blind safe


def to_numpy(x) -> np.ndarray:
    """A numpy copy of an array or tensor (detached from autograd)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def new_figure(figsize=(5, 4), dpi: int = 80, layout=None) -> Figure:
    """A matplotlib Figure outside pyplot: no global state, nothing shown by accident.

    No layout engine by default: constrained layout draws the figure twice and doubles a
    widget's update time; set margins with `fig.subplots_adjust` instead.
    """
    return Figure(figsize=figsize, dpi=dpi, layout=layout)


def explorer_figure(figsize=(6, 4)) -> Figure:
    """The Figure of an explorer: `figsize` inches at `2 * 80` dpi, on an opaque white background.

    Saved by `figure_to_png` at its own resolution, its PNG has `160 * figsize` pixels and is
    shown at its natural CSS size, `80 * figsize` px (2 image pixels per CSS pixel: sharp on
    high-DPI screens, never stretched). White figure background (not matplotlib-inline's
    transparent one): readable under JupyterLab's dark theme. Axes added to it get a white
    background too. No layout engine: set margins with `fig.subplots_adjust`.

    Args:
        figsize: `(width, height)` in inches, at most `EXPLORER_MAX_FIGSIZE` (8 x 6: 640 x 480 CSS px).
    """
    try:
        width, height = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise TypeError(f"figsize must be (width, height) in inches, got {figsize!r}") from None
    max_w, max_h = EXPLORER_MAX_FIGSIZE
    if not (0 < width <= max_w and 0 < height <= max_h):
        raise ValueError(f"figsize must be at most {max_w:g} x {max_h:g} inches ({int(max_w * CSS_DPI)} x "
                         f"{int(max_h * CSS_DPI)} CSS px) and positive, got {width:g} x {height:g}")
    fig = _ExplorerFigure(figsize=(width, height), dpi=DEVICE_PIXEL_RATIO * CSS_DPI, facecolor="white",
                          edgecolor="white")
    return fig


class _ExplorerFigure(Figure):
    """A Figure whose new Axes are opaque white, whatever `axes.facecolor` says."""

    def add_axes(self, *args, **kwargs):
        kwargs.setdefault("facecolor", "white")
        return super().add_axes(*args, **kwargs)

    def add_subplot(self, *args, **kwargs):
        kwargs.setdefault("facecolor", "white")
        return super().add_subplot(*args, **kwargs)


def figure_to_png(fig: Figure, dpi="figure") -> bytes:
    """Render `fig` to PNG bytes (what an `ipywidgets.Image` displays).

    Saved at the figure's own resolution by default (`dpi="figure"`: an `explorer_figure`
    gives 2 image pixels per CSS pixel), on an opaque background (white where the figure's
    own is transparent). The resolution is stored in the PNG (its `pHYs` chunk), which the
    `Explorer` reads to show the picture at its natural size.

    Fast path for an opaque figure at its own dpi (every explorer's): one Agg draw, then
    the pixels written as PNG rows without filters, deflated by ISA-L at level 1 (the
    `isal` package; zlib if it is missing). For a 1280 x 880 explorer picture: 0.7 ms and
    87 KiB, against 7 ms and 105 KiB with zlib at level 1, and 20 ms or more for Pillow's
    encoder, which tries five filters per row. Chromium decodes either in about 9 ms.
    """
    opaque = mcolors.to_rgba(fig.get_facecolor())[3] == 1.0
    own_canvas = isinstance(fig.canvas, FigureCanvasAgg) or type(fig.canvas) is FigureCanvasBase  # not a GUI's
    if opaque and own_canvas and (dpi == "figure" or dpi == fig.dpi):
        canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
        canvas.draw()
        return _encode_png(np.asarray(canvas.buffer_rgba()), fig.dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor() if opaque else "white",
                edgecolor=fig.get_edgecolor(), transparent=False, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_png(rgba: np.ndarray, dpi: float) -> bytes:
    """PNG bytes of an `(height, width, 4)` uint8 RGBA image, with its resolution."""
    height, width, _ = rgba.shape
    rows = np.empty((height, 1 + 4 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    rows[:, 1:] = rgba.reshape(height, 4 * width)
    per_metre = int(round(dpi / 0.0254))
    return b"".join([
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)),  # 8-bit RGBA
        _png_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
        _png_chunk(b"IDAT", _deflate(rows, 1)),  # a zlib stream, as PNG requires
        _png_chunk(b"IEND", b""),
    ])


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _check_matrix(w, tokens, key_tokens, name="weights"):
    w = to_numpy(w)
    if w.ndim != 2:
        raise ValueError(f"{name} must be a matrix (T, S) for one head, got shape {w.shape}")
    key_tokens = tokens if key_tokens is None else key_tokens
    if tokens is not None and len(tokens) != w.shape[0]:
        raise ValueError(f"{len(tokens)} query tokens given for {name} with T={w.shape[0]} rows")
    if key_tokens is not None and len(key_tokens) != w.shape[1]:
        raise ValueError(f"{len(key_tokens)} key tokens given for {name} with S={w.shape[1]} columns")
    return w, tokens, key_tokens


def attention_heatmap(weights, tokens=None, key_tokens=None, *, ax=None, title=None, annotate=None,
                      vmin=0.0, vmax=None, cmap=CMAP, colorbar=True, fmt=".2f"):
    """Heatmap of one attention matrix: row = query token (who looks), column = key token.

    Args:
        weights: `(T, S)` array or tensor (one head).
        tokens: T labels of the queries; `key_tokens`: S labels of the keys (default `tokens`).
        annotate: write each value in its cell (default: when the matrix is at most 12 x 12).
    Returns:
        The matplotlib Axes.
    """
    w, tokens, key_tokens = _check_matrix(weights, tokens, key_tokens)
    ax = _axes(ax, (1.2 + 0.45 * w.shape[1], 1.0 + 0.4 * w.shape[0]))
    masked = np.ma.masked_invalid(w)
    im = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if tokens is not None:
        ax.set_yticks(range(len(tokens)), tokens)
    if key_tokens is not None:
        ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=45, ha="right")
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    if annotate is None:
        annotate = max(w.shape) <= 12
    if annotate:
        hi = np.nanmax(w) if vmax is None else vmax
        for (i, j), val in np.ndenumerate(w):
            if np.isfinite(val):
                ax.text(j, i, format(val, fmt), ha="center", va="center", fontsize=7,
                        color="black" if val > 0.6 * hi else "white")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="weight")
    return ax


MIN_LABEL_PT = 8
"""The smallest label `head_grid` draws, in points (at 80 dpi: about 9 px)."""


def head_grid(weights, tokens=None, key_tokens=None, *, ncols=4, fig=None, titles=None, suptitle=None,
              annotate=False, cmap=CMAP):
    """One heatmap per head, side by side, on a shared 0..1 colour scale.

    Token labels adapt to the size of the tiles: 8 to 10 pt, never smaller than
    `MIN_LABEL_PT`; upright key labels when they fit side by side, vertical ones otherwise;
    and when even those would overlap, only every 2nd (3rd, ...) token is labelled. Without
    `fig` the figure is at most 10 inches wide (800 px at the lessons' 80 dpi), so a
    notebook shows it at its natural size instead of shrinking it.

    Args:
        weights: `(H, T, S)` per-head attention weights (drop the batch axis first).
        titles: optional H panel titles (default "head 0", "head 1", ...).
    Returns:
        The Figure.
    """
    w = to_numpy(weights)
    if w.ndim != 3:
        raise ValueError(f"head_grid expects per-head weights (H, T, S), got shape {w.shape}")
    H = w.shape[0]
    ncols = min(ncols, H)
    nrows = -(-H // ncols)
    size = (0.3 * w.shape[2] + 1.2, 0.3 * w.shape[1] + 0.9)
    if fig is None:
        scale = min(1.0, 10.0 / (size[0] * ncols))  # at most 10 inches wide; tiles keep their shape
        fig = plt.figure(figsize=(size[0] * ncols * scale, (size[1] * scale + 0.3) * nrows + 0.4 * bool(suptitle)),
                         layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for h, ax in enumerate(axes):
        if h >= H:
            ax.axis("off")
            continue
        attention_heatmap(w[h], tokens, key_tokens, ax=ax, annotate=annotate, colorbar=False, vmax=1.0, cmap=cmap,
                          title=titles[h] if titles else f"head {h}")
        if h % ncols:
            ax.set_ylabel("")
            ax.set_yticks([])
        if h < H - ncols:
            ax.set_xlabel("")
    if suptitle:
        fig.suptitle(suptitle)
    if tokens is not None or key_tokens is not None:
        fig.draw_without_rendering()  # lay the tiles out first: the labels are fitted to their final size
        renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()
        for ax in axes[:H]:
            _fit_tick_labels(ax, renderer)
    return fig


def _fit_tick_labels(ax, renderer, min_size: float = MIN_LABEL_PT, max_size: float = 10.0) -> None:
    """Size, turn and thin `ax`'s tick labels (one per cell) so that none is under `min_size` pt or overlaps another.

    The font follows the cell size (one line of text per cell, between `min_size` and
    `max_size`); key labels stay upright if the widest fits its cell, else turn vertical;
    if the labels are still taller than a cell, every `step`-th cell keeps its label.
    """
    box = ax.get_window_extent(renderer)
    px_per_pt = ax.figure.dpi / 72
    for axis, length in ((ax.xaxis, box.width), (ax.yaxis, box.height)):
        ticks, labels = axis.get_ticklocs(), [t.get_text() for t in axis.get_ticklabels()]
        if len(ticks) == 0 or not any(labels):
            continue
        cell = length / len(ticks)  # pixels per labelled cell
        size = float(np.clip(cell / (1.3 * px_per_pt), min_size, max_size))
        axis.set_ticks(ticks, labels, fontsize=size, rotation=0, ha="center")
        extents = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_text()]
        high = max(e.height for e in extents) * 1.15  # with a little air between neighbours
        wide = max(e.width for e in extents) * 1.15
        if axis is ax.xaxis and wide > cell:  # side by side they would touch: vertical, or thinned
            step_upright, step_vertical = int(np.ceil(wide / cell)), int(np.ceil(high / cell))
            rotation = 0 if step_upright <= step_vertical else 90
            step = min(step_upright, step_vertical)
        else:
            rotation, step = 0, int(np.ceil(high / cell)) if axis is ax.yaxis else 1
        axis.set_ticks(ticks[::step], labels[::step], fontsize=size, rotation=rotation, ha="center")


def encoding_heatmap(pe, *, ax=None, title="positional encoding", cmap=DIVERGING, colorbar=True):
    """Heatmap of a positional encoding table: rows are positions, columns dimensions.

    Args:
        pe: `(n_positions, d_model)` array or tensor.
    Returns:
        The Axes.
    """
    pe = to_numpy(pe)
    if pe.ndim != 2:
        raise ValueError(f"pe must be a table (n_positions, d_model), got shape {pe.shape}")
    ax = _axes(ax, (6, 4))
    lim = max(float(np.abs(pe).max()), 1e-12)
    im = ax.imshow(pe, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.set_xlabel("dimension")
    ax.set_ylabel("position")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label="value")
    return ax


def attention_lines(weights, tokens, key_tokens=None, *, ax=None, title=None, color="#1b6ca8", min_weight=0.01):
    """BertViz-style view: queries on the left, keys on the right, a line per pair whose
    thickness and opacity grow with the attention weight.

    Args:
        weights: `(T, S)` one head's weights.
        tokens: T query labels; `key_tokens`: S key labels (default `tokens`).
        min_weight: lines below this weight are not drawn.
    Returns:
        The Axes.
    """
    w, tokens, key_tokens = _check_matrix(weights, tokens, key_tokens)
    T, S = w.shape
    ax = _axes(ax, (4, 0.35 * max(T, S) + 0.8))
    n = max(T, S)
    yq = np.linspace(0, n - 1, T)[::-1]
    yk = np.linspace(0, n - 1, S)[::-1]
    peak = max(float(np.nanmax(w)), 1e-12)
    for i in range(T):
        for j in range(S):
            val = w[i, j]
            if np.isfinite(val) and val >= min_weight:
                ax.plot([0, 1], [yq[i], yk[j]], color=color, alpha=float(min(1.0, 0.15 + 0.85 * val / peak)),
                        linewidth=0.5 + 4.0 * val, solid_capstyle="round")
    for y, tok in zip(yq, tokens):
        ax.text(-0.04, y, tok, ha="right", va="center")
    for y, tok in zip(yk, key_tokens):
        ax.text(1.04, y, tok, ha="left", va="center")
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(-0.8, n - 0.2)
    ax.set_xticks([0, 1], ["query", "key"])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return ax
