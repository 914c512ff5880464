"""Segment (token type) embeddings, BERT's sentence A / sentence B."""

from __future__ import annotations

import torch
from torch import nn

from .._arrays import check_positive_int, fmt_shape

__all__ = ["SegmentEmbedding"]


class SegmentEmbedding(nn.Module):
    r"""One learned vector per segment, added to every token of that segment.

    .. math:: x'_t = x_t + P_t + E_{\mathrm{seg}(t)}, \qquad E \in \mathbb{R}^{n_\mathrm{segments} \times d_\mathrm{model}}

    In BERT, `[CLS] question [SEP]` is segment 0 (sentence A) and `answer [SEP]` segment
    1 (sentence B), so a question-answering or next-sentence model can tell them apart.

    `forward(segment_ids)`: integer `(B, T)` (or `(T,)`) ids in `0..n_segments-1`.
    Returns `(B, T, d_model)` (or `(T, d_model)`).
    """

    def __init__(self, n_segments: int = 2, d_model: int = 768):
        super().__init__()
        self.n_segments = check_positive_int(n_segments, "n_segments")
        self.d_model = check_positive_int(d_model, "d_model")
        self.table = nn.Embedding(self.n_segments, self.d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def extra_repr(self) -> str:
        return f"n_segments={self.n_segments}, d_model={self.d_model}"

    def forward(self, segment_ids):
        if not isinstance(segment_ids, torch.Tensor) or segment_ids.dtype.is_floating_point or segment_ids.dtype.is_complex or segment_ids.dtype == torch.bool:
            raise TypeError(f"segment_ids must be an integer torch tensor of shape (B, T), got {segment_ids!r:.60}")
        if segment_ids.numel() and (segment_ids.min() < 0 or segment_ids.max() >= self.n_segments):
            raise ValueError(
                f"segment_ids must lie in 0..{self.n_segments - 1} (n_segments={self.n_segments}), "
                f"got values from {int(segment_ids.min())} to {int(segment_ids.max())} in shape {fmt_shape(segment_ids.shape)}"
            )
        return self.table(segment_ids)  # (B, T) -> (B, T, d_model)
