"""Exercises for lesson 04 (multi-head attention): split and merge heads, count parameters.

Each checker compares the learner's function with `attn_core.multihead`'s own.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..multihead import merge_heads, parameter_count, split_heads
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_split_heads", "check_merge_heads", "check_count_parameters"]


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _split(order: str):
    """A wrong split_heads: `order` names how the last axis is cut and how the axes end up."""
    def wrong(x, n_heads):
        B, T, d_model = x.shape
        d_head = d_model // n_heads
        if order == "plain reshape":
            return x.reshape(B, n_heads, T, d_head)  # right shape, tokens mixed into heads
        if order == "no transpose":
            return x.reshape(B, T, n_heads, d_head)  # (B, T, H, d_head)
        if order == "interleaved":
            return x.reshape(B, T, d_head, n_heads).permute(0, 3, 1, 2)  # (B, T, d_head, H) -> (B, H, T, d_head)
        if order == "d_head and H swapped":
            return x.reshape(B, T, d_head, n_heads).transpose(1, 2)  # (B, d_head, T, H)
        if order == "T and d_head swapped":
            return x.reshape(B, T, n_heads, d_head).permute(0, 2, 3, 1)  # (B, H, d_head, T)
        raise ValueError(order)
    return wrong


MISTAKES_SPLIT_HEADS = (
    Mistake("reshape without transpose", _split("plain reshape"),
            "the shape is right, but reshaping (B, T, d_model) straight into (B, H, T, d_head) cuts the memory in "
            "the wrong places: a head gets pieces of several tokens. Cut each token's features into heads first, "
            "then move the head axis in front of the token axis."),
    Mistake("head axis not moved", _split("no transpose"),
            "you cut the features into heads, giving (B, T, H, d_head), but attention runs per head over the "
            "tokens, so the layout must be (B, H, T, d_head)."),
    Mistake("heads interleaved", _split("interleaved"),
            "head h got every H-th feature (h, h + H, ...). Head h owns a contiguous block of d_head features, "
            "h * d_head up to (h + 1) * d_head."),
    Mistake("n_heads and d_head swapped", _split("d_head and H swapped"),
            "you cut the features into d_head groups of n_heads: the two sizes are swapped."),
    Mistake("tokens and features swapped", _split("T and d_head swapped"),
            "the last two axes are (d_head, T); each head's matrix must have one row per token: (T, d_head)."),
)


def check_split_heads(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `fn(x, n_heads)`: `(B, T, d_model) -> (B, H, T, d_head)`, head `h` owning the
    features `h*d_head : (h+1)*d_head`, against `attn_core.split_heads`."""
    cases = []
    for name, (B, T, d_model, H), seed in [
        ("B=2, T=5, d_model=12, 3 heads", (2, 5, 12, 3), 0),
        ("B=1, T=4, d_model=8, 2 heads", (1, 4, 8, 2), 1),
        ("one head: (B, T, d) -> (B, 1, T, d)", (2, 3, 6, 1), 2),
        ("d_head = 1: as many heads as features", (2, 3, 6, 6), 3),
        ("T=1, one token", (3, 1, 8, 4), 4),
        ("768 = 12 x 64, as in the Heads and Positions article", (1, 9, 768, 12), 5),
    ]:
        x = _randn(B, T, d_model, seed=seed)
        cases.append(Case(name, args=(x, H), expected=lambda x=x, H=H: split_heads(x, H).clone()))
    hint = ("head h owns the features h * d_head up to (h + 1) * d_head of every token, and the result is laid out "
            "(B, H, T, d_head). A shape that is right is not enough: check which token and feature each entry holds.")
    return run_checks("split_heads", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_SPLIT_HEADS)


def _merge_view(x):
    B, H, T, d_head = x.shape
    return x.transpose(1, 2).view(B, T, H * d_head)  # fails on a transposed (non-contiguous) tensor


MISTAKES_MERGE_HEADS = (
    Mistake("reshape without transpose", lambda x: x.reshape(x.shape[0], x.shape[2], -1),
            "the shape is right, but reshaping (B, H, T, d_head) straight into (B, T, d_model) reads the memory "
            "head by head, so a 'token' row is built from several tokens of one head. Bring each token's heads "
            "together first."),
    Mistake(".view on a transposed tensor", _merge_view,
            ".view needs the memory laid out in the new order, which a transposed tensor is not. Either make "
            "it contiguous first or use an operation that copies when it must."),
    Mistake("heads interleaved", lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
            "the features of the heads are interleaved (one feature of each head, then the next). Head h's output "
            "must come back as one block, at features h * d_head up to (h + 1) * d_head."),
    Mistake("heads stacked along the tokens", lambda x: x.reshape(x.shape[0], -1, x.shape[-1]),
            "you stacked the heads along the token axis, (B, H * T, d_head). The heads' outputs for one token are "
            "concatenated along the features: (B, T, H * d_head)."),
    Mistake("only one head kept", lambda x: x[:, 0],
            "you kept one head's output, (B, T, d_head); the heads' outputs are concatenated: (B, T, H * d_head)."),
)


def check_merge_heads(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `fn(x)`: `(B, H, T, d_head) -> (B, T, H * d_head)`, the inverse of
    `split_heads`, against `attn_core.merge_heads`."""
    cases = []
    for name, (B, H, T, d_head), seed in [
        ("B=2, 3 heads, T=5, d_head=4", (2, 3, 5, 4), 10),
        ("B=1, 2 heads, T=4, d_head=3", (1, 2, 4, 3), 11),
        ("one head", (2, 1, 3, 6), 12),
        ("d_head = 1", (2, 6, 3, 1), 13),
        ("12 heads of 64, as in the Heads and Positions article", (1, 12, 9, 64), 14),
    ]:
        x = _randn(B, H, T, d_head, seed=seed)
        cases.append(Case(name, args=(x,), expected=lambda x=x: merge_heads(x).clone()))
    # what a model really passes in: the output of split_heads, a transposed (non-contiguous) view
    x = split_heads(_randn(2, 5, 12, seed=15), 4)
    cases.append(Case("input from split_heads (a non-contiguous view)", args=(x,),
                      expected=lambda x=x: merge_heads(x).clone()))
    hint = ("merge_heads undoes split_heads: token t's row is the concatenation of every head's output for token t, "
            "head 0's d_head features first. The input may be a transposed (non-contiguous) view.")
    return run_checks("merge_heads", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_MERGE_HEADS)


MISTAKES_COUNT_PARAMETERS = (
    Mistake("a full-size copy per head", lambda d, h, bias=True: h * (4 * d * d + (4 * d if bias else 0)),
            "the total grew with the number of heads. The heads share out the columns of w_q, w_k and w_v: each "
            "head uses d_head = d_model / n_heads of them, so together they use the d_model columns once."),
    Mistake("d_head x d_head weights per head", lambda d, h, bias=True: 4 * h * (d // h) ** 2 + (4 * d if bias else 0),
            "you gave each head a d_head x d_head matrix. Each head reads the *whole* d_model-wide input, so its "
            "slice of w_q is d_model x d_head."),
    Mistake("output projection forgotten", lambda d, h, bias=True: 3 * d * d + (3 * d if bias else 0),
            "you counted w_q, w_k and w_v; the output projection w_o, which mixes the heads, has parameters too."),
    Mistake("biases forgotten", lambda d, h, bias=True: 4 * d * d,
            "with bias=True each of the four projections also has d_model biases."),
    Mistake("bias flag ignored", lambda d, h, bias=True: 4 * d * d + 4 * d,
            "with bias=False there are no biases: your count includes them anyway."),
    Mistake("one bias per projection", lambda d, h, bias=True: 4 * d * d + (4 if bias else 0),
            "a projection has one bias per *output feature*, d_model of them, not one."),
)


def check_count_parameters(fn: Callable, *, verbose: bool = True) -> Result:
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
    hint = ("list every projection of multi-head attention, the shape of its weight matrix and of its bias (when "
            "bias=True). Then ask: does the number of heads change any of those shapes?")
    return run_checks("count_parameters", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_COUNT_PARAMETERS)
