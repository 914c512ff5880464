"""The multi-seed table of lessons 07 and 08 (`attn_core/data/seed_sweep.json`) is what
`tools/seed_sweep.py` produces: one seed is trained again here (about a minute on a loaded
2-core machine) and compared with its stored row. Lessons 07 and 08 assert their claims on
the stored table, so a table that no longer matched the code would make them lie."""

import importlib.util
import math
from pathlib import Path

import pytest

from attn_core.data import load_seed_sweep

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("seed_sweep", ROOT / "tools" / "seed_sweep.py")
seed_sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_sweep)

TABLE = load_seed_sweep()
RERUN = 1  # not the lessons' own seed 0, which the lessons re-run and compare themselves
ACCURACY_ATOL = 0.03  # float round-off may differ between machines; an accuracy moves by a few sequences at most


def _close(a, b, atol, where):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], atol, f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, atol, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, abs_tol=atol), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_the_table_holds_every_seed_of_the_script():
    assert TABLE["seeds"] == list(seed_sweep.SEEDS) and len(TABLE["seeds"]) >= 5
    for lesson in ("lesson07", "lesson08"):
        assert sorted(TABLE[lesson], key=int) == [str(s) for s in seed_sweep.SEEDS]


@pytest.fixture(scope="module")
def rerun():
    return seed_sweep.lesson07(RERUN), seed_sweep.lesson08(RERUN)


def test_lesson07_row_is_reproduced(rerun):
    row, stored = rerun[0], TABLE["lesson07"][str(RERUN)]
    # which heads earn a name is discrete: it must not change
    for key in ("previous_token_heads", "induction_heads", "unnamed_heads"):
        assert [tuple(h) for h in row[key]] == [tuple(h) for h in stored[key]], key
    assert abs(row["step_accuracy_passes_half"] - stored["step_accuracy_passes_half"]) <= 5
    for key, value in row.items():
        if key not in ("previous_token_heads", "induction_heads", "unnamed_heads", "step_accuracy_passes_half"):
            _close(value, stored[key], ACCURACY_ATOL, key)


def test_lesson08_row_is_reproduced(rerun):
    row, stored = rerun[1], TABLE["lesson08"][str(RERUN)]
    for key in ("accuracy", "window_L", "learned_similarity", "learned_similarity_untrained"):
        _close(row[key], stored[key], ACCURACY_ATOL, key)
    # by question: 128 sequences per question, so one sequence is 0.008
    _close(row["question_4L"], stored["question_4L"], 0.05, "question_4L")
    for positional, looks in row["looks"].items():
        assert looks["closest_head"] == stored["looks"][positional]["closest_head"], positional
        _close({k: v for k, v in looks.items() if k != "closest_head"},
               {k: v for k, v in stored["looks"][positional].items() if k != "closest_head"}, ACCURACY_ATOL, positional)
