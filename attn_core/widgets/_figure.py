"""Blitting for explorers: a figure's static parts drawn once, only what changes drawn again.

An explorer builds one Figure (`viz.explorer_figure`) and updates its artists in place on
every change. Two helpers make that redraw cheap:

- `Backdrop`: a saved bitmap of the static parts (axes, ticks, labels that never change),
  pasted first on every draw instead of drawing them again.
- `CachedText` (made with `cached_text`): a label that keeps its pixels per (string, place),
  for labels that change between a few values over a plain background.

Text is the slow part of a matplotlib redraw (2-3 ms per label on this course's machine);
pasting saved pixels costs almost nothing.
"""

from __future__ import annotations

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.text import Text

__all__ = ["Backdrop", "CachedText", "cached_text"]


class Backdrop(Artist):
    """A saved bitmap of a figure's static parts, pasted first on every draw.

    Blitting through `savefig`: labels, axes and ticks that do not change are drawn once
    and restored as pixels; only the artists that change are drawn again. `ensure(key)`,
    called by `render` (outside any draw), captures a bitmap per `key` (e.g. per y-range)
    at the figure's own resolution (`viz.figure_to_png` saves at `dpi="figure"`). The
    static artists stay visible as far as matplotlib knows (so `bbox_inches="tight"`
    measures them); they are skipped only while a draw onto a canvas of the captured size
    pastes them. A draw onto another size (e.g. Jupyter's inline display of `figure()`,
    which uses `savefig.dpi` and crops) draws everything normally.

    Args:
        fig: the explorer's Figure.
        static: artists (or whole Axes: their frame, ticks and labels) drawn once.
        dynamic: the artists `render` updates; hidden while the static pixels are captured.
    """

    def __init__(self, fig, static, dynamic):
        super().__init__()
        self.set_zorder(-1000)
        self.fig, self.static, self.dynamic = fig, list(static), list(dynamic)
        self.regions, self.sizes = {}, {}
        self.key = None
        fig.add_artist(self)
        figure_draw = fig.draw

        def draw_figure(renderer):  # the figure's own draw, with the static parts pasted where they fit
            if not self.fits(renderer):
                visible = self.get_visible()
                self.set_visible(False)
                try:
                    return figure_draw(renderer)
                finally:
                    self.set_visible(visible)
            self._show(self.static, False)
            try:
                return figure_draw(renderer)
            finally:
                self._show(self.static, True)

        fig.draw = draw_figure

    def fits(self, renderer) -> bool:
        """Whether saved pixels exist for the current key and match `renderer`'s size (the same layout)."""
        return self.key in self.regions and self.sizes[self.key] == (renderer.width, renderer.height)

    def draw(self, renderer):
        if self.get_visible() and self.fits(renderer):
            renderer.restore_region(self.regions[self.key])

    def ensure(self, key, prepare=None) -> None:
        """Make `key` current, capturing its static pixels first if needed (`prepare()` sets them up)."""
        self.key = (key, self.fig.dpi)
        if self.key in self.regions:
            return
        if prepare is not None:
            prepare()
        canvas = self.fig.canvas if isinstance(self.fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(self.fig)
        self._show(self.dynamic, False)
        try:
            canvas.draw()  # not captured yet, so a normal draw: the static parts alone
        finally:
            self._show(self.dynamic, True)
        renderer = canvas.get_renderer()
        self.regions[self.key] = renderer.copy_from_bbox(self.fig.bbox)
        self.sizes[self.key] = (renderer.width, renderer.height)

    def forget(self) -> None:
        """Drop every saved bitmap (after the static parts changed, e.g. a new layout)."""
        self.regions.clear()
        self.sizes.clear()
        self.key = None

    @staticmethod
    def _show(artists, on: bool) -> None:
        for artist in artists:
            if isinstance(artist, Axes):
                artist.set_axis_on() if on else artist.set_axis_off()
            else:
                artist.set_visible(on)


class CachedText(Text):
    """A `Text` on a plain background that keeps its pixels: drawn once per (string, place).

    Laying out and rendering a label costs 2-3 ms; restoring its saved pixels almost
    nothing. Only for labels over a background that does not change (e.g. white).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pixels = {}

    def draw(self, renderer):
        if not self.get_visible() or not self.get_text():
            return
        place = tuple(self.get_transform().transform(self.get_position()))  # in pixels: moves if the canvas does
        key = (renderer.width, renderer.height, renderer.dpi, self.get_text(), place, to_rgba(self.get_color()),
               self.get_fontweight(), self.get_fontsize())
        region = self._pixels.get(key)
        if region is not None:
            renderer.restore_region(region)
            return
        super().draw(renderer)
        box = self.get_window_extent(renderer).padded(2)
        if len(self._pixels) > 256:
            self._pixels.clear()
        self._pixels[key] = renderer.copy_from_bbox(box)


def cached_text(parent, x, y, s="", **kwargs) -> CachedText:
    """A `CachedText` in `parent`'s coordinates (an Axes: data; a Figure: 0..1), added to it."""
    text = CachedText(x, y, s, transform=parent.transData if isinstance(parent, Axes) else parent.transFigure,
                      **kwargs)
    parent.add_artist(text)
    return text
