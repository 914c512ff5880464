"""Exercises with self-checks, one module per lesson topic.

Each `check_*` function takes the learner's function, runs it on test cases against the
package's own implementation and prints what passed and the first case that failed, with
what was wrong: a forgotten `return`, an input changed in place, the wrong kind of answer
(a string, a complex number, numpy instead of torch, a float mask), an error located in the
learner's own code, or wrong values. When wrong values match one of the exercise's
catalogued mistakes (`MISTAKES_*`, a list of `Mistake`s next to each checker) the checker
names the mistake and why it is wrong; otherwise it prints a hint that does not give the
solution away. An unattempted exercise (`raise NotImplementedError`) prints "not
attempted yet". It returns a `Result` whose `.passed` says whether every case passed. The solutions are
in the repository's `solutions/` folder, out of the learners' way.
"""

from ._check import Case, Mistake, Result, run_checks
from .attention import *  # noqa: F401,F403  lesson 01
from .qkv import *  # noqa: F401,F403  lesson 02
from .self_attention import *  # noqa: F401,F403  lesson 03
from .multihead import *  # noqa: F401,F403  lesson 04
from .positional import *  # noqa: F401,F403  lesson 05
from .masks import *  # noqa: F401,F403  lesson 06
from .circuits import *  # noqa: F401,F403  lessons 07 and 08

from . import attention as _a, circuits as _c, masks as _ma, multihead as _mh, positional as _p, qkv as _q, self_attention as _s

CHECKS = {name: getattr(mod, name) for mod in (_a, _q, _s, _mh, _p, _ma, _c) for name in mod.__all__
          if name != "check_prediction"}
"""Every checker by name; tests run each against its solution and a wrong answer."""

__all__ = ["Case", "Mistake", "Result", "run_checks", "CHECKS", *CHECKS]
__all__ += ["check_prediction"]  # lesson 08; not in CHECKS (it compares a prediction with a run, not a function)

from .pretrained import *  # noqa: E402,F401,F403  lesson 09; not in CHECKS (check_control_pair checks a design, not a function)
__all__ += ["check_offset_score", "check_sep_weight", "check_control_pair"]

from .inference import *  # noqa: E402,F401,F403  lesson 10
from . import inference as _i  # noqa: E402

CHECKS.update({name: getattr(_i, name) for name in _i.__all__})
__all__ += list(_i.__all__)
