"""Exercises of lessons 01-03: each checker accepts the solution, rejects plausible wrong
answers (naming the case that fails), and never crashes on a learner's bug."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import attn_core
from attn_core.exercises import attention as ex01, qkv as ex02, self_attention as ex03
from solutions import attention as sol01, qkv as sol02, self_attention as sol03


def _naive_softmax(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)


@pytest.mark.parametrize("check, solution", [
    (ex01.check_similarity_matrix, sol01.similarity_matrix),
    (ex01.check_stable_softmax, sol01.stable_softmax),
    (ex02.check_attention_scores, sol02.attention_scores),
    (ex02.check_scaled_dot_product_attention, sol02.scaled_dot_product_attention),
    (ex03.check_self_attention, sol03.self_attention),
    (ex03.check_unshuffle, sol03.unshuffle),
    (ex03.check_attention_flops, sol03.attention_flops),
])
def test_checker_accepts_the_solution(check, solution, capsys):
    result = check(solution)
    assert result.passed and result.n_passed == result.n_cases >= 4
    assert "all" in capsys.readouterr().out


def _sdpa_softmax_over_queries(q, k, v):
    w = torch.softmax(q @ k.mT / math.sqrt(q.shape[-1]), dim=-2)
    return w @ v, w


def _sdpa_naive(q, k, v):
    w = _naive_softmax(q @ k.mT / math.sqrt(q.shape[-1]))
    return w @ v, w


@pytest.mark.parametrize("check, wrong, failing_case", [
    # lesson 01
    (ex01.check_similarity_matrix, lambda x: x.mT @ x, "toy sentence"),  # (d, d), not (T, T)
    (ex01.check_similarity_matrix, lambda x: x @ x.T if x.ndim == 2 else x[0] @ x[0].T, "batch"),  # forgets the batch
    (ex01.check_stable_softmax, _naive_softmax, "large logits"),  # overflows to nan
    (ex01.check_stable_softmax, lambda x, dim=-1: torch.softmax(x, dim=-1), "dim=0"),  # ignores dim
    # lesson 02
    (ex02.check_attention_scores, lambda q, k: q @ k.mT, "3 queries, 5 keys"),  # not scaled
    (ex02.check_attention_scores, lambda q, k: q @ k.mT / q.shape[-1], "3 queries, 5 keys"),  # divides by d_k
    (ex02.check_attention_scores, lambda q, k: q @ k.mT / math.sqrt(k.shape[-2]), "3 queries, 5 keys"),  # sqrt(S)
    (ex02.check_scaled_dot_product_attention, _sdpa_softmax_over_queries, "3 queries, 5 keys"),
    (ex02.check_scaled_dot_product_attention, lambda q, k, v: sol02.scaled_dot_product_attention(q, k, v)[0],
     "3 queries, 5 keys"),
    (ex02.check_scaled_dot_product_attention, _sdpa_naive, "large scores"),  # fine until the scores are large
    # lesson 03
    (ex03.check_self_attention,  # scales by sqrt(d_model) instead of sqrt(d_k)
     lambda x, w_q, w_k, w_v: attn_core.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, scale=x.shape[-1] ** -0.5),
     "d_model = 8, d_k = 4"),
    (ex03.check_self_attention,  # values from the key projection: fails once d_v != d_k
     lambda x, w_q, w_k, w_v: attn_core.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_k), "d_model = 8, d_k = 4"),
    (ex03.check_unshuffle, lambda out, perm: out[..., perm, :], "3-cycle"),  # shuffles again; a swap is its own inverse
    (ex03.check_unshuffle, lambda out, perm: out, "swap"),
    (ex03.check_attention_flops, lambda T, S, d_k, d_v: T * S * (d_k + d_v), "T=10, S=6"),  # multiply-adds, not FLOPs
    (ex03.check_attention_flops, lambda T, S, d_k, d_v: 2 * T * T * (d_k + d_v), "T=10, S=6"),  # ignores S
])
def test_checker_rejects_a_wrong_answer(check, wrong, failing_case, capsys):
    result = check(wrong)
    out = capsys.readouterr().out
    assert result.attempted and not result.passed
    assert failing_case in result.failed_case, result
    assert "✗" in out and result.failed_case in out
    assert ("Likely mistake, " + result.mistake) in out if result.mistake else "Hint:" in out


def test_unshuffle_wrong_answer_passes_the_swap_first():
    """The self-inverse swap comes first, so the hint's point (use the inverse) is what fails."""
    result = ex03.check_unshuffle(lambda out, perm: out[..., perm, :])
    assert result.n_passed == 1


def test_unattempted_exercise_says_so(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError  # your code here

    for check in (ex01.check_similarity_matrix, ex01.check_stable_softmax, ex02.check_attention_scores,
                  ex02.check_scaled_dot_product_attention, ex03.check_self_attention, ex03.check_unshuffle,
                  ex03.check_attention_flops):
        result = check(stub)
        assert not result.attempted and not result.passed
    assert capsys.readouterr().out.count("not attempted yet") == 7


def test_a_learner_bug_is_reported_not_raised(capsys):
    result = ex02.check_scaled_dot_product_attention(lambda q, k, v: q @ v)  # shapes do not fit
    assert result.attempted and not result.passed and "raised RuntimeError" in result.message


def test_flops_formula_matches_pytorchs_counter_with_batch_and_heads():
    q, k, v = torch.zeros(2, 3, 5, 8), torch.zeros(2, 3, 7, 8), torch.zeros(2, 3, 7, 4)
    with FlopCounterMode(display=False) as counter:
        attn_core.scaled_dot_product_attention(q, k, v)
    assert counter.get_total_flops() == 2 * 3 * sol03.attention_flops(5, 7, 8, 4)


def test_exercises_are_listed_in_all():
    assert ex01.__all__ == ["check_similarity_matrix", "check_stable_softmax"]
    assert ex02.__all__ == ["check_attention_scores", "check_scaled_dot_product_attention"]
    assert ex03.__all__ == ["check_self_attention", "check_unshuffle", "check_attention_flops"]


def test_a_nan_answer_is_reported_where_it_is(capsys):
    """A naive softmax overflows to nan; the checker says so instead of crashing."""
    result = ex01.check_stable_softmax(_naive_softmax)
    assert result.failed_case.startswith("large logits") and "got nan" in result.message
