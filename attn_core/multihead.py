"""Multi-head attention (lesson 04).

`d_model` is split into `n_heads` heads of `d_head = d_model // n_heads` dimensions; each
head attends on its own, the heads' outputs are concatenated back to `d_model` and mixed
by the output projection `w_o`.
"""

from __future__ import annotations

import torch
from torch import nn

from ._arrays import check_array, check_positive_int, fmt_shape
from .attention import scaled_dot_product_attention
from .positional.rope import apply_rope

__all__ = ["split_heads", "merge_heads", "MultiHeadAttention", "parameter_count", "matmul_flops"]


def _check_divisible(d_model: int, n_heads: int) -> None:
    if d_model % n_heads:
        divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: every head needs "
            f"d_head = d_model / n_heads dimensions. Choose n_heads from {divisors}"
        )


def split_heads(x, n_heads: int):
    r"""Split the last axis into heads: `(B, T, d_model) -> (B, H, T, d_head)`.

    .. math:: x_{b,h,t,i} = x_{b,t,\,h \cdot d_\mathrm{head} + i}

    Head `h` owns the slice `h*d_head : (h+1)*d_head` of the features. Leading batch
    dimensions may be absent (`(T, d_model) -> (H, T, d_head)`) or more than one.

    >>> split_heads(torch.arange(8.).reshape(1, 2, 4), 2).shape
    torch.Size([1, 2, 2, 2])
    """
    check_array(x, "x", min_ndim=2, expected="(B, T, d_model)")
    n_heads = check_positive_int(n_heads, "n_heads")
    *lead, T, d_model = x.shape
    _check_divisible(d_model, n_heads)
    x = x.reshape(*lead, T, n_heads, d_model // n_heads)  # (B, T, d_model) -> (B, T, H, d_head)
    return x.swapaxes(-3, -2)  # (B, T, H, d_head) -> (B, H, T, d_head)


def merge_heads(x):
    r"""Concatenate the heads again: `(B, H, T, d_head) -> (B, T, H * d_head)`.

    The inverse of `split_heads`: `merge_heads(split_heads(x, H)) == x`.
    """
    check_array(x, "x", min_ndim=3, expected="(B, H, T, d_head)")
    *lead, H, T, d_head = x.shape
    x = x.swapaxes(-3, -2)  # (B, H, T, d_head) -> (B, T, H, d_head)
    return x.reshape(*lead, T, H * d_head)  # (B, T, H, d_head) -> (B, T, d_model)


def parameter_count(d_model: int, n_heads: int, bias: bool = True) -> int:
    r"""Number of parameters of `MultiHeadAttention(d_model, n_heads, bias)`.

    .. math:: 4\, d_\mathrm{model}^2 + 4\, d_\mathrm{model} \;[\text{biases}]

    Four `d_model x d_model` projections (`w_q, w_k, w_v, w_o`), each with a bias of
    `d_model` when `bias`. Head `h` uses `d_head` columns of `w_q`, `w_k`, `w_v`, so
    `n_heads` heads cost `n_heads * 3 * d_model * d_head = 3 * d_model**2`: the count does
    not depend on `n_heads` (which must still divide `d_model`).

    >>> parameter_count(768, 12)
    2362368
    """
    d_model = check_positive_int(d_model, "d_model")
    n_heads = check_positive_int(n_heads, "n_heads")
    _check_divisible(d_model, n_heads)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be True or False, got {bias!r} ({type(bias).__name__})")
    return 4 * d_model * d_model + (4 * d_model if bias else 0)


def matmul_flops(T: int, d_model: int, n_heads: int, S: int | None = None) -> int:
    r"""Matrix-multiplication FLOPs of one `MultiHeadAttention` forward pass, one sequence.

    .. math:: 2\,(\underbrace{T d^2}_{w_q} + \underbrace{2 S d^2}_{w_k,\,w_v}
              + \underbrace{H\,T S\,d_\mathrm{head}}_{q k^\top}
              + \underbrace{H\,T S\,d_\mathrm{head}}_{\mathrm{weights}\,v}
              + \underbrace{T d^2}_{w_o}), \qquad H\,d_\mathrm{head} = d

    counting 2 FLOPs per multiply-add, as `torch.utils.flop_counter.FlopCounterMode`
    does. Since `H * d_head = d_model`, the result does not depend on `n_heads`. Not
    counted (they are not matrix products): the scaling, bias additions and the softmax,
    whose work *does* grow with `n_heads` (it runs over `H * T * S` scores).

    Args:
        T: number of queries; `S`: number of keys and values (default `T`, self-attention).
        d_model: model width; `n_heads` must divide it.

    >>> matmul_flops(10, 768, 12)
    47493120
    """
    T = check_positive_int(T, "T")
    S = T if S is None else check_positive_int(S, "S")
    d_model = check_positive_int(d_model, "d_model")
    n_heads = check_positive_int(n_heads, "n_heads")
    _check_divisible(d_model, n_heads)
    d_head = d_model // n_heads
    projections = T * d_model * d_model + 2 * S * d_model * d_model + T * d_model * d_model
    attention = 2 * n_heads * T * S * d_head  # scores and weighted sum of values
    return 2 * (projections + attention)


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention with separate query, key, value and output projections.

    .. math:: \mathrm{head}_h = \operatorname{attention}(x W_q^{(h)}, x W_k^{(h)}, x W_v^{(h)}),
              \qquad \mathrm{out} = [\mathrm{head}_1; \dots; \mathrm{head}_H]\, W_o

    The per-head matrices `W_q^{(h)}` are the column blocks of one `d_model x d_model`
    matrix `w_q`, so H heads of size `d_head` cost exactly the parameters and FLOPs of
    one full-width head.

    Args:
        d_model: model width; must be divisible by `n_heads`.
        n_heads: number of heads `H`; each gets `d_head = d_model // n_heads`.
        bias: whether the four linear layers have biases.
        rope: rotate queries and keys with `apply_rope` (per head) before the scores.
        rope_base: RoPE's frequency base.

    `forward(query, key=None, value=None, mask=None, bias=None, positions=None)`:
    `query (B, T, d_model)`, `key`/`value (B, S, d_model)` (default: `query`, i.e.
    self-attention), `mask` boolean broadcastable to `(B, H, T, S)` (True = may attend),
    `bias` float broadcastable to `(B, H, T, S)`, `positions` for RoPE. Returns
    `(out, weights)`: `out (B, T, d_model)`, per-head `weights (B, H, T, S)`.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, rope: bool = False, rope_base: float = 10000.0):
        super().__init__()
        d_model = check_positive_int(d_model, "d_model")
        n_heads = check_positive_int(n_heads, "n_heads")
        _check_divisible(d_model, n_heads)
        if rope and (d_model // n_heads) % 2:
            raise ValueError(f"RoPE rotates pairs of dimensions, so d_head = d_model / n_heads must be even, got {d_model // n_heads}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.rope, self.rope_base = rope, rope_base
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}" + (", rope=True" if self.rope else "")

    def _check_input(self, x, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape (B, T, d_model={self.d_model}), got {type(x).__name__}")
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"{name} must have shape (B, T, d_model={self.d_model}), got shape {fmt_shape(x.shape)}")

    def forward(self, query, key=None, value=None, mask=None, bias=None, positions=None):
        key = query if key is None else key
        value = key if value is None else value
        for name, x in (("query", query), ("key", key), ("value", value)):
            self._check_input(x, name)
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"query (B, T, d_model), key and value (B, S, d_model) must share B, and key and value S: got "
                f"query {fmt_shape(query.shape)}, key {fmt_shape(key.shape)}, value {fmt_shape(value.shape)}"
            )
        q = split_heads(self.w_q(query), self.n_heads)  # (B, T, d_model) -> (B, H, T, d_head)
        k = split_heads(self.w_k(key), self.n_heads)  # (B, S, d_model) -> (B, H, S, d_head)
        v = split_heads(self.w_v(value), self.n_heads)  # (B, S, d_model) -> (B, H, S, d_head)
        if self.rope:
            q = apply_rope(q, positions, base=self.rope_base)
            k = apply_rope(k, positions if key is query else None, base=self.rope_base)
        out, weights = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)  # (B, H, T, d_head), (B, H, T, S)
        out = self.w_o(merge_heads(out))  # (B, H, T, d_head) -> (B, T, d_model)
        return out, weights

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a `torch.nn.MultiheadAttention(..., batch_first=True)`.

        PyTorch packs the three input projections into one `in_proj_weight (3*d_model,
        d_model)`; its rows `[0:d]`, `[d:2d]`, `[2d:3d]` are `w_q`, `w_k`, `w_v`. Outputs
        agree in eval mode (or with `dropout=0`). Note PyTorch's `attn_mask` is True where
        attention is *blocked*: pass `~attn_mask` as this module's `mask`.
        """
        if not isinstance(m, nn.MultiheadAttention):
            raise TypeError(f"from_torch expects a torch.nn.MultiheadAttention, got {type(m).__name__}")
        if not m.batch_first:
            raise ValueError("from_torch needs nn.MultiheadAttention(..., batch_first=True): this module's layout is (B, T, d_model)")
        if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
            raise ValueError("from_torch supports kdim == vdim == embed_dim, add_bias_kv=False and add_zero_attn=False")
        has_bias = m.in_proj_bias is not None
        new = cls(m.embed_dim, m.num_heads, bias=has_bias).to(device=m.in_proj_weight.device, dtype=m.in_proj_weight.dtype)
        d = m.embed_dim
        with torch.no_grad():
            for i, lin in enumerate((new.w_q, new.w_k, new.w_v)):
                lin.weight.copy_(m.in_proj_weight[i * d : (i + 1) * d])
                if has_bias:
                    lin.bias.copy_(m.in_proj_bias[i * d : (i + 1) * d])
            new.w_o.weight.copy_(m.out_proj.weight)
            if has_bias:
                new.w_o.bias.copy_(m.out_proj.bias)
        return new
