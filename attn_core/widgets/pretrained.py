"""Lesson 09's head viewer: type any sentence, see what every head of a real pretrained
model (all-MiniLM-L6-v2, loaded by `attn_core.pretrained.load_minilm`) does with it.

Two modes:

- **one head**: a BertViz-style lines view (queries on the left, keys on the right, a
  line per pair, thicker and darker for more weight) next to the head's heatmap;
- **all 72 heads**: one mosaic of the 6 x 12 heatmaps, the chosen head outlined.

Picking a query word keeps only that word's weights (the other rows fade out).

Speed: the model runs only when the sentence changes; its weights are kept in the
explorer (`viewer.cached_sentence`, `viewer.cached_weights`). The figure is built once per
layout (mode and tokens) and then updated in place (`set_data`, `set_linewidths`,
`set_color`, `set_xy`), following matplotlib's guide to fast updates (blitting):
everything that never changes (token labels, ticks, colour bar) is drawn once into a
background, and an update draws only the changing artists over a copy of it. The
picture's title is shown as text above it (`explorer.status`), not drawn.
"""

from __future__ import annotations

import html
import io
import numbers

import ipywidgets as W
import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from .. import viz
from ._base import Explorer

__all__ = ["head_viewer", "HeadViewer", "HeadViewerExplorer", "MODES", "MAX_TOKENS", "DEFAULT_SENTENCE"]

MODES = ("one head", "all 72 heads")
MAX_TOKENS = 64
"""The viewer draws sentences of up to 64 tokens ([CLS] and [SEP] included); the model itself takes 512."""
DEFAULT_SENTENCE = "The cat sat on the mat because it was tired."
_LINE_COLOR = to_rgba("#1b6ca8")
_HIGHLIGHT = "#b35806"
_MIN_WEIGHT = 0.01  # lines below this weight are not drawn (zero width)


class HeadViewer:
    """The state behind `head_viewer`: the model, the last sentence's weights, the figure.

    `render(sentence, mode, layer, head, query)` returns the (reused) Figure for those
    values. It runs the model only when `sentence` differs from `cached_sentence`, and
    rebuilds the figure only when the mode or the tokens change.
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
        self.fig = None
        self._animated = []
        self._background = None
        self._title = None
        self.summary = ""  # one line about the head shown (the figure's title)
        self._layout = None  # what the figure was built for: (mode, tokens) or ("message",)

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
                    with torch.no_grad():
                        _, ws = self.model(enc.token_ids, enc.segment_ids, enc.attention_mask, return_weights=True)
                    self.n_model_runs += 1
                    weights = torch.stack([w[0] for w in ws]).double().numpy()  # L x (1, H, T, T) -> (L, H, T, T)
                    tokens = enc.tokens[0]
        self.cached_sentence, self.cached_tokens, self.cached_weights, self.cached_error = sentence, tokens, weights, error
        return tokens, weights, error

    # ------------------------------------------------------------------ figure

    def render(self, sentence: str, mode: str, layer: int, head: int, query: int):
        """Update (or build) the figure for these values and return it."""
        tokens, weights, error = self.tokens_and_weights(sentence)
        if error is not None:
            if self._layout != ("message",):
                self._build_message()
            self._message.set_text(error)
            self.summary = error
            self._background = None  # nothing animated: a full draw
            return self.fig
        T = len(tokens)
        query = query if 0 <= query < T else -1
        if self._layout != (mode, tuple(tokens)):
            self._build_one_head(tokens) if mode == MODES[0] else self._build_grid(tokens)
        if mode == MODES[0]:
            self._update_one_head(tokens, weights, layer, head, query)
        else:
            self._update_grid(tokens, weights, layer, head, query)
        return self.fig

    def png(self) -> bytes:
        """The current figure as PNG bytes, drawing only the changing artists when it can.

        The first call after a (re)build draws everything except the animated artists and
        keeps that background; later calls restore it and draw the animated artists on top.
        """
        canvas = self.fig.canvas
        if self._background is None:
            for artist in self._animated:
                artist.set_animated(True)
            if self._title is not None:  # the explorer shows the title as text above the picture: faster
                self._title.set_visible(False)
            canvas.draw()  # the static parts only
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        else:
            canvas.restore_region(self._background)
        for artist in self._animated:
            self.fig.draw_artist(artist)
        width, height = canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
        buf = io.BytesIO()  # RGB at zlib level 1: about 17 ms for the one-head picture, RGBA 25 ms
        image.save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def static_figure(self):
        """The current figure with every artist drawn normally (for a notebook's static copy)."""
        for artist in self._animated:
            artist.set_animated(False)
        if self._title is not None:
            self._title.set_visible(True)
        self._background = None  # the next png() rebuilds its background
        return self.fig

    def _new_figure(self, figsize):
        self.fig = viz.new_figure(figsize=figsize)
        FigureCanvasAgg(self.fig)  # a canvas that can copy and restore regions
        self._animated = []
        self._title = None
        self._background = None
        return self.fig

    def _build_message(self):
        fig = self._new_figure((9.0, 2.0))
        self._message = fig.text(0.5, 0.5, "", ha="center", va="center", fontsize=11, wrap=True)
        self._layout = ("message",)

    def _build_one_head(self, tokens):
        T = len(tokens)
        fontsize = 9 if T <= 24 else 7
        bottom = 0.55 * fontsize * max(len(tok) for tok in tokens) / 72 + 0.45  # inches: vertical labels + x label
        height = max(3.6, 0.2 * T + 0.55 + bottom)
        fig = self._new_figure((9.6, height))
        lines, heat = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]})
        fig.subplots_adjust(left=0.02, right=0.97, bottom=bottom / height, top=1 - 0.55 / height, wspace=0.28)
        y = np.arange(T)[::-1].astype(float)  # token 0 at the top
        self._y = y
        segments = np.zeros((T * T, 2, 2))  # line (i, j) from query i (x = 0) to key j (x = 1)
        segments[:, 1, 0] = 1.0
        segments[:, 0, 1] = np.repeat(y, T)  # (T * T,) query i of each line
        segments[:, 1, 1] = np.tile(y, T)  # (T * T,) key j of each line
        self._lines = LineCollection(segments, linewidths=np.zeros(T * T), colors=np.zeros((T * T, 4)),
                                     capstyle="round")
        lines.add_collection(self._lines)
        for i, tok in enumerate(tokens):
            lines.text(-0.05, y[i], tok, ha="right", va="center", fontsize=fontsize)
            lines.text(1.05, y[i], tok, ha="left", va="center", fontsize=fontsize)
        lines.text(0, T - 0.2, "query", ha="center", va="bottom", color="0.35", fontsize=fontsize)
        lines.text(1, T - 0.2, "key", ha="center", va="bottom", color="0.35", fontsize=fontsize)
        self._marker = Line2D([0], [0], marker="o", markersize=7, color=_HIGHLIGHT, linestyle="none")
        lines.add_line(self._marker)
        lines.set_xlim(-0.75, 1.75)
        lines.set_ylim(-0.7, T + 0.6)
        lines.set_axis_off()
        self._image = heat.imshow(np.zeros((T, T)), cmap=viz.CMAP, vmin=0.0, vmax=1.0, aspect="auto",
                                  interpolation="nearest")
        heat.set_xticks([])  # token labels as plain text: axis ticks cost ~5 ms each to build and draw
        heat.set_yticks([])
        below, left = heat.get_xaxis_transform(), heat.get_yaxis_transform()  # (data x, axes y), (axes x, data y)
        for i, tok in enumerate(tokens):
            heat.text(i, -0.02, tok, transform=below, rotation=90, ha="center", va="top", fontsize=fontsize)
            heat.text(-0.02, i, tok, transform=left, ha="right", va="center", fontsize=fontsize)
        pad = 0.55 * fontsize * max(len(tok) for tok in tokens) + 6  # points: room for the longest token
        heat.set_xlabel("key (attended to)", fontsize=9, labelpad=pad)
        heat.set_ylabel("query (attending)", fontsize=9, labelpad=pad)
        self._row_box = Rectangle((-0.5, -0.5), T, 1, fill=False, edgecolor=_HIGHLIGHT, linewidth=2)
        heat.add_patch(self._row_box)
        fig.colorbar(self._image, ax=heat, shrink=0.85, label="weight")
        self._title = fig.text(0.5, 1 - 0.18 / height, "", ha="center", va="top", fontsize=10)
        self._animated = [self._lines, self._marker, self._image, self._row_box]
        self._layout = (MODES[0], tuple(tokens))

    def _update_one_head(self, tokens, weights, layer, head, query):
        w = weights[layer, head]  # (T, T)
        T = len(tokens)
        chosen = np.ones((T, 1), dtype=bool) if query < 0 else (np.arange(T) == query)[:, None]  # (T, 1) rows shown
        shown = np.where(chosen, w, 0.0)  # (T, T)
        flat = shown.ravel()  # (T * T,) in the order of the segments
        peak = max(float(shown.max()), 1e-12)
        colors = np.tile(_LINE_COLOR, (T * T, 1))  # (T * T, 4) RGBA
        colors[:, 3] = np.where(flat >= _MIN_WEIGHT, np.minimum(1.0, 0.15 + 0.85 * flat / peak), 0.0)
        self._lines.set_linewidths(np.where(flat >= _MIN_WEIGHT, 0.5 + 4.0 * flat, 0.0))
        self._lines.set_color(colors)
        self._image.set_data(np.where(chosen, w, np.nan))
        self._marker.set_visible(query >= 0)
        self._row_box.set_visible(query >= 0)
        if query >= 0:
            self._marker.set_data([0.0], [self._y[query]])
            self._row_box.set_y(query - 0.5)  # imshow row i sits at y = i
        self.summary = _summary(tokens, weights, layer, head, query)
        self._title.set_text(self.summary)

    def _build_grid(self, tokens):
        T = len(tokens)
        L, H = self.n_layers, self.n_heads
        fig = self._new_figure((10.0, 5.4))
        ax = fig.subplots()
        fig.subplots_adjust(left=0.07, right=0.92, bottom=0.1, top=0.88)
        step = T + 1  # one blank row and column between heads
        cmap = matplotlib.colormaps[viz.CMAP].with_extremes(bad="white")  # the gaps stay blank
        self._image = ax.imshow(np.full((L * step - 1, H * step - 1), np.nan), cmap=cmap, vmin=0.0, vmax=1.0,
                                aspect="auto", interpolation="nearest")
        ax.set_xticks([h * step + (T - 1) / 2 for h in range(H)], [str(h) for h in range(H)])
        ax.set_yticks([layer * step + (T - 1) / 2 for layer in range(L)], [str(layer) for layer in range(L)])
        ax.set_xlabel("head (each block: queries down, keys across)")
        ax.set_ylabel("layer")
        ax.tick_params(length=0)
        for spine in ax.spines.values():  # the blitted image would cover them: the same picture either way
            spine.set_visible(False)
        self._head_box = Rectangle((-0.5, -0.5), T, T, fill=False, edgecolor=_HIGHLIGHT, linewidth=2.5)
        ax.add_patch(self._head_box)
        fig.colorbar(self._image, ax=ax, shrink=0.85, label="weight", pad=0.02)
        self._title = fig.text(0.5, 0.975, "", ha="center", va="top", fontsize=10)
        self._step = step
        self._animated = [self._image, self._head_box]
        self._layout = (MODES[1], tuple(tokens))

    def _update_grid(self, tokens, weights, layer, head, query):
        T = len(tokens)
        L, H = self.n_layers, self.n_heads
        step = self._step
        keep = np.ones(T, dtype=bool) if query < 0 else np.arange(T) == query  # (T,) rows shown
        blocks = np.where(keep[None, None, :, None], weights, np.nan)  # (L, H, T, T)
        padded = np.full((L, H, step, step), np.nan)
        padded[:, :, :T, :T] = blocks
        mosaic = padded.transpose(0, 2, 1, 3).reshape(L * step, H * step)[:-1, :-1]  # (L, T+1, H, T+1) -> image
        self._image.set_data(mosaic)
        self._head_box.set_xy((head * step - 0.5, layer * step - 0.5))
        who = "every query" if query < 0 else f"query {query} {tokens[query]!r} only"
        self.summary = f"All {L * H} heads on {T} tokens, {who}. Outlined: " + _summary(tokens, weights, layer, head, query)
        self._title.set_text(self.summary)


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
        "mode": W.ToggleButtons(options=list(MODES), value=mode, description="show"),
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
    """An `Explorer` whose picture is updated in place by its `HeadViewer` (`.viewer`)
    instead of drawn anew: `refresh` calls `viewer.render` then `viewer.png()`.
    `figure()` returns the figure with every artist drawn normally, for a static copy."""

    def __init__(self, viewer: HeadViewer, controls, *, before_render=None, caption=None):
        self.viewer = viewer
        self.status = W.HTML()  # the picture's title, as text: drawing it in the figure costs ~10 ms
        super().__init__(controls, viewer.render, before_render=before_render, caption=caption)
        self.children = (*self.children[:-1], self.status, self.view)

    def refresh(self) -> None:
        self.viewer.render(**self.values())
        self.view.value = self.viewer.png()
        self.status.value = html.escape(self.viewer.summary, quote=False)
        self.n_renders += 1

    def figure(self):
        self.viewer.render(**self.values())
        return self.viewer.static_figure()
