"""Exercises of lesson 05, positional encoding: the sinusoidal table, RoPE on a vector,
and an ALiBi bias. Each checker compares the learner's function with `attn_core`'s own.
"""

from __future__ import annotations

import math

import torch

from ..positional.alibi import alibi_bias
from ..positional.rope import apply_rope
from ..positional.sinusoidal import sinusoidal_encoding
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_positional_encoding", "check_rope_rotate", "check_alibi"]


def _table(exponent=lambda c: 2 * (c // 2), first=torch.sin, second=torch.cos, divide=True, base_used=True,
           layout="interleaved"):
    """A sinusoidal table with one chosen mistake."""
    def wrong(n_positions, d_model, base=10000.0):
        base = base if base_used else 10000.0
        pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (P, 1)
        col = torch.arange(d_model)  # (d_model,)
        if layout == "half":  # sines in the first half, cosines in the second
            half = (d_model + 1) // 2
            angles = pos / base ** (2 * torch.arange(half) / d_model)  # (P, half)
            return torch.cat([first(angles), second(angles)], dim=-1)[:, :d_model]
        if layout == "pairs only":  # d_model // 2 pairs: one column short for an odd d_model
            angles = pos / base ** (2 * torch.arange(d_model // 2) / d_model)  # (P, d/2)
            return torch.stack([first(angles), second(angles)], dim=-1).flatten(-2)  # (P, 2 * (d // 2))
        freq = base ** (exponent(col) / d_model)  # (d_model,)
        angles = pos / freq if divide else pos * freq  # (P, d_model)
        return torch.where(col % 2 == 0, first(angles), second(angles))
    return wrong


MISTAKES_POSITIONAL_ENCODING = (
    Mistake("sine and cosine swapped", _table(first=torch.cos, second=torch.sin),
            "your even columns hold cosines and the odd ones sines; the convention is the other way round (at "
            "position 0 the even columns are 0)."),
    Mistake("exponent from the column, not the pair", _table(exponent=lambda c: c),
            "you used the column number c in base ** (c / d_model). Columns 2i and 2i + 1 form a pair and share "
            "one frequency, whose exponent is 2i / d_model."),
    Mistake("exponent i / d_model instead of 2i / d_model", _table(exponent=lambda c: c // 2),
            "your frequencies fall half as fast as they should: the exponent of pair i is 2i / d_model, so the "
            "last pair's frequency is close to 1 / base."),
    Mistake("every column its own frequency", _table(exponent=lambda c: 2 * c),
            "you used 2 * column in the exponent, so the sine and cosine of a pair no longer share a frequency "
            "(and the frequencies fall twice as fast). The exponent is 2i / d_model with i = column // 2."),
    Mistake("multiplied instead of divided", _table(divide=False),
            "you multiplied the position by base ** (2i / d_model): the angles grow enormous instead of the "
            "frequencies falling from 1 radian per position down towards 1 / base."),
    Mistake("sines and cosines in two halves", _table(layout="half"),
            "you put all sines first and all cosines after. In this table they alternate: sine in column 2i, "
            "cosine in column 2i + 1."),
    Mistake("base ignored", _table(base_used=False),
            "your table is right for base=10000 but ignores the `base` argument."),
    Mistake("odd d_model loses its last column", _table(layout="pairs only"),
            "you built d_model // 2 sine/cosine pairs, one column short when d_model is odd. The table has exactly "
            "d_model columns; an odd d_model ends with a lone sine."),
)


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
    hint = ("columns 2i and 2i + 1 share one frequency, which falls from 1 radian per position towards 1 / base "
            "as i grows; one column of the pair is a sine, the other a cosine. Check your table at position 0 "
            "and position 1 by hand.")
    return run_checks("positional_encoding", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_POSITIONAL_ENCODING)


def _rope(layout="interleaved", sign=1.0, positions_used=True, exponent=2.0, base_used=True, reverse=False):
    """A RoPE rotation with one chosen mistake."""
    def wrong(x, positions, base=10000.0):
        base = base if base_used else 10000.0
        D = x.shape[-1]
        theta = base ** (-exponent * torch.arange(D // 2, dtype=torch.float64) / D)  # (D/2,)
        if reverse:
            theta = theta.flip(0)
        pos = torch.as_tensor(positions, dtype=torch.float64) if positions_used else \
            torch.arange(x.shape[-2], dtype=torch.float64)
        angles = sign * pos[..., None] * theta  # (T, 1) x (D/2,) -> (T, D/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        if layout == "half":  # GPT-NeoX: pair i is (x[i], x[i + D/2])
            a, b = x[..., : D // 2], x[..., D // 2:]
            return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
        a, b = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    return wrong


MISTAKES_ROPE_ROTATE = (
    Mistake("half-split pairs instead of interleaved", _rope(layout="half"),
            "you paired dimension i with i + D/2 (the GPT-NeoX / Llama layout). This exercise uses the original "
            "interleaved layout: pair i is dimensions (2i, 2i + 1). Both are valid RoPEs, but they are different "
            "functions and weights trained with one do not work with the other."),
    Mistake("rotated clockwise", _rope(sign=-1.0),
            "your rotation turns the wrong way (by minus the angle). Counter-clockwise by a positive angle takes "
            "(1, 0) to (cos a, sin a)."),
    Mistake("positions ignored", _rope(positions_used=False),
            "you rotated token t by t (0, 1, 2, ...) instead of by the `positions` you were given (with a cache "
            "the new tokens do not start at 0)."),
    Mistake("frequency exponent i / D instead of 2i / D", _rope(exponent=1.0),
            "your frequencies fall half as fast as they should: pair i turns by base ** (-2i / D) radians per "
            "position, with i counting pairs."),
    Mistake("frequencies in reverse order", _rope(reverse=True),
            "the first pair must turn fastest (1 radian per position) and the last slowest; yours are reversed."),
    Mistake("base ignored", _rope(base_used=False),
            "right for base=10000, but the `base` argument is ignored."),
)


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
    hint = ("each pair of dimensions (2i, 2i + 1) is a point in a plane, turned counter-clockwise by an angle that "
            "grows with the token's position and falls with i; the turned pair goes back to dimensions 2i and 2i + 1. "
            "Leading batch and head axes must survive.")
    return run_checks("rope_rotate", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_ROPE_ROTATE)


def _powers(n):
    return [2 ** (-8 * h / n) for h in range(1, n + 1)]


def _paper_slopes(n):
    p = 2 ** math.floor(math.log2(n))
    return _powers(p) + _powers(2 * p)[0::2][: n - p]


def _alibi(slopes=_paper_slopes, sign=-1.0, aligned=True, distance=lambda d: d.abs()):
    """An ALiBi bias with one chosen mistake."""
    def wrong(n_heads, T, S=None):
        S = T if S is None else S
        i = torch.arange(T, dtype=torch.float64)[:, None] + ((S - T) if aligned else 0)  # (T, 1)
        j = torch.arange(S, dtype=torch.float64)[None, :]  # (1, S)
        m = torch.tensor(slopes(n_heads), dtype=torch.float64)  # (H,)
        return sign * m[:, None, None] * distance(i - j)  # (H, 1, 1) x (T, S) -> (H, T, S)
    return wrong


MISTAKES_ALIBI = (
    Mistake("geometric slopes for every number of heads", _alibi(slopes=_powers),
            "2 ** (-8h / n) is the rule only when n is a power of two. For other n the paper takes the slopes of "
            "the largest power of two below n and completes them with every other slope of twice that many heads."),
    Mistake("slopes 1/2, 1/4, ... whatever the number of heads", _alibi(slopes=lambda n: [2.0 ** -h for h in range(1, n + 1)]),
            "your slopes do not depend on the number of heads. They always start at 2 ** (-8 / n) and fall by that "
            "same factor from head to head (for n a power of two)."),
    Mistake("non-power-of-two heads completed with the first slopes", _alibi(
        slopes=lambda n: _powers(2 ** math.floor(math.log2(n))) + _powers(2 * 2 ** math.floor(math.log2(n)))[: n - 2 ** math.floor(math.log2(n))]),
            "to complete a non-power-of-two count the paper takes *every other* slope of twice as many heads (the "
            "1st, 3rd, 5th ...), not the first ones, so the new slopes fall between the existing ones."),
    Mistake("slopes in reverse order", _alibi(slopes=lambda n: _paper_slopes(n)[::-1]),
            "head 0 must have the steepest slope and the last head the gentlest; yours are reversed."),
    Mistake("positive bias", _alibi(sign=1.0),
            "your bias rewards distance. ALiBi *penalises* far keys: the bias is minus slope times distance, never "
            "positive."),
    Mistake("signed distance", _alibi(distance=lambda d: d),
            "you used the signed offset i - j, so keys on one side get a positive bias. The penalty grows with the "
            "distance |i - j| on both sides."),
    Mistake("queries not aligned to the end", _alibi(aligned=False),
            "with fewer queries than keys (T < S, as with a cache) the T queries are the *last* T positions: query "
            "i sits at position i + S - T, not at i."),
)


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
    hint = ("each head has its own slope (see the paper's rule, which treats numbers of heads that are not powers "
            "of two specially); the bias penalises the distance between query and key positions, and with T < S "
            "the queries are the last T positions.")
    return run_checks("alibi", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_ALIBI)
