"""Attention masks (lesson 06).

Convention: a mask is boolean and **True means "may attend"**, as in PyTorch's
`scaled_dot_product_attention`. (`torch.nn.MultiheadAttention`'s `attn_mask` uses the
opposite: True there means "blocked".) Masks combine with `&`. `mask_to_bias` is the one
place a mask becomes an additive bias (0 where allowed, `-inf` where blocked); biases
(causal, padding, ALiBi) combine with `+`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._arrays import array_namespace, check_array, check_float_dtype, check_flag, check_positive_int, fmt_shape, is_array, is_bool

__all__ = ["causal_mask", "padding_mask", "mask_to_bias", "sliding_window_mask"]


def _check_not_fewer_keys(T: int, S: int, fn: str) -> None:
    """End-aligned masks need S >= T: with fewer keys, the first T - S queries would see nothing."""
    if S < T:
        raise ValueError(
            f"{fn}(T={T}, S={S}): S={S} < T={T}. The mask is aligned to the end (the T queries are the last T "
            f"of the S positions), so with fewer keys than queries the first {T - S} queries would come before "
            f"every key and see nothing at all (a fully masked row). Use S >= T (S = T for self-attention)"
        )


def causal_mask(T: int, S: int | None = None, *, device=None):
    r"""Boolean causal mask: query `i` may attend to key `j` only if `j <= i + (S - T)`.

    .. math:: \mathrm{mask}_{ij} = [\, j \le i + S - T \,]

    With `S == T` (the default) this is the lower triangle, diagonal included. With
    `S > T` the triangle is aligned to the *end*: the `T` queries are the last `T`
    positions of a sequence whose first `S - T` keys are already cached, so every query
    sees all cached keys plus the new keys up to itself. `S < T` is a ValueError: the
    first `T - S` queries would come before every key and see nothing (a fully masked
    row, silently zero output).

    Args:
        T: number of queries.
        S: number of keys (default `T`), `S >= T`.

    Returns:
        torch.bool tensor `(T, S)`; convert with `.numpy()` for numpy code.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    T = check_positive_int(T, "T")
    S = T if S is None else check_positive_int(S, "S")
    _check_not_fewer_keys(T, S, "causal_mask")
    i = torch.arange(T, device=device)[:, None]  # (T, 1) query positions
    j = torch.arange(S, device=device)[None, :]  # (1, S) key positions
    return j <= i + (S - T)  # (T, S)


def padding_mask(lengths, S: int):
    r"""Boolean padding mask: in sequence `b`, keys at positions `>= lengths[b]` are padding.

    .. math:: \mathrm{mask}_{b,1,1,j} = [\, j < \mathrm{lengths}_b \,]

    Args:
        lengths: the true length of each sequence in the batch, `(B,)`; a list, numpy
            array or torch tensor of whole numbers in `0..S`.
        S: the padded length (number of keys).

    Returns:
        Boolean `(B, 1, 1, S)`, broadcastable against `(B, H, T, S)` scores; numpy if
        `lengths` is a numpy array, torch otherwise.

    >>> padding_mask([2, 3], 3)[:, 0, 0]
    tensor([[ True,  True, False],
            [ True,  True,  True]])
    """
    S = check_positive_int(S, "S")
    as_numpy = isinstance(lengths, np.ndarray)
    if not (is_array(lengths) or isinstance(lengths, (list, tuple, range))):
        raise TypeError(f"lengths must be a list, numpy array or torch tensor of whole numbers (B,), got {type(lengths).__name__}")
    try:
        lengths_t = torch.as_tensor(np.asarray(lengths) if as_numpy else lengths)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"lengths must hold whole numbers, one per sequence (B,), got {lengths!r:.60}") from None
    if lengths_t.ndim != 1:
        raise ValueError(f"lengths must be one length per sequence, shape (B,), got shape {fmt_shape(lengths_t.shape)}")
    if len(lengths_t) == 0:
        raise ValueError("lengths is empty: give one length per sequence in the batch, e.g. [3, 2] for B = 2")
    if lengths_t.dtype.is_floating_point or lengths_t.dtype.is_complex or lengths_t.dtype == torch.bool:
        raise TypeError(f"lengths must hold whole numbers, got dtype {lengths_t.dtype}")
    if (lengths_t.min() < 0 or lengths_t.max() > S):
        raise ValueError(f"lengths must lie in 0..S = 0..{S}, got {lengths_t.tolist()}")
    j = torch.arange(S, device=lengths_t.device)  # (S,)
    mask = (j[None, :] < lengths_t[:, None])[:, None, None, :]  # (B, S) -> (B, 1, 1, S)
    return mask.numpy() if as_numpy else mask


def mask_to_bias(mask, dtype=None):
    r"""Turn a boolean mask into an additive bias: 0 where True, `-inf` where False.

    .. math:: \mathrm{bias}_{ij} = \begin{cases} 0 & \mathrm{mask}_{ij} \\
              -\infty & \text{otherwise} \end{cases}

    Adding the bias to the scores before the softmax gives blocked keys weight
    `exp(-inf) = 0`. Two masks combine as `m1 & m2`, their biases as `b1 + b2`.

    Args:
        mask: boolean numpy array or torch tensor, any shape.
        dtype: floating dtype of the result (default float32 for torch, float64 for
            numpy; a torch or numpy dtype). An integer or boolean dtype is a TypeError: it
            cannot hold `-inf`.

    Returns:
        Float array of the same kind and shape as `mask`.

    >>> mask_to_bias(causal_mask(2))
    tensor([[0., -inf],
            [0., 0.]])
    """
    check_array(mask, "mask", min_ndim=0)
    if not is_bool(mask):
        raise TypeError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
    xp = array_namespace(mask)
    if dtype is None:
        dtype = torch.float32 if isinstance(mask, torch.Tensor) else np.float64
    dtype = check_float_dtype(dtype, "dtype", like="torch" if isinstance(mask, torch.Tensor) else "numpy")
    zeros = xp.zeros(mask.shape, dtype=dtype, device=getattr(mask, "device", None))
    return xp.where(mask, zeros, -math.inf)


def sliding_window_mask(T: int, window: int, S: int | None = None, *, causal: bool = True, device=None):
    r"""Boolean sliding-window (local) mask: query `i` sees only the `window` nearest keys.

    With `causal=True` (Mistral-style), query `i` may attend to itself and the
    `window - 1` keys before it:

    .. math:: \mathrm{mask}_{ij} = [\, 0 \le (i + S - T) - j < w \,]

    With `causal=False` (Longformer-style local attention), it sees keys within distance
    `w - 1` on both sides:

    .. math:: \mathrm{mask}_{ij} = [\, |(i + S - T) - j| < w \,]

    As in `causal_mask`, queries are aligned to the *end* of the keys when `S > T`, and
    `S < T` is a ValueError (the first queries would see nothing). A
    causal window of `w >= S` is exactly `causal_mask(T, S)`, and the causal window is
    the causal mask `&` the two-sided window.

    Args:
        T: number of queries.
        window: `w`, the number of keys a query may see on each side (itself included); >= 1.
        S: number of keys (default `T`), `S >= T`.
        causal: block the future as well (default True).

    Returns:
        torch.bool tensor `(T, S)`.

    >>> sliding_window_mask(4, 2).int()
    tensor([[1, 0, 0, 0],
            [1, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 1]], dtype=torch.int32)
    """
    T = check_positive_int(T, "T")
    window = check_positive_int(window, "window")
    S = T if S is None else check_positive_int(S, "S")
    _check_not_fewer_keys(T, S, "sliding_window_mask")
    causal = check_flag(causal, "causal")
    i = torch.arange(T, device=device)[:, None] + (S - T)  # (T, 1) query positions, aligned to the end
    j = torch.arange(S, device=device)[None, :]  # (1, S) key positions
    distance = i - j  # (T, S), > 0 for keys in the past
    if causal:
        return (distance >= 0) & (distance < window)  # (T, S)
    return distance.abs() < window  # (T, S)
