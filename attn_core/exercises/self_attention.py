"""Exercises of lesson 03 (self-attention): self-attention with given projections, undoing
a shuffle of the tokens, and counting the FLOPs of attention, checked against `attn_core`
(the FLOPs against PyTorch's own counter running `attn_core.scaled_dot_product_attention`)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..attention import scaled_dot_product_attention
from ._check import Case, Result, run_checks

__all__ = ["check_self_attention", "check_unshuffle", "check_attention_flops"]


def _reference_self_attention(x, w_q, w_k, w_v):
    return scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)  # (..., T, d_model) -> (..., T, d_v)


def check_self_attention(fn) -> Result:
    """Check `self_attention(x, w_q, w_k, w_v) -> (out, weights)`.

    `x (..., T, d_model)`, `w_q, w_k (d_model, d_k)`, `w_v (d_model, d_v)`. Cases have
    d_k != d_model != d_v, so scaling by the wrong width or mixing up the projections fails.
    """
    from ..toy import toy_embed, toy_projections

    gen = torch.Generator().manual_seed(5)

    def r(*shape):
        return torch.randn(*shape, generator=gen)

    cases = [("the toy sentence with the hand-made projections", (toy_embed("cat")[1], *toy_projections())),
             ("T = 5, d_model = 8, d_k = 4, d_v = 6", (r(5, 8), r(8, 4), r(8, 4), r(8, 6))),
             ("one token", (r(1, 8), r(8, 4), r(8, 4), r(8, 6))),
             ("a batch (B, T, d_model) = (2, 5, 8), d_k = 2, d_v = 3", (r(2, 5, 8), r(8, 2), r(8, 2), r(8, 3)))]
    return run_checks(
        "self_attention", fn, [Case(name, args, expected=_reference_self_attention(*args), rtol=1e-4)
                               for name, args in cases],
        hint="q = x @ w_q, k = x @ w_k, v = x @ w_v (queries, keys and values all come from the same x), then "
             "scaled dot-product attention with d_k = w_q.shape[-1] (the query width, not d_model). Return (out, weights).",
    )


def check_unshuffle(fn) -> Result:
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
        "unshuffle", fn, cases,
        hint="row i of out_shuffled belongs to original token perm[i]. So the output of original token j sits at the "
             "position i where perm[i] == j: index with the inverse permutation, torch.argsort(perm), along the "
             "token axis (-2). Indexing with perm itself shuffles a second time.",
    )


def _measured_flops(T: int, S: int, d_k: int, d_v: int) -> int:
    """FLOPs PyTorch counts while `attn_core.scaled_dot_product_attention` runs (matmuls only)."""
    q, k, v = torch.zeros(T, d_k), torch.zeros(S, d_k), torch.zeros(S, d_v)
    with FlopCounterMode(display=False) as counter:
        scaled_dot_product_attention(q, k, v)
    return counter.get_total_flops()


def check_attention_flops(fn) -> Result:
    """Check `attention_flops(T, S, d_k, d_v)`: the floating-point operations of the two
    matrix products of attention (`q k^T` and `weights v`), against PyTorch's
    `FlopCounterMode` measuring `attn_core.scaled_dot_product_attention`.

    A multiply and an add count as 2 FLOPs (PyTorch's convention); the softmax and the
    scaling are not counted (they cost O(T S), not O(T S d)).
    """
    cases = [Case(f"T={T}, S={S}, d_k={d_k}, d_v={d_v}", (T, S, d_k, d_v),
                  expected=lambda a=(T, S, d_k, d_v): _measured_flops(*a), atol=0.5, rtol=0.0)
             for T, S, d_k, d_v in ((4, 4, 8, 8), (10, 6, 3, 5), (1, 1, 1, 1), (128, 256, 64, 32))]
    return run_checks(
        "attention_flops", fn, cases,
        hint="a (T x d) @ (d x S) product does T*S*d multiply-adds = 2*T*S*d FLOPs. Attention has two products: "
             "scores = q @ k^T (T x d_k times d_k x S) and out = weights @ v (T x S times S x d_v).",
    )
