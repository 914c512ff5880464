"""Friendly checking of a learner's exercise against the package's own implementation.

`run_checks` runs the learner's function on a list of `Case`s and stops at the first case
that fails, with one verdict that says what went wrong:

- "not attempted": the learner's own stub raised `NotImplementedError` (one raised inside
  torch is an error in their code, reported with the line of *their* code that led to it);
- "returned None" (a forgotten `return`), "changed its input" (an in-place edit of an
  argument; every case gets fresh copies, so one case cannot spoil the next);
- a wrong kind of answer (a string, a complex number, a numpy array where a tensor is
  asked, a float mask where a boolean one is asked), checked on every case;
- a wrong shape or wrong values; then the exercise's catalogue of typical `Mistake`s is
  matched against the learner's output (pythonwhat's "check the result first, diagnose only
  when it is wrong") and the matching mistake is named and explained, without the solution.

Nothing the learner's function returns or raises can make the checker itself raise.
"""

from __future__ import annotations

import copy
import functools
import inspect
import io
import linecache
import math
import numbers
import os
import re
import sys
import sysconfig
import tokenize
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["Case", "Mistake", "Result", "run_checks"]


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


@dataclass(frozen=True)
class Mistake:
    """A typical wrong version of an exercise, recognised by its output.

    `fn` takes the same arguments as the learner's function and returns what the mistaken
    version returns (or raises what it raises: an error is matched by type and message).
    `message` says what the mistake is and why it is wrong, without giving the solution.
    """

    name: str
    fn: Callable
    message: str


@dataclass
class Result:
    """What a check found; `passed` is True only when every case passed.

    `verdict` is one of "passed", "not attempted", "returned None", "changed its input",
    "wrong type", "wrong dtype", "wrong shape", "wrong values", "raised"; `mistake` names
    the catalogued mistake the learner's output matched, if any.
    """

    exercise: str
    attempted: bool
    n_passed: int
    n_cases: int
    failed_case: str | None = None
    message: str = ""
    verdict: str = ""
    mistake: str | None = None

    def __post_init__(self):
        if not self.verdict:
            self.verdict = ("not attempted" if not self.attempted else
                            "passed" if self.n_passed == self.n_cases else "wrong values")

    @property
    def passed(self) -> bool:
        return self.attempted and self.n_passed == self.n_cases

    def __repr__(self) -> str:  # one line, so a check cell's stored output stays short
        state = "passed" if self.passed else ("not attempted" if not self.attempted else "failed")
        tail = f"; {self.verdict}" if state == "failed" else ""
        if self.mistake:
            tail += f": {self.mistake}"
        return f"<{self.exercise}: {state}, {self.n_passed}/{self.n_cases} cases{tail}>"

    __str__ = __repr__


# ----------------------------------------------------------------- safe text


def _safe(fn: Callable[[], str], fallback: str) -> str:
    try:
        text = fn()
        return text if isinstance(text, str) else fallback
    except BaseException as err:  # noqa: BLE001  a learner's object may raise anything from __str__
        if isinstance(err, KeyboardInterrupt):
            raise
        return fallback


def _type_name(obj) -> str:
    return _safe(lambda: type(obj).__name__, "object")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(obj) -> str:
    """A short, safe rendering of a learner's value (never the whole tensor)."""
    if isinstance(obj, str):
        return _safe(lambda: repr(_short(obj, 40)), "a string")
    return _safe(lambda: _short(repr(obj), 60), f"a {_type_name(obj)}")


def _error_text(err: BaseException) -> str:
    name = _type_name(err)
    text = _safe(lambda: str(err), "<its message could not be shown>")
    return f"{name}: {_short(text)}" if text else name


# ----------------------------------------------------------------- where the learner's code is

_LIBRARY_DIRS = tuple(sorted({os.path.realpath(p) for p in (
    *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    os.path.dirname(torch.__file__), os.path.dirname(np.__file__),
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # attn_core itself
) if p}))


@functools.lru_cache(maxsize=512)
def _is_library_file(path: str) -> bool:
    if not path or path.startswith("<frozen") or path.startswith("<string"):
        return True
    real = os.path.realpath(path) if not path.startswith("<") else path
    return any(real == d or real.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def _code_of(fn):
    """The code object of the learner's function (through partials, decorators, callables)."""
    try:
        for _ in range(10):
            if isinstance(fn, functools.partial):
                fn = fn.func
            elif inspect.ismethod(fn):
                fn = fn.__func__
            elif getattr(fn, "__wrapped__", None) is not None:
                fn = fn.__wrapped__
            else:
                break
        code = getattr(fn, "__code__", None)
        if code is None and not inspect.isroutine(fn):
            code = getattr(getattr(type(fn), "__call__", None), "__code__", None)
        # a library's code (torch's Module.__call__ for an nn.Module) is not the learner's:
        # without it, their frames are found as every frame outside the libraries
        if not inspect.iscode(code) or (not code.co_filename.startswith("<") and _is_library_file(code.co_filename)):
            return None
        return code
    except Exception:  # noqa: BLE001
        return None


def _learner_frames(err: BaseException, code) -> list:
    """Frames of the traceback that run the learner's code: their function, its file (their
    cell or module), or any file outside the libraries; the checker's own frame is left out."""
    frames = []
    try:
        for frame, lineno in traceback.walk_tb(err.__traceback__):
            c = frame.f_code
            mine = code is not None and (c is code or c.co_filename == code.co_filename)
            if mine or (c.co_filename != __file__ and not _is_library_file(c.co_filename)):
                frames.append((c, lineno))
    except Exception:  # noqa: BLE001
        pass
    return frames


def _where(err: BaseException, code) -> str:
    """'\n  at line N of f (in file): source', pointing into the learner's code."""
    frames = _learner_frames(err, code)
    if not frames:
        return ""
    c, lineno = frames[-1]
    src = _safe(lambda: linecache.getline(c.co_filename, lineno).strip(), "")
    file = c.co_filename
    if "ipykernel" in file or file.startswith("<ipython-input"):
        place = "in your notebook cell"
    else:
        place = f"in {file}"
    where = f"line {lineno} of {c.co_name} ({place})"
    try:
        deepest = traceback.extract_tb(err.__traceback__)[-1]
        inside = "" if deepest.filename == c.co_filename and deepest.lineno == lineno else \
            f"; the error surfaced inside {_library_name(deepest.filename)}, called from your line"
    except Exception:  # noqa: BLE001
        inside = ""
    return f"\n  at {where}{': ' + _short(src, 100) if src else ''}{inside}"


def _library_name(path: str) -> str:
    for name, mod in (("torch", torch), ("numpy", np)):
        if os.path.realpath(path).startswith(os.path.dirname(mod.__file__)):
            return name
    return os.path.basename(path)


def _is_own_stub(err: BaseException, code) -> bool:
    """True when the learner's own code raised this NotImplementedError with a `raise`
    statement (not torch, not numpy, not a C function called from their line)."""
    try:
        frames = list(traceback.walk_tb(err.__traceback__))
        frame, lineno = frames[-1]
        c = frame.f_code
        mine = (code is not None and (c is code or c.co_filename == code.co_filename)) or \
            (c.co_filename != __file__ and not _is_library_file(c.co_filename))
        if not mine:
            return False
        line = linecache.getline(c.co_filename, lineno)
        return not line.strip() or _has_raise_statement(line)
    except Exception:  # noqa: BLE001
        return False


def _has_raise_statement(line: str) -> bool:
    """Does this source line hold a `raise` statement (not the word in a comment or a string)?"""
    try:
        tokens = tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline)
        return any(t.type == tokenize.NAME and t.string == "raise" for t in tokens)
    except (tokenize.TokenError, SyntaxError):  # a statement continued on the next line: `raise X(`
        return re.search(r"\braise\b", line.split("#", 1)[0]) is not None


# ----------------------------------------------------------------- inputs: copies, and did they change?


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    try:
        return copy.deepcopy(obj)
    except Exception:  # noqa: BLE001
        return obj


def _same(a, b) -> bool:
    """Exact equality of an original input and the copy the learner received (nan == nan)."""
    try:
        if isinstance(a, torch.Tensor):
            if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
                return False
            if a.is_floating_point() or a.is_complex():
                return bool(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
            return bool(torch.equal(a, b))
        if isinstance(a, np.ndarray):
            return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return True  # cannot tell: do not accuse the learner


def _argument_names(fn, args: tuple, kwargs: dict) -> list[str]:
    names = [f"argument {i + 1}" for i in range(len(args))]
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i, p in enumerate(params[: len(args)]):
            names[i] = p.name
    except Exception:  # noqa: BLE001  an odd callable: keep the numbered names
        pass
    return names + list(kwargs)


# ----------------------------------------------------------------- comparing an answer with the expected one


def _is_number(x) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, (bool, np.bool_))


def _kind_problem(got, expected) -> tuple[str, str] | None:
    """(verdict, message) if `got` is the wrong kind of thing for `expected`, else None."""
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)):
            return "wrong type", f"expected a tuple of {len(expected)} values, got a {_type_name(got)}"
        n = _safe(lambda: str(len(got)), "?")
        if n != str(len(expected)):
            return "wrong type", f"expected a tuple of {len(expected)} values, got {n}"
        return None
    if isinstance(got, str):
        return "wrong type", (f"returned the string {_show(got)}; return a "
                              f"{'number' if _is_number(expected) else 'tensor'}, not its text")
    if isinstance(expected, torch.Tensor):
        if isinstance(got, np.ndarray):
            return "wrong type", ("returned a numpy array; this exercise works on torch tensors and must return a "
                                  "torch.Tensor (torch.from_numpy turns an array into one)")
        if not isinstance(got, torch.Tensor):
            return "wrong type", f"expected a torch.Tensor, got a {_type_name(got)} ({_show(got)})"
        if got.is_complex():
            return "wrong type", f"returned a complex tensor ({got.dtype}); the answer is real: keep it real"
        if got.is_meta or got.layout != torch.strided or got.device.type != "cpu":
            return "wrong type", (f"returned a tensor without readable values (device {got.device}, layout "
                                  f"{got.layout}); return an ordinary CPU tensor")
        return None
    if _is_number(expected):
        if isinstance(got, (bool, np.bool_)):
            return "wrong type", f"returned {got}, a bool; return a number"
        if isinstance(got, (complex, np.complexfloating)):
            return "wrong type", f"returned a complex number ({_show(got)}); the answer is a real count"
        if isinstance(got, (torch.Tensor, np.ndarray)):
            return "wrong type", (f"returned a {_type_name(got)}; return a plain Python number "
                                  "(.item() turns a one-element tensor into one)")
        if not _is_number(got):
            return "wrong type", f"expected a number, got a {_type_name(got)} ({_show(got)})"
        return None
    return None


def _as_float64(x) -> torch.Tensor | None:
    """`x` as a float64 CPU tensor for comparing values, or None when it has no readable values.
    Never copies more than a million elements."""
    try:
        if isinstance(x, torch.Tensor):
            if x.is_meta or x.layout != torch.strided or x.is_complex() or x.numel() > 1_000_000:
                return None
            return x.detach().to("cpu", torch.float64)
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in "biuf" or x.size > 1_000_000:
                return None
            return torch.from_numpy(np.asarray(x, dtype=np.float64))
        if _is_number(x) and not isinstance(x, (complex, np.complexfloating)):
            if isinstance(x, numbers.Integral) and abs(int(x)) > 2 ** 62:
                return torch.tensor(math.copysign(math.inf, int(x)), dtype=torch.float64)
            return torch.tensor(float(x), dtype=torch.float64)
    except Exception:  # noqa: BLE001
        return None
    return None


def _shape_of(x) -> tuple | None:
    try:
        if isinstance(x, (torch.Tensor, np.ndarray)):
            return tuple(int(n) for n in x.shape)
        if _is_number(x):
            return ()
    except Exception:  # noqa: BLE001
        return None
    return None


def _value_problem(got, expected, atol: float, rtol: float) -> str | None:
    """None if the values of `got` match `expected` (shape first), else what differs."""
    g_shape, e_shape = _shape_of(got), _shape_of(expected)
    if g_shape is None:
        return f"could not read the values of the {_type_name(got)} you returned"
    if g_shape != e_shape:
        if e_shape == ():
            return f"expected a single number, got shape {g_shape}"
        return f"expected shape {e_shape}, got shape {g_shape}"
    g, e = _as_float64(got), _as_float64(expected)
    if g is None or e is None:
        return f"could not read the values of the {_type_name(got)} you returned"
    if _close(g, e, atol, rtol):
        return None
    if e_shape == ():
        return f"expected {_number(e.item())}, got {_number(g.item())}"
    bad = torch.argwhere(g.isnan() & ~e.isnan())  # nan where a number was due: say so first
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        return (f"got nan at index {where} where {e[where].item():.4f} was expected "
                f"({len(bad)} nan value{'s' if len(bad) != 1 else ''} in all)")
    gap = torch.where(e.isnan() != g.isnan(), torch.inf, (g - e).abs().nan_to_num(torch.inf))
    gap = torch.where((g == e) | (g.isnan() & e.isnan()), 0.0, gap)  # equal infinities are no gap
    worst = tuple(int(i) for i in np.unravel_index(int(gap.argmax()), e_shape))
    return (f"values differ; largest gap at index {worst}: "
            f"expected {e[worst].item():.4f}, got {g[worst].item():.4f}")


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:.6g}"


def _close(g: torch.Tensor, e: torch.Tensor, atol: float, rtol: float) -> bool:
    if g.shape != e.shape:
        return False
    return bool(torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True))


def _dtype_problem(got, expected) -> str | None:
    """A tensor of the wrong dtype family: a float/int mask, an integer where floats are due."""
    if not (isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor)):
        return None
    if expected.dtype == torch.bool and got.dtype != torch.bool:
        return (f"the mask has dtype {got.dtype}; it must be a torch.bool tensor (True = may attend): "
                f"F.scaled_dot_product_attention would *add* a 0/1 float mask to the scores")
    if expected.is_floating_point() and not got.is_floating_point():
        return f"returned a tensor of dtype {got.dtype}; the answer has fractional values: return floating point"
    return None


def _compare(got, expected, case: Case) -> tuple[str, str] | None:
    """None if `got` is right, else (verdict, what differs)."""
    kind = _kind_problem(got, expected)
    if kind:
        return kind
    if isinstance(expected, tuple):
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = _compare(g, e, case)
            if problem:
                return problem[0], f"item {i} of the tuple: {problem[1]}"
        return None
    if isinstance(expected, numbers.Integral) and not isinstance(got, numbers.Integral):
        g = _as_float64(got)
        if g is not None and bool(g.isfinite()) and float(g) != math.floor(float(g)):
            return "wrong values", f"expected the whole number {expected}, got {_number(float(g))}"
    values = _value_problem(got, expected, case.atol, case.rtol)
    dtype = _dtype_problem(got, expected)
    if dtype:
        return "wrong dtype", (f"the values are right, but {dtype}" if values is None else dtype)
    if values:
        shape_wrong = values.startswith("expected shape") or values.startswith("expected a single")
        if not shape_wrong and isinstance(got, torch.Tensor) and got.dtype in (torch.float16, torch.bfloat16):
            values += (f" (your tensor is {got.dtype}, which keeps only 2-3 significant digits: compute in "
                       f"float32 or float64)")
        return ("wrong shape" if shape_wrong else "wrong values"), values
    return None


def _matches(got, mistaken, case: Case) -> bool:
    """Does the learner's output equal a mistaken version's (values only, any dtype)?"""
    if isinstance(mistaken, tuple):
        return (isinstance(got, (tuple, list)) and _safe(lambda: str(len(got)), "") == str(len(mistaken))
                and all(_matches(g, m, case) for g, m in zip(got, mistaken)))
    if isinstance(got, (str, tuple, list)) or got is None:
        return False
    return _value_problem(got, mistaken, case.atol, case.rtol) is None


def _call(fn, case: Case):
    """('ok', value) or ('raised', exception), calling a catalogued mistake on fresh copies of
    the inputs (its warnings, e.g. `.T` on a batch, are the mistake's, not the learner's: silenced)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", fn(*_clone(case.args), **_clone(case.kwargs))
    except Exception as err:  # noqa: BLE001
        return "raised", err


def _diagnose(mistakes: Sequence[Mistake], case: Case, outcome: str, got, expected) -> Mistake | None:
    """The first catalogued mistake whose outcome on this case equals the learner's (and
    differs from the right answer: a mistake that is right on this case says nothing)."""
    for mistake in mistakes:
        kind, value = _call(mistake.fn, case)
        try:
            if kind != outcome:
                continue
            if kind == "raised":
                if type(value) is type(got) and _error_text(value) == _error_text(got):
                    return mistake
            elif _matches(got, value, case) and not _matches(value, expected, case):
                return mistake
        except Exception:  # noqa: BLE001
            continue
    return None


# ----------------------------------------------------------------- the runner

_NOT_ATTEMPTED = "not attempted yet. Replace `raise NotImplementedError` with your code, then run this cell again."


def run_checks(exercise: str, fn: Callable, cases: list[Case], hint: str, *, verbose: bool = True,
               mistakes: Sequence[Mistake] = ()) -> Result:
    """Run `fn` on each case and print friendly feedback.

    Prints one line per outcome: all passed; or the first failing case and what was wrong
    with it, then either the catalogued mistake (`mistakes`) its output matches, explained,
    or `hint`. A stub that still raises `NotImplementedError` prints a "not attempted yet"
    line instead of a traceback, so the notebook runs top to bottom. Passing something
    that is not a function (a common slip: `check_x(x())`) is a TypeError.
    """
    if not callable(fn):
        raise TypeError(f"check_{exercise} expects your function itself, as in check_{exercise}({exercise}), "
                        f"got {_type_name(fn)}")
    code = _code_of(fn)
    n_passed = 0
    for case in cases:
        expected = case.expected() if callable(case.expected) else case.expected
        given_args, given_kwargs = _clone(case.args), _clone(case.kwargs)
        mistake = None
        try:
            got = fn(*given_args, **given_kwargs)
        except NotImplementedError as err:
            if n_passed == 0 and _is_own_stub(err, code):
                if verbose:
                    print(f"○ {exercise}: {_NOT_ATTEMPTED}")
                return Result(exercise, False, 0, len(cases), message="not attempted yet")
            verdict, problem = "raised", f"raised {_error_text(err)}{_where(err, code)}"
            if n_passed:
                problem += " (your function does not handle this case yet)"
            mistake = _diagnose(mistakes, case, "raised", err, expected)
        except (Exception, SystemExit) as err:  # a learner's bug: report it like a failed case, never crash the notebook
            verdict, problem = "raised", f"raised {_error_text(err)}{_where(err, code)}"
            mistake = _diagnose(mistakes, case, "raised", err, expected)
        else:
            verdict, problem = _judge(fn, case, expected, given_args, given_kwargs, got)
            if problem and verdict not in ("returned None", "changed its input"):
                mistake = _diagnose(mistakes, case, "ok", got, expected)
        if problem:
            result = Result(exercise, True, n_passed, len(cases), failed_case=case.name, message=problem,
                            verdict=verdict, mistake=mistake.name if mistake else None)
            if verbose:
                print(f"✗ {exercise}: {n_passed}/{len(cases)} cases passed. First failure, case '{case.name}': {problem}")
                if mistake:
                    print(f"  Likely mistake, {mistake.name}: {mistake.message}")
                elif verdict not in ("returned None", "changed its input"):  # those messages say what to do
                    print(f"  Hint: {hint}")
            return result
        n_passed += 1
    if verbose:
        print(f"✓ {exercise}: all {len(cases)} cases passed.")
    return Result(exercise, True, n_passed, len(cases), verdict="passed")


def _judge(fn, case: Case, expected, given_args: tuple, given_kwargs: dict, got) -> tuple[str, str | None]:
    """(verdict, problem or None) for a value the learner's function returned."""
    try:
        if got is None:
            return "returned None", ("your function returned None: did you forget the `return` statement "
                                     "(or return the result of an in-place method)?")
        names = _argument_names(fn, case.args, case.kwargs)
        originals = [*case.args, *case.kwargs.values()]
        given = [*given_args, *given_kwargs.values()]
        changed = [n for n, a, b in zip(names, originals, given) if not _same(a, b)]
        if changed:
            right = _compare(got, expected, case) is None
            which = ", ".join(f"`{n}`" for n in changed)
            return "changed its input", (
                f"{'the result is right, but ' if right else ''}your function changed its input {which} in place "
                f"(an operation ending in `_`, `+=`, or an assignment into it): the caller's tensor changes too, "
                f"which breaks any code that uses it afterwards. Compute a new tensor instead.")
        problem = _compare(got, expected, case)
        return problem if problem else ("passed", None)
    except Exception as err:  # noqa: BLE001  nothing a learner returns may crash the checker
        return "wrong type", (f"returned a {_type_name(got)} the checker could not read "
                              f"({_error_text(err)}); return a torch.Tensor or a number")
