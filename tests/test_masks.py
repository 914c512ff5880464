"""Masks: conventions, alignment, combination by & and by +."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attn_core import causal_mask, mask_to_bias, padding_mask, scaled_dot_product_attention


def test_causal_mask_is_lower_triangle():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert torch.equal(m, torch.ones(4, 4, dtype=torch.bool).tril())


def test_causal_mask_with_cached_keys_is_aligned_to_the_end():
    m = causal_mask(2, 5)  # queries are positions 3 and 4 of a 5-token sequence
    assert m.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    assert torch.equal(m, causal_mask(5)[-2:])
    # the same convention as torch's bottom-right causal bias
    from torch.nn.attention.bias import causal_lower_right

    q, k = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 5, 4)
    ours, _ = scaled_dot_product_attention(q, k, k, mask=m)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, k, attn_mask=causal_lower_right(2, 5)), atol=1e-6)


def test_padding_mask_shape_and_values():
    m = padding_mask([3, 1], 4)
    assert m.shape == (2, 1, 1, 4) and m.dtype == torch.bool
    assert m[:, 0, 0].tolist() == [[True, True, True, False], [True, False, False, False]]
    mn = padding_mask(np.array([3, 1]), 4)
    assert isinstance(mn, np.ndarray) and mn.dtype == np.bool_ and (mn == m.numpy()).all()
    assert torch.equal(padding_mask(torch.tensor([2]), 2), torch.ones(1, 1, 1, 2, dtype=torch.bool))


def test_mask_to_bias_values_and_kinds():
    m = causal_mask(3)
    b = mask_to_bias(m)
    assert b.dtype == torch.float32
    assert (b[m] == 0).all() and (b[~m] == -math.inf).all()
    bn = mask_to_bias(m.numpy())
    assert isinstance(bn, np.ndarray) and bn.dtype == np.float64
    assert np.array_equal(bn, b.numpy().astype(np.float64))
    assert mask_to_bias(m, dtype=torch.float64).dtype == torch.float64


def test_masks_combine_by_and_biases_by_plus():
    causal = causal_mask(4)
    pad = padding_mask([4, 2], 4)
    both = causal & pad  # (2, 1, 4, 4)
    assert both.shape == (2, 1, 4, 4)
    assert torch.equal(mask_to_bias(both), mask_to_bias(causal) + mask_to_bias(pad))
    q = torch.randn(2, 3, 4, 5)
    via_mask, _ = scaled_dot_product_attention(q, q, q, mask=both)
    via_bias, _ = scaled_dot_product_attention(q, q, q, bias=mask_to_bias(causal) + mask_to_bias(pad))
    assert torch.equal(via_mask, via_bias)


def test_padded_tokens_do_not_change_real_outputs():
    g = torch.Generator().manual_seed(1)
    short = torch.randn(1, 3, 4, generator=g)
    padded = torch.cat([short, torch.randn(1, 2, 4, generator=g)], dim=1)  # 2 junk tokens
    out_short, _ = scaled_dot_product_attention(short, short, short)
    mask = padding_mask([3], 5)[:, 0]  # (1, 1, 5) for (B, T, S) scores
    out_pad, w = scaled_dot_product_attention(padded, padded, padded, mask=mask)
    assert torch.allclose(out_pad[:, :3], out_short, atol=1e-6)
    assert (w[..., 3:] == 0).all()


# --- issue 8 ---------------------------------------------------------------------------------

def test_fewer_keys_than_queries_is_refused_not_silently_blind():
    """causal_mask(T, S) with S < T used to give rows that see nothing; now it is an error."""
    for T, S in ((4, 2), (2, 1)):
        with pytest.raises(ValueError, match=rf"S={S} < T={T}"):
            causal_mask(T, S)
    for S in (3, 4, 9):  # S >= T keeps working, every row sees at least one key
        assert causal_mask(3, S).any(dim=-1).all()


def test_mask_to_bias_dtypes():
    m = causal_mask(3)
    assert mask_to_bias(m, dtype=torch.float64).dtype == torch.float64
    assert mask_to_bias(m.numpy(), dtype=np.float32).dtype == np.float32
    assert mask_to_bias(m.numpy(), dtype="float32").dtype == np.float32
    assert torch.equal(mask_to_bias(m, dtype=np.float64), mask_to_bias(m, dtype=torch.float64))  # either kind's dtype
    assert (mask_to_bias(m.numpy(), dtype=torch.float32) == mask_to_bias(m).numpy()).all()


def test_padding_mask_of_numpy_integers():
    assert padding_mask(np.array([2, 1], dtype=np.int32), 2).tolist() == [[[[True, True]]], [[[True, False]]]]
