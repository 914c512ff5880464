"""Positional information (lesson 05): one module per scheme.

- `sinusoidal`: fixed sine/cosine vectors added to the embeddings (the original Transformer).
- `learned`: a trained table of position vectors (BERT, GPT-2), with a hard `max_len`.
- `rope`: rotary embeddings that rotate queries and keys (RoFormer, LLaMA).
- `alibi`: a distance penalty added to the scores (ALiBi, "Train Short, Test Long").
- `segment`: BERT's sentence A / sentence B embeddings.
"""

from .alibi import alibi_bias, alibi_slopes
from .learned import LearnedPositionalEmbedding
from .rope import apply_rope, rope_angles
from .segment import SegmentEmbedding
from .sinusoidal import sinusoidal_encoding, sinusoidal_shift_matrix

__all__ = [
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "LearnedPositionalEmbedding",
    "apply_rope",
    "rope_angles",
    "alibi_slopes",
    "alibi_bias",
    "SegmentEmbedding",
]
