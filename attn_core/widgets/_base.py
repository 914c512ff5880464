"""The one shape every explorer has: named controls beside a picture, re-rendered synchronously.

Layout: an `HBox` that wraps in a narrow window; on the left a column of fixed width (the
caption, then the controls); on the right the picture at its natural size and, under it,
its text alternative (`alt`). Pictures are rendered for a device pixel ratio of 2
(`viz.explorer_figure`) and shown at half their pixel size, so they are sharp and never
stretched, only shrunk when the window is narrower.
"""

from __future__ import annotations

import base64
import html
import struct
from typing import Callable

import ipywidgets as W
import traitlets
from ipywidgets.widgets.trait_types import CByteMemoryView

from ..viz import CSS_DPI, DEVICE_PIXEL_RATIO, figure_to_png

__all__ = ["Explorer", "Picture", "restrict_options", "png_size", "png_dpi"]

CONTROLS_WIDTH = "280px"
"""Width of the column of controls beside the picture."""


def restrict_options(control: W.Widget, choices) -> None:
    """Offer only `choices` in a dropdown, keeping its value if it is still offered, else the nearest one.

    Used in `before_render` for controls that depend on others (heads that divide
    `d_model`, key/value heads that divide `n_heads`), so no broken combination is offered.
    """
    current = control.value
    keep = current if current in choices else min(choices, key=lambda c: (abs(c - current), c))
    control.options = choices  # ipywidgets resets the value to the first option here ...
    control.value = keep  # ... so put the kept (or nearest valid) value back


def png_size(png: bytes) -> tuple[int, int]:
    """`(width, height)` in pixels of PNG bytes, read from the header."""
    png = bytes(png)
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError(f"not PNG bytes: they start with {png[:16]!r}")
    return struct.unpack(">II", png[16:24])


def png_dpi(png: bytes) -> float | None:
    """The resolution stored in PNG bytes (`pHYs` chunk, in dots per inch), or None if absent."""
    png = bytes(png)
    pos = 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"pHYs" and length >= 9:
            x_per_unit, _, unit = struct.unpack(">IIB", png[pos + 8:pos + 17])
            return x_per_unit * 0.0254 if unit == 1 else None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def _data_url(png: bytes, widget=None) -> bytes:
    """PNG bytes as the bytes of a `data:` URL (what a `Picture` sends the browser)."""
    return b"data:image/png;base64," + base64.b64encode(png)


class Picture(W.Image):
    """An `ipywidgets.Image` of PNG bytes, sent to the browser as a `data:` URL, whose `tooltip`
    (the `<img title>`, its accessible name) can be set.

    `value` holds the PNG bytes in Python, as for any `Image`; the browser gets them as the
    bytes of a `data:image/png;base64,...` URL with `format="url"`, which ipywidgets' own
    image view puts in the `<img src>` as they are. A plain `Image` wraps its bytes in a
    `blob:` URL instead, which Chromium fetches through its browser process before decoding
    (about 6 ms of a change here), and a new one each time, so a picture shown before is
    decoded again; a data URL is decoded where it is, and one seen before comes from the
    browser's memory cache (see `benchmarks/README.md`).

    ipywidgets 8.1's front-end sets an element's title only when its model's `description`
    is empty, and reads `description.length` to find out; `Image` has no `description`, so
    an Image with a tooltip fails to render ("Could not create a view"). An empty synced
    `description` fixes that.
    """

    description = traitlets.Unicode("").tag(sync=True)
    format = traitlets.Unicode("url", help="'url': the browser gets `value` as a data: URL").tag(sync=True)
    value = CByteMemoryView(help="The picture's PNG bytes (a memory view, as `Image.value`)").tag(
        sync=True, to_json=_data_url)

    @traitlets.validate("format")
    def _only_url(self, proposal):
        if proposal["value"] != "url":
            raise traitlets.TraitError(f"a Picture sends PNG bytes as a data: URL (format 'url'), "
                                       f"got format {proposal['value']!r}")
        return proposal["value"]


def _full_descriptions(control: W.Widget) -> None:
    """Never cut a control's description ("temperat..."): size its label to its text."""
    style = getattr(control, "style", None)
    if getattr(control, "description", "") and style is not None and hasattr(style, "description_width"):
        if not style.description_width:
            style.description_width = "initial"
    if not control.layout.width:
        control.layout.width = "auto"  # fill the column (ipywidgets gives 300 px; "100%" overflows by the margins)


class Explorer(W.HBox):
    """A widget made of named `controls` beside a `view` (an `ipywidgets.Image` of PNG bytes).

    Setting any control's `.value` re-renders the picture at once, in the same call, so a
    test can drive the explorer without a browser:

        ex = multihead_explorer()
        ex.controls["n_heads"].value = 4
        png = ex.view.value          # the new picture
        ex.alt.value                 # what it shows, in words
        ex.snapshot()                # a still copy for the notebook, same size and text

    Args:
        controls: name -> control widget (sliders, dropdowns, ...), shown top to bottom.
        render: called as `render(**values)` with each control's current value; returns a
            matplotlib Figure, best the same `viz.explorer_figure` every call with its
            artists updated in place (a new Figure per call still works, more slowly).
        before_render: optional `before_render(changed_name, controls)`, run first on every
            change, for controls that depend on others (e.g. only offer `n_heads` that
            divide `d_model`). Changes it make do not trigger extra renders.
        caption: optional text shown above the controls.
        describe: optional `describe(**values) -> str`, one or two sentences saying what
            the picture shows; written to `view.tooltip` and to `alt` (an `ipywidgets.HTML`
            under the picture, announced by screen readers) with every picture.

    A change that leaves every value as it was (e.g. `before_render` clamped it back) does
    no work. The picture is shown at its natural CSS size: its pixel size divided by its
    resolution over 80 dpi (half its pixels for an `explorer_figure`).
    """

    def __init__(self, controls: dict[str, W.Widget], render: Callable, *, before_render: Callable | None = None,
                 caption: str | None = None, describe: Callable | None = None):
        self.controls = dict(controls)
        self.caption = caption
        self.view = Picture(layout=W.Layout(max_width="100%", height="auto"))
        self.alt = W.HTML(layout=W.Layout(max_width="100%"))
        self._render_fn = render
        self._describe = describe
        self._before_render = before_render
        self._busy = False
        self._alt_after_picture = False
        self._alt_text = ""
        self._rendered_values = None
        self.n_renders = 0
        for control in self.controls.values():
            _full_descriptions(control)
        head = [W.HTML(f"<b>{html.escape(caption, quote=False)}</b>")] if caption else []
        self.panel = W.VBox(head + list(self.controls.values()),
                            layout=W.Layout(width=CONTROLS_WIDTH, flex="0 0 auto", margin="0 12px 0 0"))
        self.picture = W.VBox([self.view, self.alt], layout=W.Layout(flex="0 1 auto", max_width="100%"))
        super().__init__(children=[self.panel, self.picture],
                         layout=W.Layout(flex_flow="row wrap", align_items="flex-start", max_width="100%"))
        self.view.observe(self._on_picture, names="value")
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._on_change(name), names="value")
        self.refresh()

    def values(self) -> dict:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def figure(self):
        """The Figure for the current values (prefer `snapshot()` for a static copy in a notebook)."""
        return self._render_fn(**self.values())

    def describe(self) -> str:
        """What the current picture shows, in words (its text alternative)."""
        if self._describe is not None:
            return str(self._describe(**self.values()))
        shown = ", ".join(f"{name} = {value}" for name, value in self.values().items())
        return f"{self.caption}: {shown}" if self.caption else shown

    def refresh(self) -> None:
        """Re-render the picture for the current values."""
        values = self.values()
        png = figure_to_png(self._render_fn(**values))
        self._alt_after_picture = True
        try:
            with self.view.hold_sync():  # the picture and its tooltip (set by _on_picture) in one message: one decode
                self.view.value = png
        finally:
            self._alt_after_picture = False
        self._show_alt()  # after the picture's message: the browser starts decoding it before re-laying out the text
        self._rendered_values = values
        self.n_renders += 1

    def snapshot(self):
        """A still copy of the current picture (`IPython.display.Image`) at its natural width, with its text alternative.

        What a notebook shows under the live explorer, so the saved notebook keeps a
        picture (and the same one) when widgets are not rendered.
        """
        from IPython.display import Image

        return Image(data=bytes(self.view.value), format="png", width=self.natural_width(), alt=self.describe())

    def natural_width(self) -> int:
        """The CSS width (px) the picture is shown at: its pixels over its device pixel ratio."""
        png = bytes(self.view.value)
        width, _ = png_size(png)
        dpi = png_dpi(png)
        ratio = DEVICE_PIXEL_RATIO if dpi is None else dpi / CSS_DPI
        return int(round(width / ratio))

    def _on_picture(self, change) -> None:
        """A new picture (from `refresh` or a subclass): natural size and text alternative follow it."""
        if not change["new"]:
            return
        width = f"{self.natural_width()}px"
        self.view.layout.width = width
        self.picture.layout.width = width  # the text alternative wraps under the picture, not beside the controls
        self._alt_text = self.describe()
        self.view.tooltip = self._alt_text
        if not self._alt_after_picture:
            self._show_alt()

    def _show_alt(self) -> None:
        """The text alternative under the picture (announced by screen readers: aria-live)."""
        self.alt.value = (f'<div aria-live="polite" style="font-size: 0.85em; line-height: 1.3">'
                          f'{html.escape(self._alt_text, quote=False)}</div>')

    def _on_change(self, name: str) -> None:
        if self._busy:  # a dependent control changed inside before_render: one render covers it
            return
        self._busy = True
        try:
            if self._before_render is not None:
                self._before_render(name, self.controls)
            if self.values() != self._rendered_values:  # unchanged values: no work
                self.refresh()
        finally:
            self._busy = False
