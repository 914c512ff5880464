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
    rows = export_html.export(paths, out)
    return out, {r["notebook"]: r for r in rows}


def test_every_figure_is_embedded_and_every_explorer_noted(site):
    out, rows = site
    nb = nbformat.read(LESSON, as_version=4)
    page = (out / "04_multi_head_attention.html").read_text()
    assert png_outputs(nb) > 0 and widget_outputs(nb) > 0, "the lesson should have figures and an explorer"
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


def test_the_notebook_itself_is_not_changed(site):
    nb = nbformat.read(LESSON, as_version=4)
    assert "widgets" in nb.metadata and widget_outputs(nb) > 0  # the export worked on a copy
