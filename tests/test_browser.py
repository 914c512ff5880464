"""The multi-head lesson in a real JupyterLab, in a real Chromium.

What a learner on Binder or on a laptop does: open notebooks/04_multi_head_attention.ipynb,
run all cells, use the explorer. JupyterLab runs from this environment on 127.0.0.1 (no
token); Debian's Chromium is driven by Playwright. The test checks, in the page:

1. as committed (trusted, as binder/postBuild trusts the notebooks), before anything
   runs, no widget output is broken: each renders from saved widget state, or the notebook
   carries none (no "Error displaying widget: model not found" for a learner who opens it);
2. after Run All: no cell shows an error, every widget output is rendered (no empty box,
   no plain-text repr, no "Error displaying widget", no "model not found");
3. choosing another `n_heads` in the multi-head explorer changes the picture, and
   choosing another `d_model` re-offers only head counts that divide it; the tab's icon
   does not change meanwhile (the course's page config turns JupyterLab's busy favicon
   off, jupyter-config/labconfig/page_config.json: it cost the browser about 15 ms a change);
4. nothing was fetched from outside 127.0.0.1 (no CDN: the course works offline).

`test_every_lesson_opens_without_broken_widgets` repeats check 1 for every lesson.

The `test_harness_*` tests run the same checks on small notebooks built to fail (a widget
that does not react, a widget view whose model is missing, a cell that raises, widget
outputs saved without their state) and assert that the checks catch each one, so a pass above means
something. A failing test leaves a screenshot and the server log in
test-artifacts/browser/. Run alone with `python -m pytest -m browser`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from browser_util import FAVICON_BUSY, Lab, browser, notebook_with_evidence, jupyterlab_server, loopback_page  # noqa: F401  browser: a fixture

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
LESSON = "notebooks/04_multi_head_attention.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A copy of the course (so nothing JupyterLab saves touches the repository) and the
    control notebooks."""
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    write_controls(root / "controls")
    return root


@pytest.fixture(scope="module")
def server(lab_root):
    with jupyterlab_server(lab_root) as s:
        yield s


@pytest.fixture(scope="module")
def lab(browser, server):
    """One JupyterLab page for the module: loading JupyterLab's front-end is the slow part."""
    with loopback_page(browser) as page:
        yield Lab(page, server)


def notebook(lab: Lab, path: str, name: str):
    """Open `path` as it is on disk (untrusted unless trusted); see `browser_util.notebook_with_evidence`."""
    return notebook_with_evidence(lab, path, name, ARTIFACTS)


# ---------------------------------------------------------------------------------------

def test_multihead_lesson_runs_and_its_explorer_reacts(lab, lab_root):
    start = time.monotonic()
    assert (lab_root / LESSON).exists(), f"{LESSON} is missing"
    lab.server.trust(lab_root / LESSON)
    with notebook(lab, LESSON, "multihead"):
        opened = time.monotonic() - start

        # 1. As committed, before anything runs: every widget output the notebook carries
        #    renders from its saved state (a notebook may also carry none), and none shows
        #    "Error displaying widget: model not found".
        saved_views = lab.widget_view_count()
        assert lab.widget_problems() == [], "the lesson, as committed, shows broken widgets when opened"

        # 2. Run All: no errors, every widget rendered.
        run_seconds = lab.run_all(timeout=900)
        assert lab.cell_errors() == []
        assert lab.widget_view_count() >= max(saved_views, 1), "Run All displayed no widget"
        assert lab.widget_problems() == []

        # 3. The multi-head explorer reacts to n_heads (and d_model re-offers divisors),
        #    and the tab's icon stays as it is (no busy favicon: jupyter-config/labconfig).
        lab.count_favicon_swaps()
        explorers = lab.explorers("d_model", "n_heads")
        assert explorers.count() >= 1, "no explorer with d_model and n_heads controls on the page"
        explorer = explorers.first
        picture = lab.image_fingerprint(explorer)
        changed = lab.set_control(explorer, "n_heads")
        picture = lab.wait_for_new_image(explorer, picture)

        d_model_options = lab.options(explorer, "d_model")
        target = next(o for o in ("24", "12", "96") if o in d_model_options)
        lab.set_control(explorer, "d_model", to=target)
        picture = lab.wait_for_new_image(explorer, picture)
        heads = [int(h) for h in lab.options(explorer, "n_heads")]
        assert heads and all(int(target) % h == 0 for h in heads), f"d_model={target} offers n_heads {heads}"
        lab.set_control(explorer, "n_heads")
        lab.wait_for_new_image(explorer, picture)
        assert lab.widget_problems(settle=5) == []
        live_views = lab.widget_view_count()
        assert lab.favicon_swaps() == 0, "JupyterLab's busy favicon is on (is the course's page_config.json installed?)"

        # 4. Everything came from the local server.
        assert lab.page.blocked_requests == [], f"requests left 127.0.0.1: {lab.page.blocked_requests[:5]}"

    total = time.monotonic() - start
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    timing = {"open_s": round(opened, 1), "run_all_s": round(run_seconds, 1), "total_s": round(total, 1),
              "saved_widget_views": saved_views, "live_widget_views": live_views, "first_change": changed}
    (ARTIFACTS / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    print(f"multi-head lesson in Chromium: {timing}")


LESSONS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", LESSONS, ids=[Path(p).stem for p in LESSONS])
def test_every_lesson_opens_without_broken_widgets(lab, lab_root, path):
    """What a learner sees on opening a lesson (on Binder the badge lands on 00): no
    "Error displaying widget: model not found" under an explorer, no widget left as text.
    A notebook that saves widget views without their state fails here."""
    lab.server.trust(lab_root / path)
    with notebook(lab, path, f"open-{Path(path).stem}"):
        assert lab.widget_problems(settle=10) == []


# ---------------------------------------------------------------------------------------
# The checks above must fail when something is wrong: the same checks on notebooks built to
# fail in one way each.

EXPLORER = '''\
import io
import ipywidgets as W
from matplotlib.figure import Figure

def picture(n_heads):
    fig = Figure(figsize=(3, 2), dpi=60)
    ax = fig.add_subplot()
    ax.bar(range(n_heads), range(1, n_heads + 1))
    ax.set_title(f"{n_heads} heads")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()

n_heads = W.Dropdown(options=[1, 2, 3, 4, 6], value=2, description="n_heads")
view = W.Image(value=picture(2), format="png")
REACTS = True
n_heads.observe(lambda change: REACTS and setattr(view, "value", picture(change["new"])), names="value")
W.VBox([n_heads, view])
'''
MISSING_MODEL = '''\
from IPython.display import display
display({"application/vnd.jupyter.widget-view+json": {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}}, raw=True)
'''


def write_controls(folder: Path) -> None:
    folder.mkdir(parents=True)

    def write(name, *cells, execute=False, keep_state=True):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# control: {name}")] + [nbformat.v4.new_code_cell(c) for c in cells]
        if execute:
            from nbclient import NotebookClient

            NotebookClient(nb, kernel_name="python3", timeout=120).execute()  # stores the widget state
            if not keep_state:
                nb.metadata.pop("widgets")
        nbformat.write(nb, folder / f"{name}.ipynb")

    write("reacts", "print('ready')", EXPLORER)
    write("frozen", "print('ready')", EXPLORER.replace("REACTS = True", "REACTS = False"))
    write("missing_model", MISSING_MODEL, EXPLORER)
    write("raises", "print('ready')", "1 / 0", EXPLORER)
    write("saved", EXPLORER, execute=True)
    write("stateless", EXPLORER, execute=True, keep_state=False)


def test_harness_sees_a_working_widget_react(lab):
    with notebook(lab, "controls/reacts.ipynb", "control-reacts"):
        lab.run_all(timeout=120)
        assert lab.cell_errors() == [] and lab.widget_problems() == []
        explorer = lab.explorers("n_heads").first
        before = lab.image_fingerprint(explorer)
        lab.set_control(explorer, "n_heads")
        lab.wait_for_new_image(explorer, before)


def test_harness_fails_when_the_picture_does_not_change(lab):
    with notebook(lab, "controls/frozen.ipynb", "control-frozen"):
        lab.run_all(timeout=120)
        assert lab.cell_errors() == [] and lab.widget_problems() == []
        explorer = lab.explorers("n_heads").first
        before = lab.image_fingerprint(explorer)
        lab.set_control(explorer, "n_heads")
        with pytest.raises(AssertionError, match="did not change"):
            lab.wait_for_new_image(explorer, before, timeout=4)


def test_harness_fails_when_a_widget_does_not_render(lab):
    with notebook(lab, "controls/missing_model.ipynb", "control-missing-model"):
        lab.run_all(timeout=120)
        assert lab.cell_errors() == []
        problems = lab.widget_problems(settle=4)
        assert "2 widget outputs in the notebook, 1 rendered on the page" in problems, problems


def test_harness_fails_when_a_cell_raises(lab):
    with notebook(lab, "controls/raises.ipynb", "control-raises"):
        lab.run_all(timeout=120)
        problems = lab.cell_errors()
        assert any("ZeroDivisionError" in p for p in problems), problems
        assert any("not executed" in p for p in problems), problems  # Run All stops at the error


def test_harness_checks_widgets_saved_in_a_notebook(lab, lab_root):
    """What a learner sees on opening an executed notebook, before running anything:
    saved widget state renders only in a trusted notebook (hence postBuild's `jupyter
    trust`; untrusted, JupyterLab shows the widget's plain-text repr), and widget outputs
    saved *without* their state show "Error displaying widget: model not found"."""
    with notebook(lab, "controls/saved.ipynb", "control-untrusted"):
        assert lab.widget_view_count() == 1
        assert lab.widget_problems(settle=4) == ["1 widget outputs in the notebook, 0 rendered on the page"]
    lab.server.trust(lab_root / "controls" / "saved.ipynb", lab_root / "controls" / "stateless.ipynb")
    with notebook(lab, "controls/saved.ipynb", "control-trusted"):
        assert lab.widget_problems() == []
    with notebook(lab, "controls/stateless.ipynb", "control-stateless"):
        problems = lab.widget_problems(settle=4)
        assert "page shows: Error displaying widget: model not found" in problems, problems


def test_harness_sees_the_busy_favicon_when_it_is_on(lab_root, browser):
    """The control of check 3's favicon count: in a JupyterLab whose config turns the busy
    favicon back on (a config folder ahead of the environment's), the same count sees the
    icon swapped when an explorer change makes the kernel busy."""
    with jupyterlab_server(lab_root, favicon_busy=True) as server, loopback_page(browser) as page:
        lab = Lab(page, server)
        with notebook(lab, "controls/reacts.ipynb", "control-favicon-busy"):
            lab.run_all(timeout=120)
            assert page.evaluate("id => window.jupyterapp.isPluginActivated(id)", FAVICON_BUSY)
            lab.count_favicon_swaps()
            explorer = lab.explorers("n_heads").first
            before = lab.image_fingerprint(explorer)
            lab.set_control(explorer, "n_heads")
            lab.wait_for_new_image(explorer, before)
            lab.wait_for_kernel("idle", timeout=30)
            assert lab.favicon_swaps() >= 2, lab.favicon_swaps()  # busy, then idle again
