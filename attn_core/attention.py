"""Softmax and scaled dot-product attention (lessons 01 and 02).

Shapes: `q (..., T, d_k)`, `k (..., S, d_k)`, `v (..., S, d_v)`, `scores` and `weights`
`(..., T, S)`, `out (..., T, d_v)`. The leading `...` is usually `(B, H)`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import numbers

from ._arrays import (
    _is_float_dtype,
    array_namespace,
    as_like,
    check_array,
    check_finite,
    check_floating,
    fmt_shape,
    is_array,
    is_bool,
    is_torch_array,
)
from .masks import mask_to_bias

__all__ = ["softmax", "scaled_dot_product_attention"]


def softmax(x, axis: int = -1):
    r"""Numerically stable softmax along `axis`.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
              \quad m = \max_j x_j

    Subtracting the row maximum `m` changes nothing mathematically (it cancels between
    numerator and denominator) but keeps every exponent <= 0, so logits of 1e4 do not
    overflow. Entries of `-inf` get weight exactly 0. A row that is *all* `-inf` has no
    finite maximum and gives `nan` (0 / 0): there is nothing to attend to.
    `scaled_dot_product_attention` turns such rows into zeros, as PyTorch does.

    The three lines at the end are the formula, and numpy arrays run exactly them. Torch
    tensors run the same formula as PyTorch's fused kernel `torch.softmax` (it also
    subtracts the row maximum): one pass over memory instead of five, which is most of
    the cost of attention on long sequences. The tests hold the two paths equal to 1e-10.

    Args:
        x: numpy array or torch tensor of floating-point logits, at least 1-D. Integer
            input is a TypeError (convert with `x.float()` / `x.astype(np.float64)`), as
            in `torch.softmax`, so numpy and torch answer alike.
        axis: the axis that sums to 1.

    Returns:
        Same kind, shape and dtype as `x`. An empty `x` gives an empty result.

    >>> import numpy as np
    >>> softmax(np.array([1e4, 1e4 - 1.0])).round(4)
    array([0.7311, 0.2689])
    """
    if type(x) is torch.Tensor and type(axis) is int and x.dtype.is_floating_point and -x.ndim <= axis < x.ndim:
        return torch.softmax(x, dim=axis)  # the common case (torch, valid axis): the formula below, fused
    check_array(x, "x")
    check_floating(x, "x")
    if type(axis) is not int and (isinstance(axis, bool) or not isinstance(axis, numbers.Integral)):
        raise TypeError(f"axis must be an int, got {axis!r} ({type(axis).__name__})")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis} is out of range for x of shape {fmt_shape(x.shape)} ({x.ndim} axes)")
    if is_torch_array(x):
        return torch.softmax(x, dim=int(axis))  # a tensor subclass or an integral axis such as np.int64
    if x.size == 0:
        return np.zeros_like(x)  # nothing to normalise (np.max has no identity on an empty axis)
    m = np.max(x, axis=axis, keepdims=True)  # the row maximum
    with np.errstate(invalid="ignore"):  # an all -inf row: -inf - (-inf) = nan, as documented
        e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def _check_qkv(q, k, v) -> None:
    if type(q) is torch.Tensor and type(k) is torch.Tensor and type(v) is torch.Tensor:  # the common case, first
        qs, ks, vs, dtype = q.shape, k.shape, v.shape, q.dtype
        if (len(qs) >= 2 and len(ks) >= 2 and len(vs) >= 2 and k.dtype is dtype and v.dtype is dtype
                and dtype.is_floating_point and qs[:-2] == ks[:-2] == vs[:-2] and 0 < qs[-1] == ks[-1] and ks[-2] == vs[-2]):
            return  # in a few comparisons; otherwise the checks below name what is wrong
    elif (type(q) is type(k) is type(v) and is_array(q) and q.ndim >= 2 and k.ndim >= 2 and v.ndim >= 2
            and q.dtype == k.dtype == v.dtype and _is_float_dtype(q.dtype) and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and 0 < q.shape[-1] == k.shape[-1] and k.shape[-2] == v.shape[-2]):
        return  # numpy arrays: the same, in a few comparisons
    for name, x, legend in (("q", q, "(..., T, d_k)"), ("k", k, "(..., S, d_k)"), ("v", v, "(..., S, d_v)")):
        check_array(x, name, min_ndim=2, expected=legend)
    if len({is_torch_array(q), is_torch_array(k), is_torch_array(v)}) > 1:
        raise TypeError(
            f"q, k and v must be the same kind of array (all numpy or all torch), got "
            f"{type(q).__name__}, {type(k).__name__} and {type(v).__name__}"
        )
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_floating(x, name)
    if not q.dtype == k.dtype == v.dtype:
        fix = (".float() (float32) or .double() (float64)" if is_torch_array(q)
               else ".astype(np.float32) or .astype(np.float64)")
        raise TypeError(
            f"q, k and v must have the same dtype, got q {q.dtype}, k {k.dtype}, v {v.dtype}; convert them all with "
            f"{fix} (torch.from_numpy keeps numpy's float64, while torch makes float32 by default)"
        )
    if q.shape[-1] == 0:
        raise ValueError(
            f"d_k must be >= 1: q has shape {fmt_shape(q.shape)} and k {fmt_shape(k.shape)}, so there is nothing "
            f"to compare and the scale 1/sqrt(d_k) is undefined"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dimension d_k: q has shape {fmt_shape(q.shape)} "
            f"(d_k={q.shape[-1]}), k has shape {fmt_shape(k.shape)} (d_k={k.shape[-1]})"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same length S (one value per key): k has shape "
            f"{fmt_shape(k.shape)} (S={k.shape[-2]}), v has shape {fmt_shape(v.shape)} (S={v.shape[-2]})"
        )
    if q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        return
    try:
        np.broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]), tuple(v.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"the leading (batch, head) dimensions of q, k and v must match or broadcast: got q "
            f"{fmt_shape(q.shape)}, k {fmt_shape(k.shape)}, v {fmt_shape(v.shape)}"
        ) from None


def _check_broadcast(x, name: str, target: tuple[int, ...], what: str) -> None:
    if tuple(x.shape) == target[len(target) - x.ndim:]:
        return  # the same shape as the scores' last axes (e.g. a (T, S) mask)
    try:
        ok = np.broadcast_shapes(tuple(x.shape), target) == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {fmt_shape(x.shape)} is not broadcastable to the scores' shape "
            f"{fmt_shape(target)} (..., T, S); {what}"
        )


def _check_mask_and_bias(mask, bias, target: tuple[int, ...]) -> None:
    """Check `mask` (boolean) and `bias` (float) against the scores' shape `target (..., T, S)`."""
    T, S = target[-2], target[-1]
    if mask is not None:
        if not is_array(mask):
            raise TypeError(f"mask must be a boolean numpy array or torch tensor, got {type(mask).__name__}")
        if not is_bool(mask):
            raise TypeError(
                f"mask must be boolean (True = may attend), got dtype {mask.dtype}; "
                f"pass an additive float mask as bias= instead, or convert with mask.astype(bool) / mask.bool()"
            )
        _check_broadcast(mask, "mask", target, f"expected e.g. (T, S) = ({T}, {S}) or (B, 1, 1, S)")
    if bias is not None:
        if not is_array(bias):
            raise TypeError(f"bias must be a float numpy array or torch tensor, got {type(bias).__name__}")
        if is_bool(bias):
            raise TypeError("bias must be a float array of additive scores, got a boolean array; pass it as mask= instead")
        if not (bias.dtype.is_floating_point if isinstance(bias, torch.Tensor) else bias.dtype.kind == "f"):
            raise TypeError(f"bias must be a float array of additive scores, got dtype {bias.dtype}; convert it "
                            f"with .float() (torch) or .astype(np.float64) (numpy)")
        _check_broadcast(bias, "bias", target, f"expected e.g. (T, S) = ({T}, {S}) or (H, T, S)")


def scaled_dot_product_attention(q, k, v, mask=None, bias=None, scale=None):
    r"""Scaled dot-product attention, returning the output and the attention weights.

    .. math:: \mathrm{scores} = \frac{q k^\top}{\sqrt{d_k}} + \mathrm{bias}
              + \log \mathrm{mask}, \qquad
              \mathrm{weights} = \operatorname{softmax}(\mathrm{scores}), \qquad
              \mathrm{out} = \mathrm{weights}\, v

    where `log mask` is 0 where `mask` is True (may attend) and `-inf` where it is False.

    Args:
        q: queries `(..., T, d_k)`, `d_k >= 1`; a floating numpy array or torch tensor.
        k: keys `(..., S, d_k)`, same kind and dtype as `q`.
        v: values `(..., S, d_v)`, same kind and dtype as `q` (mixed float32 / float64 is
            a TypeError saying how to convert, not a silent upcast or torch's matmul error).
        mask: optional boolean, broadcastable to `(..., T, S)`; True = may attend (PyTorch
            SDPA's convention). numpy or torch, whatever `q` is.
        bias: optional additive float bias broadcastable to `(..., T, S)` (ALiBi, relative
            positions, or a 0 / -inf mask from `mask_to_bias`).
        scale: multiplier of `q k^T`, a finite number; default `1 / sqrt(d_k)`. It never
            changes the dtype: float32 inputs give float32 results.

    Returns:
        `(out, weights)`: `out (..., T, d_v)` and `weights (..., T, S)`, same kind as `q`.
        Masked weights are exactly 0; a query whose keys are all masked gets all-zero
        weights and a zero output (PyTorch's convention), not `nan`.
    """
    _check_qkv(q, k, v)
    d_k = q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else check_finite(scale, "scale")  # a Python float: keeps q's dtype

    scores = (q * scale) @ k.mT  # (..., T, d_k) x (..., d_k, S) -> (..., T, S); scaling q is cheaper than scaling the scores
    if mask is None and bias is None:
        weights = softmax(scores, axis=-1)  # (..., T, S)
    else:
        _check_mask_and_bias(mask, bias, tuple(scores.shape))
        added = 0.0  # log mask + bias, kept in the (often much smaller) shape they broadcast from, e.g. (T, S)
        if mask is not None:
            added = added + mask_to_bias(as_like(mask, q), dtype=scores.dtype)
        if bias is not None:
            added = added + as_like(bias, scores)
        scores = scores + added  # (..., T, S)
        # A masked key gets weight exp(-inf) = 0. A query whose keys are all masked would
        # get softmax(-inf, ..., -inf) = nan: give its row finite scores for the softmax,
        # then zero it, so it attends to nothing, its output is 0 and its gradient stays finite.
        blocked = added == -math.inf  # in the shape of `added`
        dead = blocked.all(axis=-1, keepdims=True) if blocked.ndim else blocked  # (..., T, 1): nothing left to attend to
        if not dead.any():
            weights = softmax(scores, axis=-1)  # (..., T, S)
        else:
            xp = array_namespace(scores)
            weights = softmax(xp.where(dead, 0.0, scores), axis=-1)  # (..., T, S)
            weights = xp.where(dead, 0.0, weights)  # (..., T, S)
    out = weights @ v  # (..., T, S) x (..., S, d_v) -> (..., T, d_v)
    return out, weights
