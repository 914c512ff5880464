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


def run_make_lab(prefix: list[str], home: Path) -> tuple[dict, str]:
    """Start `make lab` (behind `prefix`, e.g. runuser), wait for lesson 00, stop it.

    Returns the contents-API answer for lesson 00 (or {} if it never came) and the output.
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


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_lesson_00(tmp_path):
    """`make lab` as whoever runs the tests (root here and in CI) opens lesson 00."""
    answer, output = run_make_lab([], tmp_path)
    assert "Running as root is not recommended" not in output, output[-2000:]
    assert answer.get("name") == "00_start_here.ipynb", f"make lab did not serve lesson 00:\n{output[-3000:]}"
    assert "Error 1" not in output, output[-2000:]


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
