"""Lesson 05's explorers: what each picture shows is right, and bad defaults are refused clearly.

Also issue 12: one Figure updated in place, the picture within the size budget, every
label at least 8 pt and none overlapping at the extreme values, the text alternative
following the picture, and the blitted picture equal to a full redraw.
"""

import io
import itertools
import math

import numpy as np
import pytest
import torch
from matplotlib.text import Text
from PIL import Image

from attn_core.positional import apply_rope, sinusoidal_encoding
from attn_core.viz import figure_to_png
from attn_core.widgets._base import png_size
from attn_core.widgets._pixels import PixelImage
from attn_core.widgets.positional import (
    _rope_query_key,
    _RopePicture,
    _SinusoidalPicture,
    describe_rope,
    describe_sinusoidal,
    render_rope,
    render_sinusoidal,
    rope_explorer,
    rope_scores,
    sinusoidal_explorer,
)

from widget_util import drawn_label_boxes


def _image(fig):
    (ax,) = fig.axes
    (im,) = [a for a in ax.artists if isinstance(a, PixelImage)]
    return np.asarray(im.get_array())


def pixels(png) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB")).astype(int)


def assert_readable(fig, where):
    """No label under 8 pt (at 80 CSS dpi: the figure's points), no two labels' boxes overlapping."""
    figure_to_png(fig)  # lay everything out at the figure's own resolution
    labels = drawn_label_boxes(fig)
    small = [(text, size) for text, _, size in labels if size < 8]
    assert not small, (where, small)
    for (a, box_a, _), (b, box_b, _) in itertools.combinations(labels, 2):
        assert not box_a.overlaps(box_b), (where, a, b)
    for text, box, _ in labels:  # nothing cut at the picture's edge
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= fig.bbox.x1 + 1 and box.y1 <= fig.bbox.y1 + 1, (where, text)


# ----------------------------------------------------------------- sinusoidal_explorer


def test_table_view_shows_the_package_encoding():
    shown = _image(render_sinusoidal(d_model=16, base=100, n_positions=30, view="table"))
    assert np.allclose(shown, sinusoidal_encoding(30, 16, 100.0, dtype=torch.float64).numpy())


@pytest.mark.parametrize("d_model, base", [(4, 10), (64, 10000), (128, 100000)])
def test_similarity_view_is_constant_along_diagonals_with_ones_on_the_main_one(d_model, base):
    gram = _image(render_sinusoidal(d_model=d_model, base=base, n_positions=60, view="similarity"))
    assert gram.shape == (60, 60)
    assert np.allclose(np.diag(gram), 1.0)
    assert np.allclose(gram[1:, 1:], gram[:-1, :-1])  # depends only on the offset p - q


def test_similarity_view_is_the_gram_matrix_of_the_shown_positions_as_the_slider_moves():
    """The explorer keeps one similarity per (d_model, base), for the most positions offered,
    and shows its top-left block: the block must be PE @ PE.T / (d_model / 2) of exactly the
    positions shown, whichever way the positions slider and the other controls move."""
    ex = sinusoidal_explorer(view="similarity", d_model=32, base=100, n_positions=200)
    for name, value in [("n_positions", 30), ("n_positions", 110), ("d_model", 12), ("base", 10000),
                        ("n_positions", 200), ("d_model", 32)]:
        ex.controls[name].value = value
        d_model, base, n = ex.controls["d_model"].value, ex.controls["base"].value, ex.controls["n_positions"].value
        pe = sinusoidal_encoding(n, d_model, float(base), dtype=torch.float64).numpy()
        shown = _image(ex.figure())
        assert shown.shape == (n, n), (name, value)
        assert np.allclose(shown, pe @ pe.T / (d_model / 2), atol=1e-12), (name, value)


def test_waves_view_draws_sine_columns_with_their_periods():
    picture = _SinusoidalPicture()
    picture.render(d_model=64, base=10000, n_positions=100, view="waves")
    pe = sinusoidal_encoding(100, 64, dtype=torch.float64).numpy()
    assert [line.get_ydata().tolist() for line in picture.lines] == [pe[:, c].tolist() for c in (0, 16, 32, 48)]
    assert not any(isinstance(a, PixelImage) and a.get_visible() for a in picture.ax.artists)
    labels = [t.get_text() for t in picture.wave_labels]
    assert labels[0] == "dim 0\nperiod 6.3" and labels[-1] == f"dim 48\nperiod {2 * math.pi * 10000 ** 0.75:,.0f}"


def test_one_figure_updated_in_place():
    ex = sinusoidal_explorer()
    fig = ex.figure()
    for name, value in [("d_model", 8), ("view", "waves"), ("base", 10), ("n_positions", 200), ("view", "similarity")]:
        before = bytes(ex.view.value)
        ex.controls[name].value = value
        assert ex.figure() is fig and bytes(ex.view.value) != before


def test_table_ticks_follow_the_slider():
    picture = _SinusoidalPicture()
    for d_model, n_positions in [(4, 10), (64, 100), (128, 200)]:
        picture.render(d_model=d_model, n_positions=n_positions, view="table")
        shown = [float(t.replace("\N{MINUS SIGN}", "-")) for t in picture.x_ticks.labels.texts]
        assert shown and min(shown) == 0 and max(shown) <= d_model - 1 and len(shown) >= 3
        assert picture.ax.get_xlim() == (-0.5, d_model - 0.5) and picture.ax.get_ylim() == (n_positions - 0.5, -0.5)
        rows = [float(t) for t in picture.y_ticks.labels.texts]
        assert picture.y_ticks.values == rows and list(picture.y_ticks.marks.get_ydata()) == rows  # marks at the labels
        assert max(rows) <= n_positions - 1


@pytest.mark.parametrize("view", ["table", "similarity", "waves"])
def test_sinusoidal_labels_are_readable_at_the_extremes(view):
    picture = _SinusoidalPicture()
    for d_model, base, n_positions in itertools.product((4, 128), (10, 100000), (10, 200)):
        fig = picture.render(d_model=d_model, base=base, n_positions=n_positions, view=view)
        assert_readable(fig, (view, d_model, base, n_positions))


def test_sinusoidal_size_budget_and_natural_size():
    ex = sinusoidal_explorer()
    width, height = png_size(ex.view.value)
    assert width // 2 <= 640 and height // 2 <= 480
    assert ex.view.layout.width == f"{width // 2}px"


def test_sinusoidal_description_follows_the_picture():
    ex = sinusoidal_explorer(view="similarity", d_model=64, base=10000, n_positions=100)
    assert ex.view.tooltip == describe_sinusoidal(64, 10000, 100, "similarity") and ex.view.tooltip in ex.alt.value
    pe = sinusoidal_encoding(100, 64, dtype=torch.float64).numpy()
    near, far = pe[0] @ pe[1] / 32, pe[0] @ pe[50] / 32  # the numbers it quotes, from the encoding itself
    assert f"offset 1 gives {near:.2f}, offset 50 gives {far:.2f}" in ex.view.tooltip
    seen = {ex.view.tooltip}
    for name, value in [("view", "table"), ("d_model", 8), ("base", 10), ("view", "waves"), ("n_positions", 30)]:
        ex.controls[name].value = value
        assert ex.view.tooltip not in seen, (name, value)
        seen.add(ex.view.tooltip)
    assert "dimensions 0, 2, 4, 6" in ex.view.tooltip and "30 positions" in ex.view.tooltip
    slow = describe_sinusoidal(d_model=4, base=10, n_positions=200, view="table")
    assert "period of 19.9 positions" in slow and "repeats" in slow  # 2 pi 10^(2/4) = 19.87


@pytest.mark.parametrize("view", ["table", "similarity", "waves"])
def test_blitted_picture_equals_a_full_redraw(view):
    ex = sinusoidal_explorer(view=view, d_model=36, n_positions=70, base=1000)
    ex.controls["d_model"].value = 40  # an update: the static parts pasted, the rest drawn
    fast = pixels(ex.view.value)
    picture = ex._render_fn.__self__
    picture.backdrop.forget()  # no saved pixels: everything drawn the ordinary way
    full = pixels(figure_to_png(ex.figure()))
    assert fast.shape == full.shape
    assert (np.abs(fast - full).max(axis=-1) > 8).mean() < 0.001


def test_each_control_change_renders_once():
    ex = sinusoidal_explorer()
    before = ex.n_renders
    ex.controls["d_model"].value = 32
    ex.controls["view"].value = "waves"
    assert ex.n_renders == before + 2


@pytest.mark.parametrize("kwargs, error, words", [
    ({"d_model": 6}, ValueError, "d_model must be an integer from 4 to 128 in steps of 4, got 6"),
    ({"d_model": 64.0}, TypeError, "d_model must be an integer"),
    ({"base": 500}, ValueError, "base must be one of"),
    ({"n_positions": 250}, ValueError, "n_positions must be an integer from 10 to 200"),
    ({"view": "heatmap"}, ValueError, "view must be one of ['table', 'similarity', 'waves'], got 'heatmap'"),
])
def test_sinusoidal_explorer_refuses_bad_defaults(kwargs, error, words):
    with pytest.raises(error) as info:
        sinusoidal_explorer(**kwargs)
    assert words in str(info.value)


# ----------------------------------------------------------------- rope_explorer


def _title_score(picture):
    title = picture.curve_title.get_text()  # "m=3, n=7: score -0.030"
    return float(title.rsplit(" ", 1)[-1])


def test_score_depends_only_on_the_offset():
    picture = _RopePicture()
    scores = {}
    for m, n in [(0, 4), (3, 7), (20, 24), (27, 31)]:
        picture.render(m=m, n=n)
        scores[(m, n)] = _title_score(picture)
        assert picture.marker.get_ydata()[0] == pytest.approx(scores[(m, n)], abs=5e-4)
        assert picture.marker.get_xdata()[0] == 4
    assert len(set(scores.values())) == 1
    picture.render(m=3, n=8)
    assert _title_score(picture) != scores[(3, 7)]


def test_the_marked_score_lies_on_the_curve_and_matches_rope():
    q, k = _rope_query_key()
    for m, n, base in [(3, 7, 10000), (30, 2, 100), (0, 0, 10)]:
        score, offsets, curve = rope_scores(q, k, m, n, base)
        direct = apply_rope(q[None], torch.tensor([m]), base=base)[0] @ apply_rope(k[None], torch.tensor([n]), base=base)[0]
        assert math.isclose(score, float(direct), abs_tol=1e-12)
        assert math.isclose(curve[list(offsets).index(n - m)], score, abs_tol=1e-12)


def test_plane_arrows_keep_their_length_and_turn_by_the_angle():
    q, k = _rope_query_key()
    picture = _RopePicture()
    picture.render(m=11, n=29, pair=2, base=100)
    tips = [np.array(a._posA_posB[1]) for a in picture.arrows]  # q, k as given; q at m, k at n
    assert all(a._posA_posB[0] == (0.0, 0.0) for a in picture.arrows)
    lengths = [float(np.hypot(*tip)) for tip in tips]
    assert math.isclose(lengths[0], lengths[2]) and math.isclose(lengths[1], lengths[3])
    assert math.isclose(lengths[0], float(q[4:6].norm())) and math.isclose(lengths[1], float(k[4:6].norm()))
    theta = 100 ** (-2 * 2 / 16)  # pair 2 at base 100
    turned = math.atan2(*tips[2][::-1]) - math.atan2(*tips[0][::-1])
    assert math.isclose(math.remainder(turned - 11 * theta, 2 * math.pi), 0, abs_tol=1e-9)
    assert picture.plane_title.get_text() == f"dims 4,5: {math.degrees(theta):.3g}°/position"


def test_moving_both_positions_together_keeps_the_marker_height():
    ex = rope_explorer(m=2, n=9)
    picture = ex._render_fn.__self__
    first = _title_score(picture)
    ex.controls["m"].value, ex.controls["n"].value = 12, 19
    assert ex.figure() is picture.fig
    assert math.isclose(_title_score(picture), first)


def test_rope_description_follows_the_picture():
    ex = rope_explorer(m=3, n=7)
    assert ex.view.tooltip == describe_rope(3, 7) and ex.view.tooltip in ex.alt.value
    assert f"score {_title_score(ex._render_fn.__self__):.3f}" in ex.view.tooltip and "(offset 4)" in ex.view.tooltip
    seen = {ex.view.tooltip}
    for name, value in [("m", 5), ("n", 0), ("pair", 7), ("base", 10)]:
        ex.controls[name].value = value
        assert ex.view.tooltip not in seen, (name, value)
        seen.add(ex.view.tooltip)
    assert "(offset -5)" in ex.view.tooltip and "Dimensions 14,15" in ex.view.tooltip


def test_rope_labels_are_readable_and_the_size_within_budget():
    picture = _RopePicture()
    for m, n, pair, base in itertools.product((0, 31), (0, 31), (0, 7), (10, 100000)):
        assert_readable(picture.render(m=m, n=n, pair=pair, base=base), (m, n, pair, base))
    width, height = png_size(figure_to_png(picture.fig))
    assert width // 2 <= 640 and height // 2 <= 480


def test_rope_blitted_picture_equals_a_full_redraw():
    ex = rope_explorer(m=5, n=20, pair=3, base=1000)
    ex.controls["n"].value = 21
    fast = pixels(ex.view.value)
    picture = ex._render_fn.__self__
    picture.backdrop.forget()
    full = pixels(figure_to_png(ex.figure()))
    assert (np.abs(fast - full).max(axis=-1) > 8).mean() < 0.001


@pytest.mark.parametrize("kwargs, error, words", [
    ({"m": 32}, ValueError, "m must be an integer from 0 to 31"),
    ({"n": -1}, ValueError, "n must be an integer from 0 to 31"),
    ({"pair": 8}, ValueError, "pair must be an integer from 0 to 7"),
    ({"pair": 1.5}, TypeError, "pair must be an integer"),
    ({"base": 3}, ValueError, "base must be one of"),
])
def test_rope_explorer_refuses_bad_defaults(kwargs, error, words):
    with pytest.raises(error) as info:
        rope_explorer(**kwargs)
    assert words in str(info.value)


# ----------------------------------------------------------------- issue 12: what an update no longer redraws


def test_a_new_number_in_a_label_renders_no_text():
    """Titles and wave labels paste digits from stamps: once every digit has been seen, a new
    d_model lays out and renders no text (a word-by-word TextLine would render "d_model=72,")."""
    from unittest import mock

    from matplotlib.backends.backend_agg import RendererAgg

    picture = _SinusoidalPicture()
    for d_model in (4, 12, 36, 52, 64, 76, 92, 128):  # every digit (title and labels), "dim", "period", "," and "."
        figure_to_png(picture.render(d_model=d_model, base=100000, n_positions=200, view="waves"))
    with mock.patch.object(RendererAgg, "draw_text", autospec=True, side_effect=RendererAgg.draw_text) as draw_text:
        figure_to_png(picture.render(d_model=72, base=100000, n_positions=200, view="waves"))
    assert draw_text.call_count == 0
    assert picture.title.get_text() == "sine columns, d_model=72, base=100,000"


def test_pasted_labels_sit_where_matplotlib_puts_them():
    """A wave label (two lines) and the title, drawn piece by piece, cover the same pixels as the
    same text drawn by matplotlib (to within a device pixel)."""
    from matplotlib.text import Text

    picture = _SinusoidalPicture()
    fig = picture.render(d_model=36, base=10, n_positions=200, view="waves")
    fast = pixels(figure_to_png(fig))
    for label in (*picture.wave_labels, picture.title):
        label.set_visible(False)
        fig.add_artist(Text(label.x, label.y, label.get_text(), fontsize=label.get_fontsize(), color=label.words.color,
                            ha=label.ha, va="top", transform=fig.transFigure))
    plain = pixels(figure_to_png(fig))
    for array in (fast, plain):
        assert array.shape == fast.shape
    changed = np.abs(fast - plain).max(axis=-1) > 8
    assert changed.mean() < 0.01  # glyph edges only
    for rows, cols in ((slice(0, 60), slice(None)), (slice(100, 500), slice(700, None))):  # title; wave labels
        ink_fast = np.argwhere(fast[rows, cols].min(axis=-1) < 200)
        ink_plain = np.argwhere(plain[rows, cols].min(axis=-1) < 200)
        assert len(ink_fast) and len(ink_plain)
        assert np.abs(ink_fast.min(axis=0) - ink_plain.min(axis=0)).max() <= 1
        assert np.abs(ink_fast.max(axis=0) - ink_plain.max(axis=0)).max() <= 1


def test_the_first_wave_is_pasted_and_the_update_equals_a_fresh_picture():
    """sin(position) does not depend on d_model or base: a second draw at the same positions pastes it
    (no stroke of its 200 points), and the picture equals one drawn from scratch."""
    from unittest import mock

    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.colors import to_rgb

    ex = sinusoidal_explorer(view="waves", d_model=36, n_positions=200, base=1000)
    picture = ex._render_fn.__self__
    colours = []
    original = RendererAgg.draw_path

    def draw_path(self, gc, path, transform, rgbFace=None):
        colours.append(tuple(round(c, 3) for c in gc.get_rgb()[:3]))
        return original(self, gc, path, transform, rgbFace)

    with mock.patch.object(RendererAgg, "draw_path", draw_path):
        ex.controls["d_model"].value = 40
    first, second = (tuple(round(c, 3) for c in to_rgb(line.get_color())) for line in picture.lines[:2])
    assert second in colours and first not in colours  # the second wave stroked, the first pasted
    fresh = pixels(figure_to_png(render_sinusoidal(d_model=40, base=1000, n_positions=200, view="waves")))
    assert (np.abs(pixels(ex.view.value) - fresh).max(axis=-1) > 8).mean() < 0.001


@pytest.mark.parametrize("make", [lambda: sinusoidal_explorer(), lambda: rope_explorer()])
def test_no_background_fill_under_the_pasted_backdrop(make):
    """An update does not fill the whole canvas with white first: the Backdrop's pixels cover it."""
    from unittest import mock

    from matplotlib.backends.backend_agg import RendererAgg

    ex = make()
    fills = []
    original = RendererAgg.draw_path

    def draw_path(self, gc, path, transform, rgbFace=None):
        box = path.get_extents(transform)
        if rgbFace is not None and box.width >= self.width - 1 and box.height >= self.height - 1:
            fills.append(box)
        return original(self, gc, path, transform, rgbFace)

    control = next(iter(ex.controls.values()))
    with mock.patch.object(RendererAgg, "draw_path", draw_path):
        control.value = control.max if hasattr(control, "max") else control.options[-1][1]
    assert fills == []
    fresh = pixels(figure_to_png(ex.figure()))  # same values: a draw now, still white around the picture
    assert (fresh[0, 0] == 255).all() and (fresh[-1, -1] == 255).all()


def test_rope_titles_render_no_text_for_new_numbers():
    """RoPE's titles paste digits too: once every digit was seen, a new score draws no text."""
    from unittest import mock

    from matplotlib.backends.backend_agg import RendererAgg

    picture = _RopePicture()
    for m, n, pair in [(0, 1, 0), (2, 3, 1), (4, 5, 2), (6, 7, 3), (8, 9, 4), (19, 28, 5), (30, 31, 6)]:
        figure_to_png(picture.render(m=m, n=n, pair=pair, base=10000))
    with mock.patch.object(RendererAgg, "draw_text", autospec=True, side_effect=RendererAgg.draw_text) as draw_text:
        figure_to_png(picture.render(m=13, n=27, pair=2, base=10000))
    assert draw_text.call_count == 0
    assert picture.curve_title.get_text().startswith("m=13, n=27: score ")


def test_a_title_seen_before_is_pasted_as_one_block():
    """Going back to a value shown before pastes its title's block: no stamps placed or blended."""
    from unittest import mock

    picture = _SinusoidalPicture()
    for d_model in (8, 12):
        figure_to_png(picture.render(d_model=d_model, view="table"))
    words = picture.title.words
    with mock.patch.object(words, "_placements", wraps=words._placements) as placements:
        figure_to_png(picture.render(d_model=8, view="table"))
    assert placements.call_count == 0
    assert picture.title.get_text() == "PE[position, dimension], d_model=8, base=10,000"
