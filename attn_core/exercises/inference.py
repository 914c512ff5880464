r"""Exercises of lesson 10 (attention at inference time): one step of the online softmax, one
cached decoding step, and the memory of a key/value cache.

Each checker compares the learner's function with `attn_core`'s own (`tiled`'s online
update, `KVCache.append` with `scaled_dot_product_attention`, `kv_cache_bytes`) on cases
chosen so that each catalogued mistake (`MISTAKES_*`) shows: a block that raises some
rows' maximum and not others', a row still all `-inf`, scores around 1000; an empty cache,
one cached token, a head width `D != 1`; batch, layer and head counts that are all
different numbers.
"""

from __future__ import annotations

import math

import torch

from .._arrays import array_namespace
from ..attention import scaled_dot_product_attention
from ..kv_cache import KVCache, kv_cache_bytes
from ..tiled import _online_update
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_online_softmax_step", "check_cached_step", "check_cache_memory"]

_NEG_INF = float("-inf")


# ----------------------------------------------------------------- online softmax: one block


def _reference_step(m, l, scores):
    """attn_core's online update (`tiled._online_update`) on `(R,)` running values."""
    m_new, l_new, _, _ = _online_update(m[:, None], l[:, None], scores, array_namespace(scores))  # (R, 1), (R, 1)
    return m_new[:, 0], l_new[:, 0]  # (R,), (R,)


def _step(m, l, scores, *, block_max_only=False, rescale=lambda m, m_new: torch.exp(m - m_new),
          shift=lambda m, m_new: m_new, guard=True):
    """The online update with one thing changed (each mistake below switches one)."""
    block_max = scores.max(dim=-1).values  # (R,)
    m_new = block_max if block_max_only else torch.maximum(m, block_max)  # (R,)
    if guard:  # a row still all -inf: exponents against 0, so 0 instead of nan
        m_safe = torch.where(m_new == _NEG_INF, torch.zeros_like(m_new), m_new)
        m_old = torch.where(m_new == _NEG_INF, torch.zeros_like(m), m)
    else:
        m_safe, m_old = m_new, m
    p = torch.exp(scores - shift(m_old, m_safe)[:, None])  # (R, b)
    return m_new, l * rescale(m_old, m_safe) + p.sum(dim=-1)  # (R,), (R,)


MISTAKES_ONLINE_SOFTMAX_STEP = (
    Mistake("l not rescaled", lambda m, l, s: _step(m, l, s, rescale=lambda m, m_new: torch.ones_like(m)),
            "when the block raises a row's maximum, the sum so far was exponentiated against the *old* maximum; "
            "added as it is to terms taken against the new maximum, it counts for too much. Everything summed "
            "before must be brought to the new maximum first."),
    Mistake("rescaled by exp(m_new - m_old): wrong sign", lambda m, l, s: _step(
        m, l, s, rescale=lambda m, m_new: torch.exp(m_new - m)),
            "your factor grows the old sum when the maximum rises, but it must shrink it: e^(x - m_new) = "
            "e^(x - m_old) * e^(m_old - m_new), and m_old <= m_new, so the factor is at most 1."),
    Mistake("m_new is the block's maximum only", lambda m, l, s: _step(m, l, s, block_max_only=True),
            "the running maximum must be the maximum of *everything seen so far*: when this block's largest score "
            "is below the previous maximum, the previous one stays."),
    Mistake("the block exponentiated against the old maximum", lambda m, l, s: _step(
        m, l, s, shift=lambda m, m_new: m),
            "the new block's exponentials must be taken against the *new* maximum, like the rescaled old sum: "
            "against the old one they overflow when the block raises the maximum (and are infinite on a row's "
            "first block, when the old maximum is -inf)."),
    Mistake("no maximum subtracted in the block", lambda m, l, s: _step(
        m, l, s, shift=lambda m, m_new: torch.zeros_like(m_new)),
            "the block's exponentials must be taken against the running maximum, as the sum so far is: without it "
            "the terms are on another scale from the rescaled sum, and exp of a score around 1000 overflows to inf."),
    Mistake("nan when a row is still all -inf", lambda m, l, s: _step(m, l, s, guard=False),
            "right except on a row that has seen only -inf (every key masked so far): its maximum is still -inf "
            "and -inf - (-inf) is nan. Such a row must come out with m = -inf and l = 0 (nothing seen yet), not "
            "nan, which would spoil every later block of that row."),
)


def check_online_softmax_step(fn, *, verbose: bool = True) -> Result:
    r"""Check `online_softmax_step(m, l, scores) -> (m_new, l_new)`: one block of the online softmax.

    `m (R,)` the running maximum and `l (R,)` the running sum of each row (before any
    block: `-inf` and 0), `scores (R, b)` the row's next block:

    .. math:: m_\mathrm{new} = \max(m, \max_j s_j), \qquad
              l_\mathrm{new} = l\, e^{m - m_\mathrm{new}} + \sum_j e^{s_j - m_\mathrm{new}}

    and a row still all `-inf` keeps `m_new = -inf, l_new = 0` (no nan). Cases: a block that
    raises some rows' maximum and not others', the first block (m = -inf), rows of -inf,
    scores around 1000, one row and one score, a float64 stream of blocks.
    """
    gen = torch.Generator().manual_seed(10)
    m1 = torch.tensor([0.5, 2.0, -1.0, 1.0])
    l1 = torch.tensor([1.5, 2.5, 1.2, 3.0])
    s1 = torch.tensor([[1.5, -0.3, 0.2], [0.1, 1.1, -2.0], [0.4, -0.6, 1.3], [0.9, 0.2, -0.5]])  # rows 0, 2 raise m
    first = torch.randn(3, 5, generator=gen)
    s3 = torch.tensor([[_NEG_INF, _NEG_INF], [_NEG_INF, _NEG_INF], [0.3, _NEG_INF]])
    m3, l3 = torch.tensor([_NEG_INF, 1.0, _NEG_INF]), torch.tensor([0.0, 2.0, 0.0])
    big = 1000.0 + torch.randn(2, 4, generator=gen)
    m4, l4 = torch.tensor([1000.5, 999.0]), torch.tensor([1.7, 1.0])
    m6 = torch.tensor([0.3, -0.2], dtype=torch.float64)
    l6 = torch.tensor([2.0, 1.5], dtype=torch.float64)
    s6 = 3.0 * torch.randn(2, 7, generator=gen, dtype=torch.float64)

    def case(name, m, l, scores):
        return Case(name, (m, l, scores), expected=lambda: _reference_step(m, l, scores))

    cases = [
        case("4 rows, a block of 3 that raises rows 0 and 2's maximum", m1, l1, s1),
        case("the first block (m = -inf, l = 0), 3 rows of 5", torch.full((3,), _NEG_INF), torch.zeros(3), first),
        case("blocks of -inf: row 0 not started, row 1 started, row 2 half masked", m3, l3, s3),
        case("scores around 1000", m4, l4, big),
        case("one row, one score", torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([[2.0]])),
        case("float64, 2 rows, a block of 7", m6, l6, s6),
    ]
    hint = ("the new maximum covers the old one and this block; the sum so far was taken against the old maximum "
            "and must be brought to the new one before the block's terms (taken against the new maximum) are "
            "added. A row that has seen only -inf keeps maximum -inf and sum 0, with no nan.")
    return run_checks("online_softmax_step", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_ONLINE_SOFTMAX_STEP)


# ----------------------------------------------------------------- one cached decoding step


def _reference_cached_step(q, k_new, v_new, k_cache, v_cache):
    """attn_core's cached step: `KVCache.append`, then attention of the one query over all `S + 1` keys."""
    cache = KVCache(k_cache, v_cache).append(k_new, v_new)  # (B, H, S + 1, D)
    out, _ = scaled_dot_product_attention(q, cache.k, cache.v)  # (B, H, 1, D)
    return out, cache.k, cache.v


def _attend(q, k, v, *, scale=True, dim=-1):
    scores = q @ k.transpose(-2, -1)  # (B, H, 1, D) x (B, H, D, S) -> (B, H, 1, S)
    if scale:
        scores = scores / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=dim) @ v  # (B, H, 1, S) x (B, H, S, D) -> (B, H, 1, D)


def _cached(q, k_new, v_new, k_cache, v_cache, *, before=False, only_new=False, scale=True, dim=-1, axis=2,
            new_first=False, keep_old=False):
    """The cached step with one thing changed (each mistake below switches one)."""
    pair = ((k_new, k_cache), (v_new, v_cache)) if new_first else ((k_cache, k_new), (v_cache, v_new))
    k = torch.cat(pair[0], dim=axis)
    v = torch.cat(pair[1], dim=axis)
    keys, values = (k_cache, v_cache) if before else (k_new, v_new) if only_new else (k, v)
    out = _attend(q, keys, values, scale=scale, dim=dim)
    return (out, k_cache, v_cache) if keep_old else (out, k, v)


MISTAKES_CACHED_STEP = (
    Mistake("attends before appending", lambda *a: _cached(*a, before=True),
            "your query attends to the cached keys only: the new token does not see itself. In causal attention a "
            "token attends to itself and to every earlier token, so its own key and value must be in the cache "
            "before it attends (on the very first step the cache is empty and there would be nothing to read)."),
    Mistake("attends only to the new key", lambda *a: _cached(*a, only_new=True),
            "your query reads its own key and value only, so the output is just the new value. The point of the "
            "cache is that the new token attends to *all* earlier tokens too: the cached keys and values."),
    Mistake("no 1/sqrt(D) scale", lambda *a: _cached(*a, scale=False),
            "the scores of a cached step are the same scaled dot products as in the full forward pass (lesson 02): "
            "without the division by the square root of the head width they are too large and the softmax too "
            "sharp, so cached and uncached decoding would disagree."),
    Mistake("softmax over the wrong axis", lambda *a: _cached(*a, dim=-2),
            "you normalised over the query axis, which has a single entry, so every weight is 1 and the output is "
            "the sum of all values. The weights of the one query over its S + 1 keys must sum to 1: normalise "
            "along the key axis (the last one)."),
    Mistake("appended on the wrong axis", lambda *a: _cached(*a, axis=-1),
            "the caches are (B, H, S, D): a new token adds one entry along S, the third axis (the tokens), not "
            "along the head width D."),
    Mistake("appended on the wrong axis", lambda *a: _cached(*a, axis=1),
            "the caches are (B, H, S, D): a new token adds one entry along S, the third axis (the tokens), not "
            "along the heads."),
    Mistake("new token put first", lambda *a: _cached(*a, new_first=True),
            "your output is right (attention does not care about the order of its keys), but the cache holds the "
            "tokens in order of position: the newest key and value go *after* the cached ones, or the next "
            "steps (and positions, masks, RoPE) would read them in the wrong place."),
    Mistake("old caches returned", lambda *a: _cached(*a, keep_old=True),
            "your output is right, but the caches you return do not hold the new token, so the next step would "
            "not see it. Return the caches with the new key and value appended: (B, H, S + 1, D)."),
)


def check_cached_step(fn, *, verbose: bool = True) -> Result:
    r"""Check `cached_attention_step(q, k_new, v_new, k_cache, v_cache) -> (out, k_cache, v_cache)`.

    One decoding step with a key/value cache: `q, k_new, v_new (B, H, 1, D)` are the new
    token's query, key and value; `k_cache, v_cache (B, H, S, D)` those of the `S` tokens
    before. The new key and value are appended on the `S` axis, and the query attends to
    all `S + 1` of them (no mask needed: every cached token is in its past):

    .. math:: K = [K_\mathrm{cache}; k_\mathrm{new}], \quad V = [V_\mathrm{cache}; v_\mathrm{new}], \quad
              \mathrm{out} = \operatorname{softmax}\Big(\frac{q K^\top}{\sqrt{D}}\Big) V

    Returns `out (B, H, 1, D)` and the caches `(B, H, S + 1, D)`. Cases: S = 4, an empty
    cache (the first token), one cached token, a float64 batch, a single head.
    """
    gen = torch.Generator().manual_seed(11)

    def case(name, B, H, S, D, dtype=torch.float32, sharp=1.0):
        q, k_new, v_new = (sharp * torch.randn(B, H, 1, D, generator=gen, dtype=dtype) for _ in range(3))
        k_cache, v_cache = (torch.randn(B, H, S, D, generator=gen, dtype=dtype) for _ in range(2))
        args = (q, k_new, v_new, k_cache, v_cache)
        return Case(name, args, expected=lambda: _reference_cached_step(*args))

    cases = [
        case("B=2, H=3, S=4 cached tokens, D=5", 2, 3, 4, 5),
        case("the first token: empty caches (S=0), B=1, H=2, D=4", 1, 2, 0, 4),
        case("one cached token (S=1), B=2, H=1, D=3", 2, 1, 1, 3),
        case("float64, B=1, H=4, S=6, D=8, sharp scores", 1, 4, 6, 8, torch.float64, 3.0),
        case("one head of width 2, S=9", 1, 1, 9, 2),
    ]
    hint = ("the new key and value join the cache along the token axis, after the cached ones; the new query then "
            "attends (scaled dot products, softmax over the keys) to every key in the extended cache, its own "
            "included. Return the output and both extended caches.")
    return run_checks("cached_step", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_CACHED_STEP)


# ----------------------------------------------------------------- the memory of a cache


MISTAKES_CACHE_MEMORY = (
    Mistake("keys only: the 2 is missing", lambda L, H, D, T, nbytes, batch_size=1: L * batch_size * H * D * T * nbytes,
            "the cache holds a key *and* a value for every token, head and layer: two tensors of the same size."),
    Mistake("bits instead of bytes", lambda L, H, D, T, nbytes, batch_size=1: 2 * L * batch_size * H * D * T * nbytes * 8,
            "bytes_per_value is already in bytes (4 for float32, 2 for float16); multiplying by 8 counts bits."),
    Mistake("layers forgotten", lambda L, H, D, T, nbytes, batch_size=1: 2 * batch_size * H * D * T * nbytes,
            "every layer has its own attention and so its own keys and values: the cache holds one pair of "
            "tensors per layer."),
    Mistake("bytes per value forgotten", lambda L, H, D, T, nbytes, batch_size=1: 2 * L * batch_size * H * D * T,
            "you counted the numbers stored; the memory is that count times the size of one number, "
            "bytes_per_value."),
    Mistake("batch forgotten", lambda L, H, D, T, nbytes, batch_size=1: 2 * L * H * D * T * nbytes,
            "each sequence of the batch has its own keys and values: the cache grows with batch_size."),
    Mistake("key/value heads forgotten", lambda L, H, D, T, nbytes, batch_size=1: 2 * L * batch_size * D * T * nbytes,
            "each key/value head caches its own d_head numbers per token; n_kv_heads of them (fewer than the "
            "query heads with grouped-query attention, which is its saving)."),
)


def check_cache_memory(fn, *, verbose: bool = True) -> Result:
    r"""Check `kv_cache_memory(n_layers, n_kv_heads, d_head, T, bytes_per_value, batch_size=1)` -> bytes.

    .. math:: 2 \cdot \mathrm{layers} \cdot B \cdot n_\mathrm{kv\_heads} \cdot d_\mathrm{head} \cdot T
              \cdot \mathrm{bytes\ per\ value}

    compared with `kv_cache_bytes`. Cases: a small float32 model with one key/value head,
    a batch of 3 with 8 heads in float16, a 7B-class model (32 layers, 32 heads of 128) at
    4096 tokens, and the same with 8 key/value heads (grouped-query) at 128k tokens.
    """
    def case(name, *args, batch_size=None):
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        return Case(name, args, kwargs, expected=kv_cache_bytes(*args, **kwargs))

    cases = [
        case("3 layers, 1 key/value head of 16, T=10, float32 (4 bytes)", 3, 1, 16, 10, 4),
        case("a batch of 3: 4 layers, 8 heads of 64, T=128, float16", 4, 8, 64, 128, 2, batch_size=3),
        case("a 7B-class model: 32 layers, 32 heads of 128, T=4096, float16", 32, 32, 128, 4096, 2),
        case("grouped-query: 32 layers, 8 key/value heads of 128, T=131072, float16", 32, 8, 128, 131072, 2),
        case("batch_size=1 given explicitly, 5 layers, 5 heads of 5, T=5, float64", 5, 5, 5, 5, 8, batch_size=1),
    ]
    hint = ("count the numbers the cache stores (a key and a value per token, per key/value head of d_head "
            "numbers, per layer, per sequence of the batch), then multiply by the bytes one number takes.")
    return run_checks("cache_memory", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_CACHE_MEMORY)
