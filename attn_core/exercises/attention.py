"""Exercises of lesson 01 (attention as relevance): a dot-product similarity matrix and a
numerically stable softmax, checked against `attn_core`.

Each checker has a catalogue of typical mistakes (`MISTAKES_*`): when the learner's output
matches one, the checker names it and says why it is wrong, without showing the solution.
"""

from __future__ import annotations

import math

import torch

from ..attention import softmax
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_similarity_matrix", "check_stable_softmax"]


def _toy_sentence() -> torch.Tensor:
    from ..toy import toy_embed

    return toy_embed("cat")[1]  # (10, 9)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)  # (..., T, d), each row of length 1


MISTAKES_SIMILARITY_MATRIX = (
    Mistake("features instead of tokens", lambda x: x.mT @ x,
            "your matrix has one row per *feature* (d x d): it compares the feature columns with each other. "
            "Entry [i, j] must compare token i with token j, so the result is T x T."),
    Mistake("elementwise product", lambda x: x * x,
            "you multiplied x by itself entry by entry, which keeps the shape (T, d). A dot product multiplies "
            "two vectors entry by entry *and sums*, one number per pair of tokens."),
    Mistake("cosine similarity", lambda x: _unit(x) @ _unit(x).mT,
            "you divided by the vectors' lengths: that is the cosine similarity. The exercise asks for the raw dot "
            "product, whose size also grows with the vectors' lengths."),
    Mistake("scaled by sqrt(d)", lambda x: x @ x.mT / math.sqrt(x.shape[-1]),
            "you divided by sqrt(d): that scaling belongs to scaled dot-product attention (lesson 02), not to the "
            "plain similarity matrix."),
    Mistake(".T on a batch", lambda x: x @ x.T,
            "on a 3-D tensor (B, T, d), .T reverses *all* the axes, to (d, T, B), so the batch axis moves too and "
            "the product fails. Only the last two axes (tokens and features) should swap."),
    Mistake("softmax already applied", lambda x: torch.softmax(x @ x.mT, dim=-1),
            "your rows sum to 1: you applied a softmax. The similarity matrix is the raw dot products; the softmax "
            "comes in the next step."),
)


def check_similarity_matrix(fn, *, verbose: bool = True) -> Result:
    """Check `similarity_matrix(x)`: every token's dot product with every token.

    `x (..., T, d)` -> `(..., T, T)` with entry `[i, j] = x_i . x_j`. Cases: the toy
    sentence, T != d, one token, and a batch of sentences `(B, T, d)`.
    """
    gen = torch.Generator().manual_seed(1)
    cases = []
    for name, x in (("the toy sentence (10 words x 9 features)", _toy_sentence()),
                    ("4 tokens of width 6", torch.randn(4, 6, generator=gen)),
                    ("a single token", torch.randn(1, 5, generator=gen)),
                    ("a batch of 2 sentences (2, 5, 3)", torch.randn(2, 5, 3, generator=gen))):
        cases.append(Case(name, (x,), expected=x @ x.mT))  # (..., T, d) x (..., d, T) -> (..., T, T)
    return run_checks(
        "similarity_matrix", fn, cases, verbose=verbose, mistakes=MISTAKES_SIMILARITY_MATRIX,
        hint="entry [i, j] is the dot product of token i's vector with token j's: one row and one column per token. "
             "A leading batch axis (B, T, d) must survive: transpose only the last two axes.",
    )


def _naive(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)


def _no_keepdim(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim).values)  # (T, S) - (T,) lines up with the *last* axis
    return e / e.sum(dim=dim)


def _global_max(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum(dim=dim, keepdim=True)


def _total(x, dim=-1, per_slice_max=False):
    e = torch.exp(x - (x.max(dim=dim, keepdim=True).values if per_slice_max else x.max()))
    return e / e.sum()


_WHOLE = ("you divided by the sum of *all* exponentials, so the whole tensor sums to 1 instead of each slice "
          "along `dim`.")

MISTAKES_STABLE_SOFTMAX = (
    Mistake("no maximum subtracted", _naive,
            "exp(1000) overflows to inf in floating point and inf / inf is nan (and exp(-1000) underflows to 0, "
            "giving 0 / 0). Softmax is unchanged when one constant is subtracted from every logit along `dim`: "
            "choose the constant so that no exponent is large."),
    Mistake("max used as a tensor", lambda x, dim=-1: x - x.max(dim=dim, keepdim=True),
            "max along an axis returns a pair (values, indices), not a tensor; subtract the values only."),
    Mistake("dim ignored", lambda x, dim=-1: _naive(x - x.max(dim=-1, keepdim=True).values, -1),
            "your function always normalises the last axis, whatever `dim` it is given: with dim=0 the *columns* "
            "must sum to 1."),
    Mistake("reduction without keepdim", _no_keepdim,
            "the maximum or the sum along `dim` lost that axis, so broadcasting lined it up with the wrong axis "
            "(row i's value was applied to column i). Keep the reduced axis with size 1."),
    Mistake("one maximum for the whole tensor", _global_max,
            "you subtracted the maximum of the whole tensor. A row whose logits are all far below it underflows to "
            "exp(...) = 0 everywhere and then 0 / 0 = nan. Each row (each slice along `dim`) needs its own maximum."),
    Mistake("normalised over the whole tensor", _total, _WHOLE),
    Mistake("normalised over the whole tensor", lambda x, dim=-1: _total(x, dim, per_slice_max=True), _WHOLE),
)


def check_stable_softmax(fn, *, verbose: bool = True) -> Result:
    """Check `stable_softmax(x, dim=-1)` against `attn_core.softmax`.

    Cases include logits around 1000 (a naive `exp` overflows to inf and gives nan),
    very negative logits (a naive `exp` underflows to 0/0), `-inf` entries (weight
    exactly 0), a square matrix (a reduction without `keepdim` broadcasts along the wrong
    axis without an error), rows far apart (one maximum for the whole tensor underflows),
    `dim=0`, and a batch.
    """
    gen = torch.Generator().manual_seed(2)
    square = torch.randn(4, 4, generator=gen)
    m = torch.randn(3, 4, generator=gen)
    b = torch.randn(2, 3, 5, generator=gen)
    far = torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0]])

    def case(name, x, dim=None):
        kwargs = {} if dim is None else {"dim": dim}
        return Case(name, (x,), kwargs, expected=softmax(x, axis=-1 if dim is None else dim))

    cases = [
        case("three small logits", torch.tensor([1.0, 2.0, 3.0])),
        case("large logits [1000, 999, 998]", torch.tensor([1000.0, 999.0, 998.0])),
        case("very negative logits [-1000, -1001, -1002]", torch.tensor([-1000.0, -1001.0, -1002.0])),
        case("a -inf logit gets weight 0", torch.tensor([0.5, -float("inf"), 1.5])),
        case("a square (4, 4) matrix, rows sum to 1", square),
        case("a (3, 4) matrix, rows sum to 1", m),
        case("a (3, 4) matrix with dim=0 (columns sum to 1)", m, 0),
        case("two rows far apart: [[1000, 999, 998], [-1000, -1001, -1002]]", far),
        case("a batch (2, 3, 5)", b * 50),
    ]
    return run_checks(
        "stable_softmax", fn, cases, verbose=verbose, mistakes=MISTAKES_STABLE_SOFTMAX,
        hint="exp of a large logit overflows; softmax does not change when one constant is subtracted from every "
             "logit of a slice along `dim`. Every reduction (max, sum) goes along `dim` and must still broadcast "
             "against x.",
    )
