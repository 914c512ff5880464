"""TinyTransformer(window=...): a causal sliding window, the intervention of lesson 08."""

import pytest
import torch

from attn_core.masks import sliding_window_mask
from attn_core.model import POSITIONAL_SCHEMES, TinyTransformer


def _pair(positional, window):
    torch.manual_seed(0)
    full = TinyTransformer(vocab_size=7, d_model=8, n_heads=2, n_layers=2, max_len=16, positional=positional, mlp=False)
    windowed = TinyTransformer(vocab_size=7, d_model=8, n_heads=2, n_layers=2, max_len=16, positional=positional,
                               mlp=False, window=window)
    windowed.load_state_dict(full.state_dict())
    return full.eval(), windowed.eval()


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_the_window_limits_every_layer_to_the_last_keys(positional):
    full, windowed = _pair(positional, 3)
    tokens = torch.randint(0, 7, (2, 12), generator=torch.Generator().manual_seed(1))
    _, weights = windowed(tokens, return_weights=True)
    allowed = sliding_window_mask(12, 3)  # (T, T)
    for w in weights:
        assert (w[..., ~allowed] == 0).all() and (w[..., allowed] > 0).all()
    assert not torch.allclose(full(tokens), windowed(tokens), atol=1e-4)  # the model does change


@pytest.mark.parametrize("positional", POSITIONAL_SCHEMES)
def test_a_window_as_long_as_the_sequence_changes_nothing(positional):
    full, windowed = _pair(positional, 12)
    tokens = torch.randint(0, 7, (2, 12), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(windowed(tokens), full(tokens))


def test_the_cached_forward_uses_the_window_too():
    _, windowed = _pair("rope", 3)
    tokens = torch.randint(0, 7, (1, 10), generator=torch.Generator().manual_seed(3))
    logits, cache = windowed(tokens[:, :6], cache=windowed.empty_cache(1))
    more, _ = windowed(tokens[:, 6:], cache=cache)
    torch.testing.assert_close(torch.cat([logits, more], dim=1), windowed(tokens))
    assert "window=3" in repr(windowed)
