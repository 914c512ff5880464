"""The course on a JupyterHub (docs/classroom.md): the nbgitpuller link, a learner's work
surviving a course update, the stable learner-facing paths, and a real hub with 3 learners.

The hub tools (JupyterHub, nbgitpuller, configurable-http-proxy) come from
`make classroom-setup`, which CI runs before `make test`. Without them these tests skip,
except in CI (CI=true), where they fail: CI must install them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
sys.path.insert(0, str(TOOLS))
from classroom import nbgitpuller_link  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
LEARNER_USER = re.compile(r"^attn[0-9a-f]{6}-\d\d$")


def need_classroom_tools() -> None:
    import classroom_load

    missing = classroom_load.missing_tools()
    if missing:
        message = "the classroom tools are missing (make classroom-setup): " + "; ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


# ---------------------------------------------------------------------------------------
# The link.

def test_link_opens_lesson_00_in_jupyterlab():
    link = nbgitpuller_link("https://hub.example.org", "https://github.com/OWNER/attention-course", "main")
    assert link == ("https://hub.example.org/hub/user-redirect/git-pull"
                    "?repo=https%3A%2F%2Fgithub.com%2FOWNER%2Fattention-course&branch=main"
                    "&targetpath=attention-course"
                    "&urlpath=lab%2Ftree%2Fattention-course%2Fnotebooks%2F00_start_here.ipynb")
    assert (ROOT / "notebooks/00_start_here.ipynb").exists()


def test_link_encodes_every_value_and_round_trips():
    repo = "https://git.example.org/a+b/course.git?ref=x&y=1#frag"
    branch = "spring/2027+extra"
    link = nbgitpuller_link("https://example.org/jupyter/", repo, branch, targetpath="my course")
    base, query = link.split("?", 1)
    assert base == "https://example.org/jupyter/hub/user-redirect/git-pull"  # base path kept, one slash
    assert set(re.findall(r"[?&#\s]", query)) <= {"&"} and query.count("&") == 3  # nothing unencoded splits it
    values = urllib.parse.parse_qs(query, strict_parsing=True)
    assert values == {"repo": [repo], "branch": [branch], "targetpath": ["my course"],
                      "urlpath": ["lab/tree/my course/notebooks/00_start_here.ipynb"]}


def test_link_targetpath_defaults_to_the_repository_name_without_dot_git():
    q = lambda link: urllib.parse.parse_qs(link.split("?", 1)[1])  # noqa: E731
    assert q(nbgitpuller_link("http://127.0.0.1:8000", "file:///srv/course.git/"))["targetpath"] == ["course"]
    notebook = q(nbgitpuller_link("https://h.org", "https://x.org/c", app="notebook", lesson="notebooks/01_attention.ipynb"))
    assert notebook["urlpath"] == ["notebooks/c/notebooks/01_attention.ipynb"]


@pytest.mark.parametrize("kwargs, argument", [
    ({"hub": "hub.example.org"}, "hub"), ({"hub": "ftp://hub.example.org"}, "hub"),
    ({"hub": "https://hub.example.org/?next=x"}, "hub"), ({"repo": ""}, "repo"), ({"repo": "a b"}, "repo"),
    ({"branch": ""}, "branch"), ({"branch": "--upload-pack=x"}, "branch"), ({"targetpath": "a/b"}, "targetpath"),
    ({"targetpath": ".."}, "targetpath"), ({"lesson": "../etc/passwd.ipynb"}, "lesson"),
    ({"lesson": "README.md"}, "lesson"), ({"app": "classic"}, "app"),
])
def test_link_refuses_bad_input_naming_the_argument(kwargs, argument):
    args = {"hub": "https://hub.example.org", "repo": "https://github.com/O/R", "branch": "main", **kwargs}
    hub, repo, branch = args.pop("hub"), args.pop("repo"), args.pop("branch")
    with pytest.raises(ValueError, match=rf"^{argument} must"):
        nbgitpuller_link(hub, repo, branch, **args)


def test_link_command_needs_only_the_standard_library():
    """`python tools/classroom.py link` runs with -S -I: no site-packages, no course environment."""
    done = subprocess.run([sys.executable, "-S", "-I", str(TOOLS / "classroom.py"), "link", "--hub",
                           "https://hub.example.org", "--repo", "https://github.com/OWNER/REPO", "--branch", "main"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == nbgitpuller_link("https://hub.example.org", "https://github.com/OWNER/REPO", "main")
    bad = subprocess.run([sys.executable, "-S", "-I", str(TOOLS / "classroom.py"), "link", "--hub", "nohub",
                          "--repo", "r"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "hub must be an http(s) address" in bad.stderr


# ---------------------------------------------------------------------------------------
# nbgitpuller keeps a learner's work when the course is updated.

def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Teacher", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "Teacher", "GIT_COMMITTER_EMAIL": "t@example.org"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def pull(repo: Path, target: Path) -> None:
    from nbgitpuller.pull import GitPuller

    for _ in GitPuller(f"file://{repo}", str(target), branch="main").pull():
        pass


def first_code_cell(nb) -> int:
    return next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")


def test_a_learners_edits_survive_a_pull_of_a_newer_course(tmp_path):
    """Real nbgitpuller, local git repositories: the course is updated after the learner
    has worked in it; the next click on the link merges and keeps every edit."""
    need_classroom_tools()
    course, home = tmp_path / "course", tmp_path / "home"
    (course / "notebooks").mkdir(parents=True)
    for name in ("00_start_here.ipynb", "01_attention.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, course / "notebooks" / name)
    git(course, "init", "--quiet", "--initial-branch=main")
    git(course, "add", ".")
    git(course, "commit", "--quiet", "-m", "course v1")

    target = home / "attention-course"
    pull(course, target)  # the first click: a clone
    lesson00, lesson01 = target / "notebooks/00_start_here.ipynb", target / "notebooks/01_attention.ipynb"
    assert lesson00.read_bytes() == (course / "notebooks/00_start_here.ipynb").read_bytes()

    # The learner works: types into lesson 00's first code cell, deletes lesson 01 by
    # mistake, writes her own notebook and a notes file that the teacher will also add.
    nb = nbformat.read(lesson00, as_version=4)
    edited = first_code_cell(nb)
    nb.cells[edited].source += "\nmy_answer = 42  # the learner's own line"
    nbformat.write(nb, lesson00)
    lesson01.unlink()
    mine = target / "notebooks/my_experiments.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('mine')")]), mine)
    (target / "notes.md").write_text("the learner's notes\n")

    # The teacher publishes v2: the same cell of lesson 00 changed (a conflict), another
    # cell of lesson 00 changed, lesson 01 changed, a new lesson, and a notes.md of their own.
    up00 = nbformat.read(course / "notebooks/00_start_here.ipynb", as_version=4)
    up00.cells[edited].source += "\n# teacher's v2 edit of the same cell"
    last_md = max(i for i, cell in enumerate(up00.cells) if cell.cell_type == "markdown")
    up00.cells[last_md].source += "\n\nAdded in course v2."
    nbformat.write(up00, course / "notebooks/00_start_here.ipynb")
    up01 = nbformat.read(course / "notebooks/01_attention.ipynb", as_version=4)
    up01.cells[0].source += "\n\nUpdated in course v2."
    nbformat.write(up01, course / "notebooks/01_attention.ipynb")
    new_lesson = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 10 new lesson")])
    nbformat.write(new_lesson, course / "notebooks/10_new_lesson.ipynb")
    (course / "notes.md").write_text("the teacher's notes\n")
    git(course, "add", ".")
    git(course, "commit", "--quiet", "-m", "course v2")

    pull(course, target)  # the next click on the same link: a merge

    merged = nbformat.read(lesson00, as_version=4)
    nbformat.validate(merged)  # still a notebook JupyterLab opens
    assert "my_answer = 42  # the learner's own line" in merged.cells[edited].source  # her edit wins the conflict
    assert "teacher's v2 edit" not in merged.cells[edited].source
    assert "Added in course v2." in merged.cells[last_md].source  # the teacher's other change arrives
    assert "Updated in course v2." in nbformat.read(lesson01, as_version=4).cells[0].source  # deleted: restored, updated
    assert (target / "notebooks/10_new_lesson.ipynb").exists()
    assert nbformat.read(mine, as_version=4).cells[0].source == "print('mine')"
    assert (target / "notes.md").read_text() == "the teacher's notes\n"
    moved = [p for p in target.glob("notes_*.md")]  # nbgitpuller moved hers aside, never overwrote it
    assert len(moved) == 1 and moved[0].read_text() == "the learner's notes\n"


def test_learner_facing_paths_listed_in_classroom_doc_exist():
    """nbgitpuller merges by path: a renamed lesson reaches a learner as a new file beside
    her old copy. docs/classroom.md lists the learner-facing paths; a rename must update
    that list and its note (this test fails until it does)."""
    doc = (ROOT / "docs/classroom.md").read_text()
    block = re.search(r"<!-- learner-facing paths -->\n(.*?)<!-- end -->", doc, re.S)
    assert block, "docs/classroom.md has no learner-facing paths block"
    paths = re.findall(r"^- `([^`]+)`", block.group(1), re.M)
    assert "notebooks/00_start_here.ipynb" in paths and len(paths) >= 10
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"learner-facing paths gone (renamed?): {missing}; see 'Keeping the layout stable' in docs/classroom.md"
    unlisted = sorted(str(nb.relative_to(ROOT)) for nb in (ROOT / "notebooks").glob("*.ipynb")
                      if str(nb.relative_to(ROOT)) not in paths)
    assert not unlisted, f"notebooks missing from docs/classroom.md's learner-facing paths: {unlisted}"


# ---------------------------------------------------------------------------------------
# A real hub: the short form of `make classroom-test`.

def learner_users() -> set[str]:
    import pwd

    return {entry.pw_name for entry in pwd.getpwall() if LEARNER_USER.match(entry.pw_name)}


def classroom_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("attn-classroom-*"))


def processes_under(folder: str) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info["cwd"] or ""
        if cwd == folder or cwd.startswith(folder + "/"):
            found.append(proc.pid)
    return found


def start_load_test(out: Path, *args: str) -> subprocess.Popen:
    log = open(out, "w")
    return subprocess.Popen([sys.executable, str(TOOLS / "classroom.py"), "load-test", *args],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the tool cleans up on SIGTERM
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_a_room_of_three_learners_on_a_real_hub(tmp_path, capsys):
    """3 learners at once: log in, nbgitpuller link, pull, lesson 00 in JupyterLab, lesson
    07 in a kernel each; no failure, figures recorded, nothing left behind."""
    need_classroom_tools()
    users_before, dirs_before = learner_users(), classroom_dirs()
    out, figures = tmp_path / "out.txt", tmp_path / "figures.json"
    proc = start_load_test(out, "--learners", "3", "--timeout", "540", "--json", str(figures))
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(proc, grace=120)
    output = out.read_text()
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "classroom-3-learners.txt").write_text(output)
    with capsys.disabled():
        print("\n" + output)
    assert proc.returncode == 0, output[-4000:]
    (report,) = json.loads(figures.read_text())
    assert report["learners"] == 3 and report["failures"] == 0
    assert report["spawner"] in ("users", "simple") and "load average" in report["load_before"]
    # the lesson as committed: the tool pulls the repository's HEAD, not the working tree
    committed = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{report['lesson']}"],
                               capture_output=True, text=True, timeout=60, check=True).stdout
    lesson = nbformat.reads(committed, as_version=4)
    n_code = sum(cell.cell_type == "code" for cell in lesson.cells)
    for learner in report["per_learner"]:
        assert learner["stage"] == "done" and learner["error"] is None
        assert learner["cells"] == n_code
        assert 0 < learner["ready_s"] < 540 and 0 < learner["pull_s"] < 540 and 0 < learner["lesson_s"] < 540
        # the kernel imported torch and trained: far above a bare Python's ~10 MB
        assert 150 < learner["kernel_peak_mb"] < 4000 and learner["learner_peak_mb"] > learner["kernel_peak_mb"] * 0.5
        assert 1 < learner["kernel_cpu_s"] < learner["lesson_s"] * 4  # it trained (1 thread here: at most ~1x)
    assert learner_users() == users_before, "the load test left learner accounts behind"
    assert classroom_dirs() == dirs_before, "the load test left its folder behind"


@pytest.mark.slow
def test_load_test_cleans_up_when_stopped_midway(tmp_path):
    """SIGTERM while servers are up: the tool stops the hub and the servers, deletes the
    users and its folder, and exits (130) within a bounded time."""
    need_classroom_tools()
    users_before, dirs_before = learner_users(), classroom_dirs()
    out = tmp_path / "out.txt"
    proc = start_load_test(out, "--learners", "2", "--timeout", "300")
    try:
        deadline = time.monotonic() + 240
        while "spawner:" not in out.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        folders = classroom_dirs() - dirs_before
        time.sleep(5)  # servers starting
        assert proc.poll() is None, out.read_text()
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=150)
        assert time.monotonic() - started < 150
    finally:
        stop(proc, grace=60)
    assert proc.returncode == 130, out.read_text()[-3000:]
    assert "cleaned up" in out.read_text()
    assert learner_users() == users_before
    assert classroom_dirs() == dirs_before
    for folder in folders:
        assert not processes_under(str(folder)), f"processes left in {folder}"


# ---------------------------------------------------------------------------------------
# The hub's system-wide JupyterLab settings (docs/classroom.md, section 1).

def test_hub_overrides_are_binders_settings_and_valid():
    """classroom/overrides.json (which `make setup` and binder/postBuild also install) holds
    the settings the browser test runs with, in the form JupyterLab reads for every user,
    and each value passes the plugin's schema."""
    import jsonschema
    from browser_util import LAB_SETTINGS
    from test_binder import lab_schema

    overrides = json.loads((ROOT / "classroom/overrides.json").read_text())
    as_user_settings = {key.replace(":", "/"): values for key, values in overrides.items()}
    assert as_user_settings == {k: v for k, v in LAB_SETTINGS.items() if k != "@jupyterlab/notebook-extension/tracker"}
    for name, values in as_user_settings.items():
        jsonschema.validate(values, lab_schema(name))


@pytest.mark.slow
def test_jupyterlab_applies_the_hub_overrides(tmp_path):
    """A JupyterLab whose settings folder holds classroom/overrides.json (as the docs put it
    in the hub's environment) serves saveState = true to a user who set nothing."""
    import requests
    from browser_util import free_port

    app_settings = tmp_path / "app-settings"
    app_settings.mkdir()
    shutil.copy(ROOT / "classroom/overrides.json", app_settings / "overrides.json")
    home = tmp_path / "home"
    home.mkdir()
    port, token = free_port(), "classroom-test"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws")}
    lab = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
                            f"--port={port}", f"--IdentityProvider.token={token}", "--allow-root",
                            f"--LabApp.app_settings_dir={app_settings}", f"--ServerApp.root_dir={tmp_path}"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                answer = requests.get(url, params={"token": token}, timeout=10)
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert answer is not None and answer.status_code == 200, "JupyterLab did not answer"
        settings = answer.json()
        assert "saveState" not in settings["raw"]  # the user set nothing ...
        # ... and the server hands JupyterLab the override as the setting's default (the
        # plugin's own default is False: tests/test_binder.py)
        assert settings["schema"]["properties"]["saveState"]["default"] is True
        news = requests.get(url.replace("@jupyter-widgets/jupyterlab-manager:plugin",
                                        "@jupyterlab/apputils-extension:notification"),
                            params={"token": token}, timeout=30).json()
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false"
        assert news["schema"]["properties"]["checkForUpdates"]["default"] is False
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
