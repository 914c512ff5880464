r"""The key/value cache of one attention layer, for generation one token at a time (lesson 10).

With a causal mask, the keys and values of tokens already seen never change when a new
token arrives: the new query attends to all of them (`causal_mask(T, S)` is end-aligned),
and no old query attends to the new key. So a decoder computes each token's `k` and `v`
once, appends them on the `S` axis, and the next step projects only the new token:

.. math:: K_{1..S} = [K_{1..S-1};\; k_S], \qquad V_{1..S} = [V_{1..S-1};\; v_S]

The cache is a value, passed in and returned (`MultiHeadAttention.forward(..., cache=)`
returns the extended cache), never hidden state inside a module. It holds the
`n_kv_heads` key/value heads *before* grouped-query attention shares them among the
query heads, so its memory is

.. math:: 2 \cdot \mathrm{layers} \cdot B \cdot n_\mathrm{kv\_heads} \cdot d_\mathrm{head}
          \cdot S \cdot \mathrm{bytes\ per\ value}

(`kv_cache_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._arrays import check_float_dtype, check_positive_int, fmt_shape

__all__ = ["KVCache", "kv_cache_bytes"]


def kv_cache_bytes(n_layers: int, n_kv_heads: int, d_head: int, T: int, bytes_per_value: int = 4, batch_size: int = 1) -> int:
    r"""Memory of the keys and values cached for `T` tokens.

    .. math:: 2 \cdot \mathrm{layers} \cdot B \cdot n_\mathrm{kv\_heads} \cdot d_\mathrm{head}
              \cdot T \cdot \mathrm{bytes\ per\ value}

    (2: one key and one value per token, head and layer). `bytes_per_value` is 4 for
    float32, 2 for float16/bfloat16.

    >>> kv_cache_bytes(n_layers=32, n_kv_heads=32, d_head=128, T=4096, bytes_per_value=2) / 2**30  # a 7B model, MHA
    2.0
    """
    n_layers = check_positive_int(n_layers, "n_layers")
    n_kv_heads = check_positive_int(n_kv_heads, "n_kv_heads")
    d_head = check_positive_int(d_head, "d_head")
    T = check_positive_int(T, "T")
    bytes_per_value = check_positive_int(bytes_per_value, "bytes_per_value")
    batch_size = check_positive_int(batch_size, "batch_size")
    return 2 * n_layers * batch_size * n_kv_heads * d_head * T * bytes_per_value


@dataclass(frozen=True, eq=False)  # eq on tensors would be elementwise, not a bool
class KVCache:
    r"""The cached keys and values of one attention layer: `k, v (B, n_kv_heads, S, d_head)`.

    Immutable: `append` returns a new cache, `[K; k_new]` and `[V; v_new]` on the `S` axis.
    Keys are stored as the attention used them (after RoPE, if any), values as projected.

    `KVCache.empty(batch_size, n_kv_heads, d_head)` starts one with `S = 0`;
    `MultiHeadAttention.empty_cache(batch_size)` and `TinyTransformer.empty_cache(...)`
    build the right sizes for a layer or a model.
    """

    k: torch.Tensor
    v: torch.Tensor

    def __post_init__(self):
        for name, x in (("k", self.k), ("v", self.v)):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"KVCache {name} must be a torch tensor (B, n_kv_heads, S, d_head), got {type(x).__name__}")
            if x.ndim != 4:
                raise ValueError(f"KVCache {name} must have shape (B, n_kv_heads, S, d_head), got shape {fmt_shape(x.shape)}")
            if not x.dtype.is_floating_point:
                raise TypeError(f"KVCache {name} must hold floating-point numbers, got dtype {x.dtype}")
        if self.k.shape != self.v.shape or self.k.dtype != self.v.dtype:
            raise ValueError(
                f"KVCache k and v must have the same shape (B, n_kv_heads, S, d_head) and dtype, got k "
                f"{fmt_shape(self.k.shape)} {self.k.dtype} and v {fmt_shape(self.v.shape)} {self.v.dtype}"
            )

    @classmethod
    def empty(cls, batch_size: int, n_kv_heads: int, d_head: int, *, dtype=torch.float32, device=None) -> "KVCache":
        """A cache holding no tokens yet: `k, v (batch_size, n_kv_heads, 0, d_head)`."""
        shape = (check_positive_int(batch_size, "batch_size"), check_positive_int(n_kv_heads, "n_kv_heads"), 0,
                 check_positive_int(d_head, "d_head"))
        dtype = check_float_dtype(dtype, "dtype")
        return cls(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))

    @property
    def length(self) -> int:
        """`S`, the number of tokens cached."""
        return self.k.shape[2]

    @property
    def nbytes(self) -> int:
        """Bytes held by `k` and `v` together."""
        return self.k.element_size() * self.k.numel() + self.v.element_size() * self.v.numel()

    def append(self, k, v) -> "KVCache":
        """A new cache with `k, v (B, n_kv_heads, T, d_head)` appended: `(.., S, ..) -> (.., S + T, ..)`."""
        new = KVCache(k, v)  # the same checks on the new keys and values
        B, H_kv, _, d_head = self.k.shape
        if (new.k.shape[0], new.k.shape[1], new.k.shape[3]) != (B, H_kv, d_head) or new.k.dtype != self.k.dtype:
            raise ValueError(
                f"cannot append k, v of shape {fmt_shape(new.k.shape)} ({new.k.dtype}) to a KVCache of shape "
                f"{fmt_shape(self.k.shape)} ({self.k.dtype}): batch B, n_kv_heads, d_head and dtype must match"
            )
        return KVCache(torch.cat([self.k, new.k], dim=2), torch.cat([self.v, new.v], dim=2))  # (B, H_kv, S + T, d_head)

    def __repr__(self) -> str:
        return f"KVCache(B={self.k.shape[0]}, n_kv_heads={self.k.shape[1]}, S={self.length}, d_head={self.k.shape[3]}, dtype={self.k.dtype})"
