"""`widgets/_labels`: labels drawn from cached pixels look like matplotlib's own text, and
`Ticks` follow their range; `attn_core._threads.one_torch_thread` restores the thread count."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from attn_core.viz import explorer_figure, figure_to_png
from attn_core.widgets._labels import Labels, Ticks
from attn_core._threads import one_torch_thread

WORDS = ["[CLS]", "the", "cat", "sat", "quickly", "##ization", "[SEP]", "Hg"]


def pixels(png) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def picture(use_labels: bool, angle: int, ha: str, va: str, color: str) -> np.ndarray:
    fig = explorer_figure((4, 3))
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    xs, ys = np.arange(len(WORDS)) + 0.7, np.linspace(1, 9, len(WORDS))
    if use_labels:
        labels = Labels(ax.transData, fontsize=9, angle=angle, ha=ha, va=va, color=color)
        ax.add_artist(labels)
        labels.set_labels(WORDS, xs, ys)
    else:
        for word, x, y in zip(WORDS, xs, ys):
            ax.text(x, y, word, fontsize=9, rotation=angle, ha=ha, va=va, color=color)
    return pixels(figure_to_png(fig))


@pytest.mark.parametrize("angle, ha, va", [(0, "right", "center"), (0, "left", "top"), (0, "center", "bottom"),
                                           (90, "center", "top"), (90, "right", "bottom")])
@pytest.mark.parametrize("color", ["black", "#b35806"])
def test_labels_look_like_matplotlib_text(angle, ha, va, color):
    """Same glyphs at the same places: only anti-aliased edge pixels differ (positions rounded to whole pixels)."""
    text, labels = picture(False, angle, ha, va, color), picture(True, angle, ha, va, color)
    ink_text = (255 - text).max(axis=-1) > 100
    ink_labels = (255 - labels).max(axis=-1) > 100
    assert ink_text.sum() == pytest.approx(ink_labels.sum(), rel=0.05)  # the same amount of ink
    shifted = min((ink_text != np.roll(np.roll(ink_labels, dy, 0), dx, 1)).sum()
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    assert shifted == (ink_text != ink_labels).sum()  # no whole-pixel offset would match better
    assert (ink_text != ink_labels).mean() < 0.004
    inked = ink_text & ink_labels  # glyph pixels in both: the same colour, edges aside
    assert np.abs(text[inked] - labels[inked]).mean() < 12


def test_long_labels_are_cut_to_their_width():
    fig = explorer_figure((3, 2))
    ax = fig.add_axes((0.3, 0.1, 0.6, 0.8))
    labels = Labels(ax.transAxes, fontsize=9, ha="right", max_width=40)
    ax.add_artist(labels)
    labels.set_labels(["characteristics", "cat"], [0, 0], [0.3, 0.7])
    figure_to_png(fig)
    (long, long_box), (short, short_box) = labels.boxes(fig.canvas.get_renderer())
    assert long.endswith("\N{HORIZONTAL ELLIPSIS}") and "characteristics".startswith(long[:-1]) and short == "cat"
    assert long_box.width <= 40 * fig.dpi / 72 + 1


def test_changed_labels_change_the_picture_and_unchanged_ones_are_pasted():
    fig = explorer_figure((3, 2))
    ax = fig.add_axes((0.3, 0.1, 0.6, 0.8))
    labels = Labels(ax.transAxes, fontsize=9)
    ax.add_artist(labels)
    labels.set_labels(["one", "two"], [0.1, 0.1], [0.3, 0.7])
    first = figure_to_png(fig)
    assert figure_to_png(fig) == first  # pasted block: the same pixels
    labels.set_labels(["one", "three"], [0.1, 0.1], [0.3, 0.7])
    assert figure_to_png(fig) != first
    labels.set_labels(["one", "two"], [0.1, 0.1], [0.3, 0.7])
    assert figure_to_png(fig) == first


def test_ticks_follow_the_range_and_read_like_matplotlib():
    fig = explorer_figure((3, 2))
    ax = fig.add_axes((0.3, 0.2, 0.6, 0.7))
    ticks = Ticks(ax, "y")
    assert ticks.set(-2.4, 6.8, n_bins=4) == [0.0, 3.0, 6.0] or min(ticks.values) >= -2.4
    assert all(-2.4 <= v <= 6.8 for v in ticks.values) and len(ticks.values) >= 3
    assert ticks.labels.texts == [f"{v:g}".replace("-", "\N{MINUS SIGN}") for v in ticks.values]
    assert list(ticks.marks.get_ydata()) == ticks.values
    ticks.set(0, 199)
    assert ticks.values[0] == 0 and ticks.values[-1] <= 199 and ticks.labels.texts[0] == "0"
    with pytest.raises(ValueError, match="axis must be 'x' or 'y'"):
        Ticks(ax, "z")


def test_one_torch_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_torch_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with one_torch_thread():
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("ha", ["left", "center", "right"])
def test_text_line_looks_like_one_text(ha):
    """A line drawn word by word sits where matplotlib's one Text sits, within a few pixels."""
    from attn_core.widgets._labels import TextLine

    sentence = "after block 2 of 3 (8 of 12 scores read): m = 1.960, l = 2.707"
    ink = []
    for word_by_word in (False, True):
        fig = explorer_figure((6, 1))
        if word_by_word:
            line = fig.add_artist(TextLine(0.5, 0.9, fig.transFigure, fontsize=10, ha=ha, va="top"))
            line.set_text(sentence)
            assert line.get_text() == sentence
        else:
            fig.text(0.5, 0.9, sentence, fontsize=10, ha=ha, va="top")
        ink.append((255 - pixels(figure_to_png(fig))).max(axis=-1) > 100)
    (rows_a, cols_a), (rows_b, cols_b) = (np.nonzero(i) for i in ink)
    assert abs(cols_a.min() - cols_b.min()) <= 3 and abs(cols_a.max() - cols_b.max()) <= 3  # same extent
    assert abs(rows_a.min() - rows_b.min()) <= 1 and abs(rows_a.max() - rows_b.max()) <= 1
    assert ink[0].sum() == pytest.approx(ink[1].sum(), rel=0.05)


@pytest.mark.parametrize("name", ["weighted_average_explorer", "temperature_explorer", "scaling_explorer",
                                  "self_attention_explorer", "multihead_explorer", "sinusoidal_explorer", "rope_explorer", "mask_explorer", "gqa_explorer",
                                  "online_softmax_explorer"])
def test_no_control_change_renders_text(name, monkeypatch):
    """After an explorer is built, turning its knobs to values never shown before renders no text:
    titles whose numbers change are pasted glyph by glyph (`GlyphLine`), and every word they or the
    labels can hold is rendered up front. A string rendered during a change costs 1-4 ms of the
    50 ms a change may take in the browser. The changes go round the controls as the browser
    benchmark does: the next option, one step of a slider."""
    import ipywidgets as W
    from matplotlib.backends.backend_agg import RendererAgg

    import attn_core.widgets as widgets

    ex = getattr(widgets, name)()
    rendered = []
    draw_text = RendererAgg.draw_text
    monkeypatch.setattr(RendererAgg, "draw_text",
                        lambda self, gc, x, y, s, *args, **kwargs: (rendered.append(s), draw_text(self, gc, x, y, s, *args, **kwargs)))
    controls = list(ex.controls.values())
    for i in range(4 * len(controls) * 4):
        control = controls[i % len(controls)]
        if isinstance(control, (W.Dropdown, W.ToggleButtons, W.RadioButtons, W.SelectionSlider)):
            control.index = (control.index + 1) % len(control.options)
        elif isinstance(control, W.Checkbox):
            control.value = not control.value
        else:
            up = control.value + control.step
            control.value = up if up <= control.max else control.min
    assert ex.n_renders > 4 * len(controls)
    assert rendered == [], f"{name} rendered text during control changes: {rendered[:5]}"


@pytest.mark.parametrize("va", ["baseline", "top", "bottom"])
def test_a_text_row_sits_where_one_text_sits(va):
    """A `text_row` (fixed words drawn once, numbers pasted glyph by glyph in `GlyphLine` slots)
    puts its ink where matplotlib's one `Text` of the same line puts it: same rows (the slots
    sit on the fixed words' baseline), columns within a few pixels (no kerning across pieces)."""
    from attn_core.widgets._figure import slot, text_row

    ink = []
    for as_row in (False, True):
        fig = explorer_figure((5, 1))
        if as_row:
            _, (share,) = text_row(fig, 0.5, 0.5, ["output = ", slot("0.00"), " x cat"], fontsize=10, va=va)
            share.set_text("0.75")
        else:
            fig.text(0.5, 0.5, "output = 0.75 x cat", fontsize=10, ha="center", va=va)
        ink.append((255 - pixels(figure_to_png(fig))).max(axis=-1) > 100)
    (rows_a, cols_a), (rows_b, cols_b) = (np.nonzero(i) for i in ink)
    assert len(rows_a) > 100
    assert abs(rows_a.min() - rows_b.min()) <= 1 and abs(rows_a.max() - rows_b.max()) <= 1
    assert abs(cols_a.min() - cols_b.min()) <= 3 and abs(cols_a.max() - cols_b.max()) <= 3
    assert ink[0].sum() == pytest.approx(ink[1].sum(), rel=0.05)
