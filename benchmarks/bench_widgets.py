"""Milliseconds per widget update, for every explorer of the course.

    python benchmarks/bench_widgets.py

For each explorer in `attn_core.widgets.EXPLORERS`, sets each control to each of its
values in turn (as the widget sweep test does) and times the synchronous re-render:
setting the value, drawing the figure, encoding the PNG. Prints median and p95 per
explorer. Goal: median under 100 ms on a 2-core machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_widgets import control_values  # noqa: E402  the same enumeration as the sweep test

from attn_core.widgets import EXPLORERS  # noqa: E402


def time_explorer(make, rounds: int = 2) -> list[float]:
    ex = make()
    times = []
    for _ in range(rounds):
        for control in ex.controls.values():
            for value in control_values(control):
                if value == control.value:
                    continue
                t0 = time.perf_counter()
                control.value = value
                times.append(1000 * (time.perf_counter() - t0))
    return times


def main() -> None:
    print(f"{'explorer':32s} {'updates':>7s} {'median ms':>10s} {'p95 ms':>8s}")
    worst = 0.0
    for name, make in sorted(EXPLORERS.items()):
        times = sorted(time_explorer(make))
        median = statistics.median(times)
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        worst = max(worst, median)
        print(f"{name:32s} {len(times):7d} {median:10.1f} {p95:8.1f}")
    print(f"\nslowest median: {worst:.1f} ms (goal: under 100 ms)")


if __name__ == "__main__":
    main()
