"""Seconds and peak memory of every lesson notebook, executed as a learner's kernel runs it.

    python benchmarks/bench_notebooks.py                          # every notebook
    python benchmarks/bench_notebooks.py notebooks/04_*.ipynb     # some
    python benchmarks/bench_notebooks.py --json benchmarks/results/notebooks.json

Each notebook runs top to bottom in a fresh `python3` kernel (nbclient, working directory
`notebooks/`, nothing written back). Memory is the kernel's resident set size (RSS):
- `peak MB`: the kernel process's own high-water mark (`VmHWM` in /proc, exact);
- `+children`: the kernel and any processes it started (e.g. data-loader workers),
  sampled every 20 ms with psutil, so a very short spike can be missed.

Binder gives a whole session 2 GB (2048 MB): the kernel of every open notebook plus the
JupyterLab server (about 150 MB). The script exits with status 1 if a notebook's peak plus
`--server-mb` goes over `--limit-mb`, or if a notebook fails (reported, and the others
still run), so it can gate a release. Learners should shut down
the kernels of lessons they have finished (Kernel > Shut Down Kernel): kernels add up.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


class RssSampler:
    """Samples the RSS of a process and its descendants in a background thread."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                total = 0
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
                self.peak_total = max(self.peak_total, total)
            except psutil.NoSuchProcess:
                return
            self._stop.wait(self.interval)

    def start(self) -> "RssSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def high_water_mark(pid: int) -> int:
    """The process's peak RSS in bytes (Linux `VmHWM`); 0 where /proc has no such line."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kernel_pid(client: NotebookClient) -> int:
    provisioner = getattr(client.km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is None:
        raise RuntimeError("cannot find the kernel's process id (not a local kernel?)")
    return process.pid


def measure(path: Path, timeout: int = 1800) -> dict:
    """Execute `path` in a fresh kernel; return seconds, peak MB and peak MB with children."""
    nb = nbformat.read(path, as_version=4)
    result: dict = {}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})

    def on_start(**_):
        pid = kernel_pid(client)
        result["pid"] = pid
        result["sampler"] = RssSampler(pid).start()
        result["start"] = time.perf_counter()

    def on_cell_executed(**_):  # the kernel is alive: read its high-water mark so far
        result["seconds"] = time.perf_counter() - result["start"]
        result["hwm"] = max(result.get("hwm", 0), high_water_mark(result["pid"]))

    client.on_notebook_start = on_start
    client.on_cell_executed = on_cell_executed
    error = None
    try:
        client.execute()
    except Exception as err:  # a failing notebook is reported, and the others still run
        error = f"{type(err).__name__}: " + (str(err).strip().splitlines() or [""])[-1][:200]
    if "sampler" not in result:
        raise RuntimeError(f"{path.name}: the kernel did not start ({error})")
    sampler = result["sampler"]
    sampler.stop()
    return {
        "notebook": path.name,
        "seconds": round(result.get("seconds", 0.0), 1),
        "peak_mb": round(max(result.get("hwm", 0), 1) / MB),
        "peak_with_children_mb": round(max(sampler.peak_total, result.get("hwm", 0)) / MB),
        "error": error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--limit-mb", type=float, default=2048, help="memory limit of a session (Binder: 2048)")
    parser.add_argument("--server-mb", type=float, default=150, help="memory the JupyterLab server takes")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    paths = [Path(p).resolve() for p in args.notebooks] or sorted(
        Path(p) for p in glob.glob(str(ROOT / "notebooks" / "*.ipynb")))
    budget = args.limit_mb - args.server_mb
    print(f"{'notebook':40s} {'seconds':>8s} {'peak MB':>8s} {'+children':>10s}  (budget {budget:.0f} MB)")
    rows, over, failed = [], [], []
    for path in paths:
        row = measure(path)
        rows.append(row)
        flag = ""
        if row["peak_with_children_mb"] > budget:
            over.append(row["notebook"])
            flag = "  OVER BUDGET"
        if row["error"]:
            failed.append(row["notebook"])
            flag += f"  FAILED ({row['error']}; numbers up to the failing cell)"
        print(f"{row['notebook']:40s} {row['seconds']:8.1f} {row['peak_mb']:8d} {row['peak_with_children_mb']:10d}{flag}",
              flush=True)
    print(f"{'total':40s} {sum(r['seconds'] for r in rows):8.1f} "
          f"{max((r['peak_mb'] for r in rows), default=0):8d} {max((r['peak_with_children_mb'] for r in rows), default=0):10d}"
          "  (seconds summed, memory the largest)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"limit_mb": args.limit_mb, "server_mb": args.server_mb, "notebooks": rows},
                                        indent=1) + "\n")
    if over:
        print(f"over Binder's budget: {', '.join(over)}", file=sys.stderr)
    if failed:
        print(f"failed to run: {', '.join(failed)}", file=sys.stderr)
    return 1 if over or failed else 0


if __name__ == "__main__":
    sys.exit(main())
