"""Positional encodings: formulas, the properties the lesson relies on, and reference implementations."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from attn_core import (
    LearnedPositionalEmbedding,
    SegmentEmbedding,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)


# --- sinusoidal ---------------------------------------------------------------------------

@pytest.mark.parametrize("d_model", [1, 2, 7, 8, 64])
def test_sinusoidal_matches_the_paper_formula(d_model):
    pe = sinusoidal_encoding(50, d_model, dtype=torch.float64)
    assert pe.shape == (50, d_model)
    for pos in (0, 1, 17, 49):
        for c in range(d_model):
            i = c // 2
            angle = pos / 10000 ** (2 * i / d_model)
            expected = math.sin(angle) if c % 2 == 0 else math.cos(angle)
            assert abs(pe[pos, c].item() - expected) < 1e-12
    if d_model % 2:  # odd: the last column is a sine
        last = d_model - 1
        assert abs(pe[5, last].item() - math.sin(5 / 10000 ** (last / d_model))) < 1e-12


def test_sinusoidal_base_and_uniqueness():
    pe = sinusoidal_encoding(512, 64, dtype=torch.float64)
    dists = torch.cdist(pe, pe)
    dists.fill_diagonal_(math.inf)
    assert dists.min() > 1e-3  # every position has its own vector
    pe100 = sinusoidal_encoding(4, 4, base=100.0, dtype=torch.float64)
    assert abs(pe100[3, 2].item() - math.sin(3 / 100 ** 0.5)) < 1e-12


@given(pos=st.integers(0, 500), k=st.integers(-50, 200), d_model=st.sampled_from([2, 4, 16, 64]))
def test_sinusoidal_offset_is_a_fixed_rotation(pos, k, d_model):
    pe = sinusoidal_encoding(800, d_model, dtype=torch.float64)
    m = sinusoidal_shift_matrix(k, d_model, dtype=torch.float64)
    if pos + k >= 0:
        assert torch.allclose(m @ pe[pos], pe[pos + k], atol=1e-9)
    assert torch.allclose(m @ m.T, torch.eye(d_model, dtype=torch.float64), atol=1e-12)  # a rotation


# --- learned and segment ---------------------------------------------------------------------

def test_learned_embedding_shapes_and_max_len_error():
    emb = LearnedPositionalEmbedding(max_len=8, d_model=4)
    assert emb(5).shape == (5, 4)
    assert torch.equal(emb(torch.arange(3)), emb.table.weight[:3])
    assert emb(torch.arange(8).repeat(2, 1)).shape == (2, 8, 4)
    with pytest.raises(ValueError, match=r"sequence length 9 exceeds max_len=8"):
        emb(9)
    with pytest.raises(ValueError, match=r"max_len=8.*0\.\.7"):
        emb(torch.arange(10))


def test_segment_embedding():
    seg = SegmentEmbedding(2, 6)
    ids = torch.tensor([[0, 0, 0, 1, 1]])
    out = seg(ids)
    assert out.shape == (1, 5, 6)
    assert torch.equal(out[0, 0], out[0, 2]) and not torch.equal(out[0, 0], out[0, 3])
    with pytest.raises(ValueError, match=r"segment_ids must lie in 0\.\.1"):
        seg(torch.tensor([[0, 2]]))
    with pytest.raises(TypeError, match="integer"):
        seg(torch.zeros(1, 2))


# --- RoPE ------------------------------------------------------------------------------------

def rope_roformer_complex(x, positions, base=10000.0):
    """Independent reference: RoFormer as complex multiplication of pairs (2i, 2i+1)."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.double()[:, None] * theta[None, :]
    xc = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(xc * torch.polar(torch.ones_like(angles), angles)).reshape(x.shape).to(x.dtype)


def rope_llama_rotate_half(x, positions, base=10000.0):
    """Independent reference: Hugging Face LLaMA's rotate_half convention, pairs (i, i + d/2)."""
    d = x.shape[-1]
    inv_freq = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    freqs = positions.double()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.double() * emb.cos() + rotated.double() * emb.sin()).to(x.dtype)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_rope_matches_reference_implementations(dtype, atol):
    x = torch.randn(2, 3, 11, 8, dtype=dtype)
    pos = torch.arange(11)
    assert torch.allclose(apply_rope(x), rope_roformer_complex(x, pos), atol=atol)
    assert torch.allclose(apply_rope(x, interleaved=False), rope_llama_rotate_half(x, pos), atol=atol)
    custom = torch.tensor([5, 0, 3, 100, 7, 7, 2, 9, 1, 40, 11])
    assert torch.allclose(apply_rope(x, custom, base=500.0), rope_roformer_complex(x, custom, 500.0), atol=atol)


def test_rope_numpy_equals_torch_and_position_zero_is_identity():
    x = torch.randn(4, 6, dtype=torch.float64)
    out_np = apply_rope(x.numpy())
    assert isinstance(out_np, np.ndarray)
    assert_allclose(out_np, apply_rope(x).numpy(), atol=1e-12)
    assert torch.allclose(apply_rope(x)[0], x[0])


@given(m=st.integers(0, 300), n=st.integers(0, 300), shift=st.integers(0, 300), seed=st.integers(0, 1000),
       interleaved=st.booleans())
def test_rope_keeps_norms_and_scores_depend_only_on_offset(m, n, shift, seed, interleaved):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(1, 16, generator=g, dtype=torch.float64), torch.randn(1, 16, generator=g, dtype=torch.float64)

    def score(a, b):
        return (apply_rope(q, torch.tensor([a]), interleaved=interleaved) @ apply_rope(k, torch.tensor([b]), interleaved=interleaved).T).item()

    rq = apply_rope(q, torch.tensor([m]), interleaved=interleaved)
    assert abs(rq.norm().item() - q.norm().item()) < 1e-10
    assert abs(score(m, n) - score(m + shift, n + shift)) < 1e-9


# --- ALiBi -----------------------------------------------------------------------------------

def alibi_paper_slopes(n):
    """The ALiBi authors' reference code for the slopes."""
    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + alibi_paper_slopes(2 * closest)[0::2][: n - closest]


def test_alibi_slopes_for_8_heads_are_powers_of_two():
    assert torch.equal(alibi_slopes(8, dtype=torch.float64), torch.tensor([2.0 ** -i for i in range(1, 9)], dtype=torch.float64))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 8, 12, 16, 20, 24, 32])
def test_alibi_slopes_match_the_paper_code(n):
    assert torch.allclose(alibi_slopes(n, dtype=torch.float64), torch.tensor(alibi_paper_slopes(n), dtype=torch.float64), atol=1e-15)


def test_alibi_bias_values_and_alignment():
    b = alibi_bias(4, 5)
    slopes = alibi_slopes(4)
    assert b.shape == (4, 5, 5)
    for h in range(4):
        for i in range(5):
            for j in range(5):
                assert b[h, i, j].item() == pytest.approx(-slopes[h].item() * abs(i - j))
    cached = alibi_bias(2, 2, 6)  # last 2 queries of 6 positions
    assert torch.equal(cached, alibi_bias(2, 6)[:, -2:])


# --- issue 8 ---------------------------------------------------------------------------------

def test_apply_rope_positions_broadcast_without_growing_x():
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)  # (B, H, T, D)
    per_batch = torch.stack([torch.arange(5), torch.arange(5) + 3])[:, None]  # (B, 1, T)
    out = apply_rope(x, per_batch)
    assert out.shape == x.shape
    assert torch.allclose(out[1], apply_rope(x[1], torch.arange(5) + 3), atol=1e-12)
    assert np.allclose(apply_rope(x.numpy(), per_batch.numpy()), out.numpy(), atol=1e-12)


def test_apply_rope_half_split_and_float_positions():
    x = torch.randn(4, 6, dtype=torch.float64)
    half = apply_rope(x, interleaved=False)
    assert not torch.allclose(half, apply_rope(x))
    assert torch.allclose(apply_rope(x, torch.arange(4.0)), apply_rope(x), atol=1e-12)


def test_float_dtypes_are_honoured():
    for dtype in (torch.float32, torch.float64):
        assert alibi_bias(2, 3, dtype=dtype).dtype == dtype
        assert alibi_slopes(3, dtype=dtype).dtype == dtype
        assert sinusoidal_encoding(3, 4, dtype=dtype).dtype == dtype
        assert sinusoidal_shift_matrix(1, 4, dtype=dtype).dtype == dtype


def test_learned_embedding_takes_numpy_integers_and_zero():
    emb = LearnedPositionalEmbedding(4, 8)
    assert emb(np.int64(3)).shape == (3, 8)
    assert emb(0).shape == (0, 8)
