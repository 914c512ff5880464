"""Execute lesson notebooks in place, the way they are committed: outputs kept, kernel
`python3`, no timing metadata. Prints the seconds each notebook took.

    python tools/execute_notebooks.py                      # every notebook
    python tools/execute_notebooks.py notebooks/04_*.ipynb # some
    python tools/execute_notebooks.py --output-dir DIR     # write the executed copies to DIR,
                                                           # leave the committed ones alone

The kernel inherits this process's environment, so thread counts and instruction-set limits
set here (OMP_NUM_THREADS=1, ATEN_CPU_CAPABILITY=avx2, ...) apply to the lesson's code:
tests/test_output_stability.py runs the lessons that way.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def execute(path: Path, timeout: int = 900, output: Path | None = None) -> float:
    """Execute the notebook at `path` and write it to `output` (default: in place)."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata.setdefault("language_info", {"name": "python"})
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:  # keep diffs clean: no per-run ids in cell metadata
        cell.metadata.pop("execution", None)
    # Widget state holds random model ids and every PNG a widget showed: each re-execution
    # would rewrite it. Each widget cell is followed by a static figure, so drop it.
    nb.metadata.pop("widgets", None)
    # Without their state, saved widget views would show "Error displaying widget: model not
    # found" in JupyterLab until re-run: drop them too (the cell shows nothing until it runs).
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs
                            if "application/vnd.jupyter.widget-view+json" not in out.get("data", {})]
    nbformat.write(nb, output or path)
    return seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: every lesson)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="write executed copies here instead of overwriting the notebooks")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(Path(p) for p in glob.glob(str(ROOT / "notebooks" / "*.ipynb")))
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for path in paths:
        output = None if args.output_dir is None else args.output_dir / path.name
        seconds = execute(path.resolve(), output=output)
        total += seconds
        print(f"{path.name:45s} {seconds:7.1f} s", flush=True)
    print(f"{'total':45s} {total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
