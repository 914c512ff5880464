"""Solutions to the exercises of lesson 05, positional encoding.

Each function has the name of the learner's stub in `notebooks/05_positional_encoding.ipynb`
and is checked by `attn_core.exercises.check_<name>`.
"""

from __future__ import annotations

import math

import torch


def positional_encoding(n_positions, d_model, base=10000.0):
    """The sinusoidal table: `PE[pos, 2i] = sin(pos / base^(2i/d))`, `PE[pos, 2i+1] = cos(...)`."""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    i = torch.arange(d_model) // 2  # (d_model,) 0, 0, 1, 1, ... : both columns of a pair share i
    angles = pos / base ** (2 * i / d_model)  # (P, 1) / (d_model,) -> (P, d_model)
    even = torch.arange(d_model) % 2 == 0  # (d_model,)
    return torch.where(even, torch.sin(angles), torch.cos(angles))  # (P, d_model)


def rope_rotate(x, positions, base=10000.0):
    """Rotate pair `(x[..., 2i], x[..., 2i+1])` by `positions * base^(-2i/D)` (RoPE, interleaved)."""
    D = x.shape[-1]
    theta = base ** (-2 * torch.arange(D // 2, dtype=torch.float64) / D)  # (D/2,)
    angles = torch.as_tensor(positions, dtype=torch.float64)[..., None] * theta  # (T, 1) x (D/2,) -> (T, D/2)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, D) -> 2 x (..., T, D/2)
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # (..., T, D/2, 2)
    return rotated.flatten(-2)  # (..., T, D/2, 2) -> (..., T, D)


def _slopes(n_heads):
    def power_of_two(n):
        return [2 ** (-8 * h / n) for h in range(1, n + 1)]

    p = 2 ** math.floor(math.log2(n_heads))
    return power_of_two(p) + power_of_two(2 * p)[0::2][: n_heads - p]


def alibi(n_heads, T, S=None):
    """ALiBi's bias `-m_h |i + S - T - j|`, shape `(n_heads, T, S)`."""
    S = T if S is None else S
    i = torch.arange(T, dtype=torch.float64)[:, None] + (S - T)  # (T, 1) query positions, aligned to the end
    j = torch.arange(S, dtype=torch.float64)[None, :]  # (1, S) key positions
    slopes = torch.tensor(_slopes(n_heads), dtype=torch.float64)  # (H,)
    return -slopes[:, None, None] * (i - j).abs()  # (H, 1, 1) x (T, S) -> (H, T, S)
