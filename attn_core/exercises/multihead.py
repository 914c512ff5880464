"""Exercises for lesson 04 (multi-head attention): split and merge heads, count parameters.

Each checker compares the learner's function with `attn_core.multihead`'s own.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..multihead import merge_heads, parameter_count, split_heads
from ._check import Case, Result, run_checks

__all__ = ["check_split_heads", "check_merge_heads", "check_count_parameters"]


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def check_split_heads(fn: Callable) -> Result:
    """Check `fn(x, n_heads)`: `(B, T, d_model) -> (B, H, T, d_head)`, head `h` owning the
    features `h*d_head : (h+1)*d_head`, against `attn_core.split_heads`."""
    cases = []
    for name, (B, T, d_model, H), seed in [
        ("B=2, T=5, d_model=12, 3 heads", (2, 5, 12, 3), 0),
        ("B=1, T=4, d_model=8, 2 heads", (1, 4, 8, 2), 1),
        ("one head: (B, T, d) -> (B, 1, T, d)", (2, 3, 6, 1), 2),
        ("d_head = 1: as many heads as features", (2, 3, 6, 6), 3),
        ("T=1, one token", (3, 1, 8, 4), 4),
        ("the article's 768 = 12 x 64", (1, 9, 768, 12), 5),
    ]:
        x = _randn(B, T, d_model, seed=seed)
        cases.append(Case(name, args=(x, H), expected=lambda x=x, H=H: split_heads(x, H).clone()))
    hint = ("reshape the last axis into (n_heads, d_head), which gives (B, T, H, d_head), then swap the T and H axes "
            "(x.transpose(1, 2)). A plain x.reshape(B, H, T, d_head) has the right shape but mixes tokens into heads.")
    return run_checks("split_heads", fn, cases, hint)


def check_merge_heads(fn: Callable) -> Result:
    """Check `fn(x)`: `(B, H, T, d_head) -> (B, T, H * d_head)`, the inverse of
    `split_heads`, against `attn_core.merge_heads`."""
    cases = []
    for name, (B, H, T, d_head), seed in [
        ("B=2, 3 heads, T=5, d_head=4", (2, 3, 5, 4), 10),
        ("B=1, 2 heads, T=4, d_head=3", (1, 2, 4, 3), 11),
        ("one head", (2, 1, 3, 6), 12),
        ("d_head = 1", (2, 6, 3, 1), 13),
        ("the article's 12 heads of 64", (1, 12, 9, 64), 14),
    ]:
        x = _randn(B, H, T, d_head, seed=seed)
        cases.append(Case(name, args=(x,), expected=lambda x=x: merge_heads(x).clone()))
    # what a model really passes in: the output of split_heads, a transposed (non-contiguous) view
    x = split_heads(_randn(2, 5, 12, seed=15), 4)
    cases.append(Case("input from split_heads (a non-contiguous view)", args=(x,),
                      expected=lambda x=x: merge_heads(x).clone()))
    hint = ("swap the H and T axes back (x.transpose(1, 2) gives (B, T, H, d_head)), then flatten the last two axes "
            "with .reshape(B, T, H * d_head) (.view fails on a transposed tensor unless you call .contiguous() "
            "first). Reshaping without the transpose has the right shape but the wrong values.")
    return run_checks("merge_heads", fn, cases, hint)


def check_count_parameters(fn: Callable) -> Result:
    """Check `fn(d_model, n_heads, bias=True)`, the number of parameters of
    `MultiHeadAttention(d_model, n_heads, bias)`, against `attn_core.multihead.parameter_count`."""
    cases = []
    for name, (d_model, H, bias) in [
        ("d_model=768, 12 heads", (768, 12, True)),
        ("d_model=768, 1 head", (768, 1, True)),
        ("d_model=768, 768 heads", (768, 768, True)),
        ("d_model=64, 8 heads, no biases", (64, 8, False)),
        ("d_model=512, 8 heads", (512, 8, True)),
        ("d_model=12, 3 heads, no biases", (12, 3, False)),
    ]:
        cases.append(Case(name, args=(d_model, H), kwargs={"bias": bias},
                          expected=parameter_count(d_model, H, bias=bias), atol=0.0, rtol=0.0))
    hint = ("there are four d_model x d_model projections (w_q, w_k, w_v and w_o), each with d_model biases when "
            "bias=True. Head h uses only d_head = d_model / n_heads columns of w_q, w_k and w_v, so n_heads heads "
            "together use all d_model of them: does the head count change the total?")
    return run_checks("count_parameters", fn, cases, hint)
