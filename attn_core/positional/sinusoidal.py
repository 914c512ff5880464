"""Sinusoidal positional encoding (Vaswani et al., 2017)."""

from __future__ import annotations

import torch

from .._arrays import check_finite, check_float_dtype, check_positive_finite, check_positive_int

__all__ = ["sinusoidal_encoding", "sinusoidal_shift_matrix"]


def _frequencies(d_model: int, base: float, dtype) -> torch.Tensor:
    """`omega_c = base^(-2 floor(c/2) / d_model)` for each column c: pairs share a frequency."""
    pair = torch.arange(d_model, dtype=torch.float64) // 2  # (d_model,) 0, 0, 1, 1, 2, 2, ...
    return (float(base) ** (-2.0 * pair / d_model)).to(dtype)  # (d_model,)


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0, *, dtype=torch.float32):
    r"""The original Transformer's positional encoding, sines and cosines interleaved.

    .. math:: PE_{pos,\,2i} = \sin\!\left(\frac{pos}{\mathrm{base}^{2i/d_\mathrm{model}}}\right),
              \qquad
              PE_{pos,\,2i+1} = \cos\!\left(\frac{pos}{\mathrm{base}^{2i/d_\mathrm{model}}}\right)

    Column pair `(2i, 2i+1)` is a point on a circle turning at angular speed
    `omega_i = base^(-2i/d_model)`: fast in the first columns, slow in the last. An odd
    `d_model` works; its last column is a lone sine.

    Args:
        n_positions: number of positions (rows), `0 .. n_positions-1`.
        d_model: width of each encoding (columns).
        base: the wavelength scale (10000 in the paper), a finite number > 0.
        dtype: a floating dtype (an integer one is a TypeError: sines would be truncated).

    Returns:
        torch tensor `(n_positions, d_model)`.

    >>> sinusoidal_encoding(2, 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    n_positions = check_positive_int(n_positions, "n_positions")
    d_model = check_positive_int(d_model, "d_model")
    base = check_positive_finite(base, "base")
    dtype = check_float_dtype(dtype, "dtype")
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
    angles = pos * _frequencies(d_model, base, torch.float64)[None, :]  # (P, 1) x (1, d_model) -> (P, d_model)
    even = (torch.arange(d_model) % 2 == 0)[None, :]  # (1, d_model)
    return torch.where(even, torch.sin(angles), torch.cos(angles)).to(dtype)  # (P, d_model)


def sinusoidal_shift_matrix(offset: float, d_model: int, base: float = 10000.0, *, dtype=torch.float32):
    r"""The fixed matrix `M_k` with `PE[pos + k] = M_k @ PE[pos]` for every `pos`.

    Each pair `(sin(w p), cos(w p))` moves to `(sin(w (p+k)), cos(w (p+k)))` by the angle
    addition formulas, a rotation that depends on `k` and `w` but not on `p`:

    .. math:: \begin{pmatrix}\sin\omega(p+k)\\ \cos\omega(p+k)\end{pmatrix} =
              \begin{pmatrix}\cos\omega k & \sin\omega k\\ -\sin\omega k & \cos\omega k\end{pmatrix}
              \begin{pmatrix}\sin\omega p\\ \cos\omega p\end{pmatrix}

    So `M_k` is block-diagonal with one 2x2 rotation per pair (and `1` would not do for an
    odd `d_model`'s lone sine, so `d_model` must be even here).

    Args:
        offset: the shift `k`, a finite number (may be negative or fractional).
        d_model: even width; base: as in `sinusoidal_encoding`, finite and > 0;
        dtype: a floating dtype.

    Returns:
        torch tensor `(d_model, d_model)`.
    """
    offset = check_finite(offset, "offset")
    d_model = check_positive_int(d_model, "d_model")
    base = check_positive_finite(base, "base")
    dtype = check_float_dtype(dtype, "dtype")
    if d_model % 2:
        raise ValueError(f"sinusoidal_shift_matrix needs an even d_model (sine/cosine pairs), got {d_model}")
    w = _frequencies(d_model, base, torch.float64)[0::2]  # (d_model/2,)
    c, s = torch.cos(w * offset), torch.sin(w * offset)  # (d_model/2,)
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    idx = torch.arange(0, d_model, 2)
    m[idx, idx], m[idx, idx + 1] = c, s
    m[idx + 1, idx], m[idx + 1, idx + 1] = -s, c
    return m.to(dtype)  # (d_model, d_model)
