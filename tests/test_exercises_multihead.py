"""Lesson 04's checkers accept the solutions and reject plausible wrong answers."""

import pytest
import torch

from attn_core.exercises.multihead import check_count_parameters, check_merge_heads, check_split_heads
from solutions import multihead as solutions


def test_solutions_pass(capsys):
    assert check_split_heads(solutions.split_heads).passed
    assert check_merge_heads(solutions.merge_heads).passed
    assert check_count_parameters(solutions.count_parameters).passed
    assert capsys.readouterr().out.count("✓") == 3


def test_split_heads_rejects_plain_reshape(capsys):
    # right shape, wrong values: tokens get mixed into heads
    result = check_split_heads(lambda x, n_heads: x.reshape(x.shape[0], n_heads, x.shape[1], -1))
    assert result.attempted and not result.passed
    assert result.failed_case == "B=2, T=5, d_model=12, 3 heads"
    assert "values differ" in result.message
    out = capsys.readouterr().out
    assert "✗ split_heads" in out and "Likely mistake, reshape without transpose" in out
    assert result.mistake == "reshape without transpose"


def test_split_heads_rejects_wrong_head_order(capsys):
    # features split as (d_head, H): head h gets every H-th feature instead of a block
    def interleaved(x, n_heads):
        B, T, d = x.shape
        return x.reshape(B, T, d // n_heads, n_heads).permute(0, 3, 1, 2)

    result = check_split_heads(interleaved)
    assert not result.passed and result.n_passed < result.n_cases
    # with one head or d_head = 1 the interleaving happens to be right; the first case catches it
    assert result.failed_case == "B=2, T=5, d_model=12, 3 heads"


def test_split_heads_rejects_missing_transpose():
    result = check_split_heads(lambda x, n_heads: x.reshape(x.shape[0], x.shape[1], n_heads, -1))
    assert not result.passed and "expected shape (2, 3, 5, 4), got shape (2, 5, 3, 4)" in result.message


def test_merge_heads_rejects_reshape_without_transpose():
    result = check_merge_heads(lambda x: x.reshape(x.shape[0], x.shape[2], -1))
    assert not result.passed and "values differ" in result.message


def test_merge_heads_reports_view_error():
    result = check_merge_heads(lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1))
    assert not result.passed and "RuntimeError" in result.message


def test_merge_heads_accepts_contiguous_view():
    # .contiguous().view is a correct answer too
    result = check_merge_heads(lambda x: x.transpose(1, 2).contiguous().view(x.shape[0], x.shape[2], -1))
    assert result.passed


@pytest.mark.parametrize("wrong, failing_case", [
    (lambda d, h, bias=True: h * (4 * d * d + 4 * d), "d_model=768, 12 heads"),  # a full-width copy per head
    (lambda d, h, bias=True: 3 * d * d + 3 * d, "d_model=768, 12 heads"),  # forgot w_o
    (lambda d, h, bias=True: 4 * d * d + 4 * d, "d_model=64, 8 heads, no biases"),  # ignores bias=False
    (lambda d, h, bias=True: 4 * d * d + (4 * d if bias else 0) + 1, "d_model=768, 12 heads"),  # off by one
])
def test_count_parameters_rejects(wrong, failing_case):
    result = check_count_parameters(wrong)
    assert not result.passed and result.failed_case == failing_case


def test_unattempted_and_not_a_function(capsys):
    def stub(x, n_heads):
        raise NotImplementedError

    result = check_split_heads(stub)
    assert not result.attempted and not result.passed
    assert "not attempted yet" in capsys.readouterr().out
    with pytest.raises(TypeError, match="split_heads"):
        check_split_heads(torch.zeros(3))
