"""TinyTransformer: shapes, causal masking, every positional scheme, determinism, errors."""

import pytest
import torch

from attn_core import alibi_bias, causal_mask, softmax
from attn_core.model import POSITIONAL_SCHEMES, TinyTransformer
from conftest import ATOL32

V, D, H, L, MAX_LEN = 11, 16, 4, 2, 12


def make(positional="learned", causal=True, mlp=True, seed=0, **kw):
    torch.manual_seed(seed)
    return TinyTransformer(V, D, H, L, MAX_LEN, positional=positional, causal=causal, mlp=mlp, **kw).eval()


def tokens(B=3, T=MAX_LEN, seed=0):
    return torch.randint(V, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
@pytest.mark.parametrize("mlp", [True, False])
def test_shapes_and_weights(positional, mlp):
    model = make(positional, mlp=mlp)
    x = tokens(B=3, T=7)
    logits = model(x)
    assert logits.shape == (3, 7, V) and logits.dtype == torch.float32
    logits2, weights = model(x, return_weights=True)
    assert torch.equal(logits, logits2)
    assert isinstance(weights, list) and len(weights) == L
    for w in weights:
        assert w.shape == (3, H, 7, 7)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, H, 7), atol=ATOL32, rtol=0)
        assert (w[..., ~causal_mask(7)] == 0).all()  # nothing above the diagonal
    assert (model.blocks[0].mlp is not None) == mlp


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_causal_future_tokens_do_not_change_the_past(positional):
    model = make(positional)
    x = tokens(B=2, T=10)
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % V  # change every token from position 6 on
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :6], b[:, :6], atol=ATOL32, rtol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-3)


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_bidirectional_model_sees_the_future(positional):
    model = make(positional, causal=False)
    x = tokens(B=2, T=10)
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % V
    with torch.no_grad():
        _, weights = model(x, return_weights=True)
        assert not torch.allclose(model(x)[:, 0], model(y)[:, 0], atol=1e-4)
    assert (weights[0][..., 0, 1:] > 0).all()  # the first query attends to later keys


def test_none_without_mask_is_a_bag_of_words_and_positions_break_that():
    x = tokens(B=2, T=9)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    for positional in POSITIONAL_SCHEMES:
        model = make(positional, causal=False)
        with torch.no_grad():
            out, out_perm = model(x), model(x[:, perm])
        equivariant = torch.allclose(out[:, perm], out_perm, atol=ATOL32)
        assert equivariant == (positional == "none"), positional
    # with a causal mask, even "none" is not permutation-equivariant: the mask carries order
    model = make("none", causal=True)
    with torch.no_grad():
        assert not torch.allclose(model(x)[:, perm], model(x[:, perm]), atol=1e-4)


def test_bidirectional_alibi_is_symmetric_under_reversal():
    # -m|i-j| does not tell left from right: reversing the input reverses the output
    model = make("alibi", causal=False)
    x = tokens(B=2, T=9)
    with torch.no_grad():
        torch.testing.assert_close(model(x.flip(1)), model(x).flip(1), atol=ATOL32, rtol=1e-5)
        learned = make("learned", causal=False)
        assert not torch.allclose(learned(x.flip(1)), learned(x).flip(1), atol=1e-4)


def test_alibi_bias_reaches_the_scores():
    # with all-zero query/key projections the scores are 0, so the weights are softmax(bias) on the causal triangle
    model = make("alibi", mlp=False)
    with torch.no_grad():
        for lin in (model.blocks[0].attn.w_q, model.blocks[0].attn.w_k):
            lin.weight.zero_()
            lin.bias.zero_()
        _, weights = model(tokens(B=1, T=6), return_weights=True)
    bias = alibi_bias(H, 6).masked_fill(~causal_mask(6), float("-inf"))  # (H, T, T)
    torch.testing.assert_close(weights[0][0], softmax(bias, axis=-1), atol=ATOL32, rtol=0)


def test_positional_schemes_are_wired_where_they_belong():
    assert make("learned").position_embedding is not None
    for positional in ("none", "sinusoidal", "rope", "alibi"):
        assert make(positional).position_embedding is None
    assert all(b.attn.rope for b in make("rope").blocks)
    assert not any(b.attn.rope for b in make("alibi").blocks)
    # "sinusoidal" differs from "none" only by the added table: same weights, different outputs
    a, b = make("none"), make("sinusoidal")
    b.load_state_dict(a.state_dict())
    x = tokens(B=1, T=5)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x), atol=1e-4)


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_longer_than_max_len(positional):
    model = make(positional)
    x = tokens(B=2, T=2 * MAX_LEN + 1)
    if positional == "learned":
        with pytest.raises(ValueError, match=r"T=25 .*max_len=12.*learned"):
            model(x)
        model(x[:, :MAX_LEN])  # exactly max_len is fine
    else:
        with torch.no_grad():
            long = model(x)
            assert long.shape == (2, 2 * MAX_LEN + 1, V) and torch.isfinite(long).all()
            # causal: the first max_len positions do not depend on what follows
            torch.testing.assert_close(long[:, :MAX_LEN], model(x[:, :MAX_LEN]), atol=ATOL32, rtol=1e-5)


def test_same_seed_same_model_different_seed_different_model():
    a, b, c = make("rope", seed=3), make("rope", seed=3), make("rope", seed=4)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(positional="absolute"), ValueError, "positional must be one of"),
        (dict(positional="rope", d_model=12, n_heads=4), ValueError, "even"),  # d_head = 3
        (dict(d_model=10, n_heads=4), ValueError, "divisible"),
        (dict(vocab_size=0), ValueError, "vocab_size"),
        (dict(max_len=2.5), TypeError, "max_len"),
        (dict(causal="yes"), TypeError, "causal"),
    ],
)
def test_bad_configuration(kwargs, error, match):
    args = dict(vocab_size=V, d_model=D, n_heads=H, n_layers=L, max_len=MAX_LEN) | kwargs
    with pytest.raises(error, match=match):
        TinyTransformer(**args)


def test_bad_tokens():
    model = make()
    with pytest.raises(TypeError, match="integer torch tensor"):
        model(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="integer torch tensor"):
        model([[1, 2]])
    with pytest.raises(ValueError, match=r"shape \(B, T\).*\(5,\)"):
        model(torch.arange(5))
    with pytest.raises(ValueError, match=r"0\.\.10 .*from 0 to 11"):
        model(torch.tensor([[0, 11]]))
