"""Shared plumbing: numpy-or-torch dispatch and the checks behind clear error messages.

Every public function of `attn_core` accepts numpy arrays or torch tensors and returns the
kind it was given. The math is written once against the array API standard: `xp` is
`numpy` (wrapped by `array_api_compat`) for numpy inputs and `torch` (wrapped) for torch
inputs, and the operators `@`, `+`, `*`, `.mT` and `.shape` mean the same in both.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from array_api_compat import array_namespace, is_torch_array

__all__ = ["array_namespace", "as_like", "check_array", "fmt_shape", "is_array", "is_bool", "is_torch_array"]


def is_array(x) -> bool:
    """True for a numpy array or a torch tensor."""
    return isinstance(x, (np.ndarray, torch.Tensor))


def fmt_shape(shape) -> str:
    """`(2, 3)` for a shape, so messages read the same for numpy and torch."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_array(x, name: str, *, min_ndim: int = 1, expected: str = "") -> None:
    """Raise a TypeError unless `x` is an array, and a ValueError if it has too few axes."""
    if not is_array(x):
        raise TypeError(
            f"{name} must be a numpy array or a torch tensor{' of shape ' + expected if expected else ''}, "
            f"got {type(x).__name__}"
        )
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension{'s' if min_ndim > 1 else ''}"
            f"{', shape ' + expected if expected else ''}, got shape {fmt_shape(x.shape)}"
        )


def as_like(x, ref, *, dtype_from_ref: bool = True):
    """Return `x` as the same kind of array as `ref` (numpy or torch, same device).

    Used so a numpy mask works with torch inputs and vice versa. Floating `x` takes `ref`'s
    dtype when `dtype_from_ref`; booleans stay boolean.
    """
    if is_torch_array(ref):
        out = torch.as_tensor(x, device=ref.device) if not isinstance(x, torch.Tensor) else x.to(ref.device)
        if dtype_from_ref and out.dtype != torch.bool:
            out = out.to(ref.dtype)
        return out
    out = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if dtype_from_ref and out.dtype != np.bool_:
        out = out.astype(ref.dtype, copy=False)
    return out


def is_bool(x) -> bool:
    """True if an array holds booleans (numpy `bool_` or `torch.bool`)."""
    return x.dtype == torch.bool if isinstance(x, torch.Tensor) else x.dtype == np.bool_


def check_positive_int(value, name: str) -> int:
    """Return `value` as an int, or raise if it is not a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)
