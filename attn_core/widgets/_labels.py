"""Many short labels (tokens) drawn from cached pixels: about 0.02 ms a label instead of 0.7 ms.

matplotlib lays out and rasterises every label on every draw: about 0.7 ms per word at a
device pixel ratio of 2 on this course's machine, so the 4 x 20 token labels of the head
viewer would cost 60 ms per update. `Labels` draws each distinct string once (per font
size, angle, colour and resolution) onto a small transparent canvas with matplotlib's own
text renderer and keeps those pixels (a "stamp"); drawing a label is then a blend of its
stamp into the Agg canvas, wherever the label goes. While the labels and their places
stay the same, the block drawn last time is pasted back in one copy (like
`_figure.CachedText`: only over a background that does not change, drawn before anything
that may overlap the block; `Labels` have zorder 0). The pixels are the ones matplotlib
draws, up to the rounding of the label's position to whole pixels. Stamps are shared by
every `Labels` (a word seen once is cheap everywhere) and dropped past 2048.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_rgba
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.markers import TICKDOWN, TICKLEFT
from matplotlib.ticker import MaxNLocator
from matplotlib.text import Text
from matplotlib.transforms import Bbox, IdentityTransform, offset_copy

from ._pixels import _drawing

__all__ = ["Labels", "Ticks", "TextLine"]

_PAD = 3  # pixels around a stamp, for glyphs that reach past their advance
_STAMPS: dict = {}  # (text, fontsize, angle, alignment, colour, dpi, max_width) -> stamp; see Labels._stamp
_MAX_STAMPS = 2048  # at most ~10 MB: a stamp is a few KB of uint8
_ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"


class Labels(Artist):
    """A list of one-line labels at points of `transform`, all with one font size and angle.

    `ha` ("left", "center", "right") and `va` ("top", "center", "bottom") align each
    label's box to its point as for `Text`, for `angle` 0 or 90 (reading upwards, like
    rotated tick labels). Update with `set_labels(texts, xs, ys, colors=None)`.

    Args:
        transform: where `xs`, `ys` are (e.g. `ax.transData`, a blended transform).
        fontsize: in points (at least 8 for the course's pictures).
        color: the default colour; `set_labels(colors=...)` may give one per label.
        max_width: in points, optional: a longer label is cut and ends in "...".
    """

    def __init__(self, transform, *, fontsize: float = 9, color="black", angle: int = 0, ha: str = "left",
                 va: str = "center", max_width: float | None = None):
        super().__init__()
        if angle not in (0, 90):
            raise ValueError(f"angle must be 0 or 90, got {angle!r}")
        if ha not in ("left", "center", "right") or va not in ("top", "center", "bottom"):
            raise ValueError(f"ha must be left/center/right and va top/center/bottom, got {ha!r}, {va!r}")
        self.set_transform(transform)
        self.fontsize, self.angle, self.ha, self.va, self.max_width = float(fontsize), angle, ha, va, max_width
        self.color = to_rgba(color)
        self.texts: list[str] = []
        self.xs = np.zeros(0)
        self.ys = np.zeros(0)
        self.colors: list | None = None
        self._block = None  # (key, saved pixels) of the last draw: pasted again while nothing changed

    def set_labels(self, texts, xs, ys, colors=None) -> None:
        """Show `texts[i]` at `(xs[i], ys[i])` (optionally in `colors[i]`); an empty list shows none."""
        texts = [str(t) for t in texts]
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if not len(texts) == len(xs) == len(ys) or (colors is not None and len(colors) != len(texts)):
            raise ValueError(f"texts, xs, ys (and colors) must have one entry per label, got {len(texts)}, "
                             f"{len(xs)}, {len(ys)}" + ("" if colors is None else f", {len(colors)}"))
        self.texts, self.xs, self.ys = texts, xs, ys
        self.colors = None if colors is None else [to_rgba(c) for c in colors]
        self.stale = True

    def set_fontsize(self, fontsize: float) -> None:
        self.fontsize = float(fontsize)
        self.stale = True

    def get_fontsize(self) -> float:
        return self.fontsize

    # ------------------------------------------------------------------ pixels

    def _stamp(self, text: str, dpi: float, color) -> tuple:
        """`(pixels, ax, ay, (width, height), shown, advance)`: the label's premultiplied RGBA pixels
        (uint8), where its anchor point sits in them (pixels, y down), their size, the text drawn
        (cut or not) and its width in pixels."""
        key = (text, self.fontsize, self.angle, self.ha, self.va, color, dpi, self.max_width)
        stamp = _STAMPS.get(key)
        if stamp is not None:
            return stamp
        prop = FontProperties(size=self.fontsize)
        probe = RendererAgg(1, 1, dpi)
        shown = text
        w, h, d = probe.get_text_width_height_descent(shown, prop, False)
        if self.max_width is not None:
            limit = self.max_width * dpi / 72
            while w > limit and len(shown) > 1:
                shown = shown[:len(shown) - 1 - (shown.endswith(_ELLIPSIS))] + _ELLIPSIS
                w, h, d = probe.get_text_width_height_descent(shown, prop, False)
        _, lp_h, lp_d = probe.get_text_width_height_descent("lp", prop, False)
        h, d = max(h, lp_h), max(d, lp_d)  # as `Text` does: every label's box at least as tall as "lp"
        if self.angle == 0:
            width, height = math.ceil(w) + 2 * _PAD, math.ceil(h) + 2 * _PAD
            x0, y0 = _PAD, _PAD + (h - d)  # baseline-left of the text inside the stamp (y down)
            ax_ = {"left": x0, "center": x0 + w / 2, "right": x0 + w}[self.ha]
            ay = {"top": y0 - (h - d), "center": y0 - (h - d) + h / 2, "bottom": y0 + d}[self.va]
        else:
            width, height = math.ceil(h) + 2 * _PAD, math.ceil(w) + 2 * _PAD
            x0, y0 = _PAD + (h - d), _PAD + w  # reading upwards: the baseline is a vertical line
            ax_ = {"left": x0 - (h - d), "center": x0 - (h - d) + h / 2, "right": x0 + d}[self.ha]
            ay = {"top": y0 - w, "center": y0 - w / 2, "bottom": y0}[self.va]
        canvas = RendererAgg(width, height, dpi)
        gc = canvas.new_gc()
        gc.set_foreground(color[:3])
        canvas.draw_text(gc, x0, y0, shown, prop, self.angle)
        gc.restore()
        pixels = np.asarray(canvas.buffer_rgba()).astype(np.float32)  # (height, width, 4), colour not premultiplied
        pixels[..., :3] *= pixels[..., 3:] / 255.0  # premultiplied: blending is then one multiply-add
        pixels = np.round(pixels).astype(np.uint8)  # kept small: a quarter of float32
        stamp = (pixels, ax_, ay, (width, height), shown, w)
        if len(_STAMPS) >= _MAX_STAMPS:
            _STAMPS.clear()
        _STAMPS[key] = stamp
        return stamp

    def _placements(self, dpi: float, canvas_height: float):
        """`(stamp, left, top)` per label: its stamp and the stamp's top-left corner in canvas pixels (y down)."""
        if not self.texts:
            return []
        points = self.get_transform().transform(np.column_stack([self.xs, self.ys]))  # (n, 2) display, y up
        colors = self.colors or [self.color] * len(self.texts)
        out = []
        for text, color, (x, y) in zip(self.texts, colors, points):
            if not text or not np.isfinite(x) or not np.isfinite(y):
                continue
            stamp = self._stamp(text, dpi, color)
            _, ax_, ay, _, _, _ = stamp
            out.append((stamp, int(round(x - ax_)), int(round(canvas_height - y - ay))))
        return out

    def draw(self, renderer):
        if not self.get_visible() or not self.texts:
            return
        if not isinstance(renderer, RendererAgg):  # e.g. a vector backend: ordinary texts
            self._draw_as_text(renderer)
            return
        if not _drawing(renderer):  # savefig(bbox_inches="tight")'s no-op draw: nothing to blend, nothing to keep
            return
        # the same labels at the same places over the same (static) background: paste the block drawn last time
        key = (renderer.width, renderer.height, renderer.dpi, self.fontsize, tuple(self.texts), self.xs.tobytes(),
               self.ys.tobytes(), self.get_transform().get_affine().get_matrix().tobytes(),
               None if self.colors is None else tuple(self.colors), self.color)
        if self._block is not None and self._block[0] == key:
            renderer.restore_region(self._block[1])
            self.stale = False
            return
        placements = self._placements(renderer.dpi, renderer.height)
        self._blend(renderer, placements)
        boxes = [Bbox.from_bounds(left, renderer.height - top - h, w, h)
                 for (_, _, _, (w, h), _, _), left, top in placements]
        self._block = (key, renderer.copy_from_bbox(Bbox.union(boxes))) if boxes else None
        self.stale = False

    def _blend(self, renderer, placements) -> None:
        """Blend each label's stamp into the Agg canvas at its place."""
        buffer = np.asarray(renderer.buffer_rgba())  # (H, W, 4) uint8, top row first
        height, width = buffer.shape[:2]
        for (pixels, _, _, (w, h), _, _), left, top in placements:
            r0, r1, c0, c1 = max(top, 0), min(top + h, height), max(left, 0), min(left + w, width)
            if r1 <= r0 or c1 <= c0:
                continue
            stamp = pixels[r0 - top:r1 - top, c0 - left:c1 - left]  # (h', w', 4) premultiplied uint8
            region = buffer[r0:r1, c0:c1]
            alpha = stamp[..., 3:].astype(np.float32) / 255.0
            region[..., :3] = (region[..., :3] * (1.0 - alpha) + stamp[..., :3] + 0.5).astype(np.uint8)
            region[..., 3] = np.maximum(region[..., 3], stamp[..., 3])

    def _draw_as_text(self, renderer):
        colors = self.colors or [self.color] * len(self.texts)
        for (_, _, _, _, shown, _), color, x, y in zip(
                (self._stamp(t, renderer.dpi, c) for t, c in zip(self.texts, colors)), colors, self.xs, self.ys):
            label = Text(x, y, shown, color=color, fontsize=self.fontsize, rotation=self.angle, ha=self.ha,
                         va=self.va, transform=self.get_transform())
            label.set_figure(self.figure)
            label.draw(renderer)

    def boxes(self, renderer=None) -> list[tuple[str, Bbox]]:
        """`(text shown, box in display pixels)` per label (its stamp's box, padding included)."""
        if renderer is None:
            renderer = self.figure._get_renderer()
        return [(shown, Bbox.from_bounds(left + _PAD, renderer.height - top - h + _PAD, w - 2 * _PAD, h - 2 * _PAD))
                for (_, _, _, (w, h), shown, _), left, top in self._placements(renderer.dpi, renderer.height)]

    def get_window_extent(self, renderer=None):
        """The box around every label (so `bbox_inches="tight"` keeps them)."""
        boxes = [box for _, box in self.boxes(renderer)]
        return Bbox.union(boxes) if boxes else Bbox.null()


class Ticks:
    """The ticks of one axis: one line of tick marks and one `Labels` of tick labels.

    matplotlib's own ticks are laid out and drawn anew on every draw (about 1 ms per tick
    at a device pixel ratio of 2); these reuse each label's pixels wherever it goes, so an
    axis whose range follows a slider stays cheap to redraw. Labels are 10 pt by default,
    as matplotlib's tick labels.
    """

    def __init__(self, ax, axis: str, fontsize: float = 10, length: float = 3.5):
        if axis not in ("x", "y"):
            raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
        self.ax, self.axis = ax, axis
        fig = ax.figure
        if axis == "x":
            base = ax.get_xaxis_transform()  # (data x, axes y)
            place = offset_copy(base, fig=fig, y=-(length + 2), units="points")
            self.labels = Labels(place, fontsize=fontsize, ha="center", va="top")
            marker = TICKDOWN
        else:
            base = ax.get_yaxis_transform()  # (axes x, data y)
            place = offset_copy(base, fig=fig, x=-(length + 2), units="points")
            self.labels = Labels(place, fontsize=fontsize, ha="right", va="center")
            marker = TICKLEFT
        self.marks = Line2D([], [], linestyle="none", marker=marker, markersize=length, markeredgewidth=0.8,
                            color="black", transform=base, clip_on=False)
        ax.add_line(self.marks)
        ax.add_artist(self.labels)
        self.labels.set_clip_on(False)
        self.values: list[float] = []

    @property
    def artists(self) -> list:
        return [self.marks, self.labels]

    def set(self, lo: float, hi: float, n_bins: int = 5, integer: bool = True, fmt: str = "{:g}") -> list:
        """Ticks at round values inside `[lo, hi]` (at most `n_bins + 1`); returns the values."""
        values = [float(v) for v in MaxNLocator(n_bins, integer=integer).tick_values(lo, hi) if lo <= v <= hi]
        zeros = np.zeros(len(values))
        self.marks.set_data((values, zeros) if self.axis == "x" else (zeros, values))
        texts = [fmt.format(v).replace("-", "\N{MINUS SIGN}") for v in values]  # as matplotlib's tick labels
        self.labels.set_labels(texts, *((values, zeros) if self.axis == "x" else (zeros, values)))
        self.values = values
        return values


class TextLine(Artist):
    """One line of text drawn word by word from cached word pixels (`Labels`' stamps).

    A sentence whose numbers change on every update ("m = 0.960, l = 2.226") would cost a
    full text layout and 60-90 glyphs per draw (about 5 ms at a device pixel ratio of 2);
    drawn as words, only a new word's glyphs are rendered and the rest are copied. Words
    are placed one space apart (no kerning across a space, as in matplotlib's layout).

    Args:
        x, y: the anchor in `transform`'s coordinates; `ha` ("left", "center", "right") and
            `va` ("top", "center", "bottom") align the line to it.
    """

    def __init__(self, x: float, y: float, transform, *, fontsize: float = 10, color="black", ha: str = "center",
                 va: str = "top"):
        super().__init__()
        if ha not in ("left", "center", "right"):
            raise ValueError(f"ha must be left/center/right, got {ha!r}")
        self.set_transform(transform)
        self.x, self.y, self.ha = float(x), float(y), ha
        self.words = Labels(IdentityTransform(), fontsize=fontsize, color=color, ha="left", va=va)
        self._text = ""

    def set_text(self, text: str) -> None:
        self._text = str(text)
        self.stale = True

    def get_text(self) -> str:
        return self._text

    def get_fontsize(self) -> float:
        return self.words.get_fontsize()

    def set_figure(self, fig):
        super().set_figure(fig)
        self.words.set_figure(fig)

    def _layout(self, renderer) -> None:
        """Place the words (display pixels) for the current text and canvas."""
        words = [w for w in self._text.split(" ") if w]
        dpi = renderer.dpi
        colour = self.words.color
        advances = [self.words._stamp(w, dpi, colour)[5] for w in words]
        space = self.words._stamp("x x", dpi, colour)[5] - 2 * self.words._stamp("x", dpi, colour)[5]
        total = sum(advances) + space * max(len(words) - 1, 0)
        x, y = self.get_transform().transform((self.x, self.y))
        left = {"left": x, "center": x - total / 2, "right": x - total}[self.ha]
        starts = left + np.concatenate([[0.0], np.cumsum(np.asarray(advances[:-1]) + space)]) if words else []
        self.words.set_labels(words, starts, np.full(len(words), y))

    def draw(self, renderer):
        if not self.get_visible() or not self._text:
            return
        if not isinstance(renderer, RendererAgg):
            Text(self.x, self.y, self._text, fontsize=self.get_fontsize(), color=self.words.color, ha=self.ha,
                 va=self.words.va, transform=self.get_transform(), figure=self.figure).draw(renderer)
            return
        self._layout(renderer)
        self.words.draw(renderer)
        self.stale = False

    def get_window_extent(self, renderer=None):
        if renderer is None:
            renderer = self.figure._get_renderer()
        self._layout(renderer)
        return self.words.get_window_extent(renderer)
