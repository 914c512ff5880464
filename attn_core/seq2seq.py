r"""An encoder-decoder transformer: cross-attention, where the decoder reads the encoder (lesson 10).

The original Transformer (Vaswani et al. 2017), BART and T5 are built this way. An
encoder reads the whole source with bidirectional self-attention; a decoder writes the
target one token at a time with causal self-attention and, in every block, a
*cross-attention* whose queries come from the decoder and whose keys and values come from
the encoder's output `memory`:

.. math:: \mathrm{cross}(x, m) = \operatorname{softmax}\Big(\frac{(x W_q)(m W_k)^\top}{\sqrt{d_\mathrm{head}}}\Big)\, (m W_v)

per head, with `T` decoder queries and `S` source keys: the weights are `(B, H, T, S)`,
and `T != S` is fine. Nothing new in the attention itself: it is `MultiHeadAttention`
called as `attn(query=x, key=memory, value=memory)`, with no mask (every target position
may read every source position).

    source (B, S) -> embedding + learned positions -> n_layers x encoder block -> LN -> memory (B, S, d_model)
    target_in (B, T) -> embedding + learned positions -> n_layers x decoder block -> LN -> logits (B, T, vocab)

    encoder block (TransformerBlock):   x = x + self_attention(LN(x))            (no mask)
                                        x = x + mlp(LN(x))
    decoder block (DecoderBlock):       x = x + self_attention(LN(x), causal)
                                        x = x + cross_attention(LN(x), memory)
                                        x = x + mlp(LN(x))

Positions are learned (one table for the source, one for the target), so a sequence is at
most `max_len` tokens long; a longer one is a ValueError.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from ._arrays import check_flag, check_positive_int, fmt_shape
from .masks import causal_mask
from .model import TransformerBlock
from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEmbedding

__all__ = ["DecoderBlock", "EncoderDecoder"]


class DecoderBlock(nn.Module):
    r"""One decoder block: causal self-attention, cross-attention to the encoder, MLP (pre-LayerNorm).

    .. math:: x \leftarrow x + \mathrm{MHA}_\mathrm{self}(\mathrm{LN}(x), \mathrm{causal}), \quad
              x \leftarrow x + \mathrm{MHA}_\mathrm{cross}(\mathrm{LN}(x), m, m), \quad
              x \leftarrow x + W_2\, \mathrm{GELU}(W_1\, \mathrm{LN}(x) + b_1) + b_2

    Args:
        d_model: width of the token vectors; n_heads: heads of both attentions.
        d_ff: the MLP's hidden width (default `4 * d_model`).

    `forward(x, memory, mask=None)`: `x (B, T, d_model)` the decoder's stream, `memory
    (B, S, d_model)` the encoder's output, `mask` for the self-attention (e.g.
    `causal_mask(T)`; the cross-attention is unmasked). Returns `(x, self_weights (B, H,
    T, T), cross_weights (B, H, T, S))`.
    """

    def __init__(self, d_model: int, n_heads: int, *, d_ff: int | None = None):
        super().__init__()
        d_model = check_positive_int(d_model, "d_model")
        d_ff = 4 * d_model if d_ff is None else check_positive_int(d_ff, "d_ff")
        self.ln_self = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.ln_cross = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ln_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x, memory, mask=None):
        d_model = self.ln_cross.normalized_shape[0]
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != d_model:
            raise (ValueError if isinstance(x, torch.Tensor) else TypeError)(
                f"x must be a torch tensor of shape (B, T, d_model={d_model}), got "
                f"{fmt_shape(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not isinstance(memory, torch.Tensor):
            raise TypeError(f"memory must be the encoder's output, a torch tensor (B, S, d_model={d_model}), got "
                            f"{type(memory).__name__}")
        if memory.ndim != 3 or memory.shape[-1] != d_model or memory.shape[0] != x.shape[0]:
            raise ValueError(f"memory must have shape (B, S, d_model={d_model}) with the B of x, got memory "
                             f"{fmt_shape(memory.shape)} and x {fmt_shape(x.shape)}")
        h = self.ln_self(x)
        out, self_weights = self.self_attn(h, mask=mask)  # (B, T, d_model), (B, H, T, T)
        x = x + out
        out, cross_weights = self.cross_attn(self.ln_cross(x), memory, memory)  # (B, T, d_model), (B, H, T, S)
        x = x + out
        x = x + self.mlp(self.ln_mlp(x))  # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model)
        return x, self_weights, cross_weights


class EncoderDecoder(nn.Module):
    r"""A small encoder-decoder transformer built from `MultiHeadAttention` (see the module docstring).

    .. math:: m = \mathrm{Encoder}(E[\mathrm{source}] + P_\mathrm{src}), \qquad
              \mathrm{logits} = \mathrm{LN}(\mathrm{Decoder}(E[\mathrm{target\_in}] + P_\mathrm{tgt},\ m))\, U

    The token embedding `E` is shared by source and target (one vocabulary).

    Args:
        vocab_size: number of token ids (source, target and the begin-of-sequence id).
        d_model: width of the token vectors; divisible by `n_heads`.
        n_heads: heads of every attention.
        n_layers: blocks in the encoder, and again in the decoder.
        max_len: the longest source and the longest target (learned position tables).
        bos: the begin-of-sequence id that starts `greedy_decode` (default `vocab_size - 1`,
            as in `ReversalTask`).

    `forward(source, target_in, return_weights=False)`: integer `source (B, S)` and
    `target_in (B, T)` (teacher forcing: `T` may differ from `S`). Returns `logits (B, T,
    vocab_size)`, or `(logits, weights)` with `weights = {"encoder": [per layer (B, H, S,
    S)], "decoder": [per layer (B, H, T, T)], "cross": [per layer (B, H, T, S)]}`.

    `greedy_decode(source, n_tokens)` writes `n_tokens` tokens after BOS, each the argmax.
    """

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_len: int, *,
                 bos: int | None = None):
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_heads = check_positive_int(n_heads, "n_heads")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.max_len = check_positive_int(max_len, "max_len")
        if bos is None:
            bos = vocab_size - 1
        if isinstance(bos, bool) or not isinstance(bos, numbers.Integral) or not 0 <= bos < vocab_size:
            raise ValueError(f"bos must be a token id in 0..{vocab_size - 1}, got {bos!r}")
        self.bos = int(bos)
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.source_positions = LearnedPositionalEmbedding(max_len, d_model)
        self.target_positions = LearnedPositionalEmbedding(max_len, d_model)
        for table in (self.source_positions, self.target_positions):  # the tokens' scale, as in TinyTransformer
            nn.init.normal_(table.table.weight, std=1.0)
        self.encoder = nn.ModuleList(TransformerBlock(d_model, n_heads) for _ in range(n_layers))
        self.ln_memory = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(DecoderBlock(d_model, n_heads) for _ in range(n_layers))
        self.ln_final = nn.LayerNorm(d_model)
        self.unembed = nn.Linear(d_model, vocab_size, bias=False)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, bos={self.bos}"

    def _check_tokens(self, tokens, name: str) -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point or tokens.dtype.is_complex \
                or tokens.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer torch tensor of shape (B, length), got {tokens!r:.60}")
        if tokens.ndim != 2 or tokens.shape[1] == 0 or tokens.shape[0] == 0:
            raise ValueError(f"{name} must have shape (B, length) with B >= 1 and length >= 1, got shape "
                             f"{fmt_shape(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() >= self.vocab_size:
            raise ValueError(f"{name}: token ids must lie in 0..{self.vocab_size - 1} (vocab_size={self.vocab_size}), "
                             f"got values from {int(tokens.min())} to {int(tokens.max())}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"{name} has {tokens.shape[1]} tokens, more than max_len={self.max_len}: the learned "
                             f"positions have a vector only for positions 0..{self.max_len - 1}")

    def encode(self, source):
        """The encoder: `source (B, S)` -> `(memory (B, S, d_model), weights [per layer (B, H, S, S)])`."""
        self._check_tokens(source, "source")
        x = self.token_embedding(source) + self.source_positions(source.shape[1])  # (B, S, d_model) + (S, d_model)
        weights = []
        for block in self.encoder:
            x, w = block(x)  # (B, S, d_model), (B, H, S, S): no mask, every token sees every token
            weights.append(w)
        return self.ln_memory(x), weights

    def decode(self, target_in, memory):
        """The decoder: `target_in (B, T)`, `memory (B, S, d_model)` -> `(logits, self weights, cross weights)`."""
        self._check_tokens(target_in, "target_in")
        if target_in.shape[0] != memory.shape[0]:
            raise ValueError(f"source and target_in must hold the same number of sequences B: got source B="
                             f"{memory.shape[0]} and target_in of shape {fmt_shape(target_in.shape)}")
        T = target_in.shape[1]
        x = self.token_embedding(target_in) + self.target_positions(T)  # (B, T, d_model) + (T, d_model)
        mask = causal_mask(T, device=target_in.device)  # (T, T): position t sees the target up to t only
        self_weights, cross_weights = [], []
        for block in self.decoder:
            x, w_self, w_cross = block(x, memory, mask=mask)  # (B, T, d_model), (B, H, T, T), (B, H, T, S)
            self_weights.append(w_self)
            cross_weights.append(w_cross)
        logits = self.unembed(self.ln_final(x))  # (B, T, d_model) -> (B, T, vocab_size)
        return logits, self_weights, cross_weights

    def forward(self, source, target_in, return_weights: bool = False):
        return_weights = check_flag(return_weights, "return_weights")
        self._check_tokens(source, "source")
        self._check_tokens(target_in, "target_in")
        if source.shape[0] != target_in.shape[0]:
            raise ValueError(f"source (B, S) and target_in (B, T) must hold the same number of sequences B, got "
                             f"source {fmt_shape(source.shape)} and target_in {fmt_shape(target_in.shape)}")
        memory, encoder_weights = self.encode(source)  # (B, S, d_model)
        logits, self_weights, cross_weights = self.decode(target_in, memory)  # (B, T, vocab_size)
        if not return_weights:
            return logits
        return logits, {"encoder": encoder_weights, "decoder": self_weights, "cross": cross_weights}

    @torch.no_grad()
    def greedy_decode(self, source, n_tokens: int):
        r"""Write `n_tokens` tokens for `source (B, S)`, each the argmax given the ones before: ids `(B, n_tokens)`.

        .. math:: y_t = \arg\max_v\ \mathrm{logits}(\mathrm{source},\ [\mathrm{BOS}, y_0, \dots, y_{t-1}])_{t, v}

        The encoder runs once; the decoder reruns on the growing target at each step
        (`n_tokens <= max_len`). The BOS id is not part of the result.
        """
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, numbers.Integral):
            raise TypeError(f"n_tokens must be a whole number >= 1, got {n_tokens!r}")
        if not 1 <= n_tokens <= self.max_len:
            raise ValueError(f"n_tokens must be between 1 and max_len={self.max_len} (the target's learned "
                             f"positions), got {n_tokens}")
        memory, _ = self.encode(source)  # (B, S, d_model), once
        tokens = torch.full((source.shape[0], 1), self.bos, dtype=torch.long, device=source.device)  # (B, 1)
        for _ in range(int(n_tokens)):
            logits, _, _ = self.decode(tokens, memory)  # (B, t, vocab_size)
            next_token = logits[:, -1].argmax(dim=-1)  # (B,)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)  # (B, t) -> (B, t + 1)
        return tokens[:, 1:]  # (B, n_tokens): BOS dropped
