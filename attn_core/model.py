"""A tiny decoder-only transformer for the trained demonstrations (lessons 07 and 08).

Everything that attends is `MultiHeadAttention`; everything positional comes from
`positional`. The model is small enough to train on a laptop CPU in seconds, and it
returns every head's attention weights when asked, so a lesson can look inside.

    tokens (B, T) -> token embedding (+ position vectors) -> n_layers x block -> LayerNorm
                  -> unembedding -> logits (B, T, vocab_size)

    block:  x = x + attention(LayerNorm(x))     # mask / bias / RoPE decide what is seen
            x = x + mlp(LayerNorm(x))           # only when mlp=True

`TransformerBlock` also builds BERT's post-LayerNorm block (`norm="post"`, `ln_eps`,
`d_ff`), which `pretrained.BertEncoder` (lesson 09) stacks.

The five positional schemes differ in *where* position enters:

=============  ======================================================  ===============
positional     what the model is told about order                      beyond max_len
=============  ======================================================  ===============
"none"         nothing (with causal=False the model sees a bag of      works
               tokens; a causal mask alone still leaks some order)
"learned"      a trained vector per position, added to the tokens      ValueError
"sinusoidal"   fixed sines and cosines, added to the tokens            works (untrained
                                                                       positions)
"rope"         queries and keys rotated by position (relative scores)  works
"alibi"        a penalty -m_h |i - j| added to the scores              works
=============  ======================================================  ===============
"""

from __future__ import annotations

import torch
from torch import nn

from ._arrays import check_positive_int, fmt_shape
from .masks import causal_mask
from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEmbedding, alibi_bias, sinusoidal_encoding

__all__ = ["POSITIONAL_SCHEMES", "NORMS", "TransformerBlock", "TinyTransformer"]

POSITIONAL_SCHEMES = ("none", "learned", "sinusoidal", "rope", "alibi")


NORMS = ("pre", "post")


class TransformerBlock(nn.Module):
    r"""One transformer block: attention, then (optionally) an MLP, with LayerNorm before or after.

    Pre-LayerNorm (`norm="pre"`, GPT-2 and `TinyTransformer`) normalises what enters each
    sub-layer and leaves the residual stream alone:

    .. math:: x \leftarrow x + \mathrm{MHA}(\mathrm{LN}(x)), \qquad
              x \leftarrow x + W_2\, \mathrm{GELU}(W_1\, \mathrm{LN}(x) + b_1) + b_2

    Post-LayerNorm (`norm="post"`, the original Transformer and BERT) normalises the sum:

    .. math:: x \leftarrow \mathrm{LN}(x + \mathrm{MHA}(x)), \qquad
              x \leftarrow \mathrm{LN}(x + W_2\, \mathrm{GELU}(W_1 x + b_1) + b_2)

    GELU is the exact one, `x * Phi(x)` with the normal CDF `Phi` (erf), as in BERT.

    Args:
        d_model: width of the token vectors.
        n_heads: attention heads (`MultiHeadAttention`).
        mlp: add the MLP sub-layer (False: attention only).
        rope: rotate queries and keys with RoPE inside attention.
        norm: "pre" or "post" (where LayerNorm sits, see above).
        ln_eps: the LayerNorms' epsilon (PyTorch's default 1e-5; BERT uses 1e-12).
        d_ff: the MLP's hidden width (default `4 * d_model`).

    `forward(x, mask=None, bias=None)`: `x (B, T, d_model)`, `mask`/`bias` as in
    `MultiHeadAttention`. Returns `(x, weights)` with the per-head attention
    `weights (B, H, T, T)`.
    """

    def __init__(self, d_model: int, n_heads: int, *, mlp: bool = True, rope: bool = False,
                 norm: str = "pre", ln_eps: float = 1e-5, d_ff: int | None = None):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if not (isinstance(ln_eps, (int, float)) and not isinstance(ln_eps, bool) and ln_eps > 0):
            raise ValueError(f"ln_eps must be a positive number, got {ln_eps!r}")
        d_ff = 4 * d_model if d_ff is None else check_positive_int(d_ff, "d_ff")
        self.norm, self.d_ff = norm, d_ff
        self.ln_attn = nn.LayerNorm(d_model, eps=ln_eps)
        self.attn = MultiHeadAttention(d_model, n_heads, rope=rope)
        self.ln_mlp = nn.LayerNorm(d_model, eps=ln_eps) if mlp else None
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)) if mlp else None

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"

    def forward(self, x, mask=None, bias=None):
        if self.norm == "pre":
            out, weights = self.attn(self.ln_attn(x), mask=mask, bias=bias)  # (B, T, d_model), (B, H, T, T)
            x = x + out
            if self.mlp is not None:
                x = x + self.mlp(self.ln_mlp(x))  # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model)
            return x, weights
        out, weights = self.attn(x, mask=mask, bias=bias)  # (B, T, d_model), (B, H, T, T)
        x = self.ln_attn(x + out)
        if self.mlp is not None:
            x = self.ln_mlp(x + self.mlp(x))  # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model)
        return x, weights


class TinyTransformer(nn.Module):
    r"""A small GPT-style transformer built from `MultiHeadAttention`.

    .. math:: h_0 = E[\mathrm{tokens}] + P, \qquad h_\ell = \mathrm{block}_\ell(h_{\ell-1}),
              \qquad \mathrm{logits} = \mathrm{LN}(h_L)\, U

    where `P` is the learned or sinusoidal position table (zero for "none", "rope" and
    "alibi", which act inside attention instead).

    Args:
        vocab_size: number of token ids (inputs and outputs).
        d_model: width of the token vectors; divisible by `n_heads`.
        n_heads: heads per layer (`d_model / n_heads` must be even for "rope").
        n_layers: number of blocks.
        max_len: the longest sequence the model is meant for. Only "learned" is bound by
            it (its table has `max_len` rows); the other schemes accept longer inputs.
        positional: one of "none", "learned", "sinusoidal", "rope", "alibi".
        causal: a causal mask (a token sees itself and the past) if True, full
            bidirectional attention otherwise. ALiBi's bias `-m |i - j|` equals the
            paper's causal `-m (i - j)` on every pair a causal mask allows.
        mlp: add an MLP after each attention layer (False: an attention-only model).

    `forward(tokens, return_weights=False)`: integer `tokens (B, T)`. Returns `logits
    (B, T, vocab_size)`, or `(logits, weights)` where `weights` is a list with one
    `(B, H, T, T)` tensor per layer.
    """

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_len: int,
                 positional: str = "learned", causal: bool = True, mlp: bool = True):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.max_len = check_positive_int(max_len, "max_len")
        if positional not in POSITIONAL_SCHEMES:
            raise ValueError(f"positional must be one of {POSITIONAL_SCHEMES}, got {positional!r}")
        for name, flag in (("causal", causal), ("mlp", mlp)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.positional, self.causal, self.has_mlp = positional, causal, mlp

        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = LearnedPositionalEmbedding(max_len, d_model) if positional == "learned" else None
        if self.position_embedding is not None:  # the same scale as the tokens, so neither drowns the other
            nn.init.normal_(self.position_embedding.table.weight, std=1.0)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, mlp=mlp, rope=positional == "rope") for _ in range(n_layers)
        )
        self.ln_final = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, vocab_size, bias=False)

    def extra_repr(self) -> str:
        return (f"positional={self.positional!r}, causal={self.causal}, mlp={self.has_mlp}, "
                f"max_len={self.max_len}")

    def _check_tokens(self, tokens) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise TypeError(f"tokens must be an integer torch tensor of shape (B, T), got {tokens!r:.60}")
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise ValueError(f"tokens must have shape (B, T) with T >= 1, got shape {fmt_shape(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"token ids must lie in 0..{self.vocab_size - 1} (vocab_size={self.vocab_size}), got values "
                f"from {int(tokens.min())} to {int(tokens.max())}"
            )
        T = tokens.shape[1]
        if self.positional == "learned" and T > self.max_len:
            raise ValueError(
                f"a sequence of T={T} tokens is longer than max_len={self.max_len}: positional='learned' has "
                f"a trained vector only for positions 0..{self.max_len - 1} and nothing to add at position "
                f"{self.max_len} or later. 'sinusoidal', 'rope', 'alibi' and 'none' accept any length"
            )

    def forward(self, tokens, return_weights: bool = False):
        if not isinstance(return_weights, bool):
            raise TypeError(f"return_weights must be True or False, got {return_weights!r}")
        self._check_tokens(tokens)
        T = tokens.shape[1]
        x = self.token_embedding(tokens)  # (B, T) -> (B, T, d_model)
        if self.positional == "learned":
            x = x + self.position_embedding(T)  # (B, T, d_model) + (T, d_model)
        elif self.positional == "sinusoidal":
            x = x + sinusoidal_encoding(T, self.d_model, dtype=x.dtype).to(x.device)  # (B, T, d_model) + (T, d_model)
        mask = causal_mask(T, device=tokens.device) if self.causal else None  # (T, T)
        bias = alibi_bias(self.n_heads, T, dtype=x.dtype).to(x.device)[None] if self.positional == "alibi" else None  # (H, T, T) -> (1, H, T, T)
        weights = []
        for block in self.blocks:
            x, w = block(x, mask=mask, bias=bias)  # (B, T, d_model), (B, H, T, T)
            weights.append(w)
        logits = self.unembed(self.ln_final(x))  # (B, T, d_model) -> (B, T, vocab_size)
        return (logits, weights) if return_weights else logits
