"""Exercises of lesson 02 (queries, keys and values): the scaled scores matrix and scaled
dot-product attention, checked against `attn_core.scaled_dot_product_attention`.

The first case has T, S, d_k and d_v all different, so scaling by the wrong width (or not
at all) and mixing up queries and keys give different outputs that the checkers can name.
"""

from __future__ import annotations

import math

import torch

from ..attention import scaled_dot_product_attention
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_attention_scores", "check_scaled_dot_product_attention"]


def _qkv_cases(seed: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(name, q, k, v): T != S != d_k != d_v first, then T == S, d_k = 1, (B, H, T, D), large scores."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    return [
        ("3 queries, 5 keys (T != S), d_k = 4, d_v = 6", r(3, 4), r(5, 4), r(5, 6)),
        ("4 queries, 4 keys, d_k = d_v = 8", r(4, 8), r(4, 8), r(4, 8)),
        ("d_k = 1", r(2, 1), r(3, 1), r(3, 2)),
        ("batch and heads (B, H, T, D) = (2, 3, 4, 8), S = 6", r(2, 3, 4, 8), r(2, 3, 6, 8), r(2, 3, 6, 5)),
        ("large scores (a naive exp overflows)", r(3, 16, scale=12.0), r(4, 16, scale=12.0), r(4, 2)),
    ]


def _scores(q, k, scale):
    return q @ k.mT * scale  # (..., T, d_k) x (..., d_k, S) -> (..., T, S)


_WHY_SQRT = ("Dividing by sqrt(d_k) keeps the scores' spread near 1 whatever the width of the vectors, because a "
             "dot product of d_k random terms has a standard deviation of about sqrt(d_k).")

MISTAKES_ATTENTION_SCORES = (
    Mistake("not scaled", lambda q, k: _scores(q, k, 1.0),
            "these are the raw dot products. " + _WHY_SQRT),
    Mistake("divided by d_k instead of sqrt(d_k)", lambda q, k: _scores(q, k, 1 / q.shape[-1]),
            "you divided by d_k itself, which shrinks the scores too much as the width grows. " + _WHY_SQRT),
    Mistake("scaled by sqrt(S), the number of keys", lambda q, k: _scores(q, k, k.shape[-2] ** -0.5),
            "you divided by the square root of the number of keys. The spread of one dot product depends on the "
            "width of the vectors, not on how many keys there are: use the query/key width."),
    Mistake("scaled by sqrt(T), the number of queries", lambda q, k: _scores(q, k, q.shape[-2] ** -0.5),
            "you divided by the square root of the number of queries (a shape[0] or shape[-2] instead of the "
            "last axis). The scaling depends on the width of the vectors."),
    Mistake("multiplied by sqrt(d_k)", lambda q, k: _scores(q, k, q.shape[-1] ** 0.5),
            "you multiplied by sqrt(d_k): the scores grow instead of being brought back to a spread near 1."),
    Mistake(".T on a batch", lambda q, k: q @ k.T / math.sqrt(q.shape[-1]),
            "on a tensor with batch or head axes, .T reverses *all* the axes, so those axes move too and the "
            "product fails. Only the last two axes (keys and features) should swap."),
    Mistake("keys times queries", lambda q, k: k @ q.mT / math.sqrt(q.shape[-1]),
            "your matrix has one row per key: you computed k q^T. Row i must belong to query i (shape (..., T, S)), "
            "so that a softmax over the last axis weighs the keys for each query."),
)


def check_attention_scores(fn, *, verbose: bool = True) -> Result:
    """Check `attention_scores(q, k)`: `q k^T / sqrt(d_k)`, shape `(..., T, S)`."""
    cases = []
    for name, q, k, _ in _qkv_cases(3):
        expected = (q @ k.mT) / math.sqrt(q.shape[-1])  # (..., T, d_k) x (..., d_k, S) -> (..., T, S)
        cases.append(Case(name, (q, k), expected=expected, rtol=1e-4))
    return run_checks(
        "attention_scores", fn, cases, verbose=verbose, mistakes=MISTAKES_ATTENTION_SCORES,
        hint="one row per query and one column per key, (..., T, S); each entry is a dot product, scaled by a "
             "number that depends on the vectors' width. Transpose only the last two axes so batch axes survive.",
    )


def _sdpa(scale=None, dim=-1, softmax=torch.softmax, order=("out", "weights")):
    def wrong(q, k, v):
        s = q.shape[-1] ** -0.5 if scale is None else scale(q, k, v)
        weights = softmax(_scores(q, k, s), dim)  # (..., T, S)
        out = weights @ v  # (..., T, S) x (..., S, d_v) -> (..., T, d_v)
        found = {"out": out, "weights": weights}
        return found[order[0]] if len(order) == 1 else tuple(found[o] for o in order)
    return wrong


def _scaled_after(q, k, v):
    weights = torch.softmax(q @ k.mT, dim=-1) / q.shape[-1] ** 0.5  # (..., T, S)
    return weights @ v, weights


def _dot_T(q, k, v):
    weights = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)  # fails once q, k have batch axes
    return weights @ v, weights


def _naive_softmax(x, dim):
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)


MISTAKES_SCALED_DOT_PRODUCT_ATTENTION = (
    Mistake("not scaled", _sdpa(scale=lambda q, k, v: 1.0),
            "the scores were not scaled. " + _WHY_SQRT + " Unscaled, the softmax saturates towards one key."),
    Mistake("divided by d_k instead of sqrt(d_k)", _sdpa(scale=lambda q, k, v: 1 / q.shape[-1]),
            "you divided the scores by d_k itself: the weights come out too flat. " + _WHY_SQRT),
    Mistake("scaled by sqrt(S), the number of keys", _sdpa(scale=lambda q, k, v: k.shape[-2] ** -0.5),
            "you divided by the square root of the number of keys; the scaling depends on the query/key width."),
    Mistake("scaled by sqrt(d_v), the value width", _sdpa(scale=lambda q, k, v: v.shape[-1] ** -0.5),
            "you divided by the square root of the *value* width. The scores are dot products of queries with "
            "keys, so their spread depends on the query/key width."),
    Mistake("softmax over the queries", _sdpa(dim=-2),
            "your weights sum to 1 down each column (over the queries). Each query distributes its attention "
            "over the keys: every row must sum to 1."),
    Mistake("no softmax", _sdpa(softmax=lambda x, dim: x),
            "the weights are the scaled scores themselves: without a softmax they can be negative and do not sum "
            "to 1, so the output is not a weighted average of the values."),
    Mistake("softmax that overflows", _sdpa(softmax=_naive_softmax),
            "right for small scores, but exp of a large score overflows to inf and inf / inf gives nan. Use a "
            "softmax that is stable for large inputs (lesson 01)."),
    Mistake("scaled after the softmax", lambda q, k, v: _scaled_after(q, k, v),
            "you divided the *weights* by sqrt(d_k) after the softmax, so they no longer sum to 1. The scaling "
            "belongs to the scores, before the softmax, where it controls how peaked the weights are."),
    Mistake(".T on a batch", lambda q, k, v: _dot_T(q, k, v),
            "on a tensor with batch or head axes, .T reverses *all* the axes, so those axes move too and the "
            "product fails. Only the last two axes (keys and features) should swap."),
    Mistake("only the output returned", _sdpa(order=("out",)),
            "you returned only the output; the exercise asks for the pair (out, weights)."),
    Mistake("(weights, out) instead of (out, weights)", _sdpa(order=("weights", "out")),
            "both tensors are right but in the wrong order: return the output first, then the weights."),
)


def check_scaled_dot_product_attention(fn, *, verbose: bool = True) -> Result:
    """Check `scaled_dot_product_attention(q, k, v) -> (out, weights)` against the package."""
    cases = [Case(name, (q, k, v), expected=scaled_dot_product_attention(q, k, v), rtol=1e-4)
             for name, q, k, v in _qkv_cases(4)]
    return run_checks(
        "scaled_dot_product_attention", fn, cases, verbose=verbose, mistakes=MISTAKES_SCALED_DOT_PRODUCT_ATTENTION,
        hint="scores (one row per query, one column per key), scaled by a number that depends on the query/key "
             "width; weights that are positive and sum to 1 for each query, computed stably; the output averages "
             "the values with those weights. Return (out, weights).",
    )
