"""Hand-made word vectors and projections for lessons 01-03.

The toy vectors are *hand-made*: each of their nine dimensions has a name (`FEATURES`),
so a learner can read an attention output as "mostly a living being". We chose the
numbers, so we chose which word "it" attends to; a trained model learns such vectors
(and the query/key projections) from data instead. Lessons 01-03 say so.
"""

from __future__ import annotations

import torch

__all__ = ["FEATURES", "KEY_FEATURES", "SENTENCES", "toy_word_vectors", "toy_embed", "toy_projections"]

FEATURES = ("animate", "human", "thing", "action", "grammar", "pronoun", "state", "nature", "money")
"""The meaning of each of the 9 dimensions of a toy word vector."""

SENTENCES = {
    "cat": "the cat sat on the mat because it was tired",
    "animal": "the animal didn't cross the street because it was tired",
    "river bank": "the bank near the river flooded after the storm",
    "money bank": "the bank approved the loan",
    "dog bites man": "dog bites man",
    "man bites dog": "man bites dog",
}
"""The example sentences of the lessons (lower case, one token per word), by short name."""


def toy_word_vectors() -> dict[str, list[float]]:
    """The hand-made word vectors: word -> 9 numbers, one per entry of `FEATURES`.

    Every number is a choice we made, with a reason a person can read. Note the one that
    decides lesson 01's example: "it" leans towards *animate* (0.6) more than *thing*
    (0.4), so its dot product with "cat" beats its dot product with "mat". We chose that
    because the sentence ends in "tired"; a trained model would have to learn it.
    "bank" is half *nature* (a river bank), half *money* (a bank that lends): only its
    context can tell which (lesson 03).
    """
    #          animate human thing action grammar pronoun state nature money
    return {
        "the":      [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # a pure grammar word
        "cat":      [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # a living being
        "sat":      [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.3, 0.0, 0.0],  # an action, a little bit a posture
        "on":       [0.0, 0.0, 0.3, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0],  # grammar about where things are
        "mat":      [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # a thing
        "because":  [0.0, 0.0, 0.0, 0.3, 0.7, 0.0, 0.0, 0.0, 0.0],  # grammar linking two events
        "it":       [0.6, 0.0, 0.4, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0],  # a pronoun for a non-human: living (our choice) or thing
        "was":      [0.0, 0.0, 0.0, 0.3, 0.7, 0.0, 0.3, 0.0, 0.0],  # grammar, announces a state
        "tired":    [0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],  # a state only living beings are in
        "animal":   [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # for these features, the same as "cat"
        "didn't":   [0.0, 0.0, 0.0, 0.3, 0.8, 0.0, 0.0, 0.0, 0.0],  # grammar, negates an action
        "cross":    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # an action
        "street":   [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # a thing
        "dog":      [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # a living being
        "bites":    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # an action
        "man":      [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # a living being and a person
        "bank":     [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5],  # a thing: river bank or money bank?
        "near":     [0.0, 0.0, 0.3, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0],  # grammar about where things are
        "river":    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],  # a thing of nature
        "flooded":  [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.0],  # an action water does
        "after":    [0.0, 0.0, 0.0, 0.2, 0.8, 0.0, 0.0, 0.0, 0.0],  # grammar about time
        "storm":    [0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0, 0.0],  # weather: nature
        "approved": [0.0, 0.3, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # an action people (and banks) do
        "loan":     [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # money
    }


def toy_embed(sentence: str = "cat") -> tuple[list[str], torch.Tensor]:
    """Split `sentence` into lower-case words and look up each word's toy vector.

    Args:
        sentence: a key of `SENTENCES` (e.g. "cat") or words of `toy_word_vectors()`
            separated by spaces.

    Returns:
        `(tokens, x)`: the T words and their vectors `x (T, 9)`, a tensor of torch's
        default dtype (float32 unless `torch.set_default_dtype` changed it), like
        `toy_projections`, so the two always multiply.
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a string of words, got {type(sentence).__name__}")
    sentence = SENTENCES.get(sentence, sentence)
    tokens = sentence.lower().split()
    if not tokens:
        raise ValueError("sentence must contain at least one word, got an empty string")
    table = toy_word_vectors()
    unknown = [t for t in tokens if t not in table]
    if unknown:
        raise ValueError(f"sentence has words without a toy vector: {unknown}; known words: {sorted(table)}")
    x = torch.tensor([table[t] for t in tokens], dtype=torch.get_default_dtype())  # (T, 9)
    return tokens, x


KEY_FEATURES = ("animate", "thing", "pronoun", "nature", "money")
"""The meaning of each of the 5 query/key dimensions of `toy_projections`."""


def toy_projections() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hand-made projections `w_q (9, 5)`, `w_k (9, 5)`, `w_v (9, 9)` for lessons 02-03.

    The 5 query/key dimensions are `KEY_FEATURES`. A key says what a word *is*: its
    animate, thing, pronoun, nature and money features, copied. A query says what a word
    *looks for*; we wrote three rules:

    - a pronoun looks for a living being (weight 6, our choice) or else a thing (3), and
      away from pronouns, itself included (-3);
    - a state ("tired") looks for the living being it describes (4);
    - a thing looks for words that say which kind of thing it is: nature or money (4).

    Every other word looks for nothing (a zero query), so it spreads its attention evenly.
    The values are the features themselves (`w_v` is the identity), so an output can be
    read feature by feature.
    """
    f, kf = FEATURES.index, KEY_FEATURES.index
    w_q = torch.zeros(len(FEATURES), len(KEY_FEATURES))
    w_q[f("pronoun"), [kf("animate"), kf("thing"), kf("pronoun")]] = torch.tensor([6.0, 3.0, -3.0])
    w_q[f("state"), kf("animate")] = 4.0
    w_q[f("thing"), [kf("nature"), kf("money")]] = 4.0
    w_k = torch.zeros(len(FEATURES), len(KEY_FEATURES))
    for name in KEY_FEATURES:
        w_k[f(name), kf(name)] = 1.0  # a key copies what the word is
    w_v = torch.eye(len(FEATURES))
    return w_q, w_k, w_v
