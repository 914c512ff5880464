"""Browser latency of every explorer: from a control event to the new picture on screen.

What a learner feels, not what the kernel spends: JupyterLab 4 in Debian's Chromium
(Playwright, `executable_path`, no downloaded browser) at 1400 x 900 CSS px with device pixel
ratio 2. For each lesson with explorers (00-06, 09, 10 by default): open it, Run All, then
on every live explorer change its controls in turn (round robin: next dropdown option, an
arrow key on a slider, the next toggle button, a checkbox click) until its picture has
changed `--changes` times. Each change is timed in the page's JavaScript, from
performance.now() right before the event is dispatched to the new picture decoded
(img.decode() resolving), or with `--until painted` to the presentation time of the first
frame that shows it (the Element Timing API's renderTime; this adds headless Chromium's
software compositing, 14-29 ms a frame here: see benchmarks/README.md). Prints the median and p95 per explorer (and the
median time at which the new src was set: the kernel's answer is in), and the changes after
which the picture did not change within the timeout.
Last, the baselines: a dropdown that swaps ready-made pictures of the multi-head explorer (no
drawing in the kernel), the floor that widget messages, JupyterLab and Chromium set, shown by
the explorers' own `Picture` (a data: URL) and by a plain `ipywidgets.Image` (a blob: URL).
Chromium runs at the page's device scale factor (`browser_util.chromium`).

    python benchmarks/bench_browser.py                      # all lessons, 20 changes each
    python benchmarks/bench_browser.py --lessons 04 06 --changes 10 --json out.json
    python benchmarks/bench_browser.py --repeat 3      # three rounds: each explorer's median per round, and all together
    python benchmarks/bench_browser.py --nagle       # without the jupyter_tcp_nodelay server extension
    python benchmarks/bench_browser.py --favicon-busy   # with JupyterLab's busy favicon back on

The server runs as a learner's does: JupyterLab's default settings (windowing mode
"contentVisibility"), the server extensions of this environment (`jupyter_tcp_nodelay`,
which `make setup` enables) and its page config (`etc/jupyter/labconfig/page_config.json`,
which turns JupyterLab's busy favicon off); the first lines printed say whether both hold.

The library the kernel imports is the one on its `sys.path`: to measure another checkout
(e.g. before a change), run with PYTHONPATH=<checkout> and --notebooks <checkout>/notebooks.
Figures depend on the machine and on its load: report the load (`uptime`) with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_util import (FAVICON_BUSY, Lab, chromium, exercise_explorer, find_explorers, jupyterlab_server,  # noqa: E402
                          loopback_page, percentile)

LESSONS = ["00", "01", "02", "03", "04", "05", "06", "09", "10"]
VIEWPORT = (1400, 900)
DPR = 2


def lesson_paths(notebooks: Path, numbers) -> list[Path]:
    paths = []
    for number in numbers:
        found = sorted(notebooks.glob(f"{number}_*.ipynb"))
        if not found:
            raise SystemExit(f"no lesson {number}_*.ipynb in {notebooks}")
        paths.append(found[0])
    return paths


# The floor of the pipeline on this machine: a dropdown that swaps ready-made pictures (the
# multi-head explorer's own PNGs, rendered beforehand), so the kernel does no drawing: what
# is left is the widget messages, the websocket, JupyterLab and Chromium decoding the PNG.
# Shown by the explorers' own `Picture` (a data: URL), and, for comparison, by a plain
# `ipywidgets.Image` (a blob: URL, which Chromium fetches through its browser process).
BASELINE = '''\
import ipywidgets as W
from attn_core.widgets import multihead_explorer
from attn_core.widgets._base import Picture

ex = multihead_explorer()
pngs = []
for n_heads in ex.controls["n_heads"].options[:8]:
    ex.controls["n_heads"].value = n_heads
    pngs.append(bytes(ex.view.value))
width = ex.view.layout.width
baseline_picture = W.Dropdown(options=list(range(len(pngs))), value=0, description="picture")
view = {kind}(value=pngs[0], layout=W.Layout(width=width){format})
baseline_picture.observe(lambda change: setattr(view, "value", pngs[change["new"]]), names="value")
W.HBox([baseline_picture, view])
'''
BASELINES = {"ready-made 04 pictures": ("Picture", ""),
             "same, plain Image (blob:)": ("W.Image", ', format="png"')}


def write_baseline(folder: Path, name: str) -> str:
    import nbformat

    kind, format_ = BASELINES[name]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(BASELINE.format(kind=kind, format=format_))]
    path = f"baseline_{list(BASELINES).index(name)}.ipynb"
    nbformat.write(nb, folder / path)
    return path


def measure_lesson(lab: Lab, path: str, *, changes: int, timeout: float, name: str | None = None,
                   until: str = "decoded") -> list[dict]:
    """Open, Run All, exercise every explorer of one lesson; one summary per explorer."""
    lab.page.console_errors.clear()
    lab.open_notebook(path)
    try:
        run_s = lab.run_all(timeout=900)
        errors = lab.cell_errors()
        if errors:
            print(f"  {path}: cell errors after Run All: {errors[:3]}", flush=True)
        rows = []
        for explorer in find_explorers(lab):
            results = exercise_explorer(lab, explorer, changes=changes, timeout=timeout, until=until)
            times = [r["ms"] for r in results if r["changed"] and r["ms"] is not None]
            arrived = [r["arrivedMs"] for r in results if r["changed"]]
            last = results[-1]
            rows.append({
                "lesson": Path(path).stem, "explorer": name or explorer["name"], "cell": explorer["cell"],
                "controls": [c["label"] or c["kind"] for c in explorer["controls"]],
                "n": len(times), "median_ms": statistics.median(times) if times else None,
                "p95_ms": percentile(times, 95) if times else None, "max_ms": max(times) if times else None,
                "arrived_median_ms": statistics.median(arrived) if arrived else None,
                "unchanged": [r["what"] for r in results if not r["changed"] and not r["skipped"]],
                "until": until, "untimed": sum(r["changed"] and r["ms"] is None for r in results),
                "css_width": last["cssWidth"], "natural_width": last["naturalWidth"],
                "run_all_s": round(run_s, 1), "times_ms": [round(t, 1) for t in times],
            })
            print(format_row(rows[-1]), flush=True)
        return rows
    finally:
        lab.close_notebook()


def format_row(row: dict) -> str:
    if not row["n"]:
        return f"{row['lesson'].split('_')[0]:<8} {row['explorer']:<26} no picture change ({len(row['unchanged'])} tries)"
    text = (f"{row['lesson'].split('_')[0]:<8} {row['explorer']:<26} n={row['n']:<3d} median {row['median_ms']:6.0f} ms"
            f"   p95 {row['p95_ms']:6.0f} ms   max {row['max_ms']:6.0f} ms"
            f"   (src set at {row['arrived_median_ms']:4.0f} ms)"
            f"   picture {row['css_width']:.0f} CSS px wide, PNG {row['natural_width']} px")
    if row["untimed"]:
        text += f"   ({row['untimed']} changes to a picture shown before: no paint reported, not timed)"
    if row["unchanged"]:
        text += f"   ({len(row['unchanged'])} changes left the picture as it was: {row['unchanged'][:2]})"
    return text


def summary(rows: list[dict]) -> str:
    """One line per explorer over every run: each run's median, the median of all its changes
    together and their p95, and how far its median sits above the same run's data: URL baseline."""
    base = {r["run"]: r["median_ms"] for r in rows if r["explorer"] == "ready-made 04 pictures" and r["n"]}
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["lesson"].split("_")[0], row["explorer"]), []).append(row)
    lines = [f"over {len({r['run'] for r in rows})} runs: median of each run | all changes: median / p95 | "
             f"median above the run's data: URL baseline"]
    for (lesson, explorer), runs in groups.items():
        times = [t for r in runs for t in r["times_ms"]]
        if not times:
            continue
        each = " ".join(f"{r['median_ms']:3.0f}" for r in runs if r["n"])
        above = [r["median_ms"] - base[r["run"]] for r in runs if r["n"] and r["run"] in base]
        gap = f"{statistics.median(above):+4.0f}" if above and not explorer.startswith(("ready", "same")) else "    "
        lines.append(f"{lesson if not lesson.startswith('baseline') else '':<8} {explorer:<26} runs {each:<14} | "
                     f"{statistics.median(times):4.0f} / {percentile(times, 95):4.0f} ms | {gap} ms")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", default=LESSONS, help="lesson numbers (default: %(default)s)")
    parser.add_argument("--changes", type=int, default=20, help="picture changes per explorer (default: 20)")
    parser.add_argument("--timeout", type=float, default=8.0, help="seconds to wait for a new picture")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="folder of the lessons")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--favicon-busy", action="store_true",
                        help="turn JupyterLab's busy favicon back on for this run (a page config that "
                             "re-enables @jupyterlab/application-extension:faviconbusy, in a config folder "
                             "ahead of the environment's): to measure what turning it off saves")
    parser.add_argument("--nagle", action="store_true",
                        help="disable the jupyter_tcp_nodelay server extension (Nagle's algorithm back on the "
                             "kernel websockets, as in a plain jupyter_server): to measure what it saves")
    parser.add_argument("--until", choices=["decoded", "painted"], default="decoded",
                        help="when a picture counts as shown: 'decoded' (default, the goal's measure), "
                             "img.decode() resolving, or 'painted', the presentation time of the first frame "
                             "that shows it (Element Timing renderTime)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure every lesson (and the baselines) this many times, round after round, and "
                             "print each explorer's figures over all rounds (default: 1)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the baseline (ready-made pictures swapped by a dropdown: the pipeline's floor)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat: at least 1 round")
    if args.changes < 10:
        parser.error("--changes: at least 10 changes per explorer")

    import attn_core  # noqa: F401  (which library the kernel will import, for the record)

    print(f"library: {Path(attn_core.__file__).parent}; load: {os.getloadavg()[0]:.2f} "
          f"(1 min), {os.cpu_count()} cores; Chromium {VIEWPORT[0]} x {VIEWPORT[1]}, DPR {DPR}, JupyterLab; "
          f"timed until {args.until}",
          flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    rows = []
    try:
        paths = lesson_paths(args.notebooks, args.lessons)
        (root / "notebooks").mkdir()
        for path in paths:
            shutil.copy(path, root / "notebooks" / path.name)
        extra = ('--ServerApp.jpserver_extensions={"jupyter_tcp_nodelay": False}',) if args.nagle else ()
        with jupyterlab_server(root, extra_args=extra, favicon_busy=args.favicon_busy) as server, chromium(device_scale_factor=DPR) as browser, \
                loopback_page(browser, viewport=VIEWPORT, device_scale_factor=DPR) as page:
            nodelay = "TCP_NODELAY" in server.log.read_text(errors="replace")
            print(f"server extension jupyter_tcp_nodelay: {'loaded' if nodelay else 'NOT loaded (Nagle on)'}",
                  flush=True)
            lab = Lab(page, server)
            page.goto(f"{server.url}/lab?reset", wait_until="domcontentloaded")
            page.wait_for_function("() => !!window.jupyterapp", timeout=120_000)
            favicon = page.evaluate("async id => { await window.jupyterapp.restored; "
                                    "return window.jupyterapp.isPluginActivated(id); }", FAVICON_BUSY)
            print(f"JupyterLab's busy favicon ({FAVICON_BUSY}): {'on' if favicon else 'off'}", flush=True)
            for run in range(1, args.repeat + 1):
                if args.repeat > 1:
                    print(f"run {run} of {args.repeat} (load {os.getloadavg()[0]:.2f})", flush=True)
                for path in paths:
                    rel = f"notebooks/{path.name}"
                    server.trust(root / rel)
                    start = time.monotonic()
                    rows += [dict(row, run=run) for row in
                             measure_lesson(lab, rel, changes=args.changes, timeout=args.timeout, until=args.until)]
                    print(f"   ({path.stem}: {time.monotonic() - start:.0f} s)", flush=True)
                if args.baseline:
                    for name in BASELINES:
                        rel = write_baseline(root, name)
                        server.trust(root / rel)
                        rows += [dict(row, run=run) for row in
                                 measure_lesson(lab, rel, changes=args.changes, timeout=args.timeout, name=name,
                                                until=args.until)]
            if page.blocked_requests:
                print(f"requests that left 127.0.0.1 (blocked): {page.blocked_requests[:5]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    if args.repeat > 1 and rows:
        print(summary(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if rows and all(r["n"] >= 10 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
