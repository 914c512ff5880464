"""split/merge heads and MultiHeadAttention against torch.nn.MultiheadAttention."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from torch import nn

from attn_core import MultiHeadAttention, causal_mask, merge_heads, padding_mask, split_heads
from conftest import ATOL32, ATOL64


@given(B=st.integers(1, 3), T=st.integers(1, 5), H=st.sampled_from([1, 2, 3, 4]), d_head=st.integers(1, 4))
def test_split_merge_roundtrip_and_head_slices(B, T, H, d_head):
    x = torch.randn(B, T, H * d_head)
    heads = split_heads(x, H)
    assert heads.shape == (B, H, T, d_head)
    for h in range(H):  # head h owns feature slice h*d_head:(h+1)*d_head
        assert torch.equal(heads[:, h], x[..., h * d_head : (h + 1) * d_head])
    assert torch.equal(merge_heads(heads), x)


def test_split_heads_numpy_and_leading_dims():
    x = np.arange(2 * 3 * 5 * 12, dtype=np.float64).reshape(2, 3, 5, 12)  # two batch dims
    heads = split_heads(x, 4)
    assert isinstance(heads, np.ndarray) and heads.shape == (2, 3, 4, 5, 3)
    assert_allclose(heads, split_heads(torch.from_numpy(x), 4).numpy())
    assert split_heads(np.zeros((5, 12)), 3).shape == (3, 5, 4)  # no batch dim
    assert np.array_equal(merge_heads(heads), x)


def make_pair(d_model, n_heads, bias=True, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True, dtype=dtype)
    if bias:  # torch initialises biases to zero; make them matter
        with torch.no_grad():
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
    return ref.eval(), MultiHeadAttention.from_torch(ref).eval()


@pytest.mark.parametrize("d_model,n_heads", [(16, 1), (16, 4), (24, 3), (64, 8)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype,atol", [(torch.float32, ATOL32), (torch.float64, ATOL64)])
def test_from_torch_self_attention_matches(d_model, n_heads, bias, dtype, atol):
    ref, ours = make_pair(d_model, n_heads, bias, dtype)
    x = torch.randn(3, 7, d_model, dtype=dtype)
    out_ref, w_ref = ref(x, x, x, need_weights=True, average_attn_weights=False)
    out, w = ours(x)
    assert out.shape == (3, 7, d_model) and w.shape == (3, n_heads, 7, 7)
    assert torch.allclose(out, out_ref, atol=atol, rtol=0)
    assert torch.allclose(w, w_ref, atol=atol, rtol=0)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, ATOL32), (torch.float64, ATOL64)])
def test_from_torch_cross_attention_with_masks_matches(dtype, atol):
    ref, ours = make_pair(32, 4, dtype=dtype)
    query, memory = torch.randn(2, 5, 32, dtype=dtype), torch.randn(2, 9, 32, dtype=dtype)
    allowed = causal_mask(5, 9)
    # torch's attn_mask is True where attention is BLOCKED: the opposite convention
    out_ref, w_ref = ref(query, memory, memory, attn_mask=~allowed, need_weights=True, average_attn_weights=False)
    out, w = ours(query, memory, memory, mask=allowed)
    assert torch.allclose(out, out_ref, atol=atol, rtol=0) and torch.allclose(w, w_ref, atol=atol, rtol=0)
    # padding: torch's key_padding_mask (B, S) True = padding
    pad = padding_mask([9, 6], 9)
    out_ref, w_ref = ref(query, memory, memory, key_padding_mask=~pad[:, 0, 0], need_weights=True, average_attn_weights=False)
    out, w = ours(query, memory, memory, mask=pad)
    assert torch.allclose(out, out_ref, atol=atol, rtol=0) and torch.allclose(w, w_ref, atol=atol, rtol=0)


def test_gradients_match_torch():
    ref, ours = make_pair(16, 4, dtype=torch.float64)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    ref(x, x, x, need_weights=False)[0].pow(2).sum().backward()
    ours(x)[0].pow(2).sum().backward()
    assert torch.allclose(ours.w_o.weight.grad, ref.out_proj.weight.grad, atol=ATOL64)
    assert torch.allclose(ours.w_q.weight.grad, ref.in_proj_weight.grad[:16], atol=ATOL64)
    assert torch.allclose(ours.w_v.weight.grad, ref.in_proj_weight.grad[32:], atol=ATOL64)


def test_parameter_count_equals_torch_and_one_full_width_head():
    for n_heads in (1, 2, 3, 4, 6, 12):
        ours = MultiHeadAttention(768, n_heads)
        n = sum(p.numel() for p in ours.parameters())
        assert n == sum(p.numel() for p in nn.MultiheadAttention(768, n_heads).parameters())
        assert n == 4 * (768 * 768 + 768)  # independent of the number of heads
    assert MultiHeadAttention(768, 12).d_head == 64


def test_rope_option_makes_scores_relative():
    torch.manual_seed(0)
    m = MultiHeadAttention(16, 2, rope=True)
    x = torch.randn(1, 1, 16).repeat(1, 6, 1)  # the same token at every position
    _, w = m(x)
    s = torch.log(w[0, 0])  # log-weights = scores - logsumexp(row): equal offsets, equal score differences
    assert torch.allclose(s[3, 2] - s[3, 1], s[4, 3] - s[4, 2], atol=1e-5)
    _, w_norope = MultiHeadAttention(16, 2)(x)
    assert torch.allclose(w_norope[0, 0], torch.full((6, 6), 1 / 6), atol=1e-6)  # identical tokens: uniform


# --- issue 8: masks and biases of every accepted rank mean what the docstring says -----------

def _per_sequence(mha, x, mask=None, bias=None):
    """Run each sequence of the batch alone with its own (T, S) mask / bias: the meaning a learner expects."""
    outs, weights = [], []
    for b in range(x.shape[0]):
        o, w = mha(x[b : b + 1], mask=None if mask is None else mask[b], bias=None if bias is None else bias[b])
        outs.append(o)
        weights.append(w)
    return torch.cat(outs), torch.cat(weights)


@pytest.mark.parametrize("B,H", [(2, 2), (3, 1), (1, 4), (4, 2)])  # B == H was the silent bug
def test_a_3d_mask_is_per_sequence(B, H):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, H).eval()
    x = torch.randn(B, 5, 8)
    mask = torch.rand(B, 5, 5) > 0.4
    mask[..., 0] = True  # every query sees something
    out, w = mha(x, mask=mask)
    ref_out, ref_w = _per_sequence(mha, x, mask=mask)
    assert torch.allclose(out, ref_out, atol=ATOL32) and torch.allclose(w, ref_w, atol=ATOL32)
    assert torch.equal(w == 0, ~mask[:, None].expand(B, H, 5, 5))  # blocked exactly where sequence b's mask says
    assert torch.equal(mha(x, mask=mask[:, None])[1], w)  # the same as the explicit (B, 1, T, S)


@pytest.mark.parametrize("B,H", [(2, 2), (3, 1)])
def test_a_3d_bias_is_per_sequence(B, H):
    torch.manual_seed(1)
    mha = MultiHeadAttention(8, H).eval()
    x = torch.randn(B, 4, 8)
    bias = torch.randn(B, 4, 4) * 3
    out, w = mha(x, bias=bias)
    ref_out, ref_w = _per_sequence(mha, x, bias=bias)
    assert torch.allclose(out, ref_out, atol=ATOL32) and torch.allclose(w, ref_w, atol=ATOL32)


def test_2d_4d_and_padding_masks_still_work():
    torch.manual_seed(2)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(3, 4, 8)
    causal = causal_mask(4)
    w2 = mha(x, mask=causal)[1]
    assert torch.equal(mha(x, mask=causal[None, None])[1], w2)  # (1, 1, T, S)
    assert torch.equal(mha(x, mask=causal[None].expand(3, 4, 4))[1], w2)  # (B, T, S)
    pad = padding_mask([4, 2, 3], 4)  # (B, 1, 1, S)
    w_pad = mha(x, mask=pad)[1]
    assert (w_pad[1, :, :, 2:] == 0).all() and (w_pad[0] > 0).all()
    per_head = torch.zeros(1, 2, 4, 4)
    per_head[0, 1] = -math.inf
    per_head[0, 1, :, 0] = 0.0  # head 1 may only look at key 0
    assert torch.equal(mha(x, bias=per_head)[1][:, 1, :, 0], torch.ones(3, 4))  # (1, H, T, S)


# --- issue 8: RoPE positions are explicit; equal tensors give equal results --------------------

def test_rope_equal_keys_give_equal_outputs():
    torch.manual_seed(3)
    mha = MultiHeadAttention(16, 2, rope=True).eval()
    x = torch.randn(2, 5, 16)
    p = torch.arange(5) + 7
    same_object = mha(x, x, positions=p)[0]
    equal_tensor = mha(x, x.clone(), positions=p)[0]
    assert torch.equal(same_object, equal_tensor)  # `key is query` must not matter
    self_attn = mha(x, positions=p)[0]  # key=None: self-attention, keys take the query positions
    assert torch.allclose(self_attn, mha(x, x.clone(), positions=p, key_positions=p)[0], atol=ATOL32)
    assert torch.allclose(self_attn, mha(x)[0], atol=1e-5)  # RoPE is relative: a shift of every position changes nothing


def test_rope_positions_for_cached_keys():
    """New queries at positions S-T..S-1 against keys 0..S-1: the last rows of the full pass."""
    torch.manual_seed(4)
    mha = MultiHeadAttention(16, 4, rope=True).eval()
    x = torch.randn(2, 6, 16)
    full_out, full_w = mha(x, mask=causal_mask(6))
    new_out, new_w = mha(x[:, -2:], x, positions=torch.arange(4, 6), mask=causal_mask(2, 6))
    assert torch.allclose(new_out, full_out[:, -2:], atol=ATOL32) and torch.allclose(new_w, full_w[:, :, -2:], atol=ATOL32)
    batch_positions = torch.arange(4, 6).expand(2, 2)  # (B, T) positions
    assert torch.allclose(mha(x[:, -2:], x, positions=batch_positions, mask=causal_mask(2, 6))[0], new_out, atol=ATOL32)


def test_module_and_inputs_in_float64():
    mha = MultiHeadAttention(8, 2, rope=True).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    out, w = mha(x, positions=torch.arange(3))
    assert out.dtype == w.dtype == torch.float64


def test_self_attention_input_is_checked_once_but_a_different_value_still_is():
    """`_check_inputs` skips key and value when they are the query itself (self-attention), and only then."""
    layer = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    out, weights = layer(x)
    assert out.shape == (1, 3, 8) and weights.shape == (1, 2, 3, 3)
    with pytest.raises(ValueError, match="must share B, and key and value S"):
        layer(x, value=torch.randn(1, 4, 8))  # key defaults to the query, the value has S = 4
    with pytest.raises(TypeError, match="value has dtype torch.float64"):
        layer(x, value=x.double())
    with pytest.raises(ValueError, match=r"key must have shape \(B, T, d_model=8\)"):
        layer(x, torch.randn(1, 3, 7))
