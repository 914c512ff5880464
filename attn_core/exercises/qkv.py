"""Exercises of lesson 02 (queries, keys and values): the scaled scores matrix and scaled
dot-product attention, checked against `attn_core.scaled_dot_product_attention`."""

from __future__ import annotations

import math

import torch

from ..attention import scaled_dot_product_attention
from ._check import Case, Result, run_checks

__all__ = ["check_attention_scores", "check_scaled_dot_product_attention"]


def _qkv_cases(seed: int) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(name, q, k, v): T == S, T != S, d_k != d_v, (B, H, T, D), and large scores."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen) * scale

    return [
        ("4 queries, 4 keys, d_k = d_v = 8", r(4, 8), r(4, 8), r(4, 8)),
        ("3 queries, 5 keys (T != S), d_k = 4, d_v = 6", r(3, 4), r(5, 4), r(5, 6)),
        ("d_k = 1", r(2, 1), r(3, 1), r(3, 2)),
        ("batch and heads (B, H, T, D) = (2, 3, 4, 8), S = 6", r(2, 3, 4, 8), r(2, 3, 6, 8), r(2, 3, 6, 5)),
        ("large scores (a naive exp overflows)", r(3, 16, scale=12.0), r(4, 16, scale=12.0), r(4, 2)),
    ]


def check_attention_scores(fn) -> Result:
    """Check `attention_scores(q, k)`: `q k^T / sqrt(d_k)`, shape `(..., T, S)`."""
    cases = []
    for name, q, k, _ in _qkv_cases(3):
        expected = (q @ k.mT) / math.sqrt(q.shape[-1])  # (..., T, d_k) x (..., d_k, S) -> (..., T, S)
        cases.append(Case(name, (q, k), expected=expected, rtol=1e-4))
    return run_checks(
        "attention_scores", fn, cases,
        hint="scores = q @ k.transpose(-2, -1) / math.sqrt(d_k), with d_k = q.shape[-1] (the width of one query, "
             "not the number of keys); the result has one row per query and one column per key: (..., T, S).",
    )


def check_scaled_dot_product_attention(fn) -> Result:
    """Check `scaled_dot_product_attention(q, k, v) -> (out, weights)` against the package."""
    cases = [Case(name, (q, k, v), expected=scaled_dot_product_attention(q, k, v), rtol=1e-4)
             for name, q, k, v in _qkv_cases(4)]
    return run_checks(
        "scaled_dot_product_attention", fn, cases,
        hint="four steps: scores = q @ k.transpose(-2, -1); scale them by 1 / sqrt(d_k); weights = softmax over the "
             "last axis (the keys; torch.softmax(scores, dim=-1) is stable); out = weights @ v. Return (out, weights).",
    )
