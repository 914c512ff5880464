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
