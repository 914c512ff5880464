"""Naming what an attention head does, from its weights (lesson 07).

Each score is the average attention weight a head puts on one particular key, over the
queries of a batch; 1 means "always exactly there", 1/(t+1) is what a uniform causal head
would give. For a query at position `t`:

======================  =====================================  ============================
score                   the keys it measures                   a head that scores high ...
======================  =====================================  ============================
`previous_token_score`  `t - 1`                                passes each token the one
                                                               before it
`induction_score`       every `s` whose *previous* token is    finds earlier copies of the
                        the current token `x_t`                current token and looks at
                                                               what came next
`self_score`            `t` itself (the diagonal)              keeps to its own token
`first_token_score`     position 0                             parks its attention on the
                                                               first token (a "sink")
======================  =====================================  ============================

Queries at `t = 0` are left out of the other three (in a causal model they can only look
at themselves); the induction score uses only the queries whose token has occurred
before.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ._arrays import fmt_shape

__all__ = [
    "previous_token_score",
    "induction_score",
    "self_score",
    "first_token_score",
    "head_scores",
    "label_heads",
    "format_head_scores",
    "ablate_heads",
]

SCORE_NAMES = ("previous_token", "induction", "self", "first_token")


def _as_weights(weights) -> torch.Tensor:
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch tensor or numpy array of shape (B, H, T, T), got {type(weights).__name__}")
    if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be self-attention weights of shape (B, H, T, T), got shape {fmt_shape(weights.shape)}")
    if weights.shape[-1] < 2:
        raise ValueError(f"head scores need at least T=2 positions, got weights of shape {fmt_shape(weights.shape)}")
    return weights.detach().double()


def _mean_at(weights: torch.Tensor, key: torch.Tensor, used: torch.Tensor) -> np.ndarray:
    """Mean over the batch and the `used` queries of `weights[b, h, t, key[b, t]]` -> `(H,)`."""
    B, H, T, _ = weights.shape
    key = key.clamp(0, T - 1)[:, None, :, None].expand(B, H, T, 1)  # (B, T) -> (B, H, T, 1)
    picked = weights.gather(-1, key)[..., 0]  # (B, H, T)
    used = used[:, None, :].expand(B, H, T).to(picked.dtype)  # (B, T) -> (B, H, T)
    return ((picked * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))).numpy()  # (H,)


def _offset_score(weights, offset: int) -> np.ndarray:
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    t = torch.arange(T).expand(B, T)  # (B, T)
    return _mean_at(w, t - offset, t >= 1)


def previous_token_score(weights) -> np.ndarray:
    r"""Mean weight on the previous token, `w[b, h, t, t-1]` over `t >= 1` -> `(H,)`.

    .. math:: \mathrm{prev}_h = \operatorname{mean}_{b,\, t \ge 1}\; w_{b,h,t,t-1}
    """
    return _offset_score(weights, 1)


def self_score(weights) -> np.ndarray:
    r"""Mean weight on the query's own position (the diagonal), over `t >= 1` -> `(H,)`.

    .. math:: \mathrm{self}_h = \operatorname{mean}_{b,\, t \ge 1}\; w_{b,h,t,t}
    """
    return _offset_score(weights, 0)


def first_token_score(weights) -> np.ndarray:
    r"""Mean weight on position 0 (an attention "sink"), over `t >= 1` -> `(H,)`.

    .. math:: \mathrm{first}_h = \operatorname{mean}_{b,\, t \ge 1}\; w_{b,h,t,0}
    """
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    t = torch.arange(T).expand(B, T)  # (B, T)
    return _mean_at(w, torch.zeros_like(t), t >= 1)


def induction_score(weights, tokens) -> np.ndarray:
    r"""Mean total weight on the tokens that *followed* earlier copies of the current token -> `(H,)`.

    An induction head at a token `x` looks back for earlier occurrences of `x` and
    attends to whatever came right after them (so the next token can be copied). Its
    score (Olsson et al., 2022, "prefix matching") is the weight on those successors,

    .. math:: \mathrm{ind}_h = \operatorname{mean}_{b,\, t \in R_b}
              \sum_{1 \le s \le t,\ x_{b,s-1} = x_{b,t}} w_{b,h,t,s}

    averaged over the queries `R_b` whose token occurred before (`x_{b,s-1} = x_{b,t}`
    for some `s <= t`). In `A B C D A B C D` the query at the second `B` scores its
    weight on the first `C`.

    Args:
        weights: `(B, H, T, T)` attention weights.
        tokens: the integer token ids `(B, T)` the weights were computed on.
    """
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    tokens = torch.as_tensor(tokens)
    if tokens.shape != (B, T) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids of shape (B, T) = ({B}, {T}) to match the weights, got "
                         f"shape {fmt_shape(tokens.shape)} and dtype {tokens.dtype}")
    s = torch.arange(T)
    previous = torch.full_like(tokens, -1)
    previous[:, 1:] = tokens[:, :-1]  # (B, T): the token before each key s (none before s = 0)
    successor = (previous[:, None, :] == tokens[:, :, None]) & (s[None, :] <= s[:, None])  # (B, T, S): key s follows an earlier x_t
    used = successor.any(dim=-1)  # (B, T): queries whose token occurred before
    if not used.any():
        raise ValueError("no token in tokens occurs twice, so no query can do induction: use repeated sequences")
    mass = (w * successor[:, None].to(w.dtype)).sum(dim=-1)  # (B, H, T)
    used_f = used[:, None, :].expand_as(mass).to(w.dtype)  # (B, H, T)
    return ((mass * used_f).sum(dim=(0, 2)) / used_f.sum(dim=(0, 2))).numpy()  # (H,)


def head_scores(weights, tokens=None) -> dict[str, np.ndarray]:
    """Every score for every head of every layer.

    Args:
        weights: a list with one `(B, H, T, T)` tensor per layer (what
            `TinyTransformer(...)(tokens, return_weights=True)` returns), or one tensor.
        tokens: the token ids `(B, T)`, for the induction score (left out when None).

    Returns:
        `{"previous_token": (L, H), "induction": (L, H), "self": (L, H), "first_token": (L, H)}`
        numpy arrays, row = layer, column = head.
    """
    layers = [weights] if isinstance(weights, (torch.Tensor, np.ndarray)) else list(weights)
    if not layers:
        raise ValueError("weights is empty: pass one (B, H, T, T) tensor per layer")
    scores = {
        "previous_token": np.stack([previous_token_score(w) for w in layers]),
        "self": np.stack([self_score(w) for w in layers]),
        "first_token": np.stack([first_token_score(w) for w in layers]),
    }
    if tokens is not None:
        scores = {"previous_token": scores["previous_token"],
                  "induction": np.stack([induction_score(w, tokens) for w in layers]),
                  "self": scores["self"], "first_token": scores["first_token"]}
    return scores


def label_heads(scores: dict[str, np.ndarray], threshold: float = 0.5) -> list[list[str]]:
    """Name each head by its highest score when that score reaches `threshold`.

    Returns:
        `labels[layer][head]`: e.g. `"previous_token 0.93"`, or `"mixed"` when no score
        reaches the threshold.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    names = list(scores)
    stacked = np.stack([scores[n] for n in names])  # (n_scores, L, H)
    best = stacked.argmax(axis=0)  # (L, H)
    labels = []
    for layer in range(stacked.shape[1]):
        row = []
        for head in range(stacked.shape[2]):
            value = stacked[best[layer, head], layer, head]
            row.append(f"{names[best[layer, head]]} {value:.2f}" if value >= threshold else "mixed")
        labels.append(row)
    return labels


def format_head_scores(scores: dict[str, np.ndarray], decimals: int = 2) -> str:
    """A plain-text table of `head_scores`: one row per head, one column per score."""
    names = list(scores)
    L, H = next(iter(scores.values())).shape
    width = max(len(n) for n in names) + 2
    lines = ["layer head " + "".join(f"{n:>{width}}" for n in names)]
    for layer in range(L):
        for head in range(H):
            lines.append(f"{layer:5d} {head:4d} " + "".join(f"{scores[n][layer, head]:>{width}.{decimals}f}" for n in names))
    return "\n".join(lines)


def ablate_heads(model, heads) -> torch.nn.Module:
    """A copy of `model` in which the given heads contribute nothing.

    Zeroes the columns of each layer's output projection `w_o` that read the head's
    `d_head` outputs, so the head still computes its pattern but its result is dropped.

    Args:
        model: a model with `blocks[layer].attn` being `MultiHeadAttention` (`TinyTransformer`).
        heads: iterable of `(layer, head)` pairs.
    """
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise TypeError(f"model must have .blocks[layer].attn (a TinyTransformer), got {type(model).__name__}")
    ablated = copy.deepcopy(model)
    with torch.no_grad():
        for pair in heads:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"heads must be (layer, head) pairs, got {pair!r}")
            layer, head = pair
            if not 0 <= layer < len(blocks):
                raise ValueError(f"layer must lie in 0..{len(blocks) - 1}, got {layer}")
            attn = ablated.blocks[layer].attn
            if not 0 <= head < attn.n_heads:
                raise ValueError(f"head must lie in 0..{attn.n_heads - 1}, got {head}")
            attn.w_o.weight[:, head * attn.d_head:(head + 1) * attn.d_head] = 0.0  # (d_model, d_model): drop the head's columns
    return ablated
