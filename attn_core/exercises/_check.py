"""Friendly checking of a learner's exercise against the package's own implementation."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..viz import to_numpy

__all__ = ["Case", "Result", "run_checks"]


@dataclass(frozen=True)
class Case:
    """One test case: call the learner's function with `args`/`kwargs` and compare the
    result with `expected` (a value, or a callable that returns it lazily)."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected: Any = None
    atol: float = 1e-5
    rtol: float = 1e-5


@dataclass
class Result:
    """What a check found; `passed` is True only when every case passed."""

    exercise: str
    attempted: bool
    n_passed: int
    n_cases: int
    failed_case: str | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.attempted and self.n_passed == self.n_cases

    def __repr__(self) -> str:  # one line, so a check cell's stored output stays short
        state = "passed" if self.passed else ("not attempted" if not self.attempted else "failed")
        return f"<{self.exercise}: {state}, {self.n_passed}/{self.n_cases} cases>"


def _compare(got, expected, case: Case) -> str | None:
    """None if `got` matches `expected`, else a short description of the difference."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {type(got).__name__}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = _compare(g, e, case)
            if problem:
                return f"item {i}: {problem}"
        return None
    try:
        g, e = to_numpy(got).astype(float), to_numpy(expected).astype(float)
    except (TypeError, ValueError):
        return f"expected an array, got {type(got).__name__}"
    if g.shape != e.shape:
        return f"expected shape {tuple(e.shape)}, got shape {tuple(g.shape)}"
    if not np.allclose(g, e, atol=case.atol, rtol=case.rtol, equal_nan=True):
        bad = np.argwhere(np.isnan(g) & ~np.isnan(e))  # nan where a number was due: say so first
        if len(bad):
            where = tuple(int(i) for i in bad[0])
            return (f"got nan at index {where} where {e[where]:.4f} was expected "
                    f"({len(bad)} nan value{'s' if len(bad) != 1 else ''} in all)")
        gap = np.where(np.isnan(e) != np.isnan(g), np.inf, np.abs(g - e))
        worst = np.unravel_index(np.nanargmax(gap), g.shape) if g.size else ()
        return (f"values differ; largest gap at index {tuple(int(i) for i in worst)}: "
                f"expected {e[worst]:.4f}, got {g[worst]:.4f}")
    return None


def run_checks(exercise: str, fn: Callable, cases: list[Case], hint: str, *, verbose: bool = True) -> Result:
    """Run `fn` on each case and print friendly feedback.

    Prints one line per outcome: all passed; or the first failing case, what differed,
    and `hint`. A function that still raises `NotImplementedError` prints a "not
    attempted yet" line instead of a traceback, so the notebook runs top to bottom.
    Passing something that is not a function (a common slip: `check_x(x())`) is a TypeError.
    """
    if not callable(fn):
        raise TypeError(f"check_{exercise} expects your function itself, as in check_{exercise}({exercise}), "
                        f"got {type(fn).__name__}")
    n_passed = 0
    for case in cases:
        expected = case.expected() if callable(case.expected) else case.expected
        try:
            got = fn(*case.args, **case.kwargs)
        except NotImplementedError:
            result = Result(exercise, False, 0, len(cases), message="not attempted yet")
            if verbose:
                print(f"○ {exercise}: not attempted yet. Replace `raise NotImplementedError` with your code, then run this cell again.")
            return result
        except Exception as err:  # a learner's bug: report it like a failed case, never crash the notebook
            frame = traceback.extract_tb(err.__traceback__)[-1]
            problem = f"raised {type(err).__name__}: {err} (line {frame.lineno})"
        else:
            problem = _compare(got, expected, case)
        if problem:
            result = Result(exercise, True, n_passed, len(cases), failed_case=case.name, message=problem)
            if verbose:
                print(f"✗ {exercise}: {n_passed}/{len(cases)} cases passed. First failure, case '{case.name}': {problem}")
                print(f"  Hint: {hint}")
            return result
        n_passed += 1
    if verbose:
        print(f"✓ {exercise}: all {len(cases)} cases passed.")
    return Result(exercise, True, n_passed, len(cases))
