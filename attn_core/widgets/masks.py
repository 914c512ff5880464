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
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from ..attention import scaled_dot_product_attention
from ..masks import causal_mask, padding_mask, sliding_window_mask
from ..positional import sinusoidal_encoding
from ..viz import CMAP, CSS_DPI, explorer_figure
from ._base import Explorer
from ._figure import Backdrop, agg_canvas
from ._labels import GlyphLine
from ._pixels import PixelImage, sprite_text

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


def _mask_title(kind: str, window: int, S: int) -> str:
    """A short title for the mask, e.g. "padding mask + causal window of 3"."""
    if window >= S:
        return {"none": "no mask", "causal": "causal mask", "padding": "padding mask",
                "causal + padding": "causal + padding mask"}[kind]
    win = f"{'causal' if 'causal' in kind else 'two-sided'} window of {window}"
    return f"padding mask + {win}" if "padding" in kind else win


class _MaskPicture:
    """The explorer's one Figure (448 x 368 CSS px), updated in place by `update`.

    Static parts (axes, ticks, axis labels, the colour bar) are drawn once and pasted back
    as pixels (`Backdrop`); an update redraws the heatmap (a `PixelImage`), the frame over
    it, the padding boundary, the title (`GlyphLine`s: words and digits pasted from stamps) and
    the sentence's words beside the ticks (`SpriteText`s, each word rendered once). Every
    word and digit is rendered when the picture is built (`_prepare`), so no change renders text.
    """

    def __init__(self):
        self.tokens, lengths, q, k = _batch()
        self.lengths = [int(n) for n in lengths]
        self.q, self.k = q.numpy(), k.numpy()  # numpy: no torch thread-pool start-up on every small update
        S = self.S = self.q.shape[1]
        self.fig = fig = explorer_figure((5.6, 4.6))
        fig.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.86)
        ax = self.ax = fig.add_subplot()
        ax.set_xlim(-0.5, S - 0.5)
        ax.set_ylim(S - 0.5, -0.5)
        ax.set_xticks(range(S), [""] * S)
        ax.set_yticks(range(S), [""] * S)
        cmap = matplotlib.colormaps[CMAP].with_extremes(bad=BLOCKED_COLOR)
        colours = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
        bar = fig.colorbar(colours, ax=ax, shrink=0.8, pad=0.02, label="weight")
        bar.set_ticks([0.0, 0.5, 1.0])
        self.image = PixelImage(ax, cmap, extent=(-0.5, S - 0.5, S - 0.5, -0.5))
        frame = Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor="black", linewidth=0.8,
                          zorder=3)  # the axes' frame, drawn again over the heatmap's edge pixels
        ax.add_patch(frame)
        self.boundary = [ax.axvline(0, color="#e66101", linestyle="--", linewidth=1.3),
                         ax.axhline(0, color="#e66101", linestyle="--", linewidth=1.3)]
        # Labels on whole CSS px (figure coordinates), where a SpriteText pastes its saved pixels.
        width, height = fig.get_size_inches() * CSS_DPI  # CSS px
        box = ax.get_position()  # figure fraction, after the colour bar took its share
        left, right, top, bottom = box.x0 * width, box.x1 * width, (1 - box.y1) * height, (1 - box.y0) * height
        at = lambda x, y: (round(x) / width, 1 - round(y) / height)  # noqa: E731  CSS px from the top left
        sprites = {}
        label = lambda x, y, **kw: sprite_text(fig, *at(x, y), sprites=sprites, **{"fontsize": 8, **kw})  # noqa: E731
        cell_w, cell_h = (right - left) / S, (bottom - top) / S
        gap = 8  # CSS px between the axes and a word: the tick (3.5 pt) and its pad (3.5 pt)
        self.key_words = [label(left + (j + 0.5) * cell_w, bottom + gap, ha="center", va="top", rotation=90)
                          for j in range(S)]
        self.query_words = [label(left - gap, top + (i + 0.5) * cell_h, ha="right", va="center") for i in range(S)]
        words = max((w for row in self.tokens for w in row), key=len)
        room = 8 * CSS_DPI / 72 * 0.62 * len(words) + gap + 6  # CSS px the longest word takes, with air
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query (attending)")
        ax.xaxis.set_label_coords(0.5, -room / (bottom - top), transform=ax.transAxes)
        ax.yaxis.set_label_coords(-room / (right - left), 0.5, transform=ax.transAxes)
        # two lines of words and digits pasted from stamps: a new count or window renders no text
        line = lambda top: fig.add_artist(GlyphLine(0.55, 1 - top / height, fig.transFigure, fontsize=9,  # noqa: E731
                                                    ha="center", va="top"))
        self.title, self.subtitle = line(14), line(27)  # tops, CSS px from the figure's top
        static = [ax, bar.ax, *bar.ax.get_children()]
        dynamic = [self.image, frame, *self.boundary, self.title, self.subtitle, *self.key_words, *self.query_words]
        self.backdrop = Backdrop(fig, static, dynamic)
        self._sentence = self._shown = None
        self._prepare()

    def _prepare(self) -> None:
        """Render every word the picture can show now, once, so that no change of a control renders text.

        The title's words and digits (`GlyphLine.prepare`), and each sentence's words beside
        the ticks (a draw per sentence leaves their `SpriteText` pixels behind): about 40 ms
        when the explorer is built, instead of 4-12 ms on the first visit of each value.
        """
        titles = [_mask_title(kind, window, self.S) for kind in MASKS for window in range(1, self.S + 1)]
        dead = [f"{n} fully masked row{'s' if n != 1 else ''}: zero output" for n in range(self.S + 1)]
        self.title.prepare([f"{t}: 0123456789 of {self.S * self.S} pairs allowed" for t in titles], self.fig.dpi)
        self.subtitle.prepare([f"grey = blocked (weight 0); {rows}" for rows in [*dead, "every row sums to 1"]],
                              self.fig.dpi)
        canvas = agg_canvas(self.fig)
        for sentence in SENTENCES:
            self.update(sentence, "none", self.S)
            canvas.draw()

    def weights(self, sentence: str, mask: str, window: int):
        """`(allowed (S, S) bool, weights (S, S))` of `sentence`'s row of the batch under this mask."""
        b = SENTENCES.index(sentence)
        allowed = build_mask(mask, window, self.lengths[b], self.S).numpy()  # (S, S)
        _, weights = scaled_dot_product_attention(self.q[b], self.k[b], self.k[b], mask=allowed)  # (S, S)
        return allowed, weights

    def _set_sentence(self, sentence: str) -> None:
        """The sentence's words beside the ticks, as queries (rows) and keys (columns)."""
        if sentence == self._sentence:
            return
        for text, word in zip(self.key_words, self.tokens[SENTENCES.index(sentence)]):
            text.set_text(word)
        for text, word in zip(self.query_words, self.tokens[SENTENCES.index(sentence)]):
            text.set_text(word)
        self._sentence = sentence

    def update(self, sentence: str, mask: str, window: int):
        """Show these values; returns the (same) Figure."""
        if self._shown == (sentence, mask, window):
            return self.fig
        S = self.S
        length = self.lengths[SENTENCES.index(sentence)]
        self._set_sentence(sentence)
        self.backdrop.ensure("axes")  # one set of static pixels for every sentence
        allowed, weights = self.weights(sentence, mask, window)
        n_dead = int((~allowed.any(axis=-1)).sum())  # queries with nothing to attend to
        self.image.set_data(np.where(allowed, weights, np.nan))  # blocked -> NaN -> grey
        self.boundary[0].set_xdata([length - 0.5] * 2)
        self.boundary[1].set_ydata([length - 0.5] * 2)
        for line in self.boundary:
            line.set_visible(length < S)
        rows = (f"{n_dead} fully masked row{'s' if n_dead != 1 else ''}: zero output" if n_dead
                else "every row sums to 1")
        self.title.set_text(f"{_mask_title(mask, window, S)}: {int(allowed.sum())} of {S * S} pairs allowed")
        self.subtitle.set_text(f"grey = blocked (weight 0); {rows}")
        self._shown = (sentence, mask, window)
        return self.fig

    def describe(self, sentence: str, mask: str, window: int) -> str:
        """What the picture shows for these values, in two sentences (its text alternative)."""
        b = SENTENCES.index(sentence)
        tokens, length, S = self.tokens[b], self.lengths[b], self.S
        allowed, weights = self.weights(sentence, mask, window)
        dead = [i for i in range(S) if not allowed[i].any()]
        pads = f" and {S - length} {PAD}" if length < S else ""
        if len(dead) > 1:
            which = f"{dead[0]}-{dead[-1]}" if dead == list(range(dead[0], dead[-1] + 1)) else ", ".join(map(str, dead))
            rows = f"{len(dead)} fully masked rows (queries {which}: zero weights, zero output)"
        else:
            rows = f"1 fully masked row (query {dead[0]})" if dead else "no fully masked row"
        last = length - 1  # the last real word: its row shows what the mask lets a word read
        key = int(np.argmax(weights[last]))
        seen = int(allowed[last].sum())
        return (f"{_mask_title(mask, window, S)} on '{sentence}' ({length} words{pads}): {int(allowed.sum())} of "
                f"{S * S} pairs allowed, {rows}. The last word, '{tokens[last]}' (row {last}), may read {seen} "
                f"key{'s' if seen != 1 else ''} and puts most weight on '{tokens[key]}' (key {key}, "
                f"{weights[last, key]:.2f}).")


def mask_explorer(sentence: str = SENTENCES[1], mask: str = "causal + padding", window: int = 10) -> Explorer:
    """Switch between no mask, causal, padding and causal + padding on a padded batch.

    The three sentences of `SENTENCES` form one batch, right-padded to 10 tokens. The
    heatmap shows the chosen sentence's attention weights (row = query, column = key) on
    a fixed 0..1 scale; grey cells are blocked (weight exactly 0). Dashed lines separate
    the real tokens from the padding. `window` < 10 adds a sliding window: the query sees
    only itself and the `window - 1` nearest keys (before it if the mask is causal, on
    both sides otherwise). A query whose keys are all blocked has an all-grey row: zero
    weights and a zero output.

    The explorer draws into one Figure that it updates in place on every change (much
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
    S = max(len(s.split()) for s in SENTENCES)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"window must be a whole number in 1..{S}, got {window!r} ({type(window).__name__})")
    if not 1 <= window <= S:
        raise ValueError(f"window must lie in 1..{S} ({S} = no window), got {window}")

    controls = {
        "sentence": W.Dropdown(options=list(SENTENCES), value=sentence, description="sentence"),
        "mask": W.ToggleButtons(options=list(MASKS), value=mask, description="mask",
                                style={"button_width": "auto"}),
        "window": W.IntSlider(value=int(window), min=1, max=S, step=1, description="window",
                              continuous_update=False),
    }
    picture = _MaskPicture()  # one figure per explorer, updated in place
    caption = ("One batch of three sentences, right-padded to 10 tokens. Rows are queries, columns keys; "
               "grey = blocked. window = 10 means no sliding window.")
    return Explorer(controls, picture.update, caption=caption, describe=picture.describe)
