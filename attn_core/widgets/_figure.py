"""Blitting for explorers: a figure's static parts drawn once, only what changes drawn again.

An explorer builds one Figure (`viz.explorer_figure`) and updates its artists in place on
every change. Two helpers make that redraw cheap:

- `Backdrop`: a saved bitmap of the static parts (axes, ticks, labels that never change),
  pasted first on every draw instead of drawing them again.
- `CachedText` (made with `cached_text`): a label that keeps its pixels per (string, place),
  for labels that change between a few values over a plain background.

Labels whose numbers change on every update are `_labels.GlyphLine`s (as `text_row`'s slots).

Text is the slow part of a matplotlib redraw (2-3 ms per label on this course's machine);
pasting saved pixels costs almost nothing.
"""

from __future__ import annotations

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.text import Text

from ._pixels import _drawing

__all__ = ["Backdrop", "CachedText", "agg_canvas", "cached_text", "slot", "text_row"]


def agg_canvas(fig) -> FigureCanvasAgg:
    """`fig`'s Agg canvas, given one first if it has none (an `explorer_figure` made without pyplot)."""
    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


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
        patch_draw = fig.patch.draw

        def draw_background(renderer):  # the figure's fill, skipped when the paste covers all of it anyway
            if not (self.get_visible() and self.fits(renderer) and _drawing(renderer)):
                patch_draw(renderer)  # (a full-canvas fill: 0.2-0.4 ms at a device pixel ratio of 2)

        fig.patch.draw = draw_background
        figure_draw = fig.draw

        def draw_figure(renderer):  # the figure's own draw, with the static parts pasted where they fit
            if not self.fits(renderer):
                visible = self.get_visible()
                self.set_visible(False)
                try:
                    return figure_draw(renderer)
                finally:
                    self.set_visible(visible)
            shown = self._hide(self.static)
            try:
                return figure_draw(renderer)
            finally:
                self._restore(shown)

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
        canvas = agg_canvas(self.fig)
        shown = self._hide(self.dynamic)
        try:
            canvas.draw()  # not captured yet, so a normal draw: the static parts alone
        finally:
            self._restore(shown)
        renderer = canvas.get_renderer()
        self.regions[self.key] = renderer.copy_from_bbox(self.fig.bbox)
        self.sizes[self.key] = (renderer.width, renderer.height)

    def forget(self) -> None:
        """Drop every saved bitmap (after the static parts changed, e.g. a new layout)."""
        self.regions.clear()
        self.sizes.clear()
        self.key = None

    @staticmethod
    def _hide(artists) -> list:
        """Hide `artists` (an Axes: its frame, ticks and labels); returns what to `_restore`."""
        shown = []
        for artist in artists:
            if isinstance(artist, Axes):
                shown.append((artist, artist.axison))
                artist.set_axis_off()
            else:
                shown.append((artist, artist.get_visible()))
                artist.set_visible(False)
        return shown

    @staticmethod
    def _restore(shown) -> None:
        for artist, on in shown:
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
        if not _drawing(renderer):  # savefig(bbox_inches="tight")'s no-op draw: its canvas holds no label to keep
            return super().draw(renderer)
        place = tuple(self.get_transform().transform(self.get_position()))  # in pixels: moves if the canvas does
        key = (renderer.width, renderer.height, renderer.dpi, self.get_text(), place, to_rgba(self.get_color()),
               self.get_fontweight(), self.get_fontsize(), self.get_rotation(), self.get_horizontalalignment(),
               self.get_verticalalignment())
        saved = self._pixels.get(key)
        if saved is not None:
            renderer.restore_region(saved)
            return
        super().draw(renderer)
        if len(self._pixels) > 256:
            self._pixels.clear()
        self._pixels[key] = renderer.copy_from_bbox(self.get_window_extent(renderer).padded(2))


def cached_text(parent, x, y, s="", **kwargs) -> CachedText:
    """A `CachedText` in `parent`'s coordinates (an Axes: data; a Figure: 0..1; or `transform=`), added to it.

    Not clipped to the axes by default (like `ax.text`; `ax.add_artist` would clip it).
    """
    kwargs.setdefault("clip_on", False)
    kwargs.setdefault("transform", parent.transData if isinstance(parent, Axes) else parent.transFigure)
    text = CachedText(x, y, s, **kwargs)
    parent.add_artist(text)
    return text


_NUMBER_PIECES = "0123456789.:-"  # what the numbers in a `text_row` slot are made of


def slot(widest: str, **style) -> dict:
    """A place for changing text in a `text_row`, as wide as `widest` (e.g. "0.00"), in `color` (optional;
    `ha="right"`: the text ends where the slot ends, e.g. for numbers of varying length)."""
    unknown = set(style) - {"color", "ha"}
    if unknown:
        raise TypeError(f"slot() takes only color= and ha=, got {sorted(unknown)}")
    return {"widest": widest, **style}


def text_row(fig, x: float, y: float, parts, *, ha: str = "center", transform=None, fontsize: float = 10,
             va: str = "baseline"):
    """One line of text made of fixed pieces and changing `slot`s, laid out once.

    A long title whose numbers change costs a full text layout and rendering on every
    update (about 0.07 ms per character at 160 dpi here); as a row, the fixed words are
    drawn once (put them in the `Backdrop`'s static parts) and the short slots are
    `GlyphLine`s, pasted glyph by glyph: a number never shown before renders no text (every
    digit, ".", ":" and "-" is rendered here). Call a slot's `prepare(texts, fig.dpi)` with
    any words it can hold.

    Args:
        fig: the Figure (its renderer measures the pieces).
        x, y: where the row is anchored, in `transform` coordinates (default: figure 0..1).
        parts: strings (fixed) and `slot(widest, color=..., ha=...)` (changing), left to right.
        ha: "left", "center" or "right": how the row sits on `x` (with every slot at its widest).
        fontsize, va: for every piece ("baseline", "top", "center" or "bottom").
    Returns:
        `(fixed, slots)`: the fixed `Text`s and the slots' `GlyphLine`s, in order.
    """
    from matplotlib.transforms import ScaledTranslation

    from ._labels import GlyphLine

    transform = fig.transFigure if transform is None else transform
    renderer = agg_canvas(fig).get_renderer()
    fixed, slots, pieces = [], [], []  # pieces: (the artist, its width in pixels, whether it ends at its place)
    for part in parts:
        if isinstance(part, str):
            text = Text(x, y, part, fontsize=fontsize, va=va, ha="left", figure=fig)
            pieces.append((text, text.get_window_extent(renderer).width, False))
            fixed.append(text)
        else:
            part = dict(part)
            probe = Text(0, 0, part.pop("widest"), fontsize=fontsize, figure=fig)
            line = GlyphLine(x, y, transform, fontsize=fontsize, va=va, **{"ha": "left", **part})
            line.prepare([_NUMBER_PIECES], fig.dpi)
            pieces.append((line, probe.get_window_extent(renderer).width, line.ha == "right"))
            slots.append(line)
    offset = {"left": 0.0, "center": -sum(w for _, w, _ in pieces) / 2, "right": -sum(w for _, w, _ in pieces)}[ha]
    for artist, width, ends_here in pieces:
        at = offset + width if ends_here else offset
        artist.set_transform(transform + ScaledTranslation(at / fig.dpi, 0, fig.dpi_scale_trans))
        fig.add_artist(artist)
        offset += width
    return fixed, slots
