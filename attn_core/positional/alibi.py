"""ALiBi, attention with linear biases (Press, Smith and Lewis, "Train Short, Test Long", 2022)."""

from __future__ import annotations

import math

import torch

from .._arrays import check_float_dtype, check_positive_int

__all__ = ["alibi_slopes", "alibi_bias"]


def _power_of_two_slopes(n: int) -> list[float]:
    start = 2.0 ** (-8.0 / n)  # the geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^-8
    return [start ** (i + 1) for i in range(n)]


def alibi_slopes(n_heads: int, *, dtype=torch.float32):
    r"""The ALiBi paper's head-specific slopes `m_h`.

    For a power of two `n`, the geometric sequence starting at and with ratio
    `2^(-8/n)`:

    .. math:: m_h = 2^{-8h/n}, \qquad h = 1, \dots, n

    (8 heads: `1/2, 1/4, ..., 1/256`). For other `n`, the paper's rule: take the slopes for
    the closest power of two below, `p`, and fill up with every other slope of `2p`
    heads (`2^(-4/p), 2^(-12/p), ...`), so the slopes still spread from near 1 down.

    Args:
        n_heads: number of heads, >= 1.
        dtype: a floating dtype (an integer one is a TypeError: the slopes are fractions).

    Returns:
        torch tensor `(n_heads,)`.

    >>> alibi_slopes(4)
    tensor([0.2500, 0.0625, 0.0156, 0.0039])
    """
    n_heads = check_positive_int(n_heads, "n_heads")
    dtype = check_float_dtype(dtype, "dtype")
    p = 2 ** math.floor(math.log2(n_heads))
    slopes = _power_of_two_slopes(p)
    if p != n_heads:
        slopes += _power_of_two_slopes(2 * p)[0::2][: n_heads - p]
    return torch.tensor(slopes, dtype=dtype)


def alibi_bias(n_heads: int, T: int, S: int | None = None, *, dtype=torch.float32):
    r"""ALiBi's additive score bias: a penalty growing linearly with distance, one slope per head.

    .. math:: \mathrm{bias}_{h,i,j} = -m_h\, |i - j|

    Queries are aligned to the end of the keys when `S > T` (query `i` sits at position
    `i + S - T`), as in `causal_mask`; `S < T` is a ValueError, as there. Add it to the
    scores (`bias=` of `scaled_dot_product_attention`; for `MultiHeadAttention`, whose
    3-D biases are per sequence, pass `alibi_bias(...)[None]`, shape `(1, H, T, S)`); no
    position vector is added to the tokens at all.

    Args:
        n_heads: number of heads; T: number of queries; S: number of keys (default T), S >= T.
        dtype: a floating dtype (an integer one is a TypeError: the slopes are fractions).

    Returns:
        torch tensor `(n_heads, T, S)`.
    """
    T = check_positive_int(T, "T")
    S = T if S is None else check_positive_int(S, "S")
    if S < T:
        raise ValueError(
            f"alibi_bias(T={T}, S={S}): S={S} < T={T}. Queries are aligned to the end of the keys, so with fewer "
            f"keys than queries the first {T - S} queries would sit before every key. Use S >= T"
        )
    dtype = check_float_dtype(dtype, "dtype")
    i = torch.arange(T, dtype=torch.float64)[:, None] + (S - T)  # (T, 1) query positions
    j = torch.arange(S, dtype=torch.float64)[None, :]  # (1, S) key positions
    distance = (i - j).abs()  # (T, S)
    slopes = alibi_slopes(n_heads, dtype=torch.float64)  # (H,)
    return (-slopes[:, None, None] * distance).to(dtype)  # (H, 1, 1) x (T, S) -> (H, T, S)
