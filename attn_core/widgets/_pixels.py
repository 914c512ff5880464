"""A fast nearest-neighbour heatmap for explorers: cells of colour blown up to device pixels with numpy.

`AxesImage` resamples through matplotlib's general image pipeline (normalise, mask,
resample, composite): 25-45 ms for a heatmap filling half of a picture at device pixel
ratio 2 on this course's machine, and even Agg's `draw_image` of ready pixels costs
5-7 ms. A heatmap drawn with "nearest" interpolation needs none of that: each device
pixel takes the colour of the cell under its centre (an index lookup), written straight
into the Agg canvas, about 1-2 ms.
"""

from __future__ import annotations

import sys

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import Colormap

__all__ = ["PixelImage"]

_ALPHA_SHIFT = 24 if sys.byteorder == "little" else 0  # where an RGBA byte quadruple's alpha sits in its uint32 view


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
        if not self.get_visible():
            return
        left, right, bottom, top = self._extent
        (xa, ya), (xb, yb) = self.get_transform().transform([(left, top), (right, bottom)])
        box = (min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb))
        if box[1] - box[0] < 1 or box[3] - box[2] < 1:
            return
        px0, py1, ri, ci = self._lookup(self._rgba.shape[:2], box)
        cells = self._rgba.view(np.uint32)[..., 0]  # (rows, cols): one 32-bit word per RGBA colour
        pixels = cells[ri[:, None], ci[None, :]]  # (device rows top to bottom, device cols)
        clip = self.axes.bbox
        if isinstance(renderer, RendererAgg):
            canvas = np.asarray(renderer.buffer_rgba()).view(np.uint32)[..., 0]  # (height, width), top row first
            height, width = canvas.shape
            top = height - py1  # buffer row of the image's top
            r0, r1 = max(top, int(round(height - clip.y1)), 0), min(top + len(ri), int(round(height - clip.y0)), height)
            c0, c1 = max(px0, int(round(clip.x0)), 0), min(px0 + len(ci), int(round(clip.x1)), width)
            if r1 <= r0 or c1 <= c0:
                return
            part = pixels[r0 - top:r1 - top, c0 - px0:c1 - px0]
            opaque = self._rgba[..., 3].min() == 255
            np.copyto(canvas[r0:r1, c0:c1], part, where=True if opaque else ((part >> _ALPHA_SHIFT) & 0xFF) != 0)
        else:  # another renderer (vector output): let it place the pixels
            gc = renderer.new_gc()
            gc.set_clip_rectangle(clip)
            renderer.draw_image(gc, px0, py1 - len(ri), pixels.view(np.uint8).reshape(*pixels.shape, 4)[::-1])
            gc.restore()
        self.stale = False
