"""Helpers shared by the widget tests: what a draw of an explorer's figure writes."""

from __future__ import annotations


def drawn_label_boxes(fig):
    """`(text, box, fontsize)` of everything a draw of `fig` writes: visible Text artists (tick labels
    outside their axis's view are not drawn) and the entries of `Labels` artists."""
    from matplotlib.text import Text

    from attn_core.widgets._labels import Labels, TextLine

    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        if ax.get_visible():
            found += [(t, box, a.get_fontsize()) for a in ax.get_children() if isinstance(a, Labels) and a.get_visible()
                      for t, box in a.boxes(renderer)]
    for line in [a for ax in fig.axes if ax.get_visible() for a in ax.get_children()] + fig.artists:
        if isinstance(line, TextLine) and line.get_visible() and line.get_text():
            line._layout(renderer)  # its words, placed for this canvas
            found += [(t, box, line.get_fontsize()) for t, box in line.words.boxes(renderer)]
    outside = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                if not lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:  # matplotlib does not draw it
                    outside |= {id(tick.label1), id(tick.label2)}
    texts = [t for ax in fig.axes if ax.get_visible() for t in ax.findobj(Text)]  # tick labels have no .axes
    texts += [t for t in [*fig.texts, *fig.artists] if isinstance(t, Text)]
    found += [(t.get_text(), t.get_window_extent(renderer), t.get_fontsize()) for t in texts
              if t.get_visible() and t.get_text() and id(t) not in outside]
    return found


def drawn_texts(fig):
    """Every non-empty visible text artist of `fig` after a draw, with its box in figure pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))
             if t.get_visible() and t.get_text() and t.get_figure() is fig]
    return [(t, t.get_window_extent(renderer)) for t in texts]
