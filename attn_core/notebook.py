"""Notebook conveniences: deterministic set-up and showing the package's real source.

Every lesson's first code cell calls `setup()`, so its printed outputs are the same on
every run (nbval compares them), and shows library code with `show_source(fn)` instead of
redefining it.
"""

from __future__ import annotations

import inspect
import random

import matplotlib
import numpy as np
import torch

__all__ = ["setup", "show_source"]


def setup(seed: int = 0) -> None:
    """Seed every random source and set print options for short, stable outputs.

    Seeds Python's `random`, numpy's legacy global generator and torch; prints 4 decimals
    without scientific notation; uses colour-blind-safe `viridis` as the default map.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=100)
    matplotlib.rcParams.update({"image.cmap": "viridis", "figure.dpi": 80, "savefig.dpi": 80, "font.size": 10})


def show_source(obj):
    """Display the real source of a function or class of `attn_core`, syntax-highlighted.

    Returns an `IPython.display.Code` object (its text is saved in the notebook, unlike
    `%psource`'s pager).
    """
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
