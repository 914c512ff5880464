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
import re

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.colors import to_rgba
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.lines import Line2D
from matplotlib.markers import TICKDOWN, TICKLEFT
from matplotlib.ticker import MaxNLocator
from matplotlib.text import Text
from matplotlib.transforms import Bbox, IdentityTransform, offset_copy

from ._pixels import _drawing

__all__ = ["Labels", "Ticks", "TextLine", "GlyphLine"]

_PAD = 3  # pixels around a stamp, for glyphs that reach past their advance
_STAMPS: dict = {}  # (text, fontsize, fontweight, angle, alignment, colour, dpi, max_width) -> stamp; see Labels._stamp
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
        fontweight: "normal" or "bold" (any matplotlib font weight).
        color: the default colour; `set_labels(colors=...)` may give one per label.
        max_width: in points, optional: a longer label is cut and ends in "...".
    """

    def __init__(self, transform, *, fontsize: float = 9, color="black", angle: int = 0, ha: str = "left",
                 va: str = "center", max_width: float | None = None, fontweight="normal"):
        super().__init__()
        if angle not in (0, 90):
            raise ValueError(f"angle must be 0 or 90, got {angle!r}")
        if ha not in ("left", "center", "right") or va not in ("top", "center", "bottom"):
            raise ValueError(f"ha must be left/center/right and va top/center/bottom, got {ha!r}, {va!r}")
        self.set_transform(transform)
        self.fontsize, self.angle, self.ha, self.va, self.max_width = float(fontsize), angle, ha, va, max_width
        self.fontweight = fontweight
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

    def prepare(self, texts, dpi: float, colors=None) -> None:
        """Render the stamps of `texts` now, at `dpi` (in `colors`, default the labels' colour), so that
        showing them later renders no text (e.g. every word an explorer can show, when it is built)."""
        for color in [self.color] if colors is None else [to_rgba(c) for c in colors]:
            for text in texts:
                self._stamp(str(text), dpi, color)

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
        key = (text, self.fontsize, self.fontweight, self.angle, self.ha, self.va, color, dpi, self.max_width)
        stamp = _STAMPS.get(key)
        if stamp is not None:
            return stamp
        prop = FontProperties(size=self.fontsize, weight=self.fontweight)
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
            label = Text(x, y, shown, color=color, fontsize=self.fontsize, fontweight=self.fontweight,
                         rotation=self.angle, ha=self.ha, va=self.va, transform=self.get_transform())
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
        values, texts = self._ticks(lo, hi, n_bins, integer, fmt)
        zeros = np.zeros(len(values))
        self.marks.set_data((values, zeros) if self.axis == "x" else (zeros, values))
        self.labels.set_labels(texts, *((values, zeros) if self.axis == "x" else (zeros, values)))
        self.values = values
        return values

    def prepare(self, ranges, dpi: float, n_bins: int = 5, integer: bool = True, fmt: str = "{:g}") -> None:
        """Render now, at `dpi`, the labels `set(lo, hi, ...)` would show for each `(lo, hi)` of `ranges`."""
        for lo, hi in ranges:
            self.labels.prepare(self._ticks(lo, hi, n_bins, integer, fmt)[1], dpi)

    @staticmethod
    def _ticks(lo: float, hi: float, n_bins: int, integer: bool, fmt: str) -> tuple[list, list]:
        values = [float(v) for v in MaxNLocator(n_bins, integer=integer).tick_values(lo, hi) if lo <= v <= hi]
        return values, [fmt.format(v).replace("-", "\N{MINUS SIGN}") for v in values]  # as matplotlib's tick labels


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
        self.x, self.y, self.ha, self.va = float(x), float(y), ha, va
        self.words = Labels(IdentityTransform(), fontsize=fontsize, color=color, ha="left", va=va)
        self._text = ""

    def set_text(self, text: str) -> None:
        self._text = str(text)
        self.stale = True

    def get_text(self) -> str:
        return self._text

    def get_position(self) -> tuple[float, float]:
        """The anchor `(x, y)`, in the line's transform's coordinates (as `Text.get_position`)."""
        return self.x, self.y

    def set_position(self, xy) -> None:
        """Move the anchor to `xy`, in the line's transform's coordinates (as `Text.set_position`)."""
        self.x, self.y = (float(v) for v in xy)
        self.stale = True

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
                 va=self.va, transform=self.get_transform(), figure=self.figure).draw(renderer)
            return
        self._layout(renderer)
        self.words.draw(renderer)
        self.stale = False

    def get_window_extent(self, renderer=None):
        if renderer is None:
            renderer = self.figure._get_renderer()
        self._layout(renderer)
        return self.words.get_window_extent(renderer)


# --------------------------------------------------------------------------- numbers pasted glyph by glyph

_PIECES = re.compile(r"\d|[^\d ]+| ")  # one digit, a run of other characters, or a space
_ADVANCES: dict = {}  # (character, fontsize, dpi) -> its advance in pixels, as matplotlib's layout places it
_LP: dict = {}  # (fontsize, dpi) -> (height, descent) of "lp"
_BASELINES: dict = {}  # (fontsize, dpi, lines) -> baselines below the top, see _baselines


def _advance(char: str, fontsize: float, dpi: float) -> float:
    """How far matplotlib's Agg layout moves the pen after `char` (its hinted advance), in pixels."""
    key = (char, fontsize, dpi)
    if key not in _ADVANCES:
        font = get_font(findfont(FontProperties(size=fontsize)))
        font.clear()
        font.set_size(fontsize, dpi)
        if len(_ADVANCES) > 4096:
            _ADVANCES.clear()
        _ADVANCES[key] = font.load_char(ord(char), flags=get_hinting_flag()).horiAdvance / 64
    return _ADVANCES[key]


def _lp_metrics(fontsize: float, dpi: float) -> tuple[float, float]:
    """Height and descent of "lp" in pixels: `Labels`' stamps put their top that far above the baseline
    (`height - descent`)."""
    key = (fontsize, dpi)
    if key not in _LP:
        _, h, d = RendererAgg(1, 1, dpi).get_text_width_height_descent("lp", FontProperties(size=fontsize), False)
        _LP[key] = (h, d)
    return _LP[key]


def _baselines(fig, renderer, fontsize: float, n_lines: int) -> list[float]:
    """How far below a `va="top"` anchor matplotlib puts the baseline of each of `n_lines` lines, in pixels
    (for lines no taller than "lp"; several lines also get the font's line gap)."""
    key = (fontsize, renderer.dpi, n_lines)
    if key not in _BASELINES:
        probe = Text(0, 0, "\n".join(["lp"] * n_lines), fontsize=fontsize, va="top", figure=fig)
        _BASELINES[key] = [-y for _, _, (_, y) in probe._get_layout(renderer)[1]]
    return _BASELINES[key]


class _PieceLabels(Labels):
    """`Labels` whose pieces make up words: `boxes()` gives one box per word (its pieces' union).

    `joins[i]` is True when piece `i` continues the word of piece `i - 1` (no space between).
    """

    joins: list = []
    _MAX_BLOCKS = 64  # a title's block is about 70 KB

    def draw(self, renderer):
        """The pieces' stamps added up into one strip and blended in once (a blend per piece costs ~0.05 ms);
        the block kept per (texts, places) and pasted when they come back, over the same plain background."""
        if (not self.get_visible() or not self.texts or not isinstance(renderer, RendererAgg)
                or not _drawing(renderer)):
            return super().draw(renderer)
        key = (renderer.width, renderer.height, renderer.dpi, self.fontsize, tuple(self.texts), self.xs.tobytes(),
               self.ys.tobytes(), self.get_transform().get_affine().get_matrix().tobytes(),
               None if self.colors is None else tuple(self.colors), self.color)
        blocks = self.__dict__.setdefault("_blocks", {})
        if key in blocks:
            renderer.restore_region(blocks[key])
            self.stale = False
            return
        placements = self._placements(renderer.dpi, renderer.height)
        if placements:
            l0 = min(left for _, left, _ in placements)
            t0 = min(top for _, _, top in placements)
            r1 = max(left + stamp[3][0] for stamp, left, _ in placements)
            b1 = max(top + stamp[3][1] for stamp, _, top in placements)
            strip = np.zeros((b1 - t0, r1 - l0, 4), np.uint16)  # premultiplied: stamps (transparent margins) add up
            for (pixels, _, _, (w, h), _, _), left, top in placements:
                strip[top - t0:top - t0 + h, left - l0:left - l0 + w] += pixels
            np.minimum(strip, 255, out=strip)
            buffer = np.asarray(renderer.buffer_rgba())  # (H, W, 4) uint8, top row first
            r0, c0 = max(t0, 0), max(l0, 0)
            strip = strip[r0 - t0:min(b1, buffer.shape[0]) - t0, c0 - l0:min(r1, buffer.shape[1]) - l0]
            region = buffer[r0:r0 + strip.shape[0], c0:c0 + strip.shape[1]]
            # premultiplied "over", in integers: out = region (255 - alpha) / 255 + strip
            region[..., :3] = (region[..., :3] * (255 - strip[..., 3:]) + 127) // 255 + strip[..., :3]
            np.maximum(region[..., 3], strip[..., 3], out=region[..., 3])
            if len(blocks) >= self._MAX_BLOCKS:
                blocks.clear()
            blocks[key] = renderer.copy_from_bbox(Bbox.from_extents(l0, renderer.height - b1, r1, renderer.height - t0))
        self.stale = False

    def boxes(self, renderer=None):
        words = []
        for (text, box), join in zip(super().boxes(renderer), self.joins):
            if join and words:
                words[-1] = (words[-1][0] + text, Bbox.union([words[-1][1], box]))
            else:
                words.append((text, box))
        return words


class GlyphLine(TextLine):
    """A `TextLine` whose numbers are pasted digit by digit: a new number costs no text layout.

    `TextLine` keeps the pixels of each word; a label whose number changes on every
    update ("d_model=40,", "period 628.3") would still lay out and render a new word each
    time (about 1 ms). Here every digit is a piece of its own and every other run of
    characters another, each drawn from `Labels`' stamps at the pen position matplotlib's
    layout gives it (the sum of the hinted advances before it; no kerning, which these
    labels do not need), so after the first few updates nothing is rendered; `prepare`
    renders every piece a line can hold up front. Lines split at a newline are spaced as
    matplotlib spaces them (with the font's line gap); `va` may also be "baseline" (the first
    line's baseline on the anchor, as for `Text`). The finished line is kept as one
    block per text and place and pasted when it comes back: only over a background that
    does not change under it.
    """

    def __init__(self, *args, va: str = "top", **kwargs):
        if va not in ("top", "center", "bottom", "baseline"):
            raise ValueError(f"va must be top/center/bottom/baseline, got {va!r}")
        super().__init__(*args, **kwargs)
        self.va = va  # the whole line's ("baseline": the first line's); each piece's stamp is placed by its top
        self.words = _PieceLabels(self.words.get_transform(), fontsize=self.words.fontsize, color=self.words.color,
                                  ha="left", va="top")

    def forget_pixels(self) -> None:
        """Drop the saved blocks (the next draw composes every line again)."""
        self.words.__dict__.pop("_blocks", None)

    def _layout(self, renderer) -> None:
        dpi, size = renderer.dpi, self.get_fontsize()
        lp_h, lp_d = _lp_metrics(size, dpi)
        x, y = self.get_transform().transform((self.x, self.y))  # display pixels
        lines = self._text.split("\n")
        baselines = _baselines(self.figure, renderer, size, len(lines))
        height = baselines[-1] + lp_d  # of the text's box, from the first line's top to the last line's descent
        y += {"top": 0.0, "center": height / 2, "bottom": height, "baseline": baselines[0]}[self.va]  # the box's top (y up)
        pieces, xs, ys, joins = [], [], [], []
        for line, baseline in zip(lines, baselines):
            top = y - baseline + (lp_h - lp_d)  # the top of a stamp (va="top") is lp's ascent above its baseline
            starts, pen = [], 0.0
            for piece in _PIECES.findall(line):
                starts.append(pen)
                pen += sum(_advance(c, size, dpi) for c in piece)
            left = {"left": x, "center": x - pen / 2, "right": x - pen}[self.ha]
            join = False
            for piece, start in zip(_PIECES.findall(line), starts):
                if piece != " ":
                    pieces.append(piece)
                    xs.append(left + start)
                    ys.append(top)
                    joins.append(join)
                join = piece != " "
        self.words.set_labels(pieces, xs, ys)
        self.words.joins = joins

    def prepare(self, texts, dpi: float) -> None:
        """Render the pieces of `texts` now, at `dpi`, so that showing any of them later renders no text
        (e.g. every word a title can hold, when the explorer is built)."""
        for text in (line for text in texts for line in str(text).split("\n")):
            for piece in _PIECES.findall(text):
                if piece.strip():  # the piece, and each of its characters (a "," or "." between digits is a piece)
                    for each in {piece, *piece}:
                        self.words._stamp(each, dpi, self.words.color)
                        _advance(each[0], self.get_fontsize(), dpi)
