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

import pytest

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
# The controls of an explorer, as ipywidgets 8 renders them (a text box is not driven).
CONTROL_SELECTOR = ".widget-dropdown, .widget-slider, .widget-toggle-buttons, .widget-checkbox"


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
    app: str = "lab"  # or "notebook" (Jupyter Notebook 7)

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
}
# The notebook's windowing mode is JupyterLab's default ("contentVisibility": every cell in
# the page, off-screen ones skipped by the browser's rendering), as for a learner. With
# "none", which this harness used before, each explorer change took 5-15 ms longer.


FAVICON_BUSY = "@jupyterlab/application-extension:faviconbusy"
"""JupyterLab's plugin that swaps the tab's icon on every busy/idle change of a kernel: off in
the course's environment (jupyter-config/labconfig/page_config.json)."""


@contextlib.contextmanager
def jupyterlab_server(root: Path, *, settings: dict = LAB_SETTINGS, startup_timeout: float = 90.0,
                      app: str = "lab", extra_args: tuple[str, ...] = (), favicon_busy: bool = False):
    """Run `jupyter lab` (or, with `app="notebook"`, Jupyter Notebook 7, built on the same
    front-end) on 127.0.0.1 serving `root`; yield a `LabServer`, then stop it.

    Its user settings (`settings`), workspaces, runtime files and notebook signatures (see
    `LabServer.trust`) live in a fresh temporary folder, removed afterwards.
    `favicon_busy=True` turns `FAVICON_BUSY` back on, from a config folder ahead of the
    environment's (which Jupyter in a virtual environment reads before the user's)."""
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
    if favicon_busy:
        (home / "config-ahead" / "labconfig").mkdir(parents=True)
        (home / "config-ahead" / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {FAVICON_BUSY: False}}))
        env["JUPYTER_CONFIG_PATH"] = str(home / "config-ahead")
    log = home / "jupyterlab.log"
    if app not in ("lab", "notebook"):
        raise ValueError(f"app: expected 'lab' or 'notebook', got {app!r}")
    app_class = "LabApp" if app == "lab" else "JupyterNotebookApp"
    cmd = [
        sys.executable, "-m", "jupyter", app,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.terminals_enabled=False",
        f"--ServerApp.root_dir={root}",
        f"--{app_class}.expose_app_in_browser=True",
        "--MappingKernelManager.default_kernel_name=python3",
    ]
    if app == "lab":
        cmd += [
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no PyPI look-ups from the extension manager
        ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI runs as root
    cmd += list(extra_args)
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                   start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", root, log, process, env, app)
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
def chromium(executable: Path = CHROMIUM, *, device_scale_factor: float = 1):
    """Debian's Chromium, headless, driven by Playwright (`executable_path`: Playwright's
    own browser builds are never downloaded).

    `device_scale_factor`: the screen's, for pages made with the same factor
    (`loopback_page(..., device_scale_factor=2)`). Playwright's emulation alone makes a page
    report `devicePixelRatio` 2 while headless Chromium still paints it at scale 1: every
    picture is then decoded twice per change, at its full size and again scaled down for
    painting, which a browser on a high-DPI screen never does. `--force-device-scale-factor`
    makes the browser paint at the page's scale, as on such a screen."""
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + ([f"--force-device-scale-factor={device_scale_factor:g}"] if device_scale_factor != 1 else [])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def loopback_page(browser, *, viewport=(1400, 1000), device_scale_factor: float = 1):
    """A page in a fresh browser context. Requests that would leave the loopback interface
    are aborted and listed in `page.blocked_requests`; console errors are collected in
    `page.console_errors`. `device_scale_factor=2` is a high-DPI (retina) screen."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block",
                                  device_scale_factor=device_scale_factor)
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
        if self.server.app == "notebook":  # Notebook 7: one notebook per page, at /notebooks/<path>
            self.page.goto(f"{self.server.url}/notebooks/{quote(path)}", wait_until="domcontentloaded",
                           timeout=timeout * 1000)
        elif loaded:
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

    def count_favicon_swaps(self) -> None:
        """From now on, count the changes JupyterLab makes to the page's favicon (its busy
        favicon plugin swaps the `<link rel="icon">` on every busy/idle change of a kernel,
        a widget message included); read the count with `favicon_swaps()`."""
        self.page.evaluate("""() => {
          window.__faviconSwaps = 0;
          const isIcon = n => n.nodeName === 'LINK' && /icon|favicon/.test((n.rel || '') + ' ' + (n.className || ''));
          new MutationObserver(records => {
            for (const r of records) {
              if (isIcon(r.target) || [...r.addedNodes, ...r.removedNodes].some(isIcon)) window.__faviconSwaps++;
            }
          }).observe(document.head, {subtree: true, childList: true, attributes: true, attributeFilter: ['rel', 'href']});
        }""")

    def favicon_swaps(self) -> int:
        return self.page.evaluate("() => window.__faviconSwaps")

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

    def run_through(self, last: int, *, timeout: float = 600.0) -> float:
        """Run every cell up to and including cell `last` (Run > Run All Above the next
        cell); return the seconds it took."""
        start = time.monotonic()
        self.page.evaluate("""async ([last, timeoutMs]) => {
          const app = window.jupyterapp, nb = app.shell.currentWidget.content;
          const command = last + 1 < nb.widgets.length ? 'notebook:run-all-above' : 'notebook:run-all-cells';
          nb.activeCellIndex = last + 1;
          const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('run timed out')), timeoutMs));
          return await Promise.race([app.commands.execute(command), timeout]);
        }""", [last, timeout * 1000])
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
        """Lines of the rendered notebook's outputs that show a widget error (a markdown
        cell may quote the message, as lesson 00's troubleshooting section does)."""
        texts = self.panel.locator(".jp-Notebook .jp-OutputArea").all_inner_texts()
        return [line.strip() for text in texts for line in text.splitlines() if WIDGET_ERROR in line]

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
        boxes = self.panel.locator(".jp-OutputArea-output > .widget-box").filter(has=self.page.locator("img.widget-image"))
        for control in controls:
            boxes = boxes.filter(has=self._label(control))
        return boxes

    def options(self, explorer, control: str) -> list[str]:
        """The options a dropdown control offers, as shown."""
        row = explorer.locator(CONTROL_SELECTOR).filter(has=self._label(control)).last
        return row.locator("select option").all_inner_texts()

    def set_control(self, explorer, control: str, to: str | None = None) -> str:
        """Change the control labelled `control` to a different value, as a person would:
        pick another option of a dropdown (option `to`, or the next one), press the arrow
        key on a slider, click another toggle button. Returns a description of the change."""
        # the innermost control row with that label (the explorer itself is an HBox holding them all)
        row = explorer.locator(CONTROL_SELECTOR).filter(has=self._label(control)).last
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


# ---------------------------------------------------------------------------------------
# Every explorer on the page, and the time from a control event to its new picture.

_JS_HELPERS = """
  const SELECTOR = '%s';
  const visible = node => node.offsetParent !== null && !node.querySelector(':disabled');
  const kindOf = node => node.classList.contains('widget-dropdown') ? 'dropdown'
    : node.classList.contains('widget-slider') ? 'slider'
    : node.classList.contains('widget-toggle-buttons') ? 'toggle' : 'checkbox';
  const labelOf = node => { const l = node.querySelector('label.widget-label, .widget-label-basic');
                            return l ? l.innerText.trim() : ''; };
  const controlsOf = root => Array.from(root.querySelectorAll(SELECTOR))
    .filter(node => !node.parentElement.closest(SELECTOR)).filter(visible);
  const pictureOf = root => { const imgs = root.querySelectorAll('img.widget-image'); return imgs[imgs.length - 1]; };
  const digest = async src => {  // SHA-256 of the picture's bytes (null if its URL is gone)
    try {
      const bytes = await (await fetch(src)).arrayBuffer();
      return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
        .map(b => b.toString(16).padStart(2, '0')).join('');
    } catch (e) { return null; }
  };
""" % CONTROL_SELECTOR

_FIND_EXPLORERS = """() => {%s
  const nb = window.jupyterapp.shell.currentWidget.content;
  const found = [];
  nb.widgets.forEach((cell, ci) => {
    if (cell.model.type !== 'code') return;
    const outputs = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output'))
      .filter(node => !node.parentElement.closest('.jp-OutputArea-output'));
    outputs.forEach((node, oi) => {
      const controls = controlsOf(node);
      if (!pictureOf(node) || !controls.length) return;
      const id = `cell${ci}-out${oi}`;
      node.dataset.explorer = id;
      // the function the cell calls to make it: the last `name = f(...)`, an explorer or viewer if any
      const calls = Array.from(cell.model.sharedModel.getSource().matchAll(/=\\s*(?:[\\w.]+\\.)?(\\w+)\\(/g)).map(m => m[1]);
      const call = calls.filter(c => /explorer|viewer/.test(c)).pop() || calls.pop();
      found.push({id, cell: ci, name: call || `cell ${ci}`,
                  controls: controls.map(c => ({kind: kindOf(c), label: labelOf(c)}))});
    });
  });
  return found;
}""" % _JS_HELPERS

# Change control `index` of explorer `id` once, as a person would (next option of a
# dropdown, an arrow key on a slider's handle, the next toggle button, a click on a
# checkbox), and time it: performance.now() right before the event is dispatched, to the
# new picture. A MutationObserver on the <img>'s src sees the kernel's answer arrive; then,
# with until='decoded' (the default, the measure of issue 12's goal), img.decode()
# resolving; with until='painted', the Element Timing API's renderTime for the new image:
# the presentation time of the first frame that shows it, which adds the compositor's
# frame pipeline (headless Chromium composites in software: 14-29 ms per frame at
# 2800 x 1800 device px on this machine). decode() asks for a decode of its own, keyed
# apart from the one painting needs (nearest-neighbour filtering), so under 'decoded' each
# picture is decoded twice (see benchmarks/README.md).
_CHANGE_AND_TIME = """async ({id, index, timeoutMs, titleMs, until}) => {%s
  const root = document.querySelector(`[data-explorer="${id}"]`);
  if (!root) throw new Error(`explorer ${id} is no longer on the page`);
  const img = pictureOf(root);
  const control = controlsOf(root)[index];
  if (!control) throw new Error(`explorer ${id} has no control ${index}`);
  const kind = kindOf(control), label = labelOf(control);
  let act, what;
  if (kind === 'dropdown') {
    const select = control.querySelector('select');
    const options = Array.from(select.options);
    let next = (select.selectedIndex + 1) %% options.length;
    while (options[next].disabled && next !== select.selectedIndex) next = (next + 1) %% options.length;
    what = `${label}: ${select.selectedIndex >= 0 ? options[select.selectedIndex].text : ''} -> ${options[next].text}`;
    if (next === select.selectedIndex) return {what, kind, skipped: true, changed: false, ms: null};  // one option
    act = () => { select.selectedIndex = next; select.dispatchEvent(new Event('change', {bubbles: true})); };
  } else if (kind === 'slider') {
    const handle = control.querySelector('.noUi-handle');
    const now = +handle.getAttribute('aria-valuenow'), min = +handle.getAttribute('aria-valuemin'),
          max = +handle.getAttribute('aria-valuemax');
    let dir = control.dataset.direction || 'Right';
    if (dir === 'Right' && now >= max) dir = 'Left';
    if (dir === 'Left' && now <= min) dir = 'Right';
    control.dataset.direction = dir;
    const readout = control.querySelector('.widget-readout');
    what = `${label}: ${readout ? readout.innerText : now} ${dir === 'Right' ? '+' : '-'}1 step`;
    act = () => handle.dispatchEvent(new KeyboardEvent('keydown', {key: 'Arrow' + dir, bubbles: true, cancelable: true}));
  } else if (kind === 'toggle') {
    const buttons = Array.from(control.querySelectorAll('button'));
    const active = buttons.findIndex(b => b.classList.contains('mod-active'));
    const next = buttons[(active + 1) %% buttons.length];
    what = `${label}: -> ${next.innerText.trim()}`;
    act = () => next.click();
  } else {
    const input = control.querySelector('input');
    what = `${label}: ${input.checked} -> ${!input.checked}`;
    act = () => input.click();
  }
  const before = {src: img.src, title: img.title, sha: await digest(img.src)};
  img.setAttribute('elementtiming', 'explorer-picture');  // Element Timing: when each new image is painted
  const result = await new Promise(resolve => {
    let t0, done = false, observer, timer, paintedAt = null, onPainted = null;
    // The frame that first shows an image loaded after t0 (its presentation time). Observed from
    // before the event: the entry can come before the MutationObserver's callback has run.
    const paints = new PerformanceObserver(list => {
      for (const e of list.getEntries()) {
        if (e.element === img && e.loadTime > t0 && paintedAt === null) {
          paintedAt = e.renderTime || e.startTime;
          if (onPainted) onPainted();
        }
      }
    });
    if (until === 'painted') paints.observe({type: 'element'});
    const painted = waitMs => new Promise(res => {
      if (paintedAt !== null) return res(true);
      const giveUp = setTimeout(() => res(false), waitMs);
      onPainted = () => { clearTimeout(giveUp); res(true); };
    });
    const finish = async changed => {
      if (done) return;
      done = true;
      observer.disconnect();
      clearTimeout(timer);
      let ms = null, arrivedMs = null, timedBy = null;
      if (changed) {
        arrivedMs = performance.now() - t0;  // the new src is set: the kernel's answer is in
        if (until === 'painted') {
          // Chromium reports an image once per element: a picture shown before (a value
          // visited again, same bytes, same data: URL, cached) gets no entry, and no time.
          if (await painted(1000)) { ms = paintedAt - t0; timedBy = 'painted'; }
          else timedBy = 'unreported';
        } else {
          try { await img.decode(); } catch (e) {}
          ms = performance.now() - t0;
          timedBy = 'decoded';
        }
        // the title (text alternative) comes in its own message, after the picture: wait for it
        const titleUntil = performance.now() + titleMs;
        while (img.title === before.title && performance.now() < titleUntil) await new Promise(r => setTimeout(r, 20));
        // (each message re-sets the src, to a new URL of the same picture: sizes once it has loaded)
        if (!img.complete) await new Promise(r => { img.addEventListener('load', r, {once: true});
                                                    img.addEventListener('error', r, {once: true});
                                                    setTimeout(r, 2000); });
      }
      paints.disconnect();
      const box = img.getBoundingClientRect();
      resolve({what, kind, skipped: false, ms, arrivedMs, timedBy, changed, srcBefore: before.src, src: img.src, titleBefore: before.title,
               title: img.title, cssWidth: box.width, cssHeight: box.height,
               naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight});
    };
    observer = new MutationObserver(() => { if (img.src !== before.src) finish(true); });
    observer.observe(img, {attributes: true, attributeFilter: ['src']});
    timer = setTimeout(() => finish(false), timeoutMs);
    t0 = performance.now();
    act();
  });
  result.shaBefore = before.sha;
  result.sha = result.changed ? await digest(img.src) : before.sha;
  return result;
}""" % _JS_HELPERS

_PICTURE = """({id}) => {%s
  const img = pictureOf(document.querySelector(`[data-explorer="${id}"]`));
  const box = img.getBoundingClientRect();
  return {src: img.src, title: img.title, cssWidth: box.width, cssHeight: box.height,
          naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          dpr: window.devicePixelRatio};
}""" % _JS_HELPERS


def find_explorers(lab: Lab) -> list[dict]:
    """Every explorer in the current notebook: a cell's top-level widget output that has a
    picture and at least one control. Each dict: `id` (marks its output node), `cell`,
    `name` (the function its cell calls, e.g. 'multihead_explorer'), `controls`."""
    return lab.page.evaluate(_FIND_EXPLORERS)


def explorer_locator(lab: Lab, explorer: dict):
    return lab.page.locator(f"[data-explorer='{explorer['id']}']")


def picture_state(lab: Lab, explorer: dict) -> dict:
    """The explorer picture's src, title and CSS and natural sizes (and the page's DPR)."""
    return lab.page.evaluate(_PICTURE, {"id": explorer["id"]})


def change_and_time(lab: Lab, explorer: dict, index: int, *, timeout: float = 10.0, title_wait: float = 0.0,
                    until: str = "decoded") -> dict:
    """Change control `index` of `explorer` once, in the page; the result says what changed
    (`what`), whether the picture changed within `timeout` (`changed`) and after how many
    milliseconds it was decoded (`until="decoded"`) or first painted (`until="painted"`) (`ms`;
    `timedBy` says which, or 'unreported' when no paint was reported for a picture shown
    before; `arrivedMs`: when its new src was set), the SHA-256 of its bytes before and after
    (`shaBefore`, `sha`), with the picture's title (waited for up to
    `title_wait` seconds more, after the timing, to differ from before) and sizes after."""
    return lab.page.evaluate(_CHANGE_AND_TIME, {"id": explorer["id"], "index": index, "timeoutMs": timeout * 1000,
                                                "titleMs": title_wait * 1000, "until": until})


def exercise_explorer(lab: Lab, explorer: dict, *, changes: int = 10, max_tries: int | None = None,
                      timeout: float = 10.0, title_wait: float = 0.0, pause: float = 0.05,
                      until: str = "decoded") -> list[dict]:
    """Change the explorer's controls in turn (round robin) until its picture has changed
    `changes` times (or after `max_tries`, default 2 * changes, attempts); one result of
    `change_and_time` per attempt. A dropdown offering a single option (e.g. the only
    key/value head count that divides n_heads=1) cannot change: its attempt is `skipped`."""
    explorer_locator(lab, explorer).scroll_into_view_if_needed()
    n_controls = len(explorer["controls"])
    results = []
    for attempt in range(max_tries or 2 * changes):
        results.append(change_and_time(lab, explorer, attempt % n_controls, timeout=timeout, title_wait=title_wait,
                                       until=until))
        if sum(r["changed"] for r in results) >= changes:
            break
        # Every message about the picture (its title, its width ...) re-sets the <img> src in
        # ipywidgets 8.1: wait until the kernel has sent them all, so that the next change is
        # timed to its own picture, not to a late message about this one.
        lab.wait_for_kernel("idle", timeout=timeout)
        time.sleep(pause)
    return results


def percentile(values, q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@pytest.fixture(scope="module")
def browser(request):
    """One Chromium for a test module (import this fixture), for the module's screen: its `DPR`
    (device pixel ratio) if it has one, else 1. In CI a missing Chromium fails, elsewhere it skips."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian package 'chromium'; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": the browser test must run in CI")
        pytest.skip(reason)
    with chromium(device_scale_factor=getattr(request.module, "DPR", 1)) as b:
        yield b


@contextlib.contextmanager
def notebook_with_evidence(lab: "Lab", path: str, name: str, artifacts: Path, *, trust: bool = False):
    """Open `path` in `lab` (trusted first if `trust`); on leaving, close it and stop its kernel.
    On any failure, leave a screenshot of the page and the server's log in `artifacts`."""
    if trust:
        lab.server.trust(lab.server.root / path)
    lab.page.console_errors.clear()
    try:
        lab.open_notebook(path)
        yield lab
    except BaseException:
        artifacts.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            lab.page.screenshot(path=str(artifacts / f"{name}.png"))
        with contextlib.suppress(Exception):
            (artifacts / f"{name}-jupyterlab.log").write_text(lab.server.log_tail(400))
        print(f"evidence: {artifacts / name}.png and {name}-jupyterlab.log")
        raise
    finally:
        with contextlib.suppress(Exception):
            lab.close_notebook()
