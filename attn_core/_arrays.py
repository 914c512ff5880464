"""Shared plumbing: numpy-or-torch dispatch and the checks behind clear error messages.

Every public function of `attn_core` accepts numpy arrays or torch tensors and returns the
kind it was given. The math is written once against the array API standard: `xp` is
`numpy` (wrapped by `array_api_compat`) for numpy inputs and `torch` (wrapped) for torch
inputs, and the operators `@`, `+`, `*`, `.mT` and `.shape` mean the same in both.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from array_api_compat import array_namespace, is_torch_array

__all__ = [
    "array_namespace", "as_like", "check_array", "check_finite", "check_flag", "check_float_dtype", "check_floating",
    "check_positive_finite", "check_positive_int", "fmt_shape", "is_array", "is_bool", "is_torch_array",
]

# One rule for the whole package: a function that computes floating-point results takes
# floating-point arrays and floating dtypes. Integer and boolean ones are refused with a
# TypeError that says how to convert (`x.float()`, `x.astype(np.float32)`), never
# computed in silence (integer results of a softmax or a rotation are zeros or truncated).


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
    if type(value) is int and value >= 1:  # the common case, without the slower abstract-class check below
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_flag(value, name: str) -> bool:
    """Return `value` if it is True or False (numpy's `bool_` too); a TypeError otherwise.

    `rope="no"` is truthy: without this check it would switch RoPE *on*.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _as_real(value, name: str, expected: str) -> float:
    if is_array(value) and value.ndim == 0 and not is_bool(value) and _is_real_dtype(value.dtype):
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number ({expected}), got {value!r:.60} ({type(value).__name__})")
    return float(value)


def check_finite(value, name: str) -> float:
    """Return `value` as a float, or raise if it is not a finite real number."""
    value = _as_real(value, name, "a finite float")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def check_positive_finite(value, name: str, *, allow_zero: bool = False) -> float:
    """Return `value` as a float, or raise unless it is finite and > 0 (>= 0 with `allow_zero`)."""
    bound = ">= 0" if allow_zero else "> 0"
    out = _as_real(value, name, f"finite, {bound}")
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        shown = value if isinstance(value, numbers.Real) and not isinstance(value, float) else out
        raise ValueError(f"{name} must be a finite number {bound}, got {shown}")
    return out


def _is_real_dtype(dtype) -> bool:
    if isinstance(dtype, torch.dtype):
        return not dtype.is_complex and dtype != torch.bool
    return np.dtype(dtype).kind in "fiu"


def _is_float_dtype(dtype) -> bool:
    if isinstance(dtype, torch.dtype):
        return dtype.is_floating_point
    return np.dtype(dtype).kind == "f"


def check_floating(x, name: str) -> None:
    """Raise a TypeError unless the array `x` holds real floating-point numbers."""
    if not _is_float_dtype(x.dtype):
        fix = (f"{name}.float() or {name}.double()" if isinstance(x, torch.Tensor)
               else f"{name}.astype(np.float32) or {name}.astype(np.float64)")
        raise TypeError(f"{name} must hold floating-point numbers, got dtype {x.dtype}; convert it with {fix}")


def check_float_dtype(dtype, name: str = "dtype", *, like: str = "torch"):
    """Return `dtype` as a floating dtype of the kind `like` ("torch" or "numpy").

    A torch dtype is accepted for numpy results and a numpy one for torch results (they
    are translated); an integer, boolean or complex dtype is a TypeError, since the
    function computes fractions (and -inf) that such a dtype would truncate.
    """
    expected = f"{name} must be a floating dtype such as torch.float32 or np.float64"
    if dtype is None or isinstance(dtype, bool):
        raise TypeError(f"{expected}, got {dtype!r}")
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise TypeError(f"{expected} (the result is not whole numbers), got {dtype}")
        if like == "torch":
            return dtype
        try:
            return torch.empty(0, dtype=dtype).numpy().dtype
        except (TypeError, RuntimeError):
            raise TypeError(f"{name}={dtype} has no numpy equivalent; use float16, float32 or float64") from None
    try:
        np_dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{expected}, got {dtype!r}") from None
    if np_dtype.kind != "f":
        raise TypeError(f"{expected} (the result is not whole numbers), got {np_dtype}")
    if like == "numpy":
        return np_dtype
    try:
        return torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype
    except (TypeError, RuntimeError):
        raise TypeError(f"{name}={np_dtype} has no torch equivalent; use float16, float32 or float64") from None
