"""Execute lesson notebooks in place, the way they are committed: outputs kept, kernel
`python3`, no timing metadata. Prints the seconds each notebook took.

    python tools/execute_notebooks.py                      # every notebook
    python tools/execute_notebooks.py notebooks/04_*.ipynb # some
"""

from __future__ import annotations

import glob
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def execute(path: Path, timeout: int = 900) -> float:
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
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted(Path(p) for p in glob.glob(str(ROOT / "notebooks" / "*.ipynb")))
    total = 0.0
    for path in paths:
        seconds = execute(path.resolve())
        total += seconds
        print(f"{path.name:45s} {seconds:7.1f} s", flush=True)
    print(f"{'total':45s} {total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
