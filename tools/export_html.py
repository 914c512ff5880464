"""Render the executed course to static HTML: for a projector, or for reading without a
kernel, with no network.

    python tools/export_html.py                          # every notebook -> site/
    python tools/export_html.py --execute                # run each notebook first
    python tools/export_html.py notebooks/04_*.ipynb --out /tmp/site

Writes `site/NN_name.html` for each notebook and `site/index.html` (the lessons in order).
The notebooks are committed executed, so their saved outputs are used as they are;
`--execute` runs them again first (in memory: the .ipynb files are not changed).

What changes on the way, so the pages work from a USB stick with no network:
- figures are embedded in the page (PNG data), nothing is linked;
- an explorer widget needs a kernel, so its output becomes a short note (each lesson
  follows every explorer with a static figure of its starting state), and the saved
  widget state and the widget JavaScript (from a CDN) are left out;
- the maths (MathJax 2) comes from a copy in `site/_mathjax/` when the package
  `jupyter-server-mathjax` is installed (it is in requirements.txt), else from a CDN;
- RequireJS and Mermaid (CDN scripts nbconvert adds by default) are left out: the
  lessons use neither;
- links between lessons (`05_positional_encoding.ipynb`) point to the HTML pages.
"""

from __future__ import annotations

import argparse
import copy
import glob
import html
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX_DIR = "_mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # a configuration the local copy ships
EXPLORER_NOTE = (
    '<div style="border:1px dashed #888;border-radius:4px;padding:6px 10px;color:#444;'
    'background:#f6f6f6;font-size:90%">Interactive explorer: open this notebook in JupyterLab '
    "(or on Binder) to use it. The figure after it shows its starting state.</div>"
)
# The lab template, without the scripts the course does not need (each fetched from a CDN).
TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}
{{ super() }}
<script type="text/x-mathjax-config">
// The local MathJax copy ships the STIX web fonts only (like the classic notebook's).
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}});
</script>
{%- endblock html_head_js_mathjax -%}
"""


def local_mathjax() -> Path | None:
    """The MathJax 2 folder shipped by `jupyter-server-mathjax`, if it is installed."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    folder = Path(jupyter_server_mathjax.__file__).parent / "static"
    return folder if (folder / "MathJax.js").exists() else None


def static_copy(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """A copy of `nb` whose widget outputs are notes; returns it and how many it replaced."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for i, output in enumerate(cell.outputs):
            if WIDGET_VIEW in output.get("data", {}):
                cell.outputs[i] = nbformat.v4.new_output(
                    "display_data", data={"text/html": EXPLORER_NOTE, "text/plain": "[interactive explorer]"})
                replaced += 1
    return nb, replaced


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    return fallback


def execute(nb: nbformat.NotebookNode, path: Path) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()


def make_exporter(mathjax_url: str | None) -> HTMLExporter:
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"course.html.j2": TEMPLATE})],
                            template_file="course.html.j2")
    if mathjax_url:
        exporter.mathjax_url = mathjax_url
    return exporter


def export(paths: list[Path], out: Path, *, run: bool = False) -> list[dict]:
    """Write one HTML page per notebook and an index into `out`; return a summary row each."""
    out.mkdir(parents=True, exist_ok=True)
    mathjax = local_mathjax()
    if mathjax is not None:
        shutil.copytree(mathjax, out / MATHJAX_DIR, dirs_exist_ok=True)
        mathjax_url = f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}"
    else:
        mathjax_url = None
        print("note: jupyter-server-mathjax is not installed; the pages load MathJax from a CDN "
              "(maths shows as LaTeX source without a network)", file=sys.stderr)
    exporter = make_exporter(mathjax_url)
    stems = {p.stem for p in paths}
    rows = []
    for path in paths:
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        if run:
            execute(nb, path)
        static, replaced = static_copy(nb)
        body, _ = exporter.from_notebook_node(static, resources={"metadata": {"name": title_of(nb, path.stem)}})
        # links between lessons: NN_name.ipynb -> NN_name.html
        body = re.sub(r'href="(?:\./)?([^"/]+)\.ipynb(#[^"]*)?"',
                      lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"' if m.group(1) in stems else m.group(0),
                      body)
        target = out / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        rows.append({"notebook": path.name, "html": target.name, "title": title_of(nb, path.stem),
                     "figures": body.count('src="data:image/png;base64,'), "explorers": replaced,
                     "kb": round(target.stat().st_size / 1024), "seconds": round(time.perf_counter() - start, 1)})
    items = "\n".join(f'  <li><a href="{html.escape(r["html"])}">{html.escape(r["title"])}</a></li>' for r in rows)
    (out / "index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Attention, step by step</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.6}</style></head>\n"
        f"<body><h1>Attention, step by step</h1>\n<p>The course's lessons as static pages, outputs included. "
        f"The explorers need a kernel: open the notebooks in JupyterLab to use them.</p>\n<ol>\n{items}\n</ol>\n"
        "</body></html>\n", encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to export (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    parser.add_argument("--execute", action="store_true", help="run each notebook before exporting it")
    args = parser.parse_args(argv)
    paths = [Path(p).resolve() for p in args.notebooks] or sorted(
        Path(p) for p in glob.glob(str(ROOT / "notebooks" / "*.ipynb")))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    rows = export(paths, args.out, run=args.execute)
    print(f"{'page':42s} {'figures':>7s} {'explorers':>9s} {'KB':>6s} {'seconds':>7s}")
    for r in rows:
        print(f"{r['html']:42s} {r['figures']:7d} {r['explorers']:9d} {r['kb']:6d} {r['seconds']:7.1f}")
    print(f"open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
