"""Exercises of lesson 05, positional encoding: the sinusoidal table, RoPE on a vector,
and an ALiBi bias. Each checker compares the learner's function with `attn_core`'s own.
"""

from __future__ import annotations

import torch

from ..positional.alibi import alibi_bias
from ..positional.rope import apply_rope
from ..positional.sinusoidal import sinusoidal_encoding
from ._check import Case, Result, run_checks

__all__ = ["check_positional_encoding", "check_rope_rotate", "check_alibi"]


def check_positional_encoding(fn, *, verbose: bool = True) -> Result:
    """Check `fn(n_positions, d_model, base=10000.0) -> (n_positions, d_model)` against
    `sinusoidal_encoding`: `PE[pos, 2i] = sin(pos / base^(2i/d_model))`, `PE[pos, 2i+1] = cos(...)`.

    Cases include an odd `d_model` (its last column is a lone sine), a single position,
    `d_model = 2` and another `base`.
    """

    def case(name, n_positions, d_model, base=None):
        kwargs = {} if base is None else {"base": base}
        expected = lambda: sinusoidal_encoding(n_positions, d_model, 10000.0 if base is None else base,  # noqa: E731
                                               dtype=torch.float64)
        return Case(name, (n_positions, d_model), kwargs, expected, atol=1e-4)

    cases = [
        case("2 positions, d_model=4", 2, 4),
        case("50 positions, d_model=16", 50, 16),
        case("one position, d_model=6", 1, 6),
        case("d_model=2: a single sine/cosine pair", 20, 2),
        case("odd d_model=5: the last column is a lone sine", 10, 5),
        case("base=100", 30, 8, 100.0),
    ]
    hint = ("Columns 2i and 2i+1 share one angle, pos / base**(2i / d_model): sine in the even column, "
            "cosine in the odd one (i = column // 2). Make pos a column (n_positions, 1) and the frequencies "
            "a row (1, d_model), and let broadcasting build the table.")
    return run_checks("positional_encoding", fn, cases, hint, verbose=verbose)


def check_rope_rotate(fn, *, verbose: bool = True) -> Result:
    """Check `fn(x, positions, base=10000.0)` against `apply_rope(x, positions, base, interleaved=True)`.

    `x` is `(..., T, D)`; pair `i` is dimensions `(2i, 2i+1)` and turns by
    `positions * base^(-2i/D)` radians. Cases include a single 2-D vector, positions that
    do not start at 0, leading batch and head axes, and another `base`.
    """
    g = torch.Generator().manual_seed(11)

    def case(name, shape, positions, base=None):
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        pos = torch.tensor(positions)
        kwargs = {} if base is None else {"base": base}
        expected = lambda: apply_rope(x, pos, base=10000.0 if base is None else base, interleaved=True)  # noqa: E731
        return Case(name, (x, pos), kwargs, expected)

    cases = [
        case("one 2-D vector (T=1, D=2) at position 3", (1, 2), [3]),
        case("T=5 tokens, D=8, positions 0..4", (5, 8), [0, 1, 2, 3, 4]),
        case("positions that do not start at 0: [10, 11, 12, 40]", (4, 6), [10, 11, 12, 40]),
        case("batch and heads: x of shape (2, 3, 5, 8)", (2, 3, 5, 8), [0, 1, 2, 3, 4]),
        case("base=100", (3, 8), [1, 5, 9], 100.0),
    ]
    hint = ("Pair i is (x[..., 2i], x[..., 2i+1]); its angle is positions * base**(-2i / D), shape (T, D/2). "
            "Rotate counter-clockwise: new_even = even*cos - odd*sin, new_odd = even*sin + odd*cos, then put "
            "the pairs back interleaved (stack on a new last axis and reshape to (..., T, D)).")
    return run_checks("rope_rotate", fn, cases, hint, verbose=verbose)


def check_alibi(fn, *, verbose: bool = True) -> Result:
    """Check `fn(n_heads, T, S=None) -> (n_heads, T, S)` against `alibi_bias`:
    `bias[h, i, j] = -m_h |i + S - T - j|` with the ALiBi slopes `m_h`.

    Cases include a number of heads that is not a power of two (the paper's rule for the
    slopes) and fewer queries than keys (`T < S`: the queries are the last `T` positions).
    """

    def case(name, n_heads, T, S=None):
        args = (n_heads, T) if S is None else (n_heads, T, S)
        return Case(name, args, {}, lambda: alibi_bias(n_heads, T, S, dtype=torch.float64))

    cases = [
        case("8 heads, T=4: slopes 1/2 .. 1/256", 8, 4),
        case("one head, T=3", 1, 3),
        case("4 heads, a single token T=1", 4, 1),
        case("6 heads (not a power of two), T=5", 6, 5),
        case("3 heads (not a power of two), T=4", 3, 4),
        case("T=3 queries, S=6 keys: the queries sit at positions 3, 4, 5", 2, 3, 6),
    ]
    hint = ("Slopes for n heads, n a power of two: 2**(-8*h/n) for h = 1..n. Otherwise take p, the largest power "
            "of two below n, use its p slopes, then add the 1st, 3rd, 5th, ... slopes of 2p heads until you have n. "
            "The bias is -slope * |position(i) - j|, where query i sits at position i + S - T.")
    return run_checks("alibi", fn, cases, hint, verbose=verbose)
