"""Every explorer of the course, used in a real JupyterLab in a real Chromium (issue 12).

One JupyterLab page at 1400 x 900 CSS px with device pixel ratio 2 (a laptop's high-DPI
screen) for the whole module. For each lesson with explorers (00-06, 09, 10): open it,
run it down to its last explorer (Run All Above; lesson 10's timing cells come later), then
on every live explorer change its controls in turn (as a person would: the
next dropdown option, an arrow key on a slider, the next toggle button) until its picture
has changed 10 times, and check only functional things (latency is a benchmark, printed
here and measured properly by benchmarks/bench_browser.py, never a threshold):

1. each change gives a new picture (src and bytes), and the picture's title, its text
   alternative (`view.tooltip`), changes with it and is not empty;
2. the picture is not stretched: its CSS width is at most its pixel width / 2 (+1 px), as
   a PNG rendered for DPR 2 and shown at its natural size;
3. no error: no cell up to the last explorer shows an error, every widget renders, and
   the browser reports no "model not found";
4. under JupyterLab Dark, an explorer's picture and a static plot keep an opaque light
   background (black text stays readable), not the dark page showing through.

The `test_harness_*` tests show that the checks catch a stretched picture, a picture whose
title does not follow it, a new <img> src without a new picture, an Image view that cannot
render its title, and a transparent figure on the dark page. Lesson 04 in Jupyter
Notebook 7 is in tests/test_browser_notebook7.py. Failures leave a screenshot and the
server log in test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import statistics
from pathlib import Path

import nbformat
import pytest

from browser_util import (Lab, browser, notebook_with_evidence, exercise_explorer, explorer_locator, find_explorers,  # noqa: F401  browser: a fixture
                          jupyterlab_server, loopback_page, percentile, picture_state)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
VIEWPORT = (1400, 900)
DPR = 2
CHANGES = 10
# The explorers each lesson shows (the function its cell calls); a lesson may show more.
EXPECTED = {
    "00": {"weighted_average_explorer"},
    "01": {"temperature_explorer"},
    "02": {"scaling_explorer"},
    "03": {"self_attention_explorer"},
    "04": {"multihead_explorer"},
    "05": {"sinusoidal_explorer", "rope_explorer"},
    "06": {"mask_explorer"},
    "09": {"head_viewer"},
    "10": {"gqa_explorer", "online_softmax_explorer"},
}


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A copy of the lessons (nothing JupyterLab saves touches the repository) and the
    control notebooks."""
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    write_controls(root / "controls")
    return root


@pytest.fixture(scope="module")
def lab(browser, lab_root):
    with jupyterlab_server(lab_root) as server, \
            loopback_page(browser, viewport=VIEWPORT, device_scale_factor=DPR) as page:
        yield Lab(page, server)


def notebook(lab: Lab, path: str, name: str):
    """Open `path` trusted (as binder/postBuild trusts the lessons); see `browser_util.notebook_with_evidence`."""
    return notebook_with_evidence(lab, path, name, ARTIFACTS, trust=True)


def lesson_path(number: str) -> str:
    (path,) = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    return f"notebooks/{path.name}"


def explorer_problems(lab: Lab, explorer: dict, *, changes: int = CHANGES, dpr: float = DPR) -> list[str]:
    """What is wrong with one live explorer ([] when nothing is) after changing its controls
    until its picture has changed `changes` times (at most 2 * changes tries): a change that
    gives no new picture, a picture whose title does not follow it, a stretched picture."""
    name = f"{explorer['name']} (cell {explorer['cell']})"
    results = exercise_explorer(lab, explorer, changes=changes, timeout=10, title_wait=3)
    tried = [r for r in results if not r["skipped"]]
    changed = [r for r in tried if r["changed"]]
    problems = []
    if len(changed) < changes:
        problems.append(f"{name}: the picture changed on {len(changed)} of {len(tried)} control changes "
                        f"(no change after {[r['what'] for r in tried if not r['changed']][:4]})")
    for r in changed:
        if r["sha"] is None or r["sha"] == r["shaBefore"]:
            problems.append(f"{name}: {r['what']}: the <img> src changed, its picture did not")
        if not r["title"].strip():
            problems.append(f"{name}: {r['what']}: the picture has no title (text alternative)")
        elif r["title"] == r["titleBefore"]:
            problems.append(f"{name}: {r['what']}: the title stayed {r['title'][:80]!r} while the picture changed")
        if r["cssWidth"] > r["naturalWidth"] / dpr + 1:
            problems.append(f"{name}: {r['what']}: picture stretched: {r['naturalWidth']} px PNG shown "
                            f"{r['cssWidth']:.0f} CSS px wide (at most {r['naturalWidth'] / dpr:.0f} at DPR {dpr:g})")
    times = [r["ms"] for r in changed]
    if times:
        print(f"{name}: {len(times)} changes, control event to picture decoded: median "
              f"{statistics.median(times):.0f} ms, p95 {percentile(times, 95):.0f} ms (a figure, not a check)")
    text = explorer_locator(lab, explorer).inner_text()
    problems += [f"{name}: shows {word!r}" for word in ("Traceback", "Error displaying widget") if word in text]
    return problems


def errors_before(lab: Lab, last_cell: int) -> list[str]:
    """Error outputs (and cells left unexecuted) up to cell `last_cell`. The explorers'
    lessons are run cell by cell under nbval; here only what the explorers stand on counts."""
    return [p for p in lab.cell_errors() if int(p.split()[1]) <= last_cell]


def last_explorer_cell(lab: Lab) -> int:
    """The last code cell that makes an explorer (calls `..._explorer(` or `head_viewer(`):
    the lesson is run up to it, not through the timing cells that follow in some lessons."""
    cells = [c["index"] for c in lab.state()["cells"]
             if c["type"] == "code" and re.search(r"\b(\w+_explorer|head_viewer)\(", c["source"])]
    assert cells, "no cell makes an explorer"
    return cells[-1]


# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_every_explorer_reacts_unstretched_with_its_text_alternative(lab, number):
    path = lesson_path(number)
    with notebook(lab, path, f"explorers-{number}"):
        lab.run_through(last_explorer_cell(lab), timeout=900)
        explorers = find_explorers(lab)
        names = {e["name"] for e in explorers}
        assert EXPECTED[number] <= names, f"{path}: explorers on the page {sorted(names)}, expected {sorted(EXPECTED[number])}"
        assert picture_state(lab, explorers[0])["dpr"] == DPR
        problems = []
        for explorer in explorers:
            problems += explorer_problems(lab, explorer)
        problems += errors_before(lab, max(e["cell"] for e in explorers))
        problems += lab.widget_problems(settle=5)
        assert problems == []


# ---------------------------------------------------------------------------------------
# Dark theme: the page turns dark; figures must not.

DARK, LIGHT = "JupyterLab Dark", "JupyterLab Light"
STATIC_PLOT = '''\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1, 2], [0, 1, 0])
ax.set_title("a static plot")
plt.show()
'''


def set_theme(lab: Lab, theme: str) -> None:
    lab.page.evaluate("async (theme) => { await window.jupyterapp.commands.execute('apputils:change-theme', {theme}); }",
                      theme)
    light = "true" if theme == LIGHT else "false"
    lab.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)
    lab.page.wait_for_timeout(500)  # the theme's stylesheet is applied


@contextlib.contextmanager
def dark_theme(lab: Lab):
    set_theme(lab, DARK)
    try:
        yield
    finally:
        set_theme(lab, LIGHT)


def light_border_fraction(png: bytes, *, inset: int = 3, frame: int = 6, light: int = 200) -> float:
    """The fraction of a screenshot's border pixels (its figure background, around the
    axes: a band `frame` pixels wide, `inset` pixels in, as the element's fractional CSS
    position lets the page show in its outermost device pixels) whose R, G and B are all
    at least `light`."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    xs, ys = range(inset, w - inset), range(inset, h - inset)
    band_x = [*range(inset, inset + frame), *range(w - inset - frame, w - inset)]
    band_y = [*range(inset, inset + frame), *range(h - inset - frame, h - inset)]
    pixels = [rgb.getpixel((x, y)) for x in xs for y in band_y] + [rgb.getpixel((x, y)) for y in ys for x in band_x]
    return sum(min(p) >= light for p in pixels) / len(pixels)


def page_is_dark(lab: Lab) -> bool:
    colour = lab.panel.locator(".jp-Notebook").evaluate("n => getComputedStyle(n).backgroundColor")
    channels = [int(c) for c in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]]
    return max(channels) < 80


def dark_theme_problems(lab: Lab) -> list[str]:
    """Under JupyterLab Dark: every explorer picture and static plot (an <img> in a cell's
    output) whose outer frame is not almost all opaque light pixels."""
    problems = []
    with dark_theme(lab):
        assert page_is_dark(lab), "the theme did not turn the notebook dark"
        images = lab.panel.locator(".jp-OutputArea-output img")
        assert images.count() >= 2, "expected an explorer's picture and a static plot"
        for i in range(images.count()):
            img = images.nth(i)
            img.scroll_into_view_if_needed()
            kind = "explorer picture" if "widget-image" in (img.get_attribute("class") or "") else "static plot"
            fraction = light_border_fraction(img.screenshot())
            if fraction < 0.9:
                problems.append(f"{kind} {i}: only {fraction:.0%} of its border is light on the dark page")
    return problems


def test_dark_theme_keeps_figures_readable(lab):
    """A real explorer (lesson 01's) and a static plot after `notebook.setup()`, as every
    lesson draws them, under JupyterLab Dark."""
    with notebook(lab, "controls/dark_theme.ipynb", "dark-theme"):
        lab.run_all(timeout=300)
        assert lab.cell_errors() == [] and lab.widget_problems() == []
        assert dark_theme_problems(lab) == []


# ---------------------------------------------------------------------------------------
# The checks above must fail when something is wrong.

TOY_EXPLORER = '''\
import ipywidgets as W
import traitlets
from attn_core.viz import figure_to_png
from matplotlib.figure import Figure

class Image(W.Image):
    # ipywidgets 8.1's front-end sets an element's title only when its model has an empty
    # `description`, which Image lacks: without this trait its view fails to render
    description = traitlets.Unicode("").tag(sync=True)

def picture(n, dpi):
    fig = Figure(figsize=(3, 2), dpi=dpi, facecolor="white")
    ax = fig.add_subplot()
    ax.bar(range(n), range(1, n + 1))
    return figure_to_png(fig)

STRETCH, TITLE_FOLLOWS = False, True
REDRAW = True
n_heads = W.Dropdown(options=list(range(1, 13)), value=2, description="n_heads")
view = Image(value=picture(2, 160), format="png", tooltip="2 bars",
               layout=W.Layout(width="100%" if STRETCH else "240px"))

def update(change):
    if REDRAW:
        view.value = picture(change["new"], 160)
    if TITLE_FOLLOWS:
        view.tooltip = f"{change['new']} bars"

n_heads.observe(update, names="value")
W.HBox([n_heads, view])
'''
TRANSPARENT = '''\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1, 2], [0, 1, 0])
fig.savefig(buf := __import__("io").BytesIO(), format="png", transparent=True)
plt.close(fig)
from IPython.display import Image
Image(buf.getvalue(), width=240)
'''


def write_controls(folder: Path) -> None:
    folder.mkdir(parents=True)

    def write(name, *cells):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# control: {name}")] + [nbformat.v4.new_code_cell(c) for c in cells]
        nbformat.write(nb, folder / f"{name}.ipynb")

    setup = "from attn_core.notebook import setup\nsetup()"
    write("dark_theme", setup, STATIC_PLOT,
          "from attn_core.widgets import temperature_explorer\nexplorer = temperature_explorer()\nexplorer")
    write("toy_explorer", TOY_EXPLORER)
    write("stretched", TOY_EXPLORER.replace("STRETCH, TITLE_FOLLOWS = False, True", "STRETCH, TITLE_FOLLOWS = True, True"))
    write("title_stays", TOY_EXPLORER.replace("STRETCH, TITLE_FOLLOWS = False, True", "STRETCH, TITLE_FOLLOWS = False, False"))
    write("transparent", setup, STATIC_PLOT, TRANSPARENT)
    write("title_only", TOY_EXPLORER.replace("REDRAW = True", "REDRAW = False"))
    write("plain_image_tooltip", TOY_EXPLORER.replace("view = Image(", "view = W.Image("))


def toy_problems(lab: Lab, name: str, *, changes: int = CHANGES) -> list[str]:
    with notebook(lab, f"controls/{name}.ipynb", f"control-{name}"):
        lab.run_all(timeout=120)
        assert lab.cell_errors() == [] and lab.widget_problems() == []
        (explorer,) = find_explorers(lab)
        return explorer_problems(lab, explorer, changes=changes)


def test_harness_passes_a_sharp_explorer_whose_title_follows(lab):
    assert toy_problems(lab, "toy_explorer") == []


def test_harness_catches_a_new_src_without_a_new_picture(lab):
    """ipywidgets 8.1 re-sets the <img> src on any change of the Image model: a new title
    alone gives a new src, but the same picture."""
    problems = toy_problems(lab, "title_only", changes=3)
    assert problems and all("its picture did not" in p for p in problems), problems


def test_harness_catches_a_picture_that_cannot_render_its_title(lab):
    """ipywidgets 8.1.9: an `Image` with a `tooltip` but no `description` trait fails to
    render ("Could not create a view": its updateTooltip reads description.length)."""
    with notebook(lab, "controls/plain_image_tooltip.ipynb", "control-plain-image-tooltip"):
        lab.run_all(timeout=120)
        assert lab.cell_errors() == []
        problems = lab.widget_problems(settle=4)
        assert any("Could not create a view" in p for p in problems), problems


def test_harness_catches_a_stretched_picture(lab):
    problems = toy_problems(lab, "stretched", changes=3)
    assert problems and all("picture stretched" in p for p in problems), problems


def test_harness_catches_a_title_that_does_not_follow_the_picture(lab):
    problems = toy_problems(lab, "title_stays", changes=3)
    assert problems and all("the title stayed" in p for p in problems), problems


def test_harness_catches_a_transparent_figure_on_the_dark_page(lab):
    with notebook(lab, "controls/transparent.ipynb", "control-transparent"):
        lab.run_all(timeout=120)
        assert lab.cell_errors() == []
        problems = dark_theme_problems(lab)
        assert len(problems) == 1 and problems[0].startswith("static plot 1:"), problems
