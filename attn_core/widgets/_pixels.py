"""Pixel-level drawing for explorers: a fast nearest-neighbour heatmap, and labels rendered once and pasted.

`PixelImage`: cells of colour blown up to device pixels with numpy.

`AxesImage` resamples through matplotlib's general image pipeline (normalise, mask,
resample, composite): 25-45 ms for a heatmap filling half of a picture at device pixel
ratio 2 on this course's machine, and even Agg's `draw_image` of ready pixels costs
5-7 ms. A heatmap drawn with "nearest" interpolation needs none of that: each device
pixel takes the colour of the cell under its centre (an index lookup), written straight
into the Agg canvas, about 1-2 ms.

`SpriteText`: rendering a label costs about 1 ms (layout, glyphs); an explorer that
re-lays out its labels for each head count (or other layout) would pay that for every
label of every new layout. A `SpriteText` keeps the pixels of each look it has drawn
(string, font, size, angle, colour, alignment) and pastes them wherever the label goes
next. Exact when its anchor sits on whole CSS pixels (even device pixels at DPR 2: Agg
rounds glyph positions half to even); otherwise it simply draws.
"""

from __future__ import annotations

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import Colormap
from matplotlib.text import Text

__all__ = ["PixelImage", "SpriteText", "sprite_text", "ArtistGroup"]


def _drawing(renderer) -> bool:
    """Whether `renderer` really draws: savefig(bbox_inches="tight") first runs a draw with every
    `draw_*` method replaced by a no-op on the instance (Agg keeps only some of its own `draw_*` methods,
    not `draw_text`, on the instance), whose canvas must not be read or written."""
    return "draw_text" not in vars(renderer)


class PixelImage(Artist):
    """A heatmap of `(rows, cols)` values in `[vmin, vmax]` drawn into `extent` of an Axes' data space.

    `extent = (left, right, bottom, top)` as for `imshow` (row 0 at `top`). NaN cells take
    the colour map's "bad" colour; a fully transparent "bad" colour leaves what is
    underneath (e.g. labels pasted by a `Backdrop`) untouched. Partly transparent colours
    are not blended: use opaque colours or fully transparent ones. Update with
    `set_data(values)` and `set_extent(extent)`.

    Args:
        ax: the Axes whose data coordinates `extent` is in (the image is clipped to it).
        cmap: a matplotlib `Colormap`; `vmin`, `vmax`: the values at its ends.
    """

    def __init__(self, ax, cmap: Colormap, vmin: float = 0.0, vmax: float = 1.0, extent=(0, 1, 0, 1)):
        super().__init__()
        self.axes = ax
        self.set_transform(ax.transData)
        self.cmap, self.vmin, self.vmax = cmap, float(vmin), float(vmax)
        self._values = np.full((1, 1), np.nan)
        self._rgba = np.zeros((1, 1, 4), np.uint8)
        self._shown, self._opaque = np.zeros((1, 1), bool), False
        self._extent = tuple(float(v) for v in extent)
        self._index = {}
        ax.add_artist(self)

    def set_data(self, values) -> None:
        """New cell values `(rows, cols)`; NaN = the colour map's "bad" colour."""
        values = np.array(values, dtype=float)  # a copy: later changes to the caller's array do not show
        if values.ndim != 2 or 0 in values.shape:
            raise ValueError(f"values must be a non-empty (rows, cols) array, got shape {values.shape}")
        self._values = values
        scaled = (values - self.vmin) / (self.vmax - self.vmin)
        self._rgba = np.ascontiguousarray(self.cmap(np.ma.masked_invalid(scaled), bytes=True))  # (rows, cols, 4)
        self._shown = self._rgba[..., 3] != 0  # (rows, cols): cells that cover what is underneath
        self._opaque = bool(self._shown.all()) and bool((self._rgba[..., 3] == 255).all())
        self.stale = True

    def get_array(self) -> np.ma.MaskedArray:
        """The cell values shown, masked where NaN (drawn in the "bad" colour)."""
        return np.ma.masked_invalid(self._values)

    def get_rgba(self) -> np.ndarray:
        """The colours of the cells, `(rows, cols, 4)` uint8."""
        return self._rgba

    def set_extent(self, extent) -> None:
        self._extent = tuple(float(v) for v in extent)
        self.stale = True

    def get_extent(self):
        return self._extent

    def _lookup(self, shape, box):
        """The integer device-pixel box and the cell under every device column and row of it (cached per layout)."""
        key = (shape, box)
        if key not in self._index:
            rows, cols = shape
            x0, x1, y0, y1 = box  # device pixels, y growing upwards
            px0, px1, py0, py1 = (int(round(v)) for v in box)
            ci = np.clip(((np.arange(px0, px1) + 0.5 - x0) / (x1 - x0) * cols).astype(np.intp), 0, cols - 1)
            # top device row first (the Agg buffer's order); the image's row 0 is at the top
            ri = np.clip(((y1 - (np.arange(py1, py0, -1) - 0.5)) / (y1 - y0) * rows).astype(np.intp), 0, rows - 1)
            if len(self._index) > 64:
                self._index.clear()
            self._index[key] = (px0, py1, ri, ci)
        return self._index[key]

    def draw(self, renderer):
        if not self.get_visible() or not _drawing(renderer):
            return
        left, right, bottom, top = self._extent
        (xa, ya), (xb, yb) = self.get_transform().transform([(left, top), (right, bottom)])
        box = (min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb))
        if box[1] - box[0] < 1 or box[3] - box[2] < 1:
            return
        px0, py1, ri, ci = self._lookup(self._rgba.shape[:2], box)
        cells = self._rgba.view(np.uint32)[..., 0]  # (rows, cols): one 32-bit word per RGBA colour
        clip = self.axes.bbox
        if isinstance(renderer, RendererAgg):
            canvas = np.asarray(renderer.buffer_rgba()).view(np.uint32)[..., 0]  # (height, width), top row first
            height, width = canvas.shape
            top = height - py1  # buffer row of the image's top
            r0, r1 = max(top, int(round(height - clip.y1)), 0), min(top + len(ri), int(round(height - clip.y0)), height)
            c0, c1 = max(px0, int(round(clip.x0)), 0), min(px0 + len(ci), int(round(clip.x1)), width)
            if r1 <= r0 or c1 <= c0:
                return
            rows, cols = ri[r0 - top:r1 - top], ci[c0 - px0:c1 - px0]  # the cell under each device row / column shown
            # Columns first, on the few cell rows, then whole rows: 20x faster than one 2-D fancy index
            part = np.take(cells, cols, axis=1)[rows]  # (device rows top to bottom, device cols)
            if self._opaque:
                np.copyto(canvas[r0:r1, c0:c1], part)
            else:  # see-through cells leave what is underneath: a per-cell mask, blown up the same way
                np.copyto(canvas[r0:r1, c0:c1], part, where=np.take(self._shown, cols, axis=1)[rows])
        else:  # another renderer (vector output): let it place the pixels
            pixels = np.take(cells, ci, axis=1)[ri]  # (device rows top to bottom, device cols)
            gc = renderer.new_gc()
            gc.set_clip_rectangle(clip)
            renderer.draw_image(gc, px0, py1 - len(ri), pixels.view(np.uint8).reshape(*pixels.shape, 4)[::-1])
            gc.restore()
        self.stale = False


class SpriteText(Text):
    """A `Text` over a plain background that renders each look once and pastes its pixels after that.

    `sprites` is a dict shared by the labels of one figure (one rendering of "head 3" serves
    every place "head 3" is shown). The saved pixels include the background under the
    label (padded by a pixel): only for labels on a background that does not change (white).
    Drawn normally onto anything other than an Agg canvas, or at an anchor that is not on
    an even device pixel.
    """

    def __init__(self, *args, sprites: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._sprites = sprites

    def draw(self, renderer):
        if not self.get_visible() or not self.get_text():
            return
        x, y = self.get_transform().transform(self.get_unitless_position())  # device pixels
        ax, ay = int(round(x)), int(round(y))
        if (not isinstance(renderer, RendererAgg) or not _drawing(renderer) or abs(x - ax) > 1e-6
                or abs(y - ay) > 1e-6 or ax % 2 or ay % 2):
            return super().draw(renderer)
        key = (self.get_text(), hash(self.get_fontproperties()), self.get_rotation(), str(self.get_color()),
               self.get_horizontalalignment(), self.get_verticalalignment(), renderer.dpi)  # the look, cheaply
        canvas = np.asarray(renderer.buffer_rgba())  # (height, width, 4), top row first
        height, width = canvas.shape[:2]
        sprite = self._sprites.get(key)
        if sprite is None:
            super().draw(renderer)
            box = self.get_window_extent(renderer).padded(1)
            x0, x1 = int(np.floor(box.x0)), int(np.ceil(box.x1))
            y0, y1 = int(np.floor(box.y0)), int(np.ceil(box.y1))
            if 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height:  # wholly on the canvas: keep it
                if len(self._sprites) > 512:
                    self._sprites.clear()
                self._sprites[key] = (canvas[height - y1:height - y0, x0:x1].copy(), x0 - ax, y1 - ay)
            return
        pixels, dx, dy = sprite
        c0, r0 = ax + dx, height - (ay + dy)
        if c0 < 0 or r0 < 0 or c0 + pixels.shape[1] > width or r0 + pixels.shape[0] > height:
            return super().draw(renderer)
        canvas[r0:r0 + pixels.shape[0], c0:c0 + pixels.shape[1]] = pixels
        self.stale = False


def sprite_text(parent, x, y, s="", *, sprites: dict, **kwargs) -> SpriteText:
    """A `SpriteText` in `parent`'s coordinates (an Axes: data; a Figure: 0..1), added to it."""
    text = SpriteText(x, y, s, sprites=sprites, transform=parent.transData if isinstance(parent, Axes) else
                      parent.transFigure, **kwargs)
    parent.add_artist(text)
    return text


class ArtistGroup(Artist):
    """Several artists of `ax` drawn as one, in order: one switch of visibility for all of them.

    A `Backdrop` hides its static artists on every draw and shows them again after
    (`set_visible` on each, with matplotlib's change notifications: about 0.03 ms per
    artist and switch); fifty static labels in one group cost one switch instead of fifty.
    The members are not added to `ax` themselves (`get_children` lists them, so `findobj`
    still finds them).
    """

    def __init__(self, ax, artists):
        super().__init__()
        self.members = list(artists)
        for artist in self.members:
            artist.set_figure(ax.figure)
            artist.axes = ax
        ax.add_artist(self)

    def get_children(self):
        return list(self.members)

    def draw(self, renderer):
        if not self.get_visible():
            return
        for artist in self.members:
            artist.draw(renderer)
        self.stale = False
