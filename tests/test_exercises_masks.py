"""Lesson 06's checkers: each accepts the solution and rejects plausible wrong answers,
naming the case that exposes them."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attn_core.exercises.masks import check_build_causal_mask, check_build_padding_mask, check_masked_softmax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `solutions` imports from the repository
from solutions.masks import build_causal_mask, build_padding_mask, masked_softmax  # noqa: E402

NEG_INF = float("-inf")


def test_checkers_accept_the_solutions(capsys):
    for check, fn in ((check_build_causal_mask, build_causal_mask), (check_build_padding_mask, build_padding_mask),
                      (check_masked_softmax, masked_softmax)):
        result = check(fn)
        assert result.passed and result.n_passed == result.n_cases >= 4, result
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize("check", [check_build_causal_mask, check_build_padding_mask, check_masked_softmax])
def test_checkers_want_the_function_itself(check):
    with pytest.raises(TypeError, match="expects your function itself"):
        check("build_causal_mask")


def test_unattempted_exercise_counts_all_cases(capsys):
    def stub(*args):
        raise NotImplementedError

    result = check_build_causal_mask(stub)
    assert not result.attempted and result.n_cases == 5
    assert "not attempted yet" in capsys.readouterr().out


# ----------------------------------------------------------------- build_causal_mask


def _grid(T, S):
    S = T if S is None else S
    return torch.arange(T)[:, None], torch.arange(S)[None, :], S


@pytest.mark.parametrize("wrong, failed_case", [
    # aligned to the top left (is_causal=True's convention): right only when S == T
    (lambda T, S=None: torch.ones(T, T if S is None else S, dtype=torch.bool).tril(), "cached keys"),
    # the diagonal left out: a token may not read itself, and T=1 is all False
    (lambda T, S=None: (lambda i, j, S: j < i + (S - T))(*_grid(T, S)), "T=4"),
    # nn.MultiheadAttention's convention: True = blocked
    (lambda T, S=None: (lambda i, j, S: j > i + (S - T))(*_grid(T, S)), "T=4"),
    # the right values as 0/1 floats: PyTorch would add them to the scores; checked on the first case
    (lambda T, S=None: (lambda i, j, S: (j <= i + (S - T)).float())(*_grid(T, S)), "T=4"),
    # the right values as a numpy array
    (lambda T, S=None: (lambda i, j, S: (j <= i + (S - T)).numpy())(*_grid(T, S)), "T=4"),
])
def test_causal_checker_rejects(wrong, failed_case, capsys):
    result = check_build_causal_mask(wrong)
    out = capsys.readouterr().out
    assert result.attempted and not result.passed
    assert failed_case in result.failed_case, result
    assert "✗" in out and ("Hint:" in out or "Likely mistake" in out)


def test_causal_checker_explains_the_dtype_problem(capsys):
    check_build_causal_mask(lambda T, S=None: (lambda i, j, S: (j <= i + (S - T)).int())(*_grid(T, S)))
    out = capsys.readouterr().out
    assert "dtype torch.int32" in out and "torch.bool" in out and "0/5 cases passed" in out
    assert "the values are right" in out


# ----------------------------------------------------------------- build_padding_mask


def _pad(lengths, S, compare=lambda j, n: j < n):
    j, n = torch.arange(S)[None, :], torch.as_tensor(lengths)[:, None]
    return compare(j, n)[:, None, None, :]


@pytest.mark.parametrize("wrong, failed_case", [
    (lambda lengths, S: _pad(lengths, S, lambda j, n: j <= n), "lengths [2, 3]"),  # off by one
    (lambda lengths, S: _pad(lengths, S, lambda j, n: j >= n), "lengths [2, 3]"),  # key_padding_mask: True = pad
    (lambda lengths, S: _pad(lengths, S)[:, 0, 0], "lengths [2, 3]"),  # (B, S): does not broadcast over heads
    (lambda lengths, S: _pad(lengths, S).float(), "lengths [2, 3]"),
    (lambda lengths, S: torch.stack([torch.arange(S) < n for n in lengths])[:, None, None]
     if not isinstance(lengths, torch.Tensor) else lengths[0], "as a tensor"),  # only handles lists
])
def test_padding_checker_rejects(wrong, failed_case, capsys):
    result = check_build_padding_mask(wrong)
    assert result.attempted and not result.passed
    assert failed_case in result.failed_case, result
    out = capsys.readouterr().out
    assert ("Likely mistake, " + result.mistake) in out if result.mistake else "Hint:" in out


def test_padding_checker_reports_the_shape(capsys):
    check_build_padding_mask(lambda lengths, S: _pad(lengths, S)[:, 0, 0])
    assert "expected shape (2, 1, 1, 3), got shape (2, 3)" in capsys.readouterr().out


# ----------------------------------------------------------------- masked_softmax


def _naive(scores, mask):
    e = torch.exp(scores.masked_fill(~mask, NEG_INF))  # no max subtraction: overflows
    return torch.where(mask, e / e.sum(-1, keepdim=True), 0.0)


@pytest.mark.parametrize("wrong, failed_case", [
    (lambda s, m: torch.softmax(s, -1), "causal mask"),  # mask ignored
    (lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), -1), "fully masked"),  # nan rows
    (lambda s, m: torch.softmax(s.masked_fill(~m, -1e9), -1), "fully masked"),  # uniform over blocked keys
    (_naive, "large scores"),
    (lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), -2).nan_to_num(), "causal mask"),  # wrong axis
    # always a causal triangle instead of the given mask: right only on the first case
    (lambda s, m: torch.softmax(s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), NEG_INF), -1),
     "no key blocked"),
])
def test_masked_softmax_checker_rejects(wrong, failed_case, capsys):
    result = check_masked_softmax(wrong)
    assert result.attempted and not result.passed
    assert failed_case in result.failed_case, result
    out = capsys.readouterr().out
    assert ("Likely mistake, " + result.mistake) in out if result.mistake else "Hint:" in out


def test_masked_softmax_checker_names_the_nan(capsys):
    result = check_masked_softmax(lambda s, m: torch.softmax(s.masked_fill(~m, NEG_INF), -1))
    out = capsys.readouterr().out
    assert "got nan at index (1, 0) where 0.0000 was expected" in out and "5/6 cases passed" in out
    assert "nan" in result.message


def test_masked_softmax_reference_is_the_library_masked_softmax():
    from attn_core.exercises.masks import _reference_weights

    scores = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[True, False, True, True], [False] * 4, [True] * 4])
    w = _reference_weights(scores, mask)
    assert torch.equal(w[:, 1], torch.zeros(2, 4))
    ref = torch.softmax(scores.masked_fill(~mask, NEG_INF), -1)
    assert torch.allclose(w[:, [0, 2]], ref[:, [0, 2]])
    assert np.isnan(ref[:, 1].numpy()).all()
