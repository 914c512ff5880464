"""Rotary position embedding, RoPE (Su et al., RoFormer, 2021)."""

from __future__ import annotations

import numpy as np

from .._arrays import (
    array_namespace,
    as_like,
    check_array,
    check_flag,
    check_floating,
    check_positive_finite,
    check_positive_int,
    fmt_shape,
    is_array,
    is_bool,
)

__all__ = ["apply_rope", "rope_angles"]


def _check_positions(positions, name: str = "positions") -> None:
    if not is_array(positions):
        raise TypeError(f"{name} must be a numpy array or a torch tensor of positions (..., T), got {type(positions).__name__}")
    kind = positions.dtype.kind if isinstance(positions.dtype, np.dtype) else None
    if is_bool(positions) or kind == "c" or getattr(positions.dtype, "is_complex", False):
        raise TypeError(f"{name} must hold numbers (integer or float positions), got dtype {positions.dtype}")


def rope_angles(positions, d: int, base: float = 10000.0):
    r"""The rotation angles `positions[t] * theta_i`, `theta_i = base^(-2i/d)`, shape `(..., T, d/2)`.

    Args:
        positions: numpy array or torch tensor `(..., T)` of integer or float positions.
        d: the even width `D` of the vectors to rotate (one angle per pair).
        base: frequency base, a finite number > 0.

    Returns:
        float64 array of the kind of `positions`, `(..., T, d/2)` (float64 so that large
        positions keep their precision; `apply_rope` casts the cosines and sines to `x`'s
        dtype).
    """
    _check_positions(positions)
    d = check_positive_int(d, "d")
    if d % 2:
        raise ValueError(f"d must be even (RoPE rotates pairs of dimensions), got d={d}")
    base = check_positive_finite(base, "base")
    xp = array_namespace(positions)
    i = xp.arange(d // 2, dtype=xp.float64, device=getattr(positions, "device", None))  # (d/2,)
    theta = base ** (-2.0 * i / d)  # (d/2,)
    return xp.astype(positions, xp.float64)[..., None] * theta  # (..., T, 1) x (d/2,) -> (..., T, d/2)


def apply_rope(x, positions=None, base: float = 10000.0, interleaved: bool = True):
    r"""Rotate each pair of dimensions of `x` by an angle proportional to its position.

    .. math:: \begin{pmatrix} x'_{a} \\ x'_{b} \end{pmatrix} =
              \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
              \begin{pmatrix} x_{a} \\ x_{b} \end{pmatrix}, \qquad \theta_i = \mathrm{base}^{-2i/D}

    for the token at position `m` and pair `i` = `(a, b)`: `(2i, 2i+1)` when
    `interleaved=True` (the RoFormer paper), `(i, i + D/2)` when `interleaved=False`
    (GPT-NeoX, Hugging Face LLaMA). Rotations keep norms, and because
    `R(m)^T R(n) = R(n - m)`,

    .. math:: \langle \mathrm{rope}(q, m), \mathrm{rope}(k, n) \rangle = q^\top R(n - m)\, k

    depends on the positions only through the offset `n - m`: applied to queries and
    keys, RoPE makes attention scores relative.

    Args:
        x: `(..., T, D)` floating numpy array or torch tensor, `D` even (usually
            `(B, H, T, d_head)`). Integer `x` is a TypeError (its rotation would be
            truncated to whole numbers).
        positions: `(T,)` or `(..., T)` positions (integer or float) that broadcast to
            `x.shape[:-1]` without adding dimensions, e.g. `(B, 1, T)` for `(B, H, T, D)`;
            default `0 .. T-1`.
        base: frequency base (10000 in the paper), a finite number > 0.
        interleaved: which dimensions form a pair (see above); True or False.

    Returns:
        Same kind, shape and dtype as `x`.
    """
    check_array(x, "x", min_ndim=2, expected="(..., T, D)")
    check_floating(x, "x")
    base = check_positive_finite(base, "base")
    interleaved = check_flag(interleaved, "interleaved")
    xp = array_namespace(x)
    T, D = x.shape[-2], x.shape[-1]
    if D % 2:
        raise ValueError(f"apply_rope rotates pairs of dimensions, so the last axis of x must be even, got x of shape {fmt_shape(x.shape)} (D={D})")
    if positions is None:
        positions = xp.arange(T, device=getattr(x, "device", None))  # (T,)
    else:
        if not is_array(positions) and not isinstance(positions, (list, tuple, range)):
            raise TypeError(f"positions must be a numpy array, a torch tensor or a list of positions (..., T), got {type(positions).__name__}")
        positions = as_like(positions, x, dtype_from_ref=False)
        _check_positions(positions)
        if positions.ndim == 0 or positions.shape[-1] != T:
            raise ValueError(f"positions must have shape (T,) = ({T},) or (..., {T}) to match x of shape {fmt_shape(x.shape)}, got shape {fmt_shape(positions.shape)}")
        lead = tuple(x.shape[:-1])
        try:
            grows = np.broadcast_shapes(tuple(positions.shape), lead) != lead
        except ValueError:
            grows = True
        if grows:
            raise ValueError(
                f"positions of shape {fmt_shape(positions.shape)} would change the shape of x {fmt_shape(x.shape)}: they "
                f"must broadcast to x's leading shape {fmt_shape(lead)}, e.g. (T,) or (B, 1, T) for (B, H, T, D)"
            )
    angles = rope_angles(positions, D, base)  # (..., T, D/2)
    cos, sin = xp.astype(xp.cos(angles), x.dtype), xp.astype(xp.sin(angles), x.dtype)  # (..., T, D/2)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, D) -> 2 x (..., T, D/2)
        out = xp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)  # (..., T, D/2, 2)
        return xp.reshape(out, (*out.shape[:-2], D))  # (..., T, D/2, 2) -> (..., T, D)
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]  # (..., T, D) -> 2 x (..., T, D/2)
    return xp.concat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)  # (..., T, D)
