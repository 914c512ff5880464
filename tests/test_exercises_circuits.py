"""Lessons 07 and 08's exercises: the hand-built heads are checked, and, built from the
solutions, they do what the lesson says (a previous-token score above 0.9 once the strength
is large enough, an induction circuit that predicts the repeated part); the prediction
checker records the verdict and never raises."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attn_core.exercises.circuits import (check_induction_qk, check_prediction, check_previous_token_qk,
                                          hand_built_circuit, residual_stream)
from attn_core.heads import head_scores
from attn_core.tasks import InductionTask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `solutions` imports from the repository
from solutions.circuits import induction_qk, previous_token_qk  # noqa: E402

TASK = InductionTask(vocab_size=20, seq_len=24, min_period=5, max_period=10)
V, T = TASK.vocab_size, TASK.seq_len


def test_checkers_accept_the_solutions(capsys):
    for check, fn in ((check_previous_token_qk, previous_token_qk), (check_induction_qk, induction_qk)):
        result = check(fn)
        assert result.passed and result.n_passed == result.n_cases >= 3, result
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("check", [check_previous_token_qk, check_induction_qk])
def test_a_stub_is_not_attempted(check, capsys):
    def stub(V, T, strength):
        raise NotImplementedError

    result = check(stub)
    assert not result.attempted and "not attempted yet" in capsys.readouterr().out


def test_a_transposed_previous_token_matrix_is_named(capsys):
    result = check_previous_token_qk(lambda V, T, s: previous_token_qk(V, T, s).T)
    assert result.mistake == "next token instead of previous", result


def _circuit(strength_prev, strength_ind, n=256):
    batch = TASK.sample(n, torch.Generator().manual_seed(2024))
    logits, weights = hand_built_circuit(batch.tokens, V, previous_token_qk(V, T, strength_prev),
                                         induction_qk(V, T, strength_ind))
    asked = batch.targets >= 0
    accuracy = float(((logits.argmax(-1) == batch.targets) & asked).sum() / asked.sum())
    return head_scores(weights[0], batch.tokens), head_scores(weights[1], batch.tokens), accuracy


def test_the_residual_stream_is_readable():
    tokens = torch.tensor([[2, 0, 1]])
    x = residual_stream(tokens, 3)  # (1, 3, 2*3 + 3)
    assert x.shape == (1, 3, 9)
    assert torch.equal(x[0, :, :3].argmax(-1), tokens[0]) and torch.equal(x[0, :, 3:6], torch.eye(3, dtype=x.dtype))
    assert (x[0, :, 6:] == 0).all()


def test_the_previous_token_score_passes_09_between_strength_4_and_5():
    """Lesson 07's prediction exercise: strength 4 is not enough, 5 is."""
    assert _circuit(4.0, 8.0)[0]["previous_token"].item() < 0.9 < _circuit(5.0, 8.0)[0]["previous_token"].item()


def test_the_hand_built_induction_circuit_solves_the_task():
    prev, ind, accuracy = _circuit(8.0, 8.0)
    assert prev["previous_token"].item() > 0.99 and ind["induction"].item() > 0.9
    assert accuracy > 0.9
    # without the previous-token head (strength 0: an even spread) the induction head finds nothing
    assert _circuit(0.0, 8.0)[2] < 0.3


def test_the_duplicate_token_mistake_does_not_solve_the_task():
    batch = TASK.sample(64, torch.Generator().manual_seed(1))
    wrong = torch.block_diag(8.0 * torch.eye(V), torch.zeros(T + V, T + V))  # the key's own token
    logits, _ = hand_built_circuit(batch.tokens, V, previous_token_qk(V, T, 8.0), wrong)
    asked = batch.targets >= 0
    assert float(((logits.argmax(-1) == batch.targets) & asked).sum() / asked.sum()) < 0.2


# ----------------------------------------------------------------- check_prediction


OUTCOMES = {"none": 0.44, "learned": float("nan"), "sinusoidal": 0.36, "rope": 0.40, "alibi": 1.0}
SEEDS = [{"none": 0.4, "learned": None, "sinusoidal": 0.3, "rope": 0.5, "alibi": 1.0},
         {"none": 0.4, "learned": None, "sinusoidal": 0.3, "rope": 0.3, "alibi": 0.9}]


def test_a_prediction_not_made_yet_is_not_attempted(capsys):
    result = check_prediction(None, OUTCOMES, question="best at 4L")
    assert not result.attempted and "not attempted yet" in capsys.readouterr().out


def test_a_right_prediction_passes_and_counts_the_seeds(capsys):
    result = check_prediction("alibi", OUTCOMES, question="best at 4L", seeds=SEEDS)
    out = capsys.readouterr().out
    assert result.passed and out.startswith("✓ prediction: right.") and "in 2 of 2 seeds" in out


def test_a_wrong_prediction_fails_with_its_score(capsys):
    result = check_prediction("rope", OUTCOMES, question="best at 4L", seeds=SEEDS)
    out = capsys.readouterr().out
    assert not result.passed and result.attempted and "scored 0.40" in out and "in 0 of 2 seeds" in out


def test_a_scheme_that_could_not_run_ranks_last(capsys):
    result = check_prediction("learned", OUTCOMES, question="best at 4L")
    assert not result.passed and "could not run" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["ALiBi", 3, ["alibi"], object()])
def test_an_unknown_option_is_told_never_raised(bad, capsys):
    result = check_prediction(bad, OUTCOMES, question="best at 4L")
    assert not result.passed and result.verdict == "wrong type" and "not one of the options" in capsys.readouterr().out


def test_ties_count_for_every_winner(capsys):
    assert check_prediction("a", {"a": 1.0, "b": 1.0}, question="q").passed
    assert check_prediction("b", {"a": 1.0, "b": 1.0}, question="q").passed
