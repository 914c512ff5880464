"""Lesson 05's checkers: each accepts the solution and rejects plausible wrong answers,
naming the case that exposes them."""

import math
import sys
from pathlib import Path

import pytest
import torch

from attn_core.exercises.positional import check_alibi, check_positional_encoding, check_rope_rotate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `solutions` imports from the repository
from solutions.positional import alibi, positional_encoding, rope_rotate  # noqa: E402


def test_checkers_accept_the_solutions(capsys):
    for check, fn in ((check_positional_encoding, positional_encoding), (check_rope_rotate, rope_rotate),
                      (check_alibi, alibi)):
        result = check(fn)
        assert result.passed and result.n_passed == result.n_cases >= 5, result
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize("check", [check_positional_encoding, check_rope_rotate, check_alibi])
def test_checkers_want_the_function_itself(check):
    with pytest.raises(TypeError, match="expects your function itself"):
        check("positional_encoding")


# ----------------------------------------------------------------- positional_encoding


def _table(n_positions, d_model, base, *, first, second, exponent):
    """A sinusoidal table with a choice of mistakes."""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    col = torch.arange(d_model)
    angles = pos / base ** (exponent(col) / d_model)
    return torch.where(col % 2 == 0, first(angles), second(angles))


def test_sine_and_cosine_swapped_fail_the_first_case(capsys):
    def swapped(n_positions, d_model, base=10000.0):
        return _table(n_positions, d_model, base, first=torch.cos, second=torch.sin, exponent=lambda c: 2 * (c // 2))

    result = check_positional_encoding(swapped)
    out = capsys.readouterr().out
    assert result.attempted and not result.passed
    assert result.failed_case == "2 positions, d_model=4" and result.n_passed == 0
    assert "Likely mistake, sine and cosine swapped" in out and "2 positions, d_model=4" in out


def test_exponent_from_the_column_instead_of_the_pair_fails():
    def by_column(n_positions, d_model, base=10000.0):  # base**(c/d) instead of base**(2i/d)
        return _table(n_positions, d_model, base, first=torch.sin, second=torch.cos, exponent=lambda c: c)

    result = check_positional_encoding(by_column, verbose=False)
    assert not result.passed and result.failed_case == "2 positions, d_model=4"


def test_ignoring_base_fails_only_the_base_case():
    def fixed_base(n_positions, d_model, base=10000.0):
        return positional_encoding(n_positions, d_model)

    result = check_positional_encoding(fixed_base, verbose=False)
    assert not result.passed and result.failed_case == "base=100"
    assert result.n_passed == result.n_cases - 1


def test_pairs_only_table_fails_on_odd_d_model():
    def pairs_only(n_positions, d_model, base=10000.0):  # builds d_model // 2 pairs: one column short for odd d
        pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
        w = base ** (-2 * torch.arange(d_model // 2, dtype=torch.float64) / d_model)
        return torch.stack([torch.sin(pos * w), torch.cos(pos * w)], dim=-1).flatten(-2)

    result = check_positional_encoding(pairs_only, verbose=False)
    assert not result.passed and result.failed_case.startswith("odd d_model=5")
    assert "expected shape (10, 5), got shape (10, 4)" in result.message


# ----------------------------------------------------------------- rope_rotate


def test_half_split_pairs_pass_for_d2_but_fail_for_d8():
    def half_split(x, positions, base=10000.0):  # the GPT-NeoX convention instead of the interleaved one
        D = x.shape[-1]
        theta = base ** (-2 * torch.arange(D // 2, dtype=torch.float64) / D)
        angles = torch.as_tensor(positions, dtype=torch.float64)[..., None] * theta
        x1, x2 = x[..., : D // 2], x[..., D // 2 :]
        return torch.cat([x1 * angles.cos() - x2 * angles.sin(), x1 * angles.sin() + x2 * angles.cos()], dim=-1)

    result = check_rope_rotate(half_split, verbose=False)
    assert not result.passed
    assert result.n_passed == 1 and result.failed_case == "T=5 tokens, D=8, positions 0..4"


def test_rotating_the_wrong_way_fails_the_first_case():
    def clockwise(x, positions, base=10000.0):
        return rope_rotate(x, -torch.as_tensor(positions), base)

    result = check_rope_rotate(clockwise, verbose=False)
    assert not result.passed and result.failed_case == "one 2-D vector (T=1, D=2) at position 3"


def test_ignoring_the_given_positions_fails():
    def from_zero(x, positions, base=10000.0):
        return rope_rotate(x, torch.arange(x.shape[-2]), base)

    result = check_rope_rotate(from_zero, verbose=False)
    assert not result.passed and result.failed_case == "one 2-D vector (T=1, D=2) at position 3"


def test_a_matrix_only_version_fails_the_batch_case():
    def matrix_only(x, positions, base=10000.0):
        if x.ndim != 2:
            return x.reshape(-1, x.shape[-1])  # forgets the leading axes
        return rope_rotate(x, positions, base)

    result = check_rope_rotate(matrix_only, verbose=False)
    assert not result.passed and result.failed_case.startswith("batch and heads")
    assert "expected shape (2, 3, 5, 8)" in result.message


# ----------------------------------------------------------------- alibi


def test_geometric_slopes_for_every_n_fail_on_six_heads():
    def geometric(n_heads, T, S=None):  # 2^(-8h/n) for all n: right only for powers of two
        S = T if S is None else S
        slopes = torch.tensor([2 ** (-8 * h / n_heads) for h in range(1, n_heads + 1)], dtype=torch.float64)
        i = torch.arange(T, dtype=torch.float64)[:, None] + (S - T)
        return -slopes[:, None, None] * (i - torch.arange(S, dtype=torch.float64)).abs()

    result = check_alibi(geometric, verbose=False)
    assert not result.passed and result.failed_case == "6 heads (not a power of two), T=5"
    assert result.n_passed == 3


def test_a_positive_bias_fails_the_first_case():
    result = check_alibi(lambda n_heads, T, S=None: -alibi(n_heads, T, S), verbose=False)
    assert not result.passed and result.failed_case == "8 heads, T=4: slopes 1/2 .. 1/256"


def test_queries_not_aligned_to_the_end_fail_when_t_is_less_than_s(capsys):
    def unaligned(n_heads, T, S=None):
        S = T if S is None else S
        distance = (torch.arange(T, dtype=torch.float64)[:, None] - torch.arange(S, dtype=torch.float64)).abs()
        slopes = alibi(n_heads, 2)[:, 0, 1] * -1  # the slopes, from the bias at distance 1
        return -slopes[:, None, None] * distance

    result = check_alibi(unaligned)
    out = capsys.readouterr().out
    assert not result.passed and result.failed_case.startswith("T=3 queries, S=6 keys")
    assert result.n_passed == result.n_cases - 1
    assert "i + S - T" in out  # the hint names the alignment rule


def test_the_solution_slopes_match_the_paper_for_eight_heads():
    slopes = -alibi(8, 2)[:, 0, 1]
    assert torch.allclose(slopes, torch.tensor([2.0 ** -(h + 1) for h in range(8)], dtype=torch.float64))
    assert math.isclose(float(slopes[-1]), 1 / 256)
