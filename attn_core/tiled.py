r"""Online softmax and tiled attention: attention without the `(T, S)` score matrix (lesson 10).

Lesson 01's stable softmax subtracts the row maximum `m` and divides by the sum `l` of the
exponentials. Both can be computed *one block of the row at a time*: when a block raises the
maximum from `m_old` to `m_new`, everything summed so far was exponentiated against the old
maximum, and multiplying it by `exp(m_old - m_new)` rescales it to the new one:

.. math:: m_\mathrm{new} = \max(m_\mathrm{old}, \max_j x_j), \qquad
          l_\mathrm{new} = l_\mathrm{old}\, e^{m_\mathrm{old} - m_\mathrm{new}}
                           + \sum_j e^{x_j - m_\mathrm{new}}

Attention adds a third running quantity, the unnormalised output
`acc = sum_j exp(s_j - m) v_j`, rescaled by the same factor; at the end `out = acc / l`.
So `tiled_attention` keeps `(..., T, block_size)` scores alive at a time, never `(..., T, S)`:
memory grows as `T * block_size`, not `T * S`. This is the idea behind FlashAttention (Dao
et al., 2022) and the Triton fused-attention tutorial; there it runs in one fused GPU
kernel, here in a Python loop over blocks, so it is slower than the plain computation on a
CPU and only its memory and its equality are the point.

A block whose scores are all `-inf` (every key masked) would give `exp(-inf - (-inf)) = nan`;
the update exponentiates against 0 instead of an infinite maximum, so such blocks add
nothing, and a query with *every* key masked gets a zero output, as in
`scaled_dot_product_attention`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from array_api_compat import device as array_device

from ._arrays import array_namespace, as_like, check_array, check_finite, check_floating, check_positive_int, is_torch_array
from .attention import _check_mask_and_bias, _check_qkv
from .masks import mask_to_bias

__all__ = ["online_softmax", "tiled_attention"]


def _online_update(m, l, scores, xp):
    r"""One block of the online softmax: `(m, l, scores) -> (m_new, l_new, p, rescale)`.

    `m, l (..., 1)` are the running maximum and sum; `scores (..., n)` is the next block;
    `p = exp(scores - m_new)` and `rescale = exp(m - m_new)`, the factor for everything
    accumulated against the old maximum. An infinite `m_new` (all `-inf` so far) is
    replaced by 0 in the exponents, so `p` and `rescale` are 0 there, never `nan`.
    """
    m_new = xp.maximum(m, xp.max(scores, axis=-1, keepdims=True))  # (..., 1)
    if is_torch_array(m_new):
        m_new = m_new.detach()  # the result does not depend on m: no gradient flows through it
    m_safe = xp.where(m_new == -math.inf, xp.zeros_like(m_new), m_new)  # (..., 1)
    p = xp.exp(scores - m_safe)  # (..., n)
    rescale = xp.exp(m - m_safe)  # (..., 1)
    l_new = l * rescale + xp.sum(p, axis=-1, keepdims=True)  # (..., 1)
    return m_new, l_new, p, rescale


def _blocks(n: int, block_size: int):
    return [(start, min(start + block_size, n)) for start in range(0, n, block_size)]


def online_softmax(x, block_size: int = 64):
    r"""Softmax over the last axis, with the maximum and the sum computed one block at a time.

    .. math:: m \leftarrow \max(m, \max_{j \in \mathrm{block}} x_j), \qquad
              l \leftarrow l\, e^{m_\mathrm{old} - m} + \sum_{j \in \mathrm{block}} e^{x_j - m},
              \qquad \operatorname{softmax}(x)_i = e^{x_i - m} / l

    starting from `m = -inf, l = 0`. After the last block `m` is the row maximum and `l`
    the denominator of lesson 01's stable softmax, so the result equals `softmax(x)`
    (a row that is all `-inf` gives `nan`, as there).

    Args:
        x: floating numpy array or torch tensor `(..., N)`, at least 1-D.
        block_size: how many entries of a row each step reads, a whole number >= 1; it
            need not divide `N`.

    Returns:
        Same kind, shape and dtype as `x`.

    >>> import numpy as np
    >>> online_softmax(np.array([1.0, 3.0, 2.0]), block_size=2).round(4)
    array([0.09  , 0.6652, 0.2447])
    """
    check_array(x, "x", expected="(..., N)")
    check_floating(x, "x")
    block_size = check_positive_int(block_size, "block_size")
    xp = array_namespace(x)
    row = (*x.shape[:-1], 1)
    m = xp.full(row, -math.inf, dtype=x.dtype, device=array_device(x))  # (..., 1) running maximum
    l = xp.zeros(row, dtype=x.dtype, device=array_device(x))  # (..., 1) running sum
    for start, stop in _blocks(x.shape[-1], block_size):
        m, l, _, _ = _online_update(m, l, x[..., start:stop], xp)
    with np.errstate(invalid="ignore", divide="ignore"):  # an all -inf row: 0 / 0 = nan, as documented
        return xp.exp(x - m) / l  # (..., N)


def tiled_attention(q, k, v, mask=None, bias=None, scale=None, block_size: int = 64):
    r"""Scaled dot-product attention computed over blocks of keys, without the `(T, S)` scores.

    For each block of `block_size` keys and values:

    .. math:: s = \frac{q k_\mathrm{block}^\top}{\sqrt{d_k}} + \mathrm{bias} + \log\mathrm{mask},
              \quad m_\mathrm{new} = \max(m, \max_j s_j), \quad
              \alpha = e^{m - m_\mathrm{new}}, \quad p = e^{s - m_\mathrm{new}},

    .. math:: l \leftarrow \alpha\, l + \textstyle\sum_j p_j, \qquad
              \mathrm{acc} \leftarrow \alpha\, \mathrm{acc} + p\, v_\mathrm{block}, \qquad
              \mathrm{out} = \mathrm{acc} / l

    which equals `scaled_dot_product_attention(q, k, v, mask, bias, scale)[0]` (the tests
    hold them within 1e-5 in float32, 1e-10 in float64). Only `(..., T, block_size)` scores
    exist at any time. A query whose keys are all masked (`l = 0`) gets a zero output.

    Args:
        q, k, v, mask, bias, scale: as in `scaled_dot_product_attention`: `q (..., T, d_k)`,
            `k (..., S, d_k)`, `v (..., S, d_v)`; `mask` boolean (True = may attend) and
            `bias` float, each broadcastable to `(..., T, S)`.
        block_size: keys per block, a whole number >= 1; it need not divide `S`.

    Returns:
        `out (..., T, d_v)`, same kind and dtype as `q`. There are no attention weights to
        return: they never exist as one matrix.
    """
    _check_qkv(q, k, v)
    block_size = check_positive_int(block_size, "block_size")
    xp = array_namespace(q)
    T, S, d_k, d_v = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else check_finite(scale, "scale")  # a Python float: keeps q's dtype
    lead = np.broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]), tuple(v.shape[:-2]))
    _check_mask_and_bias(mask, bias, (*lead, T, S))
    mask = None if mask is None else as_like(mask, q)
    bias = None if bias is None else as_like(bias, q)

    def key_block(x, start, stop):  # a mask or bias column block; a broadcast key axis (size 1) is kept whole
        return x if x.ndim == 0 or x.shape[-1] == 1 else x[..., start:stop]

    q = q * scale  # (..., T, d_k)
    m = xp.full((*lead, T, 1), -math.inf, dtype=q.dtype, device=array_device(q))  # (..., T, 1) running maximum
    l = xp.zeros((*lead, T, 1), dtype=q.dtype, device=array_device(q))  # (..., T, 1) running sum
    acc = xp.zeros((*lead, T, d_v), dtype=q.dtype, device=array_device(q))  # (..., T, d_v) unnormalised output
    for start, stop in _blocks(S, block_size):
        scores = q @ k[..., start:stop, :].mT  # (..., T, d_k) x (..., d_k, n) -> (..., T, n)
        if mask is not None:
            scores = scores + mask_to_bias(key_block(mask, start, stop), dtype=scores.dtype)  # (..., T, n)
        if bias is not None:
            scores = scores + key_block(bias, start, stop)  # (..., T, n)
        m, l, p, rescale = _online_update(m, l, scores, xp)  # (..., T, 1), (..., T, 1), (..., T, n), (..., T, 1)
        acc = acc * rescale + p @ v[..., start:stop, :]  # (..., T, n) x (..., n, d_v) -> (..., T, d_v)
    return acc / xp.where(l == 0, xp.ones_like(l), l)  # (..., T, d_v); l = 0: every key masked, acc = 0
