"""Exercises for lesson 06 (masked attention): build a causal mask, build a padding mask,
apply a mask to scores.

Each checker compares the learner's function with `attn_core`'s own (`causal_mask`,
`padding_mask`, and the weights of `scaled_dot_product_attention`) on several cases,
edge cases included. Masks must be boolean (True = may attend): a 0/1 integer or float
tensor is a different thing to PyTorch (`F.scaled_dot_product_attention` *adds* a float
mask to the scores), so the mask checkers also check the dtype.
"""

from __future__ import annotations

from typing import Callable

import torch

from .._arrays import is_bool
from ..attention import scaled_dot_product_attention
from ..masks import causal_mask, padding_mask
from ._check import Case, Result, run_checks

__all__ = ["check_build_causal_mask", "check_build_padding_mask", "check_masked_softmax"]


def _run(exercise: str, fn: Callable, cases: list[Case], hint: str, *, boolean: bool = False) -> Result:
    """`run_checks` with (when `boolean`) one last case: the mask must be boolean, not 0/1
    numbers."""
    n = len(cases) + int(boolean)
    first = run_checks(exercise, fn, cases, hint, verbose=False)
    if not first.attempted:
        print(f"○ {exercise}: not attempted yet. Replace `raise NotImplementedError` with your code, then run this cell again.")
        return Result(exercise, False, 0, n, message=first.message)
    if first.passed and boolean:
        out = fn(*cases[0].args, **cases[0].kwargs)
        if not (isinstance(out, torch.Tensor) and is_bool(out)):
            kind = f"dtype {out.dtype}" if hasattr(out, "dtype") else f"type {type(out).__name__}"
            first = Result(exercise, True, len(cases), n, failed_case="boolean dtype", message=(
                f"the values are right, but the mask has {kind}; it must be a torch.bool tensor "
                f"(F.scaled_dot_product_attention would *add* a 0/1 float mask to the scores)"))
            hint = "end with a comparison (<, <=) or call .bool() on the result."
    if first.passed:
        print(f"✓ {exercise}: all {n} cases passed.")
        return Result(exercise, True, n, n)
    print(f"✗ {exercise}: {first.n_passed}/{n} cases passed. First failure, case '{first.failed_case}': {first.message}")
    print(f"  Hint: {hint}")
    return Result(exercise, True, first.n_passed, n, failed_case=first.failed_case, message=first.message)


def check_build_causal_mask(fn: Callable) -> Result:
    """Check `build_causal_mask(T, S=None)`: a boolean `(T, S)` mask, True where query `i`
    may attend to key `j`, i.e. `j <= i + (S - T)` (aligned to the end when `S > T`)."""
    cases = [
        Case("T=1", args=(1,), expected=causal_mask(1)),
        Case("T=4", args=(4,), expected=causal_mask(4)),
        Case("T=S=3 given explicitly", args=(3, 3), expected=causal_mask(3, 3)),
        Case("cached keys: T=2 new queries, S=5 keys", args=(2, 5), expected=causal_mask(2, 5)),
        Case("one new query, S=4 keys", args=(1, 4), expected=causal_mask(1, 4)),
    ]
    hint = ("query i may see key j when j <= i + (S - T). Compare torch.arange(T)[:, None] with "
            "torch.arange(S)[None, :] (broadcasting builds the (T, S) grid); S defaults to T.")
    return _run("build_causal_mask", fn, cases, hint, boolean=True)


def check_build_padding_mask(fn: Callable) -> Result:
    """Check `build_padding_mask(lengths, S)`: boolean `(B, 1, 1, S)`, True where key `j`
    of sequence `b` is a real token (`j < lengths[b]`), False on padding."""
    cases = [
        Case("lengths [2, 3], S=3", args=([2, 3], 3), expected=padding_mask([2, 3], 3)),
        Case("one sequence, no padding", args=([4], 4), expected=padding_mask([4], 4)),
        Case("an empty sequence: lengths [0, 4, 2], S=5", args=([0, 4, 2], 5), expected=padding_mask([0, 4, 2], 5)),
        Case("lengths given as a tensor", args=(torch.tensor([3, 1]), 6), expected=padding_mask([3, 1], 6)),
    ]
    hint = ("key j of sequence b is real when j < lengths[b]: compare torch.arange(S)[None, :] with "
            "torch.as_tensor(lengths)[:, None], then add two singleton axes with [:, None, None, :] so the "
            "mask broadcasts against (B, H, T, S) scores. True marks real tokens (PyTorch SDPA's convention).")
    return _run("build_padding_mask", fn, cases, hint, boolean=True)


def _reference_weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """attn_core's masked softmax: SDPA with `q = scores`, `k = I` and scale 1 gives `scores` back."""
    eye = torch.eye(scores.shape[-1], dtype=scores.dtype)  # (S, S)
    return scaled_dot_product_attention(scores, eye, eye, mask=mask, scale=1.0)[1]  # (..., T, S)


def check_masked_softmax(fn: Callable) -> Result:
    """Check `masked_softmax(scores, mask)`: softmax over the last axis where blocked keys
    (mask False) get weight exactly 0, and a row with every key blocked gets all zeros
    (as `scaled_dot_product_attention` and PyTorch's SDPA do), not nan."""
    gen = torch.Generator().manual_seed(6)
    square = torch.randn(4, 4, generator=gen)
    wide = torch.randn(2, 5, generator=gen)
    batch = torch.randn(2, 3, 4, 4, generator=gen)  # (B, H, T, S)
    dead = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    cases = [
        Case("causal mask on (4, 4) scores", args=(square, causal_mask(4)),
             expected=lambda: _reference_weights(square, causal_mask(4))),
        Case("no key blocked", args=(square, torch.ones(4, 4, dtype=torch.bool)),
             expected=lambda: _reference_weights(square, torch.ones(4, 4, dtype=torch.bool))),
        Case("T != S: cached keys, causal_mask(2, 5)", args=(wide, causal_mask(2, 5)),
             expected=lambda: _reference_weights(wide, causal_mask(2, 5))),
        Case("batch (2, 3, 4, 4) with a padding mask (2, 1, 1, 4)", args=(batch, padding_mask([4, 2], 4)),
             expected=lambda: _reference_weights(batch, padding_mask([4, 2], 4))),
        Case("large scores (x 1e4)", args=(square * 1e4, causal_mask(4)),
             expected=lambda: _reference_weights(square * 1e4, causal_mask(4))),
        Case("a fully masked row (query 1 may attend to nothing)", args=(square[:3, :3], dead),
             expected=lambda: _reference_weights(square[:3, :3], dead)),
    ]
    hint = ("fill the blocked scores with float('-inf') (scores.masked_fill(~mask, float('-inf'))), take "
            "torch.softmax over the last axis, then give a row whose keys are all blocked zeros instead of "
            "nan: torch.where(mask, weights, 0.0) does both at once. Don't use -1e9: a fully blocked row "
            "would spread its weight evenly over the blocked keys.")
    return _run("masked_softmax", fn, cases, hint)
