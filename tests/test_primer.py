"""The PyTorch primer (notebooks/appendix_pytorch_primer.ipynb) covers the tensor operations
the lessons use: every operation of the list below that appears in a lesson's code also
appears in the primer's code, and every lesson that uses one links to the primer."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PRIMER = ROOT / "notebooks" / "appendix_pytorch_primer.ipynb"
LESSONS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# operation -> the pattern that finds it in code
OPERATIONS = {
    "@": r"\s@\s",
    ".T": r"\.T\b",
    ".mT": r"\.mT\b",
    "reshape": r"\.reshape\(",
    "view": r"\.view\(",
    "transpose / swapaxes": r"\.(?:transpose|swapaxes)\(",
    "indexing with None": r"\[None\]|\[:, None\]",
    "expand": r"\.expand(?:_as)?\(",
    "tril": r"\.tril\(",
    "torch.where": r"torch\.where\(",
    "masked_fill": r"\.masked_fill\(",
    "gather": r"\.gather\(",
    "torch.cat": r"torch\.cat\(",
    "torch.stack": r"torch\.stack\(",
    "unbind": r"\.unbind\(",
    "one_hot": r"one_hot\(",
    "nn.Linear": r"nn\.Linear\(",
    "nn.Embedding": r"nn\.Embedding\(",
    "requires_grad": r"requires_grad",
    "backward": r"\.backward\(",
    "torch.autograd.grad": r"autograd\.grad\(",
    "no_grad": r"no_grad",
    "detach": r"\.detach\(",
    "torch.Generator": r"torch\.Generator\(",
    "meta device": r"[\"']meta[\"']",
    "FlopCounterMode": r"FlopCounterMode\(",
    "set_num_threads": r"set_num_threads\(",
    "einsum": r"einsum\(",
    "repeat_interleave": r"repeat_interleave\(",
}


def code_of(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


def used(pattern: str, code: str) -> bool:
    return re.search(pattern, code) is not None


PRIMER_CODE = code_of(PRIMER)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_operation_a_lesson_uses_is_in_the_primer(lesson):
    missing = [name for name, pattern in OPERATIONS.items()
               if used(pattern, code_of(lesson)) and not used(pattern, PRIMER_CODE)]
    assert not missing, f"{lesson.name} uses {missing}, which the PyTorch primer does not show"


@pytest.mark.parametrize("lesson", [p for p in LESSONS if p.stem[:2] in {"01", "02", "03", "04", "05", "06"}],
                         ids=lambda p: p.stem)
def test_lessons_01_to_06_link_the_primer(lesson):
    nb = nbformat.read(lesson, as_version=4)
    assert "appendix_pytorch_primer.ipynb" in nb.cells[0].source, f"{lesson.name}: no link to the primer in its header"


def test_the_checks_above_can_fail():
    """A lesson line using an operation the primer lacks is reported."""
    assert used(OPERATIONS["einsum"], "y = torch.einsum('ij,jk->ik', a, b)")
    assert not used(OPERATIONS["einsum"], PRIMER_CODE)  # so a lesson using einsum would fail the first test
