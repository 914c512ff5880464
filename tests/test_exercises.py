"""Every exercise checker accepts its solution, and says "not attempted yet" for a stub."""

import importlib
import sys
from pathlib import Path

import pytest

from attn_core.exercises import CHECKS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so `solutions` imports from the repository


def solution_for(check_name: str):
    module = CHECKS[check_name].__module__.rsplit(".", 1)[-1]  # attn_core.exercises.<topic>
    fn_name = check_name.removeprefix("check_")
    solutions = importlib.import_module(f"solutions.{module}")
    assert hasattr(solutions, fn_name), f"solutions/{module}.py has no function {fn_name} for {check_name}"
    return getattr(solutions, fn_name)


def test_every_lesson_has_exercises():
    modules = {fn.__module__.rsplit(".", 1)[-1] for fn in CHECKS.values()}
    assert modules == {"attention", "qkv", "self_attention", "multihead", "positional", "masks", "circuits", "inference"}
    assert len(CHECKS) >= 12


@pytest.mark.parametrize("check_name", sorted(CHECKS))
def test_checker_accepts_solution(check_name, capsys):
    result = CHECKS[check_name](solution_for(check_name))
    out = capsys.readouterr().out
    assert result.passed, out
    assert "✓" in out and "passed" in out


@pytest.mark.parametrize("check_name", sorted(CHECKS))
def test_unattempted_exercise_prints_a_line_not_a_traceback(check_name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = CHECKS[check_name](stub)
    out = capsys.readouterr().out
    assert not result.passed and not result.attempted
    assert "not attempted yet" in out and "Traceback" not in out


@pytest.mark.parametrize("check_name", sorted(CHECKS))
def test_a_crashing_attempt_is_reported_as_a_failed_case(check_name, capsys):
    def buggy(*args, **kwargs):
        return [][1]

    result = CHECKS[check_name](buggy)
    out = capsys.readouterr().out
    assert result.attempted and not result.passed
    assert "IndexError" in out and "Hint:" in out
