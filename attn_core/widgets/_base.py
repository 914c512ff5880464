"""The one shape every explorer has: named controls, a picture, synchronous re-rendering."""

from __future__ import annotations

from typing import Callable

import ipywidgets as W

from ..viz import figure_to_png

__all__ = ["Explorer", "restrict_options"]


def restrict_options(control: W.Widget, choices) -> None:
    """Offer only `choices` in a dropdown, keeping its value if it is still offered, else the nearest one.

    Used in `before_render` for controls that depend on others (heads that divide
    `d_model`, key/value heads that divide `n_heads`), so no broken combination is offered.
    """
    current = control.value
    keep = current if current in choices else min(choices, key=lambda c: (abs(c - current), c))
    control.options = choices  # ipywidgets resets the value to the first option here ...
    control.value = keep  # ... so put the kept (or nearest valid) value back


class Explorer(W.VBox):
    """A widget made of named `controls` and a `view` (an `ipywidgets.Image` of PNG bytes).

    Setting any control's `.value` re-renders the picture at once, in the same call, so a
    test can drive the explorer without a browser:

        ex = multihead_explorer()
        ex.controls["n_heads"].value = 4
        png = ex.view.value          # the new picture

    Args:
        controls: name -> control widget (sliders, dropdowns, ...), shown top to bottom.
        render: called as `render(**values)` with each control's current value; returns a
            matplotlib Figure (made with `viz.new_figure`, outside pyplot).
        before_render: optional `before_render(changed_name, controls)`, run first on every
            change, for controls that depend on others (e.g. only offer `n_heads` that
            divide `d_model`). Changes it makes do not trigger extra renders.
        caption: optional text shown above the controls.
    """

    def __init__(self, controls: dict[str, W.Widget], render: Callable, *, before_render: Callable | None = None,
                 caption: str | None = None):
        self.controls = dict(controls)
        self.view = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._render_fn = render
        self._before_render = before_render
        self._busy = False
        self.n_renders = 0
        children = ([W.HTML(f"<b>{caption}</b>")] if caption else []) + list(self.controls.values()) + [self.view]
        super().__init__(children=children)
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._on_change(name), names="value")
        self.refresh()

    def values(self) -> dict:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def figure(self):
        """The Figure for the current values (for a static copy shown next to the widget)."""
        return self._render_fn(**self.values())

    def refresh(self) -> None:
        """Re-render the picture for the current values."""
        self.view.value = figure_to_png(self.figure())
        self.n_renders += 1

    def _on_change(self, name: str) -> None:
        if self._busy:  # a dependent control changed inside before_render: one render covers it
            return
        self._busy = True
        try:
            if self._before_render is not None:
                self._before_render(name, self.controls)
            self.refresh()
        finally:
            self._busy = False
