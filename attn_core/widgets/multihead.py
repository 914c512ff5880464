"""Explorer for lesson 04: every head's attention pattern as `d_model` and `n_heads` change.

The sentence is the article's "The bank near the river flooded after the storm". Its
tokens get seeded random embeddings and the heads seeded random projections, so the
picture is reproducible. With random weights the heads differ from one another but do not
specialise (no head "knows" that *bank* goes with *river*): that only comes with training.
"""

from __future__ import annotations

import math

import ipywidgets as W
import matplotlib
import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.patches import Rectangle

from .._arrays import check_positive_int
from ..attention import scaled_dot_product_attention
from ..multihead import split_heads
from ..viz import CMAP, new_figure
from ._base import Explorer, restrict_options

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
    x, w_q, w_k = random_projections(d_model, seed, tokens)
    # x @ w.T, written with einsum: it skips BLAS, whose thread wake-up costs more than this small product
    q = split_heads(np.einsum("td,ed->te", x, w_q), n_heads)  # (T, d_model) -> (H, T, d_head)
    k = split_heads(np.einsum("td,ed->te", x, w_k), n_heads)  # (T, d_model) -> (H, T, d_head)
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


_CMAP = matplotlib.colormaps[CMAP].with_extremes(bad="white")  # blank gaps between tiles


def render_heads(d_model: int = 48, n_heads: int = 4, seed: int = 0, query: int = 1, tokens=TOKENS):
    """The explorer's picture: every head's pattern tiled in one image (head 0 top left,
    the query's row outlined in each) and, on the right, the query's row in every head.

    Drawn fast: one axes spanning the figure in pixel units, one image for all heads, plain
    texts (no tick machinery, no title layout), a hand-drawn colour bar.
    """
    tokens = _check_tokens(tokens)
    T = len(tokens)
    if isinstance(query, bool) or not isinstance(query, int) or not 0 <= query < T:
        raise ValueError(f"query must be a token index in 0..{T - 1}, got {query!r}")
    w = random_head_weights(d_model, n_heads, seed, tokens)  # (H, T, T)
    H = w.shape[0]
    ncols = math.ceil(math.sqrt(H))
    nrows = -(-H // ncols)
    gap_x, gap_y = 1, 2  # blank cells between tiles; the rows above a tile hold its head number
    canvas = _tile(w, ncols, gap_x, gap_y)  # (nrows * (T + gap_y), ncols * (T + gap_x) - gap_x)

    width, height = 840, 440  # pixels at dpi 80: data units below are pixels, y pointing down
    fig = new_figure(figsize=(width / 80, height / 80), dpi=80)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    fs = 9 if nrows <= 2 else 7

    # left: all heads, one RGBA image (NaN gaps -> white)
    cell = min(380 / canvas.shape[1], 330 / canvas.shape[0])
    x0, y0 = 75.0, 48.0
    ax.imshow(_CMAP(canvas), extent=(x0, x0 + cell * canvas.shape[1], y0 + cell * canvas.shape[0], y0),
              interpolation="nearest", aspect="auto")
    # Texts are the slow part of a redraw (about 1 ms each), so big grids get fewer labels.
    bottom = y0 + cell * canvas.shape[0]
    for i, token in enumerate(tokens):  # queries beside the first tile row (keys below it when tiles are big)
        ax.text(x0 - 4, y0 + (gap_y + i + 0.5) * cell, token, ha="right", va="center", fontsize=fs)
        if H <= 4:
            ax.text(x0 + (i + 0.5) * cell, bottom + 3, token, ha="center", va="top", rotation=90, fontsize=fs)
    outlines = []
    for h in range(H):
        r, c = divmod(h, ncols)
        left, top = x0 + c * (T + gap_x) * cell, y0 + (gap_y + r * (T + gap_y)) * cell
        if H <= 8 or c == 0:  # head numbers in reading order; many heads: the first of each row
            ax.text(left + T * cell / 2, top - 0.9 * cell, f"head {h}", ha="center", va="center", fontsize=fs)
        outlines.append(Rectangle((left, top + query * cell), T * cell, cell))
    ax.add_collection(PatchCollection(outlines, facecolor="none", edgecolor="#e8000b", linewidth=1.3))  # one artist
    ax.text(x0 + cell * canvas.shape[1] / 2, y0 - 8, f"{H} head{'s' if H > 1 else ''} in reading order: "
            "rows = queries, columns = keys", ha="center", va="bottom", fontsize=10)

    # right: the query's row in every head
    rx0, rx1, ry0, ry1 = 560.0, 760.0, 60.0, 300.0
    ax.imshow(_CMAP(w[:, query, :]), extent=(rx0, rx1, ry1, ry0), interpolation="nearest", aspect="auto")
    cw, ch = (rx1 - rx0) / T, (ry1 - ry0) / H
    for j, token in enumerate(tokens):
        ax.text(rx0 + (j + 0.5) * cw, ry1 + 4, token, ha="center", va="top", rotation=90, fontsize=9)
    for h in range(0, H, 1 if H <= 8 else 4):
        ax.text(rx0 - 4, ry0 + (h + 0.5) * ch, f"head {h}", ha="right", va="center", fontsize=8)
    ax.text((rx0 + rx1) / 2, ry0 - 8, f"weights of '{tokens[query]}' (row {query}), per head", ha="center",
            va="bottom", fontsize=10)

    # colour bar: 0 at the bottom, 1 at the top
    bx0, bx1 = 778.0, 788.0
    ax.imshow(_CMAP(np.linspace(1, 0, 128)[:, None]), extent=(bx0, bx1, ry1, ry0), interpolation="nearest",
              aspect="auto")
    ax.add_patch(Rectangle((bx0, ry0), bx1 - bx0, ry1 - ry0, fill=False, edgecolor="black", linewidth=0.6))
    for value in (0.0, 0.5, 1.0):
        ax.text(bx1 + 4, ry1 - value * (ry1 - ry0), f"{value:g}", ha="left", va="center", fontsize=8)

    ax.text(width / 2, 6, f"d_model = {d_model} = {H} head{'s' if H > 1 else ''} x d_head {d_model // H}   "
            f"(random weights, seed {seed})", ha="center", va="top", fontsize=11)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    return fig


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

    return Explorer(controls, render_heads, before_render=before_render,
                    caption="Multi-head attention: d_model is split into n_heads heads of d_head = d_model / n_heads")
