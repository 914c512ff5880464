"""An explorer lesson in Jupyter Notebook 7 (not only JupyterLab), in a real Chromium.

Notebook 7 (pinned in requirements.txt and binder/requirements.txt, in step with
JupyterLab) is the other front-end learners open the course in; Binder's image has it. The
test opens lesson 04 at /notebooks/<path> (trusted, as binder/postBuild trusts the lessons),
runs all cells, changes the multi-head explorer's controls a few times and checks that the
picture changes each time, with no error output and no "Error displaying widget" or
"model not found", and that nothing was fetched from outside 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from browser_util import CHROMIUM, Lab, chromium, exercise_explorer, find_explorers, jupyterlab_server, loopback_page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
LESSON = "notebooks/04_multi_head_attention.ipynb"


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian package 'chromium'; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": the browser test must run in CI")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("nb7-root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    with jupyterlab_server(root, app="notebook") as server, chromium(device_scale_factor=2) as browser, \
            loopback_page(browser, viewport=(1400, 900), device_scale_factor=2) as page:
        yield Lab(page, server)


def test_multihead_explorer_works_in_notebook_7(notebook7):
    lab = notebook7
    lab.server.trust(lab.server.root / LESSON)
    try:
        lab.open_notebook(LESSON)
        assert lab.page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
        assert lab.widget_problems() == [], "the lesson, as committed, shows broken widgets when opened"
        lab.run_all(timeout=900)
        assert lab.cell_errors() == []
        assert lab.widget_problems() == []
        explorers = [e for e in find_explorers(lab) if e["name"] == "multihead_explorer"]
        assert explorers, f"no multihead_explorer on the page: {[e['name'] for e in find_explorers(lab)]}"
        lab.count_favicon_swaps()
        results = exercise_explorer(lab, explorers[0], changes=4, timeout=15)
        tried = [r for r in results if not r["skipped"]]
        assert tried and all(r["changed"] for r in tried), [(r["what"], r["changed"]) for r in tried]
        # the course's page config (jupyter-config/labconfig) turns the busy favicon off here too
        assert lab.favicon_swaps() == 0, "Notebook 7 swapped the tab's icon on explorer changes"
        assert lab.widget_problems(settle=5) == []
        assert lab.cell_errors() == []
        assert lab.page.blocked_requests == [], f"requests left 127.0.0.1: {lab.page.blocked_requests[:5]}"
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            lab.page.screenshot(path=str(ARTIFACTS / "notebook7.png"))
        with contextlib.suppress(Exception):
            (ARTIFACTS / "notebook7-server.log").write_text(lab.server.log_tail(400))
        raise


def test_harness_in_notebook_7_sees_a_missing_model_and_a_frozen_picture(notebook7):
    """The same checks catch, in Notebook 7's page, a widget view whose model is missing
    and an explorer whose picture does not react (the controls of tests/test_browser.py)."""
    import nbformat

    from test_browser import EXPLORER, MISSING_MODEL

    lab = notebook7
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(MISSING_MODEL),
                nbformat.v4.new_code_cell(EXPLORER.replace("REACTS = True", "REACTS = False"))]
    nbformat.write(nb, lab.server.root / "control_nb7.ipynb")
    lab.open_notebook("control_nb7.ipynb")
    lab.run_all(timeout=120)
    assert lab.cell_errors() == []
    problems = lab.widget_problems(settle=4)
    assert "2 widget outputs in the notebook, 1 rendered on the page" in problems, problems
    (explorer,) = find_explorers(lab)
    results = exercise_explorer(lab, explorer, changes=1, max_tries=1, timeout=3)
    assert [r["changed"] for r in results] == [False]
