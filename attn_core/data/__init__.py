"""Small text data shipped with the package: the sentence sets of lesson 09.

`load_sentences(name)` reads `attn_core/data/sentences/<name>.txt` (one sentence a line)
or `<name>.tsv` (tab-separated columns); blank lines and lines starting with `#` are
comments. The files:

- `general`: 60 everyday sentences, for scoring heads;
- `pronoun_pairs`: 36 Winograd-style pairs (subject noun, object noun, sentence in which
  "it" is the subject, the same sentence with one word changed so "it" is the object);
- `bank_senses`: 60 sentences with "bank", 30 of the river sense and 30 of the money
  sense (sense, sentence);
- `bank_swaps`: 24 templates with "bank" and a slot `{}` for another word;
- `swapped_pairs`: 30 pairs with subject and object swapped ("The dog bites the man.").
"""

from __future__ import annotations

from importlib import resources

__all__ = ["SENTENCE_SETS", "load_sentences"]

SENTENCE_SETS = {"general": "txt", "pronoun_pairs": "tsv", "bank_senses": "tsv", "bank_swaps": "txt",
                 "swapped_pairs": "tsv"}


def load_sentences(name: str) -> list:
    """The sentence set `name`: a list of str (`.txt`) or of tuples of str (`.tsv` rows).

    Raises ValueError for an unknown name (the known ones are listed).
    """
    if name not in SENTENCE_SETS:
        raise ValueError(f"name must be one of {sorted(SENTENCE_SETS)}, got {name!r}")
    kind = SENTENCE_SETS[name]
    text = resources.files(__name__).joinpath("sentences", f"{name}.{kind}").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return rows if kind == "txt" else [tuple(row.split("\t")) for row in rows]
