"""attn_core: the one library behind the attention course.

Every lesson imports its mathematics from here, so it is written once and tested against
PyTorch's own implementations. Functions accept numpy arrays or torch tensors and return
the kind they were given; `nn.Module`s exist only where there are parameters.

Lesson -> module
----------------
=====================================  ==============================================
01 attention (relevance, softmax)      `attention.softmax`; hand-made word vectors:
                                       `toy`
02 queries, keys and values            `attention.scaled_dot_product_attention`
03 self-attention                      `attention`, `multihead` (one head)
04 multi-head attention                `multihead` (`split_heads`, `merge_heads`,
                                       `MultiHeadAttention`)
05 positional encoding                 `positional` (`sinusoidal`, `learned`, `rope`,
                                       `alibi`, `segment`)
06 masked attention                    `masks` (`causal_mask`, `padding_mask`,
                                       `mask_to_bias`, `sliding_window_mask`)
07 heads in a trained model            `model` (`TinyTransformer`), `tasks`, `train`,
                                       `heads` (head scores)
08 positional showdown                 `model`, `tasks`, `train`
09 a real pretrained model             `pretrained` (`load_minilm`, `BertEncoder`,
                                       `encode`, `sentence_embeddings`), `heads`
                                       (bidirectional scores, selectors)
10 inference and scale                 `tiled` (`online_softmax`, `tiled_attention`),
                                       `kv_cache` (`KVCache`, `kv_cache_bytes`),
                                       `sampling` (`sample_next_token`),
                                       `model` (`TinyTransformer.generate`),
                                       `multihead` (`n_kv_heads`: grouped-query),
                                       `seq2seq` (`EncoderDecoder`: cross-attention),
                                       `tasks` (`ReversalTask`), `heads`
                                       (`anti_diagonal_score`)
figures and explorers                  `viz`, `widgets`; exercises: `exercises`;
                                       notebooks' set-up: `notebook`
=====================================  ==============================================

Shape legend (PyTorch SDPA's layout)
------------------------------------
B        batch size
H        number of heads (`n_heads`)
H_kv     number of key/value heads (`n_kv_heads`; grouped-query attention when < H)
T        number of queries (target length)
S        number of keys and values (source length; S = T in self-attention)
D        a generic last axis; `d_k` for queries and keys, `d_v` for values
d_model  width of the token vectors
d_head   width of one head, `d_model // n_heads`

Tensors are `(B, H, T, D)`; scores and weights are `(B, H, T, S)`. Masks are boolean with
True = may attend; `mask_to_bias` turns them into additive 0 / -inf biases.
"""

from .attention import scaled_dot_product_attention, softmax
from .tiled import online_softmax, tiled_attention
from .kv_cache import KVCache, kv_cache_bytes
from .sampling import sample_next_token
from .heads import (
    ablate_heads,
    anti_diagonal_score,
    cls_score,
    entropy_score,
    first_token_score,
    format_head_scores,
    head_scores,
    induction_score,
    label_heads,
    next_token_score,
    previous_token_score,
    punctuation_score,
    selector_score,
    self_score,
    sep_score,
)
from .masks import causal_mask, mask_to_bias, padding_mask, sliding_window_mask
from .model import NORMS, POSITIONAL_SCHEMES, TinyTransformer, TransformerBlock
from .multihead import MultiHeadAttention, matmul_flops, merge_heads, parameter_count, split_heads
from .pretrained import (
    BertConfig,
    BertEncoder,
    Encoded,
    bert_selectors,
    contextual_vector,
    encode,
    load_minilm,
    mean_pool,
    sentence_embeddings,
)
from .tasks import IGNORE_INDEX, Batch, InductionTask, ReversalTask, Seq2SeqBatch, WhoDidWhatTask
from .seq2seq import DecoderBlock, EncoderDecoder
from .train import History, accuracy, evaluate  # the training loop: `attn_core.train.train`
from .positional import (
    LearnedPositionalEmbedding,
    SegmentEmbedding,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    rope_angles,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)

__version__ = "0.1.0"

__all__ = [
    "softmax",
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "mask_to_bias",
    "split_heads",
    "merge_heads",
    "MultiHeadAttention",
    "sliding_window_mask",
    "parameter_count",
    "matmul_flops",
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "LearnedPositionalEmbedding",
    "apply_rope",
    "rope_angles",
    "alibi_slopes",
    "alibi_bias",
    "SegmentEmbedding",
    # trained demonstrations (lessons 07-08)
    "TinyTransformer",
    "TransformerBlock",
    "POSITIONAL_SCHEMES",
    "InductionTask",
    "WhoDidWhatTask",
    "Batch",
    "IGNORE_INDEX",
    "evaluate",
    "accuracy",
    "History",
    "previous_token_score",
    "induction_score",
    "self_score",
    "first_token_score",
    "head_scores",
    "label_heads",
    "format_head_scores",
    "ablate_heads",
    # a real pretrained model (lesson 09)
    "NORMS",
    "next_token_score",
    "selector_score",
    "cls_score",
    "sep_score",
    "punctuation_score",
    "entropy_score",
    "BertConfig",
    "BertEncoder",
    "Encoded",
    "load_minilm",
    "encode",
    "bert_selectors",
    "mean_pool",
    "sentence_embeddings",
    "contextual_vector",
    # inference and scale (lesson 10)
    "online_softmax",
    "tiled_attention",
    "KVCache",
    "kv_cache_bytes",
    "sample_next_token",
    "ReversalTask",
    "Seq2SeqBatch",
    "EncoderDecoder",
    "DecoderBlock",
    "anti_diagonal_score",
]
