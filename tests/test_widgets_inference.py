"""Lesson 10's explorers: what the pictures and texts state is what the library computes,
and no control ever offers an invalid combination."""

import itertools
import math

import numpy as np
import pytest
import torch

from attn_core import MultiHeadAttention, kv_cache_bytes, online_softmax, softmax
from attn_core.widgets import EXPLORERS, Explorer
from attn_core.widgets.inference import (
    BLOCK_SIZES,
    CONTEXTS,
    HEAD_COUNTS,
    N_SCORES,
    SCORE_PRESETS,
    VALUES,
    gqa_explorer,
    kv_groups,
    kv_head_choices,
    online_softmax_explorer,
    online_softmax_steps,
)

from widget_util import drawn_label_boxes


def texts(ex) -> str:
    fig = ex.figure()
    from matplotlib.text import Text

    from attn_core.widgets._labels import TextLine

    found = [t.get_text() for t in [*fig.texts, *fig.artists] if isinstance(t, (Text, TextLine)) and t.get_visible()]
    for ax in fig.axes:
        found += [t.get_text() for t in [*ax.texts, *ax.artists] if isinstance(t, (Text, TextLine)) and t.get_visible()]
    return " | ".join(found)


# ------------------------------------------------------------------ grouped-query attention

def test_gqa_registered_with_named_controls():
    assert EXPLORERS["gqa_explorer"] is gqa_explorer
    ex = gqa_explorer()
    assert isinstance(ex, Explorer)
    assert ex.values() == {"n_heads": 8, "n_kv_heads": 2, "T": 4096}


@pytest.mark.parametrize("n_heads", HEAD_COUNTS)
def test_kv_choices_are_the_divisors(n_heads):
    assert kv_head_choices(n_heads) == [h for h in range(1, n_heads + 1) if n_heads % h == 0]


@pytest.mark.parametrize("n_heads, n_kv_heads", [(8, 2), (8, 1), (8, 8), (4, 2), (32, 8)])
def test_groups_are_the_ones_multihead_attention_uses(n_heads, n_kv_heads):
    """kv_groups(h) is the key/value head that query head h reads in MultiHeadAttention."""
    d_head = 2
    mha = MultiHeadAttention(n_heads * d_head, n_heads, n_kv_heads=n_kv_heads, bias=False)
    with torch.no_grad():
        mha.w_q.weight.zero_()  # all scores 0: each query head averages the values of its key/value head
        mha.w_o.weight.copy_(torch.eye(n_heads * d_head))
        mha.w_v.weight.copy_(torch.eye(n_kv_heads * d_head, n_heads * d_head))  # v = the first inputs
        x = torch.zeros(1, 1, n_heads * d_head)
        x[0, 0, : n_kv_heads * d_head] = torch.arange(n_kv_heads).repeat_interleave(d_head).float() + 1
        out, _ = mha(x)  # (1, 1, d_model): head h's output = value of its key/value head
    read = out[0, 0].view(n_heads, d_head)[:, 0] - 1  # (H,) the kv head index each query head read
    assert read.long().tolist() == kv_groups(n_heads, n_kv_heads)


def test_kv_groups_refuses_a_non_divisor():
    with pytest.raises(ValueError, match="n_kv_heads must divide n_heads=8"):
        kv_groups(8, 3)


def drawn_gqa(ex):
    """(query boxes, kv boxes, links as (query centre x, kv centre x), link colours) as drawn now."""
    ax = ex.figure().axes[0]
    links, q_boxes, k_boxes = ax.collections
    q = [(p.vertices[:, 0].min() + p.vertices[:, 0].max()) / 2 for p in q_boxes.get_paths()]
    k = [(p.vertices[:, 0].min() + p.vertices[:, 0].max()) / 2 for p in k_boxes.get_paths()]
    return q, k, links.get_segments(), q_boxes.get_facecolors(), k_boxes.get_facecolors()


@pytest.mark.parametrize("n_heads", HEAD_COUNTS)
def test_gqa_picture_shows_every_head_and_who_reads_what(n_heads):
    ex = gqa_explorer(n_heads=n_heads, n_kv_heads=1)
    for n_kv_heads in kv_head_choices(n_heads):
        ex.controls["n_kv_heads"].value = n_kv_heads
        q, k, segments, q_colours, k_colours = drawn_gqa(ex)
        assert len(q) == n_heads and len(k) == n_kv_heads and len(segments) == n_heads
        groups = kv_groups(n_heads, n_kv_heads)
        for h, seg in enumerate(segments):  # each link runs from query head h to the kv head it reads
            assert seg[0][0] == pytest.approx(q[h]) and seg[1][0] == pytest.approx(k[groups[h]])
            assert np.allclose(q_colours[h], k_colours[groups[h]])  # a query head wears its group's colour


@pytest.mark.parametrize("T", CONTEXTS)
def test_gqa_memory_text_is_kv_cache_bytes(T):
    ex = gqa_explorer(n_heads=32, n_kv_heads=8, T=T)
    mem = kv_cache_bytes(n_layers=32, n_kv_heads=8, d_head=128, T=T, bytes_per_value=2)
    mha = kv_cache_bytes(n_layers=32, n_kv_heads=32, d_head=128, T=T, bytes_per_value=2)
    shown = texts(ex)
    assert f"{mem / 2**30:.2f} GiB (25%)" in shown or f"{mem / 2**30:.1f} GiB (25%)" in shown
    assert f"{mha / 2**30:.2f} GiB" in shown or f"{mha / 2**30:.1f} GiB" in shown
    assert f"{T:,} tokens" in shown
    assert "32 query heads share 8 key/value heads, 4 per group" in shown


def test_gqa_paper_figures():
    """The 7B-class figures the lesson quotes: MHA 2 GiB at 4k, 64 GiB at 128k; 8 kv heads a quarter."""
    ex = gqa_explorer(n_heads=32, n_kv_heads=32, T=4096)
    assert "2.00 GiB" in texts(ex) and "multi-head (MHA)" in texts(ex)
    ex.controls["T"].value = 131072
    assert "64.0 GiB (100%)" in texts(ex)
    ex.controls["n_kv_heads"].value = 8
    assert "16.0 GiB (25%)" in texts(ex)
    ex.controls["n_kv_heads"].value = 1
    assert "multi-query (MQA)" in texts(ex) and "2.00 GiB (3%)" in texts(ex)


def test_gqa_bar_lengths_are_proportional_to_memory():
    ex = gqa_explorer(n_heads=16, n_kv_heads=4)
    bar_mha, bar_this = ex.figure().axes[0].patches
    assert bar_this.get_width() / bar_mha.get_width() == pytest.approx(4 / 16)


def test_gqa_only_offers_divisors_and_keeps_or_moves_to_the_nearest():
    ex = gqa_explorer(n_heads=8, n_kv_heads=4)
    for n_heads in itertools.chain(HEAD_COUNTS, reversed(HEAD_COUNTS)):
        ex.controls["n_heads"].value = n_heads
        assert list(ex.controls["n_kv_heads"].options) == kv_head_choices(n_heads)
        assert ex.controls["n_kv_heads"].value in kv_head_choices(n_heads)
    ex = gqa_explorer(n_heads=8, n_kv_heads=4)
    ex.controls["n_heads"].value = 32
    assert ex.controls["n_kv_heads"].value == 4  # still a divisor: kept
    ex.controls["n_heads"].value = 2
    assert ex.controls["n_kv_heads"].value == 2  # 4 does not divide 2: the nearest divisor


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_heads=8, n_kv_heads=3), "n_kv_heads must divide n_heads=8"),
    (dict(n_heads=6), "n_heads must be one of"),
    (dict(T=1000), "T must be one of"),
])
def test_gqa_refuses_invalid_defaults(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gqa_explorer(**kwargs)


# ------------------------------------------------------------------ online softmax

def test_online_softmax_registered_with_named_controls():
    assert EXPLORERS["online_softmax_explorer"] is online_softmax_explorer
    ex = online_softmax_explorer()
    assert ex.values() == {"scores": "random", "block_size": 4, "blocks_read": 1}


@pytest.mark.parametrize("preset", SCORE_PRESETS)
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_steps_follow_the_recurrence_and_end_at_the_softmax(preset, block_size):
    x = SCORE_PRESETS[preset]
    states = online_softmax_steps(x, block_size)
    assert len(states) == 1 + math.ceil(N_SCORES / block_size)
    assert states[0]["m"] == -math.inf and states[0]["l"] == 0.0
    for state in states[1:]:
        seen = x[: state["read"]]
        assert state["m"] == seen.max()  # the running maximum of what was read
        m_safe = 0.0 if state["m"] == -math.inf else state["m"]
        assert state["l"] == pytest.approx(np.exp(seen - m_safe).sum())  # the rescaled running sum
        assert not np.isnan(state["estimate"][: state["read"]]).any()  # no nan, even after a -inf block
    final = states[-1]
    np.testing.assert_allclose(final["estimate"], softmax(x), atol=1e-12)
    np.testing.assert_allclose(final["estimate"], online_softmax(x, block_size=block_size), atol=1e-12)
    assert final["acc"] / final["l"] == pytest.approx(float(softmax(x) @ VALUES))


def test_rescale_factor_is_exp_of_old_minus_new_max():
    x = SCORE_PRESETS["rising"]  # the maximum rises with every block
    states = online_softmax_steps(x, 3)
    for before, after in zip(states[1:], states[2:]):
        assert after["m"] > before["m"]
        assert after["rescale"] == pytest.approx(math.exp(before["m"] - after["m"]))


def drawn_softmax(ex):
    fig = ex.figure()
    ax_s, ax_p = fig.axes
    return ([b.get_height() for b in ax_s.patches], [b.get_height() for b in ax_p.patches],
            next(line for line in ax_p.lines if line.get_label() == "full softmax").get_ydata(), ax_s.lines[0].get_ydata())


@pytest.mark.parametrize("preset", SCORE_PRESETS)
def test_picture_shows_the_state_of_each_step(preset):
    ex = online_softmax_explorer(scores=preset, block_size=5, blocks_read=0)
    states = online_softmax_steps(SCORE_PRESETS[preset], 5)
    for k in range(len(states)):
        ex.controls["blocks_read"].value = k
        scores, estimate, full, max_line = drawn_softmax(ex)
        x = SCORE_PRESETS[preset]
        assert scores == pytest.approx(np.where(np.isfinite(x), x, 0.0).tolist())
        np.testing.assert_allclose(full, softmax(x), atol=1e-12)  # the black ticks: the full softmax
        np.testing.assert_allclose(estimate, np.nan_to_num(states[k]["estimate"]), atol=1e-12)
        m = states[k]["m"]
        if np.isfinite(m):
            assert list(max_line) == [m, m]
        shown = texts(ex)
        if k == 0:
            assert "nothing read yet (m = -inf, l = 0)" in shown
        else:
            m_text = "-inf" if m == -math.inf else f"{m:.3f}"
            assert f"after block {k} of {len(states) - 1}" in shown and f"m = {m_text}, l = {states[k]['l']:.3f}" in shown
        assert ("= the softmax" in shown) == (k == len(states) - 1)
    np.testing.assert_allclose(estimate, softmax(SCORE_PRESETS[preset]), atol=1e-12)


def test_masked_block_keeps_m_at_minus_inf_without_nan():
    ex = online_softmax_explorer(scores="first 4 masked (-inf)", block_size=4, blocks_read=1)
    assert "m = -inf, l = 0.000" in texts(ex)
    _, estimate, _, _ = drawn_softmax(ex)
    assert np.all(np.asarray(estimate) == 0.0)


def test_blocks_read_slider_follows_the_block_size():
    ex = online_softmax_explorer(block_size=1, blocks_read=12)
    for block_size in BLOCK_SIZES:
        ex.controls["block_size"].value = block_size
        n_blocks = math.ceil(N_SCORES / block_size)
        assert ex.controls["blocks_read"].max == n_blocks  # every step offered exists ...
        assert 0 <= ex.controls["blocks_read"].value <= n_blocks  # ... and the current one still does
    ex = online_softmax_explorer(block_size=1, blocks_read=12)
    ex.controls["block_size"].value = 5
    assert ex.controls["blocks_read"].value == 3  # clamped to the last block: still the full softmax
    assert "= the softmax" in texts(ex)


@pytest.mark.parametrize("kwargs, match", [
    (dict(block_size=7), "block_size must be one of"),
    (dict(block_size=4, blocks_read=4), r"blocks_read must be a whole number in 0\.\.3"),
    (dict(scores="sorted"), "scores must be one of"),
])
def test_online_softmax_refuses_invalid_defaults(kwargs, match):
    with pytest.raises(ValueError, match=match):
        online_softmax_explorer(**kwargs)


def test_cached_pixels_equal_a_fresh_drawing():
    """The explorers redraw only what changes (saved pixels for labels and axes): the picture
    after many changes is the one a fresh explorer draws for the same values."""
    for make, changes in ((gqa_explorer, [("n_heads", 32), ("n_kv_heads", 8), ("T", 131072), ("n_heads", 8)]),
                          (online_softmax_explorer, [("scores", "rising"), ("block_size", 3), ("blocks_read", 4),
                                                     ("scores", "random")])):
        ex = make()
        for name, value in changes:
            ex.controls[name].value = value
        again = make(**ex.values())
        from PIL import Image
        import io
        a = np.asarray(Image.open(io.BytesIO(ex.view.value)))
        b = np.asarray(Image.open(io.BytesIO(again.view.value)))
        assert a.shape == b.shape and (a != b).any(axis=-1).mean() < 1e-3, make.__name__


def _backdrop(fig):
    from attn_core.widgets._figure import Backdrop

    return next(a for a in fig.artists if isinstance(a, Backdrop))


@pytest.mark.parametrize("make", [gqa_explorer, online_softmax_explorer])
def test_saved_pixels_draw_what_a_plain_draw_draws(make):
    """The fast path (static parts pasted as saved pixels, labels from their cache) gives the
    picture of a normal full draw; static artists stay visible to matplotlib, so Jupyter's
    inline display (`bbox_inches="tight"`) measures and crops the whole figure."""
    import io

    from IPython.core.pylabtools import print_figure
    from PIL import Image

    from attn_core.viz import figure_to_png
    from attn_core.widgets._figure import CachedText as _CachedText

    def pixels(png):
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)

    ex = make()
    fig = ex.figure()
    backdrop = _backdrop(fig)
    for artist in backdrop.static:  # visible outside a draw: tight layouts see them
        assert artist.axison if hasattr(artist, "axison") else artist.get_visible()
    fast, fast_inline = figure_to_png(fig), print_figure(fig, "png", bbox_inches="tight")
    backdrop.regions.clear()  # no saved pixels: every artist is drawn
    for text in [*fig.artists, *(t for ax in fig.axes for t in [*ax.texts, *ax.artists])]:
        if isinstance(text, _CachedText):
            text._pixels.clear()
    for artist in fig.findobj(lambda a: hasattr(a, "forget_pixels")):  # saved lines and regions of heads
        artist.forget_pixels()
    plain, plain_inline = figure_to_png(fig), print_figure(fig, "png", bbox_inches="tight")
    for a, b in ((fast, plain), (fast_inline, plain_inline)):
        a, b = pixels(a), pixels(b)
        assert a.shape == b.shape
        assert (np.abs(a - b).max(axis=-1) > 8).mean() < 1e-3
    width = pixels(fast_inline).shape[1]
    assert width > 0.9 * pixels(fast).shape[1]  # the inline crop kept the axis labels


@pytest.mark.parametrize("make", [gqa_explorer, online_softmax_explorer])
def test_a_change_renders_no_text(make, monkeypatch):
    """Issue 12: rendering text costs about 1 ms a word. Every word, digit and tick label an
    update can show is rendered when the explorer is built; a change only pastes pixels."""
    from matplotlib.backends.backend_agg import RendererAgg
    from test_widgets import control_values

    ex = make()
    rendered = []
    draw_text = RendererAgg.draw_text

    def counting(self, gc, x, y, s, *args, **kwargs):
        rendered.append(s)
        return draw_text(self, gc, x, y, s, *args, **kwargs)

    monkeypatch.setattr(RendererAgg, "draw_text", counting)
    renders = ex.n_renders
    for _ in range(2):
        for control in ex.controls.values():
            for value in control_values(control):
                control.value = value
    assert ex.n_renders > renders + 20  # the sweep did redraw the picture ...
    assert rendered == []  # ... without rendering any text


@pytest.mark.parametrize("va", ["top", "center", "bottom"])
def test_a_glyph_line_draws_what_a_text_line_draws(va):
    """`GlyphLine` (numbers drawn digit by digit from stamps, the finished line kept and pasted)
    gives the pixels of a `TextLine` (whole words blended one by one) up to a shift of one
    device pixel (a digit rendered alone starts on a whole pixel, inside a word it may not),
    at each vertical alignment, also when pasted again from its cache."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from attn_core.viz import explorer_figure
    from attn_core.widgets._labels import GlyphLine, TextLine

    def pixels(kind, text, ha, fontsize):
        fig = explorer_figure((7.6, 1.0))
        FigureCanvasAgg(fig)
        line = fig.add_artist(kind(0.5, 0.5, fig.transFigure, fontsize=fontsize, ha=ha, va=va))
        line.set_text(text)
        fig.canvas.draw()
        first = np.asarray(fig.canvas.buffer_rgba()).copy()
        fig.canvas.draw()  # a GlyphLine: from its saved block
        return first, np.asarray(fig.canvas.buffer_rgba()).copy()

    for text, ha, fontsize in [("after block 3 of 4 (9 of 12 scores read): m = -1.234, l = 20.517", "center", 10),
                               ("16.0 GiB (25%)", "left", 9), ("kv31", "center", 8),
                               ("2 x 32 layers x 8 x 128 x 131,072 tokens x 2 bytes = 16.0 GiB", "center", 9)]:
        expected, _ = pixels(TextLine, text, ha, fontsize)
        first, again = pixels(GlyphLine, text, ha, fontsize)
        assert (expected[..., :3] < 128).any()  # there is text to compare
        expected = expected[..., :3].astype(int)
        shifted = np.stack([np.roll(expected, s, axis=1) for s in (-1, 0, 1)])  # one pixel left, none, right
        lo, hi = shifted.min(axis=0) - 8, shifted.max(axis=0) + 8
        for got in (first, again):
            got = got[..., :3].astype(int)
            assert ((got < lo) | (got > hi)).sum() == 0, text
            assert (got < 128).sum() == pytest.approx((expected < 128).sum(), rel=0.1)  # as much ink


def test_bars_drawn_together_are_the_bars_drawn_one_by_one():
    """The online-softmax bars are drawn as one collection read from the `Rectangle`s the tests
    inspect; drawing the rectangles themselves gives the same picture."""
    from attn_core.viz import figure_to_png
    from attn_core.widgets.inference import _DrawnTogether

    ex = online_softmax_explorer(scores="first 4 masked (-inf)", block_size=5, blocks_read=2)
    fig = ex.figure()
    together = np.asarray(fig.canvas.buffer_rgba()).copy() if figure_to_png(fig) else None
    groups = fig.findobj(_DrawnTogether)
    assert len(groups) == 2
    for group in groups:
        group.set_visible(False)  # each rectangle draws itself
    figure_to_png(fig)
    one_by_one = np.asarray(fig.canvas.buffer_rgba()).copy()
    assert (together != one_by_one).any(axis=-1).mean() < 1e-4


# ------------------------------------------------------------------ issue 12: sharp, in place, described, readable

def _all_values(ex):
    """A few changes through every control (dependent ones included)."""
    return [(name, v) for name, c in ex.controls.items()
            for v in ([o[1] if isinstance(o, tuple) else o for o in c.options] if hasattr(c, "options")
                      else range(c.min, c.max + 1))]


@pytest.mark.parametrize("make", [gqa_explorer, online_softmax_explorer])
def test_one_figure_at_device_pixel_ratio_2_within_the_size_budget(make):
    from attn_core.widgets._base import png_size

    ex = make()
    fig = ex.figure()
    assert fig.dpi == 160
    for name, value in _all_values(ex):
        if value in getattr(ex.controls[name], "options", [value]) or not hasattr(ex.controls[name], "options"):
            ex.controls[name].value = min(value, getattr(ex.controls[name], "max", value))
        assert ex.figure() is fig
    width, height = png_size(ex.view.value)
    assert width // 2 <= 640 and height // 2 <= 480 and ex.view.layout.width == f"{width // 2}px"


def test_gqa_description_states_the_sharing_and_the_memory():
    from attn_core.widgets.inference import describe_gqa

    ex = gqa_explorer(n_heads=32, n_kv_heads=8, T=131072)
    assert ex.view.tooltip == describe_gqa(32, 8, 131072) and ex.view.tooltip in ex.alt.value
    assert "grouped-query (GQA): 32 query heads share 8 key/value heads, 4 per group" in ex.view.tooltip
    assert "131,072 tokens" in ex.view.tooltip and "16.0 GiB, 25% of multi-head attention's 64.0 GiB" in ex.view.tooltip
    ex.controls["n_kv_heads"].value = 1
    assert "multi-query (MQA)" in ex.view.tooltip and "2.00 GiB, 3%" in ex.view.tooltip
    ex.controls["T"].value = 4096
    assert "4,096 tokens" in ex.view.tooltip


def test_online_softmax_description_follows_the_step():
    from attn_core.widgets.inference import describe_online_softmax

    ex = online_softmax_explorer(scores="rising", block_size=3, blocks_read=0)
    assert "nothing read yet" in ex.view.tooltip and ex.view.tooltip == describe_online_softmax("rising", 3, 0)
    states = online_softmax_steps(SCORE_PRESETS["rising"], 3)
    for k in range(1, len(states)):
        ex.controls["blocks_read"].value = k
        assert f"block {k} of 4 read" in ex.view.tooltip
        assert f"m = {states[k]['m']:.3f}, running sum l = {states[k]['l']:.3f}" in ex.view.tooltip
    assert "the estimate is the softmax" in ex.view.tooltip
    ex = online_softmax_explorer(scores="first 4 masked (-inf)", block_size=4, blocks_read=1)
    assert "m = -inf, running sum l = 0.000" in ex.view.tooltip


@pytest.mark.parametrize("make, extremes", [
    (gqa_explorer, [dict(n_heads=h, n_kv_heads=kv, T=T) for h in (1, 32) for kv in (1, h) for T in (4096, 131072)]),
    (online_softmax_explorer, [dict(scores=s, block_size=b, blocks_read=r) for s in SCORE_PRESETS for b in (1, 12)
                               for r in (0, 1, -(-N_SCORES // b))]),
])
def test_labels_are_at_least_8_pt_and_never_overlap(make, extremes):
    from attn_core.viz import figure_to_png

    ex = make()
    for values in extremes:
        for name, value in values.items():
            ex.controls[name].value = value
        fig = ex.figure()
        figure_to_png(fig)
        labels = drawn_label_boxes(fig)
        assert all(size >= 8 for _, _, size in labels), [(t, size) for t, _, size in labels if size < 8]
        for i, (a, box_a, _) in enumerate(labels):
            for b, box_b, _ in labels[i + 1:]:
                assert not box_a.overlaps(box_b), (values, a, b)
        inside = fig.bbox
        for text, box, _ in labels:  # nothing cut at the picture's edge
            assert box.x0 >= inside.x0 - 1 and box.x1 <= inside.x1 + 1 and box.y0 >= inside.y0 - 1 \
                and box.y1 <= inside.y1 + 1, (values, text)
