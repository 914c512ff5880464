"""Grouped-query and multi-query attention equal PyTorch's SDPA with enable_gqa and repeated key/value heads (issue 10)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_core import MultiHeadAttention, causal_mask, matmul_flops, merge_heads, parameter_count, split_heads
from conftest import ATOL32, ATOL64

FEW = settings(max_examples=20, deadline=None, derandomize=True)


def _mha(d_model, n_heads, n_kv_heads, seed=0, **kw):
    torch.manual_seed(seed)
    return MultiHeadAttention(d_model, n_heads, n_kv_heads=n_kv_heads, **kw).double()


def _reference(mha, query, key, mask=None, how="enable_gqa"):
    """Project with the module's own weights, then attend with PyTorch (no code of ours)."""
    B, T, _ = query.shape
    q = mha.w_q(query).view(B, T, mha.n_heads, mha.d_head).transpose(1, 2)  # (B, H, T, d_head)
    k = mha.w_k(key).view(B, key.shape[1], mha.n_kv_heads, mha.d_head).transpose(1, 2)  # (B, H_kv, S, d_head)
    v = mha.w_v(key).view(B, key.shape[1], mha.n_kv_heads, mha.d_head).transpose(1, 2)  # (B, H_kv, S, d_head)
    if how == "enable_gqa":
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    else:
        group = mha.n_heads // mha.n_kv_heads
        out = F.scaled_dot_product_attention(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1), attn_mask=mask)
    return mha.w_o(out.transpose(1, 2).reshape(B, T, -1))


@FEW
@given(n_heads_kv=st.sampled_from([(4, 4), (4, 2), (4, 1), (6, 3), (6, 2), (8, 1), (1, 1)]), d_head=st.integers(1, 4),
       B=st.integers(1, 3), T=st.integers(1, 6), S=st.integers(1, 7), self_attention=st.booleans(), masked=st.booleans(),
       bias=st.booleans(), seed=st.integers(0, 999))
def test_gqa_equals_torch_enable_gqa_and_repeated_heads(n_heads_kv, d_head, B, T, S, self_attention, masked, bias, seed):
    n_heads, n_kv_heads = n_heads_kv
    mha = _mha(n_heads * d_head, n_heads, n_kv_heads, seed, bias=bias)
    g = torch.Generator().manual_seed(seed)
    S = T if self_attention else S
    query = torch.randn(B, T, mha.d_model, generator=g, dtype=torch.float64)
    key = query if self_attention else torch.randn(B, S, mha.d_model, generator=g, dtype=torch.float64)
    mask = (torch.rand(T, S, generator=g) < 0.7) | torch.eye(T, S, dtype=torch.bool) if masked else None  # no empty row
    with torch.no_grad():
        out, weights = mha(query, mask=mask) if self_attention else mha(query, key, key, mask=mask)
        assert weights.shape == (B, n_heads, T, S)
        for how in ("enable_gqa", "repeat_interleave"):
            torch.testing.assert_close(out, _reference(mha, query, key, mask, how), atol=ATOL64, rtol=0)


def test_query_heads_share_key_value_heads_in_groups():
    """Query heads 2g and 2g+1 read key/value head g ([K1, K1, K2, K2]), not g and g + 2 ([K1, K2, K1, K2])."""
    mha = _mha(8, 4, 2)
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    with torch.no_grad():
        _, weights = mha(x)
    k_heads = split_heads(mha.w_k(x), 2)  # (1, 2, 5, 2)
    q_heads = split_heads(mha.w_q(x), 4)  # (1, 4, 5, 2)
    for h in range(4):
        scores = q_heads[:, h] @ k_heads[:, h // 2].mT / 2 ** 0.5
        torch.testing.assert_close(weights[:, h], scores.softmax(-1), atol=ATOL64, rtol=0)
        wrong = q_heads[:, h] @ k_heads[:, h % 2].mT / 2 ** 0.5  # the [K1, K2, K1, K2] layout
        if h in (1, 2):
            assert not torch.allclose(weights[:, h], wrong.softmax(-1), atol=1e-6)


def test_float32_gqa_matches_torch():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 8, n_kv_heads=2)
    x = torch.randn(2, 7, 32)
    with torch.no_grad():
        torch.testing.assert_close(mha(x, mask=causal_mask(7))[0], _reference(mha, x, x, causal_mask(7)), atol=ATOL32, rtol=0)


def test_gqa_with_rope_equals_repeated_heads_reference():
    mha = _mha(16, 4, 2, rope=True)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    full = _mha(16, 4, 4, rope=True)  # the same layer with the key/value heads repeated into 4 real heads
    with torch.no_grad():
        full.load_state_dict(mha.state_dict() | {
            "w_k.weight": mha.w_k.weight.view(2, 4, 16).repeat_interleave(2, 0).reshape(16, 16),
            "w_k.bias": mha.w_k.bias.view(2, 4).repeat_interleave(2, 0).reshape(16),
            "w_v.weight": mha.w_v.weight.view(2, 4, 16).repeat_interleave(2, 0).reshape(16, 16),
            "w_v.bias": mha.w_v.bias.view(2, 4).repeat_interleave(2, 0).reshape(16)})
        pos = torch.arange(6) + 3
        torch.testing.assert_close(mha(x, positions=pos)[0], full(x, positions=pos)[0], atol=ATOL64, rtol=0)


def test_default_is_multi_head_and_projection_sizes():
    assert MultiHeadAttention(16, 4).n_kv_heads == 4
    mqa = MultiHeadAttention(16, 4, n_kv_heads=1)
    assert mqa.w_k.weight.shape == mqa.w_v.weight.shape == (4, 16) and mqa.w_q.weight.shape == (16, 16)
    assert "n_kv_heads=1" in repr(mqa) and "n_kv_heads" not in repr(MultiHeadAttention(16, 4))


@pytest.mark.parametrize("n_heads,n_kv_heads", [(8, 8), (8, 4), (8, 2), (8, 1), (6, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_parameter_count_and_flops_with_n_kv_heads(n_heads, n_kv_heads, bias):
    from torch.utils.flop_counter import FlopCounterMode
    d_model = 2 * n_heads * 2
    mha = MultiHeadAttention(d_model, n_heads, bias=bias, n_kv_heads=n_kv_heads)
    assert parameter_count(d_model, n_heads, bias, n_kv_heads=n_kv_heads) == sum(p.numel() for p in mha.parameters())
    query, key = torch.randn(1, 5, d_model), torch.randn(1, 7, d_model)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        mha(query, key, key)
    assert matmul_flops(5, d_model, n_heads, 7, n_kv_heads=n_kv_heads) == counter.get_total_flops()
    assert parameter_count(d_model, n_heads, bias) == parameter_count(d_model, n_heads, bias, n_kv_heads=None)


@pytest.mark.parametrize("n_kv_heads,error", [(3, ValueError), (5, ValueError), (0, ValueError), (-2, ValueError),
                                              (2.0, TypeError), ("2", TypeError), (True, TypeError)])
def test_bad_n_kv_heads_is_named(n_kv_heads, error):
    for make in (lambda: MultiHeadAttention(16, 4, n_kv_heads=n_kv_heads),
                 lambda: parameter_count(16, 4, n_kv_heads=n_kv_heads),
                 lambda: matmul_flops(3, 16, 4, n_kv_heads=n_kv_heads)):
        with pytest.raises(error, match="n_kv_heads"):
            make()


def test_not_dividing_lists_the_choices():
    with pytest.raises(ValueError, match=r"n_kv_heads=4 does not divide n_heads=6.*\[1, 2, 3, 6\]"):
        MultiHeadAttention(12, 6, n_kv_heads=4)


def test_merge_after_gqa_keeps_layout():
    mha = _mha(12, 6, 2)
    x = torch.randn(2, 3, 12, dtype=torch.float64)
    out, _ = mha(x)
    assert out.shape == (2, 3, 12) and merge_heads(split_heads(x, 6)).equal(x)
