"""The README's first command, `make lab`, run the way a newcomer runs it.

It must start JupyterLab serving lesson 00 for root (a container, a classroom VM: JupyterLab
alone refuses with "Running as root is not recommended") and for an ordinary user. The test
runs the real `make lab` from the repository root, with only what a headless machine needs
in the environment: a free port (`JUPYTER_PORT`), a token (`JUPYTER_TOKEN`) and no browser
to open (`BROWSER=true`). It waits until the server answers, fetches lesson 00 through the
contents API and stops the server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "make-lab-test"
STARTUP = 90  # seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_make_lab(prefix: list[str], home: Path, settings: tuple[str, ...] = ()) -> tuple[dict, str]:
    """Start `make lab` (behind `prefix`, e.g. runuser), wait for lesson 00, stop it.

    Returns the contents-API answer for lesson 00 (or {} if it never came) and the output.
    For each JupyterLab plugin id in `settings`, the answer also holds what the running
    server's settings API says about it (`answer["settings"][plugin]`).
    """
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
           "JUPYTER_PORT": str(port), "JUPYTER_TOKEN": TOKEN, "BROWSER": "true"}
    log = home / "make-lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*prefix, "make", "lab"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    answer: dict = {}
    try:
        deadline = time.monotonic() + STARTUP
        # `jupyter lab notebooks/00_start_here.ipynb` serves the notebooks folder and opens lesson 00
        url = f"http://127.0.0.1:{port}/api/contents/00_start_here.ipynb?content=0&token={TOKEN}"
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answer = json.load(response)
                answer["settings"] = {}
                for plugin in settings:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/settings/{plugin}?token={TOKEN}",
                                                timeout=30) as response:
                        answer["settings"][plugin] = json.load(response)
                break
            except urllib.error.HTTPError as err:  # the server is up but answers no: stop waiting
                answer = {"http_error": err.code}
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return answer, log.read_text()


# What `make lab` must set, as JupyterLab's app-level overrides (classroom/overrides.json,
# installed into the environment's share/jupyter/lab/settings/ by `make setup`): widget state
# saved with the notebook (no "Error displaying widget: model not found" after an autosave),
# no news pop-up, no update check. Plugin settings default to saveState false, fetchNews "none".
OVERRIDES = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


# The course's page config: JupyterLab's busy favicon off. It swapped the tab's icon on every
# busy/idle change of the kernel, so twice per explorer change, at about 15 ms of the
# browser's time each change (benchmarks/README.md). `make setup` copies it into the venv's
# etc/jupyter/labconfig/; `pip install .` (Binder, a hub) installs it there as a data file.
PAGE_CONFIG = ROOT / "jupyter-config" / "labconfig" / "page_config.json"
FAVICON_BUSY = "@jupyterlab/application-extension:faviconbusy"
TAB_ICON = "@jupyter-notebook/notebook-extension:tab-icon"  # Notebook 7's own busy icon swapper


def test_page_config_turns_the_busy_favicon_off_for_make_setup_and_pip_install():
    import tomllib

    config = json.loads(PAGE_CONFIG.read_text())
    assert config["disabledExtensions"] == {FAVICON_BUSY: True, TAB_ICON: True}
    # present and empty: JupyterLab does not rewrite the installed file to lock the plugin
    assert config["lockedExtensions"] == {}
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["etc/jupyter/labconfig"] == [str(PAGE_CONFIG.relative_to(ROOT))]
    # and this environment's JupyterLab reads it (as `make test` installs it, like `make setup`)
    code = ("import json; from jupyterlab_server.config import get_static_page_config; "
            "print(json.dumps(get_static_page_config()))")
    served = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True, timeout=120).stdout)
    assert served.get("disabledExtensions", {}).get(FAVICON_BUSY) is True and served["disabledExtensions"].get(TAB_ICON), (
        f"the busy favicon is not turned off in this environment (run `make setup`): {served}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_lesson_00(tmp_path):
    """`make lab` as whoever runs the tests (root here and in CI) opens lesson 00, and its
    JupyterLab reports the course's settings as defaults, with nothing written to ~/.jupyter."""
    answer, output = run_make_lab([], tmp_path, settings=tuple(OVERRIDES))
    assert "Running as root is not recommended" not in output, output[-2000:]
    assert answer.get("name") == "00_start_here.ipynb", f"make lab did not serve lesson 00:\n{output[-3000:]}"
    assert "Error 1" not in output, output[-2000:]
    for plugin, values in OVERRIDES.items():
        served = answer["settings"][plugin]
        for key, value in values.items():
            assert served["schema"]["properties"][key]["default"] == value, (plugin, key, served["schema"]["properties"][key])
            assert key not in served["raw"]  # a default for everyone, not a user setting
    user_files = [p for p in (tmp_path / ".jupyter").rglob("*") if p.is_file()] if (tmp_path / ".jupyter").exists() else []
    assert not user_files, f"make lab wrote into ~/.jupyter: {user_files}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_setup_installs_the_lab_overrides_into_the_environment(tmp_path):
    """`make setup`'s last step copies classroom/overrides.json to <venv>/share/jupyter/lab/
    settings/overrides.json, where JupyterLab and Notebook 7 read app-level defaults. Run for
    a venv in tmp_path, with the install step taken as done (`-o` the stamp), so only that step runs."""
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-o", f"{venv}/.installed", f"VENV={venv}", "setup"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    written = venv / "share/jupyter/lab/settings/overrides.json"
    assert written.exists(), done.stdout
    assert json.loads(written.read_text()) == OVERRIDES
    page_config = venv / "etc/jupyter/labconfig/page_config.json"  # no busy favicon (read by Lab and Notebook 7)
    assert json.loads(page_config.read_text()) == json.loads(PAGE_CONFIG.read_text()), done.stdout
    # `make lab` alone (no `make setup` first) installs it too, before starting JupyterLab
    other = tmp_path / "other-venv"
    plan = subprocess.run(["make", "-n", "-o", f"{other}/.installed", f"VENV={other}", "lab"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60).stdout.splitlines()
    copy = f"cp classroom/overrides.json {other}/share/jupyter/lab/settings/overrides.json"
    assert copy in plan and plan.index(copy) < next(i for i, line in enumerate(plan) if "jupyter lab" in line), plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_allow_root_only_for_root():
    """--allow-root is passed to JupyterLab for root and never for an ordinary user.

    (An ordinary user cannot start this checkout's `.venv`, which belongs to root, so for
    them the test reads the command `make -n lab` would run instead of running it.)
    """
    def command(prefix):
        done = subprocess.run([*prefix, "make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stdout.splitlines() if "jupyter lab" in line)

    assert ("--allow-root" in command([])) == (os.geteuid() == 0)
    if os.geteuid() == 0 and shutil.which("runuser"):
        assert "--allow-root" not in command(["runuser", "-u", "nobody", "--"])
