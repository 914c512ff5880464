"""Estimate how long a learner needs for each lesson, from the notebook itself.

    python tools/reading_time.py                      # every notebook
    python tools/reading_time.py notebooks/05_*.ipynb # some

The estimate, in minutes, adds up:
- every word of the markdown and of the code cells, read at 200 words a minute (code is read,
  not skimmed: its words count like prose);
- half a minute per figure in the stored outputs (a static explorer picture included);
- 3 minutes per explorer (a code cell tagged `nbval-ignore-output` that shows one);
- 5 minutes per exercise (a cell with `raise NotImplementedError`), the time the teaching
  plans give an exercise in class.

"core" leaves out every section whose heading contains "(optional)", down to the next heading
of the same or a higher level. The numbers are a yardstick for comparing lessons and for
checking the minutes a lesson states, not a promise: a learner who experiments takes longer.
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
WORDS_PER_MINUTE = 200
MINUTES_PER_FIGURE = 0.5
MINUTES_PER_EXPLORER = 3
MINUTES_PER_EXERCISE = 5


def measure(path: Path, *, core: bool = False) -> dict:
    """Counts and minutes for one notebook; `core=True` skips the "(optional)" sections."""
    nb = nbformat.read(path, as_version=4)
    words = figures = explorers = exercises = 0
    skip_level = None  # inside an optional section of this heading level
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                heading = re.match(r"(#+) ", line)
                if heading:
                    level = len(heading.group(1))
                    if skip_level is not None and level <= skip_level:
                        skip_level = None
                    if core and "(optional)" in line.lower():
                        skip_level = level
        if skip_level is not None:
            continue
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            exercises += 1
            continue
        words += len(cell.source.split())
        if cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            if "nbval-ignore-output" in tags and "explorer" in cell.source.lower():
                explorers += 1
            figures += sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
    reading = words / WORDS_PER_MINUTE + MINUTES_PER_FIGURE * figures + MINUTES_PER_EXPLORER * explorers
    return {"words": words, "figures": figures, "explorers": explorers, "exercises": exercises,
            "reading": reading, "total": reading + MINUTES_PER_EXERCISE * exercises}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks (default: every notebook)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(Path(p) for p in glob.glob(str(ROOT / "notebooks" / "*.ipynb")))
    print(f"{'notebook':34s} {'words':>6s} {'figures':>7s} {'explorers':>9s} {'exercises':>9s}"
          f" {'reading':>8s} {'total':>6s} {'core':>5s}")
    for path in paths:
        full, core = measure(path), measure(path, core=True)
        print(f"{path.name:34s} {full['words']:6d} {full['figures']:7d} {full['explorers']:9d} {full['exercises']:9d}"
              f" {full['reading']:8.0f} {full['total']:6.0f} {core['total']:5.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
