"""Lesson 09's head viewer: type any sentence, see what every head of a real pretrained
model (all-MiniLM-L6-v2, loaded by `attn_core.pretrained.load_minilm`) does with it.

Two modes:

- **one head**: a BertViz-style lines view (queries on the left, keys on the right, a
  line per pair, thicker and darker for more weight) next to the head's heatmap;
- **all 72 heads**: one mosaic of the 6 x 12 heatmaps, the chosen head outlined.

Picking a query word keeps only that word's weights (the other rows fade out).

Speed: the model runs only when the sentence changes (on one torch thread); its weights
are kept in the viewer (`viewer.cached_sentence`, `viewer.cached_weights`). There is one
figure (`viz.explorer_figure`, 640 x 448 CSS px), built once and updated in place: the
static parts of each mode are pasted from a `Backdrop`, heatmaps are `PixelImage`s, and
the token labels are `Labels` (each word's pixels drawn once, then copied), so a new
sentence costs the model run and new words' labels, not a new figure. What the picture
shows is said in words under it (`describe`, the explorer's text alternative).
"""

from __future__ import annotations

import math
import numbers
import textwrap

import ipywidgets as W
import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.path import Path
from matplotlib.transforms import offset_copy

from .. import viz
from ._base import Explorer
from ._figure import Backdrop, cached_text
from ._labels import Labels
from ._pixels import PixelImage
from .._threads import one_torch_thread

__all__ = ["head_viewer", "HeadViewer", "HeadViewerExplorer", "MODES", "MAX_TOKENS", "DEFAULT_SENTENCE"]

MODES = ("one head", "all 72 heads")
MAX_TOKENS = 64
"""The viewer draws sentences of up to 64 tokens ([CLS] and [SEP] included); the model itself takes 512."""
DEFAULT_SENTENCE = "The cat sat on the mat because it was tired."
_LINE_COLOR = to_rgba("#1b6ca8")
_HIGHLIGHT = "#b35806"
_MIN_WEIGHT = 0.01  # lines below this weight are not drawn
_FIGSIZE = (8.0, 5.6)  # inches: 640 x 448 CSS px, within the explorers' 640 x 480 budget
_TOP, _BOTTOM = 0.35, 1.05  # inches above and below the one-head axes (headers; rotated labels and axis name)
_LABEL_W = 0.7  # inches for a column of token labels (longer tokens are cut with "...")
_LINES_W, _HEAT_W, _PAD_IN = 1.05, 3.4, 0.08  # inches: the lines view, the heatmap, gaps
_MIN_PITCH = 9.6  # points between two labelled rows or columns (8-9 pt labels never touch)


class HeadViewer:
    """The state behind `head_viewer`: the model, the last sentence's weights, one figure.

    `render(sentence, mode, layer, head, query)` returns the Figure for those values, the
    same Figure every call, its artists updated in place; `describe(...)` says what it
    shows. The model runs only when `sentence` differs from `cached_sentence`.

    The figure (8 x 5.6 in: 640 x 448 CSS px at a device pixel ratio of 2) holds both
    modes' axes and shows one set. What never changes (frames, axis names, colour bars, the
    mosaic's head and layer numbers) is pasted from a `Backdrop` per mode; the lines, the
    heatmaps (`PixelImage`), the outlines and the token labels (`Labels`: cached pixels per
    word) are drawn on every update. A new sentence changes data and labels only.
    """

    def __init__(self, model, tokenizer):
        from ..pretrained import BertEncoder  # the widget module must import without the model package

        if not isinstance(model, BertEncoder):
            raise TypeError(f"model must be the BertEncoder from load_minilm(), got {type(model).__name__}")
        self.model, self.tokenizer = model, tokenizer
        self.n_layers, self.n_heads = model.config.n_layers, model.config.n_heads
        self.cached_sentence: str | None = None
        self.cached_tokens: list[str] | None = None
        self.cached_weights: np.ndarray | None = None  # (L, H, T, T)
        self.cached_error: str | None = None
        self.n_model_runs = 0
        self.summary = ""  # what the picture shows, in words (the explorer's text alternative)
        self._build()

    # ------------------------------------------------------------------ data

    def tokens_and_weights(self, sentence: str):
        """`(tokens, weights (L, H, T, T), error)` for `sentence`, from the cache when it is the last one.

        `error` is a message (and the other two None) for an empty or too long sentence.
        """
        if sentence == self.cached_sentence:
            return self.cached_tokens, self.cached_weights, self.cached_error
        from ..pretrained import encode

        tokens = weights = error = None
        if not isinstance(sentence, str) or not sentence.strip():
            error = "Type a sentence above (the box is empty)."
        else:
            try:
                enc = encode(self.tokenizer, sentence)
            except ValueError as err:
                error = f"Cannot encode this text: {err}"
            else:
                if enc.lengths[0] > MAX_TOKENS:
                    error = (f"The sentence has {enc.lengths[0]} tokens; the viewer draws at most {MAX_TOKENS} "
                             f"(the model itself takes 512). Try a shorter one.")
                else:
                    with torch.no_grad(), one_torch_thread():
                        _, ws = self.model(enc.token_ids, enc.segment_ids, enc.attention_mask, return_weights=True)
                    self.n_model_runs += 1
                    weights = torch.stack([w[0] for w in ws]).double().numpy()  # L x (1, H, T, T) -> (L, H, T, T)
                    tokens = enc.tokens[0]
        self.cached_sentence, self.cached_tokens, self.cached_weights, self.cached_error = sentence, tokens, weights, error
        return tokens, weights, error

    # ------------------------------------------------------------------ figure

    def _build(self) -> None:
        """Make the one figure: both modes' axes and artists, and the message text."""
        self.fig = fig = viz.explorer_figure(_FIGSIZE)
        W_in, H_in = _FIGSIZE
        cmap = matplotlib.colormaps[viz.CMAP].with_extremes(bad="white")  # rows faded out, gaps: white
        bottom, top = _BOTTOM / H_in, 1 - _TOP / H_in

        # one head: lines (queries left, keys right) and the heatmap, rows aligned
        left = _LABEL_W + _PAD_IN
        self.ax_lines = ax_lines = fig.add_axes((left / W_in, bottom, _LINES_W / W_in, top - bottom))
        ax_lines.set_axis_off()
        ax_lines.set_xlim(-0.04, 1.04)  # room for the round line ends and the query marker
        heat_left = left + _LINES_W + 2 * _LABEL_W + 3 * _PAD_IN
        self.ax_heat = ax_heat = fig.add_axes((heat_left / W_in, bottom, _HEAT_W / W_in, top - bottom))
        ax_heat.set_xticks([])  # token labels of our own (`Labels`): matplotlib ticks cost ~1 ms each
        ax_heat.set_yticks([])
        for spine in ax_heat.spines.values():  # the heatmap would cover half of them: a frame drawn over it
            spine.set_visible(False)
        pad_pt = _LABEL_W * 72 + 6
        ax_heat.set_xlabel("key (attended to)", fontsize=9, labelpad=pad_pt)
        ax_heat.set_ylabel("query (attending)", fontsize=9, labelpad=pad_pt)
        self.cax_one = fig.add_axes(((heat_left + _HEAT_W + 0.15) / W_in, bottom + 0.1 * (top - bottom), 0.12 / W_in,
                                     0.8 * (top - bottom)))
        bars = [fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), cax=self.cax_one, label="weight")]
        self.cax_one.tick_params(labelsize=8)
        self.headers = [ax_lines.text(x, 1.01, name, transform=ax_lines.transAxes, ha="center", va="bottom",
                                      color="0.35", fontsize=9) for x, name in ((0, "query"), (1, "key"))]
        self.lines = PathCollection([], facecolors="none", capstyle="round")  # a line per (query, key) pair
        ax_lines.add_collection(self.lines)
        self.marker = Line2D([0], [0], marker="o", markersize=7, color=_HIGHLIGHT, linestyle="none")
        ax_lines.add_line(self.marker)
        self.heat = PixelImage(ax_heat, cmap, vmin=0.0, vmax=1.0)
        self.heat_frame = Rectangle((0, 0), 1, 1, transform=ax_heat.transAxes, fill=False, linewidth=0.8,
                                    edgecolor="black", clip_on=False, zorder=3)
        ax_heat.add_patch(self.heat_frame)
        self.row_box = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=_HIGHLIGHT, linewidth=2, zorder=4)
        ax_heat.add_patch(self.row_box)
        gap = 4  # points between a label and what it names
        self.query_labels = Labels(offset_copy(ax_lines.transData, fig=fig, x=-gap, units="points"), ha="right",
                                   max_width=_LABEL_W * 72 - gap)
        self.key_labels = Labels(offset_copy(ax_lines.transData, fig=fig, x=gap, units="points"), ha="left",
                                 max_width=_LABEL_W * 72 - gap)
        self.row_labels = Labels(offset_copy(ax_heat.get_yaxis_transform(), fig=fig, x=-gap, units="points"),
                                 ha="right", max_width=_LABEL_W * 72 - gap)
        self.column_labels = Labels(offset_copy(ax_heat.get_xaxis_transform(), fig=fig, y=-gap, units="points"),
                                    angle=90, ha="center", va="top", max_width=_LABEL_W * 72 - gap)
        for labels, ax in ((self.query_labels, ax_lines), (self.key_labels, ax_lines), (self.row_labels, ax_heat),
                           (self.column_labels, ax_heat)):
            ax.add_artist(labels)
            labels.set_clip_on(False)
        self.one_head = [ax_lines, ax_heat, self.cax_one]

        # all heads: one mosaic, head h and layer l centred on (h, l)
        self.ax_grid = ax_grid = fig.add_axes((0.07, 0.55 / H_in, 0.82, top - 0.55 / H_in))
        L, H = self.n_layers, self.n_heads
        ax_grid.set_xlim(-0.5, H - 0.5)
        ax_grid.set_ylim(L - 0.5, -0.5)
        ax_grid.set_xticks(range(H), [str(h) for h in range(H)])
        ax_grid.set_yticks(range(L), [str(layer) for layer in range(L)])
        ax_grid.tick_params(length=0, labelsize=9)
        ax_grid.set_xlabel("head (each block: queries down, keys across)", fontsize=9)
        ax_grid.set_ylabel("layer", fontsize=9)
        for spine in ax_grid.spines.values():  # the mosaic fills the axes: no frame needed
            spine.set_visible(False)
        self.cax_grid = fig.add_axes((0.91, 0.55 / H_in + 0.1 * (top - 0.55 / H_in), 0.015,
                                      0.8 * (top - 0.55 / H_in)))
        bars.append(fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), cax=self.cax_grid, label="weight"))
        self.cax_grid.tick_params(labelsize=8)
        self.mosaic = PixelImage(ax_grid, cmap, vmin=0.0, vmax=1.0)
        self.head_box = Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=_HIGHLIGHT, linewidth=2.5, zorder=4)
        ax_grid.add_patch(self.head_box)
        self.all_heads = [ax_grid, self.cax_grid]

        # a message instead of a picture (empty or too long sentence)
        self.message = cached_text(fig, 0.5, 0.5, ha="center", va="center", fontsize=11)

        dynamic = [self.lines, self.marker, self.heat, self.heat_frame, self.row_box, self.query_labels,
                   self.key_labels, self.row_labels, self.column_labels, self.mosaic, self.head_box, self.message]
        static = [ax_lines, ax_heat, self.cax_one, *self.headers, ax_grid, self.cax_grid,
                  *(part for bar in bars for part in (bar.solids, bar.dividers))]  # colour bars: pasted too
        self.backdrop = Backdrop(fig, static, dynamic)
        for mode in ("message", MODES[1], MODES[0]):  # each view's static pixels captured now, not on its first showing
            self._show(mode)
        self._tokens = None  # the tokens the labels and segments were laid out for

    def _show(self, mode: str) -> None:
        """Show the axes of `mode` ("one head", "all 72 heads" or "message") and paste its static parts."""
        for ax in self.one_head:
            ax.set_visible(mode == MODES[0])
        for ax in self.all_heads:
            ax.set_visible(mode == MODES[1])
        self.backdrop.ensure(mode)
        self.message.set_visible(mode == "message")  # after the capture, which hides and restores dynamic artists

    def render(self, sentence: str, mode: str, layer: int, head: int, query: int):
        """Update the figure for these values and return it (the same Figure every call)."""
        tokens, weights, error = self.tokens_and_weights(sentence)
        if error is not None:
            self._show("message")
            self.message.set_text(textwrap.fill(error, 70))
            self.summary = error
            return self.fig
        T = len(tokens)
        query = query if 0 <= query < T else -1
        self._show(mode)
        if mode == MODES[0]:
            self._update_one_head(tokens, weights, layer, head, query)
        else:
            self._update_grid(tokens, weights, layer, head, query)
        return self.fig

    def describe(self, sentence: str, mode: str, layer: int, head: int, query: int) -> str:
        """What `render` shows for these values, in words (the explorer's text alternative)."""
        tokens, weights, error = self.tokens_and_weights(sentence)
        if error is not None:
            return error
        query = query if 0 <= query < len(tokens) else -1
        if mode == MODES[0]:
            return f"One head on {len(tokens)} tokens (lines and heatmap), " + _summary(tokens, weights, layer, head, query)
        who = "every query" if query < 0 else f"query {query} {tokens[query]!r} only"
        L, H = self.n_layers, self.n_heads
        return f"All {L * H} heads on {len(tokens)} tokens, {who}. Outlined: " + _summary(tokens, weights, layer, head, query)

    def _layout_tokens(self, tokens) -> None:
        """Segments, limits and token labels for a new list of tokens (thinned so labels stay >= 8 pt apart)."""
        if self._tokens == tokens:
            return
        self._tokens = list(tokens)
        T = len(tokens)
        rows = np.arange(T, dtype=float)
        for ax in (self.ax_lines, self.ax_heat):
            ax.set_ylim(T - 0.5, -0.5)  # row i at y = i in both: lines and heatmap rows line up
        self.ax_heat.set_xlim(-0.5, T - 0.5)
        self.heat.set_extent((-0.5, T - 0.5, T - 0.5, -0.5))
        self._segments = np.zeros((T * T, 2, 2))  # line (i, j) from query i (x = 0) to key j (x = 1)
        self._segments[:, 1, 0] = 1.0
        self._segments[:, 0, 1] = np.repeat(rows, T)  # (T * T,) query i of each line
        self._segments[:, 1, 1] = np.tile(rows, T)  # (T * T,) key j of each line
        self._line_paths = {}  # index i * T + j -> Path of line (i, j), made when first drawn
        _, _, _, H_in = self.ax_heat.get_position().bounds
        row_pt = H_in * _FIGSIZE[1] * 72 / T  # vertical room per token, in points
        col_pt = _HEAT_W * 72 / T
        fontsize = 9 if row_pt >= 11 else 8
        step_rows = max(1, math.ceil(_MIN_PITCH / row_pt))  # label every k-th token when rows are tighter
        step_cols = max(1, math.ceil(_MIN_PITCH / col_pt))
        shown_rows = rows[::step_rows].astype(int)
        shown_cols = rows[::step_cols].astype(int)
        for labels in (self.query_labels, self.key_labels, self.row_labels, self.column_labels):
            labels.set_fontsize(fontsize)
        names = [tokens[i] for i in shown_rows]
        self.query_labels.set_labels(names, np.zeros(len(names)), shown_rows)
        self.key_labels.set_labels(names, np.ones(len(names)), shown_rows)
        self.row_labels.set_labels(names, np.zeros(len(names)), shown_rows)
        self.column_labels.set_labels([tokens[i] for i in shown_cols], shown_cols, np.zeros(len(shown_cols)))
        # the mosaic: head h's block spans [h - 0.5, h - 0.5 + T / (T + 1)), one blank cell between blocks
        L, H = self.n_layers, self.n_heads
        gap = 1 / (T + 1)
        self.mosaic.set_extent((-0.5, H - 0.5 - gap, L - 0.5 - gap, -0.5))
        self.head_box.set_width(1 - gap)
        self.head_box.set_height(1 - gap)

    def _update_one_head(self, tokens, weights, layer, head, query):
        self._layout_tokens(tokens)
        w = weights[layer, head]  # (T, T)
        T = len(tokens)
        chosen = np.ones((T, 1), dtype=bool) if query < 0 else (np.arange(T) == query)[:, None]  # (T, 1) rows shown
        shown = np.where(chosen, w, 0.0)  # (T, T)
        flat = shown.ravel()  # (T * T,) in the order of the segments
        drawn = np.nonzero(flat >= _MIN_WEIGHT)[0]  # only lines of weight >= 0.01 are drawn
        peak = max(float(shown.max()), 1e-12)
        colors = np.tile(_LINE_COLOR, (len(drawn), 1))  # (n drawn, 4) RGBA
        colors[:, 3] = np.minimum(1.0, 0.15 + 0.85 * flat[drawn] / peak)
        for index in drawn:  # a Path per pair, made the first time the pair is drawn (building one costs ~30 us)
            if index not in self._line_paths:
                self._line_paths[index] = Path(self._segments[index])
        self.lines.set_paths([self._line_paths[index] for index in drawn])
        self.lines.set_linewidths(0.5 + 4.0 * flat[drawn])
        self.lines.set_edgecolor(colors)
        self.heat.set_data(np.where(chosen, w, np.nan))  # (T, T), rows not chosen blank
        self.marker.set_visible(query >= 0)
        self.row_box.set_visible(query >= 0)
        if query >= 0:
            self.marker.set_data([0.0], [query])
            self.row_box.set_bounds(-0.5, query - 0.5, T, 1)
        self.summary = self.describe(self.cached_sentence, MODES[0], layer, head, query)

    def _update_grid(self, tokens, weights, layer, head, query):
        self._layout_tokens(tokens)
        T = len(tokens)
        L, H = self.n_layers, self.n_heads
        step = T + 1  # one blank row and column between heads
        keep = np.ones(T, dtype=bool) if query < 0 else np.arange(T) == query  # (T,) rows shown
        blocks = np.where(keep[None, None, :, None], weights, np.nan)  # (L, H, T, T)
        padded = np.full((L, H, step, step), np.nan)
        padded[:, :, :T, :T] = blocks
        mosaic = padded.transpose(0, 2, 1, 3).reshape(L * step, H * step)[:-1, :-1]  # (L, T+1, H, T+1) -> image
        self.mosaic.set_data(mosaic)
        self.head_box.set_xy((head - 0.5, layer - 0.5))
        self.summary = self.describe(self.cached_sentence, MODES[1], layer, head, query)


def _summary(tokens, weights, layer, head, query) -> str:
    """One line about one head on this sentence."""
    w = weights[layer, head]  # (T, T)
    T = len(tokens)
    if query >= 0:
        best = int(w[query].argmax())
        return f"layer {layer}, head {head}: {tokens[query]!r} looks most at {tokens[best]!r} ({w[query, best]:.2f})"
    cls = w[:, 0].mean()
    sep = w[:, T - 1].mean()
    prev = np.mean([w[t, t - 1] for t in range(1, T)]) if T > 1 else 0.0
    return f"layer {layer}, head {head}: mean weight on [CLS] {cls:.2f}, on [SEP] {sep:.2f}, on the previous token {prev:.2f}"


def _query_options(tokens) -> list[tuple[str, int]]:
    return [("every word", -1)] + [(f"{i}: {t}", i) for i, t in enumerate(tokens or [])]


def _check_index(value, name: str, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer from 0 to {n - 1}, got {value!r} ({type(value).__name__})")
    if not 0 <= value < n:
        raise ValueError(f"{name} must lie in 0..{n - 1}, got {value}")
    return int(value)


def head_viewer(model=None, tokenizer=None, *, sentence: str = DEFAULT_SENTENCE, mode: str = "one head",
                layer: int = 5, head: int = 11, query=-1) -> Explorer:
    """Lesson 09: the attention of a real pretrained model on any sentence.

    Args:
        model, tokenizer: from `attn_core.pretrained.load_minilm()` (loaded here if omitted).
        sentence: the starting sentence (the learner types others in the text box).
        mode: "one head" (lines and heatmap) or "all 72 heads" (a mosaic of every heatmap).
        layer, head: the head shown (or outlined in the mosaic).
        query: -1 for every word, or the position (or the word) whose weights alone are shown.

    Returns:
        An `Explorer` with controls `sentence` (Text, applied on Enter), `mode`, `layer`,
        `head`, `query`; `explorer.viewer` is the `HeadViewer` holding the cached weights.
    """
    if model is None or tokenizer is None:
        if model is not None or tokenizer is not None:
            raise TypeError("pass both model and tokenizer (from load_minilm()), or neither")
        from ..pretrained import load_minilm

        model, tokenizer = load_minilm()
    viewer = HeadViewer(model, tokenizer)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    layer = _check_index(layer, "layer", viewer.n_layers)
    head = _check_index(head, "head", viewer.n_heads)
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
    tokens, _, _ = viewer.tokens_and_weights(sentence)
    if isinstance(query, str):
        if not tokens or query not in tokens:
            raise ValueError(f"query={query!r} is not a token of the sentence; its tokens are {tokens}")
        query = tokens.index(query)
    elif query != -1:
        query = _check_index(query, "query", len(tokens or []))
    style = {"description_width": "initial"}
    controls = {
        "sentence": W.Text(value=sentence, description="sentence (press Enter)", continuous_update=False,
                           style=style, layout=W.Layout(width="95%")),
        "mode": W.ToggleButtons(options=list(MODES), value=mode, description="show",
                                style={**style, "button_width": "100px"}),  # both buttons fit the 280 px column
        "layer": W.Dropdown(options=list(range(viewer.n_layers)), value=layer, description="layer"),
        "head": W.Dropdown(options=list(range(viewer.n_heads)), value=head, description="head"),
        "query": W.Dropdown(options=_query_options(tokens), value=query, description="query word"),
    }

    def before_render(changed: str, controls: dict) -> None:
        if changed != "sentence":
            return
        new_tokens, _, _ = viewer.tokens_and_weights(controls["sentence"].value)
        keep = controls["query"].value
        old = viewer_tokens[0]
        word = old[keep] if old and 0 <= keep < len(old) else None
        controls["query"].options = _query_options(new_tokens)
        controls["query"].value = new_tokens.index(word) if new_tokens and word in new_tokens else -1
        viewer_tokens[0] = new_tokens

    viewer_tokens = [tokens]

    return HeadViewerExplorer(viewer, controls, before_render=before_render,
                              caption="Every head of all-MiniLM-L6-v2: type a sentence, pick a layer and a head")


class HeadViewerExplorer(Explorer):
    """An `Explorer` whose picture is drawn by a `HeadViewer` (`.viewer`) and described by it."""

    def __init__(self, viewer: HeadViewer, controls, *, before_render=None, caption=None):
        self.viewer = viewer
        super().__init__(controls, viewer.render, before_render=before_render, caption=caption,
                         describe=viewer.describe)
