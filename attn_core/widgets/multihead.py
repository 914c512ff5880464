"""Explorer for lesson 04: every head's attention pattern as `d_model` and `n_heads` change.

The sentence is the article's "The bank near the river flooded after the storm". Its
tokens get seeded random embeddings and the heads seeded random projections, so the
picture is reproducible. With random weights the heads differ from one another but do not
specialise (no head "knows" that *bank* goes with *river*): that only comes with training.
"""

from __future__ import annotations

import math
from functools import partial

import ipywidgets as W
import matplotlib
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.patches import Rectangle

from .._arrays import check_positive_int
from ..attention import scaled_dot_product_attention
from ..multihead import split_heads
from ..viz import CMAP, CSS_DPI, explorer_figure
from ._base import Explorer, restrict_options
from ._figure import Backdrop, agg_canvas
from ._labels import GlyphLine
from ._pixels import ArtistGroup, PixelImage, SpriteText, sprite_text

__all__ = ["multihead_explorer"]

SENTENCE = "The bank near the river flooded after the storm"
TOKENS = tuple(SENTENCE.split())
D_MODELS = (12, 24, 48, 64, 96, 768)  # 768 = 12 x 64 is the article's (and BERT-base's) width
MAX_HEADS = 16  # at most 16 small patterns in one picture
N_SEEDS = 10


def head_choices(d_model: int, max_heads: int = MAX_HEADS) -> list[int]:
    """The head counts the explorer offers for `d_model`: its divisors up to `max_heads`.

    >>> head_choices(48)
    [1, 2, 3, 4, 6, 8, 12, 16]
    """
    d_model = check_positive_int(d_model, "d_model")
    max_heads = check_positive_int(max_heads, "max_heads")
    return [h for h in range(1, min(d_model, max_heads) + 1) if d_model % h == 0]


def _check_tokens(tokens) -> tuple[str, ...]:
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens) or len(tokens) == 0:
        raise TypeError(f"tokens must be a non-empty sequence of strings (e.g. sentence.split()), got {tokens!r}")
    return tuple(tokens)


def random_projections(d_model: int = 48, seed: int = 0, tokens=TOKENS):
    r"""Seeded random token embeddings and query/key projections for `tokens`.

    Each distinct lower-cased word gets one embedding with entries drawn from N(0, 1) (so
    "The" and "the" share one vector: there is no positional encoding here). `w_q` and
    `w_k` are `d_model x d_model` with entries from N(0, 2/d_model), in `nn.Linear`'s
    layout (`q = x @ w_q.T`), so every query and key entry has variance about 2 and, after
    the `1/sqrt(d_head)` scaling, the scores have a standard deviation of about 2 whatever
    `d_model` and `n_heads` are. (PyTorch's default initialisation is smaller and gives
    flatter patterns; these are drawn larger so that the pictures show some structure.)
    The draws depend only on `(d_model, seed, distinct words)`, not on a head count.

    Returns:
        `(x, w_q, w_k)`: `x (T, d_model)`, `w_q` and `w_k (d_model, d_model)`, float32 numpy
        arrays (numpy keeps an explorer update free of torch's thread start-up).
    """
    d_model = check_positive_int(d_model, "d_model")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    tokens = _check_tokens(tokens)
    vocab = sorted({t.lower() for t in tokens})
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((len(vocab), d_model), dtype=np.float32)  # (V, d_model)
    w_q, w_k = rng.standard_normal((2, d_model, d_model), dtype=np.float32) * np.float32(math.sqrt(2 / d_model))
    x = table[[vocab.index(t.lower()) for t in tokens]]  # (T, d_model)
    return x, w_q, w_k


def random_head_weights(d_model: int = 48, n_heads: int = 4, seed: int = 0, tokens=TOKENS) -> np.ndarray:
    """Every head's self-attention weights on `tokens` with `random_projections`.

    The same as `MultiHeadAttention(d_model, n_heads, bias=False)` with `w_q`, `w_k` copied
    in (the values and `w_o` do not change the weights). Changing `n_heads` keeps the same
    `w_q` and `w_k` and only regroups their columns into heads.

    Returns:
        `weights (H, T, T)` numpy array: row = query token, column = key token; rows sum to 1.
    """
    n_heads = check_positive_int(n_heads, "n_heads")
    return _head_weights(*_queries_keys(*random_projections(d_model, seed, tokens)), n_heads)


def _queries_keys(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray):
    """`q = x w_q^T` and `k = x w_k^T`, both `(T, d_model)`, from `random_projections`' `(x, w_q, w_k)`."""
    # x @ w.T, written with einsum: it skips BLAS, whose thread wake-up costs more than this small product
    return np.einsum("td,ed->te", x, w_q), np.einsum("td,ed->te", x, w_k)  # (T, d_model) each


def _head_weights(q: np.ndarray, k: np.ndarray, n_heads: int) -> np.ndarray:
    """`softmax(q_h k_h^T / sqrt(d_head))` for every head h of `q`, `k (T, d_model)`."""
    q = split_heads(q, n_heads)  # (T, d_model) -> (H, T, d_head)
    k = split_heads(k, n_heads)  # (T, d_model) -> (H, T, d_head)
    _, weights = scaled_dot_product_attention(q, k, k)  # values do not affect the weights; (H, T, T)
    return weights


def _tile(weights: np.ndarray, ncols: int, gap_x: int, gap_y: int) -> np.ndarray:
    """Lay `(H, T, S)` matrices out on one canvas, NaN (drawn blank) between tiles."""
    H, T, S = weights.shape
    nrows = -(-H // ncols)
    canvas = np.full((nrows * (T + gap_y), ncols * (S + gap_x) - gap_x), np.nan)
    for h in range(H):
        r, c = divmod(h, ncols)
        canvas[gap_y + r * (T + gap_y): gap_y + r * (T + gap_y) + T, c * (S + gap_x): c * (S + gap_x) + S] = weights[h]
    return canvas


_CMAP = matplotlib.colormaps[CMAP].with_extremes(bad=(1.0, 1.0, 1.0, 0.0))  # gaps between tiles: see-through, so
# the head numbers drawn there once (static pixels, pasted under the image) stay visible
QUERY_COLOR = "#e8000b"  # the query's row: outlined in every head, its label in the same colour
MIN_FONT = 8  # points at 80 dpi: no label is smaller, whatever the head count
_LINE = {8: 9.2, 9: 10.0}  # height of a label's box in CSS px at 8 and 9 pt (DejaVu Sans, measured)

# The picture's layout in CSS px (data units; y points down), 640 x 440: within the 640 x 480 budget.
WIDTH, HEIGHT = 640, 440
_GRID = (58.0, 372.0, 52.0, 432.0)  # left panel: every head's pattern (x0, x1, y0, y1)
_KEY_SPACE = 46.0  # under the grid, for key labels when tiles are large enough to carry them
_ROWS = (430.0, 578.0, 62.0, 322.0)  # right panel: the query's row in every head
_BAR = (590.0, 600.0)  # colour bar, beside the right panel
_KEEP_LAYOUTS = 8  # static bitmaps kept, one per head count (4.5 MB each): the 8 counts any d_model offers
_TITLE_SPLIT = 347.0  # where the title's two parts meet: the whole centred for d_model = 48, 4 heads


def _snap(x: float, y: float) -> tuple[float, float]:
    """A label's place on whole CSS pixels, where `SpriteText` can paste its saved pixels exactly."""
    return float(round(x)), float(round(y))


def _grid_layout(H: int, T: int):
    """Columns, rows, cell size (CSS px) and whether keys are labelled, for `H` heads of `T` tokens."""
    ncols = math.ceil(math.sqrt(H))
    nrows = -(-H // ncols)
    gx0, gx1, gy0, gy1 = _GRID
    keys_below = H <= 4
    height = gy1 - gy0 - (_KEY_SPACE if keys_below else 0.0)
    cell = min((gx1 - gx0) / (ncols * (T + 1) - 1), height / (nrows * (T + 2)), 24.0)
    return ncols, nrows, cell, keys_below


class _HeadsPicture:
    """The explorer's one Figure for a fixed sentence, updated in place by `update`.

    Static parts (panel titles, head and key labels, colour bar) are drawn once per head
    count and pasted back as pixels (`Backdrop`); an update redraws two images, the query
    outlines and a few cached labels. Labels adapt to the tile size: never under
    `MIN_FONT` points; when the rows of a tile are too thin for every query word, every
    other word is labelled, counted from the query's own (always labelled).
    """

    def __init__(self, tokens=TOKENS):
        self.tokens = _check_tokens(tokens)
        T = len(self.tokens)
        self.fig = fig = explorer_figure((WIDTH / CSS_DPI, HEIGHT / CSS_DPI))
        ax = self.ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, WIDTH)
        ax.set_ylim(HEIGHT, 0)
        self.grid = PixelImage(ax, _CMAP)  # every head, tiled
        self.outlines = PatchCollection([], facecolor="none", edgecolor=QUERY_COLOR, linewidth=1.3)
        ax.add_collection(self.outlines)
        rx0, rx1, ry0, ry1 = _ROWS
        self.rows = PixelImage(ax, _CMAP, extent=(rx0, rx1, ry1, ry0))  # the query's row in every head
        self.sprites = {}  # one rendering per label look, pasted wherever the layout puts it
        label = partial(sprite_text, ax, sprites=self.sprites)
        # Titles of words and digits pasted from stamps (`prepare` renders them all): the
        # title in two parts that meet at _TITLE_SPLIT, so the shapes stay put as the seed changes
        line = lambda x, top, **kw: ax.add_artist(GlyphLine(*_snap(x, top), ax.transData, va="top", **kw))  # noqa: E731
        self.title = line(_TITLE_SPLIT, 6, ha="right", fontsize=10)
        self.title_seed = line(_TITLE_SPLIT + 12, 6, ha="left", fontsize=10)
        self.rows_title = line((rx0 + rx1) / 2 + 6, _GRID[2] - 12 - _LINE[9], ha="center", fontsize=9)
        self.query_labels = [label(0, 0, token, ha="right", va="center", fontsize=MIN_FONT) for token in self.tokens]

        # static: drawn once per head count, as one group (see ArtistGroup)
        label = partial(SpriteText, sprites=self.sprites, transform=ax.transData)
        grid_title = label(*_snap((_GRID[0] + _GRID[1]) / 2, _GRID[2] - 12),
                           "every head, in reading order: rows = queries, columns = keys", ha="center", va="bottom",
                           fontsize=9)
        self.head_labels = [label(0, 0, f"head {h}", ha="center", va="center", fontsize=MIN_FONT)
                            for h in range(MAX_HEADS)]
        self.key_labels = [label(0, 0, token, ha="center", va="top", rotation=90, fontsize=MIN_FONT)
                           for token in self.tokens]
        self.row_labels = [label(rx0 - 4, 0, f"head {h}", ha="right", va="center", fontsize=MIN_FONT)
                           for h in range(MAX_HEADS)]
        cw = (rx1 - rx0) / T
        row_keys = [label(*_snap(rx0 + (j + 0.5) * cw, ry1 + 4), token, ha="center", va="top", rotation=90,
                          fontsize=MIN_FONT if cw < 14 else 9) for j, token in enumerate(self.tokens)]
        bx0, bx1 = _BAR
        bar = PixelImage(ax, _CMAP, extent=(bx0, bx1, ry1, ry0))
        bar.set_data(np.linspace(1, 0, 128)[:, None])  # 1 at the top, 0 at the bottom
        frame = Rectangle((bx0, ry0), bx1 - bx0, ry1 - ry0, fill=False, edgecolor="black", linewidth=0.6)
        ax.add_patch(frame)
        bar_labels = [label(*_snap(bx1 + 4, ry1 - value * (ry1 - ry0)), f"{value:g}", ha="left", va="center",
                            fontsize=MIN_FONT) for value in (0.0, 0.5, 1.0)]
        labels = ArtistGroup(ax, [grid_title, *self.head_labels, *self.key_labels, *self.row_labels, *row_keys,
                                  *bar_labels])
        static = [labels, bar, frame]
        dynamic = [self.grid, self.outlines, self.rows, self.title, self.title_seed, self.rows_title, *self.query_labels]
        self.backdrop = Backdrop(fig, static, dynamic)
        self._queries_keys = {}  # (d_model, seed) -> (q, k), each (T, d_model)
        self._weights = self._shown = self._laid_out = None

    def prepare(self) -> None:
        """Capture the static pixels of every head count the explorer offers, up front.

        A first visit of a head count would otherwise draw its labels during a control
        change (10-30 ms); here all 8 counts cost about 120 ms once, when the explorer is
        built, and 4.5 MB each (`_KEEP_LAYOUTS` keeps them all). The words and digits of
        the titles and the query words are rendered here too, so no change renders text.
        """
        for H in sorted({h for d in D_MODELS for h in head_choices(d)}):
            self._layout(H)
            self._laid_out = H
            self.backdrop.ensure(H)
        dpi = self.fig.dpi
        self.title.prepare(["d_model = 0123456789 = heads head x d_head"], dpi)
        self.title_seed.prepare(["(random weights, seed 0123456789)"], dpi)
        self.rows_title.prepare([f"query '{token}' (row 0123456789): its weights in each head" for token in self.tokens],
                                dpi)
        # the query words at both font sizes, black and in the query's colour: one draw each leaves their pixels
        canvas = agg_canvas(self.fig)
        shown = [(label.get_visible(), label.get_position(), label.get_fontsize(), label.get_color())
                 for label in self.query_labels]
        for font in (MIN_FONT, 9):
            for colour in ("black", QUERY_COLOR):
                for i, label in enumerate(self.query_labels):  # on the canvas, where a SpriteText keeps its pixels
                    label.set(visible=True, position=_snap(_GRID[0] - 4, _GRID[2] + 12 * (i + 1)), fontsize=font,
                              color=colour)
                canvas.draw()
        for label, (visible, position, font, colour) in zip(self.query_labels, shown):
            label.set(visible=visible, position=position, fontsize=font, color=colour)

    def weights(self, d_model: int, n_heads: int, seed: int) -> np.ndarray:
        """`random_head_weights` for these values.

        Drawing the projections costs 10 ms at d_model = 768, so the queries and keys they
        give (`(T, d_model)` each, 55 kB at most) are kept for every `(d_model, seed)` shown
        (60 pairs at most); the heads are regrouped from them.
        """
        if (d_model, seed) not in self._queries_keys:
            self._queries_keys[d_model, seed] = _queries_keys(*random_projections(d_model, seed, self.tokens))
        if self._weights is None or self._weights[0] != (d_model, n_heads, seed):
            self._weights = ((d_model, n_heads, seed), _head_weights(*self._queries_keys[d_model, seed], n_heads))
        return self._weights[1]

    def _layout(self, H: int) -> None:
        """Place and show the static labels for `H` heads (called before their pixels are captured)."""
        T = len(self.tokens)
        ncols, nrows, cell, keys_below = _grid_layout(H, T)
        x0, y0 = _GRID[0], _GRID[2]
        font = 9 if T * cell >= 100 else MIN_FONT
        # Unused labels get an empty text rather than set_visible(False): Backdrop owns the visibility of static parts.
        for h, label in enumerate(self.head_labels):
            r, c = divmod(h, ncols)
            label.set_text(f"head {h}" if h < H else "")
            label.set_position(_snap(x0 + (c * (T + 1) + T / 2) * cell, y0 + (r * (T + 2) + 1) * cell))
            label.set_fontsize(font)
        bottom = y0 + nrows * (T + 2) * cell
        for j, label in enumerate(self.key_labels):
            label.set_text(self.tokens[j] if keys_below else "")
            label.set_position(_snap(x0 + (j + 0.5) * cell, bottom + 3))
            label.set_fontsize(9 if cell >= _LINE[9] + 2 else MIN_FONT)
        rx0, _, ry0, ry1 = _ROWS
        row_h = (ry1 - ry0) / H
        step = math.ceil(_LINE[MIN_FONT] / row_h)
        for h, label in enumerate(self.row_labels):
            label.set_text(f"head {h}" if h < H and h % step == 0 else "")
            label.set_position(_snap(rx0 - 4, ry0 + (h + 0.5) * row_h))

    def update(self, d_model: int = 48, n_heads: int = 4, seed: int = 0, query: int = 1):
        """Show these values; returns the (same) Figure."""
        T = len(self.tokens)
        if isinstance(query, bool) or not isinstance(query, (int, np.integer)) or not 0 <= query < T:
            raise ValueError(f"query must be a token index in 0..{T - 1}, got {query!r}")
        w = self.weights(d_model, n_heads, seed)  # (H, T, T)
        H = w.shape[0]
        if self._shown == (d_model, n_heads, seed, query):
            return self.fig
        if H != self._laid_out:  # positions and texts of the static labels; their pixels are kept per head count
            self._layout(H)
            self._laid_out = H
        self.backdrop.ensure(H)
        for key in list(self.backdrop.regions)[:-_KEEP_LAYOUTS]:  # 4.5 MB each: keep the last few head counts
            if key != self.backdrop.key:
                del self.backdrop.regions[key], self.backdrop.sizes[key]
        ncols, nrows, cell, _ = _grid_layout(H, T)
        x0, y0 = _GRID[0], _GRID[2]
        canvas = _tile(w, ncols, 1, 2)  # (nrows * (T + 2), ncols * (T + 1) - 1)
        self.grid.set_data(canvas)
        self.grid.set_extent((x0, x0 + cell * canvas.shape[1], y0 + cell * canvas.shape[0], y0))
        outlines = []
        for h in range(H):
            r, c = divmod(h, ncols)
            outlines.append(Rectangle((x0 + c * (T + 1) * cell, y0 + (r * (T + 2) + 2 + query) * cell), T * cell, cell))
        self.outlines.set_paths(outlines)
        font = 9 if cell >= _LINE[9] + 2 else MIN_FONT
        step = math.ceil(_LINE[font] / cell)  # every word if the rows are tall enough, else every other one
        for i, label in enumerate(self.query_labels):
            label.set_visible((i - query) % step == 0)
            label.set_position(_snap(x0 - 4, y0 + (2 + i + 0.5) * cell))
            label.set_fontsize(font)
            label.set_color(QUERY_COLOR if i == query else "black")
        self.rows.set_data(w[:, query, :])  # (H, T): the query's row in every head
        self.rows_title.set_text(f"query '{self.tokens[query]}' (row {query}): its weights in each head")
        self.title.set_text(f"d_model = {d_model} = {H} head{'s' if H > 1 else ''} x d_head {d_model // H}")
        self.title_seed.set_text(f"(random weights, seed {seed})")
        self._shown = (d_model, n_heads, seed, query)
        return self.fig

    def describe(self, d_model: int = 48, n_heads: int = 4, seed: int = 0, query: int = 1) -> str:
        """What the picture shows for these values, in one or two sentences (its text alternative)."""
        w = self.weights(d_model, n_heads, seed)[:, query, :]  # (H, T): the query's row per head
        H, T = w.shape
        word = self.tokens[query]
        first = (f"{H} head{'s' if H > 1 else ''} of {d_model // H} dimensions (d_model {d_model}, random weights, "
                 f"seed {seed}), {'each ' if H > 1 else ''}a {T} x {T} pattern.")
        if H == 1:
            return f"{first} Query '{word}' puts most weight on {self._strongest(w[0])}."
        if H <= 4:
            per_head = "; ".join(f"head {h} on {self._strongest(w[h])}" for h in range(H))
            return f"{first} Query '{word}' puts most weight, head by head: {per_head}."
        head = int(np.argmax(w.max(axis=-1)))
        tops = [self.tokens[k].lower() for k in np.argmax(w, axis=-1)]  # each head's strongest key ("The" = "the")
        common = max(set(tops), key=lambda t: (tops.count(t), -tops.index(t)))
        return (f"{first} Query '{word}': the largest weight is head {head}'s, {self._strongest(w[head])}; "
                f"{tops.count(common)} of {H} heads put most weight on '{common}'.")

    def _strongest(self, row: np.ndarray) -> str:
        """The key(s) a row of weights puts most weight on, e.g. "'river' (0.41)" or "'The', 'the' (0.28 each)"."""
        top = row.max()
        keys = [f"'{t}'" for t, v in zip(self.tokens, row) if v >= top - 1e-6]  # copies of a word tie exactly
        return f"{', '.join(keys)} ({top:.2f}{' each' if len(keys) > 1 else ''})"


def render_heads(d_model: int = 48, n_heads: int = 4, seed: int = 0, query: int = 1, tokens=TOKENS):
    """The explorer's picture: every head's pattern tiled in one image (head 0 top left,
    the query's row outlined in each) and, on the right, the query's row in every head.

    A new Figure (640 x 440 CSS px, for a device pixel ratio of 2) for one set of values;
    `multihead_explorer` keeps one and updates it in place instead.
    """
    picture = _HeadsPicture(tokens)
    return picture.update(d_model, n_heads, seed, query)


def multihead_explorer(d_model: int = 48, n_heads: int = 4, seed: int = 0, query: int = 1) -> Explorer:
    """Adjust `d_model` and the number of heads and see every head's attention pattern on
    "The bank near the river flooded after the storm".

    Controls: `d_model` (12, 24, 48, 64, 96, 768), `n_heads` (only divisors of the current
    `d_model`, up to 16; the current count is kept when it still divides the new `d_model`,
    otherwise the nearest valid count is chosen), `seed` (the random embeddings and
    weights) and `query` (the token whose row is outlined and shown per head on the right).
    """
    if d_model not in D_MODELS:
        raise ValueError(f"d_model must be one of {list(D_MODELS)}, got {d_model!r}")
    if n_heads not in head_choices(d_model):
        raise ValueError(f"n_heads must divide d_model={d_model} and be at most {MAX_HEADS}: one of "
                         f"{head_choices(d_model)}, got {n_heads!r}")
    if seed not in range(N_SEEDS):
        raise ValueError(f"seed must be one of 0..{N_SEEDS - 1}, got {seed!r}")
    if query not in range(len(TOKENS)):
        raise ValueError(f"query must be a token index in 0..{len(TOKENS) - 1} of {list(TOKENS)}, got {query!r}")
    controls = {
        "d_model": W.Dropdown(options=list(D_MODELS), value=d_model, description="d_model"),
        "n_heads": W.Dropdown(options=head_choices(d_model), value=n_heads, description="n_heads"),
        "seed": W.IntSlider(value=seed, min=0, max=N_SEEDS - 1, step=1, description="seed", continuous_update=False),
        "query": W.Dropdown(options=[(f"{i}: {t}", i) for i, t in enumerate(TOKENS)], value=query,
                            description="query"),
    }

    def before_render(changed: str, controls: dict) -> None:
        if changed != "d_model":
            return
        restrict_options(controls["n_heads"], head_choices(controls["d_model"].value))

    picture = _HeadsPicture()  # one figure per explorer, updated in place
    picture.prepare()  # every head count's static pixels now, not during a control change
    return Explorer(controls, picture.update, before_render=before_render, describe=picture.describe,
                    caption="Multi-head attention: d_model is split into n_heads heads of d_head = d_model / n_heads")
