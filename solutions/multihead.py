"""Solutions to lesson 04's exercises (multi-head attention)."""

import torch


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, d_model) -> (B, H, T, d_head): head h owns features h*d_head : (h+1)*d_head."""
    B, T, d_model = x.shape
    d_head = d_model // n_heads
    x = x.reshape(B, T, n_heads, d_head)  # (B, T, d_model) -> (B, T, H, d_head)
    return x.transpose(1, 2)  # (B, T, H, d_head) -> (B, H, T, d_head)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d_head) -> (B, T, H * d_head): concatenate the heads' outputs again."""
    B, H, T, d_head = x.shape
    x = x.transpose(1, 2)  # (B, H, T, d_head) -> (B, T, H, d_head)
    return x.reshape(B, T, H * d_head)  # (B, T, H, d_head) -> (B, T, d_model); reshape copies if needed


def count_parameters(d_model: int, n_heads: int, bias: bool = True) -> int:
    """Parameters of MultiHeadAttention(d_model, n_heads, bias): four d_model x d_model
    projections w_q, w_k, w_v, w_o (plus d_model biases each). n_heads does not matter:
    the heads share out the columns of w_q, w_k and w_v, they do not get their own copies."""
    weights = 4 * d_model * d_model
    biases = 4 * d_model if bias else 0
    return weights + biases
