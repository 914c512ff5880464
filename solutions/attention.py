"""Solutions of lesson 01's exercises (notebooks/01_attention.ipynb)."""

import torch


def similarity_matrix(x):
    """Dot product of every token with every token: `(..., T, d) -> (..., T, T)`."""
    return x @ x.transpose(-2, -1)  # (..., T, d) x (..., d, T) -> (..., T, T)


def stable_softmax(x, dim=-1):
    """Softmax along `dim` that subtracts the maximum first, so large logits cannot overflow."""
    m = x.max(dim=dim, keepdim=True).values  # the maximum along dim, kept for broadcasting
    e = torch.exp(x - m)  # every exponent <= 0, so every e <= 1
    return e / e.sum(dim=dim, keepdim=True)
