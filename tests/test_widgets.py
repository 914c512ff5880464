"""Every explorer, swept headless: every option of every control, then random combinations.

Nothing may raise, and every change of a control's value must change the picture. Also the
`Explorer` framework itself (issue 12): controls beside the picture, pictures rendered for
a device pixel ratio of 2 and shown at their natural size, a text alternative that follows
the picture, `snapshot()`, no work for unchanged values, opaque backgrounds.
"""

import html
import io
import random

import ipywidgets as W
import numpy as np
import pytest
import traitlets

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


def descendants(widget):
    """Every widget inside `widget` (children of boxes, recursively), `widget` included."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += descendants(child)
    return found


def test_explorer_interface(explorer_name):
    ex = EXPLORERS[explorer_name]()
    assert isinstance(ex, Explorer) and isinstance(ex, W.Widget)
    assert ex.controls and all(isinstance(c, W.ValueWidget) for c in ex.controls.values())
    assert isinstance(ex.view, W.Image) and ex.view.value[:8] == b"\x89PNG\r\n\x1a\n"
    shown = descendants(ex)
    assert ex.view in shown and ex.alt in shown and all(c in shown for c in ex.controls.values())


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


# --------------------------------------------------------------------------- the Explorer framework (issue 12)


def png_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"))


def toy_explorer(**kwargs):
    """A small explorer in the new style: one persistent figure, artists updated in place."""
    from attn_core import viz

    fig = viz.explorer_figure((4, 3))
    ax = fig.add_subplot()
    (line,) = ax.plot([0, 1], [0, 0])
    ax.set_ylim(-1, 11)

    def render(n, colour):
        line.set_ydata([0, n])
        line.set_color(colour)
        return fig

    controls = {"n": W.IntSlider(value=1, min=0, max=10, description="number of heads"),
                "colour": W.Dropdown(options=["red", "blue"], value="red", description="colour")}
    kwargs.setdefault("describe", lambda n, colour: f"a {colour} line rising to {n}")
    return Explorer(controls, render, **kwargs)


def test_natural_size_is_half_the_png_size():
    ex = toy_explorer()
    png = bytes(ex.view.value)
    from attn_core.widgets._base import png_size

    width, height = png_size(png)
    assert (width, height) == (4 * 160, 3 * 160) == png_pixels(png).shape[1::-1]  # DPR 2 at 80 CSS dpi
    assert ex.view.layout.width == f"{width // 2}px" and ex.natural_width() == width // 2
    assert ex.view.layout.max_width == "100%" and ex.view.layout.height == "auto"  # shrinks, never stretches


def test_natural_size_of_every_explorer_is_half_its_png_within_the_size_budget(explorer_name):
    from attn_core.widgets._base import png_size

    ex = EXPLORERS[explorer_name]()
    width, height = png_size(ex.view.value)
    assert ex.view.layout.width == f"{width // 2}px", (explorer_name, width, ex.view.layout.width)
    assert width // 2 <= 640 and height // 2 <= 480, (explorer_name, width, height)


def test_explorer_figure_is_sharp_opaque_and_within_budget():
    from attn_core import viz

    fig = viz.explorer_figure((5, 2.5))
    assert fig.dpi == 160 and tuple(fig.get_size_inches()) == (5, 2.5)
    ax = fig.add_subplot()
    assert ax.get_facecolor()[3] == 1.0 and fig.get_facecolor() == (1.0, 1.0, 1.0, 1.0)
    rgba = png_pixels(viz.figure_to_png(fig))
    assert rgba.shape[:2] == (400, 800)
    with pytest.raises(ValueError, match="at most 8 x 6 inches"):
        viz.explorer_figure((9, 4))
    with pytest.raises(TypeError, match="figsize must be"):
        viz.explorer_figure(5)


def test_png_background_is_opaque_even_with_a_transparent_figure_default():
    """matplotlib-inline used to make figures transparent: black text on JupyterLab's dark page."""
    import matplotlib

    from attn_core import viz

    with matplotlib.rc_context({"figure.facecolor": (1, 1, 1, 0), "axes.facecolor": (1, 1, 1, 0),
                                "savefig.facecolor": "none", "savefig.transparent": True}):
        ex = toy_explorer()
        fig = viz.explorer_figure((3, 2))
        fig.add_subplot()
        for png in (ex.view.value, viz.figure_to_png(fig)):
            rgba = png_pixels(png)
            assert (rgba[..., 3] == 255).all()
            assert (rgba[2, 2, :3] == 255).all()  # a white corner


def test_every_explorer_picture_is_opaque(explorer_name):
    rgba = png_pixels(EXPLORERS[explorer_name]().view.value)
    assert (rgba[..., 3] == 255).all(), explorer_name


def test_setup_makes_static_figures_opaque_white():
    import matplotlib

    from attn_core.notebook import setup

    with matplotlib.rc_context({"figure.facecolor": (1, 1, 1, 0), "savefig.facecolor": "none"}):
        setup()
        for key in ("figure.facecolor", "savefig.facecolor", "axes.facecolor"):
            assert matplotlib.colors.to_rgba(matplotlib.rcParams[key]) == (1.0, 1.0, 1.0, 1.0), key


def test_layout_controls_beside_the_picture():
    ex = toy_explorer(caption="a toy")
    assert isinstance(ex, W.HBox) and ex.layout.flex_flow == "row wrap"
    panel, picture = ex.children
    assert panel.layout.width == "280px"
    assert list(panel.children[1:]) == list(ex.controls.values())  # caption, then the controls
    assert list(picture.children) == [ex.view, ex.alt]
    # the picture's column is as wide as the picture: a long text alternative wraps under it
    # instead of widening the column until it no longer fits beside the controls
    assert picture.layout.width == ex.view.layout.width == f"{ex.natural_width()}px"


def test_descriptions_are_never_cut(explorer_name):
    """ipywidgets gives a description 80 px by default ("temperat..."): size it to its text."""
    ex = EXPLORERS[explorer_name]()
    for name, control in ex.controls.items():
        if not control.description:
            continue
        width = control.style.description_width
        assert width == "initial" or len(control.description) <= 8, (explorer_name, name, control.description)


def test_alt_text_follows_the_picture():
    ex = toy_explorer()
    assert ex.view.tooltip == "a red line rising to 1" and "a red line rising to 1" in ex.alt.value
    assert 'aria-live="polite"' in ex.alt.value
    ex.controls["n"].value = 7
    assert ex.view.tooltip == "a red line rising to 7" and "rising to 7" in ex.alt.value


def test_every_explorer_has_a_text_alternative_that_changes_with_the_picture(explorer_name):
    ex = EXPLORERS[explorer_name]()
    assert ex.view.tooltip and html.escape(ex.view.tooltip, quote=False) in ex.alt.value
    seen = {ex.view.tooltip}
    for name, control in ex.controls.items():
        for value in control_values(control)[:4]:
            control.value = value
        seen.add(ex.view.tooltip)
    assert len(seen) > 1, f"{explorer_name}: the text alternative never changed"


def test_snapshot_matches_the_live_picture():
    ex = toy_explorer()
    ex.controls["colour"].value = "blue"
    still = ex.snapshot()
    assert still.data == bytes(ex.view.value)
    assert still.width == ex.natural_width() == 4 * 80
    assert still.alt == "a blue line rising to 1" == ex.view.tooltip
    data, meta = still._repr_png_()
    assert meta["width"] == 320 and meta["alt"] == "a blue line rising to 1"


def test_unchanged_values_do_no_render():
    def clamp(changed, controls):  # e.g. a dependent limit: values above 5 are put back to 5
        if controls["n"].value > 5:
            controls["n"].value = 5

    ex = toy_explorer(before_render=clamp)
    ex.controls["n"].value = 5
    n = ex.n_renders
    ex.controls["n"].value = 9  # clamped back to 5: the picture of 5 is already shown
    assert ex.controls["n"].value == 5 and ex.n_renders == n
    ex.controls["n"].value = 2
    assert ex.n_renders == n + 1


def test_old_style_render_with_a_new_figure_each_time_still_works():
    from attn_core import viz

    def render(n):
        fig = viz.new_figure(figsize=(3, 2))  # 80 dpi: shown at its pixel size
        fig.add_subplot().plot([0, n])
        return fig

    ex = Explorer({"n": W.IntSlider(value=1, min=0, max=3, description="n")}, render)
    assert ex.natural_width() == 240 and ex.view.layout.width == "240px"
    before = ex.view.value
    ex.controls["n"].value = 3
    assert ex.view.value != before and ex.view.tooltip == "n = 3"


def test_fast_png_has_the_pixels_and_resolution_savefig_gives():
    from attn_core import viz
    from attn_core.widgets._base import png_dpi

    fig = viz.explorer_figure((3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    ax.set_title("a title")
    fast = viz.figure_to_png(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi="figure")
    assert (png_pixels(fast) == png_pixels(buf.getvalue())).all()
    assert png_dpi(fast) == pytest.approx(160, abs=0.01)
    assert png_pixels(viz.figure_to_png(fig, dpi=80)).shape[:2] == (160, 240)  # another dpi: savefig


def test_picture_with_a_tooltip_syncs_an_empty_description():
    """ipywidgets 8.1.9's front-end reads `description.length` before setting a title: an
    Image with a tooltip and no description fails to render (tests/test_browser_explorers.py)."""
    ex = toy_explorer()
    state = ex.view.get_state()
    assert state["tooltip"] and state.get("description") == ""
    assert isinstance(ex.view, W.Image)


def test_the_browser_gets_the_picture_as_a_data_url():
    """`view.value` is the PNG in Python; what is synced to the browser is the same PNG as the
    bytes of a data: URL with format "url" (ipywidgets' image view sets it as the src as is;
    a blob: URL costs a fetch through the browser process on every change)."""
    import base64

    ex = toy_explorer()
    png = bytes(ex.view.value)
    assert png.startswith(b"\x89PNG")
    state = ex.view.get_state()
    assert state["format"] == "url"
    url = bytes(state["value"])
    prefix = b"data:image/png;base64,"
    assert url.startswith(prefix) and base64.b64decode(url[len(prefix):]) == png
    with pytest.raises(traitlets.TraitError, match="data: URL"):
        ex.view.format = "png"  # the browser would take the data: URL for PNG bytes


def test_cached_text_survives_a_tight_save_first():
    """savefig(bbox_inches="tight") first runs a no-op draw; a CachedText must not keep its blank pixels."""
    import io

    from PIL import Image

    from attn_core.viz import explorer_figure
    from attn_core.widgets._figure import cached_text

    def dark_pixels(fig, **kwargs) -> int:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi, **kwargs)
        return int((np.asarray(Image.open(buf).convert("L")) < 100).sum())

    fig = explorer_figure((3, 2))
    ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])
    ax.set_axis_off()
    cached_text(ax, 0.5, 0.5, "Hello label", fontsize=14)
    first = dark_pixels(fig, bbox_inches="tight")
    assert first > 100
    assert dark_pixels(fig) > 100  # was 0: the label's pixels saved from the no-op draw were blank


def test_picture_and_its_tooltip_travel_in_one_message():
    """Each state message for the <img> makes the browser set its src again (and decode the
    PNG again, unless it is cached): a picture and its text alternative must go together."""
    ex = EXPLORERS["temperature_explorer"]()
    sent = []
    original = ex.view.send_state

    def record(key=None):
        sent.append(sorted(key) if isinstance(key, (list, set, tuple)) else key)
        return original(key=key)

    ex.view.send_state = record
    control = ex.controls["temperature"]
    control.value = control_values(control)[-1]
    picture_messages = [keys for keys in sent if keys == "value" or (isinstance(keys, list) and "value" in keys)]
    assert len(picture_messages) == 1, sent
    assert "tooltip" in picture_messages[0], sent
    assert not [keys for keys in sent if keys == "tooltip" or keys == ["tooltip"]], sent


@pytest.mark.parametrize("name", ["temperature_explorer", "multihead_explorer"])
def test_the_picture_is_sent_before_its_text_alternative(name):
    """The browser handles widget messages in order: the picture first, so that it starts
    decoding before the text under it is laid out again; the text still follows at once."""
    ex = EXPLORERS[name]()
    order = []
    for widget, label in ((ex.view, "picture"), (ex.alt, "alt")):
        def record(key=None, _original=widget.send_state, _label=label):
            order.append(_label)
            return _original(key=key)

        widget.send_state = record
    control = next(iter(ex.controls.values()))
    control.value = [v for v in control_values(control) if v != control.value][0]
    assert order == ["picture", "alt"], order
    assert ex.describe() in ex.alt.value and ex.view.tooltip == ex.describe()
