"""Explorers for lesson 05, positional encoding.

- `sinusoidal_explorer`: the sinusoidal encoding for a chosen `d_model`, `base` and
  number of positions, as the table itself, as the similarity between positions (which
  depends only on their offset), or as a few columns drawn as waves.
- `rope_explorer`: a query and a key rotated by RoPE; one pair of dimensions drawn as
  arrows in its plane, and the score as a function of the offset `n - m`.

Each explorer builds one figure (`viz.explorer_figure`) and updates its artists in place
(`set_data`, `set_extent`, `set_text`): the static parts (frames, axis labels, fixed
ticks) are drawn once per layout and pasted as pixels (`_figure.Backdrop`), and labels that
change keep their pixels per string and place (`_figure.CachedText`), or per word
(`_labels.GlyphLine`, for titles whose numbers change with every update: digit by digit).

`render_sinusoidal` and `render_rope` draw the same pictures into a figure of their own
(one per call, for a static copy or a test); `describe_sinusoidal` and `describe_rope`
say in words what a picture shows (the explorers' text alternative). They are not
explorers, so they stay out of `__all__`.
"""

from __future__ import annotations

import math
import numbers

import ipywidgets as W
import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.ticker import MaxNLocator

from ..positional.rope import apply_rope
from ..positional.sinusoidal import sinusoidal_encoding
from ..viz import DIVERGING, explorer_figure
from ._base import Explorer
from ._figure import Backdrop
from ._labels import GlyphLine, Ticks
from ._pixels import PixelImage, _drawing
from .._threads import one_torch_thread

__all__ = ["sinusoidal_explorer", "rope_explorer"]

_BASES = (10, 100, 1000, 10000, 100000)
_STYLE = {"description_width": "initial"}
_FONT = 9  # points at 80 CSS dpi: every label of these pictures is at least 8 pt


def _check_choice(value, name: str, options) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")


def _check_range(value, name: str, lo: int, hi: int, step: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer from {lo} to {hi}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if not lo <= value <= hi or (value - lo) % step:
        raise ValueError(f"{name} must be an integer from {lo} to {hi} in steps of {step}, got {value}")
    return value


# --------------------------------------------------------------------------- fast lines

class _PastedLine(Line2D):
    """A `Line2D` that keeps the pixels of its axes box per (data, canvas) and pastes them next time.

    Only for a line drawn first onto a plain background inside its axes (it is clipped
    to them), with nothing under it that changes: e.g. a dense wave that the other
    controls do not change (1-2 ms to stroke at a device pixel ratio of 2).
    """

    _MAX_SAVED = 8  # an axes box is about 1 MB of pixels

    def draw(self, renderer):
        if not self.get_visible() or not isinstance(renderer, RendererAgg) or not _drawing(renderer):
            return super().draw(renderer)
        if not hasattr(self, "_saved"):
            self._saved = {}
        key = (renderer.width, renderer.height, renderer.dpi, np.asarray(self.get_xdata()).tobytes(),
               np.asarray(self.get_ydata()).tobytes(), self.get_transform().get_affine().get_matrix().tobytes())
        region = self._saved.get(key)
        if region is not None:
            renderer.restore_region(region)
            self.stale = False
            return
        super().draw(renderer)
        if len(self._saved) >= self._MAX_SAVED:
            self._saved.pop(next(iter(self._saved)))
        self._saved[key] = renderer.copy_from_bbox(self.axes.bbox)


# --------------------------------------------------------------------------- sinusoidal

_SIN_VIEWS = ("table", "similarity", "waves")
_OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")  # colour-blind-safe line colours
_SIN_MAX_POSITIONS = 200
_SIN_FIGSIZE = (5.6, 3.5)  # inches: 448 x 280 CSS px
_SIN_AXES = {"table": (0.13, 0.15, 0.84, 0.73), "similarity": (0.13, 0.15, 0.84, 0.73),
             "waves": (0.13, 0.15, 0.62, 0.73)}  # (left, bottom, width, height) of the one axes, per view
_SIN_LABELS = {"table": ("dimension", "position"), "similarity": ("position q", "position p"),
               "waves": ("position", "PE value")}


def _wave_columns(d_model: int) -> list[int]:
    """The sine columns the waves view draws: `0, d/4, d/2, 3d/4`, rounded down to even."""
    return sorted({2 * ((c * d_model // 4) // 2) for c in range(4)})


def _period(column: int, d_model: int, base: float) -> float:
    """Wavelength in positions of column pair `column`: `2 pi base^(column / d_model)`."""
    return 2 * math.pi * float(base) ** (column / d_model)


def _fmt_period(period: float) -> str:
    return f"{period:,.{1 if period < 100 else 0}f}"


class _SinusoidalPicture:
    """The figure of `sinusoidal_explorer`, built once; `render(**values)` updates it in place.

    One axes shows the current view: an image (table or similarity), or four lines and
    their labels (waves). The frame, the axis labels and the white backgrounds are pasted
    from a `Backdrop` per view; the image, the lines, the ticks and the title are redrawn.
    """

    def __init__(self):
        self.fig = fig = explorer_figure(_SIN_FIGSIZE)
        self.ax = ax = fig.add_axes(_SIN_AXES["table"])
        ax.set_xticks([])  # ticks of our own (`Ticks`): cheap when the range changes
        ax.set_yticks([])
        for spine in ax.spines.values():  # the image would cover half of them: a frame drawn over it instead
            spine.set_visible(False)
        self.image = PixelImage(ax, matplotlib.colormaps[DIVERGING], vmin=-1, vmax=1)
        # the first column, sin(position), is the same for every d_model and base: its pixels are pasted
        self.lines = [_PastedLine([], [], lw=1.2, color=_OKABE_ITO[0])]
        ax.add_line(self.lines[0])
        self.lines += [ax.plot([], [], lw=1.2, color=colour)[0] for colour in _OKABE_ITO[1:]]
        self.frame = Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, linewidth=0.8,
                               edgecolor="black", clip_on=False, zorder=3)
        ax.add_patch(self.frame)
        self.wave_labels = [fig.add_artist(GlyphLine(0.775, 0.86 - 0.19 * row, fig.transFigure, color=colour,
                                                      fontsize=8, ha="left", va="top"))
                            for row, colour in enumerate(_OKABE_ITO)]
        self.title = fig.add_artist(GlyphLine(0.5, 0.975, fig.transFigure, fontsize=10, ha="center", va="top"))
        self.x_ticks, self.y_ticks = Ticks(ax, "x", fontsize=_FONT), Ticks(ax, "y", fontsize=_FONT)
        dynamic = [self.image, *self.lines, self.frame, *self.wave_labels, self.title, *self.x_ticks.artists,
                   *self.y_ticks.artists]
        self.backdrop = Backdrop(fig, [ax], dynamic)
        self.view = None
        self.tables = {}  # (d_model, base) -> PE for the most positions offered (rows are independent of their count)
        self.grams = {}  # (d_model, base) -> PE @ PE.T / (d_model / 2) for the most positions offered

    def prepare(self, d_models, n_positions) -> None:
        """Capture every view's static pixels and render every tick label and title piece now, once.

        `d_models` and `n_positions` are the values the explorer offers. A first visit of a
        view or of a tick label would otherwise render text during a control change
        (5-40 ms); here it all costs about 0.1 s when the explorer is built.
        """
        view = self.view
        for each in _SIN_VIEWS:
            self._layout(each)
            self.backdrop.ensure(each)
        if view is not None:
            self._layout(view)
        dpi = self.fig.dpi
        spans = [(0, n - 1) for n in (*d_models, *n_positions)]
        for ticks in (self.x_ticks, self.y_ticks):
            ticks.prepare(spans, dpi)
        self.y_ticks.prepare([(-1, 1)], dpi, n_bins=4, integer=False)
        digits = "0123456789.,"
        self.title.prepare([f"PE[position, dimension], PE[p].PE[q] / (d_model/2), sine columns, "
                            f"d_model={digits} base={digits}"], dpi)
        for label in self.wave_labels:
            label.prepare([f"dim {digits}\nperiod {digits}"], dpi)

    def table(self, d_model: int, base: float, n_positions: int) -> np.ndarray:
        """`sinusoidal_encoding(n_positions, d_model, base)` as float64 numpy, computed once per (d_model, base)."""
        key = (d_model, base)
        if key not in self.tables:
            if len(self.tables) >= 32:
                self.tables.clear()
            with one_torch_thread():
                self.tables[key] = sinusoidal_encoding(_SIN_MAX_POSITIONS, d_model, base, dtype=torch.float64).numpy()
        return self.tables[key][:n_positions]  # (max P, d_model) -> (P, d_model)

    def similarity(self, d_model: int, base: float, n_positions: int) -> np.ndarray:
        """`PE @ PE.T / (d_model / 2)` for the first `n_positions`, computed once per (d_model, base).

        The similarity of positions p and q does not depend on how many positions are shown,
        so it is the top-left block of the one for the most positions offered. Computed by
        torch on one thread: numpy's `@` went to OpenBLAS, whose worker thread then spun for
        about 10 ms of CPU per change, taken from the browser on a 2-core machine.
        """
        key = (d_model, base)
        if key not in self.grams:
            if len(self.grams) >= 32:
                self.grams.clear()
            pe = torch.from_numpy(self.table(d_model, base, _SIN_MAX_POSITIONS))  # (max P, d_model)
            with one_torch_thread():
                self.grams[key] = (pe @ pe.T / (d_model / 2)).numpy()  # (P, d_model) x (d_model, P) -> (P, P)
        return self.grams[key][:n_positions, :n_positions]  # (max P, max P) -> (P, P)

    def _layout(self, view: str) -> None:
        """Place the axes and name its axes for `view` (static parts: captured per view)."""
        if view == self.view:
            return
        self.ax.set_position(_SIN_AXES[view])
        xlabel, ylabel = _SIN_LABELS[view]
        self.ax.set_xlabel(xlabel, fontsize=_FONT, labelpad=16)
        self.ax.set_ylabel(ylabel, fontsize=_FONT, labelpad=26)
        self.view = view

    def render(self, d_model: int = 64, base: float = 10000, n_positions: int = 100, view: str = "table"):
        _check_choice(view, "view", _SIN_VIEWS)
        self._layout(view)
        self.backdrop.ensure(view)
        ax = self.ax
        pe = self.table(d_model, base, n_positions)  # (P, d_model)
        header = f"d_model={d_model}, base={base:,}"
        is_image = view != "waves"
        self.image.set_visible(is_image)
        for artist in (*self.lines, *self.wave_labels):
            artist.set_visible(not is_image)
        if view == "table":
            self.image.set_data(pe)
            self.image.set_extent((-0.5, d_model - 0.5, n_positions - 0.5, -0.5))
            ax.set_xlim(-0.5, d_model - 0.5)
            ax.set_ylim(n_positions - 0.5, -0.5)
            self.x_ticks.set(0, d_model - 1)
            self.y_ticks.set(0, n_positions - 1)
            self.title.set_text(f"PE[position, dimension], {header}")
        elif view == "similarity":
            gram = self.similarity(d_model, base, n_positions)  # (P, P)
            self.image.set_data(gram)
            self.image.set_extent((-0.5, n_positions - 0.5, n_positions - 0.5, -0.5))
            ax.set_xlim(-0.5, n_positions - 0.5)
            ax.set_ylim(n_positions - 0.5, -0.5)
            self.x_ticks.set(0, n_positions - 1)
            self.y_ticks.set(0, n_positions - 1)
            self.title.set_text(f"PE[p].PE[q] / (d_model/2), {header}")
        else:
            positions = np.arange(n_positions)
            columns = _wave_columns(d_model)
            for row, (line, label) in enumerate(zip(self.lines, self.wave_labels)):
                line.set_visible(row < len(columns))
                label.set_visible(row < len(columns))
                if row < len(columns):
                    c = columns[row]
                    line.set_data(positions, pe[:, c])
                    label.set_text(f"dim {c}\nperiod {_fmt_period(_period(c, d_model, base))}")
            ax.set_xlim(0, n_positions - 1)
            ax.set_ylim(-1.1, 1.1)
            self.x_ticks.set(0, n_positions - 1)
            self.y_ticks.set(-1, 1, n_bins=4, integer=False)
            self.title.set_text(f"sine columns, {header}")
        return self.fig


def render_sinusoidal(d_model: int = 64, base: float = 10000, n_positions: int = 100, view: str = "table"):
    """The figure of `sinusoidal_explorer`, one of three views of `PE = sinusoidal_encoding(...)` (a new figure).

    - `"table"`: `PE (n_positions, d_model)`, position down, dimension across.
    - `"similarity"`: `PE[p] . PE[q] / (d_model/2)` for every pair of positions (the
      squared norm of a row is `d_model/2` for even `d_model`, so the diagonal is 1).
      Since `PE[p] . PE[q] = sum_i cos(omega_i (p - q))`, it is constant along diagonals.
    - `"waves"`: four sine columns `0, d/4, d/2, 3d/4` (rounded to even) against the
      position: the first turns once every 6.28 positions, later ones ever more slowly.
    """
    return _SinusoidalPicture().render(d_model=d_model, base=base, n_positions=n_positions, view=view)


def describe_sinusoidal(d_model: int = 64, base: float = 10000, n_positions: int = 100, view: str = "table") -> str:
    """What `render_sinusoidal` shows for these values, in one or two sentences (its text alternative)."""
    _check_choice(view, "view", _SIN_VIEWS)
    slowest = _period(2 * ((d_model - 1) // 2), d_model, base)
    if view == "table":
        return (f"The sinusoidal encoding table, {n_positions} positions (rows) by {d_model} dimensions "
                f"(columns), base {base:,}: the first columns alternate every few positions, the last pair "
                f"has a period of {_fmt_period(slowest)} positions"
                + (", longer than the positions shown, so it barely changes." if slowest > n_positions
                   else ", shorter than the positions shown, so it repeats."))
    if view == "similarity":
        omega = float(base) ** (-2.0 * np.arange(d_model // 2) / d_model)  # (d_model/2,) angular speeds
        far = n_positions // 2
        # PE[p] . PE[p + o] = sum_i (sin sin + cos cos) = sum_i cos(omega_i o), over d_model/2 pairs
        near, distant = (float(np.cos(omega * o).mean()) for o in (1, far))
        return (f"Similarity of every pair of {n_positions} positions, d_model {d_model}, base {base:,}: "
                f"constant along diagonals, so it depends only on the offset; offset 1 gives {near:.2f}, "
                f"offset {far} gives {distant:.2f}.")
    columns = _wave_columns(d_model)
    periods = ", ".join(_fmt_period(_period(c, d_model, base)) for c in columns)
    return (f"{len(columns)} sine columns (dimensions {', '.join(map(str, columns))}) over {n_positions} positions, "
            f"d_model {d_model}, base {base:,}: periods of {periods} positions, each slower than the last.")


def sinusoidal_explorer(d_model: int = 64, base: float = 10000, n_positions: int = 100,
                        view: str = "table") -> Explorer:
    """Explore the sinusoidal encoding: `d_model`, `base`, the number of positions, and a view.

    Views: the table itself, the similarity between positions (it depends only on their
    offset: constant diagonals), and a few columns as waves of different wavelengths.
    Small `d_model` or small `base` make the slowest wave short, so distant positions
    start to look alike.

    Args:
        d_model: 4..128 in steps of 4.
        base: one of 10, 100, 1000, 10000, 100000.
        n_positions: 10..200 in steps of 10.
        view: "table", "similarity" or "waves".
    """
    d_model = _check_range(d_model, "d_model", 4, 128, 4)
    _check_choice(base, "base", _BASES)
    n_positions = _check_range(n_positions, "n_positions", 10, 200, 10)
    _check_choice(view, "view", _SIN_VIEWS)
    controls = {
        "d_model": W.IntSlider(value=d_model, min=4, max=128, step=4, description="d_model", style=_STYLE),
        "base": W.Dropdown(options=[(f"{b:,}", b) for b in _BASES], value=base, description="base", style=_STYLE),
        "n_positions": W.IntSlider(value=n_positions, min=10, max=200, step=10, description="positions",
                                   style=_STYLE),
        "view": W.ToggleButtons(options=_SIN_VIEWS, value=view, description="view",
                                style={**_STYLE, "button_width": "72px"}),  # three buttons fit the 280 px column
    }
    picture = _SinusoidalPicture()
    d_models, positions = (range(c.min, c.max + 1, c.step) for c in (controls["d_model"], controls["n_positions"]))
    picture.prepare(d_models, positions)  # every view and label the sliders can ask for now, not during a change
    return Explorer(controls, picture.render, describe=describe_sinusoidal,
                    caption="Sinusoidal positional encoding: change the width, the base and the length")


# --------------------------------------------------------------------------- RoPE

_ROPE_D_HEAD = 16  # 8 pairs of dimensions
_ROPE_MAX_POS = 31
_ROPE_FIGSIZE = (6.4, 3.0)  # inches: 512 x 240 CSS px
_Q_COLOUR, _K_COLOUR = "#1b6ca8", "#d95f02"


def _rope_query_key():
    """The fixed query and key the RoPE explorer rotates (seeded, unit-free)."""
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, _ROPE_D_HEAD, generator=g, dtype=torch.float64)  # 2 x (d_head,)
    return q, k


def rope_scores(q, k, m: int, n: int, base: float = 10000.0):
    """`<rope(q, m), rope(k, n)>`, and the same score for every offset `-31..31` with the query at 0.

    Returns `(score, offsets, curve)`: the score at positions `(m, n)`, the offsets `n - m`
    and the score `<rope(q, 0), rope(k, offset)>` for each (keys at negative positions are
    fine: RoPE's angle is defined for any real position).
    """
    q_m = apply_rope(q[None, :], torch.tensor([m]), base=base)[0]  # (1, D) -> (D,)
    k_n = apply_rope(k[None, :], torch.tensor([n]), base=base)[0]  # (1, D) -> (D,)
    offsets = torch.arange(-_ROPE_MAX_POS, _ROPE_MAX_POS + 1)  # (2*31+1,)
    keys = apply_rope(k.expand(len(offsets), -1), offsets, base=base)  # (O, D) rotated to positions = offsets
    curve = keys @ q  # (O, D) x (D,) -> (O,), query at position 0
    return float(q_m @ k_n), offsets.numpy(), curve.numpy()


def _degrees_per_position(pair: int, base: float) -> float:
    """RoPE's angle step of pair `pair`: `theta = base^(-2 pair / d_head)`, in degrees."""
    return math.degrees(float(base) ** (-2.0 * pair / _ROPE_D_HEAD))


class _RopeTables:
    """The fixed query and key rotated to every position, once per base (the explorer's only computation).

    `tables(base)` gives `(q_at (32, D), k_at (63, D), curve (63,))`: the query at positions
    0..31, the key at positions -31..31 and the score `<rope(q, 0), rope(k, offset)>` per
    offset (as `rope_scores`). The score at `(m, n)` is `q_at[m] . k_at[n + 31]`.
    """

    def __init__(self):
        self.q, self.k = _rope_query_key()
        self._by_base = {}

    def tables(self, base: float):
        if base not in self._by_base:
            positions = torch.arange(-_ROPE_MAX_POS, _ROPE_MAX_POS + 1)  # (63,) -31..31
            with one_torch_thread():
                q_at = apply_rope(self.q.expand(_ROPE_MAX_POS + 1, -1), positions[_ROPE_MAX_POS:], base=base)  # (32, D)
                k_at = apply_rope(self.k.expand(len(positions), -1), positions, base=base)  # (63, D)
                curve = k_at @ q_at[0]  # (63, D) x (D,) -> (63,): query at position 0
            self._by_base[base] = (q_at.numpy(), k_at.numpy(), curve.numpy())
        return self._by_base[base]

    def score(self, m: int, n: int, base: float) -> float:
        q_at, k_at, _ = self.tables(base)
        return float(q_at[m] @ k_at[n + _ROPE_MAX_POS])  # (D,) . (D,)

    def describe(self, m: int = 3, n: int = 7, pair: int = 0, base: float = 10000) -> str:
        """What the RoPE picture shows for these values, in two sentences (its text alternative)."""
        return (f"Query at position {m}, key at {n} (offset {n - m}): score {self.score(m, n, base):.3f}, the same "
                f"for every pair of positions {n - m} apart. Dimensions {2 * pair},{2 * pair + 1} turn "
                f"{_degrees_per_position(pair, base):.3g}° per position (base {base:,}).")


class _RopePicture:
    """The figure of `rope_explorer`, built once; `render(**values)` updates it in place.

    The score axes (frame, ticks and labels for the y-range of a base) are pasted from a
    `Backdrop` per base; the arrows, dots, curve, marker and titles are redrawn.
    """

    def __init__(self, tables: _RopeTables | None = None):
        self.tables = tables if tables is not None else _RopeTables()
        self.fig = fig = explorer_figure(_ROPE_FIGSIZE)
        self.ax_plane = ax_plane = fig.add_axes((0.02, 0.04, 0.32, 0.78))
        self.ax_curve = ax_curve = fig.add_axes((0.46, 0.17, 0.51, 0.67))
        ax_plane.set_axis_off()  # no frame, no ticks: only the vectors
        ax_plane.set_aspect("equal")
        self.trail, = ax_plane.plot([], [], ".", color="#999999", markersize=3)
        self.cross = [ax_plane.plot([], [], color="#dddddd", lw=0.6)[0] for _ in range(2)]
        self.arrows = [FancyArrowPatch((0, 0), (1, 0), arrowstyle="->", mutation_scale=10, color=colour, alpha=alpha,
                                       linewidth=lw, shrinkA=0, shrinkB=0)  # q, k as given; q at m, k at n
                       for colour, alpha, lw in ((_Q_COLOUR, 0.3, 1.5), (_K_COLOUR, 0.3, 1.5),
                                                 (_Q_COLOUR, 1.0, 2.5), (_K_COLOUR, 1.0, 2.5))]
        for arrow in self.arrows:
            ax_plane.add_patch(arrow)
        self.plane_title = fig.add_artist(GlyphLine(0.18, 0.975, fig.transFigure, fontsize=_FONT, ha="center", va="top"))
        ax_curve.set_xlabel("offset n - m", fontsize=_FONT)
        ax_curve.set_ylabel("score", fontsize=_FONT)
        ax_curve.set_xlim(-_ROPE_MAX_POS - 1, _ROPE_MAX_POS + 1)
        ax_curve.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax_curve.yaxis.set_major_locator(MaxNLocator(4))
        ax_curve.tick_params(labelsize=_FONT)
        self.curve, = ax_curve.plot([], [], color="#555555", lw=1.2)
        self.offset_line, = ax_curve.plot([], [], color=_Q_COLOUR, lw=0.8, ls="--")
        self.marker, = ax_curve.plot([], [], "o", color=_K_COLOUR, markersize=7)
        self.curve_title = fig.add_artist(GlyphLine(0.715, 0.975, fig.transFigure, fontsize=10, ha="center", va="top"))
        dynamic = [self.trail, *self.cross, *self.arrows, self.plane_title, self.curve, self.offset_line,
                   self.marker, self.curve_title]
        self.backdrop = Backdrop(fig, [ax_curve], dynamic)

    def prepare(self) -> None:
        """Capture the score axes of every base and render the titles' pieces now, once.

        A first visit of a base would otherwise draw its axes, ticks and labels during a
        control change (about 20 ms); here the five bases cost about 0.1 s when the explorer
        is built.
        """
        ylim = self.ax_curve.get_ylim()
        for base in _BASES:
            self._score_axes(base)
        self.ax_curve.set_ylim(*ylim)
        digits = "0123456789.,-\N{MINUS SIGN}"
        self.plane_title.prepare([f"dims {digits}: {digits}°/position"], self.fig.dpi)
        self.curve_title.prepare([f"m={digits} n={digits}: score {digits}"], self.fig.dpi)

    def _score_axes(self, base: float):
        """The score axes for `base`: its y-range (the curve depends on the base only) and static pixels."""
        q_at, k_at, curve = self.tables.tables(base)
        lo, hi = float(curve.min()), float(curve.max())
        ylim = (lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo))
        if self.ax_curve.get_ylim() != ylim:
            self.ax_curve.set_ylim(*ylim)
        self.backdrop.ensure(base)
        return q_at, k_at, curve

    def render(self, m: int = 3, n: int = 7, pair: int = 0, base: float = 10000):
        q, k = self.tables.q, self.tables.k
        q_at, k_at, curve = self._score_axes(base)
        a, b = 2 * pair, 2 * pair + 1
        q_m, k_n = q_at[m], k_at[n + _ROPE_MAX_POS]  # (D,), (D,)
        score = float(q_m @ k_n)

        r = 1.12 * max(float(q[a:b + 1].norm()), float(k[a:b + 1].norm()))
        if self.ax_plane.get_xlim() != (-r, r):  # only a new pair changes the plane's scale
            self.ax_plane.set_xlim(-r, r)
            self.ax_plane.set_ylim(-r, r)
        self.trail.set_data(q_at[:, a], q_at[:, b])
        self.cross[0].set_data([-r, r], [0, 0])
        self.cross[1].set_data([0, 0], [-r, r])
        for arrow, vec in zip(self.arrows, (q.numpy(), k.numpy(), q_m, k_n)):
            arrow.set_positions((0.0, 0.0), (float(vec[a]), float(vec[b])))
        self.plane_title.set_text(f"dims {a},{b}: {_degrees_per_position(pair, base):.3g}°/position")

        self.curve.set_data(np.arange(-_ROPE_MAX_POS, _ROPE_MAX_POS + 1), curve)
        lo, hi = self.ax_curve.get_ylim()
        self.offset_line.set_data([n - m, n - m], [lo, hi])
        self.marker.set_data([n - m], [score])
        self.curve_title.set_text(f"m={m}, n={n}: score {score:.3f}")
        return self.fig


def render_rope(m: int = 3, n: int = 7, pair: int = 0, base: float = 10000):
    """The figure of `rope_explorer` (a new figure).

    Left: pair `pair` of a fixed query and key (dimensions `2*pair, 2*pair+1`), before
    (faint) and after rotating the query to position `m` and the key to position `n`; the
    dots trace the query's tip at positions 0..31. Right: the score as a function of the
    offset `n - m`, with the score at the chosen `(m, n)` marked on it.
    """
    return _RopePicture().render(m=m, n=n, pair=pair, base=base)


def describe_rope(m: int = 3, n: int = 7, pair: int = 0, base: float = 10000) -> str:
    """What `render_rope` shows for these values, in two sentences (its text alternative)."""
    return _RopeTables().describe(m=m, n=n, pair=pair, base=base)


def rope_explorer(m: int = 3, n: int = 7, pair: int = 0, base: float = 10000) -> Explorer:
    """Explore rotary position embedding with a fixed query and key (`d_head = 16`).

    Move the query position `m` and the key position `n` together: the arrows turn, but
    their angle, and with it the score (the marker on the right), stays the same.

    Args:
        m, n: positions 0..31 of the query and the key.
        pair: which pair of dimensions to draw, 0..7 (pair 0 turns fastest).
        base: one of 10, 100, 1000, 10000, 100000.
    """
    m = _check_range(m, "m", 0, _ROPE_MAX_POS)
    n = _check_range(n, "n", 0, _ROPE_MAX_POS)
    pair = _check_range(pair, "pair", 0, _ROPE_D_HEAD // 2 - 1)
    _check_choice(base, "base", _BASES)
    controls = {
        "m": W.IntSlider(value=m, min=0, max=_ROPE_MAX_POS, description="query position m", style=_STYLE),
        "n": W.IntSlider(value=n, min=0, max=_ROPE_MAX_POS, description="key position n", style=_STYLE),
        "pair": W.IntSlider(value=pair, min=0, max=_ROPE_D_HEAD // 2 - 1, description="pair of dimensions",
                            style=_STYLE),
        "base": W.Dropdown(options=[(f"{b:,}", b) for b in _BASES], value=base, description="base", style=_STYLE),
    }
    picture = _RopePicture()
    picture.prepare()  # every base's axes now, not during a change
    return Explorer(controls, picture.render, describe=picture.tables.describe,
                    caption="RoPE: rotate a query and a key by their positions")
