"""Lesson 09's sentence sets (`attn_core.data`): the right sizes and the designs the lesson's
claims rely on (control pairs that differ only after "it", swapped pairs that are
permutations of each other, one "bank" per sentence)."""

import pytest

from attn_core.data import SENTENCE_SETS, load_sentences
from attn_core.exercises.pretrained import _problems_of_pair
from attn_core.pretrained import encode, load_minilm


@pytest.fixture(scope="module")
def tokenizer():
    return load_minilm()[1]


def test_sizes_and_shapes():
    sizes = {name: len(load_sentences(name)) for name in SENTENCE_SETS}
    assert sizes == {"general": 60, "pronoun_pairs": 36, "bank_senses": 60, "bank_swaps": 24, "swapped_pairs": 30}
    assert all(isinstance(s, str) and s.strip() == s and not s.startswith("#") for s in load_sentences("general"))
    for name, width in [("pronoun_pairs", 4), ("bank_senses", 2), ("swapped_pairs", 2)]:
        assert all(isinstance(row, tuple) and len(row) == width for row in load_sentences(name)), name
    assert len(set(load_sentences("general"))) == 60  # no duplicates


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="name must be one of"):
        load_sentences("generl")


def test_every_pronoun_pair_is_a_valid_control(tokenizer):
    for pair in load_sentences("pronoun_pairs"):
        subject, obj, it_subject, it_object = pair
        assert _problems_of_pair((it_subject, it_object, subject, obj), tokenizer) == [], pair
        tokens = tokenizer.encode(it_subject).tokens
        assert tokens.index(subject) < tokens.index(obj) < tokens.index("it")  # the subject comes first


def test_swapped_pairs_are_the_same_tokens_with_subject_and_object_exchanged(tokenizer):
    for first, second in load_sentences("swapped_pairs"):
        a, b = encode(tokenizer, [first, second]).tokens
        assert len(a) == len(b) == 8 and a[2] == b[5] and a[5] == b[2] and a[2] != a[5], (first, second)
        assert [t for i, t in enumerate(a) if i not in (2, 5)] == [t for i, t in enumerate(b) if i not in (2, 5)]


def test_bank_sets(tokenizer):
    senses = load_sentences("bank_senses")
    assert [sense for sense, _ in senses].count("river") == [sense for sense, _ in senses].count("money") == 30
    for sense, text in senses:
        assert sense in ("river", "money") and tokenizer.encode(text).tokens.count("bank") == 1, text
    for template in load_sentences("bank_swaps"):
        assert template.count("{}") == 1
        for word in ("river", "lake", "money", "school"):
            tokens = tokenizer.encode(template.format(word)).tokens
            assert tokens.count("bank") == 1 and tokens.count(word) == 1, (template, word)
