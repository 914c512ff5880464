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

import numbers

import torch
from torch import nn

from ._arrays import check_flag, check_positive_finite, check_positive_int, fmt_shape
from .kv_cache import KVCache
from .masks import causal_mask, sliding_window_mask
from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEmbedding, alibi_bias, sinusoidal_encoding
from .sampling import sample_next_token

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
        n_kv_heads: key/value heads of the attention (default `n_heads`; grouped-query
            attention when fewer).

    `forward(x, mask=None, bias=None, cache=None)`: `x (B, T, d_model)`, `mask`/`bias`
    and `cache` (a `KVCache`) as in `MultiHeadAttention`. Returns `(x, weights)` with the
    per-head attention `weights (B, H, T, S)`; with `cache`, `(x, weights, cache)`.
    """

    def __init__(self, d_model: int, n_heads: int, *, mlp: bool = True, rope: bool = False,
                 norm: str = "pre", ln_eps: float = 1e-5, d_ff: int | None = None, n_kv_heads: int | None = None):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if not (isinstance(ln_eps, (int, float)) and not isinstance(ln_eps, bool) and ln_eps > 0):
            raise ValueError(f"ln_eps must be a positive number, got {ln_eps!r}")
        d_ff = 4 * d_model if d_ff is None else check_positive_int(d_ff, "d_ff")
        self.norm, self.d_ff = norm, d_ff
        self.ln_attn = nn.LayerNorm(d_model, eps=ln_eps)
        self.attn = MultiHeadAttention(d_model, n_heads, rope=rope, n_kv_heads=n_kv_heads)
        self.ln_mlp = nn.LayerNorm(d_model, eps=ln_eps) if mlp else None
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)) if mlp else None

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"

    def forward(self, x, mask=None, bias=None, cache=None):
        cached = () if cache is None else (cache,)
        if self.norm == "pre":
            out, weights, *cached = self.attn(self.ln_attn(x), mask=mask, bias=bias, cache=cache)  # (B, T, d_model), (B, H, T, S)
            x = x + out
            if self.mlp is not None:
                x = x + self.mlp(self.ln_mlp(x))  # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model)
            return (x, weights, *cached)
        out, weights, *cached = self.attn(x, mask=mask, bias=bias, cache=cache)  # (B, T, d_model), (B, H, T, S)
        x = self.ln_attn(x + out)
        if self.mlp is not None:
            x = self.ln_mlp(x + self.mlp(x))  # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model)
        return (x, weights, *cached)


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
        n_kv_heads: key/value heads per layer (default `n_heads`; fewer is grouped-query
            attention, 1 multi-query); must divide `n_heads`.
        window: if given (causal models only), every query sees only itself and the
            `window - 1` keys before it (`masks.sliding_window_mask`) instead of the whole
            past. Lesson 08 builds a copy of a trained model with `window=L`
            (`load_state_dict`) to change, at test time, which distances attention can reach.

    `forward(tokens, return_weights=False, cache=None)`: integer `tokens (B, T)`. Returns
    `logits (B, T, vocab_size)`, or `(logits, weights)` where `weights` is a list with one
    `(B, H, T, S)` tensor per layer. With `cache` (causal models only: a list of one
    `KVCache` per layer holding the `S - T` tokens before these, from `empty_cache(B)` or a
    previous call), the tokens are positions `S - T .. S - 1`, attend to the cached ones
    too, and the call returns `(logits, cache)` or `(logits, weights, cache)` with the
    extended cache: the logits equal those of the full forward over all `S` tokens.

    `generate(prompt, n_new_tokens, ...)` continues `prompt (B, T)` one token at a time.
    """

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_len: int,
                 positional: str = "learned", causal: bool = True, mlp: bool = True, n_kv_heads: int | None = None,
                 window: int | None = None):
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
        if window is not None:
            window = check_positive_int(window, "window")
            if not causal:
                raise ValueError(f"window={window} needs causal=True (a causal sliding window), got causal=False")
        self.window = window

        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = LearnedPositionalEmbedding(max_len, d_model) if positional == "learned" else None
        if self.position_embedding is not None:  # the same scale as the tokens, so neither drowns the other
            nn.init.normal_(self.position_embedding.table.weight, std=1.0)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, n_heads, mlp=mlp, rope=positional == "rope", n_kv_heads=n_kv_heads)
            for _ in range(n_layers)
        )
        self.ln_final = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, vocab_size, bias=False)

    def extra_repr(self) -> str:
        return (f"positional={self.positional!r}, causal={self.causal}, mlp={self.has_mlp}, "
                f"max_len={self.max_len}" + (f", window={self.window}" if self.window is not None else ""))

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

    def forward(self, tokens, return_weights: bool = False, cache=None):
        if not isinstance(return_weights, bool):
            raise TypeError(f"return_weights must be True or False, got {return_weights!r}")
        if cache is not None:
            return self._forward_cached(tokens, return_weights, cache)
        self._check_tokens(tokens)
        T = tokens.shape[1]
        x = self.token_embedding(tokens)  # (B, T) -> (B, T, d_model)
        if self.positional == "learned":
            x = x + self.position_embedding(T)  # (B, T, d_model) + (T, d_model)
        elif self.positional == "sinusoidal":
            x = x + sinusoidal_encoding(T, self.d_model, dtype=x.dtype).to(x.device)  # (B, T, d_model) + (T, d_model)
        mask = self._mask(T, T, tokens.device)  # (T, T) or None
        bias = alibi_bias(self.n_heads, T, dtype=x.dtype).to(x.device)[None] if self.positional == "alibi" else None  # (H, T, T) -> (1, H, T, T)
        weights = []
        for block in self.blocks:
            x, w = block(x, mask=mask, bias=bias)  # (B, T, d_model), (B, H, T, T)
            weights.append(w)
        logits = self.unembed(self.ln_final(x))  # (B, T, d_model) -> (B, T, vocab_size)
        return (logits, weights) if return_weights else logits

    def _mask(self, T: int, S: int, device):
        """The boolean `(T, S)` mask: causal, a causal sliding window, or None (bidirectional)."""
        if not self.causal:
            return None
        if self.window is not None:
            return sliding_window_mask(T, self.window, S, device=device)  # (T, S)
        return causal_mask(T, S, device=device)  # (T, S)

    def empty_cache(self, batch_size: int) -> list[KVCache]:
        """One empty `KVCache` per layer, `(batch_size, n_kv_heads, 0, d_head)`, to start `forward(..., cache=)`."""
        return [block.attn.empty_cache(batch_size) for block in self.blocks]

    def _check_cache(self, cache, B: int) -> int:
        """Check a model cache (one `KVCache` per layer, all of one length); return that length."""
        if not self.causal:
            raise ValueError("cache= needs a causal model (causal=True): in a bidirectional model every token attends "
                             "to the ones after it, so the keys and values of earlier tokens change as tokens arrive")
        if not isinstance(cache, (list, tuple)) or not all(isinstance(c, KVCache) for c in cache):
            raise TypeError(f"cache must be a list of one KVCache per layer (start with model.empty_cache(B)), got "
                            f"{cache!r:.80}")
        if len(cache) != self.n_layers:
            raise ValueError(f"cache must hold one KVCache per layer: the model has n_layers={self.n_layers}, the "
                             f"cache has {len(cache)}")
        lengths = {c.length for c in cache}
        if len(lengths) != 1:
            raise ValueError(f"the layers' caches hold different numbers of tokens {sorted(lengths)}: a cache must "
                             f"come from one sequence of calls")
        for block, c in zip(self.blocks, cache):
            block.attn._check_cache(c, B)  # batch, n_kv_heads, d_head and dtype
        return lengths.pop()

    def _forward_cached(self, tokens, return_weights: bool, cache):
        """`forward` for tokens at positions `S - T .. S - 1`, after the `S - T` cached ones."""
        if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise TypeError(f"tokens must be an integer torch tensor of shape (B, T), got {tokens!r:.60}")
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, T) with T >= 1, got shape {fmt_shape(tokens.shape)}")
        past = self._check_cache(cache, tokens.shape[0])
        T = tokens.shape[1]
        S = past + T
        if self.positional == "learned" and S > self.max_len:
            raise ValueError(
                f"the cache holds {past} tokens, so these T={T} tokens sit at positions {past}..{S - 1}, beyond "
                f"max_len={self.max_len}: positional='learned' has a trained vector only for positions "
                f"0..{self.max_len - 1}. 'sinusoidal', 'rope', 'alibi' and 'none' accept any length"
            )
        self._check_tokens(tokens)  # ids in range, T >= 1
        x = self.token_embedding(tokens)  # (B, T) -> (B, T, d_model)
        if self.positional == "learned":
            x = x + self.position_embedding(torch.arange(past, S, device=tokens.device))  # (B, T, d_model) + (T, d_model)
        elif self.positional == "sinusoidal":
            x = x + sinusoidal_encoding(S, self.d_model, dtype=x.dtype).to(x.device)[past:]  # (B, T, d_model) + (T, d_model)
        mask = self._mask(T, S, tokens.device)  # (T, S), end-aligned: the cached keys are all in the past
        bias = alibi_bias(self.n_heads, T, S, dtype=x.dtype).to(x.device)[None] if self.positional == "alibi" else None  # (1, H, T, S)
        weights, new_cache = [], []
        for block, layer_cache in zip(self.blocks, cache):
            x, w, layer_cache = block(x, mask=mask, bias=bias, cache=layer_cache)  # (B, T, d_model), (B, H, T, S)
            weights.append(w)
            new_cache.append(layer_cache)
        logits = self.unembed(self.ln_final(x))  # (B, T, d_model) -> (B, T, vocab_size)
        return (logits, weights, new_cache) if return_weights else (logits, new_cache)

    @torch.no_grad()
    def generate(self, prompt, n_new_tokens: int, use_cache: bool = True, temperature: float = 0.0, seed: int | None = None):
        r"""Continue `prompt (B, T)` by `n_new_tokens` tokens, one at a time: ids `(B, T + n_new_tokens)`.

        .. math:: x_{t+1} = \mathrm{sample}(\mathrm{logits}(x_{1..t})_t,\ \tau)

        With `use_cache`, the prompt runs once and fills a `KVCache` per layer; each later
        step feeds only the newest token (positions, RoPE angles and ALiBi offsets follow
        from the cache's length), so a step costs `O(S)` instead of `O(S^2)`. Without it,
        every step reruns the whole sequence. Both give the same logits (up to float
        round-off), so the same tokens.

        Args:
            prompt: integer tensor `(B, T)`, `T >= 1`.
            n_new_tokens: how many tokens to add, a whole number >= 0. With
                positional="learned" the sequence fed to the model, `T + n_new_tokens - 1`
                tokens, must fit in `max_len` (a ValueError before any work otherwise).
            use_cache: True or False.
            temperature: 0 (the default) is greedy argmax; > 0 samples from
                `softmax(logits / temperature)` (`sample_next_token`).
            seed: an int seeding the `torch.Generator` used for sampling, so a seed
                reproduces the tokens; None uses torch's global generator.

        Returns:
            Long tensor `(B, T + n_new_tokens)`: the prompt followed by the new tokens.
        """
        if isinstance(n_new_tokens, bool) or not isinstance(n_new_tokens, numbers.Integral) or n_new_tokens < 0:
            raise (TypeError if not isinstance(n_new_tokens, numbers.Integral) or isinstance(n_new_tokens, bool) else ValueError)(
                f"n_new_tokens must be a whole number >= 0, got {n_new_tokens!r}")
        n_new_tokens = int(n_new_tokens)
        use_cache = check_flag(use_cache, "use_cache")
        temperature = check_positive_finite(temperature, "temperature", allow_zero=True)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self._check_tokens(prompt)
        B, T = prompt.shape
        if use_cache and not self.causal:
            raise ValueError("use_cache=True needs a causal model; this one has causal=False (use use_cache=False)")
        if self.positional == "learned" and T + n_new_tokens - 1 > self.max_len:
            raise ValueError(
                f"generating {n_new_tokens} tokens after a prompt of T={T} feeds the model {T + n_new_tokens - 1} "
                f"tokens, more than max_len={self.max_len}: positional='learned' has no vector for position "
                f"{self.max_len} or later. Generate at most {self.max_len - T + 1} tokens"
            )
        generator = None if seed is None else torch.Generator(device=prompt.device).manual_seed(int(seed))
        tokens = prompt
        if n_new_tokens == 0:
            return tokens
        if use_cache:
            logits, cache = self(prompt, cache=self.empty_cache(B))  # (B, T, vocab_size), the prompt's keys and values
        else:
            logits = self(prompt)  # (B, T, vocab_size)
        for step in range(n_new_tokens):
            next_token = sample_next_token(logits[:, -1], temperature, generator)  # (B, vocab_size) -> (B,)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)  # (B, t) -> (B, t + 1)
            if step == n_new_tokens - 1:
                break
            if use_cache:
                logits, cache = self(next_token[:, None], cache=cache)  # (B, 1, vocab_size): only the new token
            else:
                logits = self(tokens)  # (B, t + 1, vocab_size): everything again
        return tokens
