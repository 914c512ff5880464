"""Lesson 04's multi-head explorer: only valid head counts, the same maths as the module,
a new picture on every change."""

import itertools
import random

import numpy as np
import pytest
import torch

from attn_core import MultiHeadAttention, scaled_dot_product_attention
from attn_core.widgets import EXPLORERS, Explorer
from attn_core.widgets.multihead import (
    D_MODELS,
    MAX_HEADS,
    TOKENS,
    head_choices,
    multihead_explorer,
    random_head_weights,
    random_projections,
    render_heads,
)

from widget_util import drawn_texts


def test_registered_and_named_controls():
    assert EXPLORERS["multihead_explorer"] is multihead_explorer
    ex = multihead_explorer()
    assert isinstance(ex, Explorer)
    assert list(ex.controls) == ["d_model", "n_heads", "seed", "query"]
    assert ex.values() == {"d_model": 48, "n_heads": 4, "seed": 0, "query": 1}
    assert bytes(ex.view.value[:8]) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("d_model", D_MODELS)
def test_head_choices_are_divisors(d_model):
    choices = head_choices(d_model)
    assert choices == [h for h in range(1, MAX_HEADS + 1) if d_model % h == 0]
    assert 1 in choices and all(d_model % h == 0 for h in choices)


def test_n_heads_options_follow_d_model():
    ex = multihead_explorer()
    for d_model in itertools.chain(D_MODELS, reversed(D_MODELS)):
        ex.controls["d_model"].value = d_model
        options = list(ex.controls["n_heads"].options)
        assert options == head_choices(d_model)
        assert ex.controls["n_heads"].value in options


@pytest.mark.parametrize("start, new_d_model, expected", [
    ((48, 4), 96, 4),  # still a divisor: kept
    ((48, 12), 768, 12),  # the article's 12 heads of 64
    ((48, 3), 64, 2),  # 3 does not divide 64: nearest valid (2 and 4 tie: the smaller)
    ((48, 16), 12, 12),  # 16 > 12: nearest valid
    ((96, 6), 64, 4),  # 6 -> 4 or 8 tie -> 4
    ((64, 8), 12, 6),  # 8 -> 6 (distance 2) rather than 12 (distance 4)
])
def test_head_count_kept_or_nearest(start, new_d_model, expected):
    ex = multihead_explorer(d_model=start[0], n_heads=start[1])
    renders = ex.n_renders
    ex.controls["d_model"].value = new_d_model
    assert ex.controls["n_heads"].value == expected
    assert ex.n_renders == renders + 1  # one picture per change, however many controls moved
    assert bytes(ex.view.value) == bytes(multihead_explorer(d_model=new_d_model, n_heads=expected).view.value)


def test_every_n_heads_changes_the_picture():
    ex = multihead_explorer()
    for d_model in (12, 96):
        ex.controls["d_model"].value = d_model
        seen, start = {bytes(ex.view.value)}, ex.controls["n_heads"].value
        for h in ex.controls["n_heads"].options:
            if h == start:
                continue
            ex.controls["n_heads"].value = h
            png = bytes(ex.view.value)
            assert png not in seen
            seen.add(png)


def test_random_combinations_never_raise():
    rng = random.Random(0)
    ex = multihead_explorer()
    for _ in range(8):
        d_model = rng.choice(D_MODELS)
        ex.controls["d_model"].value = d_model
        ex.controls["n_heads"].value = rng.choice(list(ex.controls["n_heads"].options))
        ex.controls["seed"].value = rng.randrange(10)
        ex.controls["query"].value = rng.randrange(len(TOKENS))
        assert ex.values()["n_heads"] in head_choices(d_model)
        assert bytes(ex.view.value[:4]) == b"\x89PNG"


@pytest.mark.parametrize("d_model, n_heads", [(48, 4), (12, 12), (768, 12), (96, 1)])
def test_weights_match_multihead_attention_module(d_model, n_heads):
    x, w_q, w_k = random_projections(d_model, seed=3)
    mha = MultiHeadAttention(d_model, n_heads, bias=False)
    with torch.no_grad():
        mha.w_q.weight.copy_(torch.from_numpy(w_q))
        mha.w_k.weight.copy_(torch.from_numpy(w_k))
        _, weights = mha(torch.from_numpy(x)[None])  # (1, H, T, T)
    ours = random_head_weights(d_model, n_heads, seed=3)
    assert ours.shape == (n_heads, len(TOKENS), len(TOKENS))
    np.testing.assert_allclose(ours, weights[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.sum(-1), 1.0, atol=1e-5)


def test_one_head_is_full_width_attention_and_heads_regroup_the_same_weights():
    x, w_q, w_k = random_projections(24, seed=1)
    q, k = x @ w_q.T, x @ w_k.T
    _, full = scaled_dot_product_attention(q, k, k)
    np.testing.assert_allclose(random_head_weights(24, 1, seed=1)[0], full, atol=1e-5)
    # head 1 of 4 is attention over features 6:12 of the same q and k
    _, head1 = scaled_dot_product_attention(q[:, 6:12], k[:, 6:12], k[:, 6:12])
    np.testing.assert_allclose(random_head_weights(24, 4, seed=1)[1], head1, atol=1e-5)


def test_reproducible_and_seed_dependent():
    a, b = random_head_weights(48, 4, seed=2), random_head_weights(48, 4, seed=2)
    assert np.array_equal(a, b)
    assert not np.allclose(a, random_head_weights(48, 4, seed=3))
    assert bytes(multihead_explorer().view.value) == bytes(multihead_explorer().view.value)


def test_random_heads_differ_and_same_words_share_rows():
    w = random_head_weights()  # default (48, 4, seed 0)
    for i, j in itertools.combinations(range(w.shape[0]), 2):
        assert np.abs(w[i] - w[j]).max() > 0.1
    the = [i for i, t in enumerate(TOKENS) if t.lower() == "the"]
    assert len(the) == 3
    # no positions: "The" and "the" have one embedding, so the same row and the same column
    for i in the[1:]:
        np.testing.assert_allclose(w[:, the[0]], w[:, i], atol=1e-6)
        np.testing.assert_allclose(w[:, :, the[0]], w[:, :, i], atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="d_model must be one of"):
        multihead_explorer(d_model=50)
    with pytest.raises(ValueError, match="n_heads must divide d_model=48"):
        multihead_explorer(n_heads=5)
    with pytest.raises(ValueError, match="n_heads must divide"):
        multihead_explorer(d_model=96, n_heads=32)  # a divisor, but more than 16 heads
    with pytest.raises(ValueError, match="seed"):
        multihead_explorer(seed=10)
    with pytest.raises(ValueError, match="query"):
        multihead_explorer(query=9)
    with pytest.raises(ValueError, match="query"):
        render_heads(query=-1)
    with pytest.raises(TypeError, match="tokens"):
        random_projections(tokens="The bank")
    with pytest.raises(ValueError, match="divisible"):
        random_head_weights(48, 5)
    with pytest.raises(ValueError, match="seed"):
        random_projections(seed=-1)


# --- issue 12: one persistent figure, a text alternative, readable labels, the size budget -------------

from attn_core.viz import EXPLORER_MAX_FIGSIZE  # noqa: E402
from attn_core.widgets._base import png_size  # noqa: E402
from attn_core.widgets._pixels import PixelImage  # noqa: E402
from attn_core.widgets.multihead import MIN_FONT, _CMAP, _tile  # noqa: E402


EXTREMES = [(12, 1), (48, 4), (96, 8), (768, 12), (768, 16)]  # one head up to the most heads offered


def test_one_persistent_figure_within_the_size_budget():
    ex = multihead_explorer()
    fig = ex.figure()
    for name, value in (("d_model", 768), ("n_heads", 16), ("seed", 3), ("query", 5), ("d_model", 12)):
        ex.controls[name].value = value
        assert ex.figure() is fig  # updated in place, never rebuilt
    w_in, h_in = fig.get_size_inches()
    assert w_in <= EXPLORER_MAX_FIGSIZE[0] and h_in <= EXPLORER_MAX_FIGSIZE[1]
    width, height = png_size(ex.view.value)
    assert (width, height) == (round(w_in * 160), round(h_in * 160))  # device pixel ratio 2
    assert ex.natural_width() == width // 2 <= 640


def test_a_value_that_does_not_change_draws_nothing():
    ex = multihead_explorer()
    renders = ex.n_renders
    ex.controls["query"].value = ex.controls["query"].value
    ex.refresh()  # an explicit refresh re-encodes, but the figure's state is the same picture
    assert ex.n_renders == renders + 1
    png = bytes(ex.view.value)
    ex.controls["d_model"].value = 96  # 4 still divides 96: only d_model and the patterns change
    ex.controls["d_model"].value = 48
    assert bytes(ex.view.value) == png  # back to the same values: the same picture


@pytest.mark.parametrize("d_model, n_heads", EXTREMES)
def test_labels_are_readable_and_never_overlap(d_model, n_heads):
    ex = multihead_explorer()
    ex.controls["d_model"].value = d_model
    ex.controls["n_heads"].value = n_heads
    for query in (0, 4, len(TOKENS) - 1):
        ex.controls["query"].value = query
        drawn = drawn_texts(ex.figure())
        assert min(t.get_fontsize() for t, _ in drawn) >= MIN_FONT >= 8
        labels = [t.get_text() for t, _ in drawn]
        assert TOKENS[query] in labels  # the query's own word is always labelled
        assert sum(label.startswith("head ") for label in labels) >= n_heads  # every head named (grid or rows)
        for a in range(len(drawn)):
            for b in range(a + 1, len(drawn)):
                (ta, ba), (tb, bb) = drawn[a], drawn[b]
                overlap = min(ba.x1, bb.x1) - max(ba.x0, bb.x0), min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
                assert min(overlap) <= 0, (ta.get_text(), tb.get_text(), d_model, n_heads, query)


def test_query_words_thin_out_only_when_the_rows_are_too_thin():
    ex = multihead_explorer()
    labels = ex._render_fn.__self__.query_labels  # the words beside the grid's first row of tiles
    shown = lambda: [i for i, t in enumerate(labels) if t.get_visible() and t.get_text()]  # noqa: E731
    assert shown() == list(range(len(TOKENS)))  # 4 heads: tall rows, every word
    ex.controls["d_model"].value = 768
    ex.controls["n_heads"].value = 16
    for query in (2, 5):
        ex.controls["query"].value = query
        assert shown() == list(range(query % 2, len(TOKENS), 2))  # every other word, counted from the query's
        assert labels[query].get_color() != labels[query - 1].get_color()  # the query's word stands out
        assert min(t.get_fontsize() for t in labels) >= MIN_FONT


def _strongest_keys(row):
    return [t for t, v in zip(TOKENS, row) if v >= row.max() - 1e-6]


@pytest.mark.parametrize("d_model, n_heads, seed, query", [(48, 4, 0, 1), (64, 2, 3, 4), (24, 1, 5, 8),
                                                          (768, 12, 0, 1), (96, 16, 7, 0)])
def test_text_alternative_names_the_strongest_keys(d_model, n_heads, seed, query):
    ex = multihead_explorer(d_model=d_model, n_heads=n_heads, seed=seed, query=query)
    text = ex.describe()
    assert ex.view.tooltip == text and text in ex.alt.value
    assert f"{n_heads} head{'s' if n_heads > 1 else ''} of {d_model // n_heads} dimensions" in text
    assert f"seed {seed}" in text and f"Query '{TOKENS[query]}'" in text
    w = random_head_weights(d_model, n_heads, seed)[:, query, :]  # (H, T)
    if n_heads <= 4:
        for h in range(n_heads):
            keys = ", ".join(f"'{k}'" for k in _strongest_keys(w[h]))
            assert f"{keys} ({w[h].max():.2f}" in text
    else:
        head = int(np.argmax(w.max(-1)))
        keys = ", ".join(f"'{k}'" for k in _strongest_keys(w[head]))
        assert f"head {head}'s, {keys} ({w[head].max():.2f}" in text


def test_text_alternative_changes_with_the_picture():
    ex = multihead_explorer()
    seen = {(bytes(ex.view.value), ex.alt.value)}
    for name, value in (("query", 4), ("seed", 2), ("n_heads", 8), ("d_model", 768), ("n_heads", 16)):
        ex.controls[name].value = value
        assert ex.view.tooltip == ex.describe()
        pair = (bytes(ex.view.value), ex.alt.value)
        assert pair[0] not in {p for p, _ in seen} and pair[1] not in {a for _, a in seen}, (name, value)
        seen.add(pair)


def test_the_tiled_image_is_every_head_in_reading_order():
    ex = multihead_explorer(d_model=96, n_heads=6, seed=1, query=3)
    grid = ex._render_fn.__self__.grid  # the picture object behind the explorer
    w = random_head_weights(96, 6, seed=1)
    np.testing.assert_array_equal(grid.get_array().filled(np.nan), _tile(w, 3, 1, 2))
    rows = ex._render_fn.__self__.rows.get_array()
    np.testing.assert_array_equal(rows, w[:, 3, :])


def test_pixel_image_matches_imshow_nearest():
    """`PixelImage` (numpy lookup written into the canvas) draws what `imshow(interpolation="nearest")` draws."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    values = rng.random((7, 5))
    values[2, 3] = np.nan
    pictures = []
    for fast in (False, True):
        fig = Figure(figsize=(4, 3), dpi=160, facecolor="white")
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, 320)
        ax.set_ylim(240, 0)
        ax.text(100, 100, "under", fontsize=20)  # shows through the transparent NaN cell
        extent = (40.0, 290.0, 215.0, 20.0)
        if fast:
            PixelImage(ax, _CMAP, extent=extent).set_data(values)
        else:
            ax.imshow(values, cmap=_CMAP, vmin=0, vmax=1, extent=extent, interpolation="nearest", aspect="auto")
        fig.canvas.draw()
        pictures.append(np.asarray(fig.canvas.buffer_rgba()).astype(int))
    slow, fast = pictures
    assert (np.abs(slow - fast).max(-1) > 2).mean() < 0.005  # at most a row or column of edge pixels differs


# --- lesson 07's "every head" grid (viz.head_grid): readable, non-overlapping labels at any size ---------

def _overlaps(boxes):
    """Pairs of boxes (x0, y0, x1, y1 arrays) that overlap by more than a pixel."""
    b = np.array([[e.x0, e.y0, e.x1, e.y1] for e in boxes])
    dx = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    dy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    hit = (dx > 1) & (dy > 1)
    np.fill_diagonal(hit, False)
    return np.argwhere(np.triu(hit))


@pytest.mark.parametrize("H, T, figsize", [(8, 24, None), (8, 24, (15, 8.2)), (16, 64, None), (1, 4, None),
                                           (4, 12, (6, 2.5)), (12, 40, (8, 6))])
def test_head_grid_labels_are_at_least_8pt_and_never_overlap(H, T, figsize):
    import matplotlib.pyplot as plt

    from attn_core import viz

    rng = np.random.default_rng(0)
    w = rng.random((H, T, T))
    w /= w.sum(-1, keepdims=True)
    tokens = [("QHADKMN" * 10)[i] if i % 5 else f"tok{i}" for i in range(T)]  # short and longer labels
    fig = plt.figure(figsize=figsize, layout="constrained") if figsize else None
    fig = viz.head_grid(w, tokens, ncols=4, fig=fig, titles=[f"layer {h // 4} head {h % 4}" for h in range(H)],
                        suptitle="every head")
    try:
        if figsize is None:
            assert fig.get_size_inches()[0] <= 10.0  # shown at its natural size in a notebook
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labels = [t for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())
                  if t.get_visible() and t.get_text()]
        assert labels, "no token labels at all"
        assert min(t.get_fontsize() for t in labels) >= viz.MIN_LABEL_PT >= 8
        texts = labels + [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
        pairs = _overlaps([t.get_window_extent(renderer) for t in texts])
        assert len(pairs) == 0, [(texts[a].get_text(), texts[b].get_text()) for a, b in pairs[:5]]
        shown = {t.get_text() for t in labels}
        assert tokens[0] in shown  # thinned, never emptied: the first token is always labelled
    finally:
        plt.close(fig)


def test_a_still_copy_at_another_resolution_draws_everything():
    """Jupyter's inline display saves the figure at 80 dpi with bbox_inches="tight": no blitting then, and
    the pasted label pixels and direct-to-canvas heatmaps must still all be drawn (twice in a row, too)."""
    import io

    from PIL import Image

    from attn_core.widgets.multihead import _GRID, _grid_layout

    fig = render_heads(d_model=48, n_heads=4, seed=0, query=1)
    w = random_head_weights(48, 4, seed=0)
    for _ in range(2):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        assert Image.open(buf).size[0] > 500
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)  # 640 x 440: one pixel per data unit
        picture = np.asarray(Image.open(buf).convert("RGB")).astype(int)
        _, _, cell, _ = _grid_layout(4, len(TOKENS))
        x0, y0 = _GRID[0], _GRID[2]
        for i, j in ((0, 0), (4, 5), (8, 8)):  # head 0's cells: row i, column j (2 blank rows above the tile)
            y, x = int(y0 + (2 + i + 0.5) * cell), int(x0 + (j + 0.5) * cell)
            expected = np.array(_CMAP(w[0, i, j])[:3]) * 255
            assert np.abs(picture[y, x] - expected).max() <= 3, (i, j)
        gray = picture.mean(-1)
        labels = [t for t, _ in drawn_texts(fig)]
        assert len(labels) > 30
        for text in labels:  # every label has dark pixels where it stands
            x, y = (int(v) for v in text.get_position())
            near = gray[max(y - 12, 0):y + 12, max(x - 40, 0):x + 40]
            assert near.min() < 100, text.get_text()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    assert (np.asarray(Image.open(buf).convert("L")) < 128).mean() > 0.05  # labels and dark cells, not blank


def test_static_bitmaps_are_kept_for_a_few_head_counts_only():
    """Each head count's static pixels take 4.5 MB: an explorer visited at every count keeps only the last few."""
    from attn_core.widgets.multihead import _KEEP_LAYOUTS

    ex = multihead_explorer(d_model=48)
    backdrop = ex._render_fn.__self__.backdrop
    pictures = {}
    for h in head_choices(48):
        ex.controls["n_heads"].value = h
        pictures[h] = bytes(ex.view.value)
        assert len(backdrop.regions) <= _KEEP_LAYOUTS
    for h in head_choices(48):  # dropped bitmaps are captured again: the same pictures
        ex.controls["n_heads"].value = h
        assert bytes(ex.view.value) == pictures[h]


def test_every_head_counts_static_pixels_are_captured_when_the_explorer_is_built():
    """A control change never has to draw a layout's static labels (10-30 ms): all 8 head counts
    are captured up front, and sweeping every control captures nothing more."""
    ex = multihead_explorer()
    backdrop = ex._render_fn.__self__.backdrop
    counts = {h for d in (12, 24, 48, 64, 96, 768) for h in head_choices(d)}
    assert {key for key, _dpi in backdrop.regions} == counts
    captured = dict(backdrop.regions)
    for name in ("d_model", "n_heads"):
        for value in list(ex.controls[name].options):
            ex.controls[name].value = value
    assert backdrop.regions == captured
