"""Online softmax and tiled attention equal the plain computations (issue 10)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_core import scaled_dot_product_attention, softmax
from attn_core.tiled import online_softmax, tiled_attention
from conftest import ATOL32, ATOL64

FEW = settings(max_examples=25, deadline=None, derandomize=True)


def _randn(seed, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@FEW
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), block=st.integers(1, 10), seed=st.integers(0, 999),
       with_inf=st.booleans())
def test_online_softmax_equals_softmax(shape, block, seed, with_inf):
    x = _randn(seed, *shape) * 30
    if with_inf:
        x = x.masked_fill(torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.4, -math.inf)
        x[..., -1] = 0.0  # keep one finite entry per row: an all -inf row is nan in both (tested below)
    for arr in (x, x.numpy(), x.float(), x.float().numpy()):
        out = online_softmax(arr, block_size=block)
        assert type(out) is type(arr) and out.dtype == arr.dtype and out.shape == arr.shape
        np.testing.assert_allclose(np.asarray(out), np.asarray(softmax(arr)), atol=ATOL64 if arr.dtype in (torch.float64, np.float64) else ATOL32)


def test_online_softmax_all_inf_row_is_nan_like_softmax_and_early_inf_block_is_harmless():
    x = np.array([[-np.inf, -np.inf, -np.inf, -np.inf], [-np.inf, -np.inf, 1.0, 2.0]])
    out = online_softmax(x, block_size=2)  # the second row's first block is all -inf
    assert np.isnan(out[0]).all() and np.isnan(softmax(x)[0]).all()
    np.testing.assert_allclose(out[1], softmax(x)[1], atol=ATOL64)


def test_online_softmax_does_not_overflow():
    x = np.array([1e4, 1e4 - 1.0, -1e4, 1e4 + 2.0])
    np.testing.assert_allclose(online_softmax(x, block_size=1), softmax(x), atol=ATOL64)


def _attention_case(seed, lead, T, S, d_k, d_v, mask_kind, with_bias, dtype):
    q, k, v = _randn(seed, *lead, T, d_k, dtype=dtype), _randn(seed + 1, *lead, S, d_k, dtype=dtype), _randn(seed + 2, *lead, S, d_v, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 3)
    mask = {
        "none": None,
        "causal": torch.ones(T, S, dtype=torch.bool).tril(S - T) if S >= T else None,
        "random": torch.rand(T, S, generator=g) < 0.5,  # some rows fully masked
        "padding": (torch.rand(*lead[:1], 1, 1, S, generator=g) < 0.6) if lead else torch.rand(1, S, generator=g) < 0.6,
        "one column": torch.rand(T, 1, generator=g) < 0.7,  # broadcast over keys: whole rows masked
    }[mask_kind]
    bias = _randn(seed + 4, T, S, dtype=dtype) if with_bias else None
    return q, k, v, mask, bias


@FEW
@given(lead=st.lists(st.integers(1, 3), max_size=2).map(tuple), T=st.integers(1, 9), S=st.integers(1, 13),
       d_k=st.integers(1, 5), d_v=st.integers(1, 5), block=st.integers(1, 16), seed=st.integers(0, 999),
       mask_kind=st.sampled_from(["none", "causal", "random", "padding", "one column"]), with_bias=st.booleans(),
       scale=st.none() | st.floats(-2, 2))
def test_tiled_attention_equals_sdpa(lead, T, S, d_k, d_v, block, seed, mask_kind, with_bias, scale):
    for dtype, atol in ((torch.float64, ATOL64), (torch.float32, ATOL32)):
        q, k, v, mask, bias = _attention_case(seed, lead, T, S, d_k, d_v, mask_kind, with_bias, dtype)
        ref, _ = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias, scale=scale)
        out = tiled_attention(q, k, v, mask=mask, bias=bias, scale=scale, block_size=block)
        assert out.dtype == dtype and out.shape == ref.shape and not out.isnan().any()
        torch.testing.assert_close(out, ref, atol=atol, rtol=0)
        out_np = tiled_attention(q.numpy(), k.numpy(), v.numpy(), mask=None if mask is None else mask.numpy(),
                                 bias=None if bias is None else bias.numpy(), scale=scale, block_size=block)
        assert isinstance(out_np, np.ndarray) and out_np.dtype == q.numpy().dtype
        np.testing.assert_allclose(out_np, ref.numpy(), atol=atol, rtol=0)


def test_fully_masked_rows_and_blocks_give_zeros_not_nan():
    q, k, v = _randn(0, 2, 5, 4), _randn(1, 2, 10, 4), _randn(2, 2, 10, 3)
    mask = torch.ones(5, 10, dtype=torch.bool)
    mask[1] = False  # a query that sees nothing
    mask[3, :8] = False  # a query whose first two blocks (of 4) are fully masked
    out = tiled_attention(q, k, v, mask=mask, block_size=4)
    assert not out.isnan().any() and (out[:, 1] == 0).all()
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, mask=mask)[0], atol=ATOL64, rtol=0)


def test_one_token_and_more_keys_than_queries():
    q, k, v = _randn(0, 1, 1, 8), _randn(1, 1, 37, 8), _randn(2, 1, 37, 8)
    from attn_core import causal_mask
    for block in (1, 5, 36, 37, 100):
        torch.testing.assert_close(tiled_attention(q, k, v, mask=causal_mask(1, 37), block_size=block),
                                   scaled_dot_product_attention(q, k, v, mask=causal_mask(1, 37))[0], atol=ATOL64, rtol=0)


def test_empty_keys_give_zeros_like_sdpa():
    q, k, v = _randn(0, 3, 4), _randn(1, 0, 4), _randn(2, 0, 2)
    assert torch.equal(tiled_attention(q, k, v), scaled_dot_product_attention(q, k, v)[0])


def test_gradient_matches_sdpa_and_passes_gradcheck():
    q, k, v = (_randn(s, 2, 4, 3).requires_grad_() for s in range(3))
    k2, v2 = _randn(3, 2, 7, 3).requires_grad_(), _randn(4, 2, 7, 3).requires_grad_()
    mask = torch.ones(4, 7, dtype=torch.bool).tril(3)
    mask[0] = False  # a fully masked row: its gradient must stay finite (zero)
    bias = _randn(5, 4, 7).requires_grad_()
    fn = lambda q, k, v, bias: tiled_attention(q, k, v, mask=mask, bias=bias, block_size=3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k2, v2, bias))
    assert torch.autograd.gradcheck(lambda x: online_softmax(x, block_size=2), (_randn(6, 3, 5).requires_grad_(),))
    grads = torch.autograd.grad(fn(q, k2, v2, bias).sum(), (q, k2, v2, bias))
    ref = torch.autograd.grad(scaled_dot_product_attention(q, k2, v2, mask=mask, bias=bias)[0].sum(), (q, k2, v2, bias))
    for g, r in zip(grads, ref):
        assert g.isfinite().all()
        torch.testing.assert_close(g, r, atol=ATOL64, rtol=0)


def test_never_materialises_the_score_matrix():
    T = S = 2048
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((T, 16)) for _ in range(3))
    mask = np.tril(np.ones((T, S), dtype=bool))  # the caller's mask exists already; not counted below

    def peak(fn):
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    score_matrix, score_block = T * S * 8, T * 64 * 8  # float64 bytes
    plain = peak(lambda: scaled_dot_product_attention(q, k, v, mask=mask))
    tiled = peak(lambda: tiled_attention(q, k, v, mask=mask, block_size=64))
    assert plain > 2 * score_matrix  # the plain version holds (T, S) scores and weights
    assert tiled < 8 * score_block < score_matrix / 2  # a few (T, 64) blocks of temporaries only


@pytest.mark.parametrize("block_size,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("8", TypeError),
                                              (True, TypeError), (None, TypeError)])
def test_bad_block_size_is_named(block_size, error):
    q = torch.zeros(2, 3)
    with pytest.raises(error, match="block_size"):
        tiled_attention(q, q, q, block_size=block_size)
    with pytest.raises(error, match="block_size"):
        online_softmax(q, block_size=block_size)


def test_bad_inputs_get_the_sdpa_errors():
    q, k, v = torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 5, 6)
    with pytest.raises(ValueError, match="d_k"):
        tiled_attention(q, k[..., :3], v)
    with pytest.raises(TypeError, match="mask"):
        tiled_attention(q, k, v, mask=torch.ones(3, 5))
    with pytest.raises(ValueError, match="mask"):
        tiled_attention(q, k, v, mask=torch.ones(5, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bias"):
        tiled_attention(q, k, v, bias=torch.zeros(4, 3, 5))
    with pytest.raises(TypeError, match="same dtype"):
        tiled_attention(q, k.double(), v)
    with pytest.raises(TypeError, match="x"):
        online_softmax(torch.arange(3))
    with pytest.raises(ValueError, match="x"):
        online_softmax(torch.tensor(1.0))
