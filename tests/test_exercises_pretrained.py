"""Lesson 09's checkers: each accepts the solution, names each catalogued mistake on the
case that exposes it, and the control-pair checker rejects each flawed design."""

import sys
from pathlib import Path

import pytest
import torch

from attn_core import heads
from attn_core.exercises import check_control_pair, check_offset_score, check_sep_weight
from attn_core.exercises.pretrained import MISTAKES_OFFSET_SCORE, MISTAKES_SEP_WEIGHT, _ids, _weights
from attn_core.pretrained import load_minilm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `solutions` imports from the repository
from solutions.pretrained import MY_PAIR, offset_score, sep_weight  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return load_minilm()[1]


def test_checkers_accept_the_solutions(capsys, tokenizer):
    for result in (check_offset_score(offset_score), check_sep_weight(sep_weight), check_control_pair(MY_PAIR, tokenizer)):
        assert result.passed and result.n_passed == result.n_cases >= 3, result
    assert capsys.readouterr().out.count("✓") == 3


def test_solutions_agree_with_the_package_on_the_real_model():
    from attn_core.pretrained import encode

    model, tokenizer = load_minilm()

    enc = encode(tokenizer, ["The cat sat on the mat.", "A dog barked at the postman who walked by.", "Hi."])
    with torch.no_grad():
        _, weights = model(enc.token_ids, enc.segment_ids, enc.attention_mask, return_weights=True)
    for w in weights:
        w = w.double()
        torch.testing.assert_close(offset_score(w, enc.attention_mask, -1).numpy(),
                                   heads.previous_token_score(w, attention_mask=enc.attention_mask), atol=1e-6, rtol=0)
        torch.testing.assert_close(offset_score(w, enc.attention_mask, 1).numpy(),
                                   heads.next_token_score(w, attention_mask=enc.attention_mask), atol=1e-6, rtol=0)
        torch.testing.assert_close(sep_weight(w, enc.token_ids, enc.attention_mask).numpy(),
                                   heads.sep_score(w, enc.token_ids, attention_mask=enc.attention_mask), atol=1e-6, rtol=0)


@pytest.mark.parametrize("check", [check_offset_score, check_sep_weight])
def test_checkers_want_the_function_itself(check):
    with pytest.raises(TypeError, match="expects your function itself"):
        check(None)


@pytest.mark.parametrize("check", [check_offset_score, check_sep_weight])
def test_a_stub_is_not_attempted(check, capsys):
    def stub(*args):
        raise NotImplementedError

    result = check(stub)
    assert not result.attempted and not result.passed
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, first_failure", [
    ("ignores the mask", "a padded batch (lengths 7, 5, 3), offset -1"),
    ("offset sign flipped", "one sentence of 6 tokens, offset -1 (previous token)"),
    ("missing keys counted as zero", "one sentence of 6 tokens, offset -1 (previous token)"),
])
def test_offset_score_mistakes_are_named(mistake, first_failure, capsys):
    fn = next(m.fn for m in MISTAKES_OFFSET_SCORE if m.name == mistake)
    result = check_offset_score(fn)
    assert result.attempted and not result.passed
    assert result.failed_case == first_failure and result.mistake == mistake
    assert f"Likely mistake, {mistake}" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, first_failure", [
    ("last position", "a padded batch (lengths 7, 5, 3)"),
    ("padded queries counted", "a padded batch (lengths 7, 5, 3)"),
    ("mean over the [SEP]s", "a sentence pair: [CLS] A [SEP] B [SEP], padded"),
])
def test_sep_weight_mistakes_are_named(mistake, first_failure):
    fn = next(m.fn for m in MISTAKES_SEP_WEIGHT if m.name == mistake)
    result = check_sep_weight(fn, verbose=False)
    assert not result.passed and result.failed_case == first_failure and result.mistake == mistake


def test_an_unknown_wrong_answer_gets_the_hint(capsys):
    result = check_offset_score(lambda w, m, offset: offset_score(w, m, offset) * 1.1)
    out = capsys.readouterr().out
    assert not result.passed and result.mistake is None and "Hint:" in out


def test_test_batches_have_nonzero_padded_queries():
    """A checker whose padded query rows were zero could not catch a learner who forgets the mask."""
    w, mask = _weights((7, 5, 3))
    assert torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)))
    assert (w[1, :, 5:].sum(-1) > 0.99).all()  # padded queries of row 1 attend like real ones
    assert (w[1, :, :, 5:] == 0).all()  # ... but nobody attends to padded keys
    ids = _ids((7, 5, 3))
    assert ids[1, 4] == 102 and ids[1, 6] == 0 and ids[2, 0] == 101


@pytest.mark.parametrize("pair, problem", [
    (("a", "b", "c"), "tuple of 4 strings"),
    (["The dog chased the ball because it was hungry.", "The dog chased the ball because it was round.", "dog", "ball"],
     "tuple of 4 strings"),
    (("The hamster chased the ball because it was hungry.", "The hamster chased the ball because it was round.",
      "hamster", "ball"), "split into"),
    (("The dog chased the dog because it was hungry.", "The dog chased the dog because it was round.", "dog", "dog"),
     "different words"),
    (("The dog chased the ball because he was hungry.", "The dog chased the ball because it was round.", "dog", "ball"),
     "exactly once"),
    (("The dog was hungry, so it chased the ball.", "The dog was hungry, so it chased the cat.", "dog", "ball"),
     "must come before 'it'"),
    (("The dog chased the ball because it was hungry.", "The ball hit the dog because it was round.", "dog", "ball"),
     "identical up to and including 'it'"),
    (("The dog chased the ball because it was hungry.", "The dog chased the ball because it was hungry.", "dog", "ball"),
     "the same"),
])
def test_control_pair_rejects_flawed_designs(pair, problem, tokenizer, capsys):
    result = check_control_pair(pair, tokenizer)
    out = capsys.readouterr().out
    assert result.attempted and not result.passed and problem in result.message, result.message
    assert out.startswith("✗ control_pair")


def test_control_pair_none_is_not_attempted(tokenizer, capsys):
    result = check_control_pair(None, tokenizer)
    assert not result.attempted and "not attempted yet" in capsys.readouterr().out


# What the learner reads must name the idea, not paste the solution's code (issue 8: "hints
# that give away the solution"); the same rule as tests/test_exercise_mistakes.py for lessons 01-06.
_SOLUTION_CODE = r"torch\.|\[:, None|None, :\]|\.sum\(|\.mean\(|weights \*|\.gather\(|\.clamp\(|\.expand|\.bool\(\)"


@pytest.mark.parametrize("check, mistakes", [(check_offset_score, MISTAKES_OFFSET_SCORE),
                                             (check_sep_weight, MISTAKES_SEP_WEIGHT)])
def test_hints_and_mistake_messages_show_no_solution_code(check, mistakes, capsys):
    import re

    code = re.compile(_SOLUTION_CODE)
    for mistake in mistakes:
        assert not code.search(mistake.message), (mistake.name, code.search(mistake.message))

    def unknown_bug(*args):
        raise IndexError("some bug of the learner's")

    check(unknown_bug)
    hint = capsys.readouterr().out.split("Hint: ", 1)[1]
    assert not code.search(hint), code.search(hint)


# Independent wrong implementations (loops, numpy), one per catalogued mistake: the catalogue's
# own versions could drift from the mistake they name and still recognise themselves.
def _loop_offset(weights, attention_mask, offset, *, use_mask=True, sign=1, zero_missing=False):
    w, real = weights.numpy(), attention_mask.numpy().astype(bool)
    B, H, T, _ = w.shape
    total, count = torch.zeros(H, dtype=torch.float64), 0
    for b in range(B):
        for t in range(T):
            s = t + sign * offset
            query_ok = real[b, t] or not use_mask
            key_ok = 0 <= s < T and (real[b, s] or not use_mask)
            if query_ok and (key_ok or zero_missing):
                count += 1
                if key_ok:
                    total += torch.from_numpy(w[b, :, t, s].copy())
    return total / count


def _loop_sep(weights, token_ids, attention_mask, *, key="sep", all_queries=False, mean=False):
    w, ids, real = weights.numpy(), token_ids.numpy(), attention_mask.numpy().astype(bool)
    B, H, T, _ = w.shape
    total, count = torch.zeros(H, dtype=torch.float64), 0
    for b in range(B):
        keys = [T - 1] if key == "last" else [s for s in range(T) if ids[b, s] == 102]
        for t in range(T):
            if real[b, t] or all_queries:
                mass = sum(torch.from_numpy(w[b, :, t, s].copy()) for s in keys)
                total += mass / len(keys) if mean else mass
                count += 1
    return total / count


INDEPENDENT = {
    (check_offset_score, "ignores the mask"): lambda w, m, o: _loop_offset(w, m, o, use_mask=False),
    (check_offset_score, "offset sign flipped"): lambda w, m, o: _loop_offset(w, m, o, sign=-1),
    (check_offset_score, "missing keys counted as zero"): lambda w, m, o: _loop_offset(w, m, o, zero_missing=True),
    (check_sep_weight, "last position"): lambda w, ids, m: _loop_sep(w, ids, m, key="last"),
    (check_sep_weight, "padded queries counted"): lambda w, ids, m: _loop_sep(w, ids, m, all_queries=True),
    (check_sep_weight, "mean over the [SEP]s"): lambda w, ids, m: _loop_sep(w, ids, m, mean=True),
}


def test_every_lesson_09_mistake_has_an_independent_implementation():
    names = {(check_offset_score, m.name) for m in MISTAKES_OFFSET_SCORE} | \
        {(check_sep_weight, m.name) for m in MISTAKES_SEP_WEIGHT}
    assert set(INDEPENDENT) == names


@pytest.mark.parametrize("check, name", list(INDEPENDENT), ids=[name for _, name in INDEPENDENT])
def test_an_independent_wrong_implementation_is_recognised(check, name):
    result = check(INDEPENDENT[check, name], verbose=False)
    assert result.attempted and not result.passed and result.mistake == name, result


def test_the_loop_versions_are_right_when_nothing_is_wrong():
    """The loops above compute the right score with no mistake switched on: so the mistakes,
    not the loops, are what the checker names."""
    assert check_offset_score(_loop_offset, verbose=False).passed
    assert check_sep_weight(_loop_sep, verbose=False).passed


def test_control_pair_success_does_not_overclaim(tokenizer, capsys):
    """A pair the program cannot judge ("hungry" / "very hungry" switches nothing) passes the design
    checks, but the verdict says the referent switch is for a reader to judge, not that the pair is valid."""
    pair = ("The dog did not eat the food because it was hungry.",
            "The dog did not eat the food because it was very hungry.", "dog", "food")
    result = check_control_pair(pair, tokenizer)
    out = capsys.readouterr().out
    assert result.passed and "valid control pair" not in out and "only a reader can judge" in out


def test_control_pair_names_a_wrong_tokenizer():
    with pytest.raises(TypeError, match="tokenizer"):
        check_control_pair(None, "bert-base-uncased")
