"""Exercises of lesson 09, a real pretrained model: score a pattern of your choice, write a
`[SEP]` score, design a Winograd-style control pair.

The two scores are checked against `attn_core.heads` on small padded batches whose padded
query rows are *not* zero (like a real encoder's), so forgetting the attention mask shows.
"""

from __future__ import annotations

import torch

from ..heads import _offset_score, sep_score
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_offset_score", "check_sep_weight", "check_control_pair"]

SEP_ID = 102  # [SEP] in BERT's WordPiece vocabulary
_LENGTHS = (7, 5, 3)


def _weights(lengths, n_heads: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random attention weights `(B, H, T, T)` of a padded batch, and its 0/1 mask `(B, T)`.

    Every row (padded queries too, as in a real encoder) is a softmax over the real keys;
    padded keys get exactly 0.
    """
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    scores = 2.0 * torch.randn(B, n_heads, T, T, generator=g, dtype=torch.float64)  # (B, H, T, T)
    scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    return scores.softmax(dim=-1), mask


def _ids(lengths, seps=None) -> torch.Tensor:
    """Token ids `(B, T)`: [CLS]=101, words, [SEP]=102 at the end of each row (and at `seps`), padding 0."""
    B, T = len(lengths), max(lengths)
    ids = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.arange(2000, 2000 + n)
        ids[b, 0], ids[b, n - 1] = 101, SEP_ID
        for s in (seps or {}).get(b, ()):
            ids[b, s] = SEP_ID
    return ids


# --------------------------------------------------------------------------- offset score


def _expected_offset(weights, attention_mask, offset):
    return torch.from_numpy(_offset_score(weights, -offset, attention_mask, skip_first=False))


def _offset_ignoring_mask(weights, attention_mask, offset):
    return torch.from_numpy(_offset_score(weights, -offset, None, skip_first=False))


def _offset_flipped(weights, attention_mask, offset):
    return torch.from_numpy(_offset_score(weights, offset, attention_mask, skip_first=False))


def _offset_missing_key_as_zero(weights, attention_mask, offset):
    B, H, T, _ = weights.shape
    real = attention_mask.bool()
    total = torch.zeros(H, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            if real[b, t] and 0 <= t + offset < T and real[b, t + offset]:
                total += weights[b, :, t, t + offset]
    return total / real.sum()  # divides by every real query, also those without a key at t + offset


MISTAKES_OFFSET_SCORE = (
    Mistake("ignores the mask", _offset_ignoring_mask,
            "Your scores count padded queries or padded keys. A padded query's row is not zero in a real "
            "encoder, so it must be left out: use only the queries t with attention_mask[b, t] == 1 whose key "
            "t + offset is also a real token."),
    Mistake("offset sign flipped", _offset_flipped,
            "You measured the key at t - offset. Offset -1 means the previous token, the key at t - 1."),
    Mistake("missing keys counted as zero", _offset_missing_key_as_zero,
            "You divided by every real query, also those whose key t + offset does not exist (past the end of "
            "the sentence). Average only over the queries that have that key."),
)


def check_offset_score(fn, *, verbose: bool = True) -> Result:
    """Check `fn(weights, attention_mask, offset) -> (H,)`: the mean weight each head puts
    on the key `offset` places away (`t + offset`; -1 previous, +1 next token), over the
    real queries whose key `t + offset` exists and is a real token.

    Compared with `attn_core.heads` (`previous_token_score` is `offset = -1`). Cases: one
    unpadded sentence with offsets -1, +1, +2, then a padded batch of lengths 7, 5, 3.
    """
    w1, m1 = _weights((6,), seed=1)
    w3, m3 = _weights(_LENGTHS, seed=2)

    def case(name, w, m, offset):
        return Case(name, (w, m, offset), {}, lambda: _expected_offset(w, m, offset))

    cases = [
        case("one sentence of 6 tokens, offset -1 (previous token)", w1, m1, -1),
        case("one sentence of 6 tokens, offset +1 (next token)", w1, m1, 1),
        case("one sentence of 6 tokens, offset +2", w1, m1, 2),
        case("a padded batch (lengths 7, 5, 3), offset -1", w3, m3, -1),
        case("a padded batch (lengths 7, 5, 3), offset +1", w3, m3, 1),
        case("a padded batch (lengths 7, 5, 3), offset -3", w3, m3, -3),
    ]
    hint = ("For each head, collect weights[b, h, t, t + offset] over every b and t such that t and t + offset are "
            "both real tokens (attention_mask == 1, 0 <= t + offset < T), and take their mean. Return one number "
            "per head: shape (H,).")
    return run_checks("offset_score", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_OFFSET_SCORE)


# --------------------------------------------------------------------------- [SEP] score


def _sep_last_position(weights, token_ids, attention_mask):
    last = weights[..., -1]  # (B, H, T): the last column, which is padding in a padded row
    used = attention_mask[:, None, :].to(last.dtype)
    return (last * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))


def _sep_all_queries(weights, token_ids, attention_mask):
    return torch.from_numpy(sep_score(weights, token_ids, SEP_ID))


def _sep_mean_over_seps(weights, token_ids, attention_mask):
    sep = (token_ids == SEP_ID).to(weights.dtype)  # (B, T)
    mass = (weights * sep[:, None, None, :]).sum(dim=-1) / sep.sum(dim=-1)[:, None, None]  # (B, H, T)
    used = attention_mask[:, None, :].to(weights.dtype)
    return (mass * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))


MISTAKES_SEP_WEIGHT = (
    Mistake("last position", _sep_last_position,
            "You took the last position as [SEP]. In a padded row the last position is [PAD]: find the [SEP] "
            "keys by their id (token_ids == 102)."),
    Mistake("padded queries counted", _sep_all_queries,
            "Your average includes the padded queries. Average only over the rows with attention_mask == 1."),
    Mistake("mean over the [SEP]s", _sep_mean_over_seps,
            "With two [SEP]s (a sentence pair) you averaged their weights; the score is the total weight on all "
            "[SEP] keys of the row: add them."),
)


def check_sep_weight(fn, *, verbose: bool = True) -> Result:
    """Check `fn(weights, token_ids, attention_mask) -> (H,)`: the total weight each head
    puts on `[SEP]` keys (id 102), averaged over every real query of the batch.

    Compared with `attn_core.heads.sep_score`. Cases: one sentence, a padded batch, and a
    sentence pair (two `[SEP]`s in a row).
    """
    w1, m1 = _weights((6,), seed=3)
    w3, m3 = _weights(_LENGTHS, seed=4)
    wp, mp = _weights((9, 6), seed=5)
    ids1, ids3, idsp = _ids((6,)), _ids(_LENGTHS), _ids((9, 6), seps={0: (4,)})

    def case(name, w, ids, m):
        return Case(name, (w, ids, m), {}, lambda: torch.from_numpy(sep_score(w, ids, SEP_ID, attention_mask=m)))

    cases = [
        case("one sentence of 6 tokens", w1, ids1, m1),
        case("a padded batch (lengths 7, 5, 3)", w3, ids3, m3),
        case("a sentence pair: [CLS] A [SEP] B [SEP], padded", wp, idsp, mp),
    ]
    hint = ("Two steps. First, for each query, the weight it puts on [SEP]: add up its weights on every key whose id "
            "is 102 (a pair has two [SEP] keys; padding is never [SEP]). Then, per head, the mean of that over the "
            "real queries only (attention_mask == 1) of every row of the batch: one number per head, shape (H,).")
    return run_checks("sep_weight", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_SEP_WEIGHT)


# --------------------------------------------------------------------------- control pair


def _problems_of_pair(pair, tokenizer) -> list[str]:
    """What is wrong with a control pair, in the learner's words; [] if nothing."""
    if not (isinstance(pair, tuple) and len(pair) == 4 and all(isinstance(x, str) for x in pair)):
        return [f"my_pair must be a tuple of 4 strings (sentence 1, sentence 2, noun 1, noun 2), got {pair!r:.120}"]
    first, second, noun_1, noun_2 = pair
    tokens = [tokenizer.encode(s).tokens for s in (first, second)]
    nouns = []
    for noun in (noun_1, noun_2):
        pieces = tokenizer.encode(noun, add_special_tokens=False).tokens
        if len(pieces) != 1:
            return [f"the noun {noun!r} is split into {pieces} by the tokenizer: pick a word that is one token"]
        nouns.append(pieces[0])
    if nouns[0] == nouns[1]:
        return ["the two nouns must be different words"]
    problems = []
    for which, toks in zip(("first", "second"), tokens):
        if toks.count("it") != 1:
            problems.append(f"the {which} sentence must contain 'it' exactly once (its tokens: {toks})")
            continue
        it = toks.index("it")
        for noun in nouns:
            if noun not in toks[:it]:
                problems.append(f"the noun {noun!r} must come before 'it' in the {which} sentence")
    if problems:
        return problems
    it_1, it_2 = tokens[0].index("it"), tokens[1].index("it")
    if tokens[0][:it_1 + 1] != tokens[1][:it_2 + 1]:
        return ["the two sentences must be identical up to and including 'it': change only what comes after it, "
                "so that 'it' sees the same words before it and a head cannot tell the sentences apart by position"]
    if tokens[0] == tokens[1]:
        return ["the two sentences are the same: change a word after 'it' so that 'it' means the other noun"]
    return []


def check_control_pair(pair, tokenizer, *, verbose: bool = True) -> Result:
    """Check the design of a Winograd-style control pair `(sentence_1, sentence_2, noun_1, noun_2)`.

    `noun_1` is what "it" means in `sentence_1`, `noun_2` what it means in `sentence_2`.
    Both nouns must be single tokens that occur before "it"; "it" occurs once; the
    sentences are identical up to and including "it" and differ after it. `None` (the
    starting value in the notebook) counts as not attempted.
    """
    checks = ["a tuple of 4 strings", "single-token nouns before 'it'", "identical up to 'it', different after"]
    from tokenizers import Tokenizer

    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be the tokenizers.Tokenizer that load_minilm() returns, got {type(tokenizer).__name__}")
    if pair is None:
        if verbose:
            print("○ control_pair: not attempted yet. Set my_pair to your two sentences and two nouns, then run "
                  "this cell again.")
        return Result("control_pair", False, 0, len(checks), message="not attempted yet")
    problems = _problems_of_pair(pair, tokenizer)
    if problems:
        if verbose:
            print(f"✗ control_pair: {problems[0]}")
            for extra in problems[1:]:
                print(f"  also: {extra}")
        return Result("control_pair", True, 0, len(checks), failed_case="design", message=problems[0])
    if verbose:
        print(f"✓ control_pair: the design passes the {len(checks)} checks a program can make. Whether your change "
              f"after 'it' really switches what 'it' means (from {pair[2]!r} to {pair[3]!r}) only a reader can "
              f"judge: read both sentences aloud, or ask a classmate which noun 'it' is in each.")
    return Result("control_pair", True, len(checks), len(checks))
