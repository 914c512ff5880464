"""softmax and scaled_dot_product_attention against PyTorch, numpy against torch, and properties."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from attn_core import alibi_bias, causal_mask, mask_to_bias, padding_mask, scaled_dot_product_attention, softmax
from conftest import ATOL32, ATOL64


def rand(gen, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=gen, dtype=dtype)


# --- softmax -------------------------------------------------------------------------

def test_softmax_matches_torch_float64(gen):
    x = rand(gen, 3, 5, 7, dtype=torch.float64) * 10
    for axis in (-1, 0, 1):
        assert torch.allclose(softmax(x, axis=axis), torch.softmax(x, dim=axis), atol=ATOL64, rtol=0)


def test_softmax_numpy_equals_torch(gen):
    x = rand(gen, 4, 6, dtype=torch.float64)
    out = softmax(x.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert_allclose(out, softmax(x).numpy(), atol=ATOL64, rtol=0)


def test_softmax_does_not_overflow_on_large_logits():
    x = np.array([1e4, 1e4 - 1.0, -1e4])
    out = softmax(x)
    assert np.all(np.isfinite(out))
    assert_allclose(out, [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)), 0.0], atol=1e-12)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum()  # the overflow the stable version avoids
    assert np.isnan(naive).any()
    assert torch.isfinite(softmax(torch.tensor([1e4, 1e4], dtype=torch.float32))).all()


def test_softmax_minus_inf_entries_get_zero_and_all_minus_inf_row_is_nan():
    x = torch.tensor([[0.0, -math.inf, 1.0], [-math.inf, -math.inf, -math.inf]])
    out = softmax(x)
    assert out[0, 1] == 0.0 and torch.isclose(out[0].sum(), torch.tensor(1.0))
    assert torch.isnan(out[1]).all()  # documented: nothing to attend to


def test_softmax_keeps_autograd(gen):
    x = rand(gen, 2, 5, dtype=torch.float64).requires_grad_()
    g = rand(gen, 2, 5, dtype=torch.float64)
    (softmax(x) * g).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    (torch.softmax(x2, -1) * g).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=ATOL64)


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=12))
def test_softmax_rows_are_distributions(values):
    p = softmax(np.array(values))
    assert np.all(p >= 0) and abs(p.sum() - 1) < 1e-12


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=12), st.floats(-100, 100))
def test_softmax_is_shift_invariant(values, c):
    x = np.array(values)
    assert_allclose(softmax(x + c), softmax(x), atol=1e-12)


# --- scaled dot-product attention vs torch ---------------------------------------------

SHAPES = [  # (batch dims, T, S, d_k, d_v)
    ((), 4, 4, 8, 8),
    ((2,), 5, 5, 8, 3),
    ((2, 3), 6, 9, 16, 16),  # cross-attention T != S
    ((1, 2, 2), 3, 7, 4, 5),  # more than two leading dims
]


@pytest.mark.parametrize("lead,T,S,d_k,d_v", SHAPES)
@pytest.mark.parametrize("dtype,atol", [(torch.float32, ATOL32), (torch.float64, ATOL64)])
def test_sdpa_matches_torch(gen, lead, T, S, d_k, d_v, dtype, atol):
    q, k, v = rand(gen, *lead, T, d_k, dtype=dtype), rand(gen, *lead, S, d_k, dtype=dtype), rand(gen, *lead, S, d_v, dtype=dtype)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.shape == (*lead, T, d_v) and weights.shape == (*lead, T, S)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=atol, rtol=0)
    expected_w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d_k), dim=-1)
    assert torch.allclose(weights, expected_w, atol=atol, rtol=0)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, ATOL32), (torch.float64, ATOL64)])
def test_sdpa_matches_torch_with_masks_bias_and_scale(gen, dtype, atol):
    B, H, T, S, d = 2, 3, 5, 8, 4
    q, k, v = rand(gen, B, H, T, d, dtype=dtype), rand(gen, B, H, S, d, dtype=dtype), rand(gen, B, H, S, d, dtype=dtype)
    causal = causal_mask(T, S)  # aligned to the end: cached keys
    pad = padding_mask([8, 6], S)
    random_mask = torch.rand(B, 1, T, S, generator=gen) > 0.3
    bias = alibi_bias(H, T, S, dtype=dtype)
    cases = [
        dict(mask=causal),
        dict(mask=pad),
        dict(mask=causal & pad),
        dict(mask=random_mask),
        dict(bias=bias),
        dict(mask=causal, bias=bias),
        dict(mask=causal & pad, bias=bias, scale=0.3),
    ]
    for kw in cases:
        out, weights = scaled_dot_product_attention(q, k, v, **kw)
        mask = kw.get("mask")
        additive = torch.zeros(T, S, dtype=dtype)
        if mask is not None:
            additive = additive + mask_to_bias(mask, dtype=dtype)
        if "bias" in kw:
            additive = additive + kw["bias"]
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, scale=kw.get("scale"))
        assert torch.allclose(out, ref, atol=atol, rtol=0), kw.keys()
        if mask is not None:
            assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()  # exactly 0
        if mask is not None:  # torch's own boolean-mask path agrees too
            ref_bool = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=kw.get("scale")) if "bias" not in kw else ref
            assert torch.allclose(out, ref_bool, atol=atol, rtol=0)


def test_sdpa_causal_equals_torch_is_causal(gen):
    q, k, v = rand(gen, 2, 2, 6, 4), rand(gen, 2, 2, 6, 4), rand(gen, 2, 2, 6, 4)
    out, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL32)


def test_fully_masked_row_gives_zero_weights_and_output_like_torch(gen):
    q, k, v = rand(gen, 1, 2, 3, 4), rand(gen, 1, 2, 5, 4), rand(gen, 1, 2, 5, 4)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False  # query 1 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (weights[..., 1, :] == 0).all() and (out[..., 1, :] == 0).all()
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL32)
    assert torch.allclose(weights[..., [0, 2], :].sum(-1), torch.ones(1, 2, 2))
    # and the gradient stays finite
    qg = q.clone().requires_grad_()
    scaled_dot_product_attention(qg, k, v, mask=mask)[0].sum().backward()
    assert torch.isfinite(qg.grad).all()


def test_dead_rows_are_found_on_the_mask_not_on_the_scores(gen):
    """Fully masked rows are looked for in the mask/bias (e.g. (T, S)), not in the (B, H, T, S) scores, and
    the extra passes that zero them run only when there is one: with a causal mask the weights are the
    softmax itself (what made a training step of lesson 07 about 1.3x faster)."""
    q = rand(gen, 2, 3, 5, 4).requires_grad_()
    _, weights = scaled_dot_product_attention(q, q, q, mask=causal_mask(5))
    assert type(weights.grad_fn).__name__ == "SoftmaxBackward0"
    _, weights = scaled_dot_product_attention(q, q, q, mask=padding_mask([0, 5], 5))  # sequence 0: all padding
    assert type(weights.grad_fn).__name__ == "WhereBackward0" and (weights[0] == 0).all()
    bias = torch.zeros(5, 5)
    bias[2] = -math.inf  # a bias of -inf blocks like a mask: query 2 sees nothing
    out, weights = scaled_dot_product_attention(q, q, q, mask=causal_mask(5), bias=bias)
    assert (weights[..., 2, :] == 0).all() and (out[..., 2, :] == 0).all()
    for mask in (torch.tensor(False), np.array(False)):  # a 0-d mask blocks everything
        out, weights = scaled_dot_product_attention(q.detach(), q.detach(), q.detach(), mask=mask)
        assert (weights == 0).all() and (out == 0).all()


def test_sdpa_keeps_autograd(gen):
    q, k, v = (rand(gen, 2, 4, 3, dtype=torch.float64).requires_grad_() for _ in range(3))
    mask = causal_mask(4)
    (scaled_dot_product_attention(q, k, v, mask=mask)[0] ** 2).sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    (F.scaled_dot_product_attention(q2, k2, v2, attn_mask=mask) ** 2).sum().backward()
    for g, t in zip(grads, (q2, k2, v2)):
        assert torch.allclose(g, t.grad, atol=ATOL64)


# --- numpy path vs torch path ---------------------------------------------------------

def test_sdpa_numpy_equals_torch(gen):
    q, k, v = rand(gen, 2, 3, 5, 4, dtype=torch.float64), rand(gen, 2, 3, 7, 4, dtype=torch.float64), rand(gen, 2, 3, 7, 6, dtype=torch.float64)
    mask = causal_mask(5, 7) & padding_mask([7, 4], 7)
    bias = alibi_bias(3, 5, 7, dtype=torch.float64)
    out_t, w_t = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)
    out_n, w_n = scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy(), mask=mask.numpy(), bias=bias.numpy())
    assert isinstance(out_n, np.ndarray) and isinstance(w_n, np.ndarray)
    assert_allclose(out_n, out_t.numpy(), atol=ATOL64, rtol=0)
    assert_allclose(w_n, w_t.numpy(), atol=ATOL64, rtol=0)


def test_numpy_mask_with_torch_inputs_and_vice_versa(gen):
    q = rand(gen, 4, 3)
    mask_t = causal_mask(4)
    out_a, _ = scaled_dot_product_attention(q, q, q, mask=mask_t.numpy())  # numpy mask, torch q
    out_b, _ = scaled_dot_product_attention(q, q, q, mask=mask_t)
    assert isinstance(out_a, torch.Tensor) and torch.equal(out_a, out_b)
    out_c, _ = scaled_dot_product_attention(q.numpy(), q.numpy(), q.numpy(), mask=mask_t, bias=torch.zeros(4, 4))
    assert isinstance(out_c, np.ndarray)
    assert_allclose(out_c, out_b.numpy(), atol=1e-6)


# --- properties -------------------------------------------------------------------------

@given(T=st.integers(1, 6), S=st.integers(1, 6), d=st.integers(1, 5), seed=st.integers(0, 10_000), p=st.floats(0.0, 1.0))
def test_weights_rows_sum_to_one_and_masked_weights_are_zero(T, S, d, seed, p):
    g = torch.Generator().manual_seed(seed)
    q, k, v = rand(g, T, d, dtype=torch.float64), rand(g, S, d, dtype=torch.float64), rand(g, S, 2, dtype=torch.float64)
    mask = torch.rand(T, S, generator=g) >= p
    _, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (weights[~mask] == 0).all()
    has_key = mask.any(-1)
    assert torch.allclose(weights[has_key].sum(-1), torch.ones(int(has_key.sum()), dtype=torch.float64), atol=1e-12)
    assert (weights[~has_key] == 0).all()


@given(T=st.integers(2, 7), seed=st.integers(0, 10_000))
def test_self_attention_is_permutation_equivariant(T, seed):
    g = torch.Generator().manual_seed(seed)
    x = rand(g, T, 6, dtype=torch.float64)
    w_q, w_k, w_v = (rand(g, 6, 6, dtype=torch.float64) for _ in range(3))
    perm = torch.randperm(T, generator=g)
    out, _ = scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)
    xp = x[perm]
    out_p, _ = scaled_dot_product_attention(xp @ w_q, xp @ w_k, xp @ w_v)
    assert torch.allclose(out_p, out[perm], atol=1e-12)


@given(T=st.integers(2, 8), t=st.integers(0, 7), seed=st.integers(0, 10_000))
def test_causal_output_at_t_ignores_tokens_after_t(T, t, seed):
    t = t % T
    g = torch.Generator().manual_seed(seed)
    x = rand(g, T, 4, dtype=torch.float64)
    changed = x.clone()
    changed[t + 1 :] = rand(g, T - t - 1, 4, dtype=torch.float64)
    mask = causal_mask(T)
    out, _ = scaled_dot_product_attention(x, x, x, mask=mask)
    out_c, _ = scaled_dot_product_attention(changed, changed, changed, mask=mask)
    assert torch.allclose(out[: t + 1], out_c[: t + 1], atol=1e-12)
    if t + 1 < T:  # without the mask, the past does see the change
        free, _ = scaled_dot_product_attention(x, x, x)
        free_c, _ = scaled_dot_product_attention(changed, changed, changed)
        assert not torch.allclose(free[: t + 1], free_c[: t + 1])


# --- issue 8: numpy and torch agree on the edges ---------------------------------------------

@pytest.mark.parametrize("shape,axis", [((0,), -1), ((0, 3), 0), ((0, 3), -1), ((3, 0), -1), ((3, 0), 0)])
def test_softmax_of_an_empty_array(shape, axis):
    out_np = softmax(np.zeros(shape), axis=axis)
    out_t = softmax(torch.zeros(shape, dtype=torch.float64), axis=axis)
    assert out_np.shape == tuple(out_t.shape) == shape and out_np.dtype == np.float64


def test_numpy_float32_stays_float32_with_a_float64_scale():
    q = np.ones((2, 4), np.float32)
    for scale in (np.float64(0.5), 0.5, torch.tensor(0.5, dtype=torch.float64)):
        out, w = scaled_dot_product_attention(q, q, q, scale=scale)
        assert out.dtype == w.dtype == np.float32
    out_t, _ = scaled_dot_product_attention(torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), scale=np.float64(0.5))
    assert out_t.dtype == torch.float32


def test_no_keys_gives_zero_output_in_both_paths():
    q = np.ones((2, 3))
    k, v = np.zeros((0, 3)), np.zeros((0, 4))
    out_np, w_np = scaled_dot_product_attention(q, k, v)
    out_t, w_t = scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)))
    assert out_np.shape == (2, 4) and (out_np == 0).all() and w_np.shape == (2, 0)
    assert torch.equal(out_t, torch.zeros(2, 4, dtype=torch.float64)) and w_t.shape == (2, 0)
