"""What a learner does in the browser, checked without one (issue 12).

- An exercise stub never replaces a name the lesson imported: after *Run All* (stubs still
  empty) and again after the learner's attempt, every demo cell above the exercises runs again
  without raising (lessons 02 and 04 used to define `scaled_dot_product_attention`,
  `split_heads` and `merge_heads` as stubs, so re-running a demo cell raised
  `NotImplementedError`).
- Every lesson ends with a "Next:" link to a notebook that exists.
- Lessons name the source article they mean (the short names that README and lesson 00 define).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
PRIMER = NOTEBOOKS / "appendix_pytorch_primer.ipynb"
ALL_NOTEBOOKS = [*LESSONS, PRIMER]

# the short names README.md and lesson 00 give the two source articles
ARTICLE_NAMES = ("*Deep Dive*", "*Heads and Positions*")
ARTICLE_TITLES = ("A Deep Dive into Attention: Self-Attention, Multi-Head Attention and Positional Encoding",
                  "Multi-Head Attention and Positional Encoding")


def read(path: Path):
    return nbformat.read(path, as_version=4)


def bound_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at top level: def, class, assignment targets, for targets, with-as."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)):
            targets = [node.target]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def imported_names(tree: ast.Module) -> set[str]:
    return {(alias.asname or alias.name).split(".")[0]
            for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}


def stub_functions(cell_source: str) -> list[str]:
    """Names of the functions in a cell whose body raises NotImplementedError (an exercise stub)."""
    tree = ast.parse(cell_source)
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(isinstance(n, ast.Raise) and "NotImplementedError" in ast.unparse(n) for n in ast.walk(node))]


# ---------------------------------------------------------------------------------------------
# 1. exercise stubs never shadow what the lesson imported


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_rebinds_a_name_the_lesson_imported(path):
    """A `def split_heads` after `from attn_core import split_heads` breaks every earlier cell
    that uses the package's version once the learner runs it (or Run All)."""
    imported: dict[str, int] = {}
    clashes = []
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for name in sorted(bound_names(tree) & set(imported)):
            clashes.append(f"cell {i} rebinds {name!r}, imported in cell {imported[name]}")
        for name in imported_names(tree):
            imported.setdefault(name, i)
    assert not clashes, f"{path.name}: " + "; ".join(clashes)


# Lessons whose exercises implement a function the lesson also imports from the package, and
# the solutions module of each (solutions/<topic>.py, one function per checker).
SHADOW_PRONE = {"02_query_key_value.ipynb": "qkv", "04_multi_head_attention.ipynb": "multihead"}


def demo_cells(nb) -> list[int]:
    """Code cells above the first exercise stub, except timing and live-widget cells and cells
    that import (re-running the imports would hide the problem: the learner re-runs one cell)."""
    first_stub = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and stub_functions(c.source))
    return [i for i, c in enumerate(nb.cells[:first_stub])
            if c.cell_type == "code" and "nbval-ignore-output" not in c.metadata.get("tags", [])
            and not imported_names(ast.parse(c.source))]


def learner_attempt(stub_name: str, solutions) -> str:
    """The solution's source, written under the stub's name (`my_split_heads` -> `split_heads`)."""
    solution = getattr(solutions, stub_name.removeprefix("my_"))
    source = inspect.getsource(solution)
    return source.replace(f"def {solution.__name__}(", f"def {stub_name}(", 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHADOW_PRONE))
def test_demo_cells_run_again_after_run_all_and_after_the_attempt(name):
    from nbclient import NotebookClient

    sys.path.insert(0, str(ROOT))  # so `solutions` imports from the repository
    solutions = importlib.import_module(f"solutions.{SHADOW_PRONE[name]}")
    nb = read(NOTEBOOKS / name)
    demos = demo_cells(nb)
    stubs = [(i, stub_functions(c.source)) for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and stub_functions(c.source)]
    assert demos and stubs
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):  # Run All, the stubs still empty
            client.execute_cell(cell, i)
        for i in demos:  # a demo cell run again raises CellExecutionError if a stub replaced its function
            client.execute_cell(nb.cells[i], i)

        # the learner fills in every stub (with the reference solution) and runs its checker
        for i, names in stubs:
            nb.cells[i].source = "\n\n\n".join(learner_attempt(n, solutions) for n in names)
            client.execute_cell(nb.cells[i], i)
            checker = nb.cells[i + 1]
            client.execute_cell(checker, i + 1)
            printed = "".join(out.get("text", "") for out in checker.outputs)
            assert "passed" in printed and "not attempted" not in printed, f"cell {i + 1}: {printed}"
        for i in demos:
            client.execute_cell(nb.cells[i], i)


# ---------------------------------------------------------------------------------------------
# 2. every lesson ends with a "Next:" link

def next_target(path: Path) -> str:
    if path == PRIMER or path.name.startswith("10_"):
        return "00_start_here.ipynb"  # the last lesson and the appendix lead back to the map
    number = int(path.name[:2]) + 1
    return next(p.name for p in LESSONS if p.name.startswith(f"{number:02d}_"))


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_lesson_ends_with_a_next_link(path):
    last = [c for c in read(path).cells if c.cell_type == "markdown"][-1].source
    target = next_target(path)
    assert (NOTEBOOKS / target).exists()
    next_line = [line for line in last.splitlines() if re.match(r"\s*(\*\*)?Next:", line)]
    assert next_line, f"{path.name}: its last markdown cell has no 'Next:' line"
    links = re.findall(r"\]\(([^)]+\.ipynb)\)", last[last.index(next_line[-1]):])
    assert target in links, f"{path.name}: the 'Next:' line links {links}, not {target}"
    assert all((NOTEBOOKS / link).exists() for link in links), links


# ---------------------------------------------------------------------------------------------
# 3. the source articles by name

# "the article", "the first/second/source article", "the article's", "One of the source articles"
# all leave the reader guessing; "the *Deep Dive* article" does not, nor do "the articles' claims"
# and "the two source articles" (both of them).
NAMELESS = re.compile(r"\b(?:the|this|that|same)\s+(?:(?:first|second|source|other)\s+)*article\b(?!s)"
                      r"|\bone of the\s+(?:source\s+)?articles\b", re.IGNORECASE)


def prose(path: Path) -> list[tuple[int, str]]:
    """Markdown cells, code comments and string literals: what the learner reads."""
    texts = []
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type == "markdown":
            texts.append((i, cell.source))
        elif cell.cell_type == "code":
            texts += [(i, line[line.index("#"):]) for line in cell.source.splitlines() if "#" in line]
            texts += [(i, node.value) for node in ast.walk(ast.parse(cell.source))
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return texts


def nameless_mentions(text: str) -> list[str]:
    return [text[max(0, m.start() - 40):m.end() + 20].replace("\n", " ") for m in NAMELESS.finditer(text)]


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_name_the_article_they_mean(path):
    bad = [f"cell {i}: ...{m}..." for i, text in prose(path) for m in nameless_mentions(text)]
    assert not bad, f"{path.name} says 'article' without naming it:\n" + "\n".join(bad)


def test_the_nameless_check_can_fail():
    assert nameless_mentions("The article's sentence") and nameless_mentions("the second source article says")
    assert not nameless_mentions("the *Deep Dive* article's sentence")
    assert not nameless_mentions("the *Heads and Positions* article")
    assert nameless_mentions("One of the source articles makes the point") and nameless_mentions("The first article")
    assert not nameless_mentions("both articles") and not nameless_mentions("the articles' claims")


@pytest.mark.parametrize("where", ["README.md", "notebooks/00_start_here.ipynb"])
def test_readme_and_lesson_00_introduce_both_articles(where):
    path = ROOT / where
    text = path.read_text() if path.suffix == ".md" else "\n".join(c.source for c in read(path).cells)
    text = " ".join(text.split())  # titles may be wrapped across lines
    for title, name in zip(ARTICLE_TITLES, ARTICLE_NAMES):
        assert f'"{title}"' in text, f"{where} does not give the title {title!r} (in quotes)"
        assert name in text, f"{where} does not define the short name {name}"


# ---------------------------------------------------------------------------------------------
# 4. the still copy under each explorer is the explorer's own picture, at its starting values


def explorer_display(cell) -> ast.Call | None:
    """In a live-explorer cell (`explorer = some_explorer(...)` then `explorer`), the factory call."""
    if cell.cell_type != "code" or "nbval-ignore-output" not in cell.metadata.get("tags", []):
        return None
    body = ast.parse(cell.source).body
    if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Name):
        return None
    shown = body[-1].value.id
    for node in body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and any(isinstance(t, ast.Name) and t.id == shown for t in node.targets)):
            return node.value
    return None


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_still_copies_are_snapshots_of_the_same_explorer(path):
    """`explorer = multihead_explorer(...)` / `explorer` is followed by a cell showing
    `multihead_explorer(...).snapshot()` with the same arguments: the picture the learner
    sees live, at its natural size with its text alternative, whatever they did to the live one."""
    cells = read(path).cells
    problems = []
    for i, cell in enumerate(cells):
        factory = explorer_display(cell)
        if factory is None:
            continue
        following = next(c for c in cells[i + 1:] if c.cell_type == "code")
        first = ast.parse(following.source).body[0]
        call = first.value if isinstance(first, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "snapshot"
                and ast.dump(call.func.value) == ast.dump(factory)):
            problems.append(f"cell {i}: {ast.unparse(factory)} is followed by {following.source.splitlines()[0]!r}, "
                            f"not {ast.unparse(factory)}.snapshot()")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_the_explorer_lessons_are_all_checked():
    shown = {p.name[:2] for p in LESSONS for c in read(p).cells if explorer_display(c) is not None}
    assert shown >= {"00", "01", "02", "03", "04", "05", "06", "09", "10"}, shown


def test_lesson_00_troubleshooting_covers_model_not_found():
    """What a learner sees after reopening a notebook whose widget state was not saved: why,
    and what to do (run the cell again / Run All; `make lab` saves widget state)."""
    cells = read(NOTEBOOKS / "00_start_here.ipynb").cells
    section = next(c.source for c in cells if c.cell_type == "markdown" and "## If the widgets do not show" in c.source)
    section = " ".join(section.split("## Recap")[0].split())
    assert "Error displaying widget: model not found" in section
    assert "Run All" in section and "run the explorer's cell again" in section
    assert "`make lab`" in section and "save widget state" in section
