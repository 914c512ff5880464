"""Exercises of lesson 01 (attention as relevance): a dot-product similarity matrix and a
numerically stable softmax, checked against `attn_core`."""

from __future__ import annotations

import torch

from ..attention import softmax
from ._check import Case, Result, run_checks

__all__ = ["check_similarity_matrix", "check_stable_softmax"]


def _toy_sentence() -> torch.Tensor:
    from ..toy import toy_embed

    return toy_embed("cat")[1]  # (10, 9)


def check_similarity_matrix(fn) -> Result:
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
        "similarity_matrix", fn, cases,
        hint="row i holds x[i]'s dot product with every row of x: that is x @ x.T; write x @ x.transpose(-2, -1) "
             "(or x @ x.mT) so a leading batch axis works too.",
    )


def check_stable_softmax(fn) -> Result:
    """Check `stable_softmax(x, dim=-1)` against `attn_core.softmax`.

    Cases include logits around 1000 (a naive `exp` overflows to inf and gives nan),
    very negative logits (a naive `exp` underflows to 0/0), `-inf` entries (weight
    exactly 0), `dim=0`, and a batch.
    """
    gen = torch.Generator().manual_seed(2)
    m = torch.randn(3, 4, generator=gen)
    b = torch.randn(2, 3, 5, generator=gen)
    cases = [
        Case("three small logits", (torch.tensor([1.0, 2.0, 3.0]),), expected=softmax(torch.tensor([1.0, 2.0, 3.0]))),
        Case("large logits [1000, 999, 998]", (torch.tensor([1000.0, 999.0, 998.0]),),
             expected=softmax(torch.tensor([1000.0, 999.0, 998.0]))),
        Case("very negative logits [-1000, -1001, -1002]", (torch.tensor([-1000.0, -1001.0, -1002.0]),),
             expected=softmax(torch.tensor([-1000.0, -1001.0, -1002.0]))),
        Case("a -inf logit gets weight 0", (torch.tensor([0.5, -float("inf"), 1.5]),),
             expected=softmax(torch.tensor([0.5, -float("inf"), 1.5]))),
        Case("a (3, 4) matrix, rows sum to 1", (m,), expected=softmax(m, axis=-1)),
        Case("a (3, 4) matrix with dim=0 (columns sum to 1)", (m,), {"dim": 0}, expected=softmax(m, axis=0)),
        Case("a batch (2, 3, 5)", (b * 50,), expected=softmax(b * 50, axis=-1)),
    ]
    return run_checks(
        "stable_softmax", fn, cases,
        hint="subtract the maximum along `dim` first (x.max(dim=dim, keepdim=True).values), then exp and divide by "
             "the sum along the same dim with keepdim=True, so the shapes broadcast.",
    )
