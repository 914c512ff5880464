"""tools/export_html.py: static pages of the executed course that work with no network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import export_html  # noqa: E402

LESSON = ROOT / "notebooks" / "04_multi_head_attention.ipynb"


def png_outputs(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def widget_outputs(nb) -> int:
    return sum(export_html.WIDGET_VIEW in out.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    paths = [ROOT / "notebooks" / "00_start_here.ipynb", LESSON]
    before = {p: p.read_bytes() for p in paths}
    rows = export_html.export(paths, out)
    assert all(p.read_bytes() == before[p] for p in paths), "the export changed a notebook"
    return out, {r["notebook"]: r for r in rows}


def test_every_figure_is_embedded_and_every_explorer_noted(site):
    out, rows = site
    nb = nbformat.read(LESSON, as_version=4)
    page = (out / "04_multi_head_attention.html").read_text()
    assert png_outputs(nb) > 0, "the lesson should have figures"
    assert page.count('src="data:image/png;base64,') == png_outputs(nb) == rows[LESSON.name]["figures"]
    assert page.count("Interactive explorer: open this notebook in JupyterLab") == widget_outputs(nb)
    assert export_html.WIDGET_VIEW not in page and "widget-state+json" not in page


def test_pages_load_nothing_from_the_network(site):
    out, _ = site
    for page in out.glob("*.html"):
        text = page.read_text()
        remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)="(?:https?:)?//[^"]+"', text)
        assert remote == [], f"{page.name} loads {remote[:3]}"
        if "$" in text:  # maths is rendered by the local MathJax copy
            assert f'src="{export_html.MATHJAX_DIR}/MathJax.js?config=' in text
    assert (out / export_html.MATHJAX_DIR / "MathJax.js").exists()
    # the font MathJax is told to use is the one the copy ships
    assert (out / export_html.MATHJAX_DIR / "fonts/HTML-CSS/STIX-Web").is_dir()


def test_links_between_lessons_point_to_the_pages(site):
    out, _ = site
    start = (out / "00_start_here.html").read_text()
    assert 'href="04_multi_head_attention.html"' in start
    index = (out / "index.html").read_text()
    assert index.index("00_start_here.html") < index.index("04_multi_head_attention.html")


def test_widget_outputs_become_notes():
    """Committed notebooks may carry no widget outputs; the replacement is checked here."""
    nb = nbformat.v4.new_notebook()
    view = {export_html.WIDGET_VIEW: {"model_id": "0" * 32, "version_major": 2, "version_minor": 0},
            "text/plain": "Explorer(...)"}
    nb.cells = [nbformat.v4.new_code_cell("explorer", outputs=[
        nbformat.v4.new_output("display_data", data=view),
        nbformat.v4.new_output("stream", name="stdout", text="kept\n")])]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    static, replaced = export_html.static_copy(nb)
    assert replaced == 1 and "widgets" not in static.metadata and "widgets" in nb.metadata
    (note, stream) = static.cells[0].outputs
    assert "Interactive explorer" in note.data["text/html"] and stream.text == "kept\n"
