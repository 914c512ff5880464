"""Property-based contracts of every public name of `attn_core` (issue 8).

For each public function and class (enumerated from `attn_core.__all__` and
`attn_core.positional.__all__`, so a new public name without coverage fails
`test_every_public_name_is_covered`):

- random valid inputs agree with the PyTorch reference where one exists
  (`F.scaled_dot_product_attention`, `torch.softmax`, `nn.MultiheadAttention`,
  `nn.Embedding`, `FlopCounterMode`, transformers' `BertModel`, the papers' formulas ...),
  or satisfy the property the lessons state where none exists;
- random invalid inputs (wrong rank, dtype, size, kind, value) raise `ValueError` or
  `TypeError` whose message names the argument, and never any other exception.

`INPUT_CLASSES` counts the classes of inputs covered (one per valid class, one per
invalid case); the issue's closing note reports that number.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import attn_core
import attn_core.positional
from attn_core import heads as H_
from attn_core.multihead import MultiHeadAttention

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

# Non-callable public names and the type each must have.
CONSTANTS = {"POSITIONAL_SCHEMES": tuple, "IGNORE_INDEX": int, "NORMS": tuple}

# Public names whose contracts live in another test file, because they cannot be covered here.
COVERED_ELSEWHERE: dict[str, str] = {}


def public_names() -> dict[str, object]:
    names = {}
    for module in (attn_core, attn_core.positional):
        for name in module.__all__:
            names[name] = getattr(module, name)
    return names


VALID: dict[str, list[tuple[str, Callable]]] = {}  # name -> [(input class, test taking hypothesis data)]
INVALID: dict[str, list[tuple[str, str, Callable]]] = {}  # name -> [(input class, argument, data -> thunk)]


def valid(name: str, label: str):
    def register(fn):
        VALID.setdefault(name, []).append((label, fn))
        return fn
    return register


def invalid(name: str, label: str, arg: str, make: Callable):
    INVALID.setdefault(name, []).append((label, arg, make))


def close(a, b, atol=1e-10):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, atol=atol, rtol=1e-7, equal_nan=True)


def randn(d, *shape, dtype=torch.float64):
    seed = d.draw(st.integers(0, 2**16), label="seed")
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def rand_bool(d, *shape, p=0.7):
    seed = d.draw(st.integers(0, 2**16), label="seed")
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed)) < p


def size(d, lo=1, hi=5, label=None):
    return d.draw(st.integers(lo, hi), label=label)


# Bad values of each kind, drawn for the invalid cases.
NOT_AN_ARRAY = st.sampled_from([[[1.0, 2.0]], "abc", None, 3.5, {"a": 1}])
NOT_AN_INT = st.sampled_from([1.5, "3", None, True, [2]])
NOT_AN_INT_NOR_NONE = st.sampled_from([1.5, "3", True, [2]])  # for arguments where None means "the default"
NON_POSITIVE_INT = st.integers(-5, 0)
NOT_A_FLAG = st.sampled_from(["no", "yes", 1, 0, None, 1.0])
BAD_BASE = st.sampled_from([0, -1.0, float("inf"), float("nan"), -1e4])
NOT_A_NUMBER = st.sampled_from(["10000", None, [1.0], True])
NON_FLOAT_TORCH_DTYPE = st.sampled_from([torch.int64, torch.int32, torch.bool, torch.uint8, torch.complex64])
INT_OR_BOOL_TORCH = st.sampled_from([torch.int64, torch.int32, torch.bool])


# =============================================================================== softmax


@valid("softmax", "float64 and float32 arrays of 1-3 axes (with -inf entries), any axis, numpy and torch")
def _(d):
    shape = d.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3), label="shape")
    axis = d.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    dtype = d.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    x = randn(d, *shape, dtype=dtype) * 20
    if d.draw(st.booleans(), label="with -inf"):
        x = x.masked_fill(rand_bool(d, *shape, p=0.3), -math.inf)
    ref = torch.softmax(x, dim=axis)
    close(attn_core.softmax(x, axis=axis), ref, atol=1e-6)
    out_np = attn_core.softmax(x.numpy(), axis=axis)
    assert out_np.dtype == x.numpy().dtype
    close(out_np, ref, atol=1e-6)


@valid("softmax", "empty arrays")
def _(d):
    shape = d.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3).filter(lambda s: 0 in s), label="shape")
    axis = d.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = torch.zeros(shape, dtype=torch.float64)
    assert attn_core.softmax(x, axis=axis).shape == tuple(shape) == attn_core.softmax(x.numpy(), axis=axis).shape


invalid("softmax", "not an array", "x", lambda d: lambda: attn_core.softmax(d.draw(NOT_AN_ARRAY)))
invalid("softmax", "integer or boolean array", "x",
        lambda d: lambda: attn_core.softmax(torch.zeros(3, dtype=d.draw(INT_OR_BOOL_TORCH))))
invalid("softmax", "integer numpy array", "x", lambda d: lambda: attn_core.softmax(np.arange(3)))
invalid("softmax", "0-d array", "x", lambda d: lambda: attn_core.softmax(torch.tensor(1.0)))
invalid("softmax", "axis out of range", "axis",
        lambda d: (lambda n=d.draw(st.integers(1, 3)), a=d.draw(st.sampled_from([-9, -4, 3, 7])):
                   lambda: attn_core.softmax(torch.zeros((2,) * n), axis=a if abs(a) > n else n))())
invalid("softmax", "axis not an int", "axis", lambda d: lambda: attn_core.softmax(torch.zeros(3), axis=d.draw(NOT_AN_INT)))


# =============================================================================== scaled_dot_product_attention


def _sdpa_inputs(d, dtype=torch.float64):
    lead = tuple(d.draw(st.lists(st.integers(1, 3), max_size=2), label="lead"))
    T, S, d_k, d_v = size(d), size(d, 0, 5), size(d), size(d)
    return lead, T, S, randn(d, *lead, T, d_k, dtype=dtype), randn(d, *lead, S, d_k, dtype=dtype), randn(d, *lead, S, d_v, dtype=dtype)


@valid("scaled_dot_product_attention", "random q, k, v (S may be 0), optional mask / bias / scale, torch and numpy")
def _(d):
    lead, T, S, q, k, v = _sdpa_inputs(d)
    mask = rand_bool(d, *d.draw(st.sampled_from([(T, S), (*lead, T, S), (1, S)]), label="mask shape")) \
        if d.draw(st.booleans(), label="mask") else None
    bias = randn(d, *d.draw(st.sampled_from([(T, S), (*lead, T, S)]), label="bias shape")) \
        if d.draw(st.booleans(), label="bias") else None
    scale = d.draw(st.none() | st.floats(-3, 3), label="scale")
    attn = None
    if mask is not None or bias is not None:
        attn = torch.zeros(()) if bias is None else bias
        if mask is not None:
            attn = (attn + torch.zeros(mask.shape, dtype=torch.float64)).masked_fill(~mask, -math.inf)
    out, weights = attn_core.scaled_dot_product_attention(q, k, v, mask=mask, bias=bias, scale=scale)
    if S > 0:
        close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=attn, scale=scale))
    else:
        close(out, torch.zeros_like(out))
    out_np, w_np = attn_core.scaled_dot_product_attention(
        q.numpy(), k.numpy(), v.numpy(), mask=None if mask is None else mask.numpy(),
        bias=None if bias is None else bias.numpy(), scale=scale)
    close(out_np, out)
    close(w_np, weights)


@valid("scaled_dot_product_attention", "float32 inputs keep float32 whatever the scale's type")
def _(d):
    _, _, _, q, k, v = _sdpa_inputs(d, dtype=torch.float32)
    scale = d.draw(st.sampled_from([0.5, np.float64(0.5), torch.tensor(0.5, dtype=torch.float64), None]))
    assert attn_core.scaled_dot_product_attention(q, k, v, scale=scale)[0].dtype == torch.float32
    assert attn_core.scaled_dot_product_attention(q.numpy(), k.numpy(), v.numpy(), scale=scale)[0].dtype == np.float32


def _sdpa_bad(arg, fn):
    return lambda d: (lambda q=randn(d, 2, 3, 4), k=randn(d, 2, 5, 4), v=randn(d, 2, 5, 6): lambda: fn(d, q, k, v))()


SDPA = attn_core.scaled_dot_product_attention
invalid("scaled_dot_product_attention", "q not an array", "q", _sdpa_bad("q", lambda d, q, k, v: SDPA(d.draw(NOT_AN_ARRAY), k, v)))
invalid("scaled_dot_product_attention", "k of rank 1", "k", _sdpa_bad("k", lambda d, q, k, v: SDPA(q, k[0, 0], v)))
invalid("scaled_dot_product_attention", "v of another length S", "v", _sdpa_bad("v", lambda d, q, k, v: SDPA(q, k, v[:, :-1])))
invalid("scaled_dot_product_attention", "k of another d_k", "d_k", _sdpa_bad("k", lambda d, q, k, v: SDPA(q, k[..., :-1], v)))
invalid("scaled_dot_product_attention", "d_k = 0", "d_k", _sdpa_bad("q", lambda d, q, k, v: SDPA(q[..., :0], k[..., :0], v)))
invalid("scaled_dot_product_attention", "integer q", "q",
        _sdpa_bad("q", lambda d, q, k, v: SDPA(q.to(d.draw(INT_OR_BOOL_TORCH)), k, v)))
invalid("scaled_dot_product_attention", "mixed float32 / float64", "dtype",
        _sdpa_bad("q", lambda d, q, k, v: SDPA(q, k.float(), v) if d.draw(st.booleans()) else SDPA(q.numpy(), k.numpy(), v.float().numpy())))
invalid("scaled_dot_product_attention", "numpy and torch mixed", "same kind", _sdpa_bad("k", lambda d, q, k, v: SDPA(q, k.numpy(), v)))
invalid("scaled_dot_product_attention", "batch dimensions that do not broadcast", "leading",
        _sdpa_bad("q", lambda d, q, k, v: SDPA(q.expand(3, 2, 3, 4), k.expand(4, 2, 5, 4), v.expand(4, 2, 5, 6))))
invalid("scaled_dot_product_attention", "float mask", "mask", _sdpa_bad("mask", lambda d, q, k, v: SDPA(q, k, v, mask=torch.ones(3, 5))))
invalid("scaled_dot_product_attention", "mask of the wrong size", "mask",
        _sdpa_bad("mask", lambda d, q, k, v: SDPA(q, k, v, mask=torch.ones(d.draw(st.sampled_from([(5, 3), (3, 4), (4, 3, 5)])), dtype=torch.bool))))
invalid("scaled_dot_product_attention", "mask not an array", "mask", _sdpa_bad("mask", lambda d, q, k, v: SDPA(q, k, v, mask=[[True]])))
invalid("scaled_dot_product_attention", "boolean or integer bias", "bias",
        _sdpa_bad("bias", lambda d, q, k, v: SDPA(q, k, v, bias=torch.zeros(3, 5, dtype=d.draw(INT_OR_BOOL_TORCH)))))
invalid("scaled_dot_product_attention", "bias of the wrong size", "bias", _sdpa_bad("bias", lambda d, q, k, v: SDPA(q, k, v, bias=torch.zeros(4, 3, 5))))
invalid("scaled_dot_product_attention", "scale not a finite number", "scale",
        _sdpa_bad("scale", lambda d, q, k, v: SDPA(q, k, v, scale=d.draw(st.sampled_from(["0.5", [1.0], float("nan"), float("inf"), True])))))


# =============================================================================== masks


@valid("causal_mask", "T <= S, torch.tril reference")
def _(d):
    T = size(d, 1, 8)
    S = d.draw(st.none() | st.integers(T, 10), label="S")
    ref = torch.ones(T, T if S is None else S, dtype=torch.bool).tril(0 if S is None else S - T)
    assert torch.equal(attn_core.causal_mask(T, S), ref)
    assert torch.equal(attn_core.causal_mask(T, S), F.scaled_dot_product_attention(
        torch.zeros(T, 1), torch.zeros(ref.shape[1], 1), torch.eye(ref.shape[1]), attn_mask=ref) > 0)


invalid("causal_mask", "T not a whole number", "T", lambda d: lambda: attn_core.causal_mask(d.draw(NOT_AN_INT)))
invalid("causal_mask", "T < 1", "T", lambda d: lambda: attn_core.causal_mask(d.draw(NON_POSITIVE_INT)))
invalid("causal_mask", "S not a whole number", "S", lambda d: lambda: attn_core.causal_mask(3, d.draw(st.sampled_from([2.5, "4", True]))))
invalid("causal_mask", "S < T", "S", lambda d: lambda: attn_core.causal_mask(d.draw(st.integers(2, 8)), 1))


@valid("padding_mask", "list, numpy and torch lengths in 0..S")
def _(d):
    S = size(d, 1, 6)
    lengths = d.draw(st.lists(st.integers(0, S), min_size=1, max_size=4), label="lengths")
    ref = (torch.arange(S)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]
    assert torch.equal(attn_core.padding_mask(lengths, S), ref)
    assert torch.equal(attn_core.padding_mask(torch.tensor(lengths), S), ref)
    assert (attn_core.padding_mask(np.array(lengths), S) == ref.numpy()).all()


invalid("padding_mask", "lengths not a sequence", "lengths", lambda d: lambda: attn_core.padding_mask(d.draw(st.sampled_from(["23", 3, None, 2.5])), 4))
invalid("padding_mask", "empty lengths", "lengths", lambda d: lambda: attn_core.padding_mask(d.draw(st.sampled_from([[], np.array([], dtype=int), torch.tensor([], dtype=torch.long)])), 4))
invalid("padding_mask", "lengths of rank 2", "lengths", lambda d: lambda: attn_core.padding_mask([[1, 2]], 4))
invalid("padding_mask", "fractional or boolean lengths", "lengths", lambda d: lambda: attn_core.padding_mask(d.draw(st.sampled_from([[1.5], [True, False], np.array([1.0])])), 4))
invalid("padding_mask", "lengths outside 0..S", "lengths", lambda d: lambda: attn_core.padding_mask([d.draw(st.sampled_from([-1, 5, 9]))], 4))
invalid("padding_mask", "S < 1", "S", lambda d: lambda: attn_core.padding_mask([1], d.draw(NON_POSITIVE_INT)))


@valid("mask_to_bias", "boolean numpy or torch masks, any float dtype of either library")
def _(d):
    shape = d.draw(st.lists(st.integers(0, 4), max_size=3), label="shape")
    m = rand_bool(d, *shape)
    dtype = d.draw(st.sampled_from([None, torch.float32, torch.float64, np.float32, "float64"]), label="dtype")
    ref = torch.zeros(shape, dtype=torch.float64).masked_fill(~m, -math.inf)
    out_t, out_np = attn_core.mask_to_bias(m, dtype=dtype), attn_core.mask_to_bias(m.numpy(), dtype=dtype)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype.is_floating_point and isinstance(out_np, np.ndarray)
    close(out_t.double(), ref)
    close(out_np.astype(np.float64), ref)


invalid("mask_to_bias", "not an array", "mask", lambda d: lambda: attn_core.mask_to_bias(d.draw(NOT_AN_ARRAY)))
invalid("mask_to_bias", "a float or integer mask", "mask", lambda d: lambda: attn_core.mask_to_bias(torch.ones(2, 2, dtype=d.draw(st.sampled_from([torch.float32, torch.int64])))))
invalid("mask_to_bias", "a non-floating dtype", "dtype",
        lambda d: lambda: attn_core.mask_to_bias(attn_core.causal_mask(2), dtype=d.draw(NON_FLOAT_TORCH_DTYPE | st.sampled_from([np.int32, "int64", bool, "nonsense"]))))


@valid("sliding_window_mask", "causal and two-sided windows, S >= T, loop reference")
def _(d):
    T = size(d, 1, 7)
    S, w, causal = d.draw(st.integers(T, 9), label="S"), size(d, 1, 10), d.draw(st.booleans(), label="causal")
    ref = torch.tensor([[(0 <= i + S - T - j < w) if causal else abs(i + S - T - j) < w for j in range(S)] for i in range(T)])
    assert torch.equal(attn_core.sliding_window_mask(T, w, S, causal=causal), ref)


invalid("sliding_window_mask", "window < 1", "window", lambda d: lambda: attn_core.sliding_window_mask(4, d.draw(NON_POSITIVE_INT)))
invalid("sliding_window_mask", "window not a whole number", "window", lambda d: lambda: attn_core.sliding_window_mask(4, d.draw(NOT_AN_INT)))
invalid("sliding_window_mask", "causal not a bool", "causal", lambda d: lambda: attn_core.sliding_window_mask(4, 2, causal=d.draw(NOT_A_FLAG)))
invalid("sliding_window_mask", "S < T", "S", lambda d: lambda: attn_core.sliding_window_mask(5, 2, S=d.draw(st.integers(1, 4))))
invalid("sliding_window_mask", "T < 1", "T", lambda d: lambda: attn_core.sliding_window_mask(d.draw(NON_POSITIVE_INT), 2))


# =============================================================================== multi-head


@valid("split_heads", "any leading dimensions, numpy and torch, slice reference")
def _(d):
    lead = d.draw(st.lists(st.integers(1, 3), max_size=2), label="lead")
    T, H, d_head = size(d), size(d, 1, 4), size(d, 1, 3)
    x = randn(d, *lead, T, H * d_head)
    ref = torch.stack([x[..., h * d_head:(h + 1) * d_head] for h in range(H)], dim=-3)  # (..., H, T, d_head)
    assert torch.equal(attn_core.split_heads(x, H), ref)
    assert (attn_core.split_heads(x.numpy(), H) == ref.numpy()).all()


invalid("split_heads", "x of rank 1", "x", lambda d: lambda: attn_core.split_heads(torch.zeros(d.draw(st.integers(1, 8))), 1))
invalid("split_heads", "x not an array", "x", lambda d: lambda: attn_core.split_heads(d.draw(NOT_AN_ARRAY), 1))
invalid("split_heads", "n_heads not dividing d_model", "n_heads", lambda d: lambda: attn_core.split_heads(torch.zeros(2, 3, 10), d.draw(st.sampled_from([3, 4, 6, 7]))))
invalid("split_heads", "n_heads < 1 or not whole", "n_heads", lambda d: lambda: attn_core.split_heads(torch.zeros(2, 3, 4), d.draw(NON_POSITIVE_INT | NOT_AN_INT)))


@valid("merge_heads", "inverse of split_heads, concatenation reference")
def _(d):
    lead = d.draw(st.lists(st.integers(1, 3), max_size=2), label="lead")
    x = randn(d, *lead, size(d, 1, 4), size(d), size(d, 1, 3))  # (..., H, T, d_head)
    ref = torch.cat(x.unbind(dim=-3), dim=-1)  # (..., T, H * d_head)
    assert torch.equal(attn_core.merge_heads(x), ref)
    assert (attn_core.merge_heads(x.numpy()) == ref.numpy()).all()
    assert torch.equal(attn_core.split_heads(attn_core.merge_heads(x), x.shape[-3]), x)


invalid("merge_heads", "x of rank < 3", "x", lambda d: lambda: attn_core.merge_heads(torch.zeros((2,) * d.draw(st.integers(0, 2)))))
invalid("merge_heads", "x not an array", "x", lambda d: lambda: attn_core.merge_heads(d.draw(NOT_AN_ARRAY)))


def _nn_mha(d, d_model, H, bias=True):
    torch.manual_seed(d.draw(st.integers(0, 1000), label="weights"))
    return nn.MultiheadAttention(d_model, H, bias=bias, batch_first=True, dtype=torch.float64).eval()


@valid("MultiHeadAttention", "self- and cross-attention with (T, S), (B, T, S), (B, 1, 1, S) and (B, H, T, S) masks vs nn.MultiheadAttention")
def _(d):
    B, T, S, H, d_head = size(d, 1, 3), size(d, 1, 4), size(d, 1, 4), size(d, 1, 3), size(d, 1, 3)
    d_model = H * d_head
    theirs = _nn_mha(d, d_model, H, bias=d.draw(st.booleans(), label="bias"))
    ours = MultiHeadAttention.from_torch(theirs)
    self_attention = d.draw(st.booleans(), label="self-attention")
    if self_attention:
        S = T
    query, key = randn(d, B, T, d_model), randn(d, B, S, d_model)
    kind = d.draw(st.sampled_from(["none", "(T, S)", "(B, T, S)", "(B, 1, 1, S)", "(B, H, T, S)"]), label="mask")
    mask = {"none": None, "(T, S)": rand_bool(d, T, S), "(B, T, S)": rand_bool(d, B, T, S),
            "(B, 1, 1, S)": rand_bool(d, B, 1, 1, S), "(B, H, T, S)": rand_bool(d, B, H, T, S)}[kind]
    full = None if mask is None else (mask[None, None] if mask.ndim == 2 else mask[:, None] if mask.ndim == 3 else mask)
    full = None if full is None else full.expand(B, H, T, S)  # what each head of each sequence may see
    args = (query,) if self_attention else (query, key, key)
    out, w = ours(*args, mask=mask)
    with torch.no_grad():
        kv = query if self_attention else key
        ref_out, ref_w = theirs(query, kv, kv, attn_mask=None if full is None else (~full).reshape(B * H, T, S),
                                average_attn_weights=False)  # PyTorch's mask: True = blocked
    dead = torch.zeros(B, H, T, 1, dtype=torch.bool) if full is None else ~full.any(-1, keepdim=True)
    close(w, torch.where(dead, 0.0, ref_w))  # a fully masked row: 0 here (SDPA's rule), nan in nn.MultiheadAttention
    alive = ~dead.any(dim=1)  # (B, T, 1): tokens none of whose heads is fully masked
    close(torch.where(alive, out, 0.0), torch.where(alive, ref_out, 0.0))


def _rope_reference(mha, query, key, q_pos, k_pos):
    """RoPE as complex multiplication (the LLaMA reference), then F.scaled_dot_product_attention."""
    def rotate(x, pos):  # (B, H, L, d_head), (L,) or (B, L)
        angles = pos.double()[..., None] * mha.rope_base ** (-torch.arange(0, x.shape[-1], 2, dtype=torch.float64) / x.shape[-1])
        if angles.ndim == 3:
            angles = angles[:, None]  # (B, 1, L, d_head/2)
        z = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous()) * torch.polar(torch.ones_like(angles), angles)
        return torch.view_as_real(z).flatten(-2)
    B, T, _ = query.shape
    q = mha.w_q(query).view(B, T, mha.n_heads, -1).transpose(1, 2)
    k = mha.w_k(key).view(B, key.shape[1], mha.n_heads, -1).transpose(1, 2)
    v = mha.w_v(key).view(B, key.shape[1], mha.n_heads, -1).transpose(1, 2)
    out = F.scaled_dot_product_attention(rotate(q, q_pos), rotate(k, k_pos), v)
    return mha.w_o(out.transpose(1, 2).reshape(B, T, -1))


@valid("MultiHeadAttention", "RoPE with default, (T,) and (B, T) positions and key positions vs the complex-number reference")
def _(d):
    B, T, S, H = size(d, 1, 3), size(d, 1, 4), size(d, 1, 5), size(d, 1, 2)
    d_model = H * 2 * size(d, 1, 2)
    torch.manual_seed(d.draw(st.integers(0, 1000), label="weights"))
    mha = MultiHeadAttention(d_model, H, rope=True, rope_base=d.draw(st.sampled_from([10000.0, 100.0, 7.5]))).double()
    query, key = randn(d, B, T, d_model), randn(d, B, S, d_model)
    offset = d.draw(st.integers(0, 50), label="offset")
    positions = d.draw(st.sampled_from([None, torch.arange(T) + offset, (torch.arange(T) + offset).expand(B, T)]), label="positions")
    key_positions = d.draw(st.sampled_from([None, torch.arange(S) + 2]), label="key_positions")
    out, _ = mha(query, key, key, positions=positions, key_positions=key_positions)
    ref = _rope_reference(mha, query, key, torch.arange(T) if positions is None else positions,
                          torch.arange(S) if key_positions is None else key_positions)
    close(out, ref)
    assert torch.equal(out, mha(query, key.clone(), key.clone(), positions=positions, key_positions=key_positions)[0])
    self_out = mha(query, positions=positions)[0]  # key=None: keys take the query positions
    close(self_out, _rope_reference(mha, query, query, *(2 * [torch.arange(T) if positions is None else positions])))


X = torch.zeros(2, 3, 8)
invalid("MultiHeadAttention", "d_model not divisible by n_heads", "n_heads", lambda d: lambda: MultiHeadAttention(10, d.draw(st.sampled_from([3, 4, 6]))))
invalid("MultiHeadAttention", "d_model or n_heads not a whole number >= 1", "d_model", lambda d: lambda: MultiHeadAttention(d.draw(NON_POSITIVE_INT | NOT_AN_INT), 1))
invalid("MultiHeadAttention", "bias not a bool", "bias", lambda d: lambda: MultiHeadAttention(8, 2, bias=d.draw(NOT_A_FLAG)))
invalid("MultiHeadAttention", "rope not a bool", "rope", lambda d: lambda: MultiHeadAttention(8, 2, rope=d.draw(NOT_A_FLAG)))
invalid("MultiHeadAttention", "rope_base not positive and finite", "rope_base", lambda d: lambda: MultiHeadAttention(8, 2, rope=True, rope_base=d.draw(BAD_BASE | NOT_A_NUMBER)))
invalid("MultiHeadAttention", "odd d_head with RoPE", "d_head", lambda d: lambda: MultiHeadAttention(6, 2, rope=True))
invalid("MultiHeadAttention", "query of the wrong rank or width", "query", lambda d: lambda: MultiHeadAttention(8, 2)(torch.zeros(d.draw(st.sampled_from([(3, 8), (2, 3, 7), (1, 2, 3, 8)])))))
invalid("MultiHeadAttention", "query not a tensor", "query", lambda d: lambda: MultiHeadAttention(8, 2)(d.draw(NOT_AN_ARRAY | st.just(np.zeros((2, 3, 8))))))
invalid("MultiHeadAttention", "query of another dtype than the weights", "query", lambda d: lambda: MultiHeadAttention(8, 2)(X.to(d.draw(st.sampled_from([torch.float64, torch.int64, torch.float16])))))
invalid("MultiHeadAttention", "key of another dtype than the weights", "key", lambda d: lambda: MultiHeadAttention(8, 2)(X, X.double()))
invalid("MultiHeadAttention", "key and value of different lengths", "value", lambda d: lambda: MultiHeadAttention(8, 2)(X, torch.zeros(2, 4, 8), torch.zeros(2, 5, 8)))
invalid("MultiHeadAttention", "mask of rank 1 or 5", "mask", lambda d: lambda: MultiHeadAttention(8, 2)(X, mask=torch.ones((3,) if d.draw(st.booleans()) else (1, 1, 1, 3, 3), dtype=torch.bool)))
invalid("MultiHeadAttention", "3-D mask whose first axis is not B", "mask", lambda d: lambda: MultiHeadAttention(8, 2)(X, mask=torch.ones(d.draw(st.sampled_from([3, 4])), 3, 3, dtype=torch.bool)))
invalid("MultiHeadAttention", "3-D bias of heads first (H, T, S) with H != B", "bias", lambda d: lambda: MultiHeadAttention(8, 4)(X, bias=attn_core.alibi_bias(4, 3)))
invalid("MultiHeadAttention", "4-D mask with a wrong head count", "mask", lambda d: lambda: MultiHeadAttention(8, 2)(X, mask=torch.ones(2, 3, 3, 3, dtype=torch.bool)))
invalid("MultiHeadAttention", "float mask", "mask", lambda d: lambda: MultiHeadAttention(8, 2)(X, mask=torch.ones(3, 3)))
invalid("MultiHeadAttention", "positions with rope=False", "positions", lambda d: lambda: MultiHeadAttention(8, 2)(X, positions=torch.arange(3)))
invalid("MultiHeadAttention", "key_positions with rope=False", "key_positions", lambda d: lambda: MultiHeadAttention(8, 2)(X, key_positions=torch.arange(3)))
invalid("MultiHeadAttention", "positions of the wrong length or rank", "positions", lambda d: lambda: MultiHeadAttention(8, 2, rope=True)(X, positions=torch.zeros(d.draw(st.sampled_from([(4,), (3, 3), (2, 2, 3)])), dtype=torch.long)))
invalid("MultiHeadAttention", "positions not a tensor", "positions", lambda d: lambda: MultiHeadAttention(8, 2, rope=True)(X, positions=d.draw(st.sampled_from([[0, 1, 2], "012", 3]))))
invalid("MultiHeadAttention", "boolean positions", "positions", lambda d: lambda: MultiHeadAttention(8, 2, rope=True)(X, positions=torch.ones(3, dtype=torch.bool)))
invalid("MultiHeadAttention", "key_positions of the wrong length", "key_positions", lambda d: lambda: MultiHeadAttention(8, 2, rope=True)(X, torch.zeros(2, 4, 8), key_positions=torch.arange(3)))
invalid("MultiHeadAttention", "from_torch of something else", "MultiheadAttention", lambda d: lambda: MultiHeadAttention.from_torch(d.draw(st.sampled_from([nn.Linear(2, 2), None, nn.MultiheadAttention(4, 2)]))))


@valid("parameter_count", "equals the parameters of nn.MultiheadAttention and of MultiHeadAttention")
def _(d):
    H, d_head, bias = size(d, 1, 4), size(d, 1, 6), d.draw(st.booleans())
    d_model = H * d_head
    expected = sum(p.numel() for p in nn.MultiheadAttention(d_model, H, bias=bias).parameters())
    assert attn_core.parameter_count(d_model, H, bias) == expected == sum(p.numel() for p in MultiHeadAttention(d_model, H, bias=bias).parameters())


invalid("parameter_count", "bias not a bool", "bias", lambda d: lambda: attn_core.parameter_count(8, 2, d.draw(NOT_A_FLAG)))
invalid("parameter_count", "n_heads not dividing d_model", "n_heads", lambda d: lambda: attn_core.parameter_count(10, 3))
invalid("parameter_count", "d_model not a whole number >= 1", "d_model", lambda d: lambda: attn_core.parameter_count(d.draw(NON_POSITIVE_INT | NOT_AN_INT), 1))


@valid("matmul_flops", "equals FlopCounterMode on a MultiHeadAttention forward")
def _(d):
    T, S, H, d_head = size(d, 1, 6), size(d, 1, 6), size(d, 1, 3), size(d, 1, 4)
    d_model = H * d_head
    mha = MultiHeadAttention(d_model, H)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        mha(torch.zeros(1, T, d_model), torch.zeros(1, S, d_model))
    assert attn_core.matmul_flops(T, d_model, H, S) == counter.get_total_flops()


invalid("matmul_flops", "T not a whole number >= 1", "T", lambda d: lambda: attn_core.matmul_flops(d.draw(NON_POSITIVE_INT | NOT_AN_INT), 8, 2))
invalid("matmul_flops", "S not a whole number >= 1", "S", lambda d: lambda: attn_core.matmul_flops(3, 8, 2, d.draw(NON_POSITIVE_INT | NOT_AN_INT_NOR_NONE)))
invalid("matmul_flops", "n_heads not dividing d_model", "n_heads", lambda d: lambda: attn_core.matmul_flops(3, 8, 3))


# =============================================================================== positional


@valid("sinusoidal_encoding", "the paper's formula for any base and width, float32 and float64")
def _(d):
    P, d_model = size(d, 1, 30), size(d, 1, 12)
    base = d.draw(st.floats(1.5, 1e5), label="base")
    dtype = d.draw(st.sampled_from([torch.float32, torch.float64]))
    ref = np.array([[math.sin(p / base ** (2 * (c // 2) / d_model)) if c % 2 == 0 else math.cos(p / base ** (2 * (c // 2) / d_model))
                     for c in range(d_model)] for p in range(P)])
    out = attn_core.sinusoidal_encoding(P, d_model, base, dtype=dtype)
    assert out.dtype == dtype
    close(out.double(), ref, atol=1e-6 if dtype == torch.float32 else 1e-12)


invalid("sinusoidal_encoding", "n_positions < 1 or not whole", "n_positions", lambda d: lambda: attn_core.sinusoidal_encoding(d.draw(NON_POSITIVE_INT | NOT_AN_INT), 4))
invalid("sinusoidal_encoding", "d_model < 1 or not whole", "d_model", lambda d: lambda: attn_core.sinusoidal_encoding(4, d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("sinusoidal_encoding", "base not positive and finite", "base", lambda d: lambda: attn_core.sinusoidal_encoding(4, 4, d.draw(BAD_BASE | NOT_A_NUMBER)))
invalid("sinusoidal_encoding", "a non-floating dtype", "dtype", lambda d: lambda: attn_core.sinusoidal_encoding(4, 4, dtype=d.draw(NON_FLOAT_TORCH_DTYPE)))


@valid("sinusoidal_shift_matrix", "M_k PE[p] = PE[p + k] for any offset and base")
def _(d):
    d_model, k, base = 2 * size(d, 1, 6), d.draw(st.integers(-20, 20)), d.draw(st.floats(2.0, 1e4))
    pe = attn_core.sinusoidal_encoding(50, d_model, base, dtype=torch.float64)
    m = attn_core.sinusoidal_shift_matrix(k, d_model, base, dtype=torch.float64)
    p = d.draw(st.integers(max(0, -k), min(49, 49 - k)))
    close(m @ pe[p], pe[p + k], atol=1e-9)


invalid("sinusoidal_shift_matrix", "odd d_model", "d_model", lambda d: lambda: attn_core.sinusoidal_shift_matrix(1, 2 * d.draw(st.integers(0, 5)) + 1))
invalid("sinusoidal_shift_matrix", "offset not a finite number", "offset", lambda d: lambda: attn_core.sinusoidal_shift_matrix(d.draw(st.sampled_from([float("nan"), float("inf"), "1", None])), 4))
invalid("sinusoidal_shift_matrix", "base not positive and finite", "base", lambda d: lambda: attn_core.sinusoidal_shift_matrix(1, 4, d.draw(BAD_BASE | NOT_A_NUMBER)))
invalid("sinusoidal_shift_matrix", "a non-floating dtype", "dtype", lambda d: lambda: attn_core.sinusoidal_shift_matrix(1, 4, dtype=d.draw(NON_FLOAT_TORCH_DTYPE)))


@valid("LearnedPositionalEmbedding", "an int length or integer positions of any shape vs nn.Embedding")
def _(d):
    max_len, d_model = size(d, 1, 8), size(d, 1, 5)
    emb = LearnedPositionalEmbedding = attn_core.LearnedPositionalEmbedding(max_len, d_model)
    T = size(d, 0, max_len)
    close(emb(T), F.embedding(torch.arange(T), emb.table.weight))
    pos = torch.randint(0, max_len, tuple(d.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))))
    close(emb(pos), F.embedding(pos, emb.table.weight))


invalid("LearnedPositionalEmbedding", "max_len or d_model < 1", "max_len", lambda d: lambda: attn_core.LearnedPositionalEmbedding(d.draw(NON_POSITIVE_INT | NOT_AN_INT), 4))
invalid("LearnedPositionalEmbedding", "length beyond max_len", "max_len", lambda d: lambda: attn_core.LearnedPositionalEmbedding(4, 2)(d.draw(st.integers(5, 50))))
invalid("LearnedPositionalEmbedding", "negative length", "length", lambda d: lambda: attn_core.LearnedPositionalEmbedding(4, 2)(d.draw(st.integers(-9, -1))))
invalid("LearnedPositionalEmbedding", "position out of range", "position", lambda d: lambda: attn_core.LearnedPositionalEmbedding(4, 2)(torch.tensor([0, d.draw(st.sampled_from([-1, 4, 9]))])))
invalid("LearnedPositionalEmbedding", "float, boolean or non-tensor positions", "positions", lambda d: lambda: attn_core.LearnedPositionalEmbedding(4, 2)(d.draw(st.sampled_from([torch.tensor([0.5]), torch.tensor([True]), [0, 1], "2", 2.0, None]))))


def _rope_ref(x, pos, base, interleaved):
    D = x.shape[-1]
    angles = pos.double()[..., None] * base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (..., T, D/2)
    if interleaved:  # complex multiplication, as in LLaMA's reference code
        z = torch.view_as_complex(x.reshape(*x.shape[:-1], D // 2, 2).contiguous()) * torch.polar(torch.ones_like(angles), angles)
        return torch.view_as_real(z).flatten(-2)
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)  # Hugging Face's rotate_half
    return x * cos + torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1) * sin


@valid("apply_rope", "interleaved and half-split, default, (T,) and broadcast positions, numpy and torch")
def _(d):
    lead = tuple(d.draw(st.lists(st.integers(1, 3), max_size=2)))
    T, D = size(d, 1, 6), 2 * size(d, 1, 4)
    x = randn(d, *lead, T, D)
    base, interleaved = d.draw(st.floats(1.5, 1e5)), d.draw(st.booleans())
    pos_shape = d.draw(st.sampled_from([None, (T,)] + ([(*lead[:1], *([1] * (len(lead) - 1)), T)] if lead else [])))
    pos = None if pos_shape is None else torch.randint(-20, 100, pos_shape)
    out = attn_core.apply_rope(x, pos, base=base, interleaved=interleaved)
    close(out, _rope_ref(x, torch.arange(T) if pos is None else pos, base, interleaved), atol=1e-9)
    close(attn_core.apply_rope(x.numpy(), None if pos is None else pos.numpy(), base=base, interleaved=interleaved), out, atol=1e-9)


invalid("apply_rope", "x of rank 1 or not an array", "x", lambda d: lambda: attn_core.apply_rope(d.draw(NOT_AN_ARRAY | st.just(torch.zeros(4)))))
invalid("apply_rope", "odd last axis", "x", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 2 * d.draw(st.integers(0, 4)) + 1)))
invalid("apply_rope", "integer x", "x", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4, dtype=d.draw(INT_OR_BOOL_TORCH))))
invalid("apply_rope", "positions of the wrong length", "positions", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4), torch.arange(d.draw(st.sampled_from([1, 2, 4, 7])))))
invalid("apply_rope", "positions that would grow x", "positions", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4), torch.zeros(d.draw(st.integers(2, 4)), 3)))
invalid("apply_rope", "boolean positions", "positions", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4), torch.ones(3, dtype=torch.bool)))
invalid("apply_rope", "positions not an array", "positions", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4), d.draw(st.sampled_from(["012", 3, 1.5]))))
invalid("apply_rope", "base not positive and finite", "base", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4), base=d.draw(BAD_BASE | NOT_A_NUMBER)))
invalid("apply_rope", "interleaved not a bool", "interleaved", lambda d: lambda: attn_core.apply_rope(torch.zeros(3, 4), interleaved=d.draw(NOT_A_FLAG)))


@valid("rope_angles", "outer product of positions and base^(-2i/d), numpy and torch")
def _(d):
    pos = torch.randint(-50, 200, tuple(d.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))))
    dd, base = 2 * size(d, 1, 6), d.draw(st.floats(1.5, 1e5))
    ref = pos.double()[..., None] * torch.tensor([base ** (-2 * i / dd) for i in range(dd // 2)], dtype=torch.float64)
    close(attn_core.rope_angles(pos, dd, base), ref)
    close(attn_core.rope_angles(pos.numpy(), dd, base), ref)


invalid("rope_angles", "d < 1 or not whole", "d", lambda d: lambda: attn_core.rope_angles(torch.arange(3), d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("rope_angles", "odd d", "d", lambda d: lambda: attn_core.rope_angles(torch.arange(3), 2 * d.draw(st.integers(0, 5)) + 1))
invalid("rope_angles", "positions not an array", "positions", lambda d: lambda: attn_core.rope_angles(d.draw(NOT_AN_ARRAY), 4))
invalid("rope_angles", "base not positive and finite", "base", lambda d: lambda: attn_core.rope_angles(torch.arange(3), 4, d.draw(BAD_BASE | NOT_A_NUMBER)))


def _paper_slopes(n):
    """ofirpress/attention_with_linear_biases, `get_slopes`."""
    def power_of_2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + _paper_slopes(2 * closest)[0::2][: n - closest]


@valid("alibi_slopes", "the ALiBi paper's get_slopes for any head count")
def _(d):
    n = size(d, 1, 40)
    close(attn_core.alibi_slopes(n, dtype=torch.float64), _paper_slopes(n), atol=1e-15)


invalid("alibi_slopes", "n_heads < 1 or not whole", "n_heads", lambda d: lambda: attn_core.alibi_slopes(d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("alibi_slopes", "a non-floating dtype", "dtype", lambda d: lambda: attn_core.alibi_slopes(4, dtype=d.draw(NON_FLOAT_TORCH_DTYPE)))


@valid("alibi_bias", "-m_h |i + S - T - j| for S >= T")
def _(d):
    n, T = size(d, 1, 8), size(d, 1, 6)
    S = d.draw(st.none() | st.integers(T, 9))
    S_ = T if S is None else S
    ref = -torch.tensor(_paper_slopes(n), dtype=torch.float64)[:, None, None] * torch.tensor(
        [[abs(i + S_ - T - j) for j in range(S_)] for i in range(T)], dtype=torch.float64)
    close(attn_core.alibi_bias(n, T, S, dtype=torch.float64), ref, atol=1e-12)


invalid("alibi_bias", "S < T", "S", lambda d: lambda: attn_core.alibi_bias(2, 5, d.draw(st.integers(1, 4))))
invalid("alibi_bias", "T < 1", "T", lambda d: lambda: attn_core.alibi_bias(2, d.draw(NON_POSITIVE_INT)))
invalid("alibi_bias", "a non-floating dtype", "dtype", lambda d: lambda: attn_core.alibi_bias(2, 3, dtype=d.draw(NON_FLOAT_TORCH_DTYPE)))


@valid("SegmentEmbedding", "integer ids (T,) or (B, T) vs nn.Embedding")
def _(d):
    n, d_model = size(d, 1, 4), size(d, 1, 5)
    emb = attn_core.SegmentEmbedding(n, d_model)
    ids = torch.randint(0, n, tuple(d.draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))))
    close(emb(ids), F.embedding(ids, emb.table.weight))


invalid("SegmentEmbedding", "n_segments < 1", "n_segments", lambda d: lambda: attn_core.SegmentEmbedding(d.draw(NON_POSITIVE_INT | NOT_AN_INT), 4))
invalid("SegmentEmbedding", "ids out of range", "segment_ids", lambda d: lambda: attn_core.SegmentEmbedding(2, 4)(torch.tensor([0, d.draw(st.sampled_from([-1, 2, 5]))])))
invalid("SegmentEmbedding", "float, boolean or non-tensor ids", "segment_ids", lambda d: lambda: attn_core.SegmentEmbedding(2, 4)(d.draw(st.sampled_from([torch.tensor([0.0]), torch.tensor([True]), [0, 1], None]))))


# =============================================================================== model, tasks, training


@functools.lru_cache(maxsize=None)
def _tiny(positional: str, causal: bool, seed: int = 0):
    torch.manual_seed(seed)
    return attn_core.TinyTransformer(vocab_size=7, d_model=8, n_heads=2, n_layers=2, max_len=8,
                                     positional=positional, causal=causal).eval()


@valid("TinyTransformer", "every positional scheme, causal: a prefix gives the same logits (no future leaks)")
def _(d):
    tokens = torch.randint(0, 7, (size(d, 1, 3), size(d, 2, 8)))
    t = d.draw(st.integers(1, tokens.shape[1]))
    for positional in attn_core.POSITIONAL_SCHEMES:
        model = _tiny(positional, True)
        with torch.no_grad():
            logits, weights = model(tokens, return_weights=True)
            close(model(tokens[:, :t]), logits[:, :t], atol=1e-5)
        assert logits.shape == (*tokens.shape, 7) and len(weights) == 2
        assert all((w.triu(1) == 0).all() for w in weights)


@valid("TinyTransformer", "every positional scheme, bidirectional: weights rows sum to 1")
def _(d):
    tokens = torch.randint(0, 7, (2, size(d, 1, 8)))
    for positional in attn_core.POSITIONAL_SCHEMES:
        with torch.no_grad():
            _, weights = _tiny(positional, False)(tokens, return_weights=True)
        assert all(torch.allclose(w.sum(-1), torch.ones(())) for w in weights)


invalid("TinyTransformer", "unknown positional scheme", "positional", lambda d: lambda: attn_core.TinyTransformer(7, 8, 2, 1, 8, positional=d.draw(st.sampled_from(["sin", "RoPE", None, 3]))))
invalid("TinyTransformer", "vocab_size < 1", "vocab_size", lambda d: lambda: attn_core.TinyTransformer(d.draw(NON_POSITIVE_INT), 8, 2, 1, 8))
invalid("TinyTransformer", "tokens not an integer tensor", "tokens", lambda d: lambda: _tiny("learned", True)(d.draw(st.sampled_from([torch.zeros(1, 3), [[1, 2]], None, torch.ones(1, 2, dtype=torch.bool)]))))
invalid("TinyTransformer", "tokens of the wrong rank", "tokens", lambda d: lambda: _tiny("learned", True)(torch.zeros(d.draw(st.sampled_from([(3,), (1, 2, 3), (2, 0)])), dtype=torch.long)))
invalid("TinyTransformer", "token ids out of range", "token", lambda d: lambda: _tiny("none", True)(torch.tensor([[0, d.draw(st.sampled_from([-1, 7, 100]))]])))
invalid("TinyTransformer", "window not a whole number >= 1", "window", lambda d: lambda: attn_core.TinyTransformer(7, 8, 2, 1, 8, window=d.draw(st.sampled_from([0, -1, 2.5, True, "3"]))))
invalid("TinyTransformer", "window without a causal mask", "window", lambda d: lambda: attn_core.TinyTransformer(7, 8, 2, 1, 8, causal=False, window=d.draw(st.integers(1, 9))))
invalid("TinyTransformer", "longer than max_len with learned positions", "max_len", lambda d: lambda: _tiny("learned", True)(torch.zeros(1, d.draw(st.integers(9, 20)), dtype=torch.long)))


@valid("TransformerBlock", "pre- and post-LN, with and without MLP: the formulas of the docstring")
def _(d):
    torch.manual_seed(d.draw(st.integers(0, 100)))
    norm, mlp = d.draw(st.sampled_from(attn_core.NORMS)), d.draw(st.booleans())
    block = attn_core.TransformerBlock(8, 2, mlp=mlp, norm=norm).double().eval()
    x = randn(d, size(d, 1, 3), size(d, 1, 5), 8)
    mask = attn_core.causal_mask(x.shape[1]) if d.draw(st.booleans()) else None
    out, w = block(x, mask=mask)
    if norm == "pre":
        ref = x + block.attn(block.ln_attn(x), mask=mask)[0]
        ref = ref + block.mlp(block.ln_mlp(ref)) if mlp else ref
    else:
        ref = block.ln_attn(x + block.attn(x, mask=mask)[0])
        ref = block.ln_mlp(ref + block.mlp(ref)) if mlp else ref
    close(out, ref)
    close(w, block.attn(block.ln_attn(x) if norm == "pre" else x, mask=mask)[1])


invalid("TransformerBlock", "unknown norm", "norm", lambda d: lambda: attn_core.TransformerBlock(8, 2, norm=d.draw(st.sampled_from(["Pre", "both", None]))))
invalid("TransformerBlock", "ln_eps not positive", "ln_eps", lambda d: lambda: attn_core.TransformerBlock(8, 2, ln_eps=d.draw(st.sampled_from([0, -1e-5, "1e-5"]))))
invalid("TransformerBlock", "x of the wrong width", "query", lambda d: lambda: attn_core.TransformerBlock(8, 2, norm="post")(torch.zeros(1, 3, d.draw(st.sampled_from([4, 9])))))
invalid("TransformerBlock", "d_ff < 1", "d_ff", lambda d: lambda: attn_core.TransformerBlock(8, 2, d_ff=d.draw(NON_POSITIVE_INT | NOT_AN_INT_NOR_NONE)))


@valid("InductionTask", "tokens repeat with their period; targets are the next token after the first block")
def _(d):
    V = size(d, 6, 20)
    hi = d.draw(st.integers(2, min(V, 10)))
    task = attn_core.InductionTask(vocab_size=V, seq_len=hi + d.draw(st.integers(2, 6)), min_period=d.draw(st.integers(1, hi)), max_period=hi)
    batch = task.sample(size(d, 1, 4), torch.Generator().manual_seed(d.draw(st.integers(0, 99))))
    for row, targets, n in zip(batch.tokens, batch.targets, batch.period.tolist()):
        assert torch.equal(row[n:], row[:-n]) and len(set(row[:n].tolist())) == n
        assert (targets[:n] == attn_core.IGNORE_INDEX).all() and torch.equal(targets[n:-1], row[n + 1:])


invalid("InductionTask", "max_period > vocab_size", "max_period", lambda d: lambda: attn_core.InductionTask(vocab_size=4, max_period=d.draw(st.integers(5, 9)), seq_len=20))
invalid("InductionTask", "min_period > max_period", "min_period", lambda d: lambda: attn_core.InductionTask(min_period=d.draw(st.integers(11, 15)), max_period=10))
invalid("InductionTask", "seq_len too short for max_period", "seq_len", lambda d: lambda: attn_core.InductionTask(seq_len=d.draw(st.integers(3, 11)), max_period=10))
invalid("InductionTask", "sizes not whole numbers >= 1", "vocab_size", lambda d: lambda: attn_core.InductionTask(vocab_size=d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("InductionTask", "generator not a torch.Generator", "generator", lambda d: lambda: attn_core.InductionTask().sample(2, d.draw(st.sampled_from([0, np.random.default_rng(0), "g"]))))
invalid("InductionTask", "batch_size < 1", "batch_size", lambda d: lambda: attn_core.InductionTask().sample(d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("InductionTask", "decode of ids out of range", "ids", lambda d: lambda: attn_core.InductionTask(vocab_size=5, max_period=5).decode([0, d.draw(st.sampled_from([-1, 5, 9]))]))


@valid("WhoDidWhatTask", "the answer is the subject for who? and the object for whom?")
def _(d):
    nouns = d.draw(st.lists(st.sampled_from(["dog", "cat", "man", "owl", "fox"]), min_size=2, max_size=5, unique=True))
    task = attn_core.WhoDidWhatTask(nouns=nouns, verbs=("sees",), n_sentences=size(d, 1, 4))
    batch = task.sample(size(d, 1, 4), torch.Generator().manual_seed(d.draw(st.integers(0, 99))))
    for row, targets in zip(batch.tokens, batch.targets):
        words = task.decode(row)
        for i in range(0, len(words), 4):
            s, _, o, qn = words[i:i + 4]
            assert s != o and task.vocab[targets[i + 3]] == (s if qn == "who?" else o)
        assert (targets.view(-1, 4)[:, :3] == attn_core.IGNORE_INDEX).all()


invalid("WhoDidWhatTask", "nouns as one string", "nouns", lambda d: lambda: attn_core.WhoDidWhatTask(nouns=d.draw(st.sampled_from(["dogcat", "dog cat"]))))
invalid("WhoDidWhatTask", "verbs not a list", "verbs", lambda d: lambda: attn_core.WhoDidWhatTask(verbs=d.draw(st.sampled_from(["bites", 3, None]))))
invalid("WhoDidWhatTask", "fewer than 2 nouns", "nouns", lambda d: lambda: attn_core.WhoDidWhatTask(nouns=d.draw(st.sampled_from([[], ["dog"]]))))
invalid("WhoDidWhatTask", "repeated or non-string words", "nouns", lambda d: lambda: attn_core.WhoDidWhatTask(nouns=d.draw(st.sampled_from([["dog", "dog"], ["dog", 3], ["who?", "dog"]]))))
invalid("WhoDidWhatTask", "words to encode not a list", "words", lambda d: lambda: attn_core.WhoDidWhatTask().encode(d.draw(st.sampled_from([3, None, {"dog"}]))))
invalid("WhoDidWhatTask", "decode of float or out-of-range ids", "ids", lambda d: lambda: attn_core.WhoDidWhatTask().decode(d.draw(st.sampled_from([torch.tensor([0.5]), [99], "AB", 3]))))
invalid("WhoDidWhatTask", "unknown words to encode", "unknown words", lambda d: lambda: attn_core.WhoDidWhatTask().encode(d.draw(st.sampled_from(["zebra", ["dog", "zebra"]]))))


@valid("Batch", "holds integer (B, T) tokens and targets and an optional (B,) period")
def _(d):
    B, T = size(d), size(d)
    tokens = torch.randint(0, 5, (B, T))
    period = d.draw(st.sampled_from([None, torch.ones(B, dtype=torch.long)]))
    batch = attn_core.Batch(tokens, tokens.clone(), period)
    assert batch.tokens is tokens and batch.period is period


invalid("Batch", "tokens not an integer tensor", "tokens", lambda d: lambda: attn_core.Batch(d.draw(st.sampled_from([[[1]], torch.zeros(1, 2), None])), torch.zeros(1, 2, dtype=torch.long)))
invalid("Batch", "targets of another shape", "targets", lambda d: lambda: attn_core.Batch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(d.draw(st.sampled_from([(2, 4), (3,), (2, 3, 1)])), dtype=torch.long)))
invalid("Batch", "period of the wrong shape", "period", lambda d: lambda: attn_core.Batch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), torch.zeros(d.draw(st.integers(3, 5)), dtype=torch.long)))


@valid("accuracy", "the fraction of asked positions whose arg-max is right")
def _(d):
    B, T, V = size(d), size(d), size(d, 2, 6)
    logits, targets = randn(d, B, T, V), torch.randint(0, V, (B, T))
    targets[rand_bool(d, B, T, p=0.3)] = attn_core.IGNORE_INDEX
    targets[0, 0] = 0
    asked = [(b, t) for b in range(B) for t in range(T) if targets[b, t] != attn_core.IGNORE_INDEX]
    ref = sum(int(logits[b, t].argmax() == targets[b, t]) for b, t in asked) / len(asked)
    assert abs(attn_core.accuracy(logits, targets) - ref) < 1e-12


invalid("accuracy", "logits and targets of other shapes", "targets", lambda d: lambda: attn_core.accuracy(torch.zeros(2, 3, 4), torch.zeros(d.draw(st.sampled_from([(2, 4), (3,), (2, 3, 4)])), dtype=torch.long)))
invalid("accuracy", "nothing asked", "IGNORE_INDEX", lambda d: lambda: attn_core.accuracy(torch.zeros(2, 3, 4), torch.full((2, 3), attn_core.IGNORE_INDEX)))
invalid("accuracy", "logits not a tensor", "logits", lambda d: lambda: attn_core.accuracy(d.draw(NOT_AN_ARRAY | st.just(np.zeros((2, 3, 4)))), torch.zeros(2, 3, dtype=torch.long)))
invalid("accuracy", "float targets", "targets", lambda d: lambda: attn_core.accuracy(torch.zeros(2, 3, 4), torch.zeros(2, 3)))


class _Memorise(nn.Module):
    """A 'model' whose logits are a fixed random function of the token ids."""

    def __init__(self, V, seed):
        super().__init__()
        self.table = nn.Embedding(V, V)
        torch.nn.init.normal_(self.table.weight, generator=torch.Generator().manual_seed(seed))

    def forward(self, tokens):
        return self.table(tokens)


@valid("evaluate", "overall and per-position accuracy equal a direct count on the same batches")
def _(d):
    task = attn_core.InductionTask(vocab_size=8, seq_len=10, min_period=3, max_period=6)
    model = _Memorise(8, d.draw(st.integers(0, 99)))
    n, bs, seed = size(d, 1, 20), size(d, 1, 8), d.draw(st.integers(0, 99))
    gen, right, asked = torch.Generator().manual_seed(seed), torch.zeros(10, dtype=torch.float64), torch.zeros(10, dtype=torch.float64)
    for start in range(0, n, bs):
        batch = task.sample(min(bs, n - start), generator=gen)
        m = batch.targets != attn_core.IGNORE_INDEX
        right += ((model(batch.tokens).argmax(-1) == batch.targets) & m).sum(0)
        asked += m.sum(0)
    assert abs(attn_core.evaluate(model, task, n_sequences=n, batch_size=bs, seed=seed) - (right.sum() / asked.sum()).item()) < 1e-9
    close(attn_core.evaluate(model, task, n_sequences=n, batch_size=bs, seed=seed, by_position=True), (right.double() / asked.double()))


invalid("evaluate", "model not an nn.Module", "model", lambda d: lambda: attn_core.evaluate(d.draw(st.sampled_from([None, "m", lambda t: t])), attn_core.InductionTask(8, 10, 3, 6)))
invalid("evaluate", "task without sample", "task", lambda d: lambda: attn_core.evaluate(_Memorise(8, 0), d.draw(st.sampled_from([None, "task", 3]))))
invalid("evaluate", "seed not a whole number >= 0", "seed", lambda d: lambda: attn_core.evaluate(_Memorise(8, 0), attn_core.InductionTask(8, 10, 3, 6), seed=d.draw(st.sampled_from([1.5, -1, "0", True]))))
invalid("evaluate", "n_sequences < 1", "n_sequences", lambda d: lambda: attn_core.evaluate(_Memorise(8, 0), attn_core.InductionTask(8, 10, 3, 6), n_sequences=d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("evaluate", "by_position not a bool", "by_position", lambda d: lambda: attn_core.evaluate(_Memorise(8, 0), attn_core.InductionTask(8, 10, 3, 6), by_position=d.draw(NOT_A_FLAG)))


@valid("History", "smoothed is the mean over each window (nan only in windows that hold a nan)")
def _(d):
    values = d.draw(st.lists(st.floats(-5, 5) | st.just(float("nan")), max_size=30))
    window = size(d, 1, 8)
    h = attn_core.History(loss=values, accuracy=list(values))
    ref = [np.mean(values[max(0, i + 1 - window): i + 1]) for i in range(len(values))]
    close(h.smoothed("loss", window), np.array(ref, dtype=float), atol=1e-12)
    assert h.steps == list(range(1, len(values) + 1))


invalid("History", "smoothed of an unknown series", "name", lambda d: lambda: attn_core.History().smoothed(d.draw(st.sampled_from(["los", "steps", "__class__"]))))
invalid("History", "smoothed window < 1", "window", lambda d: lambda: attn_core.History().smoothed("loss", d.draw(NON_POSITIVE_INT | NOT_AN_INT)))


# =============================================================================== head scores


def _weights(d, B, H, T):
    return torch.softmax(randn(d, B, H, T, T) * 3, dim=-1)


def _mean_key(w, key_of, used):
    """Mean over (b, t) in `used` of w[b, h, t, key_of(t)], per head: the formula of the docstrings."""
    B, H, T, _ = w.shape
    return np.array([np.mean([w[b, h, t, key_of(t)].item() for b in range(B) for t in range(T) if used(t)]) for h in range(H)])


@valid("previous_token_score", "mean over t >= 1 of w[t, t-1]")
def _(d):
    w = _weights(d, size(d, 1, 3), size(d, 1, 3), size(d, 2, 5))
    close(attn_core.previous_token_score(w), _mean_key(w, lambda t: t - 1, lambda t: t >= 1), atol=1e-12)


@valid("self_score", "mean over t >= 1 of w[t, t]")
def _(d):
    w = _weights(d, size(d, 1, 3), size(d, 1, 3), size(d, 2, 5))
    close(attn_core.self_score(w.numpy()), _mean_key(w, lambda t: t, lambda t: t >= 1), atol=1e-12)


@valid("first_token_score", "mean over t >= 1 of w[t, 0]")
def _(d):
    w = _weights(d, size(d, 1, 3), size(d, 1, 3), size(d, 2, 5))
    close(attn_core.first_token_score(w), _mean_key(w, lambda t: 0, lambda t: t >= 1), atol=1e-12)


@valid("induction_score", "mean weight on the successors of earlier copies of the current token")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 3, 7)
    w, tokens = _weights(d, B, Hh, T), torch.randint(0, 3, (B, T))
    tokens[0, 1] = tokens[0, 0]  # at least one repeat
    rows = [(b, t, [s for s in range(1, t + 1) if tokens[b, s - 1] == tokens[b, t]]) for b in range(B) for t in range(T)]
    rows = [r for r in rows if r[2]]
    ref = [np.mean([sum(w[b, h, t, s].item() for s in ss) for b, t, ss in rows]) for h in range(Hh)]
    close(attn_core.induction_score(w, tokens), ref, atol=1e-12)


@valid("next_token_score", "mean over t <= T-2 of w[t, t+1]; with padding, real queries whose next token is real")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 2, 5)
    w = _weights(d, B, Hh, T)
    close(attn_core.next_token_score(w), _mean_key(w, lambda t: t + 1, lambda t: t <= T - 2), atol=1e-12)
    lengths = [d.draw(st.integers(2, T)) for _ in range(B)]
    mask = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).long()
    ref = [np.mean([w[b, h, t, t + 1].item() for b in range(B) for t in range(lengths[b] - 1)]) for h in range(Hh)]
    close(attn_core.next_token_score(w, attention_mask=mask), ref, atol=1e-12)


def _selector_ref(w, selector, real):
    B, Hh, T, _ = w.shape
    return [np.mean([sum(w[b, h, t, s].item() for s in range(T) if selector[b, s] and real[b, s])
                     for b in range(B) for t in range(T) if real[b, t]]) for h in range(Hh)]


def _padded(d, B, T):
    lengths = [d.draw(st.integers(1, T)) for _ in range(B)]
    return (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).long()


@valid("selector_score", "mean over real queries of the total weight on selected real keys")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 2, 5)
    w, selector, mask = _weights(d, B, Hh, T), rand_bool(d, B, T, p=0.4), _padded(d, B, T)
    close(attn_core.selector_score(w, selector, attention_mask=mask), _selector_ref(w, selector, mask.bool()), atol=1e-12)
    close(attn_core.selector_score(w, selector.long()), _selector_ref(w, selector, torch.ones(B, T, dtype=torch.bool)), atol=1e-12)


@valid("cls_score", "selector_score with position 0 selected")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 2, 5)
    w, mask = _weights(d, B, Hh, T), _padded(d, B, T)
    selector = torch.zeros(B, T, dtype=torch.bool)
    selector[:, 0] = True
    close(attn_core.cls_score(w, attention_mask=mask), _selector_ref(w, selector, mask.bool()), atol=1e-12)


@valid("sep_score", "selector_score on the positions holding sep_id")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 2, 5)
    w, ids, sep = _weights(d, B, Hh, T), torch.randint(0, 4, (B, T)), d.draw(st.integers(0, 3))
    close(attn_core.sep_score(w, ids, sep), _selector_ref(w, ids == sep, torch.ones(B, T, dtype=torch.bool)), atol=1e-12)


@valid("punctuation_score", "selector_score on the punctuation positions")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 2, 5)
    w, punct, mask = _weights(d, B, Hh, T), rand_bool(d, B, T, p=0.3), _padded(d, B, T)
    close(attn_core.punctuation_score(w, punct, attention_mask=mask), _selector_ref(w, punct, mask.bool()), atol=1e-12)


@valid("entropy_score", "mean entropy of real queries over real keys (nats, or / log n with normalize)")
def _(d):
    B, Hh, T = size(d, 1, 3), size(d, 1, 3), size(d, 2, 5)
    w, normalize = _weights(d, B, Hh, T), d.draw(st.booleans())
    ref = [np.mean([-sum(x * math.log(x) for x in w[b, h, t].tolist() if x > 0) / (math.log(T) if normalize else 1.0)
                    for b in range(B) for t in range(T)]) for h in range(Hh)]
    close(attn_core.entropy_score(w, normalize=normalize), ref, atol=1e-12)
    close(attn_core.entropy_score(torch.eye(T).expand(1, 1, T, T)), [0.0], atol=1e-12)


_EXTRA = {"induction_score": (torch.zeros(1, 4, dtype=torch.long),), "selector_score": (torch.ones(1, 4, dtype=torch.bool),),
          "sep_score": (torch.zeros(1, 4, dtype=torch.long),), "punctuation_score": (torch.ones(1, 4, dtype=torch.bool),)}
for _name in ("previous_token_score", "next_token_score", "self_score", "first_token_score", "induction_score",
              "selector_score", "cls_score", "sep_score", "punctuation_score", "entropy_score"):
    _extra = _EXTRA.get(_name, ())
    invalid(_name, "weights of the wrong rank or not square", "weights",
            lambda d, f=getattr(attn_core, _name), e=_extra: lambda: f(torch.zeros(d.draw(st.sampled_from([(4, 4), (1, 1, 4, 3), (1, 1, 1, 4, 4)]))), *e))
    invalid(_name, "weights not an array", "weights", lambda d, f=getattr(attn_core, _name), e=_extra: lambda: f(d.draw(NOT_AN_ARRAY), *e))
    invalid(_name, "an empty batch", "weights", lambda d, f=getattr(attn_core, _name), e=_extra: lambda: f(torch.zeros(0, 1, 4, 4), *e))
    invalid(_name, "attention_mask of the wrong shape", "attention_mask",
            lambda d, f=getattr(attn_core, _name), e=_extra: lambda: f(torch.full((1, 1, 4, 4), 0.25), *e, attention_mask=torch.ones(d.draw(st.sampled_from([(1, 3), (2, 4), (4,)])))))
invalid("selector_score", "selector of the wrong shape, not 0/1, or None", "selector", lambda d: lambda: attn_core.selector_score(torch.full((1, 1, 4, 4), 0.25), d.draw(st.sampled_from([torch.ones(1, 3), torch.full((1, 4), 2), None, "sep"]))))
invalid("sep_score", "float or boolean token_ids", "token_ids", lambda d: lambda: attn_core.sep_score(torch.full((1, 1, 4, 4), 0.25), d.draw(st.sampled_from([torch.zeros(1, 4), torch.ones(1, 4, dtype=torch.bool)]))))
invalid("entropy_score", "normalize not a bool", "normalize", lambda d: lambda: attn_core.entropy_score(torch.full((1, 1, 4, 4), 0.25), normalize=d.draw(NOT_A_FLAG)))
invalid("entropy_score", "attention_mask with no real token", "attention_mask", lambda d: lambda: attn_core.entropy_score(torch.full((1, 1, 4, 4), 0.25), attention_mask=torch.zeros(1, 4, dtype=torch.long)))
invalid("induction_score", "tokens of the wrong shape or dtype", "tokens", lambda d: lambda: attn_core.induction_score(torch.full((1, 1, 4, 4), 0.25), d.draw(st.sampled_from([torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 4)]))))


@valid("head_scores", "one (L, H) array per score, each equal to its score function per layer")
def _(d):
    L, B, Hh, T = size(d, 1, 3), size(d, 1, 2), size(d, 1, 3), size(d, 2, 5)
    layers = [_weights(d, B, Hh, T) for _ in range(L)]
    tokens = torch.randint(0, 2, (B, T))
    tokens[:, 1] = tokens[:, 0]
    scores = attn_core.head_scores(layers, tokens)
    for name in ("previous_token", "induction", "self", "first_token"):
        fn = getattr(attn_core, f"{name}_score")
        close(scores[name], np.stack([fn(w, tokens) if name == "induction" else fn(w) for w in layers]))


invalid("head_scores", "no layers", "weights", lambda d: lambda: attn_core.head_scores([]))
invalid("head_scores", "selectors not a dict", "selectors", lambda d: lambda: attn_core.head_scores(torch.full((1, 1, 3, 3), 1 / 3), selectors=d.draw(st.sampled_from([[1], "sep"]))))
invalid("head_scores", "weights of the wrong rank", "weights", lambda d: lambda: attn_core.head_scores(torch.zeros(3, 3)))


def _scores(d):
    L, Hh = size(d, 1, 3), size(d, 1, 3)
    return {n: np.array(d.draw(st.lists(st.floats(0, 1), min_size=L * Hh, max_size=L * Hh))).reshape(L, Hh)
            for n in ("previous_token", "self", "first_token")}


@valid("label_heads", "each head named by its best score when it reaches the threshold")
def _(d):
    scores, threshold = _scores(d), d.draw(st.floats(0.05, 1.0))
    labels = attn_core.label_heads(scores, threshold)
    names = list(scores)
    for (layer, head), _ in np.ndenumerate(scores[names[0]]):
        best = max(names, key=lambda n: (scores[n][layer, head], -names.index(n)))
        assert labels[layer][head] == (f"{best} {scores[best][layer, head]:.2f}" if scores[best][layer, head] >= threshold else "mixed")


invalid("label_heads", "scores not a dict or empty", "scores", lambda d: lambda: attn_core.label_heads(d.draw(st.sampled_from([{}, [], None]))))
invalid("label_heads", "threshold outside (0, 1]", "threshold", lambda d: lambda: attn_core.label_heads({"self": np.ones((1, 1))}, d.draw(st.sampled_from([0, -0.5, 1.5]))))
invalid("label_heads", "scores of different shapes", "score", lambda d: lambda: attn_core.label_heads({"a": np.ones((1, 2)), "b": np.ones((2, 1))}))


@valid("format_head_scores", "one row per head with every score rounded")
def _(d):
    scores, decimals = _scores(d), size(d, 0, 3)
    lines = attn_core.format_head_scores(scores, decimals).splitlines()
    L, Hh = scores["self"].shape
    assert len(lines) == 1 + L * Hh and lines[0].split() == ["layer", "head", *scores]
    for line, (layer, head) in zip(lines[1:], np.ndindex(L, Hh)):
        assert line.split() == [str(layer), str(head), *(f"{scores[n][layer, head]:.{decimals}f}" for n in scores)]


invalid("format_head_scores", "scores not a dict or empty", "scores", lambda d: lambda: attn_core.format_head_scores(d.draw(st.sampled_from([{}, [], "x"]))))


@valid("ablate_heads", "an ablated head's output columns are zero; the original model is unchanged")
def _(d):
    model = _tiny("none", True, seed=d.draw(st.integers(0, 3)))
    pairs = d.draw(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), max_size=4, unique=True))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ablated = attn_core.ablate_heads(model, pairs)
    for layer, head in pairs:
        attn = ablated.blocks[layer].attn
        assert (attn.w_o.weight[:, head * attn.d_head:(head + 1) * attn.d_head] == 0).all()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


invalid("ablate_heads", "heads not (layer, head) pairs", "heads", lambda d: lambda: attn_core.ablate_heads(_tiny("none", True), [d.draw(st.sampled_from([0, (0,), [0, 1], "01"]))]))
invalid("ablate_heads", "layer or head out of range", "layer", lambda d: lambda: attn_core.ablate_heads(_tiny("none", True), [(d.draw(st.sampled_from([-1, 2, 5])), 0)]))
invalid("ablate_heads", "a model without blocks", "model", lambda d: lambda: attn_core.ablate_heads(nn.Linear(2, 2), [(0, 0)]))


# =============================================================================== pretrained (lesson 09)

from attn_core import pretrained as P_  # noqa: E402


@functools.lru_cache(maxsize=None)
def _minilm(dtype=torch.float32):
    return P_.load_minilm(dtype)


def _tiny_config(d):
    H = size(d, 1, 2)
    return attn_core.BertConfig(vocab_size=size(d, 5, 12), d_model=4 * H, n_heads=H, n_layers=size(d, 1, 2),
                                d_ff=size(d, 2, 9), max_len=size(d, 4, 8), n_segments=size(d, 1, 2), ln_eps=1e-12)


@valid("BertConfig", "from_json of a Hugging Face config.json gives the same sizes")
def _(d):
    c = _tiny_config(d)
    hf = {"model_type": "bert", "hidden_act": "gelu", "vocab_size": c.vocab_size, "hidden_size": c.d_model,
          "num_attention_heads": c.n_heads, "num_hidden_layers": c.n_layers, "intermediate_size": c.d_ff,
          "max_position_embeddings": c.max_len, "type_vocab_size": c.n_segments, "layer_norm_eps": c.ln_eps, "pad_token_id": 0}
    assert attn_core.BertConfig.from_json(hf) == c


invalid("BertConfig", "a size < 1 or not whole", "d_model", lambda d: lambda: attn_core.BertConfig(d_model=d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("BertConfig", "ln_eps not positive", "ln_eps", lambda d: lambda: attn_core.BertConfig(ln_eps=d.draw(st.sampled_from([0, -1e-12, "x"]))))
invalid("BertConfig", "pad_id outside the vocabulary", "pad_id", lambda d: lambda: attn_core.BertConfig(vocab_size=10, pad_id=d.draw(st.sampled_from([-1, 10, 1.5]))))
invalid("BertConfig", "from_json of something else", "config", lambda d: lambda: attn_core.BertConfig.from_json(d.draw(st.sampled_from([[], "x", {"model_type": "gpt2"}, {}]))))


@valid("BertEncoder", "random tiny configs with padding equal transformers' BertModel with the same weights")
def _(d):
    import transformers

    c = _tiny_config(d)
    torch.manual_seed(d.draw(st.integers(0, 99)))
    ours = attn_core.BertEncoder(c).double().eval()
    theirs = transformers.BertModel(transformers.BertConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, num_attention_heads=c.n_heads, num_hidden_layers=c.n_layers,
        intermediate_size=c.d_ff, max_position_embeddings=c.max_len, type_vocab_size=c.n_segments,
        layer_norm_eps=c.ln_eps, hidden_act="gelu", attn_implementation="eager"), add_pooling_layer=False).double().eval()
    params = dict(ours.named_parameters())
    theirs.load_state_dict({t: params[o] for o, t in P_.minilm_key_map(c.n_layers).items()}, strict=False)
    B, T = size(d, 1, 3), size(d, 1, c.max_len)
    ids, seg = torch.randint(0, c.vocab_size, (B, T)), torch.randint(0, c.n_segments, (B, T))
    lengths = torch.tensor([d.draw(st.integers(1, T)) for _ in range(B)])
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    hidden, weights = ours(ids, seg, mask, return_weights=True)
    out = theirs(input_ids=ids, token_type_ids=seg, attention_mask=mask, output_attentions=True)
    real = mask.bool()[..., None]
    close(torch.where(real, hidden, 0.0), torch.where(real, out.last_hidden_state, 0.0), atol=1e-9)
    for w, ref in zip(weights, out.attentions):
        close(w, ref, atol=1e-9)


invalid("BertEncoder", "config not a BertConfig", "config", lambda d: lambda: attn_core.BertEncoder(d.draw(st.sampled_from(["x", None, {}]))))
_TINY_BERT = attn_core.BertEncoder(attn_core.BertConfig(vocab_size=10, d_model=8, n_heads=2, n_layers=1, d_ff=16, max_len=6))
invalid("BertEncoder", "token_ids not an integer tensor", "token_ids", lambda d: lambda: _TINY_BERT(d.draw(st.sampled_from([torch.zeros(1, 3), [[1, 2]], None]))))
invalid("BertEncoder", "token_ids of the wrong rank", "token_ids", lambda d: lambda: _TINY_BERT(torch.zeros(d.draw(st.sampled_from([(3,), (1, 0), (1, 2, 3)])), dtype=torch.long)))
invalid("BertEncoder", "token ids out of range", "token_ids", lambda d: lambda: _TINY_BERT(torch.tensor([[0, d.draw(st.sampled_from([-1, 10, 99]))]])))
invalid("BertEncoder", "longer than max_len", "positions", lambda d: lambda: _TINY_BERT(torch.zeros(1, d.draw(st.integers(7, 12)), dtype=torch.long)))
invalid("BertEncoder", "segment_ids or attention_mask of another shape", "segment_ids", lambda d: lambda: _TINY_BERT(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, d.draw(st.sampled_from([2, 4])), dtype=torch.long)))
invalid("BertEncoder", "attention_mask not 0/1", "attention_mask", lambda d: lambda: _TINY_BERT(torch.zeros(1, 3, dtype=torch.long), attention_mask=torch.tensor([[1, d.draw(st.sampled_from([2, -1])), 1]])))
invalid("BertEncoder", "use_positions not a bool", "use_positions", lambda d: lambda: _TINY_BERT(torch.zeros(1, 3, dtype=torch.long), use_positions=d.draw(NOT_A_FLAG)))

WORDS = ["the", "bank", "river", "money", "cat", "sat", "on", "mat", ",", "!", "flooded", "loan", "it", "was", "tired"]
TEXT = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)


@valid("load_minilm", "float32 and float64: the checkpoint's configuration, eval mode, the asked dtype")
def _(d):
    dtype = d.draw(st.sampled_from([torch.float32, torch.float64]))
    model, tokenizer = _minilm(dtype)
    assert model.config == attn_core.BertConfig() and not model.training
    assert all(p.dtype == dtype for p in model.parameters()) and tokenizer.token_to_id("[PAD]") == 0


invalid("load_minilm", "a non-floating dtype", "dtype", lambda d: lambda: P_.load_minilm(d.draw(NON_FLOAT_TORCH_DTYPE | st.just("float32"))))


@valid("encode", "ids, segments and padding equal the tokenizer's own encodings")
def _(d):
    _, tokenizer = _minilm()
    texts = d.draw(st.lists(TEXT, min_size=1, max_size=3))
    pairs = d.draw(st.none() | st.lists(TEXT, min_size=len(texts), max_size=len(texts)))
    enc = attn_core.encode(tokenizer, texts, pairs)
    for b, e in enumerate(tokenizer.encode_batch(texts if pairs is None else list(zip(texts, pairs)))):
        n = len(e.ids)
        assert enc.token_ids[b, :n].tolist() == e.ids and enc.segment_ids[b, :n].tolist() == e.type_ids
        assert enc.attention_mask[b].tolist() == [1] * n + [0] * (enc.token_ids.shape[1] - n) and enc.tokens[b] == e.tokens


invalid("encode", "texts not str or a list of str", "texts", lambda d: lambda: attn_core.encode(_minilm()[1], d.draw(st.sampled_from([3, None, [], [1], ["ok", 2]]))))
invalid("encode", "an empty text", "texts", lambda d: lambda: attn_core.encode(_minilm()[1], d.draw(st.sampled_from(["", "  ", ["a", ""]]))))
invalid("encode", "pairs of another count", "pairs", lambda d: lambda: attn_core.encode(_minilm()[1], ["a", "b"], d.draw(st.sampled_from([["a"], ["a", "b", "c"]]))))
invalid("encode", "longer than max_len", "positions", lambda d: lambda: attn_core.encode(_minilm()[1], "the cat sat on the mat", max_len=d.draw(st.integers(3, 7))))


@valid("bert_selectors", "cls / sep / punctuation are exactly where encode put those tokens")
def _(d):
    enc = attn_core.encode(_minilm()[1], d.draw(st.lists(TEXT, min_size=1, max_size=3)))
    sel = attn_core.bert_selectors(enc)
    for b, tokens in enumerate(enc.tokens):
        pad = [False] * (enc.token_ids.shape[1] - len(tokens))
        assert sel["cls"][b].tolist() == [t == "[CLS]" for t in tokens] + pad
        assert sel["sep"][b].tolist() == [t == "[SEP]" for t in tokens] + pad
        assert sel["punctuation"][b].tolist() == [t in {",", "!"} for t in tokens] + pad


invalid("bert_selectors", "not an Encoded batch", "encoded", lambda d: lambda: attn_core.bert_selectors(d.draw(st.sampled_from(["x", None, {"token_ids": 1}]))))


@valid("mean_pool", "the mean of the real tokens' vectors")
def _(d):
    B, T, D = size(d), size(d), size(d)
    hidden, mask = randn(d, B, T, D), rand_bool(d, B, T).long()
    ref = torch.stack([hidden[b][mask[b].bool()].mean(0) if mask[b].any() else torch.zeros(D) for b in range(B)])
    close(attn_core.mean_pool(hidden, mask), ref.double(), atol=1e-12)


invalid("mean_pool", "hidden of the wrong rank or not a tensor", "hidden", lambda d: lambda: attn_core.mean_pool(d.draw(st.sampled_from([torch.zeros(2, 3), np.zeros((1, 2, 3)), None])), torch.ones(1, 2)))
invalid("mean_pool", "attention_mask of the wrong shape", "attention_mask", lambda d: lambda: attn_core.mean_pool(torch.zeros(1, 2, 3), torch.ones(d.draw(st.sampled_from([(1, 3), (2,), (2, 2)])))))


@valid("sentence_embeddings", "unit vectors equal to the normalised mean pool of the model's last layer")
def _(d):
    model, tokenizer = _minilm()
    texts = d.draw(st.lists(TEXT, min_size=1, max_size=3))
    emb = attn_core.sentence_embeddings(model, tokenizer, texts)
    enc = attn_core.encode(tokenizer, texts)
    pooled = attn_core.mean_pool(model(enc.token_ids, enc.segment_ids, enc.attention_mask), enc.attention_mask)
    close(emb, F.normalize(pooled, dim=1), atol=1e-6)
    close(emb.norm(dim=1), torch.ones(len(texts)), atol=1e-6)


invalid("sentence_embeddings", "texts not str or a list of str", "texts", lambda d: lambda: attn_core.sentence_embeddings(*_minilm(), d.draw(st.sampled_from([3, [], [""]]))))


@valid("contextual_vector", "the mean of the word's WordPiece rows at the asked layer")
def _(d):
    model, tokenizer = _minilm()
    words = d.draw(st.lists(st.sampled_from(["the", "bank", "river", "flooded", "unbelievable", "cat"]), min_size=1, max_size=6))
    word, layer = d.draw(st.sampled_from(words)), d.draw(st.integers(-7, 6))
    text = " ".join(words)
    vec = attn_core.contextual_vector(model, tokenizer, text, word, layer=layer)
    enc = attn_core.encode(tokenizer, text)
    hidden = model.layer_outputs(enc.token_ids, enc.segment_ids, enc.attention_mask)[0][layer][0]  # (T, d_model)
    pieces = [i for i, w in enumerate(tokenizer.encode(text).word_ids) if w == words.index(word)]
    close(vec, hidden[pieces].mean(0), atol=1e-6)


invalid("contextual_vector", "a word not in the text", "word", lambda d: lambda: attn_core.contextual_vector(*_minilm(), "the cat sat", d.draw(st.sampled_from(["dog", "", None]))))
invalid("contextual_vector", "a layer out of range", "layer", lambda d: lambda: attn_core.contextual_vector(*_minilm(), "the cat sat", "cat", layer=d.draw(st.sampled_from([7, -8, "1", 1.0]))))
invalid("contextual_vector", "an occurrence that does not exist", "occurrence", lambda d: lambda: attn_core.contextual_vector(*_minilm(), "the cat sat", "cat", occurrence=d.draw(st.integers(1, 4))))


@valid("Encoded", "the NamedTuple encode returns: fields in order, shapes agree")
def _(d):
    enc = attn_core.encode(_minilm()[1], d.draw(st.lists(TEXT, min_size=1, max_size=3)))
    assert isinstance(enc, attn_core.Encoded) and enc._fields == ("token_ids", "segment_ids", "attention_mask", "tokens", "lengths")
    assert enc.token_ids.shape == enc.segment_ids.shape == enc.attention_mask.shape == (len(enc.tokens), max(enc.lengths))


invalid("Encoded", "missing fields", "segment_ids", lambda d: lambda: attn_core.Encoded(torch.zeros(1, 1)))


# Found by this test in other helpers' modules and fixed there (issue 8).
invalid("TinyTransformer", "return_weights not a bool", "return_weights", lambda d: lambda: _tiny("none", True)(torch.zeros(1, 2, dtype=torch.long), return_weights=d.draw(NOT_A_FLAG)))
invalid("load_minilm", "path not a path", "path", lambda d: lambda: P_.load_minilm(path=d.draw(st.sampled_from([3, 1.5]))))
invalid("encode", "tokenizer not a Tokenizer", "tokenizer", lambda d: lambda: attn_core.encode(d.draw(st.sampled_from([None, "tok"])), "hi"))
invalid("encode", "max_len not a whole number >= 1", "max_len", lambda d: lambda: attn_core.encode(_minilm()[1], "hi", max_len=d.draw(st.sampled_from(["5", 0, -1]))))
invalid("sentence_embeddings", "model not a BertEncoder", "model", lambda d: lambda: attn_core.sentence_embeddings(d.draw(st.sampled_from([None, "m"])), _minilm()[1], "hi"))
invalid("sentence_embeddings", "normalize not a bool", "normalize", lambda d: lambda: attn_core.sentence_embeddings(*_minilm(), "hi", normalize=d.draw(NOT_A_FLAG)))
invalid("BertEncoder", "return_weights not a bool", "return_weights", lambda d: lambda: _TINY_BERT(torch.zeros(1, 3, dtype=torch.long), return_weights=d.draw(NOT_A_FLAG)))
invalid("BertConfig", "n_heads not dividing d_model", "n_heads", lambda d: lambda: attn_core.BertConfig(d_model=10, n_heads=d.draw(st.sampled_from([3, 4]))))
invalid("label_heads", "threshold not a number", "threshold", lambda d: lambda: attn_core.label_heads({"self": np.ones((1, 1))}, d.draw(st.sampled_from(["0.5", None]))))
invalid("format_head_scores", "decimals not a whole number >= 0", "decimals", lambda d: lambda: attn_core.format_head_scores({"self": np.ones((1, 1))}, d.draw(st.sampled_from([-1, "2", 1.5]))))



# =============================================================================== online softmax, tiled attention (lesson 10)


@valid("online_softmax", "float32 and float64 rows with -inf entries, any block size, numpy and torch vs torch.softmax")
def _(d):
    shape = d.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3), label="shape")
    dtype = d.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    x = randn(d, *shape, dtype=dtype) * 20
    x = x.masked_fill(rand_bool(d, *shape, p=0.3), -math.inf)
    x[..., 0] = 1.0  # one finite entry per row (an all -inf row is nan, like softmax)
    block = size(d, 1, 8, label="block_size")
    close(attn_core.online_softmax(x, block_size=block), torch.softmax(x, dim=-1), atol=1e-6)
    close(attn_core.online_softmax(x.numpy(), block_size=block), torch.softmax(x, dim=-1), atol=1e-6)


invalid("online_softmax", "not an array", "x", lambda d: lambda: attn_core.online_softmax(d.draw(NOT_AN_ARRAY)))
invalid("online_softmax", "integer or boolean array", "x", lambda d: lambda: attn_core.online_softmax(torch.zeros(3, dtype=d.draw(INT_OR_BOOL_TORCH))))
invalid("online_softmax", "block_size not a whole number >= 1", "block_size",
        lambda d: lambda: attn_core.online_softmax(torch.zeros(3), block_size=d.draw(NON_POSITIVE_INT | NOT_AN_INT)))


@valid("tiled_attention", "random q, k, v, mask, bias, scale and block size vs F.scaled_dot_product_attention, numpy and torch")
def _(d):
    lead, T, S, q, k, v = _sdpa_inputs(d)
    mask = rand_bool(d, T, S) if d.draw(st.booleans(), label="mask") else None
    bias = randn(d, T, S) if d.draw(st.booleans(), label="bias") else None
    block = size(d, 1, 7, label="block_size")
    out = attn_core.tiled_attention(q, k, v, mask=mask, bias=bias, block_size=block)
    ref = attn_core.scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)[0]  # zeros for fully masked rows
    close(out, ref)
    if S > 0 and (mask is None or mask.any(-1).all()):
        attn = None if mask is None and bias is None else (torch.zeros(T, S, dtype=torch.float64) if bias is None else bias)
        attn = attn if mask is None else attn.masked_fill(~mask, -math.inf)
        close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=attn))
    out_np = attn_core.tiled_attention(q.numpy(), k.numpy(), v.numpy(), mask=None if mask is None else mask.numpy(),
                                       bias=None if bias is None else bias.numpy(), block_size=block)
    close(out_np, ref)


TA = attn_core.tiled_attention
invalid("tiled_attention", "block_size not a whole number >= 1", "block_size",
        _sdpa_bad("block_size", lambda d, q, k, v: TA(q, k, v, block_size=d.draw(NON_POSITIVE_INT | NOT_AN_INT))))
invalid("tiled_attention", "q not an array", "q", _sdpa_bad("q", lambda d, q, k, v: TA(d.draw(NOT_AN_ARRAY), k, v)))
invalid("tiled_attention", "k of another d_k", "d_k", _sdpa_bad("k", lambda d, q, k, v: TA(q, k[..., :-1], v)))
invalid("tiled_attention", "mixed float32 / float64", "dtype", _sdpa_bad("q", lambda d, q, k, v: TA(q, k.float(), v)))
invalid("tiled_attention", "float mask", "mask", _sdpa_bad("mask", lambda d, q, k, v: TA(q, k, v, mask=torch.ones(3, 5))))
invalid("tiled_attention", "mask of the wrong size", "mask",
        _sdpa_bad("mask", lambda d, q, k, v: TA(q, k, v, mask=torch.ones(d.draw(st.sampled_from([(5, 3), (3, 4), (4, 3, 5)])), dtype=torch.bool))))
invalid("tiled_attention", "bias of the wrong size", "bias", _sdpa_bad("bias", lambda d, q, k, v: TA(q, k, v, bias=torch.zeros(4, 3, 5))))
invalid("tiled_attention", "scale not a finite number", "scale",
        _sdpa_bad("scale", lambda d, q, k, v: TA(q, k, v, scale=d.draw(st.sampled_from(["0.5", float("nan"), True])))))


# =============================================================================== GQA, KV cache, sampling (lesson 10)


@valid("MultiHeadAttention", "grouped- and multi-query (n_kv_heads | n_heads) vs F.scaled_dot_product_attention(enable_gqa=True)")
def _(d):
    H_kv, group, d_head = size(d, 1, 3), size(d, 1, 3), size(d, 1, 3)
    B, T, S = size(d, 1, 3), size(d, 1, 4), size(d, 1, 5)
    H = H_kv * group
    torch.manual_seed(d.draw(st.integers(0, 1000), label="weights"))
    mha = MultiHeadAttention(H * d_head, H, n_kv_heads=H_kv).double()
    query, key = randn(d, B, T, H * d_head), randn(d, B, S, H * d_head)
    out, weights = mha(query, key, key)
    q = mha.w_q(query).view(B, T, H, d_head).transpose(1, 2)
    k = mha.w_k(key).view(B, S, H_kv, d_head).transpose(1, 2)
    v = mha.w_v(key).view(B, S, H_kv, d_head).transpose(1, 2)
    ref = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    close(out, mha.w_o(ref.transpose(1, 2).reshape(B, T, -1)))
    assert weights.shape == (B, H, T, S)


invalid("MultiHeadAttention", "n_kv_heads not dividing n_heads", "n_kv_heads", lambda d: lambda: MultiHeadAttention(12, 6, n_kv_heads=d.draw(st.sampled_from([4, 5, 12]))))
invalid("MultiHeadAttention", "n_kv_heads not a whole number >= 1", "n_kv_heads", lambda d: lambda: MultiHeadAttention(8, 2, n_kv_heads=d.draw(NON_POSITIVE_INT | NOT_AN_INT_NOR_NONE)))
invalid("MultiHeadAttention", "cache of another batch size or head count", "cache",
        lambda d: lambda: MultiHeadAttention(8, 2, n_kv_heads=d.draw(st.sampled_from([1, 2])))(X, cache=attn_core.KVCache.empty(d.draw(st.sampled_from([1, 3])), 2, 4)))
invalid("parameter_count", "n_kv_heads not dividing n_heads", "n_kv_heads", lambda d: lambda: attn_core.parameter_count(12, 6, n_kv_heads=d.draw(st.sampled_from([4, 5, 0]))))
invalid("matmul_flops", "n_kv_heads not dividing n_heads", "n_kv_heads", lambda d: lambda: attn_core.matmul_flops(3, 12, 6, n_kv_heads=d.draw(st.sampled_from([4, 5, 0]))))


@valid("KVCache", "appending chunks equals concatenating on the S axis; nbytes equals kv_cache_bytes")
def _(d):
    B, H_kv, d_head = size(d, 1, 3), size(d, 1, 3), size(d, 1, 4)
    chunks = [randn(d, B, H_kv, size(d, 1, 3), d_head) for _ in range(size(d, 1, 3))]
    cache = attn_core.KVCache.empty(B, H_kv, d_head, dtype=torch.float64)
    for c in chunks:
        cache = cache.append(c, 2 * c)
    close(cache.k, torch.cat(chunks, dim=2))
    close(cache.v, 2 * torch.cat(chunks, dim=2))
    assert cache.nbytes == attn_core.kv_cache_bytes(1, H_kv, d_head, cache.length, bytes_per_value=8, batch_size=B)


invalid("KVCache", "k and v of different shapes", "k", lambda d: lambda: attn_core.KVCache(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, d.draw(st.sampled_from([2, 4])), 4)))
invalid("KVCache", "k of rank 3", "k", lambda d: lambda: attn_core.KVCache(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)))
invalid("KVCache", "k not a tensor", "k", lambda d: lambda: attn_core.KVCache(d.draw(NOT_AN_ARRAY), torch.zeros(1, 1, 1, 1)))
invalid("KVCache", "append of another head count", "n_kv_heads", lambda d: lambda: attn_core.KVCache.empty(1, 2, 4).append(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4)))


@valid("kv_cache_bytes", "equals the bytes of a TinyTransformer's cache tensors")
def _(d):
    H_kv, n_layers, T, B = d.draw(st.sampled_from([1, 2]), label="n_kv_heads"), size(d, 1, 2), size(d, 1, 6), size(d, 1, 2)
    torch.manual_seed(0)
    model = attn_core.TinyTransformer(7, 8, 2, n_layers, 8, positional="rope", n_kv_heads=H_kv).eval()
    _, cache = model(torch.zeros(B, T, dtype=torch.long), cache=model.empty_cache(B))
    assert sum(c.nbytes for c in cache) == attn_core.kv_cache_bytes(n_layers, H_kv, 4, T, 4, B)


invalid("kv_cache_bytes", "a size not a whole number >= 1", "n_kv_heads", lambda d: lambda: attn_core.kv_cache_bytes(2, d.draw(NON_POSITIVE_INT | NOT_AN_INT), 4, 8))
invalid("kv_cache_bytes", "T not a whole number >= 1", "T", lambda d: lambda: attn_core.kv_cache_bytes(2, 2, 4, d.draw(NON_POSITIVE_INT | NOT_AN_INT)))


@valid("sample_next_token", "temperature 0 is argmax; a seeded generator reproduces the draw")
def _(d):
    logits = randn(d, size(d, 1, 4), size(d, 1, 6))
    assert torch.equal(attn_core.sample_next_token(logits), logits.argmax(-1))
    tau, seed = d.draw(st.floats(0.1, 5.0), label="temperature"), d.draw(st.integers(0, 100), label="seed")
    a = attn_core.sample_next_token(logits, tau, torch.Generator().manual_seed(seed))
    b = torch.multinomial(torch.softmax(logits / tau, -1), 1, generator=torch.Generator().manual_seed(seed))[:, 0]
    assert torch.equal(a, b)


invalid("sample_next_token", "logits of rank 1 or 3", "logits", lambda d: lambda: attn_core.sample_next_token(torch.zeros((3,) if d.draw(st.booleans()) else (1, 2, 3))))
invalid("sample_next_token", "integer logits or not a tensor", "logits", lambda d: lambda: attn_core.sample_next_token(d.draw(st.sampled_from([torch.zeros(2, 3, dtype=torch.long), [[1.0]], None]))))
invalid("sample_next_token", "negative or non-finite temperature", "temperature", lambda d: lambda: attn_core.sample_next_token(torch.zeros(1, 3), d.draw(st.sampled_from([-1.0, float("nan"), float("inf"), "1"]))))
invalid("TinyTransformer", "generate: n_new_tokens negative or not whole", "n_new_tokens", lambda d: lambda: _tiny("rope", True).generate(torch.zeros(1, 2, dtype=torch.long), d.draw(st.sampled_from([-1, 1.5, "2", True]))))
invalid("TinyTransformer", "generate past max_len with learned positions", "max_len", lambda d: lambda: _tiny("learned", True).generate(torch.zeros(1, 2, dtype=torch.long), d.draw(st.integers(8, 12))))


@valid("TinyTransformer", "every positional scheme: generate with and without the KV cache gives identical tokens")
def _(d):
    prompt = torch.randint(0, 7, (size(d, 1, 2), size(d, 1, 3)), generator=torch.Generator().manual_seed(size(d, 0, 99)))
    for positional in attn_core.POSITIONAL_SCHEMES:
        model = _tiny(positional, True)
        n = 8 - prompt.shape[1] + 1  # up to max_len for learned positions
        assert torch.equal(model.generate(prompt, n), model.generate(prompt, n, use_cache=False))


# ------------------------------------------------------------------ encoder-decoder, cross-attention (lesson 10)


@valid("ReversalTask", "the target is the source reversed; target_in is BOS then the target shifted right")
def _(d):
    V, L = size(d, 3, 30), size(d, 1, 9)
    task = attn_core.ReversalTask(vocab_size=V, length=L)
    batch = task.sample(size(d, 1, 4), torch.Generator().manual_seed(d.draw(st.integers(0, 99))))
    for src, t_in, tgt in zip(batch.source, batch.target_in, batch.target):
        assert tgt.tolist() == src.tolist()[::-1] and t_in.tolist() == [task.bos] + tgt.tolist()[:-1]
        assert int(src.max()) < task.bos == V - 1 == len(task.vocab) - 1 and task.decode(t_in)[0] == "<s>"


invalid("ReversalTask", "vocab_size < 3 or not whole", "vocab_size", lambda d: lambda: attn_core.ReversalTask(vocab_size=d.draw(st.sampled_from([2, 1, 0, 2.5, "10"]))))
invalid("ReversalTask", "length < 1", "length", lambda d: lambda: attn_core.ReversalTask(length=d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("ReversalTask", "generator not a torch.Generator", "generator", lambda d: lambda: attn_core.ReversalTask().sample(2, d.draw(st.sampled_from([0, "g"]))))
invalid("ReversalTask", "batch_size < 1", "batch_size", lambda d: lambda: attn_core.ReversalTask().sample(d.draw(NON_POSITIVE_INT | NOT_AN_INT)))
invalid("ReversalTask", "decode of ids out of range", "ids", lambda d: lambda: attn_core.ReversalTask(vocab_size=5).decode([0, d.draw(st.sampled_from([-1, 5, 9]))]))


@valid("Seq2SeqBatch", "holds integer source (B, S), target_in and target (B, T); S may differ from T")
def _(d):
    B, S, T = size(d), size(d), size(d)
    source, target = torch.randint(0, 5, (B, S)), torch.randint(0, 5, (B, T))
    batch = attn_core.Seq2SeqBatch(source, target.clone(), target)
    assert batch.source is source and batch.target is target


invalid("Seq2SeqBatch", "source not an integer tensor", "source", lambda d: lambda: attn_core.Seq2SeqBatch(d.draw(st.sampled_from([[[1]], torch.zeros(1, 2), None])), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long)))
invalid("Seq2SeqBatch", "target of another shape than target_in", "target", lambda d: lambda: attn_core.Seq2SeqBatch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), torch.zeros(d.draw(st.sampled_from([(2, 3), (3, 4), (2, 4, 1)])), dtype=torch.long)))


def _seq2seq(seed=0):
    torch.manual_seed(seed)
    return attn_core.EncoderDecoder(vocab_size=7, d_model=8, n_heads=2, n_layers=2, max_len=6).eval()


@valid("EncoderDecoder", "T != S: logits (B, T, V); weights encoder (B, H, S, S), decoder (B, H, T, T), cross (B, H, T, S) rows sum to 1; a target prefix gives the same logits")
def _(d):
    B, S, T = size(d, 1, 3), size(d, 1, 6), size(d, 1, 6)
    gen = torch.Generator().manual_seed(d.draw(st.integers(0, 99)))
    source, target_in = torch.randint(0, 7, (B, S), generator=gen), torch.randint(0, 7, (B, T), generator=gen)
    model = _seq2seq()
    logits, weights = model(source, target_in, return_weights=True)
    assert logits.shape == (B, T, 7)
    for key, shape in (("encoder", (B, 2, S, S)), ("decoder", (B, 2, T, T)), ("cross", (B, 2, T, S))):
        assert len(weights[key]) == 2 and all(w.shape == shape for w in weights[key])
        close(sum(w.sum(-1) for w in weights[key]) / 2, torch.ones(shape[:-1]), atol=1e-5)
    t = size(d, 1, T)
    close(model(source, target_in[:, :t]), logits[:, :t], atol=1e-5)


@valid("EncoderDecoder", "greedy_decode equals feeding back the argmax one step at a time")
def _(d):
    model, n = _seq2seq(d.draw(st.integers(0, 9))), size(d, 1, 6)
    source = torch.randint(0, 7, (size(d, 1, 3), size(d, 1, 6)), generator=torch.Generator().manual_seed(d.draw(st.integers(0, 99))))
    tokens = torch.full((source.shape[0], 1), model.bos)
    for _ in range(n):
        tokens = torch.cat([tokens, model(source, tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(model.greedy_decode(source, n), tokens[:, 1:])


invalid("EncoderDecoder", "source not an integer tensor", "source", lambda d: lambda: _seq2seq()(d.draw(st.sampled_from([torch.zeros(1, 3), [[1, 2]], None, torch.ones(1, 2, dtype=torch.bool)])), torch.zeros(1, 2, dtype=torch.long)))
invalid("EncoderDecoder", "target_in ids out of range", "target_in", lambda d: lambda: _seq2seq()(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[0, d.draw(st.sampled_from([-1, 7, 100]))]])))
invalid("EncoderDecoder", "source or target longer than max_len", "max_len", lambda d: lambda: _seq2seq()(*(lambda L, first: (torch.zeros(1, L, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))[::1 if first else -1])(d.draw(st.integers(7, 12)), d.draw(st.booleans()))))
invalid("EncoderDecoder", "source and target_in of different batch sizes", "target_in", lambda d: lambda: _seq2seq()(torch.zeros(d.draw(st.integers(2, 4)), 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)))
invalid("EncoderDecoder", "greedy_decode: n_tokens < 1, > max_len or not whole", "n_tokens", lambda d: lambda: _seq2seq().greedy_decode(torch.zeros(1, 3, dtype=torch.long), d.draw(st.sampled_from([0, -1, 7, 1.5, "2", True]))))
invalid("EncoderDecoder", "bos not a token id", "bos", lambda d: lambda: attn_core.EncoderDecoder(7, 8, 2, 1, 6, bos=d.draw(st.sampled_from([-1, 7, 1.5, True]))))
invalid("EncoderDecoder", "d_model not divisible by n_heads", "n_heads", lambda d: lambda: attn_core.EncoderDecoder(7, 8, d.draw(st.sampled_from([3, 5])), 1, 6))


@valid("DecoderBlock", "equals causal self-attention, cross-attention to memory and MLP, each with its pre-LayerNorm")
def _(d):
    B, T, S = size(d, 1, 3), size(d), size(d)
    torch.manual_seed(d.draw(st.integers(0, 99)))
    block = attn_core.DecoderBlock(8, 2).double()
    x, memory, mask = randn(d, B, T, 8), randn(d, B, S, 8), attn_core.causal_mask(T)
    out, w_self, w_cross = block(x, memory, mask=mask)
    ref = x + block.self_attn(block.ln_self(x), mask=mask)[0]
    ref = ref + block.cross_attn(block.ln_cross(ref), memory, memory)[0]
    close(out, ref + block.mlp(block.ln_mlp(ref)))
    assert w_self.shape == (B, 2, T, T) and w_cross.shape == (B, 2, T, S)


invalid("DecoderBlock", "memory of the wrong width or batch", "memory", lambda d: lambda: attn_core.DecoderBlock(8, 2)(torch.zeros(2, 3, 8), torch.zeros(d.draw(st.sampled_from([(2, 4, 6), (1, 4, 8), (4, 8)])))))
invalid("DecoderBlock", "memory not a tensor", "memory", lambda d: lambda: attn_core.DecoderBlock(8, 2)(torch.zeros(2, 3, 8), d.draw(NOT_AN_ARRAY)))
invalid("DecoderBlock", "x not a (B, T, d_model) tensor", "x", lambda d: lambda: attn_core.DecoderBlock(8, 2)(d.draw(st.sampled_from([torch.zeros(3, 8), torch.zeros(1, 3, 5), None])), torch.zeros(1, 4, 8)))
invalid("DecoderBlock", "d_ff < 1", "d_ff", lambda d: lambda: attn_core.DecoderBlock(8, 2, d_ff=d.draw(NON_POSITIVE_INT | NOT_AN_INT_NOR_NONE)))


@valid("anti_diagonal_score", "mean of w[b, h, t, S - 1 - t] over the queries t < min(T, S), torch and numpy")
def _(d):
    B, H, T, S = size(d, 1, 3), size(d, 1, 3), size(d), size(d)
    w = torch.softmax(randn(d, B, H, T, S), dim=-1)
    ref = [np.mean([w[b, h, t, S - 1 - t].item() for b in range(B) for t in range(min(T, S))]) for h in range(H)]
    close(attn_core.anti_diagonal_score(w), np.array(ref), atol=1e-12)
    close(attn_core.anti_diagonal_score(w.numpy()), np.array(ref), atol=1e-12)
    close(attn_core.anti_diagonal_score(torch.eye(S, dtype=torch.float64).flip(-1)[None, None]), np.ones(1))


invalid("anti_diagonal_score", "weights not 4-D or empty", "weights", lambda d: lambda: attn_core.anti_diagonal_score(torch.zeros(d.draw(st.sampled_from([(3, 3), (1, 3, 3), (1, 1, 0, 3)])))))
invalid("anti_diagonal_score", "weights not an array or integer", "weights", lambda d: lambda: attn_core.anti_diagonal_score(d.draw(NOT_AN_ARRAY | st.just(torch.zeros(1, 1, 2, 2, dtype=torch.long)))))


# =============================================================================== the tests


def _covered() -> set[str]:
    return set(VALID) & set(INVALID)


def input_classes() -> int:
    """Classes of inputs covered: one per valid class and one per invalid case."""
    return sum(len(v) for v in VALID.values()) + sum(len(v) for v in INVALID.values())


def test_every_public_name_is_covered():
    public = public_names()
    callables = {n for n, obj in public.items() if callable(obj)}
    assert {n for n in public if n not in callables} == set(CONSTANTS), "a public constant without a CONSTANTS entry"
    for name, kind in CONSTANTS.items():
        assert isinstance(public[name], kind), name
    for name, path in COVERED_ELSEWHERE.items():
        assert name in callables and (Path(__file__).parent.parent / path).is_file(), (name, path)
    missing = sorted(callables - _covered() - set(COVERED_ELSEWHERE))
    assert not missing, f"public names without a contract here (valid and invalid inputs): {missing}"
    stale = (set(VALID) | set(INVALID)) - set(public)
    assert not stale, f"contracts for names that are not public (renamed or removed?): {sorted(stale)}"
    assert input_classes() >= 200, input_classes()


@pytest.mark.parametrize("name,label,check", [(n, label, fn) for n, cases in VALID.items() for label, fn in cases],
                         ids=[f"{n}: {label}"[:90] for n, cases in VALID.items() for label, _ in cases])
def test_valid_inputs_agree_with_the_reference(name, label, check):
    expensive = name in {"TinyTransformer", "evaluate", "ablate_heads", "MultiHeadAttention", "TransformerBlock", "matmul_flops",
                         "BertEncoder", "load_minilm", "encode", "bert_selectors", "sentence_embeddings",
                         "contextual_vector", "Encoded"}

    @(FEW if expensive else SETTINGS)
    @given(data=st.data())
    def run(data):
        with torch.no_grad():
            check(data)

    run()


def check_invalid(name, label, arg, make):
    """Every drawn bad call raises ValueError/TypeError naming `arg`; never another exception, never nothing."""
    @SETTINGS
    @given(data=st.data())
    def run(data):
        call = make(data)
        try:
            result = call()
        except (ValueError, TypeError) as error:
            named = re.search(rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])", str(error), re.IGNORECASE)
            assert named, f"{name} ({label}): the message does not name {arg!r}: {error}"
            return
        except BaseException as error:  # noqa: BLE001 - any other exception type is the failure being tested
            pytest.fail(f"{name} ({label}) raised {type(error).__name__}, not ValueError/TypeError: {error}")
        pytest.fail(f"{name} ({label}) raised nothing and returned {result!r:.120}")

    run()


@pytest.mark.parametrize("name,label,arg,make", [(n, label, arg, make) for n, cases in INVALID.items() for label, arg, make in cases],
                         ids=[f"{n}: {label}"[:90] for n, cases in INVALID.items() for label, _, _ in cases])
def test_invalid_inputs_raise_a_named_value_or_type_error(name, label, arg, make):
    check_invalid(name, label, arg, make)


