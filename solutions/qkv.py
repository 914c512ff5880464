"""Solutions of lesson 02's exercises (notebooks/02_query_key_value.ipynb)."""

import math

import torch


def attention_scores(q, k):
    """Scaled scores `q k^T / sqrt(d_k)`: `(..., T, d_k), (..., S, d_k) -> (..., T, S)`."""
    d_k = q.shape[-1]
    return q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T, d_k) x (..., d_k, S) -> (..., T, S)


def scaled_dot_product_attention(q, k, v):
    """`softmax(q k^T / sqrt(d_k)) v`, returning `(out, weights)`."""
    scores = attention_scores(q, k)  # (..., T, S)
    weights = torch.softmax(scores, dim=-1)  # each query's weights over the S keys sum to 1
    out = weights @ v  # (..., T, S) x (..., S, d_v) -> (..., T, d_v)
    return out, weights
