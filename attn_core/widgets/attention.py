"""Explorers for lessons 00-03: attention as a weighted average, softmax temperature,
why scores are divided by sqrt(d_k), self-attention between the tokens of a sentence.

They draw on the hand-made word vectors of `attn_core.toy`.
"""

from __future__ import annotations

import math
import numbers

import ipywidgets as W
import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation

from .. import viz
from .._threads import one_torch_thread
from ..attention import scaled_dot_product_attention, softmax
from ..toy import FEATURES, SENTENCES, toy_embed, toy_projections
from ._base import Explorer
from ._figure import Backdrop, slot, text_row
from ._labels import GlyphLine, Labels

__all__ = ["weighted_average_explorer", "temperature_explorer", "scaling_explorer", "self_attention_explorer"]



def _entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of `weights` (0 log 0 = 0)."""
    w = np.clip(weights, 1e-30, 1.0)
    return -(weights * np.log(w)).sum(axis=-1)


def _title(ax, text: str, fontsize: float = 9) -> None:
    """An axes title drawn as plain text: `ax.set_title` re-measures every tick label to
    place itself, which costs ~35 ms per axes on each render."""
    ax.text(0.5, 1.02, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=fontsize)


def _axis_line(ax, side: str = "bottom"):
    """A spine (`side` "bottom" or "left") drawn again over the bars, as a full draw layers it (spines
    above data): the pasted static axes sit under whatever is drawn on them. A dynamic artist."""
    spine = ax.spines[side]
    xs, ys = ([0, 1], [0, 0]) if side == "bottom" else ([0, 0], [0, 1])
    (line,) = ax.plot(xs, ys, transform=ax.transAxes, color=spine.get_edgecolor(),
                      linewidth=spine.get_linewidth(), solid_capstyle="projecting", zorder=spine.get_zorder() + 0.01,
                      clip_on=False)
    return line


def _check_number(value, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number between {lo} and {hi}, got {value!r} ({type(value).__name__})")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must lie between {lo} and {hi}, got {value}")
    return float(value)


def _query_index(query, tokens: list[str], name: str = "query") -> int:
    """An index into `tokens` from a word (its first occurrence) or an index."""
    if isinstance(query, str):
        if query not in tokens:
            raise ValueError(f"{name}={query!r} is not a word of the sentence {' '.join(tokens)!r}")
        return tokens.index(query)
    if isinstance(query, bool) or not isinstance(query, numbers.Integral):
        raise TypeError(f"{name} must be a word of the sentence or its position, got {query!r} ({type(query).__name__})")
    if not 0 <= query < len(tokens):
        raise ValueError(f"{name} position must lie in 0..{len(tokens) - 1} for a sentence of {len(tokens)} words, got {query}")
    return int(query)


def _token_options(tokens: list[str]) -> list[tuple[str, int]]:
    """Dropdown options `(label, position)`: labels stay unique when a word repeats."""
    return [(f"{i}: {t}", i) for i, t in enumerate(tokens)]


# ---------------------------------------------------------------------------------------
# Lesson 00: a weighted average of two vectors
# ---------------------------------------------------------------------------------------

def _weighted_average_figure():
    """The figure of `weighted_average_explorer`, built once; returns `render(weight_on_cat)`."""
    fig = viz.explorer_figure((4.4, 3.4))
    fig.subplots_adjust(left=0.14, right=0.96, bottom=0.14, top=0.88)
    ax = fig.add_subplot()
    segment = ax.plot([1, 0], [0, 1], color="0.75", linestyle="--", zorder=1)[0]
    ax.set_xlim(-0.15, 1.25)
    ax.set_ylim(-0.2, 1.25)
    ax.set_xticks([0, 0.5, 1])
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlabel("animate")
    ax.set_ylabel("thing")
    points = ax.scatter([1, 0], [0, 1], s=[100, 100], color="#1b6ca8", zorder=2)
    star = ax.scatter([0.5], [0.5], s=160, marker="*", color="#e08214", zorder=3)  # the last collection: the star

    # "cat" and "mat" right of their points; "output" above right of the star, away from the segment
    # (the weights are in the title and in the points' sizes)
    labels = [ax.annotate(word, xy, textcoords="offset points", xytext=(12, 0), ha="left", va="center")
              for word, xy in (("cat", (1, 0)), ("mat", (0, 1)))]
    def output_label(dx, dy, ha, va):  # "output", `(dx, dy)` points from the star: its one stamp blended in there
        label = Labels(ax.transData + ScaledTranslation(dx / 72, dy / 72, fig.dpi_scale_trans), fontsize=10,
                       color="#b35806", ha=ha, va=va)
        label.prepare(["output"], fig.dpi)
        ax.add_artist(label)
        label.set_clip_on(False)
        return label

    # beside the star, away from the segment and from the "cat" and "mat" labels (right of their points)
    out_labels = [(0.3, output_label(8, 8, "left", "bottom")),  # w >= 0.3: above right
                  (0.1, output_label(-8, -8, "right", "top")),  # 0.1 <= w < 0.3: below left
                  (0.0, output_label(0, 14, "center", "bottom"))]  # w < 0.1, at "mat": above it
    title_fixed, (cat_share, mat_share) = text_row(
        fig, 0.55, 0.9, ["output = ", slot("0.00"), " x cat + ", slot("0.00"), " x mat"], fontsize=10)
    backdrop = Backdrop(fig, [ax, segment, *labels, *title_fixed],
                        [points, star, *(label for _, label in out_labels), cat_share, mat_share])

    def render(weight_on_cat):
        backdrop.ensure("axes")
        w = float(weight_on_cat)
        out = w * _CAT + (1 - w) * _MAT  # (2,)
        points.set_sizes([40 + 160 * w, 40 + 160 * (1 - w)])
        star.set_offsets([out])
        shown = next(label for lowest, label in out_labels if w >= lowest)
        for _, label in out_labels:  # one place shows it, the others nothing
            label.set_labels(*((["output"], [out[0]], [out[1]]) if label is shown else ([], [], [])))
        cat_share.set_text(f"{w:.2f}")
        mat_share.set_text(f"{1 - w:.2f}")
        return fig

    return render


_CAT, _MAT = np.array([1.0, 0.0]), np.array([0.0, 1.0])  # (animate, thing) of the toy vectors


def _describe_weighted_average(weight_on_cat: float) -> str:
    w = float(weight_on_cat)
    out = w * _CAT + (1 - w) * _MAT
    side = "halfway between" if abs(w - 0.5) < 1e-9 else ("closer to cat than to" if w > 0.5 else "closer to mat than to")
    return (f"Weight {w:.2f} on cat (1, 0) and {1 - w:.2f} on mat (0, 1): the output ({out[0]:.2f}, {out[1]:.2f}) "
            f"lies on the segment between them, {side} {'mat' if w >= 0.5 else 'cat'}.")


def weighted_average_explorer(weight_on_cat: float = 0.7) -> Explorer:
    """Lesson 00: slide the weight on "cat"; the output moves between "cat" and "mat".

    The vectors are the (animate, thing) coordinates of the toy words: cat = (1, 0),
    mat = (0, 1). The output is `w * cat + (1 - w) * mat`, the smallest attention there is.
    """
    weight_on_cat = _check_number(weight_on_cat, "weight_on_cat", 0.0, 1.0)
    controls = {"weight_on_cat": W.FloatSlider(value=round(round(weight_on_cat / 0.05) * 0.05, 2), min=0.0, max=1.0,
                                               step=0.05, description="weight on cat", readout_format=".2f",
                                               style={"description_width": "initial"})}
    return Explorer(controls, _weighted_average_figure(), describe=_describe_weighted_average,
                    caption="A weighted average of two word vectors")


# ---------------------------------------------------------------------------------------
# Lesson 01: softmax temperature
# ---------------------------------------------------------------------------------------

def _temperature_weights(query: int, temperature: float):
    """`(tokens, weights (T,))`: softmax of the query word's dot products with every word, over `temperature`."""
    tokens, x = toy_embed("cat")
    scores = (x @ x.T)[query].numpy()  # (T,) dot products of the query word with every word
    return tokens, softmax(scores / temperature)


def _temperature_figure():
    """The figure of `temperature_explorer`, built once; returns `render(query, temperature)`."""
    tokens, _ = toy_embed("cat")
    T = len(tokens)
    fig = viz.explorer_figure((6.4, 3.2))
    fig.subplots_adjust(left=0.1, right=0.9, bottom=0.24, top=0.86)
    ax = fig.add_subplot()
    bars = ax.vlines(range(T), 0, np.zeros(T), linewidth=20)  # bars as one artist: fast
    ax.set_xticks(range(T), tokens, rotation=30, ha="right")
    ax.set_xlim(-0.6, T - 0.4)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_ylabel("weight")
    uniform = ax.axhline(1 / T, color="0.6", linestyle=":", linewidth=1, zorder=1)  # under the bars, as pasted
    uniform_label = ax.text(1.01, 1 / T, "uniform", transform=ax.get_yaxis_transform(), ha="left", va="center",
                            color="0.45", fontsize=8)  # beside the axes: never under a bar
    widest_word = max((repr(t) for t in tokens), key=len)
    fixed, (temp_slot, max_slot, entropy_slot, query_slot) = text_row(
        fig, 0.5, 0.89, ["temperature ", slot("10.0:"), "  max weight ", slot("0.00"), ",  entropy ", slot("0.00"),
                          f" of {math.log(T):.2f} nats,  query ", slot(widest_word, color="#b35806")], fontsize=9)
    query_slot.prepare([repr(t) for t in tokens], fig.dpi)
    backdrop = Backdrop(fig, [ax, uniform, uniform_label, *fixed],
                        [bars, _axis_line(ax), temp_slot, max_slot, entropy_slot, query_slot])

    def render(query, temperature):
        backdrop.ensure("axes")
        _, weights = _temperature_weights(query, temperature)
        bars.set_segments([[(i, 0.0), (i, w)] for i, w in enumerate(weights)])
        bars.set_colors(["#e08214" if i == query else "#1b6ca8" for i in range(T)])
        temp_slot.set_text(f"{temperature:.1f}:")
        max_slot.set_text(f"{weights.max():.2f}")
        entropy_slot.set_text(f"{_entropy(weights):.2f}")
        query_slot.set_text(repr(tokens[query]))
        return fig

    return render


def _describe_temperature(query: int, temperature: float) -> str:
    tokens, weights = _temperature_weights(query, temperature)
    best = int(weights.argmax())
    return (f"Softmax weights of the query {tokens[query]!r} over the {len(tokens)} words at temperature "
            f"{temperature:.1f}: the largest, {weights[best]:.2f}, is on {tokens[best]!r}; entropy "
            f"{_entropy(weights):.2f} of at most {math.log(len(tokens)):.2f} nats (uniform).")


TEMPERATURES = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""The temperatures `temperature_explorer` offers (roughly evenly spaced on a log scale)."""


def temperature_explorer(query="it", temperature: float = 1.0) -> Explorer:
    """Lesson 01: how sharp is `softmax(scores / temperature)`?

    The scores are dot products of the toy vectors of "the cat sat on the mat because it
    was tired". Low temperature: almost all weight on the best match (here the word
    itself). High temperature: close to uniform.

    Args:
        query: the word (or its position) whose weights are shown.
        temperature: one of `TEMPERATURES` (0.1 to 10).
    """
    tokens, _ = toy_embed("cat")
    query = _query_index(query, tokens)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be one of {TEMPERATURES}, got {temperature!r} ({type(temperature).__name__})")
    if float(temperature) not in TEMPERATURES:
        raise ValueError(f"temperature must be one of {TEMPERATURES}, got {temperature}")
    controls = {
        "query": W.Dropdown(options=_token_options(tokens), value=query, description="query word"),
        "temperature": W.SelectionSlider(options=list(TEMPERATURES), value=float(temperature),
                                         description="temperature", continuous_update=True,
                                         style={"description_width": "initial"}),  # never "temperat..."
    }
    return Explorer(controls, _temperature_figure(), describe=_describe_temperature,
                    caption="Softmax temperature: how sharp are the weights?")


# ---------------------------------------------------------------------------------------
# Lesson 02: why divide by sqrt(d_k)
# ---------------------------------------------------------------------------------------

D_K_OPTIONS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_N_QUERIES, _N_KEYS = 64, 16
_SCORE_RANGE = 80.0  # the unscaled scores at d_k = 512 have a spread (std) of about 23


def _random_qk():
    """Fixed unit-variance queries and keys (64 queries, 16 keys, up to 512 dimensions)."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(_N_QUERIES, max(D_K_OPTIONS), generator=gen, dtype=torch.float64)
    k = torch.randn(_N_KEYS, max(D_K_OPTIONS), generator=gen, dtype=torch.float64)
    return q.numpy(), k.numpy()


_QK = _random_qk()


def scaling_stats(d_k: int, scaled: bool) -> dict[str, float]:
    """Score spread and softmax sharpness for random unit-variance `q`, `k` of width `d_k`.

    Uses the explorer's fixed 64 queries and 16 keys. Returns the standard deviation of
    the scores, the mean largest weight and the mean entropy (nats) of the 64 rows.
    """
    d_k = _check_d_k(d_k)
    scores, weights = _scaling_scores(d_k, scaled)  # (64, 16), (64, 16)
    return {"score_std": float(scores.std()), "max_weight": float(weights.max(axis=-1).mean()),
            "entropy": float(_entropy(weights).mean())}


def _check_d_k(d_k) -> int:
    if isinstance(d_k, bool) or not isinstance(d_k, numbers.Integral):
        raise TypeError(f"d_k must be one of {D_K_OPTIONS}, got {d_k!r} ({type(d_k).__name__})")
    if d_k not in D_K_OPTIONS:
        raise ValueError(f"d_k must be one of {D_K_OPTIONS}, got {d_k}")
    return int(d_k)


def _scaling_scores(d_k: int, scaled: bool):
    """`(scores (64, 16), weights (64, 16))` of the explorer's fixed queries and keys."""
    q, k = _QK[0][:, :d_k], _QK[1][:, :d_k]
    scores = q @ k.T / (math.sqrt(d_k) if scaled else 1.0)  # (64, d_k) @ (d_k, 16) -> (64, 16)
    return scores, softmax(scores, axis=-1)


_SCORE_EDGES = np.linspace(-_SCORE_RANGE, _SCORE_RANGE, 61)


def _score_counts(d_k: int, scaled: bool) -> np.ndarray:
    """`(60,)` histogram of the 64 x 16 scores over the explorer's fixed bins (clipped to +-80)."""
    scores, _ = _scaling_scores(d_k, scaled)
    return np.histogram(np.clip(scores.ravel(), -_SCORE_RANGE, _SCORE_RANGE), bins=_SCORE_EDGES)[0]


def _hist_label(scaled: bool) -> str:
    return "score" + (" q.k / sqrt(d_k)" if scaled else " q.k (unscaled)")


def _mode_text(scaled: bool) -> str:
    return "scaled by 1/sqrt(d_k)" if scaled else "not scaled"


def _scaling_figure():
    """The figure of `scaling_explorer`, built once; returns `render(d_k, scaled)`."""
    fig = viz.explorer_figure((7.2, 3.0))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.8, wspace=0.3)
    hist, bars = fig.subplots(1, 2)
    stairs = hist.stairs(np.zeros(len(_SCORE_EDGES) - 1), _SCORE_EDGES, fill=True, color="#1b6ca8")
    hist.set_xlim(-_SCORE_RANGE, _SCORE_RANGE)  # fixed, so the spread can be compared across d_k
    hist.xaxis.set_major_locator(MaxNLocator(5))
    hist.yaxis.set_major_locator(MaxNLocator(4))
    hist.set_ylabel("count")
    top = max(int(_score_counts(d, scaled).max()) for d in D_K_OPTIONS for scaled in (False, True))
    hist.set_ylim(0, 1.05 * top)  # one y-range for every d_k, like the x-range: heights compare too
    hist_label = hist.add_artist(GlyphLine(0.5, -0.15, hist.transAxes, ha="center", va="top"))
    hist_label.prepare([_hist_label(scaled) for scaled in (False, True)], fig.dpi)
    hist_fixed, (std_slot,) = text_row(fig, 0.5, 1.03, ["64 x 16 scores, std ", slot("00.0")], transform=hist.transAxes,
                                       fontsize=9)
    weight_bars = bars.vlines(range(_N_KEYS), 0, np.zeros(_N_KEYS), colors="#e08214", linewidth=10)
    bars.set_xlim(-0.8, _N_KEYS - 0.2)
    bars.set_xticks([0, 5, 10, 15])
    bars.set_ylim(0, 1.02)
    bars.set_yticks([0, 0.5, 1])
    bars.set_xlabel("key (sorted by weight)")
    bars.set_ylabel("weight")
    _title(bars, "weights of query 0", fontsize=9)
    fixed, (d_k_slot, max_slot, entropy_slot, mode_slot) = text_row(
        fig, 0.5, 0.93, ["d_k = ", slot("512:"), "  mean max weight ", slot("0.00"), ",  mean entropy ",
                         slot("0.00"), f" of {math.log(_N_KEYS):.2f} nats,  ", slot("scaled by 1/sqrt(d_k)")],
        fontsize=10)
    mode_slot.prepare([_mode_text(scaled) for scaled in (False, True)], fig.dpi)
    backdrop = Backdrop(fig, [hist, bars, *bars.texts, *hist_fixed, *fixed],
                        [stairs, _axis_line(hist), hist_label, std_slot, weight_bars, _axis_line(bars), d_k_slot,
                         max_slot, entropy_slot, mode_slot])

    def render(d_k, scaled):
        backdrop.ensure("axes")
        _, weights = _scaling_scores(d_k, scaled)  # (64, 16)
        stats = scaling_stats(d_k, scaled)
        stairs.set_data(_score_counts(d_k, scaled))
        hist_label.set_text(_hist_label(scaled))
        std_slot.set_text(f"{stats['score_std']:.1f}")
        order = np.argsort(weights[0])[::-1]
        weight_bars.set_segments([[(i, 0.0), (i, w)] for i, w in enumerate(weights[0][order])])
        d_k_slot.set_text(f"{d_k}:")
        max_slot.set_text(f"{stats['max_weight']:.2f}")
        entropy_slot.set_text(f"{stats['entropy']:.2f}")
        mode_slot.set_text(_mode_text(scaled))
        return fig

    return render


def _describe_scaling(d_k: int, scaled: bool) -> str:
    stats = scaling_stats(d_k, scaled)
    how = "divided by sqrt(d_k)" if scaled else "not scaled"
    return (f"d_k = {d_k}, scores {how}: the 64 x 16 scores spread with standard deviation "
            f"{stats['score_std']:.1f}; softmax puts on average {stats['max_weight']:.2f} on the best key "
            f"(entropy {stats['entropy']:.2f} of {math.log(_N_KEYS):.2f} nats).")


def scaling_explorer(d_k: int = 64, scaled: bool = False) -> Explorer:
    """Lesson 02: random unit-variance queries and keys; grow `d_k`, switch scaling on/off.

    Without scaling the scores' spread grows like sqrt(d_k) and softmax saturates (one
    weight near 1, entropy near 0); dividing by sqrt(d_k) keeps both steady.
    """
    d_k = _check_d_k(d_k)
    if not isinstance(scaled, bool):
        raise TypeError(f"scaled must be True or False, got {scaled!r} ({type(scaled).__name__})")
    controls = {
        "d_k": W.Dropdown(options=list(D_K_OPTIONS), value=d_k, description="d_k"),
        "scaled": W.Checkbox(value=scaled, description="divide by sqrt(d_k)"),
    }
    return Explorer(controls, _scaling_figure(), describe=_describe_scaling,
                    caption="Why divide the scores by sqrt(d_k)?")


# ---------------------------------------------------------------------------------------
# Lesson 03: self-attention between the words of a sentence
# ---------------------------------------------------------------------------------------

SCORE_MODES = ("queries and keys", "raw embeddings")


def toy_self_attention(sentence: str = "cat", scores_from: str = "queries and keys"):
    """Self-attention of a toy sentence with the hand-made projections.

    Args:
        sentence: a key of `SENTENCES` or a sentence of toy words.
        scores_from: "queries and keys" (`x W_q`, `x W_k`, scaled by 1/sqrt(5)) or
            "raw embeddings" (plain dot products `x x^T`, lesson 01).

    Returns:
        `(tokens, out (T, 9), weights (T, T))`.
    """
    if scores_from not in SCORE_MODES:
        raise ValueError(f"scores_from must be one of {SCORE_MODES}, got {scores_from!r}")
    tokens, x = toy_embed(sentence)
    if scores_from == "raw embeddings":
        out, weights = scaled_dot_product_attention(x, x, x, scale=1.0)  # (T, 9), (T, T)
    else:
        w_q, w_k, w_v = toy_projections()
        out, weights = scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)  # (T, 5), (T, 5), (T, 9) -> (T, 9)
    return tokens, out, weights


_MAX_WORDS = max(len(sentence.split()) for sentence in SENTENCES.values())
_QUERY_COLOUR, _LINE_COLOUR = "#b35806", "#1b6ca8"


def _scores_title(scores_from: str) -> str:
    return f"scores from {scores_from}"


def _self_attention_figure():
    """The figure of `self_attention_explorer`, built once; returns `(render, describe)`, both called
    with `(sentence, query, scores_from)`.

    Left: a BertViz-style view of one query (as `viz.attention_lines`): the words as
    queries on the left and keys on the right, a line to each key, thicker and darker
    with more weight. Right: the query's output, feature by feature.
    """
    fig = viz.explorer_figure((6.6, 3.3))
    fig.subplots_adjust(left=0.02, right=0.97, bottom=0.16, top=0.84, wspace=0.3)
    lines, feats = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    lines.set_axis_off()  # no ticks to lay out
    lines.set_xlim(-0.6, 1.6)
    line_rgb = to_rgb(_LINE_COLOUR)
    links = LineCollection([], colors=_LINE_COLOUR, capstyle="round")
    lines.add_collection(links)
    # token labels: each word's pixels rendered once (when the explorer is built) and blended in wherever it goes;
    # the query is bold and coloured, in a `Labels` of its own
    queries = Labels(lines.transData, fontsize=10, ha="right", va="center")
    query_label = Labels(lines.transData, fontsize=10, ha="right", va="center", color=_QUERY_COLOUR, fontweight="bold")
    keys = Labels(lines.transData, fontsize=10, ha="left", va="center")
    words = sorted({word for sentence in SENTENCES for word in toy_embed(sentence)[0]})
    for labels in (queries, query_label, keys):
        lines.add_artist(labels)
        labels.set_clip_on(False)
        labels.prepare(words, fig.dpi)
    headers = [lines.text(0, -0.9, "query", ha="center", va="top", color="0.35"),
               lines.text(1, -0.9, "key", ha="center", va="top", color="0.35")]
    lines_fixed, (top_slot,) = text_row(fig, 0.5, 1.03, ["weights of the query (bold): largest ", slot("0.00")],
                                        transform=lines.transAxes, fontsize=9)  # the words are in the labels
    bars = feats.hlines(range(len(FEATURES)), 0, np.zeros(len(FEATURES)), colors="#e08214", linewidth=9)
    feats.set_yticks(range(len(FEATURES)), FEATURES)
    feats.set_ylim(len(FEATURES) - 0.5, -0.5)
    feats.set_xlim(0, 1.05)
    feats.set_xticks([0, 0.5, 1])
    feats.set_xlabel("value")
    feats_title = feats.text(0.5, 1.03, "output of the query", transform=feats.transAxes, ha="center", va="baseline",
                             fontsize=9)
    title = fig.add_artist(GlyphLine(0.5, 0.98, fig.transFigure, fontsize=10, ha="center", va="top"))
    title.prepare([_scores_title(mode) for mode in SCORE_MODES], fig.dpi)
    backdrop = Backdrop(fig, [feats, *headers, *lines_fixed, feats_title],
                        [links, queries, query_label, keys, top_slot, bars, _axis_line(feats, "left"), title])

    def place(n: int) -> np.ndarray:
        return np.linspace(0, _MAX_WORDS - 1, n)[::-1] if n > 1 else np.array([(_MAX_WORDS - 1) / 2])

    lines.set_ylim(-0.8, _MAX_WORDS - 0.2)
    results = {}  # (sentence, scores_from) -> (tokens, out (T, 9), weights (T, T)) as numpy: 12 at most

    def attention(sentence, scores_from):
        if (sentence, scores_from) not in results:
            with one_torch_thread():  # torch's second thread spun ~8 ms of CPU after these tiny products
                tokens, out, weights = toy_self_attention(sentence, scores_from)
            results[sentence, scores_from] = tokens, out.numpy(), weights.numpy()
        return results[sentence, scores_from]

    def render(sentence, query, scores_from):
        tokens, out, w = attention(sentence, scores_from)  # (T, 9), (T, T)
        y = place(len(tokens))
        backdrop.ensure("axes")
        others = [i for i in range(len(tokens)) if i != query]
        queries.set_labels([tokens[i] for i in others], np.full(len(others), -0.04), y[others])
        query_label.set_labels([tokens[query]], [-0.04], [y[query]])
        keys.set_labels(tokens, np.full(len(tokens), 1.04), y)
        row = w[query]  # (T,)
        peak = max(float(row.max()), 1e-12)
        shown = np.flatnonzero(row >= 1e-3)
        links.set_segments([[(0, y[query]), (1, y[j])] for j in shown])
        links.set_linewidths(0.5 + 4.0 * row[shown])
        links.set_colors([(*line_rgb, float(min(1.0, 0.15 + 0.85 * row[j] / peak))) for j in shown])
        top_slot.set_text(f"{row.max():.2f}")
        bars.set_segments([[(0.0, f), (float(v), f)] for f, v in enumerate(out[query])])
        title.set_text(_scores_title(scores_from))  # the sentence is in the labels
        return fig

    def describe(sentence, query, scores_from) -> str:
        tokens, out, w = attention(sentence, scores_from)
        row, features = w[query], out[query]  # (T,), (9,)
        best, second = np.argsort(row)[::-1][:2]
        strongest = np.argsort(features)[::-1][:2]
        return (f"In {' '.join(tokens)!r} (scores from {scores_from}), the query {tokens[query]!r} puts "
                f"{row[best]:.2f} on {tokens[best]!r} and {row[second]:.2f} on {tokens[second]!r}; its output is "
                f"strongest in {FEATURES[strongest[0]]} ({features[strongest[0]]:.2f}) and "
                f"{FEATURES[strongest[1]]} ({features[strongest[1]]:.2f}).")

    return render, describe


def self_attention_explorer(sentence: str = "cat", query="it", scores_from: str = "queries and keys") -> Explorer:
    """Lesson 03: pick a sentence and a query word; see its weights over every word as
    lines (thicker = more weight) and its output, feature by feature.

    Args:
        sentence: a key of `SENTENCES` ("cat", "animal", "river bank", "money bank",
            "dog bites man", "man bites dog").
        query: the query word (first occurrence) or its position.
        scores_from: "queries and keys" (hand-made W_q, W_k) or "raw embeddings".
    """
    if sentence not in SENTENCES:
        raise ValueError(f"sentence must be one of {list(SENTENCES)}, got {sentence!r}")
    if scores_from not in SCORE_MODES:
        raise ValueError(f"scores_from must be one of {SCORE_MODES}, got {scores_from!r}")
    tokens, _ = toy_embed(sentence)
    query = _query_index(query, tokens)
    controls = {
        "sentence": W.Dropdown(options=list(SENTENCES), value=sentence, description="sentence"),
        "query": W.Dropdown(options=_token_options(tokens), value=query, description="query word"),
        "scores_from": W.RadioButtons(options=list(SCORE_MODES), value=scores_from, description="scores from"),
    }

    def before_render(changed: str, controls: dict) -> None:
        if changed != "sentence":
            return
        words = toy_embed(controls["sentence"].value)[0]
        keep = controls["query"].value
        controls["query"].options = _token_options(words)
        controls["query"].value = words.index("it") if "it" in words else min(keep, len(words) - 1)

    render, describe = _self_attention_figure()
    return Explorer(controls, render, before_render=before_render, describe=describe,
                    caption="Self-attention: every word looks at every word")
