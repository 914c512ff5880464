"""Every bad input gets a clear error naming the argument, what was received and what was expected."""

import numpy as np
import pytest
import torch
from torch import nn

from attn_core import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    causal_mask,
    mask_to_bias,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
    softmax,
    split_heads,
)

q = torch.zeros(2, 3, 5, 8)
k = torch.zeros(2, 3, 7, 8)
v = torch.zeros(2, 3, 7, 4)


@pytest.mark.parametrize(
    "call,err,pattern",
    [
        (lambda: scaled_dot_product_attention(q, torch.zeros(2, 3, 7, 6), v), ValueError,
         r"q and k must have the same last dimension d_k: q has shape \(2, 3, 5, 8\) \(d_k=8\), k has shape \(2, 3, 7, 6\) \(d_k=6\)"),
        (lambda: scaled_dot_product_attention(q, k, torch.zeros(2, 3, 6, 4)), ValueError,
         r"k and v must have the same length S.*k has shape \(2, 3, 7, 8\) \(S=7\), v has shape \(2, 3, 6, 4\) \(S=6\)"),
        (lambda: scaled_dot_product_attention(torch.zeros(8), k, v), ValueError,
         r"q must have at least 2 dimensions, shape \(\.\.\., T, d_k\), got shape \(8,\)"),
        (lambda: scaled_dot_product_attention([[1.0]], k, v), TypeError, r"q must be a numpy array or a torch tensor.*got list"),
        (lambda: scaled_dot_product_attention(q, k.numpy(), v), TypeError, r"q, k and v must be the same kind"),
        (lambda: scaled_dot_product_attention(q, torch.zeros(4, 3, 7, 8), torch.zeros(4, 3, 7, 4)), ValueError,
         r"leading \(batch, head\) dimensions of q, k and v must match or broadcast"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 7)), TypeError,
         r"mask must be boolean \(True = may attend\), got dtype torch.float32"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=np.ones((5, 7), dtype=np.int64)), TypeError,
         r"mask must be boolean \(True = may attend\), got dtype int64"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=causal_mask(5)), ValueError,
         r"mask of shape \(5, 5\) is not broadcastable to the scores' shape \(2, 3, 5, 7\)"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=padding_mask([7, 7, 7], 7)), ValueError,
         r"mask of shape \(3, 1, 1, 7\) is not broadcastable to the scores' shape \(2, 3, 5, 7\)"),
        (lambda: scaled_dot_product_attention(q, k, v, bias=torch.zeros(4, 5, 7)), ValueError,
         r"bias of shape \(4, 5, 7\) is not broadcastable to the scores' shape \(2, 3, 5, 7\)"),
        (lambda: scaled_dot_product_attention(q, k, v, bias=causal_mask(5, 7)), TypeError, r"bias must be a float array.*mask="),
        (lambda: softmax([1.0, 2.0]), TypeError, r"x must be a numpy array or a torch tensor, got list"),
        (lambda: mask_to_bias(torch.ones(2, 2)), TypeError, r"mask must be boolean.*got dtype torch.float32"),
        (lambda: causal_mask(0), ValueError, r"T must be >= 1, got 0"),
        (lambda: causal_mask(3, 2.5), TypeError, r"S must be a whole number"),
        (lambda: padding_mask([1, 5], 4), ValueError, r"lengths must lie in 0\.\.S = 0\.\.4, got \[1, 5\]"),
        (lambda: padding_mask([[1, 2]], 4), ValueError, r"lengths must be one length per sequence, shape \(B,\), got shape \(1, 2\)"),
        (lambda: padding_mask([1.5], 4), TypeError, r"lengths must hold whole numbers"),
        (lambda: split_heads(torch.zeros(2, 5, 10), 3), ValueError,
         r"d_model=10 is not divisible by n_heads=3.*Choose n_heads from \[1, 2, 5, 10\]"),
        (lambda: split_heads(torch.zeros(10), 2), ValueError, r"x must have at least 2 dimensions, shape \(B, T, d_model\), got shape \(10,\)"),
        (lambda: merge_heads(torch.zeros(5, 4)), ValueError, r"x must have at least 3 dimensions, shape \(B, H, T, d_head\), got shape \(5, 4\)"),
        (lambda: MultiHeadAttention(10, 4), ValueError, r"d_model=10 is not divisible by n_heads=4"),
        (lambda: MultiHeadAttention(12, 0), ValueError, r"n_heads must be >= 1, got 0"),
        (lambda: MultiHeadAttention(12, 4, rope=True), ValueError, r"d_head = d_model / n_heads must be even, got 3"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 12)), ValueError, r"query must have shape \(B, T, d_model=16\), got shape \(2, 5, 12\)"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(5, 16)), ValueError, r"query must have shape \(B, T, d_model=16\), got shape \(5, 16\)"),
        (lambda: MultiHeadAttention(16, 4)(np.zeros((1, 5, 16))), TypeError, r"query must be a torch tensor"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 16), torch.zeros(2, 6, 16), torch.zeros(2, 7, 16)), ValueError,
         r"key and value S"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 16), mask=torch.ones(5, 5)), TypeError, r"mask must be boolean"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 16), mask=causal_mask(4)), ValueError,
         r"mask of shape \(4, 4\) is not broadcastable to the scores' shape \(2, 4, 5, 5\)"),
        (lambda: MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2)), ValueError, r"batch_first=True"),
        (lambda: MultiHeadAttention.from_torch(nn.Linear(2, 2)), TypeError, r"expects a torch.nn.MultiheadAttention, got Linear"),
        (lambda: apply_rope(torch.zeros(2, 5, 7)), ValueError, r"last axis of x must be even, got x of shape \(2, 5, 7\) \(D=7\)"),
        (lambda: apply_rope(torch.zeros(5, 8), positions=torch.arange(4)), ValueError,
         r"positions must have shape \(T,\) = \(5,\) or \(\.\.\., 5\) to match x of shape \(5, 8\), got shape \(4,\)"),
        (lambda: sinusoidal_encoding(10, 0), ValueError, r"d_model must be >= 1, got 0"),
        (lambda: sinusoidal_encoding(10, 4, base=0), ValueError, r"base must be > 0"),
        (lambda: sinusoidal_shift_matrix(1, 5), ValueError, r"needs an even d_model"),
        (lambda: LearnedPositionalEmbedding(4, 8)(torch.tensor([0.5])), TypeError, r"positions must be an int or an integer torch tensor"),
        (lambda: LearnedPositionalEmbedding(4, 8)(5), ValueError, r"sequence length 5 exceeds max_len=4"),
        (lambda: alibi_slopes(0), ValueError, r"n_heads must be >= 1, got 0"),
        (lambda: alibi_bias(4, -1), ValueError, r"T must be >= 1, got -1"),
    ],
)
def test_bad_input_is_named_with_received_and_expected(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call()


def test_errors_are_raised_before_torch_sees_the_input():
    """The message comes from attn_core, not from a matmul deep inside torch."""
    with pytest.raises(ValueError) as info:
        scaled_dot_product_attention(q, torch.zeros(2, 3, 7, 6), v)
    assert info.traceback[-1].path.name == "attention.py"
