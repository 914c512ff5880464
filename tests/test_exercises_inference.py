"""Lesson 10's checkers: each accepts the solution, says "not attempted yet" for a stub, and
rejects plausible wrong answers, naming the case that exposes them."""

import math
import sys
from pathlib import Path

import pytest
import torch

import attn_core
from attn_core.exercises import CHECKS
from attn_core.exercises.inference import check_cache_memory, check_cached_step, check_online_softmax_step

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `solutions` imports from the repository
from solutions.inference import cached_attention_step, kv_cache_memory, online_softmax_step  # noqa: E402

NEG_INF = float("-inf")
CHECKERS = [(check_online_softmax_step, online_softmax_step), (check_cached_step, cached_attention_step),
            (check_cache_memory, kv_cache_memory)]


def test_checkers_accept_the_solutions(capsys):
    for check, fn in CHECKERS:
        result = check(fn)
        assert result.passed and result.n_passed == result.n_cases >= 5, result
    assert capsys.readouterr().out.count("✓") == 3


def test_checkers_are_registered_like_the_other_lessons():
    for check, _ in CHECKERS:
        assert CHECKS[check.__name__] is check and getattr(attn_core.exercises, check.__name__) is check


@pytest.mark.parametrize("check", [c for c, _ in CHECKERS])
def test_a_stub_is_not_attempted(check, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError  # your code here

    result = check(stub)
    out = capsys.readouterr().out
    assert not result.attempted and not result.passed and "not attempted yet" in out and "Traceback" not in out
    assert repr(result) == f"<{check.__name__[6:]}: not attempted, 0/{result.n_cases} cases>"


@pytest.mark.parametrize("check", [c for c, _ in CHECKERS])
def test_checkers_want_the_function_itself(check):
    with pytest.raises(TypeError, match="expects your function itself"):
        check(None)


# ----------------------------------------------------------------- online_softmax_step


def test_the_solution_streamed_over_blocks_gives_the_softmax():
    """Blocks of 3 over rows of 10 (the last block shorter), one row fully masked: the running
    maximum and sum end as the row's maximum and the softmax's denominator."""
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5
    x[1] = NEG_INF
    x[2, :7] = NEG_INF  # the first blocks of row 2 are all -inf
    m, l = torch.full((4,), NEG_INF, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    for start in range(0, 10, 3):
        m, l = online_softmax_step(m, l, x[:, start:start + 3])
    assert torch.equal(m, x.max(dim=-1).values) and l[1] == 0 and not l.isnan().any()
    rows = [0, 2, 3]
    assert torch.allclose(torch.exp(x[rows] - m[rows, None]) / l[rows, None], torch.softmax(x[rows], -1), atol=1e-12)
    assert torch.allclose(torch.exp(x[rows] - m[rows, None]) / l[rows, None],
                          attn_core.online_softmax(x[rows], block_size=3), atol=1e-12)


def test_online_step_without_the_guard_is_caught_on_the_masked_rows(capsys):
    def no_guard(m, l, scores):
        m_new = torch.maximum(m, scores.max(dim=-1).values)
        return m_new, l * torch.exp(m - m_new) + torch.exp(scores - m_new[:, None]).sum(-1)

    result = check_online_softmax_step(no_guard)
    out = capsys.readouterr().out
    assert result.n_passed == 2 and "blocks of -inf" in result.failed_case and "got nan at index (0,)" in out
    assert result.mistake == "nan when a row is still all -inf"


def test_online_step_answer_with_the_wrong_shape(capsys):
    result = check_online_softmax_step(lambda m, l, s: tuple(x[:, None] for x in online_softmax_step(m, l, s)))
    assert result.verdict == "wrong shape" and "expected shape (4,), got shape (4, 1)" in result.message


def test_online_step_that_returns_three_values(capsys):
    result = check_online_softmax_step(lambda m, l, s: (*online_softmax_step(m, l, s), s))
    assert result.verdict == "wrong type" and "tuple of 2 values, got 3" in result.message


# ----------------------------------------------------------------- cached_attention_step


def test_the_cached_step_solution_matches_a_model_layer():
    """The solution, step by step from an empty cache, equals one head-split full causal
    attention over the whole sequence (the claim of lesson 10's cache section)."""
    gen = torch.Generator().manual_seed(1)
    B, H, T, D = 2, 3, 6, 4
    q, k, v = (torch.randn(B, H, T, D, generator=gen, dtype=torch.float64) for _ in range(3))
    full, _ = attn_core.scaled_dot_product_attention(q, k, v, mask=attn_core.causal_mask(T))
    k_cache = v_cache = torch.zeros(B, H, 0, D, dtype=torch.float64)
    for t in range(T):
        out, k_cache, v_cache = cached_attention_step(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], k_cache, v_cache)
        assert torch.allclose(out, full[:, :, t:t + 1], atol=1e-12)
    assert torch.equal(k_cache, k) and torch.equal(v_cache, v)


@pytest.mark.parametrize("wrong, failed_case, mistake", [
    # the cache extended on the batch axis: shapes differ from the first case on
    (lambda q, kn, vn, kc, vc: (q, torch.cat([kc, kn], 0), torch.cat([vc, vn], 0)), "S=4", None),
    # the output only, caches not returned
    (lambda *a: cached_attention_step(*a)[0], "S=4", None),
    # the right output, the caches in the wrong order in the tuple
    (lambda *a: (lambda o, k, v: (o, v, k))(*cached_attention_step(*a)), "S=4", None),
])
def test_cached_step_checker_rejects(wrong, failed_case, mistake, capsys):
    result = check_cached_step(wrong)
    out = capsys.readouterr().out
    assert result.attempted and not result.passed and failed_case in result.failed_case, result
    assert result.mistake == mistake and "Hint:" in out


def test_cached_step_first_token_alone_is_caught_on_the_empty_cache(capsys):
    """Attending before appending cannot even run on the first step: the cache is empty."""
    def before(q, k_new, v_new, k_cache, v_cache):
        w = torch.softmax(q @ k_cache.mT / math.sqrt(q.shape[-1]), -1)
        return w @ v_cache, torch.cat([k_cache, k_new], 2), torch.cat([v_cache, v_new], 2)

    result = check_cached_step(before)
    assert result.mistake == "attends before appending" and result.failed_case.startswith("B=2, H=3, S=4")


# ----------------------------------------------------------------- kv_cache_memory


def test_the_memory_solution_is_the_library_formula_and_the_real_tensors():
    model = attn_core.TinyTransformer(7, 8, 2, 3, 16, positional="rope", n_kv_heads=1).eval()
    with torch.no_grad():
        _, cache = model(torch.zeros(2, 5, dtype=torch.long), cache=model.empty_cache(2))
    assert sum(c.nbytes for c in cache) == kv_cache_memory(3, 1, 4, 5, 4, batch_size=2) == attn_core.kv_cache_bytes(3, 1, 4, 5, 4, 2)
    assert kv_cache_memory(32, 32, 128, 4096, 2) == 2 * 2 ** 30  # a 7B-class model at 4k tokens: 2 GiB


def test_cache_memory_in_gigabytes_is_told_to_give_bytes(capsys):
    result = check_cache_memory(lambda *a, **k: kv_cache_memory(*a, **k) / 2 ** 30)
    assert result.verdict == "wrong values" and result.mistake is None and "Hint:" in capsys.readouterr().out


def test_cache_memory_counts_batch_only_when_given(capsys):
    """The default batch_size=1 must be honoured, and a given batch_size used."""
    result = check_cache_memory(lambda n_layers, n_kv_heads, d_head, T, bytes_per_value, batch_size=2:
                                2 * n_layers * batch_size * n_kv_heads * d_head * T * bytes_per_value)
    assert result.n_passed == 0 and result.failed_case.startswith("3 layers")
