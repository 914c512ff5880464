"""Exercises for lesson 06 (masked attention): build a causal mask, build a padding mask,
apply a mask to scores.

Each checker compares the learner's function with `attn_core`'s own (`causal_mask`,
`padding_mask`, and the weights of `scaled_dot_product_attention`) on several cases,
edge cases included. Masks must be boolean (True = may attend): a 0/1 integer or float
tensor is a different thing to PyTorch (`F.scaled_dot_product_attention` *adds* a float
mask to the scores), so the mask checkers also check the dtype.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..attention import scaled_dot_product_attention
from ..masks import causal_mask, padding_mask
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_build_causal_mask", "check_build_padding_mask", "check_masked_softmax"]


def _grid(T, S):
    S = T if S is None else S
    return torch.arange(T)[:, None], torch.arange(S)[None, :], S  # (T, 1) queries, (1, S) keys


def _causal(rule):
    def wrong(T, S=None):
        i, j, S = _grid(T, S)
        return rule(i, j, S - T)  # (T, S)
    return wrong


MISTAKES_BUILD_CAUSAL_MASK = (
    Mistake("aligned to the top left", lambda T, S=None: torch.ones(T, T if S is None else S, dtype=torch.bool).tril(),
            "right when S == T, but with cached keys (S > T) the T queries are the *last* T positions: query i "
            "sits at position i + S - T and may see every key up to there (the mask is aligned to the end)."),
    Mistake("diagonal left out", _causal(lambda i, j, off: j < i + off),
            "a token may not see itself in your mask (and a single token sees nothing at all). A token may attend "
            "to itself and to every earlier position."),
    Mistake("one future key allowed", _causal(lambda i, j, off: j <= i + off + 1),
            "your diagonal is one step too far to the right: each query may also see the *next* token, which is "
            "exactly what a causal mask must hide (the model would learn to copy the answer)."),
    Mistake("mask inverted (True = blocked)", _causal(lambda i, j, off: j > i + off),
            "True marks the *blocked* keys in your mask: that is nn.MultiheadAttention's attn_mask convention. This "
            "course (like F.scaled_dot_product_attention) uses True = may attend."),
    Mistake("the future allowed, the past blocked", _causal(lambda i, j, off: j >= i + off),
            "your mask lets each query see itself and the *later* tokens. Causal attention sees the earlier ones."),
    Mistake("S ignored", lambda T, S=None: torch.ones(T, T, dtype=torch.bool).tril(),
            "your mask is always T x T; with S keys it must have one column per key: (T, S)."),
    Mistake("an additive bias instead of a mask", _causal(
        lambda i, j, off: torch.zeros(i.shape[0], j.shape[1]).masked_fill(j > i + off, float("-inf"))),
            "you returned the additive bias (0 where allowed, -inf where blocked). This exercise asks for the "
            "boolean mask itself, True = may attend; the bias comes from it later."),
)


def check_build_causal_mask(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `build_causal_mask(T, S=None)`: a boolean `(T, S)` mask, True where query `i`
    may attend to key `j`, i.e. `j <= i + (S - T)` (aligned to the end when `S > T`).
    Every case checks that the mask is a `torch.bool` tensor."""
    cases = [
        Case("T=4", args=(4,), expected=causal_mask(4)),
        Case("T=1", args=(1,), expected=causal_mask(1)),
        Case("T=S=3 given explicitly", args=(3, 3), expected=causal_mask(3, 3)),
        Case("cached keys: T=2 new queries, S=5 keys", args=(2, 5), expected=causal_mask(2, 5)),
        Case("one new query, S=4 keys", args=(1, 4), expected=causal_mask(1, 4)),
    ]
    hint = ("query i may see key j when j is not in its future; with S > T the queries are the last T positions. "
            "Build the (T, S) grid from a column of query positions and a row of key positions. The mask is a "
            "torch.bool tensor, True = may attend.")
    return run_checks("build_causal_mask", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_BUILD_CAUSAL_MASK)


def _pad(rule=lambda j, n: j < n, index=(slice(None), None, None, slice(None))):
    def wrong(lengths, S):
        j, n = torch.arange(S)[None, :], torch.as_tensor(lengths)[:, None]  # (1, S), (B, 1)
        return rule(j, n)[index]  # (B, S) -> ...
    return wrong


MISTAKES_BUILD_PADDING_MASK = (
    Mistake("off by one", _pad(lambda j, n: j <= n),
            "your mask lets each sequence see one key too many: a sequence of length n has real tokens at "
            "positions 0 .. n - 1."),
    Mistake("mask inverted (True = padding)", _pad(lambda j, n: j >= n),
            "True marks the *padding* in your mask: that is nn.MultiheadAttention's key_padding_mask convention. "
            "This course uses True = may attend (a real token)."),
    Mistake("no head and query axes", _pad(index=(slice(None), slice(None))),
            "your mask is (B, S). Scores are (B, H, T, S), and broadcasting lines up axes from the right, so a "
            "(B, S) mask would meet the (T, S) axes: it needs singleton head and query axes, (B, 1, 1, S)."),
    Mistake("one singleton axis missing", _pad(index=(slice(None), None, slice(None))),
            "your mask is (B, 1, S). Against (B, H, T, S) scores broadcasting lines it up as (1, B, 1, S): the "
            "batch axis would meet the head axis. Use (B, 1, 1, S)."),
    Mistake("queries masked instead of keys", _pad(index=(slice(None), None, slice(None), None)),
            "your mask is (B, 1, S, 1), which blocks *queries*. Padding blocks keys: the last axis of the mask "
            "is the key axis."),
)


def check_build_padding_mask(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `build_padding_mask(lengths, S)`: boolean `(B, 1, 1, S)`, True where key `j`
    of sequence `b` is a real token (`j < lengths[b]`), False on padding. Every case
    checks that the mask is a `torch.bool` tensor."""
    cases = [
        Case("lengths [2, 3], S=3", args=([2, 3], 3), expected=padding_mask([2, 3], 3)),
        Case("one sequence, no padding", args=([4], 4), expected=padding_mask([4], 4)),
        Case("an empty sequence: lengths [0, 4, 2], S=5", args=([0, 4, 2], 5), expected=padding_mask([0, 4, 2], 5)),
        Case("lengths given as a tensor", args=(torch.tensor([3, 1]), 6), expected=padding_mask([3, 1], 6)),
    ]
    hint = ("key j of sequence b is a real token when it comes before the end of that sequence; True marks real "
            "tokens (PyTorch SDPA's convention). The mask must broadcast against (B, H, T, S) scores, and lengths "
            "may come as a list or a tensor.")
    return run_checks("build_padding_mask", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_BUILD_PADDING_MASK)


def _reference_weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """attn_core's masked softmax: SDPA with `q = scores`, `k = I` and scale 1 gives `scores` back."""
    eye = torch.eye(scores.shape[-1], dtype=scores.dtype)  # (S, S)
    return scaled_dot_product_attention(scores, eye, eye, mask=mask, scale=1.0)[1]  # (..., T, S)


_NEG_INF = float("-inf")
_INVERTED = ("you blocked the keys whose mask is True. In this course True means *may attend* (PyTorch SDPA's "
             "convention; nn.MultiheadAttention uses the opposite).")


def _naive_masked(scores, mask, clean=True):
    e = torch.exp(scores.masked_fill(~mask, _NEG_INF))  # no maximum subtracted: overflows
    weights = e / e.sum(-1, keepdim=True)
    return torch.where(mask, weights, 0.0) if clean else weights


_OVERFLOW = ("right for small scores, but exp of a large score overflows to inf (inf / inf = nan) and exp of a very "
             "negative one underflows to 0 (0 / 0 = nan). Use a softmax that is stable for large inputs (lesson 01).")


MISTAKES_MASKED_SOFTMAX = (
    Mistake("mask ignored", lambda s, m: torch.softmax(s, -1),
            "your weights are a plain softmax: blocked keys still get weight. Blocked keys must get weight "
            "exactly 0."),
    Mistake("mask inverted", lambda s, m: torch.softmax(s.masked_fill(m, _NEG_INF), -1),
            _INVERTED),
    Mistake("mask inverted", lambda s, m: torch.where(~m, torch.softmax(s.masked_fill(m, _NEG_INF), -1), 0.0),
            _INVERTED),
    Mistake("scores multiplied by the mask", lambda s, m: torch.softmax(s * m, -1),
            "multiplying the scores by the mask sets blocked scores to 0, not to minus infinity: exp(0) = 1, so "
            "blocked keys still get weight. Blocked keys need a score that the softmax turns into exactly 0."),
    Mistake("zeroed after the softmax", lambda s, m: torch.softmax(s, -1) * m,
            "you set the blocked weights to 0 after the softmax, so the remaining weights no longer sum to 1. "
            "Block the keys *before* normalising."),
    Mistake("nan in fully masked rows", lambda s, m: torch.softmax(s.masked_fill(~m, _NEG_INF), -1),
            "right everywhere except a row whose keys are all blocked: the softmax of all -inf is 0 / 0 = nan. "
            "Such a row must give weights that are all 0 (as PyTorch's SDPA and attn_core do)."),
    Mistake("-1e9 instead of -inf", lambda s, m: torch.softmax(s.masked_fill(~m, -1e9), -1),
            "a large negative number is not -inf: when every key of a row is blocked, all its scores equal -1e9 "
            "and the softmax spreads the weight evenly over the blocked keys (and with scores around 1e9 the "
            "blocked keys would get weight too). Blocked keys need weight exactly 0."),
    Mistake("softmax over the queries", lambda s, m: torch.where(m, torch.softmax(s.masked_fill(~m, _NEG_INF), -2), 0.0).nan_to_num(),
            "you normalised down the columns (dim=-2). Each query's weights over the keys sum to 1: normalise "
            "along the last axis."),
    Mistake("softmax that overflows", _naive_masked, _OVERFLOW),
    Mistake("softmax that overflows", lambda s, m: _naive_masked(s, m, clean=False), _OVERFLOW),
)


def check_masked_softmax(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `masked_softmax(scores, mask)`: softmax over the last axis where blocked keys
    (mask False) get weight exactly 0, and a row with every key blocked gets all zeros
    (as `scaled_dot_product_attention` and PyTorch's SDPA do), not nan."""
    gen = torch.Generator().manual_seed(6)
    square = torch.randn(4, 4, generator=gen)
    wide = torch.randn(2, 5, generator=gen)
    batch = torch.randn(2, 3, 4, 4, generator=gen)  # (B, H, T, S)
    dead = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    cases = [
        Case("causal mask on (4, 4) scores", args=(square, causal_mask(4)),
             expected=lambda: _reference_weights(square, causal_mask(4))),
        Case("no key blocked", args=(square, torch.ones(4, 4, dtype=torch.bool)),
             expected=lambda: _reference_weights(square, torch.ones(4, 4, dtype=torch.bool))),
        Case("T != S: cached keys, causal_mask(2, 5)", args=(wide, causal_mask(2, 5)),
             expected=lambda: _reference_weights(wide, causal_mask(2, 5))),
        Case("batch (2, 3, 4, 4) with a padding mask (2, 1, 1, 4)", args=(batch, padding_mask([4, 2], 4)),
             expected=lambda: _reference_weights(batch, padding_mask([4, 2], 4))),
        Case("large scores (x 1e4)", args=(square * 1e4, causal_mask(4)),
             expected=lambda: _reference_weights(square * 1e4, causal_mask(4))),
        Case("a fully masked row (query 1 may attend to nothing)", args=(square[:3, :3], dead),
             expected=lambda: _reference_weights(square[:3, :3], dead)),
    ]
    hint = ("blocked keys (mask False) must end with weight exactly 0 and each row's remaining weights sum to 1; a "
            "row whose keys are all blocked gives all zeros, not nan. The mask broadcasts against the scores and "
            "the scores may be large.")
    return run_checks("masked_softmax", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_MASKED_SOFTMAX)
