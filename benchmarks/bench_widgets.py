"""Milliseconds per widget update, for every explorer of the course (kernel side).

    python benchmarks/bench_widgets.py                      # every explorer
    python benchmarks/bench_widgets.py temperature_explorer # only these

For each explorer in `attn_core.widgets.EXPLORERS`, sets each control to each of its
values in turn (as the widget sweep test does) and times the synchronous update exactly
as the browser gets it: setting the value, updating the figure, encoding the PNG at the
figure's own resolution (device pixel ratio 2 for an `explorer_figure`), the text
alternative. Prints median and p95 per explorer (wall time, and this thread's CPU time,
which a quiet machine's wall time comes close to), the load average, the picture's
device pixel ratio (PNG pixels per CSS pixel; 2 for every converted explorer), and the CPU
milliseconds per update of the process's other threads (should be 0: see `time_explorer`).

Goals (issue 12): median under 25 ms and p95 under 50 ms per update in the kernel.
The browser adds the transfer and the image decode on top (`benchmarks/bench_browser.py`).
Timings depend on the machine and its load: say which when you report them.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_widgets import control_values  # noqa: E402  the same enumeration as the sweep test

from attn_core.widgets import EXPLORERS  # noqa: E402
from attn_core.widgets._base import png_size  # noqa: E402

GOAL_MEDIAN_MS = 25.0
GOAL_P95_MS = 50.0


PAUSE_S = 0.02
"""Idle time after each update, as between a learner's key presses, in which helper threads
that outlive an update (a BLAS pool's workers spinning for more work) still count."""


def time_explorer(make, rounds: int = 2) -> tuple[list[float], list[float], float, float]:
    """Wall and CPU milliseconds of every update (each control through each of its values, `rounds` times),
    the picture's device pixel ratio, and the other threads' CPU milliseconds per update.

    CPU time (of this thread, where the whole update runs) is what a quiet machine's wall
    time comes close to; on a loaded machine the wall time is longer by the waiting. The
    process's other threads should spend nothing: their CPU (during the update and the
    `PAUSE_S` after it) is taken from the browser, which shares the learner's cores. A numpy
    matrix product in the sinusoidal explorer once cost 9.7 ms of it per update there, in
    OpenBLAS's spinning worker (benchmarks/README.md).
    """
    ex = make()
    times, cpu = [], []
    start_process, start_thread = time.process_time(), time.thread_time()
    for _ in range(rounds):
        for control in ex.controls.values():
            for value in control_values(control):
                if value == control.value:
                    continue
                t0, c0 = time.perf_counter(), time.thread_time()
                control.value = value
                times.append(1000 * (time.perf_counter() - t0))
                cpu.append(1000 * (time.thread_time() - c0))
                time.sleep(PAUSE_S)
    others = (time.process_time() - start_process) - (time.thread_time() - start_thread)
    ratio = png_size(ex.view.value)[0] / ex.natural_width()
    return times, cpu, ratio, 1000 * others / max(len(times), 1)


def percentile(sorted_times: list[float], q: float) -> float:
    return sorted_times[min(len(sorted_times) - 1, int(round(q * (len(sorted_times) - 1))))]


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in EXPLORERS]
    if unknown:
        raise SystemExit(f"unknown explorer(s) {unknown}; known: {sorted(EXPLORERS)}")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print(f"{'explorer':32s} {'updates':>7s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s} "
          f"{'CPU median':>10s} {'CPU p95':>8s} {'DPR':>4s} {'other threads':>13s}")
    missed = []
    for name in sorted(names or EXPLORERS):
        times, cpu, ratio, others = time_explorer(EXPLORERS[name])
        times.sort()
        cpu.sort()
        median, p95 = statistics.median(times), percentile(times, 0.95)
        flag = "" if median < GOAL_MEDIAN_MS and p95 < GOAL_P95_MS else "  <- misses the goal"
        if flag:
            missed.append(name)
        print(f"{name:32s} {len(times):7d} {median:10.1f} {p95:8.1f} {times[-1]:8.1f} "
              f"{statistics.median(cpu):10.1f} {percentile(cpu, 0.95):8.1f} {ratio:4.1f} {max(others, 0.0):13.1f}{flag}")
    print(f"\ngoal: median under {GOAL_MEDIAN_MS:.0f} ms, p95 under {GOAL_P95_MS:.0f} ms per update "
          f"(kernel, at DPR 2); {len(missed)} explorer(s) miss it{': ' + ', '.join(missed) if missed else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
