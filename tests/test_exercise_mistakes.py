"""Every catalogued mistake of every exercise checker is recognised by name.

The catalogues (`MISTAKES_*` next to each checker) drive the parametrisation, so a new
mistake is tested automatically; but each test runs a wrong implementation written here,
independently of the catalogue's own (loops, einsum, complex numbers, numpy ...), so the
test can fail: if the catalogue's version drifted from the mistake it names, or the
checker's cases stopped telling two mistakes apart, the learner's version would no longer
be recognised. Otter's idea: the grader tested on deliberately wrong submissions.
"""

from __future__ import annotations

import importlib
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attn_core.exercises import CHECKS, Mistake

NEG_INF = float("-inf")


def catalogue(check_name: str) -> tuple[Mistake, ...]:
    module = importlib.import_module(CHECKS[check_name].__module__)
    return getattr(module, "MISTAKES_" + check_name.removeprefix("check_").upper())


# ----------------------------------------------------------------- lesson 01


def _dots(x):
    return torch.einsum("...id,...jd->...ij", x, x)


SIMILARITY = {
    "features instead of tokens": [lambda x: torch.einsum("...ti,...tj->...ij", x, x)],
    "elementwise product": [lambda x: x ** 2],
    "cosine similarity": [lambda x: F.normalize(x, dim=-1) @ F.normalize(x, dim=-1).transpose(-2, -1)],
    "scaled by sqrt(d)": [lambda x: _dots(x) / x.size(-1) ** 0.5],
    "softmax already applied": [lambda x: F.softmax(_dots(x), dim=-1)],
    ".T on a batch": [lambda x: torch.matmul(x, x.permute(*reversed(range(x.dim()))))],
}


def _softmax_no_keepdim(x, dim=-1):
    e = torch.exp(x - torch.amax(x, dim=dim))
    return e / torch.sum(e, dim=dim)


STABLE_SOFTMAX = {
    "no maximum subtracted": [lambda x, dim=-1: x.exp() / x.exp().sum(dim, True)],
    "dim ignored": [lambda x, dim=-1: F.softmax(x, dim=-1)],
    "max used as a tensor": [lambda x, dim=-1: torch.exp(x - torch.max(x, dim, True)) / 1.0],
    "reduction without keepdim": [_softmax_no_keepdim],
    "one maximum for the whole tensor": [lambda x, dim=-1: (x - x.amax()).exp() / (x - x.amax()).exp().sum(dim, True)],
    "normalised over the whole tensor": [
        lambda x, dim=-1: torch.exp(x - x.amax()) / torch.exp(x - x.amax()).sum(),
        lambda x, dim=-1: (x - x.amax(dim, keepdim=True)).exp() / (x - x.amax(dim, keepdim=True)).exp().sum(),
    ],
}

# ----------------------------------------------------------------- lesson 02


def _qk(q, k):
    return torch.einsum("...td,...sd->...ts", q, k)


ATTENTION_SCORES = {
    "not scaled": [_qk],
    "divided by d_k instead of sqrt(d_k)": [lambda q, k: torch.matmul(q, k.transpose(-1, -2)) / k.shape[-1]],
    "scaled by sqrt(S), the number of keys": [lambda q, k: _qk(q, k) / math.sqrt(k.size(-2))],
    "scaled by sqrt(T), the number of queries": [lambda q, k: _qk(q, k) / math.sqrt(q.size(-2))],
    "multiplied by sqrt(d_k)": [lambda q, k: _qk(q, k) * math.sqrt(q.size(-1))],
    ".T on a batch": [lambda q, k: torch.matmul(q, k.permute(*reversed(range(k.dim())))) / q.size(-1) ** 0.5],
    "keys times queries": [lambda q, k: torch.einsum("...sd,...td->...st", k, q) / math.sqrt(q.size(-1))],
}


def _attend(q, k, v, divisor, dim=-1, normalise=lambda s, dim: F.softmax(s, dim=dim), returns="pair"):
    weights = normalise(_qk(q, k) / divisor, dim)
    out = torch.einsum("...ts,...sd->...td", weights, v)
    return {"pair": (out, weights), "out": out, "swapped": (weights, out)}[returns]


def _batch_dot_T(q, k):
    return torch.matmul(q, k.permute(*reversed(range(k.dim()))))  # raises: the batch axes moved


def _exp_normalise(s, dim):
    return s.exp() / s.exp().sum(dim, keepdim=True)


SDPA = {
    "not scaled": [lambda q, k, v: _attend(q, k, v, 1.0)],
    "divided by d_k instead of sqrt(d_k)": [lambda q, k, v: _attend(q, k, v, q.size(-1))],
    "scaled by sqrt(S), the number of keys": [lambda q, k, v: _attend(q, k, v, math.sqrt(k.size(-2)))],
    "scaled by sqrt(d_v), the value width": [lambda q, k, v: _attend(q, k, v, math.sqrt(v.size(-1)))],
    "softmax over the queries": [lambda q, k, v: _attend(q, k, v, math.sqrt(q.size(-1)), dim=-2)],
    "no softmax": [lambda q, k, v: _attend(q, k, v, math.sqrt(q.size(-1)), normalise=lambda s, dim: s)],
    "softmax that overflows": [lambda q, k, v: _attend(q, k, v, math.sqrt(q.size(-1)), normalise=_exp_normalise)],
    "scaled after the softmax": [lambda q, k, v: _attend(q, k, v, 1.0, normalise=lambda s, dim: F.softmax(s, dim)
                                                          / math.sqrt(q.size(-1)))],
    ".T on a batch": [lambda q, k, v: _attend(q, k.permute(*reversed(range(k.dim()))).mT, v, math.sqrt(q.size(-1)))
                      if k.dim() == 2 else _batch_dot_T(q, k)],
    "only the output returned": [lambda q, k, v: _attend(q, k, v, math.sqrt(q.size(-1)), returns="out")],
    "(weights, out) instead of (out, weights)": [
        lambda q, k, v: _attend(q, k, v, math.sqrt(q.size(-1)), returns="swapped")],
}

# ----------------------------------------------------------------- lesson 03


def _self_attend(x, w_q, w_k, w_v, divisor=None, dim=-1, keys=None, values=None, returns="pair"):
    q = torch.einsum("...td,de->...te", x, w_q)
    k = torch.einsum("...td,de->...te", x, w_k if keys is None else keys)
    v = torch.einsum("...td,de->...te", x, w_v) if values is None else values(x)
    divisor = math.sqrt(w_q.size(1)) if divisor is None else divisor
    return _attend(q, k, v, divisor, dim=dim, returns=returns)


SELF_ATTENTION = {
    "scaled by sqrt(d_model)": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, divisor=math.sqrt(x.size(-1)))],
    "scaled by sqrt(d_v)": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, divisor=math.sqrt(w_v.size(1)))],
    "not scaled": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, divisor=1)],
    "values projected with w_k": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, values=lambda x: x @ w_k)],
    "keys projected with w_q": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, keys=w_q)],
    "values not projected": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, values=lambda x: x)],
    "softmax over the queries": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, dim=-2)],
    "only the output returned": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v, returns="out")],
    ".T on a batch": [lambda x, w_q, w_k, w_v: _self_attend(x, w_q, w_k, w_v) if x.dim() == 2 else
                      _batch_dot_T(torch.matmul(x, w_q), torch.matmul(x, w_k))],
}


def _inverse(perm):
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    return inverse


UNSHUFFLE = {
    "shuffled again with perm": [lambda out, perm: torch.index_select(out, -2, perm)],
    "returned unchanged": [lambda out, perm: out.clone()],
    "rows of the first axis moved": [lambda out, perm: out[_inverse(perm)]],
    "features moved instead of tokens": [lambda out, perm: torch.index_select(out, -1, _inverse(perm))],
}


def _products(T, S, d_k, d_v):
    return T * S * d_k, T * S * d_v  # multiply-adds of q k^T and of weights v


ATTENTION_FLOPS = {
    "multiply-adds, not FLOPs": [lambda T, S, d_k, d_v: sum(_products(T, S, d_k, d_v))],
    "only q k^T counted": [lambda T, S, d_k, d_v: 2 * _products(T, S, d_k, d_v)[0]],
    "only weights v counted": [lambda T, S, d_k, d_v: 2 * _products(T, S, d_k, d_v)[1]],
    "S ignored": [lambda T, S, d_k, d_v: 2 * sum(_products(T, T, d_k, d_v))],
    "d_k used for both products": [lambda T, S, d_k, d_v: 2 * sum(_products(T, S, d_k, d_k))],
    "d_v used for both products": [lambda T, S, d_k, d_v: 2 * sum(_products(T, S, d_v, d_v))],
    "n - 1 additions per dot product": [lambda T, S, d_k, d_v: T * S * ((d_k + d_k - 1) + (d_v + d_v - 1))],
    "widths multiplied together": [lambda T, S, d_k, d_v: 2 * T * S * d_k * d_v],
}

# ----------------------------------------------------------------- lesson 04


def _heads(x, n_heads):
    B, T, d_model = x.shape
    return B, T, n_heads, d_model // n_heads


SPLIT_HEADS = {
    "reshape without transpose": [lambda x, n_heads: x.contiguous().view(*_heads(x, n_heads)[:1], n_heads,
                                                                         x.shape[1], -1)],
    "head axis not moved": [lambda x, n_heads: x.view(x.shape[0], x.shape[1], n_heads, -1)],
    "heads interleaved": [lambda x, n_heads: torch.stack([x[..., h::n_heads] for h in range(n_heads)], dim=1)],
    "n_heads and d_head swapped": [lambda x, n_heads: x.view(x.shape[0], x.shape[1], -1, n_heads).permute(0, 2, 1, 3)],
    "tokens and features swapped": [
        lambda x, n_heads: x.view(x.shape[0], x.shape[1], n_heads, -1).permute(0, 2, 1, 3).transpose(-1, -2)],
}

MERGE_HEADS = {
    "reshape without transpose": [lambda x: x.contiguous().view(x.shape[0], x.shape[2], -1)],
    ".view on a transposed tensor": [lambda x: x.permute(0, 2, 1, 3).view(x.shape[0], x.shape[2], -1)],
    "heads interleaved": [lambda x: torch.stack([x[:, :, t, :].transpose(1, 2).reshape(x.shape[0], -1)
                                                 for t in range(x.shape[2])], dim=1)],
    "heads stacked along the tokens": [lambda x: torch.cat(list(x.unbind(1)), dim=1)],
    "only one head kept": [lambda x: x[:, 0, :, :]],
}

COUNT_PARAMETERS = {
    "a full-size copy per head": [lambda d_model, n_heads, bias=True: sum(
        4 * (d_model * d_model + (d_model if bias else 0)) for _ in range(n_heads))],
    "d_head x d_head weights per head": [lambda d_model, n_heads, bias=True:
                                         n_heads * 4 * (d_model // n_heads) ** 2 + bias * 4 * d_model],
    "output projection forgotten": [lambda d_model, n_heads, bias=True: 3 * (d_model ** 2 + bias * d_model)],
    "biases forgotten": [lambda d_model, n_heads, bias=True: 4 * d_model ** 2],
    "bias flag ignored": [lambda d_model, n_heads, bias=True: 4 * (d_model ** 2 + d_model)],
    "one bias per projection": [lambda d_model, n_heads, bias=True: 4 * d_model ** 2 + 4 * bias],
}

# ----------------------------------------------------------------- lesson 05


def _pe_loops(n_positions, d_model, base=10000.0, *, even=math.sin, odd=math.cos, exponent=lambda c: c - c % 2,
              divide=True):
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    for pos in range(n_positions):
        for c in range(d_model):
            freq = base ** (exponent(c) / d_model)
            angle = pos / freq if divide else pos * freq
            table[pos, c] = even(angle) if c % 2 == 0 else odd(angle)
    return table


def _pe_halves(n_positions, d_model, base=10000.0):
    half = (d_model + 1) // 2
    table = np.zeros((n_positions, d_model))
    for pos in range(n_positions):
        for c in range(d_model):
            i = c if c < half else c - half
            table[pos, c] = (math.sin if c < half else math.cos)(pos / base ** (2 * i / d_model))
    return torch.from_numpy(table)


POSITIONAL_ENCODING = {
    "sine and cosine swapped": [lambda n, d, base=10000.0: _pe_loops(n, d, base, even=math.cos, odd=math.sin)],
    "exponent from the column, not the pair": [lambda n, d, base=10000.0: _pe_loops(n, d, base, exponent=lambda c: c)],
    "exponent i / d_model instead of 2i / d_model": [
        lambda n, d, base=10000.0: _pe_loops(n, d, base, exponent=lambda c: (c - c % 2) / 2)],
    "every column its own frequency": [lambda n, d, base=10000.0: _pe_loops(n, d, base, exponent=lambda c: 2 * c)],
    "multiplied instead of divided": [lambda n, d, base=10000.0: _pe_loops(n, d, base, divide=False)],
    "sines and cosines in two halves": [_pe_halves],
    "base ignored": [lambda n, d, base=10000.0: _pe_loops(n, d)],
    "odd d_model loses its last column": [lambda n, d, base=10000.0: _pe_loops(n, d - d % 2, base) if d % 2 == 0 else
                                          _pe_loops(n, d, base)[:, :-1]],
}


def _rope_complex(x, positions, base=10000.0, *, layout="interleaved", sign=1, from_zero=False, two=2, flip=False):
    """RoPE through complex numbers: pair i as the complex number a + ib, times e^(i angle)."""
    D = x.shape[-1]
    theta = torch.tensor([base ** (-two * i / D) for i in range(D // 2)], dtype=torch.float64)
    theta = theta.flip(0) if flip else theta
    pos = torch.arange(x.shape[-2], dtype=torch.float64) if from_zero else torch.as_tensor(positions).double()
    turn = torch.polar(torch.ones(len(pos), D // 2, dtype=torch.float64), sign * pos[:, None] * theta)  # (T, D/2)
    if layout == "half":
        z = torch.complex(x[..., : D // 2].double(), x[..., D // 2:].double()) * turn
        return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], D // 2, 2).contiguous()) * turn
    return torch.view_as_real(z).reshape(x.shape).to(x.dtype)


ROPE_ROTATE = {
    "half-split pairs instead of interleaved": [lambda x, p, base=10000.0: _rope_complex(x, p, base, layout="half")],
    "rotated clockwise": [lambda x, p, base=10000.0: _rope_complex(x, p, base, sign=-1)],
    "positions ignored": [lambda x, p, base=10000.0: _rope_complex(x, p, base, from_zero=True)],
    "frequency exponent i / D instead of 2i / D": [lambda x, p, base=10000.0: _rope_complex(x, p, base, two=1)],
    "frequencies in reverse order": [lambda x, p, base=10000.0: _rope_complex(x, p, base, flip=True)],
    "base ignored": [lambda x, p, base=10000.0: _rope_complex(x, p)],
}


def _alibi_loops(n_heads, T, S=None, *, slopes, sign=-1.0, aligned=True, absolute=True):
    S = T if S is None else S
    m = slopes(n_heads)
    bias = torch.zeros(n_heads, T, S, dtype=torch.float64)
    for h in range(n_heads):
        for i in range(T):
            for j in range(S):
                offset = (i + (S - T if aligned else 0)) - j
                bias[h, i, j] = sign * m[h] * (abs(offset) if absolute else offset)
    return bias


def _paper(n, complete="every other"):
    p = 1 << (n.bit_length() - 1)  # the largest power of two <= n
    ratio, half_ratio = 2 ** (-8 / p), 2 ** (-8 / (2 * p))
    extra = [half_ratio ** (2 * k + 1) for k in range(n - p)] if complete == "every other" else \
        [half_ratio ** (k + 1) for k in range(n - p)]
    return [ratio ** (h + 1) for h in range(p)] + extra


ALIBI = {
    "geometric slopes for every number of heads": [
        lambda n, T, S=None: _alibi_loops(n, T, S, slopes=lambda n: [(2 ** (-8 / n)) ** (h + 1) for h in range(n)])],
    "slopes 1/2, 1/4, ... whatever the number of heads": [
        lambda n, T, S=None: _alibi_loops(n, T, S, slopes=lambda n: [0.5 ** (h + 1) for h in range(n)])],
    "non-power-of-two heads completed with the first slopes": [
        lambda n, T, S=None: _alibi_loops(n, T, S, slopes=lambda n: _paper(n, complete="first"))],
    "slopes in reverse order": [lambda n, T, S=None: _alibi_loops(n, T, S, slopes=lambda n: _paper(n)[::-1])],
    "positive bias": [lambda n, T, S=None: _alibi_loops(n, T, S, slopes=_paper, sign=1.0)],
    "signed distance": [lambda n, T, S=None: _alibi_loops(n, T, S, slopes=_paper, absolute=False)],
    "queries not aligned to the end": [lambda n, T, S=None: _alibi_loops(n, T, S, slopes=_paper, aligned=False)],
}

# ----------------------------------------------------------------- lesson 06


def _ones(T, S):
    return torch.ones(T, T if S is None else S, dtype=torch.bool)


def _offset(T, S):
    return 0 if S is None else S - T


BUILD_CAUSAL_MASK = {
    "aligned to the top left": [lambda T, S=None: torch.tril(_ones(T, S))],
    "diagonal left out": [lambda T, S=None: _ones(T, S).tril(diagonal=_offset(T, S) - 1)],
    "one future key allowed": [lambda T, S=None: torch.ones(T, T if S is None else S).tril(_offset(T, S) + 1).bool()],
    "mask inverted (True = blocked)": [lambda T, S=None: _ones(T, S).triu(diagonal=_offset(T, S) + 1)],
    "the future allowed, the past blocked": [lambda T, S=None: _ones(T, S).triu(diagonal=_offset(T, S))],
    "S ignored": [lambda T, S=None: torch.tril(torch.ones(T, T)).bool()],
    "an additive bias instead of a mask": [
        lambda T, S=None: torch.full((T, T if S is None else S), NEG_INF).triu(_offset(T, S) + 1)],
}


def _pad_loops(lengths, S, real=lambda j, n: j < n):
    return torch.tensor([[real(j, int(n)) for j in range(S)] for n in lengths])  # (B, S)


BUILD_PADDING_MASK = {
    "off by one": [lambda lengths, S: _pad_loops(lengths, S, lambda j, n: j <= n)[:, None, None, :]],
    "mask inverted (True = padding)": [lambda lengths, S: ~_pad_loops(lengths, S)[:, None, None, :]],
    "no head and query axes": [lambda lengths, S: _pad_loops(lengths, S)],
    "one singleton axis missing": [lambda lengths, S: _pad_loops(lengths, S).unsqueeze(1)],
    "queries masked instead of keys": [lambda lengths, S: _pad_loops(lengths, S).unsqueeze(1).unsqueeze(-1)],
}


def _blocked(scores, mask, fill=NEG_INF):
    return torch.where(mask, scores, torch.full_like(scores, fill))


def _overflowing(scores, mask, clean=False):
    e = torch.where(mask, scores.exp(), 0.0)
    return torch.where(mask, e / e.sum(-1, keepdim=True), 0.0) if clean else e / e.sum(-1, keepdim=True)


MASKED_SOFTMAX = {
    "mask ignored": [lambda scores, mask: F.softmax(scores, dim=-1)],
    "mask inverted": [lambda scores, mask: F.softmax(_blocked(scores, ~mask), dim=-1),
                      lambda scores, mask: F.softmax(_blocked(scores, ~mask), dim=-1).masked_fill(mask, 0.0)],
    "scores multiplied by the mask": [lambda scores, mask: F.softmax(torch.where(mask, scores, 0.0), dim=-1)],
    "zeroed after the softmax": [lambda scores, mask: F.softmax(scores, dim=-1).masked_fill(~mask, 0.0)],
    "nan in fully masked rows": [lambda scores, mask: F.softmax(_blocked(scores, mask), dim=-1)],
    "-1e9 instead of -inf": [lambda scores, mask: F.softmax(_blocked(scores, mask, -1e9), dim=-1)],
    "softmax over the queries": [lambda scores, mask: F.softmax(_blocked(scores, mask), dim=-2)],
    "softmax that overflows": [lambda scores, mask: _overflowing(scores, mask, clean=True), _overflowing],
}

# ----------------------------------------------------------------- lesson 07 (written with numpy and loops)


def _qk_from(pairs, V, T, strength):
    qk = np.zeros((2 * V + T, 2 * V + T), dtype=np.float64)
    for row, col in pairs:
        qk[row, col] = strength
    return torch.from_numpy(qk)


def _offset_pairs(V, T, back, base=None):
    base = V if base is None else base
    return [(base + t, base + t - back) for t in range(T) if 0 <= t - back < T]


PREVIOUS_TOKEN_QK = {
    "next token instead of previous": [lambda V, T, strength: _qk_from(_offset_pairs(V, T, 1), V, T, strength).T],
    "itself instead of the previous token": [lambda V, T, strength: _qk_from(_offset_pairs(V, T, 0), V, T, strength)],
    "two tokens back": [lambda V, T, strength: _qk_from(_offset_pairs(V, T, 2), V, T, strength)],
    "the token block instead of the position block": [
        lambda V, T, strength: _qk_from(_offset_pairs(V, T, 1, base=0), V, T, strength)],
    "the strength left out": [lambda V, T, strength: _qk_from(_offset_pairs(V, T, 1), V, T, 1)],
}

INDUCTION_QK = {
    "the key's own token": [lambda V, T, strength: torch.block_diag(strength * torch.eye(V), torch.zeros(T + V, T + V))],
    "query and key sides swapped": [lambda V, T, strength: _qk_from([(V + T + v, v) for v in range(V)], V, T, strength)],
    "previous blocks on both sides": [
        lambda V, T, strength: torch.block_diag(torch.zeros(V + T, V + T), strength * torch.eye(V))],
    "the strength left out": [lambda V, T, strength: _qk_from([(v, V + T + v) for v in range(V)], V, T, 1.0)],
}

# ----------------------------------------------------------------- lesson 10 (written row by row with math, and einsum)


def _online_rows(m, l, scores, *, rescale="down", new_max="running", shift="new", guard=True):
    """One online-softmax block, row by row in plain Python floats; one switch per mistake."""
    m_out, l_out = [], []
    for m_r, l_r, row in zip(m.tolist(), l.tolist(), scores.tolist()):
        top = max(row)
        m_new = max(m_r, top) if new_max == "running" else top
        if guard and m_new == -math.inf:  # nothing but -inf so far
            m_out.append(m_new)
            l_out.append(l_r)
            continue
        against = {"new": m_new, "old": m_r, "zero": 0.0}[shift]
        try:
            factor = {"down": math.exp(m_r - m_new), "up": math.exp(m_new - m_r), "none": 1.0}[rescale]
            block = sum(math.exp(x - against) if x - against < 700 else math.inf for x in row)
        except ValueError:  # math.exp(nan)
            factor, block = math.nan, math.nan
        if math.isnan(m_r - m_new):
            factor = math.nan
        m_out.append(m_new)
        l_out.append(l_r * factor + block)
    return torch.tensor(m_out, dtype=m.dtype), torch.tensor(l_out, dtype=l.dtype)


ONLINE_SOFTMAX_STEP = {
    "l not rescaled": [lambda m, l, s: _online_rows(m, l, s, rescale="none")],
    "rescaled by exp(m_new - m_old): wrong sign": [lambda m, l, s: _online_rows(m, l, s, rescale="up")],
    "m_new is the block's maximum only": [lambda m, l, s: _online_rows(m, l, s, new_max="block")],
    "the block exponentiated against the old maximum": [lambda m, l, s: _online_rows(m, l, s, shift="old")],
    "no maximum subtracted in the block": [lambda m, l, s: _online_rows(m, l, s, shift="zero")],
    "nan when a row is still all -inf": [lambda m, l, s: _online_rows(m, l, s, guard=False)],
}


def _step_einsum(q, k, v, *, scale=True, axis="s"):
    scores = torch.einsum("bhtd,bhsd->bhts", q, k) / (q.size(-1) ** 0.5 if scale else 1.0)
    weights = F.softmax(scores, dim=-1 if axis == "s" else 2)
    return torch.einsum("bhts,bhsd->bhtd", weights, v)


def _stack(cache, new, first=False):
    return torch.concat([new, cache] if first else [cache, new], dim=-2)


CACHED_STEP = {
    "attends before appending": [lambda q, kn, vn, kc, vc: (_step_einsum(q, kc, vc), _stack(kc, kn), _stack(vc, vn))],
    "attends only to the new key": [lambda q, kn, vn, kc, vc: (vn.clone(), _stack(kc, kn), _stack(vc, vn))],
    "no 1/sqrt(D) scale": [lambda q, kn, vn, kc, vc: (_step_einsum(q, _stack(kc, kn), _stack(vc, vn), scale=False),
                                                      _stack(kc, kn), _stack(vc, vn))],
    "softmax over the wrong axis": [lambda q, kn, vn, kc, vc: (_step_einsum(q, _stack(kc, kn), _stack(vc, vn), axis="t"),
                                                               _stack(kc, kn), _stack(vc, vn))],
    "appended on the wrong axis": [
        lambda q, kn, vn, kc, vc: (lambda k, v: (_step_einsum(q, k, v), k, v))(torch.concat([kc, kn], dim=3),
                                                                               torch.concat([vc, vn], dim=3)),
        lambda q, kn, vn, kc, vc: (lambda k, v: (_step_einsum(q, k, v), k, v))(torch.concat([kc, kn], dim=1),
                                                                               torch.concat([vc, vn], dim=1)),
    ],
    "new token put first": [lambda q, kn, vn, kc, vc: (_step_einsum(q, _stack(kc, kn), _stack(vc, vn)),
                                                       _stack(kc, kn, first=True), _stack(vc, vn, first=True))],
    "old caches returned": [lambda q, kn, vn, kc, vc: (_step_einsum(q, _stack(kc, kn), _stack(vc, vn)), kc, vc)],
}


def _cache_numbers(n_layers, n_kv_heads, d_head, T, batch_size, *, keys_and_values=2):
    return math.prod([keys_and_values, n_layers, n_kv_heads, d_head, T, batch_size])


CACHE_MEMORY = {
    "keys only: the 2 is missing": [lambda L, H, D, T, b, batch_size=1: _cache_numbers(L, H, D, T, batch_size, keys_and_values=1) * b],
    "bits instead of bytes": [lambda L, H, D, T, b, batch_size=1: _cache_numbers(L, H, D, T, batch_size) * b * 8],
    "layers forgotten": [lambda L, H, D, T, b, batch_size=1: _cache_numbers(1, H, D, T, batch_size) * b],
    "bytes per value forgotten": [lambda L, H, D, T, b, batch_size=1: _cache_numbers(L, H, D, T, batch_size)],
    "batch forgotten": [lambda L, H, D, T, b, batch_size=1: _cache_numbers(L, H, D, T, 1) * b],
    "key/value heads forgotten": [lambda L, H, D, T, b, batch_size=1: _cache_numbers(L, 1, D, T, batch_size) * b],
}

WRONG = {
    "check_online_softmax_step": ONLINE_SOFTMAX_STEP,
    "check_cached_step": CACHED_STEP,
    "check_cache_memory": CACHE_MEMORY,
    "check_previous_token_qk": PREVIOUS_TOKEN_QK,
    "check_induction_qk": INDUCTION_QK,
    "check_similarity_matrix": SIMILARITY,
    "check_stable_softmax": STABLE_SOFTMAX,
    "check_attention_scores": ATTENTION_SCORES,
    "check_scaled_dot_product_attention": SDPA,
    "check_self_attention": SELF_ATTENTION,
    "check_unshuffle": UNSHUFFLE,
    "check_attention_flops": ATTENTION_FLOPS,
    "check_split_heads": SPLIT_HEADS,
    "check_merge_heads": MERGE_HEADS,
    "check_count_parameters": COUNT_PARAMETERS,
    "check_positional_encoding": POSITIONAL_ENCODING,
    "check_rope_rotate": ROPE_ROTATE,
    "check_alibi": ALIBI,
    "check_build_causal_mask": BUILD_CAUSAL_MASK,
    "check_build_padding_mask": BUILD_PADDING_MASK,
    "check_masked_softmax": MASKED_SOFTMAX,
}


def _entries():
    """(check name, mistake name, which variant of that name) for every catalogue entry."""
    for check_name in sorted(CHECKS):
        seen: dict[str, int] = {}
        for mistake in catalogue(check_name):
            n = seen.get(mistake.name, 0)
            seen[mistake.name] = n + 1
            yield pytest.param(check_name, mistake.name, n, id=f"{check_name[6:]}: {mistake.name} #{n}")


ENTRIES = list(_entries())


# ----------------------------------------------------------------- the tests


def test_every_checker_has_a_catalogue_of_at_least_three_mistakes():
    for check_name in CHECKS:
        mistakes = catalogue(check_name)
        assert len({m.name for m in mistakes}) >= 3, check_name
        assert all(isinstance(m, Mistake) and m.message and callable(m.fn) for m in mistakes)


def test_every_test_implementation_belongs_to_a_catalogued_mistake():
    """No stale names here: each wrong implementation of this file matches a catalogue entry."""
    assert set(WRONG) == set(CHECKS)
    for check_name, wrong in WRONG.items():
        names = [m.name for m in catalogue(check_name)]
        for name, impls in wrong.items():
            assert names.count(name) == len(impls), (check_name, name)


@pytest.mark.parametrize("check_name, name, variant", ENTRIES)
def test_an_independent_wrong_implementation_is_recognised(check_name, name, variant, capsys):
    impls = WRONG[check_name].get(name)
    assert impls and len(impls) > variant, f"write an independent wrong implementation of {name!r} in this file"
    result = CHECKS[check_name](impls[variant])
    out = capsys.readouterr().out
    assert result.attempted and not result.passed
    assert result.mistake == name, (result, out)
    assert f"Likely mistake, {name}: " in out and "Hint:" not in out
    assert repr(result).endswith(f": {name}>")


@pytest.mark.parametrize("check_name, name, variant", ENTRIES)
def test_the_catalogue_version_is_recognised_as_itself(check_name, name, variant):
    mistake = [m for m in catalogue(check_name) if m.name == name][variant]
    result = CHECKS[check_name](mistake.fn, verbose=False)
    assert not result.passed and result.mistake == name, result


@pytest.mark.parametrize("check_name", sorted(CHECKS))
def test_mistake_messages_and_hints_do_not_show_solution_code(check_name, capsys):
    """Name the mistake, not the answer: no code of the solution in what the learner reads."""
    code = re.compile(r"torch\.(?!bool)|\.transpose\(|\.permute\(|masked_fill|argsort|keepdim=True|\.mT|\.reshape\(|"
                      r"\.view\(|\.max\(|math\.sqrt|\*\*\s*0\.5|x @|q @|weights @")
    for mistake in catalogue(check_name):
        assert not code.search(mistake.message), (mistake.name, code.search(mistake.message))

    def wrong_but_unknown(*args, **kwargs):
        raise IndexError("some bug of the learner's")

    CHECKS[check_name](wrong_but_unknown)
    hint = capsys.readouterr().out.split("Hint: ", 1)[1]
    assert not code.search(hint), (check_name, code.search(hint))


def test_a_wrong_answer_that_matches_no_mistake_gets_the_hint(capsys):
    result = CHECKS["check_similarity_matrix"](lambda x: _dots(x) + 1.0)
    out = capsys.readouterr().out
    assert result.mistake is None and result.verdict == "wrong values" and "Hint:" in out
    assert "Likely mistake" not in out


def test_a_mistake_right_on_the_failing_case_is_not_named(capsys):
    """A float mask with the right values fails on dtype; 'aligned to the top left' gives the
    same values when S == T and must not be blamed for it."""
    result = CHECKS["check_build_causal_mask"](lambda T, S=None: _ones(T, S).tril(_offset(T, S)).float())
    assert result.verdict == "wrong dtype" and result.mistake is None
    assert "the values are right" in result.message
