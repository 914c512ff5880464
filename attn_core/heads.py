"""Naming what an attention head does, from its weights (lessons 07 and 09).

Each score is the average attention weight a head puts on one particular key, over the
queries of a batch; 1 means "always exactly there", 1/(t+1) is what a uniform causal head
would give. For a query at position `t`:

======================  =====================================  ============================
score                   the keys it measures                   a head that scores high ...
======================  =====================================  ============================
`previous_token_score`  `t - 1`                                passes each token the one
                                                               before it
`next_token_score`      `t + 1` (bidirectional models only)    passes each token the one
                                                               after it
`induction_score`       every `s` whose *previous* token is    finds earlier copies of the
                        the current token `x_t`                current token and looks at
                                                               what came next
`self_score`            `t` itself (the diagonal)              keeps to its own token
`first_token_score`     position 0                             parks its attention on the
                                                               first token (a "sink")
`selector_score`        the keys of a 0/1 selector, e.g.       looks at `[SEP]` (a sink in
                        `[CLS]`, `[SEP]`, punctuation          BERT), `[CLS]`, commas ...
`entropy_score`         all keys: the entropy of the weights   is broad (high) or sharp
                                                               (low, near 0)
`anti_diagonal_score`   `S - 1 - t` (cross-attention `(T, S)`  reads the source backwards
                        weights, e.g. of `EncoderDecoder`)     (reversal, lesson 10)
======================  =====================================  ============================

Queries at `t = 0` are left out of the previous-token, self and first-token scores (in a
causal model they can only look at themselves); the induction score uses only the
queries whose token has occurred before. `cls_score`, `sep_score`, `punctuation_score`
are `selector_score` with BERT's selectors (Clark et al. 2019, "What does BERT look
at?"): the total weight on the selected keys, averaged over every real query.

Padded batches: every score takes `attention_mask (B, T)` (1 = real token, 0 = padding)
and then ignores padded queries, and padded keys (a key-based score counts a query only
if the key it measures is real; a selector and the entropy sum only over real keys).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ._arrays import fmt_shape

__all__ = [
    "previous_token_score",
    "next_token_score",
    "induction_score",
    "self_score",
    "first_token_score",
    "selector_score",
    "cls_score",
    "sep_score",
    "punctuation_score",
    "entropy_score",
    "anti_diagonal_score",
    "head_scores",
    "label_heads",
    "format_head_scores",
    "ablate_heads",
]

SCORE_NAMES = ("previous_token", "induction", "self", "first_token")
BIDIRECTIONAL_SCORE_NAMES = ("next_token", "entropy")


def _as_weights(weights) -> torch.Tensor:
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch tensor or numpy array of shape (B, H, T, T), got {type(weights).__name__}")
    if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be self-attention weights of shape (B, H, T, T), got shape {fmt_shape(weights.shape)}")
    if weights.shape[0] == 0:
        raise ValueError(f"weights hold an empty batch (B=0), shape {fmt_shape(weights.shape)}: a score needs at least one sequence")
    if weights.shape[-1] < 2:
        raise ValueError(f"head scores need at least T=2 positions, got weights of shape {fmt_shape(weights.shape)}")
    return weights.detach().double()


def _as_mask(attention_mask, B: int, T: int, name: str = "attention_mask") -> torch.Tensor | None:
    """`(B, T)` 0/1 or bool, numpy or torch -> bool tensor (True = real token), or None."""
    if attention_mask is None:
        return None
    if isinstance(attention_mask, np.ndarray):
        attention_mask = torch.from_numpy(attention_mask)
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"{name} must be a (B, T) torch tensor or numpy array of 0/1, got {type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != (B, T):
        raise ValueError(f"{name} must have shape (B, T) = ({B}, {T}) to match the weights, got {fmt_shape(attention_mask.shape)}")
    if attention_mask.dtype.is_floating_point or attention_mask.dtype.is_complex:
        raise TypeError(f"{name} must be an integer or bool (B, T) tensor of 0/1, got dtype {attention_mask.dtype}: "
                        f"pass the tokenizer's integer mask, or convert with `{name} == 1`")
    if attention_mask.dtype != torch.bool:
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise ValueError(f"{name} must hold 0/1 (or True/False), got dtype {attention_mask.dtype} "
                             f"with values {attention_mask.unique()[:5].tolist()}")
        attention_mask = attention_mask == 1
    return attention_mask


def _mean_at(weights: torch.Tensor, key: torch.Tensor, used: torch.Tensor, real: torch.Tensor | None = None) -> np.ndarray:
    """Mean over the batch and the `used` queries of `weights[b, h, t, key[b, t]]` -> `(H,)`.

    With `real (B, T)`, a query counts only if it is real and so is its key.
    """
    B, H, T, _ = weights.shape
    key = key.clamp(0, T - 1)
    if real is not None:
        used = used & real & real.gather(1, key)  # (B, T): real query, real key
        if not used.any():
            raise ValueError("attention_mask leaves no query to score (every query or the key it measures is padding)")
    key = key[:, None, :, None].expand(B, H, T, 1)  # (B, T) -> (B, H, T, 1)
    picked = weights.gather(-1, key)[..., 0]  # (B, H, T)
    used = used[:, None, :].expand(B, H, T).to(picked.dtype)  # (B, T) -> (B, H, T)
    return ((picked * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))).numpy()  # (H,)


def _offset_score(weights, offset: int, attention_mask=None, *, skip_first: bool = True) -> np.ndarray:
    """Mean weight on key `t - offset`, over the queries whose key exists (and `t >= 1` if `skip_first`)."""
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    real = _as_mask(attention_mask, B, T)
    t = torch.arange(T).expand(B, T)  # (B, T)
    key = t - offset
    used = (key >= 0) & (key < T) & ((t >= 1) if skip_first else True)  # (B, T)
    return _mean_at(w, key, used, real)


def previous_token_score(weights, *, attention_mask=None) -> np.ndarray:
    r"""Mean weight on the previous token, `w[b, h, t, t-1]` over `t >= 1` -> `(H,)`.

    .. math:: \mathrm{prev}_h = \operatorname{mean}_{b,\, t \ge 1}\; w_{b,h,t,t-1}

    With `attention_mask (B, T)` only real queries count (their previous token is real
    too when padding comes last).
    """
    return _offset_score(weights, 1, attention_mask)


def next_token_score(weights, *, attention_mask=None) -> np.ndarray:
    r"""Mean weight on the next token, `w[b, h, t, t+1]`, over real queries whose next token is real -> `(H,)`.

    .. math:: \mathrm{next}_h = \operatorname{mean}_{b,\, t:\ t+1 \text{ real}}\; w_{b,h,t,t+1}

    Zero in a causal model (it cannot see the future); a bidirectional model (BERT) has
    heads that do nearly only this.
    """
    return _offset_score(weights, -1, attention_mask, skip_first=False)


def self_score(weights, *, attention_mask=None) -> np.ndarray:
    r"""Mean weight on the query's own position (the diagonal), over `t >= 1` -> `(H,)`.

    .. math:: \mathrm{self}_h = \operatorname{mean}_{b,\, t \ge 1}\; w_{b,h,t,t}
    """
    return _offset_score(weights, 0, attention_mask)


def first_token_score(weights, *, attention_mask=None) -> np.ndarray:
    r"""Mean weight on position 0 (an attention "sink"), over `t >= 1` -> `(H,)`.

    .. math:: \mathrm{first}_h = \operatorname{mean}_{b,\, t \ge 1}\; w_{b,h,t,0}
    """
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    real = _as_mask(attention_mask, B, T)
    t = torch.arange(T).expand(B, T)  # (B, T)
    return _mean_at(w, torch.zeros_like(t), t >= 1, real)


def selector_score(weights, selector, *, attention_mask=None) -> np.ndarray:
    r"""Mean total weight on the keys a 0/1 `selector` picks, over all real queries -> `(H,)`.

    .. math:: \mathrm{sel}_h = \operatorname{mean}_{b,\, t\ \text{real}}
              \sum_{s:\ \mathrm{sel}_{b,s} = 1,\ s\ \text{real}} w_{b,h,t,s}

    Clark et al. (2019) score BERT's heads this way: with the `[SEP]` positions as the
    selector, a head that parks its attention on `[SEP]` scores near 1.

    Args:
        weights: `(B, H, T, T)`.
        selector: `(B, T)` bool (or 0/1): the key positions to measure.
        attention_mask: optional `(B, T)` 1 = real token, 0 = padding.
    """
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    selector = _as_mask(selector, B, T, name="selector")
    if selector is None:
        raise TypeError("selector must be a (B, T) boolean tensor of key positions, got None")
    real = _as_mask(attention_mask, B, T)
    keys = selector if real is None else selector & real  # (B, T)
    queries = torch.ones(B, T, dtype=torch.bool) if real is None else real  # (B, T)
    if not queries.any():
        raise ValueError("attention_mask leaves no real query to score")
    mass = (w * keys[:, None, None, :].to(w.dtype)).sum(dim=-1)  # (B, H, T, S) -> (B, H, T)
    used = queries[:, None, :].expand_as(mass).to(w.dtype)  # (B, T) -> (B, H, T)
    return ((mass * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))).numpy()  # (H,)


def cls_score(weights, *, attention_mask=None) -> np.ndarray:
    r"""Mean weight on position 0 (BERT's `[CLS]`) over every real query, the query at 0 included -> `(H,)`.

    .. math:: \mathrm{cls}_h = \operatorname{mean}_{b,\, t\ \text{real}}\; w_{b,h,t,0}
    """
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    selector = torch.zeros(B, T, dtype=torch.bool)
    selector[:, 0] = True
    return selector_score(w, selector, attention_mask=attention_mask)


def sep_score(weights, token_ids, sep_id: int = 102, *, attention_mask=None) -> np.ndarray:
    r"""Mean total weight on the `[SEP]` tokens (id `sep_id`, 102 in BERT's vocabulary) -> `(H,)`.

    .. math:: \mathrm{sep}_h = \operatorname{mean}_{b,\, t\ \text{real}}
              \sum_{s:\ x_{b,s} = \mathrm{[SEP]}} w_{b,h,t,s}
    """
    token_ids = torch.as_tensor(token_ids)
    if token_ids.dtype.is_floating_point or token_ids.dtype == torch.bool:
        raise TypeError(f"token_ids must be integer ids (B, T), got dtype {token_ids.dtype}")
    return selector_score(weights, token_ids == sep_id, attention_mask=attention_mask)


def punctuation_score(weights, is_punct, *, attention_mask=None) -> np.ndarray:
    r"""Mean total weight on punctuation keys (`is_punct (B, T)` bool) -> `(H,)`.

    .. math:: \mathrm{punct}_h = \operatorname{mean}_{b,\, t\ \text{real}}
              \sum_{s:\ \mathrm{punct}_{b,s}} w_{b,h,t,s}
    """
    return selector_score(weights, is_punct, attention_mask=attention_mask)


def entropy_score(weights, *, attention_mask=None, normalize: bool = False) -> np.ndarray:
    r"""Breadth: the mean entropy of each real query's weights over its real keys, in nats -> `(H,)`.

    .. math:: \mathrm{ent}_h = \operatorname{mean}_{b,\, t\ \text{real}}
              \Big(-\sum_{s\ \text{real},\ w_{b,h,t,s} > 0} w_{b,h,t,s} \log w_{b,h,t,s}\Big)
              \;\big/\; \log n_b \ \text{ if normalize}

    0 for a head that puts all its weight on one key; `log n_b` (1 when normalised) for
    one that spreads it evenly over the `n_b` real keys of its row. Meant for
    bidirectional attention: every query sees all `n_b` keys (a causal query at `t` sees
    only `t + 1`, so its normalised entropy is lower than its breadth).
    """
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    real = _as_mask(attention_mask, B, T)
    if real is None:
        real = torch.ones(B, T, dtype=torch.bool)
    if not real.any():
        raise ValueError("attention_mask leaves no real query to score")
    keys = real[:, None, None, :].to(w.dtype)  # (B, T) -> (B, 1, 1, S)
    entropy = -(torch.special.xlogy(w, w) * keys).sum(dim=-1)  # (B, H, T, S) -> (B, H, T); 0 log 0 = 0
    if normalize:
        n_keys = real.sum(dim=-1).to(w.dtype)  # (B,)
        scale = torch.where(n_keys > 1, n_keys.log(), torch.ones_like(n_keys))  # one key: entropy 0, left as 0
        entropy = entropy / scale[:, None, None]  # (B, H, T)
    used = real[:, None, :].expand_as(entropy).to(w.dtype)  # (B, T) -> (B, H, T)
    return ((entropy * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))).numpy()  # (H,)


def anti_diagonal_score(weights) -> np.ndarray:
    r"""Mean weight on the anti-diagonal, `w[b, h, t, S - 1 - t]`, of attention weights `(B, H, T, S)` -> `(H,)`.

    .. math:: \mathrm{anti}_h = \operatorname{mean}_{b,\, 0 \le t \le \min(T, S) - 1}\; w_{b,h,t,S-1-t}

    The alignment of reversal: target position `t` of an encoder-decoder that reverses
    its source must read source position `S - 1 - t`, so its cross-attention weights
    `(B, H, T, S)` score near 1; a head spread evenly over the source scores `1 / S`.
    `T` and `S` may differ: queries `t >= S` have no anti-diagonal key and are left out.

    Args:
        weights: `(B, H, T, S)` attention weights, torch or numpy (e.g. an entry of
            `EncoderDecoder(...)(source, target_in, return_weights=True)[1]["cross"]`).
    """
    if isinstance(weights, np.ndarray):
        weights = torch.from_numpy(weights)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch tensor or numpy array of shape (B, H, T, S), got {type(weights).__name__}")
    if not (weights.dtype.is_floating_point):
        raise TypeError(f"weights must hold floating-point attention weights (B, H, T, S), got dtype {weights.dtype}")
    if weights.ndim != 4 or 0 in weights.shape:
        raise ValueError(f"weights must be attention weights of shape (B, H, T, S) with no empty axis, got shape "
                         f"{fmt_shape(weights.shape)}")
    w = weights.detach().double()
    T, S = w.shape[-2], w.shape[-1]
    t = torch.arange(min(T, S))  # the queries that have an anti-diagonal key
    return w[:, :, t, S - 1 - t].mean(dim=(0, 2)).numpy()  # (B, H, min(T, S)) -> (H,)


def induction_score(weights, tokens, *, attention_mask=None) -> np.ndarray:
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
        attention_mask: optional `(B, T)` 1 = real token, 0 = padding; padded tokens are
            neither queries nor keys.
    """
    w = _as_weights(weights)
    B, _, T, _ = w.shape
    real = _as_mask(attention_mask, B, T)
    tokens = torch.as_tensor(tokens)
    if tokens.shape != (B, T) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids of shape (B, T) = ({B}, {T}) to match the weights, got "
                         f"shape {fmt_shape(tokens.shape)} and dtype {tokens.dtype}")
    s = torch.arange(T)
    previous = torch.full_like(tokens, -1)
    previous[:, 1:] = tokens[:, :-1]  # (B, T): the token before each key s (none before s = 0)
    successor = (previous[:, None, :] == tokens[:, :, None]) & (s[None, :] <= s[:, None])  # (B, T, S): key s follows an earlier x_t
    if real is not None:
        successor = successor & real[:, :, None] & real[:, None, :]  # (B, T, S): real query, real key (and real key s-1)
        successor[:, :, 1:] &= real[:, None, :-1]
    used = successor.any(dim=-1)  # (B, T): queries whose token occurred before
    if not used.any():
        raise ValueError("no token in tokens occurs twice, so no query can do induction: use repeated sequences")
    mass = (w * successor[:, None].to(w.dtype)).sum(dim=-1)  # (B, H, T)
    used_f = used[:, None, :].expand_as(mass).to(w.dtype)  # (B, H, T)
    return ((mass * used_f).sum(dim=(0, 2)) / used_f.sum(dim=(0, 2))).numpy()  # (H,)


def head_scores(weights, tokens=None, *, attention_mask=None, selectors=None,
                bidirectional: bool | None = None) -> dict[str, np.ndarray]:
    """Every score for every head of every layer.

    Args:
        weights: a list with one `(B, H, T, T)` tensor per layer (what
            `TinyTransformer(...)(tokens, return_weights=True)` or
            `BertEncoder(...)(..., return_weights=True)` returns), or one tensor.
        tokens: the token ids `(B, T)`, for the induction score (left out when None).
        attention_mask: optional `(B, T)` 1 = real token, 0 = padding (padded queries
            and keys are ignored by every score).
        selectors: optional `{name: (B, T) bool}` key selectors, each scored with
            `selector_score` (e.g. `pretrained.bert_selectors(encoded)`: "cls", "sep",
            "punctuation").
        bidirectional: add "next_token" and "entropy" (normalised: 0 sharp .. 1 uniform
            over the real keys). Default: True when `attention_mask` or `selectors` is
            given (a BERT-like batch), False otherwise (lessons 07-08's causal models).

    Returns:
        `{"previous_token": (L, H), ["induction": (L, H),] "self": (L, H), "first_token":
        (L, H), ["next_token", "entropy",] [one per selector]}` numpy arrays, row = layer,
        column = head.
    """
    layers = [weights] if isinstance(weights, (torch.Tensor, np.ndarray)) else list(weights)
    if not layers:
        raise ValueError("weights is empty: pass one (B, H, T, T) tensor per layer")
    if selectors is not None and not isinstance(selectors, dict):
        raise TypeError(f"selectors must be a dict name -> (B, T) bool tensor, got {type(selectors).__name__}")
    if bidirectional is None:
        bidirectional = attention_mask is not None or selectors is not None
    if not isinstance(bidirectional, bool):
        raise TypeError(f"bidirectional must be True, False or None, got {bidirectional!r}")
    mask = {"attention_mask": attention_mask}
    scores = {"previous_token": np.stack([previous_token_score(w, **mask) for w in layers])}
    if tokens is not None:
        scores["induction"] = np.stack([induction_score(w, tokens, **mask) for w in layers])
    scores["self"] = np.stack([self_score(w, **mask) for w in layers])
    scores["first_token"] = np.stack([first_token_score(w, **mask) for w in layers])
    if bidirectional:
        scores["next_token"] = np.stack([next_token_score(w, **mask) for w in layers])
        scores["entropy"] = np.stack([entropy_score(w, normalize=True, **mask) for w in layers])
    for name, selector in (selectors or {}).items():
        if name in scores:
            raise ValueError(f"selector name {name!r} clashes with a built-in score; rename it")
        scores[name] = np.stack([selector_score(w, selector, **mask) for w in layers])
    return scores


def _check_scores(scores) -> list[str]:
    if not isinstance(scores, dict):
        raise TypeError(f"scores must be the dict name -> (L, H) array that head_scores returns, got {type(scores).__name__}")
    if not scores:
        raise ValueError("scores is empty ({}): pass the dict name -> (L, H) array that head_scores returns")
    shapes = {name: np.shape(value) for name, value in scores.items()}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"every score must be an (L, H) array of one shape, got shapes {shapes}")
    return list(scores)


def label_heads(scores: dict[str, np.ndarray], threshold: float = 0.5) -> list[list[str]]:
    """Name each head by its highest score when that score reaches `threshold`.

    Returns:
        `labels[layer][head]`: e.g. `"previous_token 0.93"`, or `"mixed"` when no score
        reaches the threshold.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise TypeError(f"threshold must be a number in (0, 1], got {threshold!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    names = _check_scores(scores)
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
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)) or decimals < 0:
        raise ValueError(f"decimals must be a whole number >= 0, got {decimals!r}")
    names = _check_scores(scores)
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
