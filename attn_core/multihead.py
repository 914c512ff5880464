"""Multi-head attention (lesson 04).

`d_model` is split into `n_heads` heads of `d_head = d_model // n_heads` dimensions; each
head attends on its own, the heads' outputs are concatenated back to `d_model` and mixed
by the output projection `w_o`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module_hooks

from ._arrays import check_array, check_flag, check_positive_finite, check_positive_int, fmt_shape, is_array
from .attention import scaled_dot_product_attention
from .kv_cache import KVCache
from .positional.rope import _check_positions, apply_rope

__all__ = ["split_heads", "merge_heads", "MultiHeadAttention", "parameter_count", "matmul_flops"]


def _global_forward_hooks() -> bool:
    """Whether any global module forward hook is registered (`nn.modules.module.register_module_forward_hook`)."""
    return bool(_module_hooks._global_forward_hooks or _module_hooks._global_forward_pre_hooks)


def _repack_after_load(module, incompatible_keys) -> None:
    """After `load_state_dict`, put `w_q`, `w_k`, `w_v` side by side again (see `MultiHeadAttention._pack_qkv`)."""
    module._pack_qkv()


def _check_divisible(d_model: int, n_heads: int) -> None:
    if d_model % n_heads:
        divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: every head needs "
            f"d_head = d_model / n_heads dimensions. Choose n_heads from {divisors}"
        )


def _check_kv_heads(n_heads: int, n_kv_heads) -> int:
    """`n_kv_heads` (default `n_heads`) as an int dividing `n_heads`: each key/value head serves a group of query heads."""
    if n_kv_heads is None:
        return n_heads
    n_kv_heads = check_positive_int(n_kv_heads, "n_kv_heads")
    if n_heads % n_kv_heads:
        divisors = [h for h in range(1, n_heads + 1) if n_heads % h == 0]
        raise ValueError(
            f"n_kv_heads={n_kv_heads} does not divide n_heads={n_heads}: each key/value head is shared by a group "
            f"of n_heads / n_kv_heads query heads. Choose n_kv_heads from {divisors} ({n_heads}: multi-head, "
            f"1: multi-query attention)"
        )
    return n_kv_heads


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
    if type(x) is torch.Tensor and x.ndim == 4:  # the common case (B, H, T, d_head), without the checks' cost
        B, H, T, d_head = x.shape
        return x.transpose(1, 2).reshape(B, T, H * d_head)  # (B, H, T, d_head) -> (B, T, H, d_head) -> (B, T, d_model)
    check_array(x, "x", min_ndim=3, expected="(B, H, T, d_head)")
    *lead, H, T, d_head = x.shape
    x = x.swapaxes(-3, -2)  # (B, H, T, d_head) -> (B, T, H, d_head)
    return x.reshape(*lead, T, H * d_head)  # (B, T, H, d_head) -> (B, T, d_model)


def parameter_count(d_model: int, n_heads: int, bias: bool = True, n_kv_heads: int | None = None) -> int:
    r"""Number of parameters of `MultiHeadAttention(d_model, n_heads, bias, n_kv_heads=n_kv_heads)`.

    .. math:: 2\, d_\mathrm{model}^2 + 2\, d_\mathrm{model} d_\mathrm{kv}
              + 2\, d_\mathrm{model} + 2\, d_\mathrm{kv} \;[\text{biases}], \qquad
              d_\mathrm{kv} = n_\mathrm{kv\_heads}\, d_\mathrm{head}

    `w_q` and `w_o` are `d_model x d_model`; `w_k` and `w_v` project to the `n_kv_heads`
    key/value heads only (`d_kv = d_model` for multi-head attention, the default). Each
    has a bias when `bias`. Head `h` uses `d_head` columns of `w_q`, `w_k`, `w_v`, so
    `n_heads` heads cost `n_heads * 3 * d_model * d_head = 3 * d_model**2`: with
    `n_kv_heads = n_heads` the count (`4 d^2 + 4 d`) does not depend on `n_heads` (which
    must still divide `d_model`).

    >>> parameter_count(768, 12)
    2362368
    >>> parameter_count(768, 12, n_kv_heads=4)  # grouped-query: w_k, w_v shrink 3x
    1574912
    """
    d_model = check_positive_int(d_model, "d_model")
    n_heads = check_positive_int(n_heads, "n_heads")
    _check_divisible(d_model, n_heads)
    bias = check_flag(bias, "bias")
    d_kv = _check_kv_heads(n_heads, n_kv_heads) * (d_model // n_heads)
    return 2 * d_model * d_model + 2 * d_model * d_kv + ((2 * d_model + 2 * d_kv) if bias else 0)


def matmul_flops(T: int, d_model: int, n_heads: int, S: int | None = None, n_kv_heads: int | None = None) -> int:
    r"""Matrix-multiplication FLOPs of one `MultiHeadAttention` forward pass, one sequence.

    .. math:: 2\,(\underbrace{T d^2}_{w_q} + \underbrace{2 S d\, d_\mathrm{kv}}_{w_k,\,w_v}
              + \underbrace{H\,T S\,d_\mathrm{head}}_{q k^\top}
              + \underbrace{H\,T S\,d_\mathrm{head}}_{\mathrm{weights}\,v}
              + \underbrace{T d^2}_{w_o}), \qquad H\,d_\mathrm{head} = d

    counting 2 FLOPs per multiply-add, as `torch.utils.flop_counter.FlopCounterMode`
    does, with `d_kv = n_kv_heads * d_head` (`= d` by default; grouped-query attention
    saves only in `w_k, w_v`: every query head still meets `S` keys). Since
    `H * d_head = d_model`, the result does not depend on `n_heads`. Not
    counted (they are not matrix products): the scaling, bias additions and the softmax,
    whose work *does* grow with `n_heads` (it runs over `H * T * S` scores).

    Args:
        T: number of queries; `S`: number of keys and values (default `T`, self-attention).
        d_model: model width; `n_heads` must divide it.
        n_kv_heads: key/value heads (default `n_heads`); must divide `n_heads`.

    >>> matmul_flops(10, 768, 12)
    47493120
    """
    T = check_positive_int(T, "T")
    S = T if S is None else check_positive_int(S, "S")
    d_model = check_positive_int(d_model, "d_model")
    n_heads = check_positive_int(n_heads, "n_heads")
    _check_divisible(d_model, n_heads)
    d_head = d_model // n_heads
    d_kv = _check_kv_heads(n_heads, n_kv_heads) * d_head
    projections = T * d_model * d_model + 2 * S * d_model * d_kv + T * d_model * d_model
    attention = 2 * n_heads * T * S * d_head  # scores and weighted sum of values
    return 2 * (projections + attention)


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention with separate query, key, value and output projections.

    .. math:: \mathrm{head}_h = \operatorname{attention}(x W_q^{(h)}, x W_k^{(h)}, x W_v^{(h)}),
              \qquad \mathrm{out} = [\mathrm{head}_1; \dots; \mathrm{head}_H]\, W_o

    The per-head matrices `W_q^{(h)}` are the column blocks of one `d_model x d_model`
    matrix `w_q`, so H heads of size `d_head` cost exactly the parameters and FLOPs of
    one full-width head.

    Grouped-query attention (`n_kv_heads < n_heads`; multi-query for `n_kv_heads = 1`):
    `w_k` and `w_v` project to only `n_kv_heads` key/value heads, and query head `h` reads
    key/value head `h // (n_heads / n_kv_heads)`, i.e. the key/value heads are repeated
    with `repeat_interleave` on the head axis (`[K1, K1, K2, K2]`), as in PyTorch's
    `scaled_dot_product_attention(..., enable_gqa=True)`. A `KVCache` stores the
    `n_kv_heads` heads before that repetition, which is the memory GQA saves.

    Args:
        d_model: model width; must be divisible by `n_heads`.
        n_heads: number of heads `H`; each gets `d_head = d_model // n_heads`.
        bias: whether the four linear layers have biases (True or False).
        rope: rotate queries and keys with `apply_rope` (per head) before the scores
            (True or False).
        rope_base: RoPE's frequency base, a finite number > 0.
        n_kv_heads: key/value heads (default `n_heads`); must divide `n_heads`.

    `forward(query, key=None, value=None, mask=None, bias=None, positions=None,
    key_positions=None, cache=None)`:

    - `query (B, T, d_model)`, `key`/`value (B, S, d_model)` (default: `query`, i.e.
      self-attention), in the dtype of the module's weights (`.float()` / `.double()`).
    - `mask` boolean (True = may attend) and `bias` float, each of one of these shapes:
      `(T, S)`, shared by every sequence and head (e.g. `causal_mask(T)`); `(B, T, S)`,
      one per sequence, used as `(B, 1, T, S)`; or `(B|1, H|1, T, S)`, e.g. a padding
      mask `(B, 1, 1, S)` or a per-head bias `(1, H, T, S)`. A size 1 broadcasts. Any
      other rank is a ValueError: in particular an ALiBi bias `(H, T, S)` must be passed
      as `alibi_bias(...)[None]`, `(1, H, T, S)`, or it would be read as per sequence.
    - `positions` (RoPE only): the positions of the queries, `(T,)` or `(B, T)`, default
      `0 .. T-1`. `key_positions`: those of the keys, `(S,)` or `(B, S)`; default
      `positions` when `key` is None (self-attention), else `0 .. S-1`. So new queries
      after `S - T` cached keys take `positions=torch.arange(S - T, S)`. Passing either
      with `rope=False` is a ValueError (it would be ignored).
    - `cache` (self-attention only): a `KVCache` `(B, n_kv_heads, S - T, d_head)` of the
      tokens before these `T` (start with `self.empty_cache(B)`). The new keys and values
      are appended to it and the queries attend to all `S` of them; `positions` default
      to `S - T .. S - 1` and the keys are cached already rotated. Pass the mask and bias
      for `(T, S)`, e.g. `causal_mask(T, S)` (end-aligned).

    Returns `(out, weights)`: `out (B, T, d_model)`, per-head `weights (B, H, T, S)`; with
    `cache`, `(out, weights, cache)` where the returned cache holds all `S` tokens.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, rope: bool = False, rope_base: float = 10000.0,
                 n_kv_heads: int | None = None):
        super().__init__()
        d_model = check_positive_int(d_model, "d_model")
        n_heads = check_positive_int(n_heads, "n_heads")
        _check_divisible(d_model, n_heads)
        n_kv_heads = _check_kv_heads(n_heads, n_kv_heads)
        bias = check_flag(bias, "bias")
        rope = check_flag(rope, "rope")
        rope_base = check_positive_finite(rope_base, "rope_base")
        if rope and (d_model // n_heads) % 2:
            raise ValueError(f"RoPE rotates pairs of dimensions, so d_head = d_model / n_heads must be even, got {d_model // n_heads}")
        self.d_model, self.n_heads, self.d_head, self.n_kv_heads = d_model, n_heads, d_model // n_heads, n_kv_heads
        self.rope, self.rope_base = rope, rope_base
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        self.w_v = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self._pack_qkv()
        self.register_load_state_dict_post_hook(_repack_after_load)  # load_state_dict(..., assign=True) gives new memory

    def _pack_qkv(self) -> None:
        """Store `w_q`, `w_k` and `w_v` side by side in one block of memory; they stay three named layers.

        Each weight becomes a view of its rows of one `(d_model + 2 d_kv, d_model)` matrix,
        the layout of PyTorch's packed `in_proj_weight` (biases likewise), so self-attention
        without autograd computes `q`, `k` and `v` with one matrix product instead of three
        (`_project_heads`). Training, loading a state_dict and optimizers write into the same
        memory, so the packed matrix always holds the current weights. Re-done after
        `.to()` / `.double()` (`_apply`), which give each weight new memory.
        """
        linears = (self.w_q, self.w_k, self.w_v)
        if self._packed_qkv() is not None:
            return  # still side by side (e.g. .to() of the same dtype and device)
        with torch.no_grad():
            weight = torch.cat([lin.weight for lin in linears])  # (d_model + 2 d_kv, d_model)
            bias = torch.cat([lin.bias for lin in linears]) if self.w_q.bias is not None else None  # (d_model + 2 d_kv,)
        start = 0
        for lin in linears:
            rows = slice(start, start + lin.out_features)
            lin.weight.data = weight[rows]  # the same Parameter, now a view of the packed matrix
            if bias is not None:
                lin.bias.data = bias[rows]
            start = rows.stop
        starts = [0, self.w_q.out_features, self.w_q.out_features + self.w_k.out_features]  # first row of each
        offsets = [r * weight.stride(0) * weight.element_size() for r in starts]  # in bytes
        offsets += [] if bias is None else [r * bias.element_size() for r in starts]
        self._qkv = (weight, bias, offsets)

    def __setstate__(self, state):  # pickle and copy.deepcopy copy each weight on its own
        super().__setstate__(state)
        self._pack_qkv()

    def _apply(self, fn, *args, **kwargs):
        module = super()._apply(fn, *args, **kwargs)
        self._pack_qkv()
        return module

    def _packed_qkv(self):
        """The packed `(weight, bias)` if `w_q`, `w_k`, `w_v` still live in it and have no hooks, else None.

        They may not: `load_state_dict(..., assign=True)`, `param.data = ...` or
        `torch.func.functional_call` give a weight other memory, and a forward hook on
        `w_q` must see `w_q` run. Then each layer runs on its own. Reads the layers from
        `_modules` directly: `self.w_q.weight` costs two `nn.Module.__getattr__`, about
        1 us each, more than this whole check.
        """
        packed = self.__dict__.get("_qkv")
        if packed is None:
            return None
        weight, bias, offsets = packed
        q, k, v = self._modules["w_q"], self._modules["w_k"], self._modules["w_v"]
        if (q._forward_hooks or q._forward_pre_hooks or k._forward_hooks or k._forward_pre_hooks or v._forward_hooks
                or v._forward_pre_hooks or _global_forward_hooks()):
            return None
        at = weight.data_ptr()  # straight-line comparisons: this runs once per inference call
        if (q._parameters["weight"].data_ptr() != at + offsets[0] or k._parameters["weight"].data_ptr() != at + offsets[1]
                or v._parameters["weight"].data_ptr() != at + offsets[2]):
            return None
        if bias is not None:
            at, bq, bk, bv = bias.data_ptr(), q._parameters["bias"], k._parameters["bias"], v._parameters["bias"]
            if (bq is None or bk is None or bv is None or bq.data_ptr() != at + offsets[3]
                    or bk.data_ptr() != at + offsets[4] or bv.data_ptr() != at + offsets[5]):
                return None
        elif q._parameters.get("bias") is not None or k._parameters.get("bias") is not None or v._parameters.get("bias") is not None:
            return None  # a bias added to a layer built without one
        return weight, bias

    def _plain_linear(self, name: str):
        """`(weight, bias)` of the `nn.Linear` called `name` if `F.linear(x, weight, bias)` is exactly calling it, else None.

        It is, without autograd, for a plain `nn.Linear` (not a subclass, not parametrized)
        that has no forward hooks. Calling the module costs about 5 us of `nn.Module`
        machinery, more than the product itself at a classroom's sizes or for one
        decoding step; a hook, a wrapped layer or training takes the ordinary call.
        """
        lin = self._modules[name]
        if (torch.is_grad_enabled() or type(lin) is not nn.Linear or lin._forward_hooks or lin._forward_pre_hooks
                or _global_forward_hooks()):
            return None
        params = lin._parameters  # what self.w_o.weight reads, without two nn.Module.__getattr__
        weight = params.get("weight")
        return None if weight is None else (weight, params.get("bias"))

    def _project_heads(self, query, key, value):
        """The projections, split into heads: `q (B, H, T, d_head)`, `k` and `v (B, H_kv, S, d_head)`.

        `split_heads(x W_q)` and so on. Self-attention without autograd (inference, under
        `torch.no_grad()`) takes one product with the packed matrix instead (see
        `_pack_qkv`), and splits all `H + 2 H_kv` heads at once, as `nn.MultiheadAttention`
        does: at a classroom's sizes, or for one decoding step, every call costs more time
        than its arithmetic.
        """
        packed = self._packed_qkv() if (key is query and value is query and not torch.is_grad_enabled()) else None
        if packed is None:
            q = split_heads(self.w_q(query), self.n_heads)  # (B, T, d_model) -> (B, H, T, d_head)
            k = split_heads(self.w_k(key), self.n_kv_heads)  # (B, S, d_kv) -> (B, H_kv, S, d_head)
            v = split_heads(self.w_v(value), self.n_kv_heads)  # (B, S, d_kv) -> (B, H_kv, S, d_head)
            return q, k, v
        B, T, _ = query.shape
        heads = F.linear(query, *packed)  # (B, T, d_model) -> (B, T, d_model + 2 d_kv)
        heads = heads.view(B, T, -1, self.d_head).transpose(1, 2)  # -> (B, H + 2 H_kv, T, d_head)
        return heads.split_with_sizes((self.n_heads, self.n_kv_heads, self.n_kv_heads), dim=1)  # (B, H|H_kv, T, d_head)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}"
                + (f", n_kv_heads={self.n_kv_heads}" if self.n_kv_heads != self.n_heads else "")
                + (", rope=True" if self.rope else ""))

    def empty_cache(self, batch_size: int) -> KVCache:
        """A `KVCache` holding no tokens, `(batch_size, n_kv_heads, 0, d_head)`, in the weights' dtype and device."""
        w = self.w_k.weight
        return KVCache.empty(batch_size, self.n_kv_heads, self.d_head, dtype=w.dtype, device=w.device)

    def _check_cache(self, cache, B: int) -> None:
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache (start with layer.empty_cache(B)), got {type(cache).__name__}")
        expected = (B, self.n_kv_heads, cache.length, self.d_head)
        if tuple(cache.k.shape) != expected or cache.k.dtype != self.w_k.weight.dtype:
            raise ValueError(
                f"cache of shape {fmt_shape(cache.k.shape)} ({cache.k.dtype}) does not fit this layer and batch: "
                f"expected (B, n_kv_heads, S, d_head) = {fmt_shape(expected)} ({self.w_k.weight.dtype}), with B={B} "
                f"from the query. A cache belongs to one layer and one batch of sequences"
            )

    def _check_inputs(self, query, key, value) -> None:
        """query (B, T, d_model), key and value (B, S, d_model), torch tensors in the weights' dtype."""
        weight_dtype = self._modules["w_q"]._parameters["weight"].dtype  # self.w_q.weight, without two __getattr__
        if (query is key and key is value and type(query) is torch.Tensor and query.ndim == 3
                and query.shape[2] == self.d_model and query.dtype == weight_dtype):
            return  # self-attention, the common case: checked in a few comparisons
        for name, x in (("query", query), ("key", key), ("value", value)):
            if name != "query" and x is query:
                continue  # self-attention: the same tensor, checked once
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"{name} must be a torch tensor of shape (B, T, d_model={self.d_model}), got {type(x).__name__}")
            if x.ndim != 3 or x.shape[-1] != self.d_model:
                raise ValueError(f"{name} must have shape (B, T, d_model={self.d_model}), got shape {fmt_shape(x.shape)}")
            if x.dtype != weight_dtype:
                raise TypeError(
                    f"{name} has dtype {x.dtype} but the module's weights are {weight_dtype}: convert the input with "
                    f"{name}.float() (float32) or {name}.double() (float64) to match, or the module with .float() / "
                    f".double() (torch.from_numpy keeps numpy's float64, while torch makes float32 by default)"
                )
        if (key is not query or value is not query) and (key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]):
            raise ValueError(
                f"query (B, T, d_model), key and value (B, S, d_model) must share B, and key and value S: got "
                f"query {fmt_shape(query.shape)}, key {fmt_shape(key.shape)}, value {fmt_shape(value.shape)}"
            )

    def _heads_layout(self, m, name: str, B: int, T: int, S: int):
        """Check a mask or bias against the accepted shapes; return it broadcastable to (B, H, T, S)."""
        if m is None:
            return None
        if not is_array(m):
            kind = "boolean" if name == "mask" else "float"
            raise TypeError(f"{name} must be a {kind} numpy array or torch tensor, got {type(m).__name__}")
        H = self.n_heads
        accepted = (
            f"accepted shapes: (T, S), (B, T, S), (B|1, H|1, T, S). Here (T, S) = ({T}, {S}) is shared by every "
            f"sequence and head; (B, T, S) = ({B}, {T}, {S}) holds one per sequence (used as (B, 1, T, S)); "
            f"(B|1, H|1, T, S) with B = {B}, H = {H} is e.g. a padding mask (B, 1, 1, S) or a per-head bias "
            f"(1, H, T, S) (a bias of heads first, (H, T, S), such as alibi_bias(...), needs [None]). Any size may be 1"
        )
        target = {2: (T, S), 3: (B, T, S), 4: (B, H, T, S)}.get(m.ndim)
        try:
            ok = target is not None and (tuple(m.shape) == target or np.broadcast_shapes(tuple(m.shape), target) == target)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name} of shape {fmt_shape(m.shape)} is not broadcastable to the scores' shape "
                f"{fmt_shape((B, H, T, S))} (B, H, T, S); {accepted}"
            )
        return m[:, None] if m.ndim == 3 else m  # (B, T, S) -> (B, 1, T, S)

    def _rope_positions(self, p, name: str, B: int, L: int, axis: str):
        """`None` or `(L,)` / `(B, L)` positions -> `None`, `(L,)` or `(B, 1, L)` for `(B, H, L, d_head)`."""
        if p is None:
            return None
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor of shape ({axis},) or (B, {axis}), got {type(p).__name__}")
        _check_positions(p, name)
        if p.ndim not in (1, 2) or p.shape[-1] != L or (p.ndim == 2 and p.shape[0] not in (1, B)):
            raise ValueError(
                f"{name} must have shape ({axis},) = ({L},) or (B, {axis}) = ({B}, {L}), got shape {fmt_shape(p.shape)}"
            )
        return p[:, None, :] if p.ndim == 2 else p  # (B, L) -> (B, 1, L)

    def forward(self, query, key=None, value=None, mask=None, bias=None, positions=None, key_positions=None, cache=None):
        self_attention = key is None
        if cache is not None and not (self_attention and value is None):
            raise ValueError("cache= is for self-attention (query only): the keys and values of the new tokens are "
                             "appended to it; for cross-attention pass key and value without a cache")
        if cache is not None and key_positions is not None:
            raise ValueError("key_positions= cannot be combined with cache=: the cached keys are already rotated, and "
                             "the new keys take the queries' positions")
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value)
        B, T, S = query.shape[0], query.shape[1], key.shape[1]
        if cache is not None:
            self._check_cache(cache, B)
            S = cache.length + T
        if not self.rope and (positions is not None or key_positions is not None):
            for name, p in (("positions", positions), ("key_positions", key_positions)):
                if p is not None:
                    raise ValueError(
                        f"{name}= only applies with rope=True, and MultiHeadAttention({self.d_model}, {self.n_heads}) "
                        f"has rope=False, so it would be silently ignored. Build the layer with rope=True, or add "
                        f"positions to the input instead (e.g. + sinusoidal_encoding(T, d_model))"
                    )
        mask = self._heads_layout(mask, "mask", B, T, S)  # (B|1, H|1, T, S) or (T, S)
        bias = self._heads_layout(bias, "bias", B, T, S)  # (B|1, H|1, T, S) or (T, S)
        q, k, v = self._project_heads(query, key, value)  # (B, H, T, d_head), (B, H_kv, S_new, d_head) x2
        if self.rope:
            if positions is None and cache is not None:
                positions = torch.arange(cache.length, S, device=query.device)  # the new tokens follow the cached ones
            if key_positions is None and self_attention:
                key_positions = positions  # one sequence: its keys sit where its queries sit
            q_pos = self._rope_positions(positions, "positions", B, T, "T")  # None (0..T-1), (T,) or (B, 1, T)
            k_pos = self._rope_positions(key_positions, "key_positions", B, k.shape[-2], "S")  # None, (S,) or (B, 1, S)
            q = apply_rope(q, q_pos, base=self.rope_base)  # (B, H, T, d_head)
            k = apply_rope(k, k_pos, base=self.rope_base)  # (B, H_kv, S_new, d_head)
        if cache is not None:
            cache = cache.append(k, v)
            k, v = cache.k, cache.v  # (B, H_kv, S, d_head): the cached tokens and the new ones
        if self.n_kv_heads != self.n_heads:
            group = self.n_heads // self.n_kv_heads
            k = k.repeat_interleave(group, dim=1)  # (B, H_kv, S, d_head) -> (B, H, S, d_head)
            v = v.repeat_interleave(group, dim=1)  # (B, H_kv, S, d_head) -> (B, H, S, d_head)
        out, weights = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)  # (B, H, T, d_head), (B, H, T, S)
        out = merge_heads(out)  # (B, H, T, d_head) -> (B, T, d_model)
        w_o = self._plain_linear("w_o")  # (weight, bias) when calling F.linear is exactly calling self.w_o, else None
        out = F.linear(out, *w_o) if w_o is not None else self.w_o(out)  # (B, T, d_model) -> (B, T, d_model)
        return (out, weights) if cache is None else (out, weights, cache)

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
