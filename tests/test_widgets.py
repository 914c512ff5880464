"""Every explorer, swept headless: every option of every control, then random combinations.

Nothing may raise, and every change of a control's value must change the picture.
"""

import random

import ipywidgets as W
import numpy as np
import pytest

from attn_core.widgets import EXPLORERS, Explorer

MAX_SLIDER_VALUES = 25


def control_values(control):
    """Every value a learner can pick on `control` (sliders: at most 25, evenly spread)."""
    if isinstance(control, W.Checkbox) or isinstance(control, W.ToggleButton):
        return [True, False]
    if hasattr(control, "options"):
        opts = control.options
        values = [o[1] if isinstance(o, tuple) else o for o in opts]
        return values
    if isinstance(control, (W.IntSlider, W.FloatSlider, W.FloatLogSlider, W.BoundedIntText, W.BoundedFloatText)):
        n_steps = int(round((control.max - control.min) / control.step))
        grid = [control.min + i * control.step for i in range(n_steps + 1)]  # no float overshoot past max
        grid = [min(v, control.max) for v in grid]
        values = [control.base ** e for e in grid] if isinstance(control, W.FloatLogSlider) else grid
        if len(values) > MAX_SLIDER_VALUES:
            idx = np.unique(np.linspace(0, len(values) - 1, MAX_SLIDER_VALUES).round().astype(int))
            values = [values[i] for i in idx]
        return [type(control.value)(v) for v in values]
    raise TypeError(f"the widget sweep does not know how to enumerate {type(control).__name__}")


def test_there_are_explorers_for_the_lessons():
    assert len(EXPLORERS) >= 6
    assert "multihead_explorer" in EXPLORERS


@pytest.fixture(params=sorted(EXPLORERS), scope="module")
def explorer_name(request):
    return request.param


def test_explorer_interface(explorer_name):
    ex = EXPLORERS[explorer_name]()
    assert isinstance(ex, Explorer) and isinstance(ex, W.Widget)
    assert ex.controls and all(isinstance(c, W.ValueWidget) for c in ex.controls.values())
    assert isinstance(ex.view, W.Image) and ex.view.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert ex.view in ex.children and all(c in ex.children for c in ex.controls.values())


def test_sweep_every_option_of_every_control(explorer_name):
    ex = EXPLORERS[explorer_name]()
    for name in list(ex.controls):
        control = ex.controls[name]
        start = control.value
        for value in control_values(control) + [start]:
            if value == control.value:
                continue
            before = ex.view.value
            control.value = value  # re-renders synchronously; must not raise
            if control.value != value:  # the explorer corrected a dependent value; must still be valid
                assert control.value in control_values(control), (explorer_name, name, value)
            assert ex.view.value != before, f"{explorer_name}: setting {name}={value!r} did not change the picture"
        # every control, dependent ones included, still holds a value it offers
        for other in ex.controls.values():
            assert other.value in control_values(other) or not hasattr(other, "options")


def test_random_combinations_never_raise(explorer_name):
    ex = EXPLORERS[explorer_name]()
    rnd = random.Random(0)
    for _ in range(15):
        name = rnd.choice(list(ex.controls))
        control = ex.controls[name]
        control.value = rnd.choice(control_values(control))
        assert ex.view.value[:4] == b"\x89PNG"
        for other in ex.controls.values():
            if hasattr(other, "options"):
                assert other.value in control_values(other)


def test_static_figure_of_default_state(explorer_name):
    import matplotlib.figure

    ex = EXPLORERS[explorer_name]()
    assert isinstance(ex.figure(), matplotlib.figure.Figure)
