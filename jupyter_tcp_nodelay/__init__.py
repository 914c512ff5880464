"""A Jupyter server extension: send kernel messages to the browser at once (TCP_NODELAY).

Why: jupyter_server (2.21) leaves Nagle's algorithm on for the websocket between the
server and the browser, as Tornado does unless a handler calls `set_nodelay(True)`. A
small message (a widget update, a picture that fits in one TCP segment: on 127.0.0.1 a
segment holds 64 KiB) is then held back until the browser acknowledges the previous
one, and browsers delay acknowledgements by up to 40 ms. Measured in this course's
explorers (`benchmarks/bench_browser.py`): a new picture left the kernel after 12 ms and
reached the page after 53 ms, 40 ms of it spent waiting in the server's socket; with
TCP_NODELAY it arrives 1-5 ms after it leaves the kernel. Tornado's own documentation
asks websocket applications that send many small messages to call `set_nodelay(True)`.

Enabled for every server of the environment it is installed into (the course's venv,
Binder's image, a classroom hub's single-user servers) by
`etc/jupyter/jupyter_server_config.d/jupyter_tcp_nodelay.json`, which `pip install`
writes there. Nothing else changes: same messages, same order, sent sooner.
"""

from __future__ import annotations

__all__ = ["enable_nodelay"]

_MARK = "_jupyter_tcp_nodelay"


def _jupyter_server_extension_points():
    return [{"module": "jupyter_tcp_nodelay"}]


def enable_nodelay(handler_class) -> bool:
    """Make `handler_class.open` (a Tornado `WebSocketHandler`) set TCP_NODELAY first; False if already done."""
    original = handler_class.open
    if getattr(original, _MARK, False):
        return False

    def open(self, *args, **kwargs):  # may return a coroutine (jupyter_server's is async): Tornado awaits it
        self.set_nodelay(True)
        return original(self, *args, **kwargs)

    open.__doc__, open.__wrapped__ = original.__doc__, original
    setattr(open, _MARK, True)
    handler_class.open = open
    return True


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    enable_nodelay(KernelWebsocketHandler)
    serverapp.log.info("jupyter_tcp_nodelay: kernel websockets send without delay (TCP_NODELAY)")
