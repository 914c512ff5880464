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

`load_seed_sweep()` reads `seed_sweep.json`: what lessons 07 and 08's models learned with
each of several seeds, written by `tools/seed_sweep.py` (the lessons assert only what holds
in every seed; `tests/test_seed_sweep.py` re-runs a seed and compares).
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["SENTENCE_SETS", "load_sentences", "load_seed_sweep"]

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


def load_seed_sweep() -> dict:
    """The multi-seed table of lessons 07 and 08 (`tools/seed_sweep.py`).

    Returns a dict with `seeds` (a list of ints), and `lesson07` and `lesson08`, each
    mapping a seed (as a string, JSON's keys) to what that run found.
    """
    return json.loads(resources.files(__name__).joinpath("seed_sweep.json").read_text(encoding="utf-8"))
