"""Lesson 05's explorers: what each picture shows is right, and bad defaults are refused clearly."""

import math

import numpy as np
import pytest
import torch

from attn_core.positional import apply_rope, sinusoidal_encoding
from attn_core.widgets.positional import (
    _rope_query_key,
    render_rope,
    render_sinusoidal,
    rope_explorer,
    rope_scores,
    sinusoidal_explorer,
)


def _image(fig):
    (ax,) = fig.axes
    (im,) = ax.images
    return np.asarray(im.get_array())


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


def test_waves_view_draws_sine_columns_with_their_periods():
    fig = render_sinusoidal(d_model=64, base=10000, n_positions=100, view="waves")
    (ax,) = fig.axes
    pe = sinusoidal_encoding(100, 64, dtype=torch.float64).numpy()
    assert [line.get_ydata().tolist() for line in ax.lines] == [pe[:, c].tolist() for c in (0, 16, 32, 48)]
    labels = [t.get_text() for t in ax.texts]
    assert labels[0] == "dim 0\nperiod 6.3" and labels[-1] == f"dim 48\nperiod {2 * math.pi * 10000 ** 0.75:,.0f}"


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


def _title_score(fig):
    title = fig.axes[1].get_title()  # "m=3, n=7: score -0.030"
    return float(title.rsplit(" ", 1)[-1])


def test_score_depends_only_on_the_offset():
    scores = {(m, n): _title_score(render_rope(m=m, n=n)) for m, n in [(0, 4), (3, 7), (20, 24), (27, 31)]}
    assert len(set(scores.values())) == 1
    assert _title_score(render_rope(m=3, n=8)) != scores[(3, 7)]


def test_the_marked_score_lies_on_the_curve_and_matches_rope():
    q, k = _rope_query_key()
    for m, n, base in [(3, 7, 10000), (30, 2, 100), (0, 0, 10)]:
        score, offsets, curve = rope_scores(q, k, m, n, base)
        direct = apply_rope(q[None], torch.tensor([m]), base=base)[0] @ apply_rope(k[None], torch.tensor([n]), base=base)[0]
        assert math.isclose(score, float(direct), abs_tol=1e-12)
        assert math.isclose(curve[list(offsets).index(n - m)], score, abs_tol=1e-12)


def test_plane_arrows_keep_their_length():
    q, k = _rope_query_key()
    fig = render_rope(m=11, n=29, pair=2, base=100)
    ax_plane = fig.axes[0]
    tips = [np.hypot(*a.xy) for a in ax_plane.texts]  # the four arrows: q, k before; q at m, k at n after
    assert len(tips) == 4
    assert math.isclose(tips[0], tips[2]) and math.isclose(tips[1], tips[3])
    assert math.isclose(tips[0], float(q[4:6].norm())) and math.isclose(tips[1], float(k[4:6].norm()))


def test_moving_both_positions_together_keeps_the_marker_height():
    ex = rope_explorer(m=2, n=9)
    first = _title_score(ex.figure())
    ex.controls["m"].value, ex.controls["n"].value = 12, 19
    assert math.isclose(_title_score(ex.figure()), first)


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
