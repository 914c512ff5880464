"""The jupyter_tcp_nodelay server extension: kernel websockets send without Nagle's delay.

Why it exists: `jupyter_tcp_nodelay/__init__.py`. These tests check that the wrapped
`open` really sets TCP_NODELAY on the accepted socket (a real Tornado server and
websocket client on 127.0.0.1), that jupyter_server's kernel websocket handler is the one
wrapped, and that the course's environment (`make setup`) and a `pip install .` (Binder)
both enable the extension.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tornado import httpserver, netutil, web, websocket

import jupyter_tcp_nodelay
from jupyter_tcp_nodelay import enable_nodelay

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "jupyter-config" / "jupyter_server_config.d" / "jupyter_tcp_nodelay.json"


def _nodelay_seen_by_handler(patched: bool) -> int:
    """Open a websocket to a Tornado handler on 127.0.0.1; the TCP_NODELAY flag of the server's socket in `open`."""
    seen = {}

    class Probe(websocket.WebSocketHandler):
        def open(self):
            seen["nodelay"] = self.ws_connection.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    if patched:
        enable_nodelay(Probe)

    async def main():
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = httpserver.HTTPServer(web.Application([(r"/ws", Probe)]))
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        try:
            conn = await websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws")
            conn.close()
        finally:
            server.stop()

    asyncio.run(main())
    return seen["nodelay"]


def test_open_sets_tcp_nodelay_on_the_servers_socket():
    assert _nodelay_seen_by_handler(patched=False) == 0  # Tornado's default: Nagle on (what the extension fixes)
    assert _nodelay_seen_by_handler(patched=True) != 0


def test_wrapping_keeps_the_original_open_and_is_done_once():
    calls = []

    class Handler:
        def set_nodelay(self, value):
            calls.append(("set_nodelay", value))

        async def open(self, kernel_id):  # jupyter_server's open is a coroutine function; Tornado awaits its result
            calls.append(("open", kernel_id))
            return kernel_id

    assert enable_nodelay(Handler) is True
    assert enable_nodelay(Handler) is False  # a second load of the extension does not wrap twice
    assert asyncio.run(Handler().open("k1")) == "k1"
    assert calls == [("set_nodelay", True), ("open", "k1")]


def test_the_extension_wraps_jupyter_servers_kernel_websocket_handler():
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    class App:
        class log:
            messages = []
            info = messages.append

    original = KernelWebsocketHandler.open
    try:
        jupyter_tcp_nodelay._load_jupyter_server_extension(App)
        assert KernelWebsocketHandler.open is not original
        assert KernelWebsocketHandler.open.__wrapped__ is original
        assert any("TCP_NODELAY" in m for m in App.log.messages)
        assert jupyter_tcp_nodelay._jupyter_server_extension_points() == [{"module": "jupyter_tcp_nodelay"}]
    finally:
        KernelWebsocketHandler.open = original


def test_enabled_for_the_course_environment_and_for_pip_install():
    assert json.loads(CONFIG.read_text()) == {"ServerApp": {"jpserver_extensions": {"jupyter_tcp_nodelay": True}}}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    assert "jupyter_tcp_nodelay" in setuptools["packages"]["find"]["include"]
    assert setuptools["data-files"]["etc/jupyter/jupyter_server_config.d"] == [str(CONFIG.relative_to(ROOT))]
    listed = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"],
                            capture_output=True, text=True, timeout=120)
    text = listed.stdout + listed.stderr
    assert "jupyter_tcp_nodelay" in text and "enabled" in text.split("jupyter_tcp_nodelay", 1)[1].split("\n", 1)[0], (
        f"jupyter_tcp_nodelay is not enabled in this environment (run `make setup`):\n{text}")


def test_explorer_pngs_are_deflated_by_isal():
    from attn_core import viz

    assert viz._deflate.__module__.startswith("isal"), "isal is missing: the explorers fall back to zlib, 10x slower"
