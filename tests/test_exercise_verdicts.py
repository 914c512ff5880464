"""The verdicts every exercise checker gives, whatever the exercise: a forgotten `return`,
an input changed in place, a string / complex / numpy / list answer, a float mask, an error
located in the learner's own code, a `NotImplementedError` from torch (not "not attempted"),
and a zoo of hostile return values that must never make the checker itself raise."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import attn_core.exercises as exercises
from attn_core.exercises import Case, Result, run_checks

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `solutions` imports from the repository

# every checker that checks a function: CHECKS (lessons 01-06) and lesson 09's two scores
# (check_control_pair checks a design, not a function)
CHECKS = {**exercises.CHECKS, "check_offset_score": exercises.check_offset_score,
          "check_sep_weight": exercises.check_sep_weight}
ALL = sorted(CHECKS)
NUMBER_CHECKS = {"check_attention_flops", "check_count_parameters", "check_cache_memory"}  # the answer is a number, not a tensor
MASK_CHECKS = {"check_build_causal_mask", "check_build_padding_mask"}  # the answer is a boolean mask
INT_ARGS_ONLY = {"check_attention_flops", "check_count_parameters", "check_positional_encoding", "check_alibi",
                 "check_build_causal_mask", "check_previous_token_qk", "check_induction_qk",
                 "check_cache_memory"}  # nothing the learner could change in place


def solution_for(check_name: str):
    module = CHECKS[check_name].__module__.rsplit(".", 1)[-1]
    return getattr(importlib.import_module(f"solutions.{module}"), check_name.removeprefix("check_"))


def returning(check_name: str, transform):
    """The solution with its answer (each item of a tuple answer) passed through `transform`."""
    solution = solution_for(check_name)

    @functools.wraps(solution)
    def learner(*args, **kwargs):
        out = solution(*args, **kwargs)
        return tuple(transform(o) for o in out) if isinstance(out, tuple) else transform(out)

    return learner


def run(check_name, fn, capsys):
    result = CHECKS[check_name](fn)
    return result, capsys.readouterr().out


# ----------------------------------------------------------------- None, strings, complex, numpy, lists


@pytest.mark.parametrize("check_name", ALL)
def test_a_forgotten_return_is_told_exactly_that(check_name, capsys):
    solution = solution_for(check_name)

    def forgot_return(*args, **kwargs):
        solution(*args, **kwargs)  # computed, never returned

    result, out = run(check_name, forgot_return, capsys)
    assert result.attempted and not result.passed and result.verdict == "returned None"
    assert "returned None" in out and "forget the `return`" in out and "Hint:" not in out
    assert "nan" not in result.message and "shape" not in result.message and result.mistake is None


@pytest.mark.parametrize("check_name", ALL)
def test_a_string_answer_is_not_a_pass(check_name, capsys):
    result, out = run(check_name, returning(check_name, str), capsys)
    assert not result.passed and result.verdict == "wrong type" and "string" in result.message
    if check_name in NUMBER_CHECKS:
        assert "return a number, not its text" in out  # '960' is not 960


@pytest.mark.parametrize("check_name", ALL)
def test_a_complex_answer_with_the_right_real_part_is_not_a_pass(check_name, capsys):
    def to_complex(o):
        return complex(o) if isinstance(o, int) else o.to(torch.complex128)

    result, out = run(check_name, returning(check_name, to_complex), capsys)
    assert not result.passed and result.verdict == "wrong type" and "complex" in result.message, result


@pytest.mark.parametrize("check_name", ALL)
def test_numpy_where_a_tensor_is_asked_and_a_tensor_where_a_number_is(check_name, capsys):
    if check_name in NUMBER_CHECKS:
        result, out = run(check_name, returning(check_name, torch.tensor), capsys)
        assert result.verdict == "wrong type" and "plain Python number" in result.message
    else:
        result, out = run(check_name, returning(check_name, lambda t: t.numpy()), capsys)
        assert result.verdict == "wrong type" and "numpy array" in result.message and "torch.Tensor" in out
    assert not result.passed and result.n_passed == 0


@pytest.mark.parametrize("check_name", sorted(set(ALL) - NUMBER_CHECKS))
def test_a_nested_list_is_not_a_pass(check_name, capsys):
    result, _ = run(check_name, returning(check_name, lambda t: t.tolist()), capsys)
    assert not result.passed and result.verdict == "wrong type" and "list" in result.message


@pytest.mark.parametrize("check_name", NUMBER_CHECKS)
def test_numbers_a_whole_float_passes_but_a_bool_or_a_fraction_does_not(check_name, capsys):
    assert run(check_name, returning(check_name, float), capsys)[0].passed  # 960.0 is the count 960
    result, _ = run(check_name, returning(check_name, lambda n: n + 0.25), capsys)
    assert result.verdict == "wrong values" and "whole number" in result.message
    result, _ = run(check_name, returning(check_name, lambda n: True), capsys)
    assert result.verdict == "wrong type" and "bool" in result.message


def test_half_precision_answers_are_told_why_they_are_off(capsys):
    result, out = run("check_scaled_dot_product_attention",
                      returning("check_scaled_dot_product_attention", lambda t: t.half()), capsys)
    assert result.verdict == "wrong values" and "torch.float16, which keeps only 2-3 significant digits" in out


@pytest.mark.parametrize("check_name", sorted(set(ALL) - NUMBER_CHECKS))
def test_a_tensor_that_requires_grad_is_a_fine_answer(check_name, capsys):
    def with_grad(t):
        return t.float().requires_grad_() if t.is_floating_point() else t

    assert run(check_name, returning(check_name, with_grad), capsys)[0].passed


# ----------------------------------------------------------------- masks: the dtype on every case


@pytest.mark.parametrize("check_name, when", [
    ("check_build_causal_mask", lambda args: args[0] == 1),  # only the T=1 case, not the first
    ("check_build_padding_mask", lambda args: isinstance(args[0], torch.Tensor)),  # only the last case
])
def test_mask_checkers_check_the_dtype_on_every_case(check_name, when, capsys):
    solution = solution_for(check_name)

    def float_sometimes(*args):
        mask = solution(*args)
        return mask.float() if when(args) else mask

    result, out = run(check_name, float_sometimes, capsys)
    assert result.verdict == "wrong dtype" and result.n_passed >= 1 and "torch.bool" in out
    assert "the values are right" in out


# ----------------------------------------------------------------- inputs changed in place


def _mutate_first(args, kwargs):
    """Change the first tensor or list argument in place; return its index, or None."""
    for i, a in enumerate([*args, *kwargs.values()]):
        if isinstance(a, torch.Tensor):
            if a.dtype == torch.bool:
                a.logical_not_()
            elif a.is_floating_point():
                a.mul_(2.0).add_(1.0)
            else:
                a.add_(1)
            return i
        if isinstance(a, list):
            a.append(a[0] if a else 0)
            return i
    return None


@pytest.mark.parametrize("check_name", ALL)
@pytest.mark.parametrize("when", ["after computing", "before computing"])
def test_an_input_changed_in_place_is_named(check_name, when, capsys):
    solution = solution_for(check_name)
    changed = []

    @functools.wraps(solution)
    def mutating(*args, **kwargs):
        if when == "before computing":
            changed.append(_mutate_first(args, kwargs))
        out = solution(*args, **kwargs)
        if when == "after computing":
            changed.append(_mutate_first(args, kwargs))
        return out

    result, out = run(check_name, mutating, capsys)
    if check_name in INT_ARGS_ONLY:
        assert changed[0] is None  # nothing to change: the solution's answer passes
        return
    assert changed[0] is not None, check_name
    name = list(inspect.signature(solution).parameters)[changed[0]]
    assert result.verdict == "changed its input" and result.n_passed == 0, result
    assert f"changed its input `{name}` in place" in out and "Hint:" not in out
    if check_name != "check_split_heads":  # split_heads returns a view of x: editing x edits the answer too
        assert ("the result is right, but" in out) == (when == "after computing")


def test_each_case_gets_its_own_copy_of_the_inputs(capsys):
    """stable_softmax's '(3, 4) matrix' cases share one tensor; the learner must get two copies,
    so that an in-place edit in one case cannot change what the next case (or the reference) sees."""
    seen = []
    solution = solution_for("check_stable_softmax")

    def recording(x, dim=-1):
        seen.append(x)  # kept alive, so ids stay unique
        return solution(x, dim)

    assert CHECKS["check_stable_softmax"](recording).passed
    assert len({id(x) for x in seen}) == len(seen) == 9
    shared = [x for x in seen if x.shape == (3, 4)]
    assert len(shared) == 2 and torch.equal(shared[0], shared[1]) and shared[0] is not shared[1]


# ----------------------------------------------------------------- NotImplementedError: the learner's, or torch's?


def _todo():
    raise NotImplementedError("write this helper")


@pytest.mark.parametrize("check_name", ALL)
def test_a_stub_helper_in_the_learners_file_is_not_attempted(check_name, capsys):
    result, out = run(check_name, lambda *args, **kwargs: _todo(), capsys)
    assert not result.attempted and "not attempted yet" in out


def _torch_not_implemented(*args, **kwargs):
    return F.interpolate(torch.zeros(2, 3), size=3)  # torch raises NotImplementedError for a 2-D input


def _c_not_implemented(*args, **kwargs):
    return torch.zeros(2, 2).to_sparse().view(-1)  # NotImplementedError from torch's C++ dispatcher


@pytest.mark.parametrize("check_name", ALL)
@pytest.mark.parametrize("fn", [_torch_not_implemented, _c_not_implemented])
def test_a_not_implemented_error_from_torch_is_an_error_in_the_learners_code(check_name, fn, capsys):
    result, out = run(check_name, fn, capsys)
    assert result.attempted and not result.passed and result.verdict == "raised"
    assert "not attempted" not in out and "raised NotImplementedError" in out
    line = inspect.getsourcelines(fn)[1] + 1  # the `return` line
    assert f"line {line} of {fn.__name__} (in {__file__})" in result.message
    assert "functional.py" not in result.message


@pytest.mark.parametrize("check_name", ALL)
def test_not_implemented_after_a_passed_case_is_an_attempt(check_name, capsys):
    solution = solution_for(check_name)
    calls = []

    def only_the_first_case(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise NotImplementedError("not for this shape yet")
        return solution(*args, **kwargs)

    result, out = run(check_name, only_the_first_case, capsys)
    assert result.attempted and result.n_passed == 1 and result.verdict == "raised"
    assert "does not handle this case yet" in out


# ----------------------------------------------------------------- where the error is


def _helper_that_fails(x):
    return x @ torch.ones(7, 7)  # wrong inner size


def _learner_calling_a_helper(*args, **kwargs):
    first = args[0] if isinstance(args[0], torch.Tensor) else torch.ones(2, 3)
    return _helper_that_fails(first.float())


@pytest.mark.parametrize("check_name", ALL)
def test_an_error_points_at_the_learners_line(check_name, capsys):
    result, out = run(check_name, _learner_calling_a_helper, capsys)
    line = inspect.getsourcelines(_helper_that_fails)[1] + 1
    assert result.verdict == "raised" and "RuntimeError" in result.message
    assert f"line {line} of _helper_that_fails" in result.message
    assert "x @ torch.ones(7, 7)" in out and "Hint:" in out
    assert f"\n  at line {line} of _helper_that_fails" in out  # the location on a line of its own


def test_an_error_inside_torchs_python_code_names_torch_and_the_learners_line(capsys):
    def softmax_of_a_list(x, dim=-1):
        return F.softmax([1.0, 2.0], dim=dim)  # torch's Python code raises

    result = CHECKS["check_stable_softmax"](softmax_of_a_list)
    assert "of softmax_of_a_list" in result.message and "surfaced inside torch" in result.message
    assert "functional.py" not in result.message


def test_an_error_in_a_notebook_cell_says_so():
    namespace: dict = {}
    filename = "/tmp/ipykernel_4242/123456789.py"  # how IPython names a cell's code
    exec(compile("def similarity_matrix(x):\n    return x @ x\n", filename, "exec"), namespace)
    result = CHECKS["check_similarity_matrix"](namespace["similarity_matrix"], verbose=False)
    assert "line 2 of similarity_matrix (in your notebook cell)" in result.message


# ----------------------------------------------------------------- a zoo of hostile answers


class _Boom(Exception):
    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")


class _Hostile:
    """Every protocol the checker might touch raises."""

    def __getattr__(self, name):
        raise RuntimeError(f"no {name}")

    def _raise(self, *args, **kwargs):
        raise RuntimeError("hostile")

    __repr__ = __str__ = __eq__ = __ne__ = __lt__ = __len__ = __iter__ = __array__ = __float__ = __int__ = _raise
    __index__ = __bool__ = __complex__ = __getitem__ = __format__ = __hash__ = _raise


class _SpoofTensor:
    __class__ = property(lambda self: torch.Tensor)  # isinstance(obj, torch.Tensor) is True


class _EvilTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError("evil tensor")


class _EvilInt(int):
    def _raise(self, *args):
        raise RuntimeError("evil int")

    __eq__ = __repr__ = __str__ = __int__ = __float__ = __index__ = __format__ = __abs__ = _raise
    __hash__ = int.__hash__


class _EvilTuple(tuple):
    def __len__(self):
        raise RuntimeError("no len")


class _LyingTuple(tuple):
    def __iter__(self):
        raise RuntimeError("no iter")


def _recurse(*args, **kwargs):
    return _recurse(*args, **kwargs)


def _raise(exc):
    def learner(*args, **kwargs):
        raise exc
    return learner


def _gen():
    yield 1


ZOO = {
    # returned values
    "numeric string": lambda: "960",
    "empty string": lambda: "",
    "bytes": lambda: b"\x00\x01",
    "complex number": lambda: 960 + 0j,
    "nan": lambda: float("nan"),
    "inf": lambda: float("inf"),
    "bool": lambda: True,
    "huge int": lambda: 10 ** 5000,
    "list of floats": lambda: [0.5, 0.5],
    "dict": lambda: {"out": 1},
    "set": lambda: {1, 2},
    "object": lambda: object(),
    "function": lambda: (lambda: 1),
    "class": lambda: int,
    "module": lambda: torch,
    "Ellipsis": lambda: ...,
    "NotImplemented": lambda: NotImplemented,
    "generator": _gen,
    "numpy object array": lambda: np.array([object(), object()]),
    "numpy strings": lambda: np.array(["a", "b"]),
    "meta tensor": lambda: torch.zeros(4, 4, device="meta"),
    "meta tensor, mask shape": lambda: torch.zeros(2, 1, 1, 3, device="meta", dtype=torch.bool),
    "sparse tensor": lambda: torch.eye(4).to_sparse(),
    "huge expanded tensor": lambda: torch.zeros(1).expand(10 ** 6, 10 ** 6),
    "0-d tensor": lambda: torch.tensor(1.0),
    "empty tensor": lambda: torch.empty(0),
    "complex tensor": lambda: torch.zeros(4, 4, dtype=torch.complex64),
    "tensor subclass that raises": lambda: torch.zeros(4, 4).as_subclass(_EvilTensor),
    "object spoofing torch.Tensor": lambda: _SpoofTensor(),
    "object whose every protocol raises": lambda: _Hostile(),
    "int whose __eq__ raises": lambda: _EvilInt(960),
    "tuple whose len raises": lambda: _EvilTuple((1, 2)),
    "tuple whose iter raises": lambda: _LyingTuple((torch.zeros(3, 6), torch.zeros(3, 5))),
    "tuple of hostile objects": lambda: (_Hostile(), _Hostile()),
}

RAISING = {
    "exception whose str raises": _raise(_Boom()),
    "NotImplementedError whose str raises, after torch": lambda *a, **k: torch.zeros(1).__getitem__(_raise(_Boom())()),
    "huge message": _raise(ValueError("x" * 1_000_000)),
    "SystemExit": _raise(SystemExit(3)),
    "infinite recursion": _recurse,
}


@pytest.mark.parametrize("check_name", ALL)
@pytest.mark.parametrize("value", list(ZOO), ids=list(ZOO))
def test_no_hostile_answer_can_make_the_checker_raise_or_pass(check_name, value, capsys):
    result = CHECKS[check_name](lambda *args, **kwargs: ZOO[value]())
    out = capsys.readouterr().out
    assert isinstance(result, Result) and result.attempted and not result.passed
    assert result.verdict in {"returned None", "wrong type", "wrong dtype", "wrong shape", "wrong values"}, result
    assert out.startswith(f"✗ {check_name[6:]}: 0/") and len(out) < 2000
    assert repr(result) == str(result) and "failed" in repr(result)


@pytest.mark.parametrize("check_name", ALL)
@pytest.mark.parametrize("name", list(RAISING), ids=list(RAISING))
def test_no_hostile_exception_can_make_the_checker_raise(check_name, name, capsys):
    result = CHECKS[check_name](RAISING[name])
    out = capsys.readouterr().out
    assert result.attempted and not result.passed and result.verdict == "raised"
    assert len(out) < 2000 and "Traceback" not in out


# ----------------------------------------------------------------- the printed verdict


def test_the_result_reads_well_in_a_notebook(capsys):
    def stub(x):
        raise NotImplementedError  # your code here

    assert repr(CHECKS["check_merge_heads"](stub)) == "<merge_heads: not attempted, 0/6 cases>"
    solution = solution_for("check_merge_heads")
    assert repr(CHECKS["check_merge_heads"](solution)) == "<merge_heads: passed, 6/6 cases>"
    wrong = CHECKS["check_merge_heads"](lambda x: x.reshape(x.shape[0], x.shape[2], -1))
    assert repr(wrong) == "<merge_heads: failed, 0/6 cases; wrong values: reshape without transpose>"
    assert str(wrong) == repr(wrong)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("○ merge_heads: not attempted yet.") and lines[1] == "✓ merge_heads: all 6 cases passed."
    assert lines[2].startswith("✗ merge_heads: 0/6 cases passed. First failure, case 'B=2, 3 heads, T=5, d_head=4': ")
    assert lines[3].startswith("  Likely mistake, reshape without transpose: ")
    assert len(lines) == 4


def test_run_checks_keeps_its_positional_signature_and_takes_mistakes_by_keyword(capsys):
    cases = [Case("two", (2,), expected=4), Case("three", (3,), expected=9)]
    assert run_checks("square", lambda n: n * n, cases, "multiply n by itself").passed
    result = run_checks("square", lambda n: n + n, cases, "multiply n by itself")
    assert result.failed_case == "three" and "Hint: multiply n by itself" in capsys.readouterr().out
    from attn_core.exercises import Mistake

    result = run_checks("square", lambda n: 2 * n, cases, "hint", verbose=False,
                        mistakes=[Mistake("doubled", lambda n: n + n, "you added n to itself")])
    assert result.mistake == "doubled" and result.verdict == "wrong values"


@pytest.mark.parametrize("check_name", ALL)
def test_solutions_pass_with_float64_as_the_default_dtype(check_name, capsys):
    """A learner who ran torch.set_default_dtype(torch.float64) still gets a verdict, not a crash."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        result = CHECKS[check_name](solution_for(check_name))
    finally:
        torch.set_default_dtype(previous)
    assert result.passed, capsys.readouterr().out


def test_a_module_as_the_learners_function_points_at_its_forward(capsys):
    """A learner may pass an nn.Module: the error is located in *their* forward, not in
    torch's Module.__call__; torch's own NotImplementedError (a Module without forward) is
    an error in their code, not "not attempted"."""
    class WrongWidth(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(7, 7)

        def forward(self, x, dim=-1):
            return self.proj(x)  # the learner's line

    result = CHECKS["check_stable_softmax"](WrongWidth(), verbose=False)
    assert result.verdict == "raised" and "line" in result.message
    assert "of forward" in result.message and "self.proj(x)" in result.message
    assert "module.py" not in result.message

    class NoForward(torch.nn.Module):
        pass

    result = CHECKS["check_stable_softmax"](NoForward(), verbose=False)
    assert result.attempted and result.verdict == "raised" and "NotImplementedError" in result.message


def _c_not_implemented_commented(*args, **kwargs):
    return torch.zeros(2, 2).to_sparse().view(-1)  # this may raise, the learner noted


def _c_not_implemented_in_a_string(*args, **kwargs):
    return torch.zeros(2, 2).to_sparse().view(-1) if "raise" else None


@pytest.mark.parametrize("fn", [_c_not_implemented_commented, _c_not_implemented_in_a_string])
def test_the_word_raise_in_a_comment_or_string_is_not_a_stub(fn, capsys):
    """Only a `raise` statement is a stub: torch's NotImplementedError on a line whose comment
    or string says "raise" is an error in the learner's code, not "not attempted"."""
    result, out = run("check_stable_softmax", fn, capsys)
    assert result.attempted and result.verdict == "raised" and "NotImplementedError" in result.message
    assert "not attempted" not in out
