"""Learned absolute positional embeddings (BERT, GPT-2)."""

from __future__ import annotations

import numbers

import torch
from torch import nn

from .._arrays import check_positive_int, fmt_shape

__all__ = ["LearnedPositionalEmbedding"]


class LearnedPositionalEmbedding(nn.Module):
    r"""A trained table of `max_len` position vectors: `PE[pos] = table[pos]`.

    .. math:: x'_{t} = x_t + P_{t}, \qquad P \in \mathbb{R}^{\mathrm{max\_len} \times d_\mathrm{model}}

    Unlike the sinusoidal encoding there is no formula behind the rows, so the table has
    nothing to say about a position it never had a row for: a sequence longer than
    `max_len` is an error, not an extrapolation.

    `forward(positions)`: an int `T` (meaning positions `0..T-1`) or an integer tensor of
    positions `(..., T)`. Returns `(T, d_model)` or `(..., T, d_model)`.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = check_positive_int(max_len, "max_len")
        self.d_model = check_positive_int(d_model, "d_model")
        self.table = nn.Embedding(self.max_len, self.d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"

    def forward(self, positions):
        if isinstance(positions, numbers.Integral) and not isinstance(positions, bool):
            positions = int(positions)
            if positions < 0:
                raise ValueError(f"sequence length must be >= 0, got {positions}; pass an int T (positions 0..T-1) "
                                 f"or a tensor of positions")
            if positions > self.max_len:
                raise ValueError(
                    f"sequence length {positions} exceeds max_len={self.max_len}: a learned positional "
                    f"embedding has rows only for positions 0..{self.max_len - 1} and cannot represent longer sequences"
                )
            positions = torch.arange(positions, device=self.table.weight.device)
        if not isinstance(positions, torch.Tensor) or positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
            raise TypeError(f"positions must be an int or an integer torch tensor (..., T), got {positions!r:.60}")
        if positions.numel() and (positions.min() < 0 or positions.max() >= self.max_len):
            raise ValueError(
                f"position {int(positions.max())} is out of range: a learned positional embedding with "
                f"max_len={self.max_len} has rows only for positions 0..{self.max_len - 1} "
                f"(positions of shape {fmt_shape(positions.shape)}); it cannot represent longer sequences"
            )
        return self.table(positions)  # (..., T) -> (..., T, d_model)
