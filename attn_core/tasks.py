"""Toy tasks for the trained demonstrations: small seeded generators of token batches.

Each task has a `vocab` (token id -> word), `sample(batch_size, generator=...)` returning a
`Batch` of integer `tokens (B, T)` and `targets (B, T)`, and `decode(ids)`. A target is
the token the model should predict *at* that position; positions where nothing is asked
hold `IGNORE_INDEX` (-100, what `torch.nn.functional.cross_entropy` skips). Pass a
`torch.Generator` to get the same batch every time.

- `InductionTask`: A B C ... A B C ... (lesson 07). Once the block has been seen, every
  next token can be looked up: find where the current token occurred before and copy
  the token that followed it. That is what an *induction head* does.
- `WhoDidWhatTask`: "dog bites man who?" -> dog, "dog bites man whom?" -> man
  (lesson 08). The same words in another order give another answer, so a model that
  does not know the order cannot do better than guess.
- `ReversalTask`: a source sequence and its reverse as the target, for an
  encoder-decoder (lesson 10, cross-attention). Its `sample` returns a `Seq2SeqBatch`
  (`source`, `target_in`, `target`) instead of a `Batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._arrays import check_positive_int

__all__ = ["IGNORE_INDEX", "Batch", "Seq2SeqBatch", "InductionTask", "WhoDidWhatTask", "ReversalTask"]

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Batch:
    """A batch of a toy task.

    Attributes:
        tokens: integer `(B, T)` inputs.
        targets: integer `(B, T)`; the token to predict at each position, `IGNORE_INDEX`
            where nothing is asked.
        period: `(B,)` length of the repeated block (`InductionTask` only, else None).
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    period: torch.Tensor | None = None

    def __post_init__(self):
        for name in ("tokens", "targets", "period"):
            x = getattr(self, name)
            if x is None and name == "period":
                continue
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"{name} must be an integer torch tensor, got {type(x).__name__}")
            if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
                raise TypeError(f"{name} must hold integer token ids, got dtype {x.dtype}")
        if self.tokens.ndim != 2 or self.targets.shape != self.tokens.shape:
            raise ValueError(f"tokens and targets must both have shape (B, T), got tokens {tuple(self.tokens.shape)} "
                             f"and targets {tuple(self.targets.shape)}")
        if self.period is not None and tuple(self.period.shape) != (self.tokens.shape[0],):
            raise ValueError(f"period must have shape (B,) = ({self.tokens.shape[0]},), got {tuple(self.period.shape)}")


@dataclass(frozen=True)
class Seq2SeqBatch:
    """A batch of a sequence-to-sequence task (an encoder reads `source`, a decoder writes the target).

    Teacher forcing: the decoder is fed `target_in`, the target shifted one step right
    behind a begin-of-sequence id, and at position `t` it predicts `target[t]` having
    seen `target[:t]` only (its self-attention is causal).

    Attributes:
        source: integer `(B, S)`, what the encoder reads.
        target_in: integer `(B, T)`, `[BOS, target_0, ..., target_{T-2}]`.
        target: integer `(B, T)`, the token to predict at each position (`IGNORE_INDEX`
            where nothing is asked).
    """

    source: torch.Tensor
    target_in: torch.Tensor
    target: torch.Tensor

    def __post_init__(self):
        for name in ("source", "target_in", "target"):
            x = getattr(self, name)
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"{name} must be an integer torch tensor, got {type(x).__name__}")
            if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
                raise TypeError(f"{name} must hold integer token ids, got dtype {x.dtype}")
            if x.ndim != 2:
                raise ValueError(f"{name} must have shape (B, length), got shape {tuple(x.shape)}")
        if self.target_in.shape != self.target.shape or self.source.shape[0] != self.target.shape[0]:
            raise ValueError(f"source (B, S), target_in and target (B, T) must share B, and target_in and target T: got "
                             f"source {tuple(self.source.shape)}, target_in {tuple(self.target_in.shape)}, target "
                             f"{tuple(self.target.shape)}")


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _decode(vocab: tuple[str, ...], ids) -> list[str]:
    if not isinstance(ids, (torch.Tensor, np.ndarray, list, tuple, range)):
        raise TypeError(f"ids must be a sequence of integer token ids (T,), got {type(ids).__name__}")
    try:
        ids = torch.as_tensor(np.asarray(ids) if isinstance(ids, np.ndarray) else ids)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"ids must be integer token ids (T,), got {ids!r:.60}") from None
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"ids must be integer token ids, got dtype {ids.dtype}")
    if ids.ndim != 1:
        raise ValueError(f"decode takes one sequence of ids (T,), got shape {tuple(ids.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= len(vocab)):
        raise ValueError(f"ids must lie in 0..{len(vocab) - 1}, got values from {int(ids.min())} to {int(ids.max())}")
    return [vocab[i] for i in ids.tolist()]


class InductionTask:
    r"""Repeated random sequences: a block of `period` distinct random tokens, repeated
    until the sequence is `seq_len` long.

    .. math:: \mathrm{tokens}_t = A_{t \bmod n}, \qquad
              \mathrm{target}_t = \mathrm{tokens}_{t+1} \ \text{ for } n \le t \le T - 2

    The period `n` is drawn per sequence from `min_period..max_period`, so no fixed
    offset ("look n - 1 tokens back") solves the task: the model has to find the earlier
    occurrence of the current token by its content. The first block is unpredictable and
    carries no target; every position after it does.

    Args:
        vocab_size: number of distinct tokens, shown as letters A, B, C, ... when <= 26.
        seq_len: `T`, the length of every sequence.
        min_period, max_period: the range of block lengths `n` (inclusive); need
            `max_period <= vocab_size` (a block has distinct tokens) and
            `max_period <= seq_len - 2` (something to predict after the first block).
    """

    def __init__(self, vocab_size: int = 20, seq_len: int = 24, min_period: int = 5, max_period: int = 10):
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.seq_len = check_positive_int(seq_len, "seq_len")
        self.min_period = check_positive_int(min_period, "min_period")
        self.max_period = check_positive_int(max_period, "max_period")
        if min_period > max_period:
            raise ValueError(f"min_period={min_period} must be <= max_period={max_period}")
        if max_period > vocab_size:
            raise ValueError(f"max_period={max_period} must be <= vocab_size={vocab_size}: a block holds distinct tokens")
        if max_period > seq_len - 2:
            raise ValueError(
                f"max_period={max_period} must be <= seq_len - 2 = {seq_len - 2}, so every sequence has at "
                f"least one predictable token after its first block"
            )
        if vocab_size <= 26:
            self.vocab = tuple(chr(ord("A") + i) for i in range(vocab_size))
        else:
            self.vocab = tuple(str(i) for i in range(vocab_size))

    def __repr__(self) -> str:
        return (f"InductionTask(vocab_size={self.vocab_size}, seq_len={self.seq_len}, "
                f"min_period={self.min_period}, max_period={self.max_period})")

    def sample(self, batch_size: int, generator: torch.Generator | None = None, *, period: int | None = None) -> Batch:
        """`batch_size` sequences; `period` fixes the block length (default: random per sequence)."""
        batch_size = check_positive_int(batch_size, "batch_size")
        _check_generator(generator)
        B, T, V = batch_size, self.seq_len, self.vocab_size
        if period is None:
            periods = torch.randint(self.min_period, self.max_period + 1, (B,), generator=generator)  # (B,)
        else:
            period = check_positive_int(period, "period")
            if period > V or period > T - 2:
                raise ValueError(f"period must be <= vocab_size={V} and <= seq_len - 2 = {T - 2}, got {period}")
            periods = torch.full((B,), period)
        blocks = torch.rand(B, V, generator=generator).argsort(dim=-1)  # (B, V): a random permutation per row
        t = torch.arange(T)  # (T,)
        tokens = blocks.gather(1, t[None, :] % periods[:, None])  # (B, T): tokens_t = A_{t mod n}
        targets = torch.full((B, T), IGNORE_INDEX)
        targets[:, :-1] = tokens[:, 1:]  # the next token ...
        targets[t[None, :] < periods[:, None]] = IGNORE_INDEX  # ... but only once the block has been seen
        return Batch(tokens, targets, periods)

    def decode(self, ids) -> list[str]:
        """Token ids `(T,)` -> letters."""
        return _decode(self.vocab, ids)


class WhoDidWhatTask:
    """Tiny subject-verb-object stories with questions: "dog bites man who? cat sees owl whom? ...".

    Each sentence is four tokens, `noun verb noun question`, with two different nouns.
    At the question the model must answer: "who?" asks for the one who acted (the
    subject, three tokens back), "whom?" for the one it was done to (the object, one
    token back). "dog bites man who?" and "man bites dog who?" hold the same four words
    and need different answers. Only question positions carry a target.

    Args:
        nouns, verbs: lists or tuples of words (defaults: 8 animals-and-people nouns, 4
            verbs); a single string is a TypeError (it would be split into letters).
        n_sentences: sentences per sequence by default; `T = 4 * n_sentences`.
    """

    QUESTIONS = ("who?", "whom?")

    def __init__(self, nouns=("dog", "man", "cat", "bird", "fox", "owl", "bee", "cow"),
                 verbs=("bites", "sees", "chases", "helps"), n_sentences: int = 8):
        for name, words in (("nouns", nouns), ("verbs", verbs)):
            if isinstance(words, str):
                raise TypeError(f"{name} must be a list or tuple of words, got the string {words!r} "
                                f"(it would be split into letters); write e.g. {words.split()!r}")
            if not isinstance(words, (list, tuple)):
                raise TypeError(f"{name} must be a list or tuple of words, got {type(words).__name__}")
        nouns, verbs = tuple(nouns), tuple(verbs)
        if len(nouns) < 2:
            raise ValueError(f"nouns needs at least 2 words (subject and object differ), got {nouns}")
        if len(verbs) < 1:
            raise ValueError("verbs needs at least 1 word, got none")
        words = nouns + verbs + self.QUESTIONS
        if len(set(words)) != len(words) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"nouns, verbs and {self.QUESTIONS} must be distinct strings, got {words}")
        self.nouns, self.verbs = nouns, verbs
        self.n_sentences = check_positive_int(n_sentences, "n_sentences")
        self.vocab = words
        self.vocab_size = len(words)
        self.seq_len = 4 * self.n_sentences

    def __repr__(self) -> str:
        return f"WhoDidWhatTask({len(self.nouns)} nouns, {len(self.verbs)} verbs, n_sentences={self.n_sentences})"

    def encode(self, words) -> torch.Tensor:
        """A list (or space-separated string) of words -> token ids `(T,)`."""
        if isinstance(words, str):
            words = words.split()
        if not isinstance(words, (list, tuple)):
            raise TypeError(f"words must be a list of words or a space-separated string, got {type(words).__name__}")
        unknown = [w for w in words if w not in self.vocab]
        if unknown:
            raise ValueError(f"unknown words {unknown}; the vocabulary is {self.vocab}")
        return torch.tensor([self.vocab.index(w) for w in words])

    def decode(self, ids) -> list[str]:
        """Token ids `(T,)` -> words."""
        return _decode(self.vocab, ids)

    def sample(self, batch_size: int, generator: torch.Generator | None = None, *, n_sentences: int | None = None) -> Batch:
        """`batch_size` sequences of `n_sentences` sentences (default `self.n_sentences`)."""
        batch_size = check_positive_int(batch_size, "batch_size")
        n = self.n_sentences if n_sentences is None else check_positive_int(n_sentences, "n_sentences")
        _check_generator(generator)
        B, N, V = batch_size, len(self.nouns), len(self.verbs)
        subject = torch.randint(N, (B, n), generator=generator)  # (B, n) noun index
        obj = (subject + torch.randint(1, N, (B, n), generator=generator)) % N  # (B, n) a different noun
        verb = N + torch.randint(V, (B, n), generator=generator)  # (B, n) token ids of verbs
        asks_who = torch.randint(2, (B, n), generator=generator).bool()  # (B, n)
        question = torch.where(asks_who, N + V, N + V + 1)  # (B, n) "who?" or "whom?"
        tokens = torch.stack([subject, verb, obj, question], dim=-1).reshape(B, 4 * n)  # (B, n, 4) -> (B, T)
        answer = torch.where(asks_who, subject, obj)  # (B, n)
        targets = torch.full((B, n, 4), IGNORE_INDEX)
        targets[..., 3] = answer  # the answer is due at the question
        return Batch(tokens, targets.reshape(B, 4 * n))


class ReversalTask:
    r"""Reverse a sequence: the source is `length` random symbols, the target the same symbols backwards.

    .. math:: \mathrm{target}_t = \mathrm{source}_{S-1-t}, \qquad
              \mathrm{target\_in} = [\mathrm{BOS}, \mathrm{target}_0, \dots, \mathrm{target}_{T-2}]

    with `S = T = length`. To write target position `t` the decoder must read source
    position `S - 1 - t`: a trained encoder-decoder's cross-attention weights `(T, S)`
    concentrate on the anti-diagonal (`heads.anti_diagonal_score`). Symbols may repeat,
    so the task cannot be solved by content alone: position decides.

    Args:
        vocab_size: number of token ids, the begin-of-sequence id included: the symbols
            are ids `0 .. vocab_size - 2` (letters A, B, ... when <= 27 ids) and `bos =
            vocab_size - 1` (shown as "<s>"). Build the model with `task.vocab_size`.
        length: `S = T`, the length of every source and target.

    `sample(batch_size, generator=None)` returns a `Seq2SeqBatch`; `decode(ids)` turns ids
    `(T,)` into symbols.
    """

    def __init__(self, vocab_size: int = 10, length: int = 8):
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.length = check_positive_int(length, "length")
        if vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3 (at least two symbols and the begin-of-sequence id), got {vocab_size}")
        n_symbols = vocab_size - 1
        symbols = tuple(chr(ord("A") + i) for i in range(n_symbols)) if n_symbols <= 26 else tuple(str(i) for i in range(n_symbols))
        self.vocab = symbols + ("<s>",)
        self.bos = vocab_size - 1

    def __repr__(self) -> str:
        return f"ReversalTask(vocab_size={self.vocab_size}, length={self.length})"

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Seq2SeqBatch:
        """`batch_size` random sources and their reversals (`Seq2SeqBatch`, all `(B, length)`)."""
        batch_size = check_positive_int(batch_size, "batch_size")
        _check_generator(generator)
        B, L = batch_size, self.length
        source = torch.randint(self.vocab_size - 1, (B, L), generator=generator)  # (B, S): symbols, never BOS
        target = source.flip(-1)  # (B, T): target_t = source_{S-1-t}
        bos = torch.full((B, 1), self.bos)  # (B, 1)
        target_in = torch.cat([bos, target[:, :-1]], dim=1)  # (B, T): shifted right behind BOS
        return Seq2SeqBatch(source, target_in, target)

    def decode(self, ids) -> list[str]:
        """Token ids `(T,)` -> symbols ("<s>" for the begin-of-sequence id)."""
        return _decode(self.vocab, ids)
