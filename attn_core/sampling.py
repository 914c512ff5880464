r"""Choosing the next token from a model's logits (lesson 10).

.. math:: p = \operatorname{softmax}(\mathrm{logits} / \tau), \qquad
          \mathrm{next} \sim p \quad (\tau > 0), \qquad
          \mathrm{next} = \arg\max \mathrm{logits} \quad (\tau = 0)

A temperature `tau` below 1 sharpens the distribution, above 1 flattens it; `tau -> 0` is
the argmax (greedy decoding). Randomness comes only from an explicit `torch.Generator`,
so a seed reproduces the same tokens.
"""

from __future__ import annotations

import torch

from ._arrays import check_positive_finite, fmt_shape

__all__ = ["sample_next_token"]


def sample_next_token(logits, temperature: float = 0.0, generator: torch.Generator | None = None):
    r"""One token id per sequence from `logits (B, vocab_size)`: argmax at temperature 0, else sampled.

    .. math:: \mathrm{next}_b \sim \operatorname{softmax}(\mathrm{logits}_b / \tau)

    Args:
        logits: float torch tensor `(B, vocab_size)`, e.g. `model(tokens)[:, -1]`.
        temperature: `tau`, a finite number >= 0; 0 is greedy (argmax, ties to the lowest id).
        generator: the `torch.Generator` to draw from (None: torch's global one).

    Returns:
        Long tensor `(B,)`.

    >>> sample_next_token(torch.tensor([[0.1, 2.0, -1.0]]))
    tensor([1])
    """
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        raise TypeError(f"logits must be a float torch tensor (B, vocab_size), got {logits!r:.60}")
    if logits.ndim != 2 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape (B, vocab_size) with vocab_size >= 1, got shape {fmt_shape(logits.shape)}")
    temperature = check_positive_finite(temperature, "temperature", allow_zero=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if temperature == 0.0:
        return logits.argmax(dim=-1)  # (B, vocab_size) -> (B,)
    probs = torch.softmax(logits / temperature, dim=-1)  # (B, vocab_size)
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]  # (B, 1) -> (B,)
