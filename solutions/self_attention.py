"""Solutions of lesson 03's exercises (notebooks/03_self_attention.ipynb)."""

import math

import torch


def self_attention(x, w_q, w_k, w_v):
    """Self-attention of `x (..., T, d_model)` with projections `w_q, w_k (d_model, d_k)`,
    `w_v (d_model, d_v)`; returns `(out (..., T, d_v), weights (..., T, T))`."""
    q, k, v = x @ w_q, x @ w_k, x @ w_v  # (..., T, d_model) -> (..., T, d_k), (..., T, d_k), (..., T, d_v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, d_k) x (..., d_k, T) -> (..., T, T)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights  # (..., T, T) x (..., T, d_v) -> (..., T, d_v)


def unshuffle(out_shuffled, perm):
    """Undo `x[..., perm, :]`: row `i` of `out_shuffled` belongs to token `perm[i]`."""
    inverse = torch.argsort(perm)  # inverse[j] = the position i with perm[i] == j
    return out_shuffled[..., inverse, :]


def attention_flops(T, S, d_k, d_v):
    """FLOPs of `q k^T` (2 T S d_k) plus `weights v` (2 T S d_v); softmax not counted."""
    return 2 * T * S * d_k + 2 * T * S * d_v
