"""Exercises with self-checks, one module per lesson topic.

Each `check_*` function takes the learner's function, runs it on test cases against the
package's own implementation and prints what passed, the first case that failed and a
hint; an unattempted exercise (`raise NotImplementedError`) prints "not attempted yet".
It returns a `Result` whose `.passed` says whether every case passed. The solutions are
in the repository's `solutions/` folder, out of the learners' way.
"""

from ._check import Case, Result, run_checks
from .attention import *  # noqa: F401,F403  lesson 01
from .qkv import *  # noqa: F401,F403  lesson 02
from .self_attention import *  # noqa: F401,F403  lesson 03
from .multihead import *  # noqa: F401,F403  lesson 04
from .positional import *  # noqa: F401,F403  lesson 05
from .masks import *  # noqa: F401,F403  lesson 06

from . import attention as _a, masks as _ma, multihead as _mh, positional as _p, qkv as _q, self_attention as _s

CHECKS = {name: getattr(mod, name) for mod in (_a, _q, _s, _mh, _p, _ma) for name in mod.__all__}
"""Every checker by name; tests run each against its solution and a wrong answer."""

__all__ = ["Case", "Result", "run_checks", "CHECKS", *CHECKS]
