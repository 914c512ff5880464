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
from matplotlib.ticker import MaxNLocator

from .. import viz
from ..attention import scaled_dot_product_attention, softmax
from ..toy import FEATURES, SENTENCES, toy_embed, toy_projections
from ._base import Explorer

__all__ = ["weighted_average_explorer", "temperature_explorer", "scaling_explorer", "self_attention_explorer"]



def _entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of `weights` (0 log 0 = 0)."""
    w = np.clip(weights, 1e-30, 1.0)
    return -(weights * np.log(w)).sum(axis=-1)


def _title(ax, text: str, fontsize: float = 9) -> None:
    """An axes title drawn as plain text: `ax.set_title` re-measures every tick label to
    place itself, which costs ~35 ms per axes on each render."""
    ax.text(0.5, 1.02, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=fontsize)


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

def _render_weighted_average(weight_on_cat: float):
    w = float(weight_on_cat)
    cat, mat = np.array([1.0, 0.0]), np.array([0.0, 1.0])  # (animate, thing) of the toy vectors
    out = w * cat + (1 - w) * mat
    fig = viz.new_figure(figsize=(4.4, 3.4))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.14, right=0.96, bottom=0.14, top=0.88)
    ax.plot([1, 0], [0, 1], color="0.75", linestyle="--", zorder=1)
    ax.scatter([1, 0], [0, 1], s=[40 + 160 * w, 40 + 160 * (1 - w)], color="#1b6ca8", zorder=2)
    ax.annotate(f"cat (weight {w:.2f})", (1, 0), textcoords="offset points", xytext=(0, 10), ha="right")
    ax.annotate(f"mat (weight {1 - w:.2f})", (0, 1), textcoords="offset points", xytext=(10, -4), ha="left")
    ax.scatter([out[0]], [out[1]], s=160, marker="*", color="#e08214", zorder=3)
    ax.annotate(f"output ({out[0]:.2f}, {out[1]:.2f})", out, textcoords="offset points", xytext=(-10, -16),
                ha="right", color="#b35806")
    ax.set_xlim(-0.15, 1.25)
    ax.set_ylim(-0.2, 1.25)
    ax.set_xticks([0, 0.5, 1])
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlabel("animate")
    ax.set_ylabel("thing")
    _title(ax, f"output = {w:.2f} x cat + {1 - w:.2f} x mat", fontsize=10)
    return fig


def weighted_average_explorer(weight_on_cat: float = 0.7) -> Explorer:
    """Lesson 00: slide the weight on "cat"; the output moves between "cat" and "mat".

    The vectors are the (animate, thing) coordinates of the toy words: cat = (1, 0),
    mat = (0, 1). The output is `w * cat + (1 - w) * mat`, the smallest attention there is.
    """
    weight_on_cat = _check_number(weight_on_cat, "weight_on_cat", 0.0, 1.0)
    controls = {"weight_on_cat": W.FloatSlider(value=round(round(weight_on_cat / 0.05) * 0.05, 2), min=0.0, max=1.0,
                                               step=0.05, description="weight on cat", readout_format=".2f",
                                               style={"description_width": "initial"})}
    return Explorer(controls, _render_weighted_average, caption="A weighted average of two word vectors")


# ---------------------------------------------------------------------------------------
# Lesson 01: softmax temperature
# ---------------------------------------------------------------------------------------

def _render_temperature(query: int, temperature: float):
    tokens, x = toy_embed("cat")
    scores = (x @ x.T)[query].numpy()  # (T,) dot products of the query word with every word
    weights = softmax(scores / temperature)
    fig = viz.new_figure(figsize=(6.4, 3.2))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.24, top=0.86)
    colors = ["#e08214" if i == query else "#1b6ca8" for i in range(len(tokens))]
    ax.vlines(range(len(tokens)), 0, weights, colors=colors, linewidth=22)  # bars as one artist: fast
    ax.set_xticks(range(len(tokens)), tokens, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(tokens) - 0.4)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_ylabel(f"weight of {tokens[query]!r}")
    ax.axhline(1 / len(tokens), color="0.6", linestyle=":", linewidth=1)
    ax.text(len(tokens) - 0.5, 1 / len(tokens) + 0.02, "uniform", ha="right", va="bottom", color="0.45", fontsize=8)
    _title(ax, f"query {tokens[query]!r}, temperature {temperature:.1f}: max weight {weights.max():.2f}, "
                 f"entropy {_entropy(weights):.2f} of {math.log(len(tokens)):.2f} nats", fontsize=9)
    return fig


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
                                         description="temperature", continuous_update=True),
    }
    return Explorer(controls, _render_temperature, caption="Softmax temperature: how sharp are the weights?")


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
    q, k = _QK[0][:, :d_k], _QK[1][:, :d_k]
    scores = q @ k.T / (math.sqrt(d_k) if scaled else 1.0)  # (64, 16)
    weights = softmax(scores, axis=-1)
    return {"score_std": float(scores.std()), "max_weight": float(weights.max(axis=-1).mean()),
            "entropy": float(_entropy(weights).mean())}


def _check_d_k(d_k) -> int:
    if isinstance(d_k, bool) or not isinstance(d_k, numbers.Integral):
        raise TypeError(f"d_k must be one of {D_K_OPTIONS}, got {d_k!r} ({type(d_k).__name__})")
    if d_k not in D_K_OPTIONS:
        raise ValueError(f"d_k must be one of {D_K_OPTIONS}, got {d_k}")
    return int(d_k)


def _render_scaling(d_k: int, scaled: bool):
    q, k = _QK[0][:, :d_k], _QK[1][:, :d_k]
    scores = q @ k.T / (math.sqrt(d_k) if scaled else 1.0)  # (64, 16)
    weights = softmax(scores, axis=-1)
    stats = scaling_stats(d_k, scaled)
    fig = viz.new_figure(figsize=(7.2, 3.0))
    hist, bars = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.17, top=0.8, wspace=0.3)
    counts, edges = np.histogram(np.clip(scores.ravel(), -_SCORE_RANGE, _SCORE_RANGE), bins=np.linspace(-_SCORE_RANGE, _SCORE_RANGE, 61))
    hist.stairs(counts, edges, fill=True, color="#1b6ca8")  # one artist instead of 30 bars: fast
    hist.set_ylim(0, None)
    hist.set_xlim(-_SCORE_RANGE, _SCORE_RANGE)  # fixed, so the spread can be compared across d_k
    hist.xaxis.set_major_locator(MaxNLocator(5))
    hist.yaxis.set_major_locator(MaxNLocator(4))
    hist.set_xlabel("score" + (" q.k / sqrt(d_k)" if scaled else " q.k (unscaled)"))
    hist.set_ylabel("count")
    _title(hist, f"64 x 16 scores, std {stats['score_std']:.1f}", fontsize=9)
    order = np.argsort(weights[0])[::-1]
    bars.vlines(range(_N_KEYS), 0, weights[0][order], colors="#e08214", linewidth=10)
    bars.set_xlim(-0.8, _N_KEYS - 0.2)
    bars.set_xticks([0, 5, 10, 15])
    bars.set_ylim(0, 1.02)
    bars.set_yticks([0, 0.5, 1])
    bars.set_xlabel("key (sorted by weight)")
    bars.set_ylabel("weight")
    _title(bars, "weights of query 0", fontsize=9)
    fig.suptitle(f"d_k = {d_k}, {'scaled by 1/sqrt(d_k)' if scaled else 'not scaled'}: mean max weight "
                 f"{stats['max_weight']:.2f}, mean entropy {stats['entropy']:.2f} of {math.log(_N_KEYS):.2f} nats",
                 fontsize=10)
    return fig


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
    return Explorer(controls, _render_scaling, caption="Why divide the scores by sqrt(d_k)?")


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


def _render_self_attention(sentence: str, query: int, scores_from: str):
    tokens, out, weights = toy_self_attention(sentence, scores_from)
    w = weights.numpy()
    fig = viz.new_figure(figsize=(7.2, 3.6))
    lines, feats = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.2, top=0.85, wspace=0.35)
    one_row = np.zeros_like(w)
    one_row[query] = w[query]  # only the chosen query's lines; the other rows fall under min_weight
    viz.attention_lines(one_row, tokens, ax=lines, min_weight=1e-3)
    lines.texts[query].set_color("#b35806")  # the query's label on the left (texts: T queries, then S keys)
    lines.texts[query].set_fontweight("bold")
    lines.set_axis_off()  # no ticks to lay out: a faster render
    lines.text(0, -0.9, "query", ha="center", va="top", color="0.35")
    lines.text(1, -0.9, "key", ha="center", va="top", color="0.35")
    best = int(w[query].argmax())
    _title(lines, f"weights of {tokens[query]!r}: top {tokens[best]!r} {w[query, best]:.2f}", fontsize=9)
    feats.hlines(range(len(FEATURES)), 0, out[query].numpy(), colors="#e08214", linewidth=9)  # one artist: fast
    feats.set_yticks(range(len(FEATURES)), FEATURES)
    feats.set_ylim(len(FEATURES) - 0.5, -0.5)
    feats.set_xlim(0, 1.05)
    feats.set_xticks([0, 0.5, 1])
    feats.set_xlabel("value")
    _title(feats, f"output of {tokens[query]!r}", fontsize=9)
    fig.suptitle(f"{' '.join(tokens)!r}, scores from {scores_from}", fontsize=10)
    return fig


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
        "scores_from": W.ToggleButtons(options=list(SCORE_MODES), value=scores_from, description="scores from"),
    }

    def before_render(changed: str, controls: dict) -> None:
        if changed != "sentence":
            return
        words = toy_embed(controls["sentence"].value)[0]
        keep = controls["query"].value
        controls["query"].options = _token_options(words)
        controls["query"].value = words.index("it") if "it" in words else min(keep, len(words) - 1)

    return Explorer(controls, _render_self_attention, before_render=before_render,
                    caption="Self-attention: every word looks at every word")
