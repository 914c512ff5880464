"""KV cache: cached decoding gives the full forward's logits at every step, for every positional scheme (issue 10)."""

from __future__ import annotations

import functools

import pytest
import torch

from attn_core import POSITIONAL_SCHEMES, MultiHeadAttention, TinyTransformer, alibi_bias, causal_mask
from attn_core.kv_cache import KVCache, kv_cache_bytes
from attn_core.sampling import sample_next_token
from conftest import ATOL32, ATOL64

N_NEW = 50


@functools.lru_cache(maxsize=None)
def _model(positional, n_kv_heads=None, dtype=torch.float32, max_len=64, causal=True):
    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=13, d_model=16, n_heads=4, n_layers=2, max_len=max_len, positional=positional,
                            causal=causal, n_kv_heads=n_kv_heads).to(dtype).eval()
    return model


def _prompt(B=2, T=5, seed=1):
    return torch.randint(0, 13, (B, T), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ one layer


@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_layer_cache_in_chunks_equals_full_causal_attention(rope, n_kv_heads):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, rope=rope, n_kv_heads=n_kv_heads).double()
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    bias = alibi_bias(4, 11, dtype=torch.float64)[None]
    full, full_w = mha(x, mask=causal_mask(11), bias=bias)
    cache, start = mha.empty_cache(2), 0
    for stop in (3, 4, 8, 11):  # chunks of 3, 1, 4, 3 tokens
        T, S = stop - start, stop
        out, w, cache = mha(x[:, start:stop], mask=causal_mask(T, S), bias=alibi_bias(4, T, S, dtype=torch.float64)[None], cache=cache)
        torch.testing.assert_close(out, full[:, start:stop], atol=ATOL64, rtol=0)
        torch.testing.assert_close(w, full_w[:, :, start:stop, :S], atol=ATOL64, rtol=0)
        assert cache.k.shape == cache.v.shape == (2, n_kv_heads, S, 4) and cache.length == S
        start = stop


def test_cache_is_a_value_not_state():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    empty = mha.empty_cache(1)
    _, _, c1 = mha(x, mask=causal_mask(3), cache=empty)
    _, _, c2 = mha(x, mask=causal_mask(3), cache=empty)
    assert empty.length == 0 and c1.length == c2.length == 3 and torch.equal(c1.k, c2.k)  # the input cache is unchanged
    assert (c1 == c2) is False and (c1 == c1) is True  # identity, not an elementwise tensor comparison (which raises)
    with pytest.raises(Exception):
        c1.k = torch.zeros(1)  # frozen


# ------------------------------------------------------------------ the model, every positional scheme


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
def test_cached_decoding_gives_the_full_forward_logits_at_every_step(positional, n_kv_heads):
    model = _model(positional, n_kv_heads)
    tokens = _prompt(T=60)  # a prompt of 5, then 55 steps of one token
    with torch.no_grad():
        full = model(tokens)  # (B, 60, vocab)
        logits, cache = model(tokens[:, :5], cache=model.empty_cache(2))
        torch.testing.assert_close(logits, full[:, :5], atol=ATOL32, rtol=0)
        for t in range(5, 60):
            logits, cache = model(tokens[:, t:t + 1], cache=cache)
            torch.testing.assert_close(logits[:, 0], full[:, t], atol=ATOL32, rtol=0)
    kv = 4 if n_kv_heads is None else n_kv_heads
    assert all(c.k.shape == (2, kv, 60, 4) for c in cache)  # only n_kv_heads are stored


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_generate_with_and_without_cache_gives_identical_tokens(positional):
    model = _model(positional, 2)
    prompt = _prompt()
    cached = model.generate(prompt, N_NEW, use_cache=True)
    plain = model.generate(prompt, N_NEW, use_cache=False)
    assert cached.shape == (2, 5 + N_NEW) and cached.dtype == torch.long
    assert torch.equal(cached, plain)
    assert torch.equal(cached[:, :5], prompt)
    with torch.no_grad():  # greedy: every new token is the argmax of the full forward's logits
        assert torch.equal(model(cached[:, :-1])[:, 4:].argmax(-1), cached[:, 5:])


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_sampling_is_reproducible_with_a_seed_and_equal_with_and_without_cache(positional):
    model = _model(positional, None, torch.float64)
    prompt = _prompt()
    a = model.generate(prompt, 20, temperature=1.5, seed=7)
    assert torch.equal(a, model.generate(prompt, 20, temperature=1.5, seed=7))
    assert torch.equal(a, model.generate(prompt, 20, temperature=1.5, seed=7, use_cache=False))
    assert not torch.equal(a, model.generate(prompt, 20, temperature=1.5, seed=8))


def test_sampled_tokens_follow_the_model_distribution():
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20000, 3)
    draws = sample_next_token(logits, temperature=1.0, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).double() / 20000
    torch.testing.assert_close(freq, torch.softmax(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), 0), atol=0.015, rtol=0)
    hot = sample_next_token(logits[:2000], temperature=100.0, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(hot, minlength=3).min() > 500  # nearly uniform
    assert torch.equal(sample_next_token(logits[:3], 0.0), torch.tensor([2, 2, 2]))


def test_generate_zero_tokens_and_float64():
    model = _model("rope", None, torch.float64)
    assert torch.equal(model.generate(_prompt(), 0), _prompt())
    assert torch.equal(model.generate(_prompt(), 30), model.generate(_prompt(), 30, use_cache=False))


def test_learned_positions_within_max_len_and_a_clear_error_beyond():
    model = _model("learned", None, torch.float32, 12)
    prompt = _prompt(T=5)
    assert model.generate(prompt, 8).shape == (2, 13)  # feeds 12 tokens: positions 0..11
    for use_cache in (True, False):
        with pytest.raises(ValueError, match="max_len=12"):
            model.generate(prompt, 9, use_cache=use_cache)
    with torch.no_grad():
        _, cache = model(torch.zeros(2, 12, dtype=torch.long), cache=model.empty_cache(2))
        with pytest.raises(ValueError, match="max_len=12"):
            model(torch.zeros(2, 1, dtype=torch.long), cache=cache)


def test_forward_without_cache_is_unchanged_by_the_cache_path():
    model = _model("alibi")
    tokens = _prompt(T=7)
    with torch.no_grad():
        logits = model(tokens)
        logits2, weights, cache = model(tokens, return_weights=True, cache=model.empty_cache(2))
    torch.testing.assert_close(logits2, logits, atol=ATOL32, rtol=0)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 7, 7) and len(cache) == 2


# ------------------------------------------------------------------ memory


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_cache_memory_formula_matches_the_tensors(n_kv_heads):
    model = _model("rope", n_kv_heads)
    with torch.no_grad():
        _, cache = model(_prompt(T=9), cache=model.empty_cache(2))
    measured = sum(c.nbytes for c in cache)
    assert measured == kv_cache_bytes(n_layers=2, n_kv_heads=n_kv_heads, d_head=4, T=9, bytes_per_value=4, batch_size=2)
    assert measured == 2 * 2 * 2 * n_kv_heads * 4 * 9 * 4


def test_kv_cache_bytes_of_a_7b_model():
    assert kv_cache_bytes(32, 32, 128, 4096, bytes_per_value=2) == 2 * 2**30  # 2 GiB per sequence at 4k tokens
    assert kv_cache_bytes(32, 8, 128, 4096, bytes_per_value=2) == 2**29  # GQA with 8 key/value heads: 4x less


# ------------------------------------------------------------------ bad input


def test_wrong_cache_gets_a_clear_error():
    model = _model("none")
    with torch.no_grad():
        _, cache = model(_prompt(B=2), cache=model.empty_cache(2))
        with pytest.raises(ValueError, match="cache"):
            model(_prompt(B=3, T=1), cache=cache)  # wrong batch
        with pytest.raises(ValueError, match="cache"):
            model(_prompt(T=1), cache=cache[:1])  # one layer missing
        with pytest.raises(ValueError, match="cache"):
            model(_prompt(T=1), cache=[cache[0], model.empty_cache(2)[1]])  # layers of different lengths
        with pytest.raises(ValueError, match="cache"):
            _model("none", 2)(_prompt(T=1), cache=cache)  # 4 key/value heads for a layer with 2
        with pytest.raises(ValueError, match="cache"):
            _model("none", None, torch.float64)(_prompt(T=1), cache=cache)  # float32 cache, float64 model
        with pytest.raises(TypeError, match="cache"):
            model(_prompt(T=1), cache=(c.k for c in cache))
        with pytest.raises(ValueError, match="causal"):
            _model("none", causal=False)(_prompt(), cache=model.empty_cache(2))
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match="cache"):
        mha(x, cache=(torch.zeros(1, 2, 0, 4), torch.zeros(1, 2, 0, 4)))
    with pytest.raises(ValueError, match="cache"):
        mha(x, x, x, cache=mha.empty_cache(1))  # cross-attention
    with pytest.raises(ValueError, match="key_positions"):
        MultiHeadAttention(8, 2, rope=True)(x, key_positions=torch.arange(3), cache=mha.empty_cache(1))
    with pytest.raises(ValueError, match="mask"):
        mha(x, mask=causal_mask(3), cache=mha(x, cache=mha.empty_cache(1))[2])  # a (T, T) mask when S = 6


def test_bad_kv_cache_construction_and_append():
    with pytest.raises(ValueError, match="shape"):
        KVCache(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="same shape"):
        KVCache(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 2, 4))
    with pytest.raises(TypeError, match="floating"):
        KVCache(torch.zeros(1, 2, 3, 4, dtype=torch.long), torch.zeros(1, 2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_kv_heads"):
        KVCache.empty(1, 2, 4).append(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))
    with pytest.raises(ValueError, match="batch_size"):
        KVCache.empty(0, 2, 4)


@pytest.mark.parametrize("kwargs,error,word", [
    ({"n_new_tokens": -1}, ValueError, "n_new_tokens"), ({"n_new_tokens": 2.0}, TypeError, "n_new_tokens"),
    ({"n_new_tokens": True}, TypeError, "n_new_tokens"), ({"n_new_tokens": 2, "use_cache": "yes"}, TypeError, "use_cache"),
    ({"n_new_tokens": 2, "temperature": -0.5}, ValueError, "temperature"),
    ({"n_new_tokens": 2, "temperature": float("nan")}, ValueError, "temperature"),
    ({"n_new_tokens": 2, "seed": 1.5}, TypeError, "seed"), ({"n_new_tokens": 2, "seed": "1"}, TypeError, "seed")])
def test_bad_generate_arguments_are_named(kwargs, error, word):
    with pytest.raises(error, match=word):
        _model("none").generate(_prompt(), **kwargs)


def test_bad_prompt_and_logits():
    with pytest.raises(TypeError, match="tokens"):
        _model("none").generate(torch.zeros(1, 3), 2)
    with pytest.raises(ValueError, match="token ids"):
        _model("none").generate(torch.tensor([[0, 13]]), 2)
    with pytest.raises(ValueError, match="logits"):
        sample_next_token(torch.zeros(3))
    with pytest.raises(TypeError, match="logits"):
        sample_next_token(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="generator"):
        sample_next_token(torch.zeros(2, 3), 1.0, generator=0)


def test_generate_builds_no_autograd_graph():
    """Decoding is inference: nothing in it may record a graph (time and memory through the cache)."""
    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=11, d_model=16, n_heads=4, n_layers=2, max_len=32, positional="rope")
    seen = []
    hook = model.blocks[0].attn.register_forward_hook(lambda m, i, out: seen.append(out[0].requires_grad))
    model.generate(torch.tensor([[1, 2, 3]]), 4)
    hook.remove()
    assert seen and not any(seen)
