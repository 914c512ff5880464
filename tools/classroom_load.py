"""A real JupyterHub on 127.0.0.1 and N learners running a lesson at once (docs/classroom.md).

    python tools/classroom.py load-test --learners 5 10 20 [--lesson notebooks/07_...ipynb]

What one run does, for N learners:

1. a temporary folder (mode 755) holding a bare git copy of this repository's HEAD (the
   "course on GitHub"), the hub's database, cookie secret, config and logs;
2. N learners. As root, real system users (`useradd`, no password, home in the folder),
   and the servers run as them, as on The Littlest JupyterHub; the course's Python, if it
   lives where they cannot read it (pyenv under /root), is reached through a thin venv of
   the system's python3.11 that sees the course's site-packages. Otherwise (not root, or
   no such interpreter) JupyterHub's SimpleLocalProcessSpawner: one process per learner,
   each with its own home folder, all as the current user. The report says which ran;
3. JupyterHub (shared-password login, configurable-http-proxy from classroom/) on
   loopback ports; all N servers are requested at the same moment;
4. each learner logs in with the shared password, opens the nbgitpuller link made by
   `tools/classroom.py link` (the page that pulls), pulls the course as that page does
   (nbgitpuller's /git-pull/api, from the local copy) and opens lesson 00 in JupyterLab;
5. all learners wait for each other, then each starts a kernel through the proxy and runs
   every code cell of the lesson over the kernel's websocket, as "Run All" does;
6. stop: the hub stops the servers, then anything left under the folder or owned by the
   learners is killed, the users are deleted and the folder removed. The same happens on
   an error, on the deadline (--timeout) and on Ctrl-C or SIGTERM.

Figures per learner: seconds from the spawn request to a server answering through the
proxy; seconds to pull; seconds to run the lesson; the kernel's peak resident memory (its
own ru_maxrss); the learner's peak resident memory (server + kernel, sampled every 0.5 s;
resident sizes count shared library pages in every process, so they overstate the sum).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pwd
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classroom import nbgitpuller_link  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHP = ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy"
DEFAULT_LESSON = "notebooks/07_heads_in_a_trained_model.ipynb"
TARGET = "attention-course"  # the folder the course is pulled into, in each learner's home
SERVICE = "classroom-load"


def missing_tools() -> list[str]:
    """What `make classroom-setup` has not installed yet (empty when the load test can run)."""
    missing = []
    for module in ("jupyterhub", "nbgitpuller", "requests", "psutil", "tornado"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {module} (pip install -r requirements-classroom.txt)")
    if not CHP.exists():
        missing.append(f"configurable-http-proxy at {CHP.relative_to(ROOT)} (npm ci --prefix classroom)")
    for tool in ("node", "git"):
        if shutil.which(tool) is None:
            missing.append(f"the command {tool}")
    return missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Learner:
    name: str
    home: Path
    uid: int | None = None
    ready_s: float | None = None
    pull_s: float | None = None
    lesson_s: float | None = None
    cells: int = 0
    kernel_peak_mb: float | None = None  # ru_maxrss of the kernel, read in the kernel
    kernel_cpu_s: float | None = None  # CPU seconds the kernel used (user + system), read in the kernel
    learner_peak_mb: float = 0.0  # sampled: server + kernel resident memory
    stage: str = "created"
    error: str | None = None

    def fail(self, stage: str, err: BaseException | str) -> None:
        if self.error is None:
            self.stage = stage
            self.error = f"{stage}: {err if isinstance(err, str) else type(err).__name__ + ': ' + str(err)}"[:2000]


class Deadline(Exception):
    pass


class Classroom:
    """One hub and N learners; a context manager that always cleans up."""

    def __init__(self, n: int, *, lesson: str = DEFAULT_LESSON, spawner: str = "auto", threads: int = 1,
                 timeout: float = 900, log=print, keep_logs: Path | None = None):
        if n < 1 or n > 100:
            raise ValueError(f"n (learners) must be between 1 and 100, got {n}")
        if not (ROOT / lesson).exists():
            raise ValueError(f"lesson must be a notebook of the course, {lesson!r} does not exist")
        self.n, self.lesson, self.requested_spawner = n, lesson, spawner
        self.threads, self.timeout, self.log, self.keep_logs = threads, timeout, log, keep_logs
        self.deadline = time.monotonic() + timeout
        self.token = secrets.token_hex(32)
        self.password = secrets.token_urlsafe(12)
        self.tag = secrets.token_hex(3)
        self.workdir: Path | None = None
        self.hub: subprocess.Popen | None = None
        self.created_users: list[str] = []
        self.learners: list[Learner] = []
        self.spawner = ""
        self.spawner_reason = ""
        self.min_available_mb = float("inf")
        self.start_available_mb = 0.0
        self._sampling = threading.Event()

    # ---- set-up ---------------------------------------------------------------------
    def __enter__(self) -> "Classroom":
        try:
            self._set_up()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Deadline(f"the run passed its {self.timeout:.0f} s deadline")
        return left

    def _set_up(self) -> None:
        import psutil

        self.start_available_mb = psutil.virtual_memory().available / 2**20
        self.workdir = Path(tempfile.mkdtemp(prefix="attn-classroom-"))
        self.workdir.chmod(0o755)
        (self.workdir / "home").mkdir(mode=0o755)
        # The "course on GitHub": a bare copy of this repository's HEAD on branch main.
        self.repo = self.workdir / "course.git"
        run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(self.repo)])
        run(["git", "-C", str(self.repo), "fetch", "--quiet", "--depth=1", f"file://{ROOT}", "HEAD:refs/heads/main"])
        run(["chmod", "-R", "a+rX", str(self.repo)])
        # Git refuses a repository owned by another user ("dubious ownership") unless a
        # global or system config lists it; GIT_CONFIG_GLOBAL gives the learners that file.
        self.gitconfig = self.workdir / "gitconfig"
        self.gitconfig.write_text(f"[safe]\n\tdirectory = {self.repo}\n")
        self.gitconfig.chmod(0o644)
        self.repo_url = f"file://{self.repo}"

        names = [f"attn{self.tag}-{i:02d}" for i in range(1, self.n + 1)]
        self.learners = [Learner(name, self.workdir / "home" / name) for name in names]
        self.python, self.extra_env = sys.executable, {}
        self.spawner, self.spawner_reason = self._choose_spawner()
        self.log(f"[classroom] {self.n} learners in {self.workdir}, spawner: {self.spawner} ({self.spawner_reason})")
        self._start_hub()

    def _choose_spawner(self) -> tuple[str, str]:
        wanted = self.requested_spawner
        if wanted == "simple":
            return "simple", "asked for"
        if os.geteuid() != 0 or shutil.which("useradd") is None:
            if wanted == "users":
                raise RuntimeError("--spawner users needs root and useradd")
            return "simple", "not root: every learner's server runs as this user, in its own home folder"
        try:
            self._create_users()
            self.python, self.extra_env = self._learner_python()
            return "users", "real system users, one per learner (LocalProcessSpawner, as on TLJH)"
        except Exception as err:  # noqa: BLE001 - reported, then the fallback runs
            if wanted == "users":
                raise
            self._delete_users()
            for learner in self.learners:
                learner.uid = None
                shutil.rmtree(learner.home, ignore_errors=True)
            self.python, self.extra_env = sys.executable, {}
            return "simple", f"real users were not possible here ({err}); servers run as root with --allow-root"

    def _create_users(self) -> None:
        for learner in self.learners:
            run(["useradd", "--no-create-home", "--home-dir", str(learner.home), "--shell", "/bin/bash",
                 "--comment", "attention course load test", learner.name])
            self.created_users.append(learner.name)
            entry = pwd.getpwnam(learner.name)
            learner.home.mkdir(mode=0o700)
            os.chown(learner.home, entry.pw_uid, entry.pw_gid)
            learner.uid = entry.pw_uid

    def _as_learner(self, python: str, env: dict) -> subprocess.CompletedProcess:
        entry = pwd.getpwnam(self.learners[0].name)
        probe = "import attn_core, torch, jupyterhub.singleuser, nbgitpuller, ipykernel, jupyterlab"
        try:
            return subprocess.run([python, "-c", probe], user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                                  cwd=self.learners[0].home, capture_output=True, text=True,
                                  timeout=min(300, self._left()),
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                       "HOME": str(self.learners[0].home), **env})
        except PermissionError as err:  # the interpreter (or a folder above it) is not theirs to run
            return subprocess.CompletedProcess([python], 126, "", str(err))

    def _learner_python(self) -> tuple[str, dict]:
        """A Python the learners' uids can run that imports the course's packages."""
        if self._as_learner(sys.executable, {}).returncode == 0:
            return sys.executable, {}
        # The course's interpreter is out of their reach (pyenv under /root, mode 700): a
        # venv of the system's python3.11 that adds the course's site-packages, like
        # TLJH's world-readable user environment in /opt/tljh/user.
        system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
        if not system.exists():
            raise RuntimeError(f"the learners cannot run {sys.executable} and there is no {system}")
        env_dir = self.workdir / "learner-env"
        run([str(system), "-m", "venv", "--without-pip", str(env_dir)])
        site_packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
        (next(env_dir.glob("lib/python3*/site-packages")) / "course.pth").write_text(
            f"import site; site.addsitedir({str(site_packages)!r})\n")
        run(["chmod", "-R", "a+rX", str(env_dir)])
        # Jupyter finds JupyterLab's files and nbgitpuller's server setting under sys.prefix:
        # point it at the course's environment.
        extra = {"JUPYTER_PATH": f"{sys.prefix}/share/jupyter", "JUPYTER_CONFIG_PATH": f"{sys.prefix}/etc/jupyter",
                 "JUPYTERLAB_DIR": f"{sys.prefix}/share/jupyter/lab"}
        probe = self._as_learner(str(env_dir / "bin" / "python"), extra)
        if probe.returncode != 0:
            raise RuntimeError(f"the learners cannot import the course: {probe.stderr.strip().splitlines()[-1:]}")
        return str(env_dir / "bin" / "python"), extra

    def _start_hub(self) -> None:
        import requests

        self.port, hub_port, api_port = free_port(), free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {"GIT_CONFIG_GLOBAL": str(self.gitconfig), **self.extra_env}
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        args = ["--ServerApp.allow_root=True"] if self.spawner == "simple" and os.geteuid() == 0 else []
        config = f"""
            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {self.port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {hub_port}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
            c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
            c.JupyterHub.db_url = "sqlite:///{self.workdir}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "{self.workdir}/jupyterhub_cookie_secret"
            c.JupyterHub.pid_file = "{self.workdir}/jupyterhub.pid"
            c.JupyterHub.cleanup_servers = True
            c.JupyterHub.authenticator_class = "shared-password"
            c.SharedPasswordAuthenticator.user_password = {self.password!r}
            c.Authenticator.allow_all = True
            c.JupyterHub.spawner_class = {"localprocess" if self.spawner == "users" else "simple"!r}
            c.SimpleLocalProcessSpawner.home_dir_template = "{self.workdir}/home/{{username}}"
            c.Spawner.cmd = [{self.python!r}, "-m", "jupyterhub.singleuser"]
            c.Spawner.args = {args!r}
            c.Spawner.ip = "127.0.0.1"
            c.Spawner.default_url = "/lab"
            c.Spawner.environment = {env!r}
            # A class starting at once on a small machine: allow slow starts (JupyterHub's
            # defaults are 60 s to start and 30 s to answer; z2jh's startTimeout is 300 s).
            c.Spawner.start_timeout = {int(self.timeout)}
            c.Spawner.http_timeout = {int(self.timeout)}
            c.LocalProcessSpawner.interrupt_timeout = 5
            c.LocalProcessSpawner.term_timeout = 5
            c.JupyterHub.concurrent_spawn_limit = 0
            c.JupyterHub.services = [{{"name": "{SERVICE}", "api_token": {self.token!r}}}]
            c.JupyterHub.load_roles = [{{"name": "{SERVICE}", "services": ["{SERVICE}"],
                "scopes": ["admin:users", "admin:servers", "access:servers"]}}]
        """
        config_file = self.workdir / "jupyterhub_config.py"
        config_file.write_text(textwrap.dedent(config))
        self.hub_log = self.workdir / "jupyterhub.log"
        hub_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "JPY_"))}
        hub_env["PATH"] = f"{Path(sys.executable).parent}:{hub_env.get('PATH', '/usr/bin:/bin')}"
        with open(self.hub_log, "wb") as out:
            self.hub = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config_file)],
                                        cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=hub_env, start_new_session=True)
        self.api = new_session()
        self.api.headers["Authorization"] = f"token {self.token}"
        while True:
            if self.hub.poll() is not None:
                raise RuntimeError(f"JupyterHub exited with {self.hub.returncode}:\n{self.tail_log()}")
            try:
                if self.api.get(f"{self.base}/hub/api/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self._left() < self.timeout - 180:
                raise RuntimeError(f"JupyterHub did not answer within 180 s:\n{self.tail_log()}")
            time.sleep(0.5)
        r = self.api.post(f"{self.base}/hub/api/users", json={"usernames": [lr.name for lr in self.learners]}, timeout=60)
        r.raise_for_status()

    def tail_log(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.hub_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no hub log)"

    # ---- the room -------------------------------------------------------------------
    def run(self) -> dict:
        """All learners at once: spawn, log in, pull, open lesson 00; then all run the lesson."""
        link = nbgitpuller_link(self.base, self.repo_url, "main", targetpath=TARGET)
        start_gate = threading.Barrier(self.n + 1)
        run_gate = threading.Barrier(self.n)
        workers = [threading.Thread(target=self._learner, args=(lr, link, start_gate, run_gate), daemon=True)
                   for lr in self.learners]
        self.load_before = load_average()
        sampler = threading.Thread(target=self._sample_memory, daemon=True)
        self._sampling.set()
        sampler.start()
        for w in workers:
            w.start()
        started = time.monotonic()
        start_gate.wait(timeout=60)
        for w in workers:
            w.join(timeout=max(1.0, self.deadline - time.monotonic()))
        wall = time.monotonic() - started
        self._sampling.clear()
        sampler.join(timeout=10)
        self.load_after = load_average()
        for learner, w in zip(self.learners, workers):
            if w.is_alive():
                learner.fail(learner.stage, f"still running at the {self.timeout:.0f} s deadline")
        return self.report(wall)

    def _learner(self, learner: Learner, link: str, start_gate, run_gate) -> None:
        import requests

        stage = "spawn"
        try:
            start_gate.wait(timeout=60)
            t0 = time.monotonic()
            r = self.api.post(f"{self.base}/hub/api/users/{learner.name}/server", timeout=self._left())
            if r.status_code not in (201, 202):
                raise RuntimeError(f"spawn request answered {r.status_code}: {r.text[:300]}")
            while True:
                model = self.api.get(f"{self.base}/hub/api/users/{learner.name}", timeout=self._left()).json()
                server = model.get("servers", {}).get("")
                if server and server.get("ready"):
                    break
                if not server:  # a failed spawn removes the server from the user's model
                    raise RuntimeError(f"the server stopped while starting; hub log:\n{self.tail_log(15)}")
                time.sleep(0.5)
                self._left()
            status = self.api.get(f"{self.base}/user/{learner.name}/api/status", timeout=self._left())
            status.raise_for_status()
            learner.ready_s = time.monotonic() - t0

            stage = "login"
            browser = new_session()
            browser.get(f"{self.base}/hub/login", timeout=self._left()).raise_for_status()
            r = browser.post(f"{self.base}/hub/login", timeout=self._left(), allow_redirects=False,
                             data={"username": learner.name, "password": self.password,
                                   "_xsrf": browser.cookies.get("_xsrf", "")})
            if r.status_code != 302:
                raise RuntimeError(f"login answered {r.status_code}")

            stage = "pull"
            t1 = time.monotonic()
            page = browser.get(link, timeout=self._left())
            expected = f"/user/{learner.name}/git-pull?"
            if page.status_code != 200 or expected not in page.url:
                raise RuntimeError(f"the nbgitpuller link led to {page.url} ({page.status_code}), not {expected}")
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
            lab_path = query["urlpath"][0]
            if f'data-path="{urllib.parse.quote(lab_path)}"' not in page.text:
                raise RuntimeError(f"nbgitpuller's page does not send the learner on to {lab_path}")
            # What that page's script does: stream nbgitpuller's API until it says finished.
            api = f"{self.base}/user/{learner.name}/git-pull/api?" + urllib.parse.urlencode(
                {k: query[k][0] for k in ("repo", "branch", "targetpath")})
            phase, lines = "", []
            with browser.get(api, stream=True, timeout=self._left()) as events:
                events.raise_for_status()
                for line in events.iter_lines(decode_unicode=True):
                    if line and line.startswith("data: "):
                        event = json.loads(line[len("data: "):])
                        phase = event.get("phase", phase)
                        lines.append(event.get("output") or event.get("message") or "")
                        if phase in ("finished", "error"):
                            break
            if phase != "finished":
                raise RuntimeError(f"nbgitpuller ended with {phase!r}: {''.join(lines)[-500:]}")
            learner.pull_s = time.monotonic() - t1

            stage = "open lesson 00"
            lab = browser.get(f"{self.base}/user/{learner.name}/{lab_path}", timeout=self._left())
            if lab.status_code != 200 or "jupyter-config-data" not in lab.text:
                raise RuntimeError(f"JupyterLab at {lab_path} answered {lab.status_code}")
            nb00 = browser.get(f"{self.base}/user/{learner.name}/api/contents/{lab_path.removeprefix('lab/tree/')}",
                               params={"content": "0"}, timeout=self._left())
            if nb00.status_code != 200 or nb00.json().get("type") != "notebook":
                raise RuntimeError(f"lesson 00 is not at {lab_path} after the pull ({nb00.status_code})")

            stage = "read lesson"
            path = f"{TARGET}/{self.lesson}"
            r = self.api.get(f"{self.base}/user/{learner.name}/api/contents/{path}", timeout=self._left())
            r.raise_for_status()
            cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in r.json()["content"]["cells"] if c["cell_type"] == "code"]
            learner.cells = len(cells)
        except BaseException as err:  # noqa: BLE001 - recorded per learner
            learner.fail(stage, err)
        finally:
            stage = "wait for the room"
            try:
                run_gate.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except threading.BrokenBarrierError:
                pass
        if learner.error:
            return
        stage = "run lesson"
        try:
            learner.stage = stage
            t2 = time.monotonic()
            r = self.api.post(f"{self.base}/user/{learner.name}/api/kernels",
                              json={"name": "python3", "path": str(Path(path).parent)}, timeout=self._left())
            r.raise_for_status()
            kernel = r.json()["id"]
            peak_kb, cpu_s = asyncio.run(self._execute(learner, kernel, cells))
            learner.lesson_s = time.monotonic() - t2
            learner.kernel_peak_mb, learner.kernel_cpu_s = peak_kb / 1024, cpu_s
            self.api.delete(f"{self.base}/user/{learner.name}/api/kernels/{kernel}", timeout=60)
            learner.stage = "done"
        except BaseException as err:  # noqa: BLE001
            learner.fail(stage, err)

    async def _execute(self, learner: Learner, kernel: str, cells: list[str]) -> tuple[int, float]:
        """Run `cells` in the kernel over its websocket; return its ru_maxrss (kB) and CPU seconds."""
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = f"ws://127.0.0.1:{self.port}/user/{learner.name}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
        conn = await asyncio.wait_for(websocket_connect(
            # tornado's default 20 s connect/request timeouts are shorter than a kernel's start on a busy
            # machine (the server answers the upgrade once the kernel replies): wait like a browser does
            HTTPRequest(url, headers={"Authorization": f"token {self.token}"},
                        connect_timeout=self._left(), request_timeout=self._left()), max_message_size=512 * 2**20),
            timeout=self._left())
        session = uuid.uuid4().hex
        try:
            async def request(msg_type: str, content: dict, label: str) -> tuple[dict, str]:
                msg_id = uuid.uuid4().hex
                await conn.write_message(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": msg_type, "username": learner.name, "session": session,
                               "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"},
                    "parent_header": {}, "metadata": {}, "content": content, "buffers": [],
                    "channel": "shell"}))
                reply, idle, out = None, msg_type != "execute_request", []
                while reply is None or not idle:
                    raw = await asyncio.wait_for(conn.read_message(), timeout=self._left())
                    if raw is None:
                        raise RuntimeError(f"the kernel's websocket closed during {label} (kernel died?)")
                    if isinstance(raw, bytes):
                        continue  # messages with binary buffers (none expected here)
                    msg = json.loads(raw)
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind = msg["msg_type"]
                    if msg["channel"] == "shell" and kind.endswith("_reply"):
                        reply = msg["content"]
                    elif kind == "status" and msg["content"]["execution_state"] == "idle":
                        idle = True
                    elif kind == "stream":
                        out.append(msg["content"]["text"])
                    elif kind == "error":
                        out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
                if reply.get("status") != "ok":
                    raise RuntimeError(f"{label} failed: {reply.get('ename')}: {reply.get('evalue')}")
                return reply, "".join(out)

            await request("kernel_info_request", {}, "kernel_info")
            for i, code in enumerate(cells):
                await request("execute_request", {"code": code, "silent": False, "store_history": True,
                                                  "user_expressions": {}, "allow_stdin": False,
                                                  "stop_on_error": True}, f"code cell {i + 1}")
            _, out = await request("execute_request", {
                "code": "import resource; _r = resource.getrusage(resource.RUSAGE_SELF); "
                        "print(_r.ru_maxrss, _r.ru_utime + _r.ru_stime)",
                "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False,
                "stop_on_error": True}, "peak memory")
            peak_kb, cpu_s = out.split()[-2:]
            return int(peak_kb), float(cpu_s)
        finally:
            conn.close()

    def _sample_memory(self) -> None:
        import psutil

        homes = {str(lr.home): lr for lr in self.learners}
        while self._sampling.is_set():
            totals = dict.fromkeys(homes, 0)
            for proc in psutil.process_iter(["cwd", "memory_info"]):
                cwd, mem = proc.info["cwd"], proc.info["memory_info"]
                if not cwd or mem is None:
                    continue
                for home in homes:
                    if cwd == home or cwd.startswith(home + "/"):
                        totals[home] += mem.rss
                        break
            for home, total in totals.items():
                homes[home].learner_peak_mb = max(homes[home].learner_peak_mb, total / 2**20)
            self.min_available_mb = min(self.min_available_mb, psutil.virtual_memory().available / 2**20)
            time.sleep(0.5)

    def report(self, wall: float) -> dict:
        def summary(values):
            values = [v for v in values if v is not None]
            if not values:
                return None
            return {"p50": statistics.median(values), "p95": percentile(values, 95), "max": max(values)}

        ok = [lr for lr in self.learners if lr.error is None]
        return {
            "learners": self.n, "lesson": self.lesson, "spawner": self.spawner, "spawner_reason": self.spawner_reason,
            "threads_per_kernel": self.threads, "load_before": self.load_before, "load_after": self.load_after,
            "wall_s": wall, "failures": self.n - len(ok),
            "ready_s": summary([lr.ready_s for lr in self.learners]),
            "pull_s": summary([lr.pull_s for lr in self.learners]),
            "lesson_s": summary([lr.lesson_s for lr in self.learners]),
            "kernel_peak_mb": summary([lr.kernel_peak_mb for lr in self.learners]),
            "kernel_cpu_s": summary([lr.kernel_cpu_s for lr in self.learners]),
            "learner_peak_mb": summary([lr.learner_peak_mb or None for lr in self.learners]),
            "machine_memory_used_mb": max(0.0, self.start_available_mb - self.min_available_mb),
            "per_learner": [{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(lr).items()}
                            for lr in self.learners],
        }

    # ---- clean-up -------------------------------------------------------------------
    def __exit__(self, *exc) -> None:
        import psutil

        self._sampling.clear()
        if self.keep_logs and self.workdir and (self.workdir / "jupyterhub.log").exists():
            self.keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.workdir / "jupyterhub.log", self.keep_logs / f"jupyterhub-{self.n}.log")
        if self.hub is not None and self.hub.poll() is None:
            # SIGTERM: the hub stops every server (cleanup_servers), then the proxy.
            try:
                os.killpg(self.hub.pid, signal.SIGTERM)
                self.hub.wait(timeout=60)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
            if self.hub.poll() is None:
                os.killpg(self.hub.pid, signal.SIGKILL)
                self.hub.wait(timeout=30)
        # Anything left: processes working in our folder or running as our learners.
        uids = {lr.uid for lr in self.learners if lr.uid is not None}
        root = str(self.workdir) if self.workdir else None
        for _ in range(3):
            left = []
            for proc in psutil.process_iter(["cwd", "uids", "cmdline"]):
                try:
                    mine = proc.info["uids"] and proc.info["uids"].real in uids
                    cwd = proc.info["cwd"] or ""
                    if root and (cwd == root or cwd.startswith(root + "/")) and proc.pid != os.getpid():
                        mine = True
                    if mine:
                        proc.kill()
                        left.append(proc)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            if not left:
                break
            psutil.wait_procs(left, timeout=10)
        self._delete_users()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _delete_users(self) -> None:
        for name in list(self.created_users):
            done = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=60)
            if done.returncode == 0 or "does not exist" in done.stderr:
                self.created_users.remove(name)
            else:
                self.log(f"[classroom] could not delete user {name}: {done.stderr.strip()}")


def new_session():
    """A requests session that opens a new connection per request. The proxy (node) closes
    an idle kept-alive connection after 5 s; a request sent on it at that moment fails with
    "connection reset", where a browser would quietly retry. Loopback connections are cheap."""
    import requests

    session = requests.Session()
    session.headers["Connection"] = "close"
    return session


def run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")


def format_report(rep: dict) -> str:
    def row(label, key, unit):
        s = rep[key]
        if s is None:
            return f"  {label:<34} (none)"
        return f"  {label:<34} p50 {s['p50']:7.1f}   p95 {s['p95']:7.1f}   max {s['max']:7.1f} {unit}"

    lines = [
        f"== {rep['learners']} learners, lesson {Path(rep['lesson']).stem}, spawner {rep['spawner']}, "
        f"{rep['threads_per_kernel'] or 'default'} thread(s) per kernel",
        f"  before: {rep['load_before']}",
        f"  after:  {rep['load_after']}",
        row("time to a ready server", "ready_s", "s"),
        row("pull with nbgitpuller", "pull_s", "s"),
        row("lesson run (all cells)", "lesson_s", "s"),
        row("kernel CPU time (user+system)", "kernel_cpu_s", "s"),
        row("kernel peak memory (ru_maxrss)", "kernel_peak_mb", "MB"),
        row("learner peak memory (server+kernel)", "learner_peak_mb", "MB"),
        f"  machine memory in use at the peak, above the start: {rep['machine_memory_used_mb']:.0f} MB",
        f"  wall time {rep['wall_s']:.1f} s; failures: {rep['failures']} of {rep['learners']}",
        "  per learner: name, ready s, pull s, lesson s, kernel CPU s, kernel MB, learner MB, error",
    ]
    for lr in rep["per_learner"]:
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        lines.append(f"    {lr['name']:<14} {fmt(lr['ready_s']):>6} {fmt(lr['pull_s']):>6} {fmt(lr['lesson_s']):>6} {fmt(lr['kernel_cpu_s']):>6} "
                     f"{fmt(lr['kernel_peak_mb']):>7} {fmt(lr['learner_peak_mb']):>7}  {lr['error'] or ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/classroom.py load-test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[5, 10, 20], help="room sizes to run, one hub each")
    parser.add_argument("--lesson", default=DEFAULT_LESSON, help=f"the lesson every learner runs (default {DEFAULT_LESSON})")
    parser.add_argument("--spawner", choices=["auto", "users", "simple"], default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS for each learner (0: torch's default, all cores); default 1")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per room size (default 900)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--logs", type=Path, help="keep a copy of each hub's log in this folder")
    args = parser.parse_args(argv)

    missing = missing_tools()
    if missing:
        print("The load test needs `make classroom-setup` first. Missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2

    def on_term(signum, frame):  # turn SIGTERM into an exception, so clean-up runs (once)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    reports, failed = [], False
    for n in args.learners:
        print(f"[classroom] {datetime.now(timezone.utc):%H:%M:%S} UTC, {load_average()}: starting {n} learners", flush=True)
        try:
            with Classroom(n, lesson=args.lesson, spawner=args.spawner, threads=args.threads, timeout=args.timeout,
                           log=lambda m: print(m, flush=True), keep_logs=args.logs) as room:
                rep = room.run()
                if rep["failures"]:
                    rep["hub_log_tail"] = room.tail_log(60)
        except KeyboardInterrupt:
            print("[classroom] interrupted: cleaned up", file=sys.stderr)
            return 130
        except Exception:  # noqa: BLE001
            print(f"[classroom] the run for {n} learners failed:\n{traceback.format_exc()}", file=sys.stderr)
            return 1
        reports.append(rep)
        print(format_report(rep), flush=True)
        if rep["failures"]:
            failed = True
            print(rep.get("hub_log_tail", ""), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
