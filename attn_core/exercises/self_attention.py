"""Exercises of lesson 03 (self-attention): self-attention with given projections, undoing
a shuffle of the tokens, and counting the FLOPs of attention, checked against `attn_core`
(the FLOPs against PyTorch's own counter running `attn_core.scaled_dot_product_attention`)."""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..attention import scaled_dot_product_attention
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_self_attention", "check_unshuffle", "check_attention_flops"]


def _reference_self_attention(x, w_q, w_k, w_v):
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)  # (..., T, d_model) -> (..., T, d_v)


def _self_attention(scale=None, keys="w_k", values="w_v", dim=-1, only_out=False):
    """A self-attention with one chosen mistake."""
    def wrong(x, w_q, w_k, w_v):
        q = x @ w_q  # (..., T, d_model) -> (..., T, d_k)
        k = x @ (w_q if keys == "w_q" else w_k)  # (..., T, d_k)
        v = {"w_v": lambda: x @ w_v, "w_k": lambda: x @ w_k, "x": lambda: x}[values]()  # (..., T, d_v)
        s = q.shape[-1] ** -0.5 if scale is None else scale(x, w_q, w_k, w_v)
        weights = torch.softmax(q @ k.mT * s, dim=dim)  # (..., T, T)
        out = weights @ v  # (..., T, T) x (..., T, d_v) -> (..., T, d_v)
        return out if only_out else (out, weights)
    return wrong


def _self_attention_dot_T(x, w_q, w_k, w_v):
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    weights = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)  # fails on a batch
    return weights @ v, weights


MISTAKES_SELF_ATTENTION = (
    Mistake("scaled by sqrt(d_model)", _self_attention(scale=lambda x, w_q, w_k, w_v: x.shape[-1] ** -0.5),
            "you divided by the square root of the *embedding* width d_model. The scores are dot products of "
            "projected queries and keys, whose width is d_k (the number of columns of w_q)."),
    Mistake("scaled by sqrt(d_v)", _self_attention(scale=lambda x, w_q, w_k, w_v: w_v.shape[-1] ** -0.5),
            "you divided by the square root of the *value* width d_v; the scores' spread depends on the "
            "query/key width d_k."),
    Mistake("not scaled", _self_attention(scale=lambda x, w_q, w_k, w_v: 1.0),
            "the scores were not scaled by 1/sqrt(d_k), so the softmax is too peaked for wide projections."),
    Mistake("values projected with w_k", _self_attention(values="w_k"),
            "your values come from the key projection: each of the three roles has its own matrix, and the values' "
            "width is d_v (the columns of w_v)."),
    Mistake("keys projected with w_q", _self_attention(keys="w_q"),
            "your keys come from the query projection, so every token is compared with its own query-space "
            "version; the keys have their own matrix."),
    Mistake("values not projected", _self_attention(values="x"),
            "your output averages the raw embeddings x; the values are x projected by their own matrix."),
    Mistake("softmax over the queries", _self_attention(dim=-2),
            "your weights sum to 1 down each column. Each query distributes its attention over the keys: every "
            "row must sum to 1."),
    Mistake(".T on a batch", lambda x, w_q, w_k, w_v: _self_attention_dot_T(x, w_q, w_k, w_v),
            "on a batch (B, T, d), .T reverses *all* the axes, so the batch axis moves too and the product fails. "
            "Only the last two axes (tokens and features) should swap."),
    Mistake("only the output returned", _self_attention(only_out=True),
            "you returned only the output; the exercise asks for the pair (out, weights)."),
)


def check_self_attention(fn, *, verbose: bool = True) -> Result:
    """Check `self_attention(x, w_q, w_k, w_v) -> (out, weights)`.

    `x (..., T, d_model)`, `w_q, w_k (d_model, d_k)`, `w_v (d_model, d_v)`. The first case
    has d_k != d_model != d_v, so scaling by the wrong width or mixing up the projections
    gives an output the checker can name.
    """
    from ..toy import toy_embed, toy_projections

    gen = torch.Generator(device="cpu").manual_seed(5)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float32)

    cases = [("T = 5, d_model = 8, d_k = 4, d_v = 6", (r(5, 8), r(8, 4), r(8, 4), r(8, 6))),
             ("the toy sentence with the hand-made projections",
              tuple(t.to(torch.float32) for t in (toy_embed("cat")[1], *toy_projections()))),
             ("one token", (r(1, 8), r(8, 4), r(8, 4), r(8, 6))),
             ("a batch (B, T, d_model) = (2, 5, 8), d_k = 2, d_v = 3", (r(2, 5, 8), r(8, 2), r(8, 2), r(8, 3)))]
    return run_checks(
        "self_attention", fn, [Case(name, args, expected=_reference_self_attention(*args), rtol=1e-4)
                               for name, args in cases],
        verbose=verbose, mistakes=MISTAKES_SELF_ATTENTION,
        hint="queries, keys and values all come from the same x, each through its own projection; then scaled "
             "dot-product attention, scaled by a width that belongs to the queries and keys. Return (out, weights).",
    )


MISTAKES_UNSHUFFLE = (
    Mistake("shuffled again with perm", lambda out, perm: out[..., perm, :],
            "indexing with perm shuffles a second time. That undoes a swap of two tokens (a swap is its own "
            "inverse) but not a 3-cycle: you need the inverse permutation."),
    Mistake("returned unchanged", lambda out, perm: out,
            "the rows are still in the shuffled order. Self-attention is permutation-equivariant: shuffling the "
            "tokens shuffles the outputs the same way, so they must be put back."),
    Mistake("rows of the first axis moved", lambda out, perm: out[torch.argsort(perm)],
            "you moved entries of the *first* axis. That is the token axis only for a 2-D input; with a batch "
            "(B, T, D) it is the batch axis. Move rows along the token axis (-2)."),
    Mistake("features moved instead of tokens", lambda out, perm: out[..., torch.argsort(perm)],
            "you reordered the last axis, the features of each token. The shuffle moved whole tokens (rows, "
            "axis -2)."),
)


def check_unshuffle(fn, *, verbose: bool = True) -> Result:
    """Check `unshuffle(out_shuffled, perm)`: put outputs computed on `x[perm]` back into
    the tokens' original order.

    Each case runs self-attention on the shuffled tokens `x[..., perm, :]` and expects the
    outputs of self-attention on the original `x`. This only works because self-attention
    is permutation-equivariant. Permutations include a 3-cycle and a random one, which are
    not their own inverse.
    """
    gen = torch.Generator().manual_seed(6)
    cases = []
    for name, T, lead, perm in (("swap the first two of 3 tokens", 3, (), [1, 0, 2]),
                                ("a 3-cycle", 3, (), [1, 2, 0]),
                                ("a random order of 7 tokens", 7, (), None),
                                ("a batch (2, 5, 4), the same shuffle in both", 5, (2,), None),
                                ("nothing shuffled", 4, (), [0, 1, 2, 3])):
        perm = torch.randperm(T, generator=gen) if perm is None else torch.tensor(perm)
        x = torch.randn(*lead, T, 4, generator=gen)
        w_q, w_k, w_v = (torch.randn(4, 4, generator=gen) / 2 for _ in range(3))  # / sqrt(d_model): soft weights
        out_shuffled, _ = _reference_self_attention(x[..., perm, :], w_q, w_k, w_v)  # rows in shuffled order
        out, _ = _reference_self_attention(x, w_q, w_k, w_v)  # rows in the original order
        cases.append(Case(f"{name}: perm = {perm.tolist()}", (out_shuffled, perm), expected=out, rtol=1e-4))
    return run_checks(
        "unshuffle", fn, cases, verbose=verbose, mistakes=MISTAKES_UNSHUFFLE,
        hint="row i of out_shuffled belongs to original token perm[i]. Ask, for each original token j, at which "
             "position of out_shuffled it ended up, and move the rows along the token axis (-2) only.",
    )


def _measured_flops(T: int, S: int, d_k: int, d_v: int) -> int:
    """FLOPs PyTorch counts while `attn_core.scaled_dot_product_attention` runs (matmuls only)."""
    q, k, v = torch.zeros(T, d_k), torch.zeros(S, d_k), torch.zeros(S, d_v)
    with FlopCounterMode(display=False) as counter:
        scaled_dot_product_attention(q, k, v)
    return counter.get_total_flops()


MISTAKES_ATTENTION_FLOPS = (
    Mistake("multiply-adds, not FLOPs", lambda T, S, d_k, d_v: T * S * (d_k + d_v),
            "you counted each multiply-add once. PyTorch (and this course) counts a multiply and an add as 2 "
            "floating-point operations."),
    Mistake("only q k^T counted", lambda T, S, d_k, d_v: 2 * T * S * d_k,
            "you counted the scores' product only; the weighted sum of the values is a second matrix product."),
    Mistake("only weights v counted", lambda T, S, d_k, d_v: 2 * T * S * d_v,
            "you counted the product with the values only; the scores q k^T are a matrix product too."),
    Mistake("S ignored", lambda T, S, d_k, d_v: 2 * T * T * (d_k + d_v),
            "you used T for the number of keys. With a cache or cross-attention S != T: each of the T queries "
            "meets S keys."),
    Mistake("d_k used for both products", lambda T, S, d_k, d_v: 4 * T * S * d_k,
            "the second product sums over the S keys for each of the d_v value features: its size depends on d_v, "
            "not d_k."),
    Mistake("d_v used for both products", lambda T, S, d_k, d_v: 4 * T * S * d_v,
            "the scores' product runs over the d_k features of queries and keys: its size depends on d_k."),
    Mistake("n - 1 additions per dot product", lambda T, S, d_k, d_v: T * S * (2 * d_k - 1) + T * S * (2 * d_v - 1),
            "you counted d multiplies and d - 1 additions per dot product. That is exact arithmetic, but PyTorch's "
            "counter (the reference here) counts 2 per multiply-add."),
    Mistake("widths multiplied together", lambda T, S, d_k, d_v: 2 * T * S * d_k * d_v,
            "the two products happen one after the other, so their counts add; they do not multiply."),
)


def check_attention_flops(fn, *, verbose: bool = True) -> Result:
    """Check `attention_flops(T, S, d_k, d_v)`: the floating-point operations of the two
    matrix products of attention (`q k^T` and `weights v`), against PyTorch's
    `FlopCounterMode` measuring `attn_core.scaled_dot_product_attention`.

    A multiply and an add count as 2 FLOPs (PyTorch's convention); the softmax and the
    scaling are not counted (they cost O(T S), not O(T S d)). The first case has T, S, d_k
    and d_v all different, so each typical miscount gives its own number.
    """
    cases = [Case(f"T={T}, S={S}, d_k={d_k}, d_v={d_v}", (T, S, d_k, d_v),
                  expected=lambda a=(T, S, d_k, d_v): _measured_flops(*a), atol=0.0, rtol=0.0)
             for T, S, d_k, d_v in ((10, 6, 3, 5), (4, 4, 8, 8), (1, 1, 1, 1), (128, 256, 64, 32))]
    return run_checks(
        "attention_flops", fn, cases, verbose=verbose, mistakes=MISTAKES_ATTENTION_FLOPS,
        hint="count each matrix product of attention: how many dot products does it compute, how long is each, and "
             "how many FLOPs is one multiply-add? Use every one of T, S, d_k, d_v where it belongs.",
    )
