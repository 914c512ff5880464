"""The encoder-decoder of lesson 10 (cross-attention) and its reversal task.

Shapes with T != S; a causal decoder (a later target token cannot change earlier logits)
and a bidirectional encoder (a later source token changes every position); greedy_decode
equal to feeding back the argmax by hand; clear errors for bad inputs; and training: every
seed tried reaches >= 95 % token accuracy on reversal in a few seconds, with
cross-attention weights concentrated on the anti-diagonal.
"""

from __future__ import annotations

import time

import pytest
import torch

import attn_core
from attn_core import EncoderDecoder, ReversalTask, Seq2SeqBatch, anti_diagonal_score, evaluate
from attn_core.train import train

# The configuration the lesson trains (keep in step with notebooks/10_*.ipynb).
TRAINING = dict(d_model=32, n_heads=2, n_layers=1, steps=300, batch_size=64, lr=3e-3)
SEEDS = (0, 1, 2)


def _model(seed=0, vocab_size=7, d_model=8, n_heads=2, n_layers=2, max_len=9):
    torch.manual_seed(seed)
    return EncoderDecoder(vocab_size, d_model, n_heads, n_layers, max_len).eval()


def _ids(shape, seed=0, high=6):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------- the task


def test_reversal_batches():
    task = ReversalTask(vocab_size=10, length=8)
    batch = task.sample(5, generator=torch.Generator().manual_seed(0))
    assert isinstance(batch, Seq2SeqBatch)
    assert batch.source.shape == batch.target_in.shape == batch.target.shape == (5, 8)
    assert all(t.dtype == torch.long for t in (batch.source, batch.target_in, batch.target))
    assert torch.equal(batch.target, batch.source.flip(-1))
    assert (batch.target_in[:, 0] == task.bos).all() and torch.equal(batch.target_in[:, 1:], batch.target[:, :-1])
    assert task.bos == 9 == len(task.vocab) - 1 and int(batch.source.max()) < task.bos
    assert task.decode(batch.target_in[0])[0] == "<s>" and task.decode([0, 1]) == ["A", "B"]
    again = task.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.source, batch.source)  # a seeded generator gives the same batch


def test_seq2seq_batch_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="share B"):
        Seq2SeqBatch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="target_in must hold integer"):
        Seq2SeqBatch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.long))


# ----------------------------------------------------------------- the model


def test_shapes_with_source_and_target_of_different_lengths():
    B, S, T = 3, 7, 4  # T != S: cross-attention weights are (T, S), not square
    model = _model()
    logits, weights = model(_ids((B, S)), _ids((B, T), 1), return_weights=True)
    assert logits.shape == (B, T, 7)
    assert set(weights) == {"encoder", "decoder", "cross"}
    for key, shape in (("encoder", (B, 2, S, S)), ("decoder", (B, 2, T, T)), ("cross", (B, 2, T, S))):
        assert len(weights[key]) == 2 and all(w.shape == shape for w in weights[key]), key
        for w in weights[key]:
            assert torch.allclose(w.sum(-1), torch.ones(shape[:-1]), atol=1e-6)
    assert torch.equal(model(_ids((B, S)), _ids((B, T), 1)), logits)  # return_weights only adds the weights
    # and the other way round, a target longer than the source
    assert model(_ids((B, 2)), _ids((B, 9), 1)).shape == (B, 9, 7)


def test_decoder_is_causal():
    """Changing target token t changes no logits before t (and does change logits from t on).
    Fails if the decoder's causal mask is dropped."""
    model = _model()
    source, target_in = _ids((2, 6)), _ids((2, 6), 1)
    logits, weights = model(source, target_in, return_weights=True)
    for t in range(6):
        changed = target_in.clone()
        changed[:, t] = (changed[:, t] + 1) % 7
        other = model(source, changed)
        assert torch.allclose(other[:, :t], logits[:, :t], atol=1e-6), t
        assert not torch.allclose(other[:, t:], logits[:, t:], atol=1e-4), t
    for w in weights["decoder"]:
        assert torch.equal(w[..., ~attn_core.causal_mask(6)], torch.zeros_like(w[..., ~attn_core.causal_mask(6)]))


def test_decoder_mask_matters(monkeypatch):
    """The causality test above can fail: without the mask the first logits see the future."""
    import attn_core.seq2seq as seq2seq

    model = _model()
    source, target_in = _ids((2, 6)), _ids((2, 6), 1)
    monkeypatch.setattr(seq2seq, "causal_mask", lambda T, device=None: torch.ones(T, T, dtype=torch.bool))
    changed = target_in.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 7
    assert not torch.allclose(model(source, changed)[:, 0], model(source, target_in)[:, 0], atol=1e-4)


def test_encoder_is_not_causal():
    """The encoder reads the whole source both ways: changing the last source token changes
    the encoder's output at the first position, and so every logit."""
    model = _model()
    source, target_in = _ids((2, 6)), _ids((2, 3), 1)
    changed = source.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 7
    memory, weights = model.encode(source)
    assert not torch.allclose(model.encode(changed)[0][:, 0], memory[:, 0], atol=1e-4)
    assert not torch.allclose(model(changed, target_in)[:, 0], model(source, target_in)[:, 0], atol=1e-4)
    assert all((w[..., 0, 1:] > 0).all() for w in weights)  # the first query weighs later keys too


def test_greedy_decode_equals_the_argmax_fed_back_by_hand():
    model = _model(seed=3)
    source = _ids((4, 5), 2)
    tokens = torch.full((4, 1), model.bos)
    for _ in range(6):
        logits = model(source, tokens)  # (B, t, V)
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    out = model.greedy_decode(source, 6)
    assert out.shape == (4, 6) and out.dtype == torch.long
    assert torch.equal(out, tokens[:, 1:])


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m(torch.zeros(1, 3), torch.zeros(1, 2, dtype=torch.long)), TypeError, "source must be an integer"),
    (lambda m: m(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 2, dtype=torch.bool)), TypeError, "target_in must be an integer"),
    (lambda m: m(torch.full((1, 3), 7), torch.zeros(1, 2, dtype=torch.long)), ValueError, "source: token ids must lie in 0..6"),
    (lambda m: m(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[0, -1]])), ValueError, "target_in: token ids must lie in 0..6"),
    (lambda m: m(torch.zeros(1, 10, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long)), ValueError, "source has 10 tokens, more than max_len=9"),
    (lambda m: m(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 10, dtype=torch.long)), ValueError, "target_in has 10 tokens, more than max_len=9"),
    (lambda m: m(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long)), ValueError, "same number of sequences B"),
    (lambda m: m(torch.zeros(3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)), ValueError, "source must have shape (B, length)"),
    (lambda m: m(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long), return_weights=1), TypeError, "return_weights"),
    (lambda m: m.greedy_decode(torch.zeros(1, 3, dtype=torch.long), 10), ValueError, "n_tokens must be between 1 and max_len=9"),
    (lambda m: m.greedy_decode(torch.zeros(1, 3), 2), TypeError, "source must be an integer"),
])
def test_bad_inputs_get_clear_errors(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call(_model())


# ----------------------------------------------------------------- training on reversal


def _train(seed):
    task = ReversalTask(vocab_size=10, length=8)
    cfg = dict(TRAINING)
    torch.manual_seed(seed)
    model = EncoderDecoder(task.vocab_size, cfg.pop("d_model"), cfg.pop("n_heads"), cfg.pop("n_layers"), max_len=task.length)
    start = time.process_time()  # CPU seconds: what the training costs, whatever else the machine runs
    history = train(model, task, seed=seed, progress=False, **cfg)
    seconds = time.process_time() - start
    batch = task.sample(512, generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        _, weights = model(batch.source, batch.target_in, return_weights=True)
    return model, task, history, seconds, weights


@pytest.fixture(scope="module")
def trained():
    return {seed: _train(seed) for seed in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_reversal_is_learned_in_seconds_for_every_seed(trained, seed):
    model, task, history, seconds, _ = trained[seed]
    assert evaluate(model, task) >= 0.95
    assert seconds < 30, seconds  # 3-6 CPU seconds measured (one thread); a wide margin for slower CPUs
    assert history.accuracy[0] < 0.3  # it did learn: the first batch is near chance (1 / 9)


@pytest.mark.parametrize("seed", SEEDS)
def test_trained_cross_attention_is_anti_diagonal(trained, seed):
    """Target position t reads source position S - 1 - t: every head puts most weight there."""
    *_, weights = trained[seed]
    scores = anti_diagonal_score(weights["cross"][-1])  # (H,)
    assert scores.min() >= 0.8, scores
    assert weights["cross"][-1].mean(dim=(0, 1)).argmax(-1).tolist() == list(range(7, -1, -1))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_trained_model_reverses_by_greedy_decoding(trained, seed):
    """Without teacher forcing: fed back its own tokens, the model writes the reversal."""
    model, task, *_ = trained[seed]
    batch = task.sample(256, generator=torch.Generator().manual_seed(99))
    out = model.greedy_decode(batch.source, task.length)
    assert (out == batch.source.flip(-1)).double().mean() >= 0.95


def test_an_untrained_model_is_not_anti_diagonal():
    """The alignment is learned: before training the score is near uniform (1 / S)."""
    task = ReversalTask()
    torch.manual_seed(0)
    model = EncoderDecoder(task.vocab_size, 32, 2, 1, task.length).eval()
    batch = task.sample(256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, weights = model(batch.source, batch.target_in, return_weights=True)
    assert anti_diagonal_score(weights["cross"][-1]).max() < 0.3


def test_train_and_evaluate_take_a_seq2seq_task_without_changing_the_others():
    """train/evaluate dispatch on the batch type: a Seq2SeqBatch goes through model(source, target_in)."""
    task = ReversalTask(vocab_size=5, length=3)
    torch.manual_seed(0)
    model = EncoderDecoder(task.vocab_size, 8, 2, 1, 3)
    history = train(model, task, steps=3, batch_size=4, progress=False)
    assert len(history.loss) == 3 and 0 <= evaluate(model, task, n_sequences=8) <= 1
