"""Rotary position embedding, RoPE (Su et al., RoFormer, 2021)."""

from __future__ import annotations

from .._arrays import array_namespace, as_like, check_array, fmt_shape

__all__ = ["apply_rope", "rope_angles"]

def rope_angles(positions, d: int, base: float = 10000.0):
    r"""The rotation angles `positions[t] * theta_i`, `theta_i = base^(-2i/d)`, shape `(..., T, d/2)`.

    `positions` is a numpy array or torch tensor `(..., T)`; the result has its kind and
    (floating) dtype, computed in float64 first.
    """
    xp = array_namespace(positions)
    i = xp.arange(d // 2, dtype=xp.float64, device=getattr(positions, "device", None))  # (d/2,)
    theta = float(base) ** (-2.0 * i / d)  # (d/2,)
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
        x: `(..., T, D)` numpy array or torch tensor, `D` even (usually `(B, H, T, d_head)`).
        positions: `(T,)` or broadcastable `(..., T)` positions; default `0 .. T-1`.
        base: frequency base (10000 in the paper).
        interleaved: which dimensions form a pair (see above).

    Returns:
        Same kind, shape and dtype as `x`.
    """
    check_array(x, "x", min_ndim=2, expected="(..., T, D)")
    xp = array_namespace(x)
    T, D = x.shape[-2], x.shape[-1]
    if D % 2:
        raise ValueError(f"apply_rope rotates pairs of dimensions, so the last axis of x must be even, got x of shape {fmt_shape(x.shape)} (D={D})")
    if positions is None:
        positions = xp.arange(T, device=getattr(x, "device", None))  # (T,)
    else:
        positions = as_like(positions, x, dtype_from_ref=False)
        if positions.ndim == 0 or positions.shape[-1] != T:
            raise ValueError(f"positions must have shape (T,) = ({T},) or (..., {T}) to match x of shape {fmt_shape(x.shape)}, got shape {fmt_shape(positions.shape)}")
    angles = rope_angles(positions, D, base)  # (..., T, D/2)
    cos, sin = xp.astype(xp.cos(angles), x.dtype), xp.astype(xp.sin(angles), x.dtype)  # (..., T, D/2)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, D) -> 2 x (..., T, D/2)
        out = xp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)  # (..., T, D/2, 2)
        return xp.reshape(out, (*out.shape[:-2], D))  # (..., T, D/2, 2) -> (..., T, D)
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]  # (..., T, D) -> 2 x (..., T, D/2)
    return xp.concat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)  # (..., T, D)
