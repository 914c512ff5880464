"""Explorers for lesson 10: grouped-query attention and the online softmax.

- `gqa_explorer`: which query heads share which key/value head, and what the KV cache of
  a 7B-class model costs with that many key/value heads (`kv_cache_bytes`).
- `online_softmax_explorer`: lesson 01's softmax computed one block at a time, as
  `attn_core.tiled` does: the running maximum `m`, the rescaled running sum `l`, and the
  partial result against the full softmax.

Both draw into one `viz.explorer_figure` built once per explorer (sharp at a device pixel
ratio of 2, shown at its natural size) and update its artists in place: the static parts
are pasted by a `Backdrop`; changing lines of text are `_labels.GlyphLine`s, whose words
and digits are all rendered when the explorer is built, so a change renders no text (issue
12: about 1 ms a word); gqa's heads and links are drawn once per pair of head counts and
pasted (`_SavedRegion`); the online softmax's bars are drawn as one collection
(`_DrawnTogether`). `describe_gqa` and `describe_online_softmax` say in words what a
picture shows (the explorers' text alternative).
"""

from __future__ import annotations

import collections
import functools
import math

import ipywidgets as W
import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

from .._arrays import check_positive_int
from ..kv_cache import kv_cache_bytes
from ..viz import CMAP, explorer_figure
from ._base import Explorer, restrict_options
from ._figure import Backdrop
from ._labels import GlyphLine, Ticks
from ._pixels import _drawing

__all__ = ["gqa_explorer", "online_softmax_explorer"]



# ---------------------------------------------------------------------------------------
# drawing helpers: what both explorers redraw on every update, pasted as saved pixels
# ---------------------------------------------------------------------------------------

class _SavedRegion(Artist):
    """Artists of one Axes that depend only on `key`: drawn once per key, their pixels pasted after that.

    `render` sets `key` (e.g. the head counts) along with the artists. On an Agg canvas the
    region's pixels (`box`, in data coordinates, with whatever static pixels lie under it)
    are saved after the first draw for a key and pasted for it later, and the members skip
    their own draw; up to `max_saved` keys are kept (least recently used dropped). Only when
    no other changing artist is drawn inside `box`. Elsewhere (other canvases) the members
    draw themselves.
    """

    def __init__(self, ax, members, box, max_saved: int = 24):
        super().__init__()
        self.members, self.box, self.max_saved = list(members), box, max_saved
        self.key = None
        self._saved: collections.OrderedDict = collections.OrderedDict()
        self._handled_by = None  # the renderer this region drew its members into, during one draw
        self._own_draws = []
        self.set_zorder(min(m.get_zorder() for m in self.members) - 0.01)  # just before its members
        self.set_transform(ax.transData)
        ax.add_artist(self)
        for member in sorted(self.members, key=lambda m: m.get_zorder()):
            own = member.draw
            self._own_draws.append(own)

            def draw(renderer, own=own):
                if self._handled_by is not renderer:
                    own(renderer)

            member.draw = draw

    def forget_pixels(self) -> None:
        self._saved.clear()

    def draw(self, renderer):
        self._handled_by = None
        if (not self.get_visible() or self.key is None or not isinstance(renderer, RendererAgg)
                or not _drawing(renderer)):
            return
        x0, y0, x1, y1 = self.box
        box = Bbox(self.get_transform().transform([(x0, y0), (x1, y1)]))
        box = Bbox.from_extents(math.floor(box.xmin), math.floor(box.ymin), math.ceil(box.xmax), math.ceil(box.ymax))
        key = (renderer.width, renderer.height, renderer.dpi, self.key)
        region = self._saved.get(key)
        if region is None:
            for own, member in zip(self._own_draws, sorted(self.members, key=lambda m: m.get_zorder())):
                if member.get_visible():
                    own(renderer)
            self._saved[key] = renderer.copy_from_bbox(box)
            while len(self._saved) > self.max_saved:
                self._saved.popitem(last=False)
        else:
            renderer.restore_region(region)
            self._saved.move_to_end(key)
        self._handled_by = renderer
        self.stale = False


class _DrawnTogether(Artist):
    """Rectangles of one Axes (e.g. bars) drawn in one collection call instead of one call each.

    A `Rectangle` costs about 0.07 ms to draw on its own (graphics context, transform,
    path); twelve bars drawn as one `PolyCollection` cost about as much as one. The
    rectangles stay the model: every draw reads their corners, colours and edges, so what
    is drawn is what they hold. On an Agg canvas their own `draw` is skipped; elsewhere
    (vector output) they draw themselves.
    """

    def __init__(self, ax, rectangles):
        super().__init__()
        self.rectangles = list(rectangles)
        first = self.rectangles[0]
        self.collection = PolyCollection([], transform=ax.transData, joinstyle=first.get_joinstyle(),
                                         capstyle=first.get_capstyle())
        self.collection.set_figure(ax.figure)
        self.collection.axes = ax
        self.collection.set_clip_path(first.get_clip_path())
        self.collection.set_clip_box(first.get_clip_box())
        self._handled_by = None
        self.set_zorder(first.get_zorder() - 0.01)
        ax.add_artist(self)
        for rectangle in self.rectangles:
            own = rectangle.draw

            def draw(renderer, own=own):
                if self._handled_by is not renderer:
                    own(renderer)

            rectangle.draw = draw

    def draw(self, renderer):
        self._handled_by = None
        if not self.get_visible() or not isinstance(renderer, RendererAgg) or not _drawing(renderer):
            return
        shown = [r for r in self.rectangles if r.get_visible()]
        corners = [((r.get_x(), r.get_y()), (r.get_x() + r.get_width(), r.get_y()),
                    (r.get_x() + r.get_width(), r.get_y() + r.get_height()), (r.get_x(), r.get_y() + r.get_height()))
                   for r in shown]
        self.collection.set_verts(corners)
        self.collection.set_facecolor([r.get_facecolor() for r in shown])
        self.collection.set_edgecolor([r.get_edgecolor() for r in shown])
        self.collection.set_linewidth([r.get_linewidth() for r in shown])
        self.collection.draw(renderer)
        self._handled_by = renderer
        self.stale = False


# ---------------------------------------------------------------------------------------
# grouped-query attention
# ---------------------------------------------------------------------------------------

HEAD_COUNTS = (1, 2, 4, 8, 16, 32)
"""Query head counts the GQA explorer offers (32: a 7B-class model's)."""
CONTEXTS = (4096, 32768, 131072)
"""Context lengths (tokens) the GQA explorer offers: 4k, 32k, 128k."""
PAPER_MODEL = {"n_layers": 32, "d_head": 128, "bytes_per_value": 2}
"""The 7B-class model the memory is computed for: 32 layers, heads of 128, float16."""


def kv_head_choices(n_heads: int) -> list[int]:
    """The key/value head counts that work with `n_heads` query heads: its divisors.

    >>> kv_head_choices(8)
    [1, 2, 4, 8]
    """
    n_heads = check_positive_int(n_heads, "n_heads")
    return [h for h in range(1, n_heads + 1) if n_heads % h == 0]


def kv_groups(n_heads: int, n_kv_heads: int) -> list[int]:
    """The key/value head each query head reads: `h // (n_heads / n_kv_heads)`.

    The same grouping as `MultiHeadAttention(..., n_kv_heads=)` and PyTorch's
    `enable_gqa=True`, which repeat each key/value head with `repeat_interleave`
    (`[K0, K0, K1, K1]`).

    >>> kv_groups(8, 2)
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    n_heads = check_positive_int(n_heads, "n_heads")
    n_kv_heads = check_positive_int(n_kv_heads, "n_kv_heads")
    if n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads must divide n_heads={n_heads}: one of {kv_head_choices(n_heads)}, "
                         f"got {n_kv_heads}")
    group = n_heads // n_kv_heads
    return [h // group for h in range(n_heads)]


def _gib(n_bytes: int) -> str:
    gib = n_bytes / 2**30
    return f"{gib:.2f} GiB" if gib < 10 else f"{gib:.1f} GiB"


def _attention_kind(n_heads: int, n_kv_heads: int) -> str:
    if n_kv_heads == n_heads:
        return "multi-head (MHA)"
    if n_kv_heads == 1:
        return "multi-query (MQA)"
    return "grouped-query (GQA)"


def gqa_explorer(n_heads: int = 8, n_kv_heads: int = 2, T: int = 4096) -> Explorer:
    """Pick the number of query heads and of key/value heads; see who shares what, and the cache it costs.

    Top: one box per query head and per key/value head, a line from each query head to
    the key/value head it reads, one colour per group. Bottom: the KV cache of one
    sequence of `T` tokens in a 7B-class model (32 layers, heads of 128 values, float16),
    `2 * layers * n_kv_heads * d_head * T * 2 bytes` (`kv_cache_bytes`), for multi-head
    attention (`n_kv_heads = n_heads`) and for the chosen count.

    Controls: `n_heads` (1 to 32), `n_kv_heads` (only divisors of `n_heads`; kept when it
    still divides a new `n_heads`, otherwise the nearest divisor), `T` (4k, 32k, 128k tokens).
    """
    if n_heads not in HEAD_COUNTS:
        raise ValueError(f"n_heads must be one of {list(HEAD_COUNTS)}, got {n_heads!r}")
    if n_kv_heads not in kv_head_choices(n_heads):
        raise ValueError(f"n_kv_heads must divide n_heads={n_heads}: one of {kv_head_choices(n_heads)}, "
                         f"got {n_kv_heads!r}")
    if T not in CONTEXTS:
        raise ValueError(f"T must be one of {list(CONTEXTS)}, got {T!r}")
    controls = {
        "n_heads": W.Dropdown(options=list(HEAD_COUNTS), value=n_heads, description="n_heads"),
        "n_kv_heads": W.Dropdown(options=kv_head_choices(n_heads), value=n_kv_heads, description="n_kv_heads"),
        "T": W.Dropdown(options=[(f"{t // 1024}k tokens", t) for t in CONTEXTS], value=T, description="context"),
    }

    def before_render(changed: str, controls: dict) -> None:
        if changed != "n_heads":
            return
        restrict_options(controls["n_kv_heads"], kv_head_choices(controls["n_heads"].value))

    # one figure, artists updated in place; data units are pixels, y pointing down
    width, height = 640, 330
    fig = explorer_figure((width / 80, height / 80))  # data units stay CSS pixels: 640 x 330
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    cmap = matplotlib.colormaps[CMAP]
    x0, x1 = 110.0, 620.0
    yq, yk, box_h = 50.0, 140.0, 22.0
    bx0, bx1, by_mha, by_this, bar_h = 200.0, 540.0, 215.0, 255.0, 26.0
    static = [
        ax.text(x0 - 10, yq + box_h / 2, "query heads", ha="right", va="center", fontsize=9),
        ax.text(x0 - 10, yk + box_h / 2, "key/value\nheads (cached)", ha="right", va="center", fontsize=9),
        ax.text(bx0 - 10, by_mha + bar_h / 2, "multi-head (MHA)", ha="right", va="center", fontsize=9),
        ax.text(bx0 - 10, by_this + bar_h / 2, "with n_kv_heads", ha="right", va="center", fontsize=9),
        ax.text(width / 2, 192, "KV cache of one sequence: 32 layers, d_head 128, float16", ha="center",
                va="bottom", fontsize=9),
    ]
    q_boxes = PolyCollection([], edgecolor="black", linewidth=0.6)  # plain corner lists: cheaper than Rectangles
    k_boxes = PolyCollection([], edgecolor="black", linewidth=0.6)
    links = LineCollection([], linewidths=1.0)
    for artist in (links, q_boxes, k_boxes):
        ax.add_collection(artist)
    # Only the first and last head are labelled (a picture of 32 labels would be unreadable)
    q_first, q_last, k_first, k_last = (ax.add_artist(GlyphLine(0, 0, ax.transData, fontsize=8, ha="center",
                                                                  va="center")) for _ in range(4))
    title = ax.add_artist(GlyphLine(width / 2, 8, ax.transData, fontsize=10, ha="center", va="top"))
    bar_mha = Rectangle((bx0, by_mha), bx1 - bx0, bar_h, facecolor=cmap(0.25), edgecolor="black", linewidth=0.6)
    bar_this = Rectangle((bx0, by_this), bx1 - bx0, bar_h, facecolor=cmap(0.75), edgecolor="black", linewidth=0.6)
    ax.add_patch(bar_mha)
    ax.add_patch(bar_this)
    value_mha = ax.add_artist(GlyphLine(bx1 + 6, by_mha + bar_h / 2, ax.transData, fontsize=9, ha="left",
                                          va="center"))
    value_this = ax.add_artist(GlyphLine(0, by_this + bar_h / 2, ax.transData, fontsize=9, ha="left", va="center"))
    footer = ax.add_artist(GlyphLine(width / 2, height - 6, ax.transData, fontsize=9, ha="center", va="bottom"))
    # the heads, links and their labels depend on (n_heads, n_kv_heads) only: drawn once per pair, then pasted
    heads = _SavedRegion(ax, [links, q_boxes, k_boxes, q_first, q_last, k_first, k_last],
                         box=(x0 - 8, yq - 16, x1 + 8, yk + box_h + 14))
    dynamic = [heads, q_boxes, k_boxes, links, q_first, q_last, k_first, k_last, title, bar_mha, bar_this,
               value_mha, value_this, footer]
    backdrop = Backdrop(fig, static, dynamic)

    def boxes(n: int, y: float):
        slot = (x1 - x0) / n
        w = min(slot * 0.8, 60.0)
        centres = [x0 + (i + 0.5) * slot for i in range(n)]
        corners = [[(c - w / 2, y), (c + w / 2, y), (c + w / 2, y + box_h), (c - w / 2, y + box_h)] for c in centres]
        return centres, corners

    def words(n_heads, n_kv_heads, T) -> dict:
        """The changing lines of text, by the artist that shows them."""
        mha = kv_cache_bytes(n_kv_heads=n_heads, T=T, **PAPER_MODEL)
        mem = kv_cache_bytes(n_kv_heads=n_kv_heads, T=T, **PAPER_MODEL)
        return {
            title: f"{_attention_kind(n_heads, n_kv_heads)}: {n_heads} query heads share {n_kv_heads} "
                   f"key/value head{'s' if n_kv_heads > 1 else ''}, {n_heads // n_kv_heads} per group",
            value_mha: _gib(mha),
            value_this: f"{_gib(mem)} ({mem / mha:.0%})",
            footer: f"2 x 32 layers x {n_kv_heads} x 128 x {T:,} tokens x 2 bytes = {_gib(mem)}",
        }

    # every word and digit any update shows, rendered now (about 1 ms each) rather than on a first change
    for n in HEAD_COUNTS:
        for line in (q_first, q_last):
            line.prepare([f"q{n - 1}"], fig.dpi)
        for line in (k_first, k_last):
            line.prepare([f"kv{n - 1}"], fig.dpi)
        for n_kv in kv_head_choices(n):
            for t in CONTEXTS:
                for line, text in words(n, n_kv, t).items():
                    line.prepare([text], fig.dpi)

    def set_heads(n_heads, n_kv_heads):
        """The boxes, links and head labels (set only when the pair changes: they depend on nothing else)."""
        heads.key = (n_heads, n_kv_heads)
        groups = kv_groups(n_heads, n_kv_heads)
        qc, qr = boxes(n_heads, yq)
        kc, kr = boxes(n_kv_heads, yk)
        colours = [cmap(0.85 * g / max(n_kv_heads - 1, 1)) for g in range(n_kv_heads)]
        q_boxes.set_verts(qr)
        q_boxes.set_facecolor([colours[g] for g in groups])
        k_boxes.set_verts(kr)
        k_boxes.set_facecolor(colours)
        links.set_segments([[(qc[h], yq + box_h), (kc[g], yk)] for h, g in enumerate(groups)])
        links.set_color([colours[g] for g in groups])
        for text, centres, y, prefix in ((q_first, qc[:1], yq - 7, "q"), (k_first, kc[:1], yk + box_h + 8, "kv")):
            text.set_position((centres[0], y))
            text.set_text(f"{prefix}0")
        for text, centres, y, prefix in ((q_last, qc, yq - 7, "q"), (k_last, kc, yk + box_h + 8, "kv")):
            text.set_visible(len(centres) > 1)
            text.set_position((centres[-1], y))
            text.set_text(f"{prefix}{len(centres) - 1}")

    def render(n_heads, n_kv_heads, T):
        backdrop.ensure("static")
        if heads.key != (n_heads, n_kv_heads):
            set_heads(n_heads, n_kv_heads)
        for line, text in words(n_heads, n_kv_heads, T).items():
            line.set_text(text)
        share = n_kv_heads / n_heads  # the cache with n_kv_heads over multi-head attention's
        bar_this.set_width((bx1 - bx0) * share)
        value_this.set_position((bx0 + (bx1 - bx0) * share + 6, by_this + bar_h / 2))
        return fig

    return Explorer(controls, render, before_render=before_render, describe=describe_gqa,
                    caption="Grouped-query attention: query heads share key/value heads; only those are cached")


def describe_gqa(n_heads: int = 8, n_kv_heads: int = 2, T: int = 4096) -> str:
    """What `gqa_explorer` shows for these values, in two sentences (its text alternative)."""
    mha = kv_cache_bytes(n_kv_heads=n_heads, T=T, **PAPER_MODEL)
    mem = kv_cache_bytes(n_kv_heads=n_kv_heads, T=T, **PAPER_MODEL)
    group = n_heads // n_kv_heads
    return (f"{_attention_kind(n_heads, n_kv_heads)}: {n_heads} query head{'s' if n_heads > 1 else ''} share "
            f"{n_kv_heads} key/value head{'s' if n_kv_heads > 1 else ''}, {group} per group. KV cache of one "
            f"sequence of {T:,} tokens in a 7B-class model: {_gib(mem)}, {mem / mha:.0%} of multi-head "
            f"attention's {_gib(mha)}.")


# ---------------------------------------------------------------------------------------
# online softmax
# ---------------------------------------------------------------------------------------

N_SCORES = 12
BLOCK_SIZES = (1, 2, 3, 4, 5, 6, 12)
"""Block sizes offered; 5 does not divide 12 (a shorter last block, as `tiled_attention` allows)."""


def _score_presets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    random_row = np.round(rng.normal(0.0, 1.5, N_SCORES), 2)
    rising = np.round(np.linspace(-2.0, 3.5, N_SCORES), 2)
    late_peak = random_row.copy()
    late_peak[-2] = 6.0
    masked = random_row.copy()
    masked[:4] = -np.inf  # the first blocks fully masked: m stays -inf there
    return {"random": random_row, "rising": rising, "a large score late": late_peak, "first 4 masked (-inf)": masked}


SCORE_PRESETS = _score_presets()
"""The rows of scores the explorer offers, by name (12 scores each)."""
VALUES = np.round(np.random.default_rng(1).normal(0.0, 1.0, N_SCORES), 2)
"""One value per key (a scalar `v_j`), so the partial attention output is a number."""


def online_softmax_steps(scores, block_size: int) -> list[dict]:
    r"""Every state of the online softmax over `scores (N,)`, block by block (float64 numpy).

    State `k` (after reading `k` blocks; state 0 is the start) holds `m` (running
    maximum), `l` (running sum of `exp(x_j - m)`), `acc` (running `sum_j exp(x_j - m) v_j`
    with `VALUES`), `rescale` (`exp(m_old - m_new)`, the factor the step applied to the old
    `l` and `acc`; 1 at state 0), `read` (how many scores were read) and `estimate`
    (`exp(x_j - m) / l` for the scores read so far, nan for the rest):

    .. math:: m_k = \max(m_{k-1}, \max_{j \in B_k} x_j), \quad
              l_k = l_{k-1} e^{m_{k-1} - m_k} + \sum_{j \in B_k} e^{x_j - m_k}

    An all `-inf` prefix keeps `m = -inf`, `l = 0` (exponents are taken against 0
    there, as in `attn_core.tiled`, so no `nan`).
    """
    x = np.asarray(scores, dtype=np.float64)
    block_size = check_positive_int(block_size, "block_size")
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"scores must be one non-empty row (N,), got shape {x.shape}")
    v = np.resize(VALUES, len(x))  # VALUES, repeated if the row is longer
    m, l, acc, read = -math.inf, 0.0, 0.0, 0
    states = [dict(m=m, l=l, acc=acc, rescale=1.0, read=0, estimate=np.full(len(x), np.nan))]
    for start in range(0, len(x), block_size):
        block = x[start:start + block_size]
        m_new = max(m, float(block.max()))
        m_safe = 0.0 if m_new == -math.inf else m_new
        rescale = math.exp(m - m_safe)
        p = np.exp(block - m_safe)
        l = l * rescale + float(p.sum())
        acc = acc * rescale + float(p @ v[start:start + block_size])
        m, read = m_new, start + len(block)
        estimate = np.full(len(x), np.nan)
        if l > 0:
            estimate[:read] = np.exp(x[:read] - m_safe) / l
        else:
            estimate[:read] = 0.0
        states.append(dict(m=m, l=l, acc=acc, rescale=rescale, read=read, estimate=estimate))
    return states


@functools.lru_cache(maxsize=len(SCORE_PRESETS) * len(BLOCK_SIZES))
def _preset_steps(scores: str, block_size: int) -> tuple[dict, ...]:
    """`online_softmax_steps` of the preset row `scores`, computed once per block size (read, never changed)."""
    return tuple(online_softmax_steps(SCORE_PRESETS[scores], block_size))


def _fmt(x: float) -> str:
    return "-inf" if x == -math.inf else f"{x:.3f}"


def online_softmax_explorer(scores: str = "random", block_size: int = 4, blocks_read: int = 1) -> Explorer:
    """Step through lesson 01's softmax one block at a time, as tiled attention computes it.

    Top: the 12 scores, blocks separated by dotted lines; blocks already read in blue, the
    block just read in orange, the rest in grey; the dashed line is the running maximum
    `m` (masked `-inf` scores are drawn as crosses at the bottom). Bottom: the estimate
    `exp(x_j - m) / l` of the scores read so far (bars) against the full softmax (black
    ticks). The text gives `m`, `l`, the factor `exp(m_old - m_new)` the last step applied
    to the old sum, and the partial attention output `acc / l` (with one scalar value per
    key) against the final one. After the last block the estimate *is* the softmax.

    Controls: `scores` (a preset row: random, rising, a large score late, the first four
    masked), `block_size` (1..12; need not divide 12), `blocks_read` (0 .. the number of
    blocks; kept within range when the block size changes).
    """
    if scores not in SCORE_PRESETS:
        raise ValueError(f"scores must be one of {list(SCORE_PRESETS)}, got {scores!r}")
    if block_size not in BLOCK_SIZES:
        raise ValueError(f"block_size must be one of {list(BLOCK_SIZES)}, got {block_size!r}")
    n_blocks = -(-N_SCORES // block_size)
    if isinstance(blocks_read, bool) or not isinstance(blocks_read, int) or not 0 <= blocks_read <= n_blocks:
        raise ValueError(f"blocks_read must be a whole number in 0..{n_blocks} (block_size={block_size}), "
                         f"got {blocks_read!r}")
    controls = {
        "scores": W.Dropdown(options=list(SCORE_PRESETS), value=scores, description="scores"),
        "block_size": W.Dropdown(options=list(BLOCK_SIZES), value=block_size, description="block size"),
        "blocks_read": W.IntSlider(value=blocks_read, min=0, max=n_blocks, step=1, description="blocks read",
                                   continuous_update=False, style={"description_width": "initial"}),
    }

    def before_render(changed: str, controls: dict) -> None:
        if changed != "block_size":
            return
        slider = controls["blocks_read"]
        n = -(-N_SCORES // controls["block_size"].value)
        value = min(slider.value, n)
        if n < slider.max:  # shrink: value first, so ipywidgets never sees value > max
            slider.value = value
            slider.max = n
        else:
            slider.max = n
            slider.value = value

    cmap = matplotlib.colormaps[CMAP]
    colour_read, colour_now, colour_unread = cmap(0.3), "#e66101", "#d4d4d4"
    fig = explorer_figure((7.6, 4.9))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.8, bottom=0.1, hspace=0.45)
    ax_s, ax_p = fig.subplots(2, 1, sharex=True)
    j = np.arange(N_SCORES)
    bars_s = ax_s.bar(j, np.zeros(N_SCORES), width=0.75, color=colour_unread, edgecolor="black", linewidth=0.4)
    (max_line,) = ax_s.plot([-0.5, N_SCORES - 0.5], [0, 0], ls="--", color="black", lw=1.0)
    (masked_marks,) = ax_s.plot([], [], ls="none", marker="x", color="black", ms=6)
    # block boundaries: one collection of dotted vertical lines per panel (one draw call, not one per line)
    separators = [ax.add_collection(LineCollection([], colors="grey", linewidths=0.8, linestyles=":",
                                                   transform=ax.get_xaxis_transform()), autolim=False)
                  for ax in (ax_s, ax_p)]
    ax_s.set_ylabel("score x_j", labelpad=30)  # room for our own y tick labels
    ax_s.set_xlim(-0.5, N_SCORES - 0.5)
    zero = ax_s.axhline(0, color="black", lw=0.5)
    bars_p = ax_p.bar(j, np.zeros(N_SCORES), width=0.75, color=colour_read, edgecolor="black", linewidth=0.4)
    (full_marks,) = ax_p.plot(j, np.zeros(N_SCORES), ls="none", marker="_", ms=16, mew=2, color="black",
                              label="full softmax")
    ax_p.set_ylabel("exp(x_j - m) / l", labelpad=30)
    ax_p.set_xlabel("key j")
    ax_p.set_xticks(j)
    legend = ax_p.legend(loc="upper left", fontsize=8, frameon=False)
    # the two lines of numbers change on every update: drawn word by word from cached word pixels
    text_top = fig.add_artist(GlyphLine(0.5, 0.975, fig.transFigure, fontsize=10, ha="center", va="top"))
    text_mid = fig.add_artist(GlyphLine(0.5, 0.905, fig.transFigure, fontsize=9, ha="center", va="top"))
    # lines the bars touch are drawn over them on every update, as a full draw layers them
    floor = ax_p.axhline(0, color="black", lw=matplotlib.rcParams["axes.linewidth"])  # the bottom panel's x axis
    # y ticks of our own (cached labels): the y-ranges change with the row of scores, the pasted frames do not
    ax_s.set_yticks([])
    ax_p.set_yticks([])
    y_ticks = [Ticks(ax, "y", fontsize=10) for ax in (ax_s, ax_p)]  # 10 pt: as the x tick labels
    bar_groups = [_DrawnTogether(ax_s, bars_s), _DrawnTogether(ax_p, bars_p)]
    dynamic = [*bar_groups, *bars_s, *bars_p, max_line, masked_marks, *separators, full_marks, text_top, text_mid,
               zero, floor, *(artist for ticks in y_ticks for artist in ticks.artists)]
    backdrop = Backdrop(fig, [ax_s, ax_p, legend], dynamic)

    def limits(scores: str):
        """Fixed y-ranges per row of scores, so the axes (drawn once) fit every step and block size."""
        x = SCORE_PRESETS[scores]
        finite = x[np.isfinite(x)]
        low, high = min(0.0, float(finite.min())) - 0.5, float(finite.max()) + 0.8
        top = max(float(np.nanmax(state["estimate"])) for b in BLOCK_SIZES for state in online_softmax_steps(x, b)[1:])
        return (low, high), (0.0, 1.08 * top)

    y_ranges = {name: limits(name) for name in SCORE_PRESETS}
    for ylim_s, ylim_p in y_ranges.values():  # every row's tick labels rendered now, not on its first showing
        for ticks, ylim, integer in ((y_ticks[0], ylim_s, True), (y_ticks[1], ylim_p, False)):
            ticks.set(*ylim, n_bins=4, integer=integer)
            ticks.labels.prepare(ticks.labels.texts, fig.dpi)

    def set_limits(scores: str) -> None:
        ylim_s, ylim_p = y_ranges[scores]
        if ax_s.get_ylim() != ylim_s:  # set only on a new row of scores: a limit change costs a re-layout
            ax_s.set_ylim(*ylim_s)
            ax_p.set_ylim(*ylim_p)
            y_ticks[0].set(*ylim_s, n_bins=4, integer=True)
            y_ticks[1].set(*ylim_p, n_bins=4, integer=False)

    def render(scores, block_size, blocks_read):
        set_limits(scores)
        backdrop.ensure("frames")  # the same for every row of scores: ticks and zero line are drawn each time
        x = SCORE_PRESETS[scores]
        states = _preset_steps(scores, block_size)
        n_blocks = len(states) - 1
        k = min(blocks_read, n_blocks)
        state = states[k]
        read_before = states[k - 1]["read"] if k > 0 else 0
        finite = np.isfinite(x)
        for i, bar in enumerate(bars_s):
            bar.set_height(x[i] if finite[i] else 0.0)
            bar.set_facecolor(colour_now if read_before <= i < state["read"] else
                              colour_read if i < read_before else colour_unread)
        masked_marks.set_data(j[~finite], np.full(int((~finite).sum()), ax_s.get_ylim()[0] + 0.25))
        m = state["m"]
        max_line.set_ydata([m, m] if np.isfinite(m) else [np.nan, np.nan])
        bounds = range(block_size, N_SCORES, block_size)  # the same boundaries in both panels
        for lines in separators:
            lines.set_segments([[(b - 0.5, 0.0), (b - 0.5, 1.0)] for b in bounds])  # (x data, y axes 0..1)
        full = states[-1]["estimate"]
        full_marks.set_ydata(full)
        estimate = np.nan_to_num(state["estimate"], nan=0.0)
        for i, bar in enumerate(bars_p):
            bar.set_height(estimate[i])
            bar.set_facecolor(colour_now if read_before <= i < state["read"] else colour_read)
        top, mid = _online_softmax_lines(states, k, block_size)
        text_top.set_text(top)
        text_mid.set_text(mid)
        return fig

    # every word and digit any step shows, rendered now (about 1 ms each) rather than on a first change
    for name in SCORE_PRESETS:
        for b in BLOCK_SIZES:
            states = _preset_steps(name, b)
            for k in range(len(states)):
                top, mid = _online_softmax_lines(states, k, b)
                text_top.prepare([top], fig.dpi)
                text_mid.prepare([mid], fig.dpi)

    return Explorer(controls, render, before_render=before_render, describe=describe_online_softmax,
                    caption="Online softmax: the maximum and the sum, one block of scores at a time")


def _online_softmax_lines(states, k: int, block_size: int) -> tuple[str, str]:
    """The two lines of numbers `online_softmax_explorer` shows after `k` blocks."""
    n_blocks = len(states) - 1
    state = states[k]
    out_final = states[-1]["acc"] / states[-1]["l"]
    if k == 0:
        top = (f"block size {block_size}: {n_blocks} block{'s' if n_blocks > 1 else ''}; "
               "nothing read yet (m = -inf, l = 0)")
        mid = f"the full softmax needs every score; final output sum_j w_j v_j = {out_final:.3f}"
    else:
        top = (f"after block {k} of {n_blocks} ({state['read']} of {N_SCORES} scores read): "
               f"m = {_fmt(state['m'])}, l = {state['l']:.3f}")
        partial = state["acc"] / state["l"] if state["l"] > 0 else 0.0
        done = "  = the softmax" if k == n_blocks else ""
        mid = (f"old l and acc rescaled by exp(m_old - m_new) = {state['rescale']:.3f}; partial output "
               f"acc / l = {partial:.3f} (final {out_final:.3f}){done}")
    return top, mid


def describe_online_softmax(scores: str = "random", block_size: int = 4, blocks_read: int = 1) -> str:
    """What `online_softmax_explorer` shows for these values, in two sentences (its text alternative)."""
    states = _preset_steps(scores, block_size)
    n_blocks = len(states) - 1
    k = min(blocks_read, n_blocks)
    state, final = states[k], states[-1]
    out_final = final["acc"] / final["l"]
    if k == 0:
        return (f"Scores '{scores}' in {n_blocks} block{'s' if n_blocks > 1 else ''} of {block_size}; nothing read "
                f"yet (m = -inf, l = 0). The full softmax gives the output {out_final:.3f}.")
    partial = state["acc"] / state["l"] if state["l"] > 0 else 0.0
    where = "all of them: the estimate is the softmax" if k == n_blocks else f"{state['read']} of {N_SCORES}"
    return (f"Scores '{scores}', block {k} of {n_blocks} read (block size {block_size}; {where}): running maximum "
            f"m = {_fmt(state['m'])}, running sum l = {state['l']:.3f}, old sum rescaled by {state['rescale']:.3f}. "
            f"Partial output {partial:.3f}, final {out_final:.3f}.")
