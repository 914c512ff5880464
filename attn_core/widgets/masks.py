"""Explorer for lesson 06: switch the mask on a padded batch and watch the weights.

`mask_explorer` holds a batch of three sentences of different lengths, right-padded to
the longest with `<pad>`, and one attention head over them (fixed random projections of
fixed random word embeddings plus sinusoidal positions). Pick a sentence, a mask and a
window; the heatmap shows that sentence's attention weights, with blocked pairs in grey.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib
import numpy as np
import torch

from ..attention import scaled_dot_product_attention
from ..masks import causal_mask, padding_mask, sliding_window_mask
from ..positional import sinusoidal_encoding
from ..viz import CMAP, new_figure
from ._base import Explorer

__all__ = ["mask_explorer"]

PAD = "<pad>"
SENTENCES = (
    "the cat sat on the mat because it was tired",
    "the cat sat on the mat",
    "dog bites man",
)
"""The batch, longest first: the second sentence is a prefix of the first."""
MASKS = ("none", "causal", "padding", "causal + padding")
"""Mask types offered by the explorer; the window slider narrows any of them further."""
BLOCKED_COLOR = "#d4d4d4"  # light grey: clearly not a viridis colour, so "blocked" reads apart from "weight 0.0x"


def _batch(d_model: int = 16, seed: int = 0):
    """Tokens `(B, S)` and one head's queries and keys `(B, T, d_model)` for `SENTENCES`."""
    words = [s.split() for s in SENTENCES]
    S = max(len(w) for w in words)
    tokens = [w + [PAD] * (S - len(w)) for w in words]
    vocab = sorted({t for row in tokens for t in row})
    gen = torch.Generator().manual_seed(seed)
    embedding = torch.randn(len(vocab), d_model, generator=gen)  # (V, d_model)
    w_q = torch.randn(d_model, d_model, generator=gen) / d_model**0.5
    w_k = torch.randn(d_model, d_model, generator=gen) / d_model**0.5
    ids = torch.tensor([[vocab.index(t) for t in row] for row in tokens])  # (B, S)
    x = embedding[ids] + sinusoidal_encoding(S, d_model)  # (B, S, d_model)
    q, k = x @ w_q, x @ w_k  # (B, S, d_model) each
    lengths = torch.tensor([len(w) for w in words])  # (B,)
    return tokens, lengths, q, k


def build_mask(kind: str, window: int, length: int, S: int) -> torch.Tensor:
    """The `(S, S)` boolean mask of one right-padded sentence of `length` real tokens.

    `kind` is one of `MASKS`; a `window` smaller than `S` adds a sliding window (causal
    when the mask is causal, two-sided otherwise). True = may attend.
    """
    if kind not in MASKS:
        raise ValueError(f"kind must be one of {MASKS}, got {kind!r}")
    causal = "causal" in kind
    mask = causal_mask(S) if causal else torch.ones(S, S, dtype=torch.bool)  # (S, S)
    if "padding" in kind:
        mask = mask & padding_mask([length], S)[0, 0]  # (S, S) & (1, S) -> (S, S)
    if window < S:
        mask = mask & sliding_window_mask(S, window, causal=causal)  # (S, S)
    return mask


def _describe(kind: str, window: int, S: int) -> str:
    """A short title for the mask, e.g. "padding mask + causal window of 3"."""
    if window >= S:
        return {"none": "no mask", "causal": "causal mask", "padding": "padding mask",
                "causal + padding": "causal + padding mask"}[kind]
    win = f"{'causal' if 'causal' in kind else 'two-sided'} window of {window}"
    return f"padding mask + {win}" if "padding" in kind else win


def mask_explorer(sentence: str = SENTENCES[1], mask: str = "causal + padding", window: int = 10) -> Explorer:
    """Switch between no mask, causal, padding and causal + padding on a padded batch.

    The three sentences of `SENTENCES` form one batch, right-padded to 10 tokens. The
    heatmap shows the chosen sentence's attention weights (row = query, column = key) on
    a fixed 0..1 scale; grey cells are blocked (weight exactly 0). Dashed lines separate
    the real tokens from the padding. `window` < 10 adds a sliding window: the query sees
    only itself and the `window - 1` nearest keys (before it if the mask is causal, on
    both sides otherwise). A query whose keys are all blocked has an all-grey row: zero
    weights and a zero output.

    The explorer draws into one Figure that it redraws in place on every update (much
    faster than building a new one), so `figure()` returns that same Figure each time.

    Args:
        sentence: one of `SENTENCES`.
        mask: one of `MASKS`.
        window: 1..10; 10 means no window.
    """
    if sentence not in SENTENCES:
        raise ValueError(f"sentence must be one of {SENTENCES}, got {sentence!r}")
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    tokens, lengths, q, k = _batch()
    q, k = q.numpy(), k.numpy()  # numpy: no torch thread-pool start-up on every small update
    S = q.shape[1]
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"window must be a whole number in 1..{S}, got {window!r} ({type(window).__name__})")
    if not 1 <= window <= S:
        raise ValueError(f"window must lie in 1..{S} ({S} = no window), got {window}")

    controls = {
        "sentence": W.Dropdown(options=list(SENTENCES), value=sentence, description="sentence",
                               layout=W.Layout(width="420px")),
        "mask": W.ToggleButtons(options=list(MASKS), value=mask, description="mask"),
        "window": W.IntSlider(value=int(window), min=1, max=S, step=1, description="window",
                              continuous_update=False),
    }

    # One figure per explorer, updated in place: building the axes, ticks and colorbar
    # afresh costs more than drawing them, and an update must stay well under 100 ms.
    fig = new_figure(figsize=(5.6, 4.6))
    fig.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.86)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad=BLOCKED_COLOR)
    image = ax.imshow(np.zeros((S, S)), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02, label="weight").set_ticks([0.0, 0.5, 1.0])
    boundary = [ax.axvline(0, color="#e66101", linestyle="--", linewidth=1.3),
                ax.axhline(0, color="#e66101", linestyle="--", linewidth=1.3)]
    title = fig.text(0.55, 0.93, "", ha="center", va="center", fontsize=9)

    def render(sentence, mask, window):
        b = SENTENCES.index(sentence)
        length = int(lengths[b])
        allowed = build_mask(mask, window, length, S).numpy()  # (S, S)
        _, weights = scaled_dot_product_attention(q[b], k[b], k[b], mask=allowed)  # (S, S)
        n_dead = int((~allowed.any(axis=-1)).sum())  # queries with nothing to attend to
        shown = np.where(allowed, weights, np.nan)  # blocked -> nan -> grey
        image.set_data(np.ma.masked_invalid(shown))
        ax.set_xticks(range(S), tokens[b], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(S), tokens[b], fontsize=8)
        boundary[0].set_xdata([length - 0.5] * 2)
        boundary[1].set_ydata([length - 0.5] * 2)
        for line in boundary:
            line.set_visible(length < S)
        rows = (f"{n_dead} fully masked row{'s' if n_dead != 1 else ''}: zero weights, zero output" if n_dead
                else "every row sums to 1")
        title.set_text(f"{_describe(mask, window, S)}: {int(allowed.sum())} of {S * S} pairs allowed\n"
                       f"grey = blocked (weight exactly 0); {rows}")
        return fig

    caption = ("One batch of three sentences, right-padded to 10 tokens. Rows are queries, columns keys; "
               "grey = blocked. window = 10 means no sliding window.")
    return Explorer(controls, render, caption=caption)
