"""Lesson 06's explorer: what it draws is the masked attention it claims to draw."""

import numpy as np
import pytest
import torch

from attn_core import causal_mask, padding_mask
from attn_core.masks import sliding_window_mask
from attn_core.widgets import mask_explorer
from attn_core.widgets.masks import MASKS, PAD, SENTENCES, build_mask

from widget_util import drawn_texts

LONG, PREFIX, DOG = SENTENCES
S = 10


def picture(ex):
    """The object behind the explorer's one Figure (its heatmap, title, axes)."""
    return ex._render_fn.__self__


def drawn(ex):
    """The heatmap the explorer shows now: a masked array, masked (grey) where blocked."""
    assert ex.figure() is picture(ex).fig
    return picture(ex).image.get_array()


def title(ex):
    return picture(ex).title.get_text() + "\n" + picture(ex).subtitle.get_text()


def test_the_batch_is_the_one_the_lesson_describes():
    assert [len(s.split()) for s in SENTENCES] == [10, 6, 3]
    assert LONG.split()[:6] == PREFIX.split()  # the second sentence is a prefix of the first


@pytest.fixture(scope="module")
def shared():
    """One explorer for the parametrized sweep (building one per case would be slow)."""
    return mask_explorer()


@pytest.mark.parametrize("sentence", SENTENCES)
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("window", [1, 3, S])
def test_grey_cells_are_exactly_the_blocked_pairs_and_rows_sum_to_one(shared, sentence, mask, window):
    ex = shared
    for name, value in (("sentence", sentence), ("mask", mask), ("window", window)):
        ex.controls[name].value = value
    shown = drawn(ex)
    allowed = build_mask(mask, window, len(sentence.split()), S).numpy()
    assert np.array_equal(np.ma.getmaskarray(shown), ~allowed)
    live = allowed.any(-1)
    weights = shown.filled(0.0)
    assert np.allclose(weights[live].sum(-1), 1.0)  # every row with a key to read sums to 1
    n_dead = int((~live).sum())
    if n_dead:
        assert f"{n_dead} fully masked row" in title(ex)
    else:
        assert "every row sums to 1" in title(ex)


def test_build_mask_matches_the_library_masks():
    for length in (3, 6, 10):
        pad = padding_mask([length], S)[0, 0]  # (1, S)
        assert torch.equal(build_mask("none", S, length, S), torch.ones(S, S, dtype=torch.bool))
        assert torch.equal(build_mask("causal", S, length, S), causal_mask(S))
        assert torch.equal(build_mask("padding", S, length, S), torch.ones(S, S, dtype=torch.bool) & pad)
        assert torch.equal(build_mask("causal + padding", S, length, S), causal_mask(S) & pad)
        for w in (1, 4):
            assert torch.equal(build_mask("causal", w, length, S), sliding_window_mask(S, w))
            assert torch.equal(build_mask("none", w, length, S), sliding_window_mask(S, w, causal=False))
            assert torch.equal(build_mask("causal + padding", w, length, S), sliding_window_mask(S, w) & pad)
    with pytest.raises(ValueError, match="kind must be one of"):
        build_mask("future", S, 3, S)


def test_padding_changes_nothing_for_the_full_length_sentence():
    ex = mask_explorer(sentence=LONG, mask="none")
    free = drawn(ex).copy()
    ex.controls["mask"].value = "padding"
    assert np.array_equal(drawn(ex), free)
    assert "padding mask" in title(ex)


def test_the_prefix_sentence_matches_the_long_one_under_the_causal_mask():
    ex = mask_explorer(sentence=LONG, mask="causal")
    long_rows = drawn(ex)[:6].filled(np.nan)
    ex.controls["sentence"].value = PREFIX
    prefix_rows = drawn(ex)[:6].filled(np.nan)
    np.testing.assert_allclose(prefix_rows, long_rows, atol=1e-6)
    ex.controls["mask"].value = "none"  # without the mask the four extra words (or pads) leak in
    ex.controls["sentence"].value = LONG
    free_long = drawn(ex)[:6, :6].filled(np.nan)
    ex.controls["sentence"].value = PREFIX
    assert not np.allclose(drawn(ex)[:6, :6].filled(np.nan), free_long)


def test_the_lesson_example_of_fully_masked_rows():
    ex = mask_explorer(sentence=DOG, mask="causal + padding", window=3)
    shown = drawn(ex)
    dead = np.ma.getmaskarray(shown).all(-1)
    assert dead.tolist() == [False] * 5 + [True] * 5
    assert "5 fully masked rows" in title(ex)


def test_tick_labels_and_padding_boundary_follow_the_sentence():
    ex = mask_explorer(sentence=DOG)
    ax = ex.figure().axes[0]
    words = lambda texts: [t.get_text() for t in texts]  # noqa: E731
    assert words(picture(ex).key_words) == words(picture(ex).query_words) == DOG.split() + [PAD] * 7
    vline, hline = ax.lines[:2]
    assert vline.get_visible() and vline.get_xdata()[0] == 2.5 and hline.get_ydata()[0] == 2.5
    ex.controls["sentence"].value = LONG  # no padding: no boundary
    assert words(picture(ex).query_words) == words(picture(ex).key_words) == LONG.split()
    assert not vline.get_visible() and not hline.get_visible()
    # each word beside its own row and column: the centres of the word boxes follow the ticks
    fig = ex.figure()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_pixels = ax.transData.transform
    for i, (key, query) in enumerate(zip(picture(ex).key_words, picture(ex).query_words)):
        kb, qb = key.get_window_extent(renderer), query.get_window_extent(renderer)
        assert abs((kb.x0 + kb.x1) / 2 - to_pixels((i, 0))[0]) < 3  # device px
        assert abs((qb.y0 + qb.y1) / 2 - to_pixels((0, i))[1]) < 3


def test_window_titles_and_the_no_window_end_of_the_slider():
    ex = mask_explorer(mask="causal", window=S)
    assert title(ex).startswith("causal mask:")
    ex.controls["window"].value = 3
    assert title(ex).startswith("causal window of 3:")
    ex.controls["mask"].value = "padding"
    assert title(ex).startswith("padding mask + two-sided window of 3:")
    assert ex.controls["window"].max == S and ex.controls["window"].min == 1


def test_same_values_give_the_same_picture_and_every_change_a_new_one():
    a, b = mask_explorer(), mask_explorer()
    assert a.view.value == b.view.value
    seen = {a.view.value}
    for name, value in (("mask", "causal"), ("mask", "padding"), ("mask", "none"), ("window", 9), ("window", 1),
                        ("sentence", LONG), ("sentence", DOG)):
        a.controls[name].value = value
        assert a.view.value not in seen, (name, value)
        seen.add(a.view.value)


def test_bad_defaults_are_refused_with_clear_messages():
    with pytest.raises(ValueError, match="sentence must be one of"):
        mask_explorer(sentence="the cat")
    with pytest.raises(ValueError, match="mask must be one of"):
        mask_explorer(mask="anti-causal")
    with pytest.raises(ValueError, match=r"window must lie in 1\.\.10"):
        mask_explorer(window=0)
    with pytest.raises(TypeError, match="window must be a whole number"):
        mask_explorer(window=2.5)


def test_sliding_window_mask_follows_its_equations():
    """`attn_core.masks.sliding_window_mask` was added for this explorer; its docstring equations, checked."""
    for T, S in ((4, 4), (2, 5), (1, 6)):
        i = torch.arange(T)[:, None] + (S - T)
        j = torch.arange(S)[None, :]
        for w in (1, 2, 3, 7):
            assert torch.equal(sliding_window_mask(T, w, S), (i - j >= 0) & (i - j < w))
            assert torch.equal(sliding_window_mask(T, w, S, causal=False), (i - j).abs() < w)
            assert torch.equal(sliding_window_mask(T, w, S), causal_mask(T, S) & sliding_window_mask(T, w, S, causal=False))
        assert torch.equal(sliding_window_mask(T, S, S), causal_mask(T, S))
    with pytest.raises(ValueError, match="window must be >= 1"):
        sliding_window_mask(3, 0)
    with pytest.raises(TypeError, match="causal must be True or False"):
        sliding_window_mask(3, 2, causal="yes")


# --- issue 12: one persistent figure, a text alternative, readable labels, the size budget -------------

import html  # noqa: E402

from attn_core.viz import EXPLORER_MAX_FIGSIZE  # noqa: E402
from attn_core.widgets._base import png_size  # noqa: E402


def test_one_persistent_figure_within_the_size_budget():
    ex = mask_explorer()
    fig = ex.figure()
    for name, value in (("mask", "none"), ("window", 3), ("sentence", DOG), ("sentence", LONG)):
        ex.controls[name].value = value
        assert ex.figure() is fig  # updated in place, never rebuilt
    w_in, h_in = fig.get_size_inches()
    assert w_in <= EXPLORER_MAX_FIGSIZE[0] and h_in <= EXPLORER_MAX_FIGSIZE[1]
    assert png_size(ex.view.value) == (round(w_in * 160), round(h_in * 160))  # device pixel ratio 2
    assert ex.natural_width() == round(w_in * 80) <= 640


@pytest.mark.parametrize("sentence", SENTENCES)
def test_labels_are_readable_and_never_overlap(sentence):
    ex = mask_explorer(sentence=sentence, mask="causal + padding", window=2)
    drawn = drawn_texts(ex.figure())
    assert min(t.get_fontsize() for t, _ in drawn) >= 8
    labels = [t.get_text() for t, _ in drawn]
    for word in sentence.split():
        assert labels.count(word) >= 2 * sentence.split().count(word)  # every word as a query and as a key
    for a in range(len(drawn)):
        for b in range(a + 1, len(drawn)):
            (ta, ba), (tb, bb) = drawn[a], drawn[b]
            overlap = min(ba.x1, bb.x1) - max(ba.x0, bb.x0), min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            assert min(overlap) <= 0, (ta.get_text(), tb.get_text())


def test_the_picture_is_what_the_image_holds_after_a_redraw():
    """The heatmap's pixels change with the weights (not only the array behind them)."""
    ex = mask_explorer(mask="none")
    before = bytes(ex.view.value)
    ex.controls["mask"].value = "causal"
    after = bytes(ex.view.value)
    assert before != after
    ex.controls["mask"].value = "none"
    assert bytes(ex.view.value) == before  # the same values give the same pixels again (blitting leaves no trace)


@pytest.mark.parametrize("sentence, mask, window", [(PREFIX, "causal + padding", S), (DOG, "causal + padding", 3),
                                                    (LONG, "none", S), (DOG, "none", 3), (PREFIX, "padding", 2)])
def test_text_alternative_states_the_mask_and_the_last_words_strongest_key(sentence, mask, window):
    ex = mask_explorer(sentence=sentence, mask=mask, window=window)
    text = ex.describe()
    assert ex.view.tooltip == text and html.escape(text, quote=False) in ex.alt.value  # "<pad>" escaped in HTML
    words = sentence.split()
    allowed = build_mask(mask, window, len(words), S)
    assert f"{int(allowed.sum())} of {S * S} pairs allowed" in text
    dead = int((~allowed.any(-1)).sum())
    assert (f"{dead} fully masked rows" if dead > 1 else "no fully masked row" if dead == 0 else "1 fully masked") in text
    row = drawn(ex)[len(words) - 1].filled(0.0)  # the last real word's row, as drawn
    key = int(np.argmax(row))
    tokens = words + [PAD] * (S - len(words))
    assert f"The last word, '{words[-1]}' (row {len(words) - 1}), may read {int(allowed[len(words) - 1].sum())}" in text
    assert f"most weight on '{tokens[key]}' (key {key}, {row[key]:.2f})" in text


def test_text_alternative_changes_with_the_picture():
    ex = mask_explorer()
    seen = {ex.alt.value}
    for name, value in (("mask", "causal"), ("mask", "padding"), ("window", 3), ("sentence", DOG),
                        ("sentence", LONG)):
        ex.controls[name].value = value
        assert ex.alt.value not in seen, (name, value)
        assert ex.view.tooltip == ex.describe()
        seen.add(ex.alt.value)
