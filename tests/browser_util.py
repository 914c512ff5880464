"""Drive a real JupyterLab in a real Chromium: the harness of tests/test_browser.py.

`jupyterlab_server(root)` starts JupyterLab from this Python environment on 127.0.0.1
(a free port, no token, settings and workspaces in a temporary folder, no update or news
checks) and stops it with its kernels. `chromium()` starts Debian's Chromium through
Playwright (`executable_path`, never a downloaded browser); `loopback_page(browser)`
opens a page that aborts, and records, any request leaving the loopback interface. `Lab` wraps the page: open a notebook, run
all cells, read the errors and widget states, find an explorer control and change it.

Everything observed here is what a learner sees: the DOM of the rendered notebook, with
JupyterLab's own application object (exposed with `expose_app_in_browser`) used only to
issue the same commands as the menus and to read cell outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--mute-audio",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_ERROR = "Error displaying widget"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    url: str
    root: Path
    log: Path
    process: subprocess.Popen = field(repr=False)
    env: dict = field(repr=False, default_factory=dict)

    def trust(self, *paths: Path) -> None:
        """`jupyter trust` these notebooks for this server, as binder/postBuild does for
        the course: JupyterLab renders widget views (and their saved state) only in
        trusted notebooks, and shows their plain-text repr otherwise."""
        proc = subprocess.run([sys.executable, "-m", "jupyter", "trust", *map(str, paths)], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"jupyter trust failed: {proc.stderr}")

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


# What binder/postBuild sets for learners (no news or update pop-ups, which would also
# cover the page; widget state saved with the notebook), plus, for measuring the page, every
# cell laid out (JupyterLab's default skips the layout of cells out of view).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


@contextlib.contextmanager
def jupyterlab_server(root: Path, *, settings: dict = LAB_SETTINGS, startup_timeout: float = 90.0):
    """Run `jupyter lab` on 127.0.0.1 serving `root`; yield a `LabServer`, then stop it.

    Its user settings (`settings`), workspaces, runtime files and notebook signatures (see
    `LabServer.trust`) live in a fresh temporary folder, removed afterwards."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="lab-home-"))
    for name, values in settings.items():
        path = home / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    env.pop("JUPYTER_TOKEN", None)
    log = home / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.terminals_enabled=False",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups from the extension manager
        "--MappingKernelManager.default_kernel_name=python3",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI runs as root
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                   start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", root, log, process, env)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.url}/api/status", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within {startup_timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(home, ignore_errors=True)


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and its kernels (its whole process group): SIGTERM, then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # kernels left in the group
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def is_loopback(url: str) -> bool:
    scheme, netloc = urlsplit(url)[:2]
    if scheme in {"data", "blob", "about", "chrome-error", "file"}:
        return True
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


@contextlib.contextmanager
def chromium(executable: Path = CHROMIUM):
    """Debian's Chromium, headless, driven by Playwright (`executable_path`: Playwright's
    own browser builds are never downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def loopback_page(browser, *, viewport=(1400, 1000)):
    """A page in a fresh browser context. Requests that would leave the loopback interface
    are aborted and listed in `page.blocked_requests`; console errors are collected in
    `page.console_errors`."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block")
    try:
        page = context.new_page()
        page.blocked_requests = []
        page.console_errors = []

        def guard(route):
            if is_loopback(route.request.url):
                route.continue_()
            else:
                page.blocked_requests.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
        yield page
    finally:
        context.close()


# ---------------------------------------------------------------------------------------
# JupyterLab, seen through the page.

_NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const nb = panel && panel.content;
  if (!nb || !nb.widgets) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = nb.widgets.map((cell, i) => {
    const m = cell.model;
    const outputs = m.type === 'code' ? m.outputs.toJSON() : [];
    return {
      index: i,
      type: m.type,
      source: m.sharedModel.getSource().slice(0, 200),
      executionCount: m.type === 'code' ? m.executionCount : null,
      prompt: m.type === 'code' ? (cell.promptNode ? cell.promptNode.textContent : '') : '',
      errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
      stderr: outputs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
                     .map(o => Array.isArray(o.text) ? o.text.join('') : o.text),
      widgetViews: outputs.filter(o => o.data && o.data['application/vnd.jupyter.widget-view+json']).length,
    };
  });
  return {kernel: kernel ? kernel.status : 'none', cells};
}"""

_RUN_ALL = """async (timeoutMs) => {
  const app = window.jupyterapp;
  const run = app.commands.execute('notebook:run-all-cells');
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('run-all timed out')), timeoutMs));
  return await Promise.race([run, timeout]);
}"""

# Each top-level output that holds a rendered widget: its text, controls and pictures.
_WIDGET_OUTPUTS = """(panel) => Array.from(panel.querySelectorAll('.jp-OutputArea-output'))
  .filter(node => !node.parentElement.closest('.jp-OutputArea-output'))
  .filter(node => node.classList.contains('jupyter-widgets') || node.querySelector('.jupyter-widgets'))
  .map(node => {
    const imgs = Array.from(node.querySelectorAll('img'));
    return {
      text: node.innerText.slice(0, 300),
      controls: node.querySelectorAll('.widget-dropdown, .widget-slider, .widget-toggle-buttons, .widget-checkbox').length,
      images: imgs.length,
      loaded: imgs.filter(img => img.complete && img.naturalWidth > 0).length,
      height: node.getBoundingClientRect().height,
    };
  })"""


class Lab:
    """A JupyterLab page: open a notebook, run it, inspect it, use its widgets."""

    def __init__(self, page, server: LabServer):
        self.page = page
        self.server = server

    def open_notebook(self, path: str, *, timeout: float = 120.0) -> None:
        """Open `path` (relative to the server root) and wait for an idle kernel. The first
        call loads JupyterLab at the notebook's URL; later ones open it from the running
        app (File > Open), which is much faster than loading JupyterLab again."""
        loaded = self.page.url.startswith(self.server.url) and self.page.evaluate("() => !!window.jupyterapp")
        if loaded:
            self.page.evaluate("async (path) => { await window.jupyterapp.commands.execute("
                               "'docmanager:open', {path, factory: 'Notebook'}); }", path)
        else:  # ?reset: a clean workspace, no tab left over from before
            self.page.goto(f"{self.server.url}/lab/tree/{quote(path)}?reset", wait_until="domcontentloaded",
                           timeout=timeout * 1000)
        self.page.wait_for_function(
            "(path) => { const w = window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget;"
            " return !!(w && w.context && w.context.path === path && w.content && w.content.widgets); }",
            arg=path, timeout=timeout * 1000)
        panel_id = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        self.panel = self.page.locator(f"[id='{panel_id}']")
        self.panel.locator(".jp-Cell").first.wait_for(timeout=timeout * 1000)
        self.wait_for_kernel("idle", timeout=timeout)

    def close_notebook(self) -> None:
        """Shut the current notebook's kernel down and close it without saving."""
        self.page.evaluate("""async () => {
          const panel = window.jupyterapp.shell.currentWidget;
          await panel.sessionContext.shutdown();
          panel.context.model.dirty = false;
          panel.dispose();
        }""")

    def wait_for_kernel(self, status: str, *, timeout: float) -> None:
        self.page.wait_for_function(
            "(status) => { const p = window.jupyterapp.shell.currentWidget;"
            " const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;"
            " return !!k && k.status === status; }",
            arg=status, timeout=timeout * 1000)

    def state(self) -> dict:
        return self.page.evaluate(_NOTEBOOK_STATE)

    def run_all(self, *, timeout: float = 600.0) -> float:
        """Run > Run All Cells; return the seconds until every cell has run (or one failed)."""
        start = time.monotonic()
        self.page.evaluate(_RUN_ALL, timeout * 1000)
        self.wait_for_kernel("idle", timeout=60)
        return time.monotonic() - start

    def cell_errors(self) -> list[str]:
        """Error outputs, stderr tracebacks and cells left unexecuted, one line each."""
        problems = []
        for cell in self.state()["cells"]:
            if cell["type"] != "code":
                continue
            where = f"cell {cell['index']} ({cell['source'][:60]!r})"
            problems += [f"{where}: {err}" for err in cell["errors"]]
            problems += [f"{where}: stderr traceback" for text in cell["stderr"] if "Traceback" in text]
            if cell["source"].strip() and cell["executionCount"] is None:
                problems.append(f"{where}: not executed (prompt {cell['prompt']!r})")
        return problems

    def page_text_errors(self) -> list[str]:
        """Lines of the rendered notebook that show a widget error."""
        text = self.panel.locator(".jp-Notebook").inner_text()
        return [line.strip() for line in text.splitlines() if WIDGET_ERROR in line]

    def widget_outputs(self) -> list[dict]:
        return self.panel.evaluate(_WIDGET_OUTPUTS)

    def widget_view_count(self) -> int:
        """Widget-view outputs in the notebook's model (what should be on screen)."""
        return sum(cell["widgetViews"] for cell in self.state()["cells"])

    def widget_problems(self, *, settle: float = 30.0) -> list[str]:
        """Why the widgets are not all on screen ([] when they are): every widget-view
        output rendered (not an empty box, not its plain-text repr), its pictures loaded,
        no "Error displaying widget" on the page and no "model not found" in the console.
        Widgets render asynchronously, so this waits up to `settle` seconds for them."""
        deadline = time.monotonic() + settle
        while True:
            expected, outputs, errors = self.widget_view_count(), self.widget_outputs(), self.page_text_errors()
            rendered = [o for o in outputs if o["height"] > 0 and WIDGET_ERROR not in o["text"]]
            unloaded = [o["text"][:60] for o in rendered if o["loaded"] < o["images"]]
            console = [m.splitlines()[0] for m in self.page.console_errors
                       if "model not found" in m or WIDGET_ERROR in m or "Could not create a view" in m]
            problems = []
            if len(rendered) != expected:
                problems.append(f"{expected} widget outputs in the notebook, {len(rendered)} rendered on the page")
            problems += [f"page shows: {line}" for line in errors]
            problems += [f"picture not loaded in widget {text!r}" for text in unloaded]
            problems += [f"browser console: {line}" for line in console]
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.5)

    def _label(self, control: str):
        return self.page.locator("label.widget-label", has_text=re.compile(rf"^\s*{re.escape(control)}\s*$"))

    def explorers(self, *controls: str):
        """The rendered explorers (a top-level widget box of an output, with a picture)
        that have controls labelled with each of `controls`."""
        boxes = self.panel.locator(".jp-OutputArea-output > .widget-vbox").filter(has=self.page.locator("img.widget-image"))
        for control in controls:
            boxes = boxes.filter(has=self._label(control))
        return boxes

    def options(self, explorer, control: str) -> list[str]:
        """The options a dropdown control offers, as shown."""
        row = explorer.locator(".widget-inline-hbox").filter(has=self._label(control)).first
        return row.locator("select option").all_inner_texts()

    def set_control(self, explorer, control: str, to: str | None = None) -> str:
        """Change the control labelled `control` to a different value, as a person would:
        pick another option of a dropdown (option `to`, or the next one), press the arrow
        key on a slider, click another toggle button. Returns a description of the change."""
        row = explorer.locator(".widget-inline-hbox, .widget-hbox").filter(has=self._label(control)).first
        row.scroll_into_view_if_needed()
        select = row.locator("select")
        if select.count():
            options = select.locator("option").all_inner_texts()
            current = select.evaluate("s => s.options[s.selectedIndex].text")
            if to is None:
                later = options[options.index(current) + 1:] if current in options else []
                target = next(o for o in later + options if o != current)
            else:
                target = to
            select.select_option(label=target)
            return f"{control}: {current} -> {target}"
        handle = row.locator(".noUi-handle")
        if handle.count():
            before = row.locator(".widget-readout").inner_text()
            handle.focus()
            handle.press("ArrowRight")
            if row.locator(".widget-readout").inner_text() == before:
                handle.press("ArrowLeft")
                handle.press("ArrowLeft")
            return f"{control}: {before} -> {row.locator('.widget-readout').inner_text()}"
        toggles = row.locator("button.widget-toggle-button:not(.mod-active)")
        if toggles.count():
            target = toggles.first.inner_text()
            toggles.first.click()
            return f"{control}: -> {target}"
        raise AssertionError(f"no dropdown, slider or toggle buttons for {control!r} in the explorer")

    def image_fingerprint(self, explorer) -> tuple[str, str]:
        """(src, sha256 of the displayed pixels) of the explorer's picture."""
        img = explorer.locator("img").last
        img.scroll_into_view_if_needed()
        return img.get_attribute("src") or "", hashlib.sha256(img.screenshot()).hexdigest()

    def wait_for_new_image(self, explorer, before: tuple[str, str], *, timeout: float = 30.0) -> tuple[str, str]:
        """Wait until the picture's src and pixels both differ from `before`."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.image_fingerprint(explorer)
            if now[0] != before[0] and now[1] != before[1]:
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"the explorer's picture did not change within {timeout:.0f} s "
                                     f"(src changed: {now[0] != before[0]}, pixels changed: {now[1] != before[1]})")
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=False)
        return path
