"""Toy tasks, the training loop and the head scores."""

import numpy as np
import pytest
import torch

from attn_core.heads import (
    ablate_heads,
    first_token_score,
    format_head_scores,
    head_scores,
    induction_score,
    label_heads,
    previous_token_score,
    self_score,
)
from attn_core.model import TinyTransformer
from attn_core.tasks import IGNORE_INDEX, InductionTask, WhoDidWhatTask
from attn_core.train import History, accuracy, evaluate, train


# --- tasks -------------------------------------------------------------------------------

def test_induction_task_structure(gen):
    task = InductionTask(vocab_size=12, seq_len=20, min_period=3, max_period=8)
    batch = task.sample(64, gen)
    x, y, n = batch.tokens, batch.targets, batch.period
    assert x.shape == y.shape == (64, 20) and n.shape == (64,)
    assert x.dtype == y.dtype == torch.int64 and 0 <= x.min() and x.max() < 12
    assert set(n.tolist()) == set(range(3, 9))  # every period occurs in 64 draws
    for b in range(64):
        p = int(n[b])
        assert len(set(x[b, :p].tolist())) == p  # the block has distinct tokens
        assert torch.equal(x[b, p:], x[b, :-p])  # and repeats: x_t = x_{t-n}
        assert (y[b, :p] == IGNORE_INDEX).all() and y[b, -1] == IGNORE_INDEX
        assert torch.equal(y[b, p:-1], x[b, p + 1:])  # target = next token, once predictable
    fixed = task.sample(4, gen, period=5)
    assert (fixed.period == 5).all()
    assert task.decode(x[0])[:2] == [chr(65 + int(x[0, 0])), chr(65 + int(x[0, 1]))]


def test_who_did_what_task_structure(gen):
    task = WhoDidWhatTask(n_sentences=5)
    batch = task.sample(32, gen)
    x, y = batch.tokens, batch.targets
    assert x.shape == y.shape == (32, 20) and task.seq_len == 20 and batch.period is None
    n_nouns = len(task.nouns)
    for b in range(32):
        words = task.decode(x[b])
        for s in range(5):
            subj, verb, obj, q = words[4 * s:4 * s + 4]
            assert subj in task.nouns and obj in task.nouns and subj != obj and verb in task.verbs
            assert q in task.QUESTIONS
            assert task.vocab[y[b, 4 * s + 3]] == (subj if q == "who?" else obj)
            assert (y[b, 4 * s:4 * s + 3] == IGNORE_INDEX).all()
    assert (x[:, 0::4] < n_nouns).all()
    assert task.sample(2, gen, n_sentences=16).tokens.shape == (2, 64)
    ids = task.encode("dog bites man who?")
    assert task.decode(ids) == ["dog", "bites", "man", "who?"]


@pytest.mark.parametrize("task", [InductionTask(), WhoDidWhatTask()])
def test_tasks_are_deterministic_given_a_generator(task):
    a = task.sample(8, torch.Generator().manual_seed(5))
    b = task.sample(8, torch.Generator().manual_seed(5))
    c = task.sample(8, torch.Generator().manual_seed(6))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, c.tokens)


def test_task_errors(gen):
    with pytest.raises(ValueError, match="max_period=12 must be <= vocab_size=10"):
        InductionTask(vocab_size=10, max_period=12)
    with pytest.raises(ValueError, match="seq_len - 2"):
        InductionTask(seq_len=10, max_period=9)
    with pytest.raises(ValueError, match="min_period=6 must be <= max_period=5"):
        InductionTask(min_period=6, max_period=5)
    with pytest.raises(TypeError, match="generator"):
        InductionTask().sample(2, generator=0)
    with pytest.raises(ValueError, match="period"):
        InductionTask().sample(2, gen, period=30)
    with pytest.raises(ValueError, match="distinct"):
        WhoDidWhatTask(nouns=("dog", "man"), verbs=("dog",))
    with pytest.raises(ValueError, match="unknown words"):
        WhoDidWhatTask().encode("dog eats man")
    with pytest.raises(ValueError, match="ids must lie in"):
        WhoDidWhatTask().decode(torch.tensor([99]))


# --- training ------------------------------------------------------------------------------

def test_accuracy_counts_only_asked_positions():
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]])  # arg-max 1, 0, 0
    targets = torch.tensor([[1, 1, IGNORE_INDEX]])
    assert accuracy(logits, targets) == 0.5
    with pytest.raises(ValueError, match="asks for nothing"):
        accuracy(logits, torch.full((1, 3), IGNORE_INDEX))
    with pytest.raises(ValueError, match="disagree"):
        accuracy(logits, targets[:, :2])


def small_run(seed=0, steps=40, positional="alibi"):
    task = WhoDidWhatTask(n_sentences=3)
    torch.manual_seed(0)
    model = TinyTransformer(task.vocab_size, 16, 2, 2, task.seq_len, positional=positional, mlp=False)
    history = train(model, task, steps=steps, batch_size=32, lr=1e-2, seed=seed, progress=False)
    return model, history, task


def test_train_is_deterministic_and_learns():
    model_a, hist_a, task = small_run()
    model_b, hist_b, _ = small_run()
    _, hist_c, _ = small_run(seed=1)
    assert isinstance(hist_a, History) and len(hist_a.loss) == len(hist_a.accuracy) == 40
    assert hist_a.steps == list(range(1, 41))
    assert hist_a.loss == hist_b.loss and hist_a.accuracy == hist_b.accuracy  # bit for bit
    for p, q in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        assert torch.equal(p, q)
    assert hist_a.loss != hist_c.loss  # the seed picks the batches
    assert np.mean(hist_a.loss[-5:]) < 0.7 * np.mean(hist_a.loss[:5])  # it learns something
    assert not model_a.training  # left in eval mode
    assert torch.get_num_threads() >= 1


def test_history_smoothing():
    h = History(loss=[4.0, 2.0, 0.0, 2.0], accuracy=[0.0, 1.0, 1.0, 0.0])
    assert h.smoothed("loss", window=2) == [4.0, 3.0, 1.0, 1.0]
    assert h.smoothed("accuracy", window=10) == [0.0, 0.5, 2 / 3, 0.5]


def test_evaluate_by_position_and_beyond_training_length():
    model, _, task = small_run(steps=5)
    overall = evaluate(model, task, n_sequences=64)
    per_position = evaluate(model, task, n_sequences=64, by_position=True)
    assert per_position.shape == (12,) and np.isnan(per_position[:3]).all() and not np.isnan(per_position[3::4]).any()
    assert overall == pytest.approx(np.nanmean(per_position))  # every sentence has one question
    assert evaluate(model, task, n_sequences=64, seed=1234) == overall  # held-out set fixed by its seed
    assert evaluate(model, task, n_sequences=8, n_sentences=9, by_position=True).shape == (36,)


def test_train_errors():
    model, _, task = small_run(steps=1)
    with pytest.raises(TypeError, match="sample"):
        train(model, object(), steps=1, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(model, task, steps=1, lr=0, progress=False)
    with pytest.raises(TypeError, match="steps"):
        train(model, task, steps=1.5, progress=False)


# --- head scores ---------------------------------------------------------------------------

def one_hot_pattern(T, key_of):
    """(1, 1, T, T) weights putting all of query t's weight on key key_of(t)."""
    w = torch.zeros(1, 1, T, T)
    for t in range(T):
        w[0, 0, t, key_of(t)] = 1.0
    return w


def test_scores_of_pure_patterns():
    T = 8
    prev = one_hot_pattern(T, lambda t: max(t - 1, 0))
    diag = one_hot_pattern(T, lambda t: t)
    sink = one_hot_pattern(T, lambda t: 0)
    assert previous_token_score(prev)[0] == 1 and self_score(prev)[0] == 0 and first_token_score(prev)[0] == 1 / 7
    assert self_score(diag)[0] == 1 and previous_token_score(diag)[0] == 0
    assert first_token_score(sink)[0] == 1 and previous_token_score(sink)[0] == 1 / 7
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    expected = np.mean([1 / (t + 1) for t in range(1, T)])
    np.testing.assert_allclose(previous_token_score(uniform[None, None]), [expected])


def test_induction_score_on_a_repeated_sequence():
    tokens = torch.tensor([[3, 1, 4, 0, 3, 1, 4, 0, 3]])  # period 4
    T = tokens.shape[1]
    induction = one_hot_pattern(T, lambda t: t - 3 if t >= 4 else t)  # t - n + 1: the token after the earlier copy
    assert induction_score(induction, tokens)[0] == 1
    assert induction_score(one_hot_pattern(T, lambda t: max(t - 1, 0)), tokens)[0] == 0
    # at t = 8 (token 3, seen at 0 and 4) both successors (1 and 5) count
    split = induction.clone()
    split[0, 0, 8] = 0
    split[0, 0, 8, 1] = split[0, 0, 8, 5] = 0.5
    assert induction_score(split, tokens)[0] == 1
    with pytest.raises(ValueError, match="occurs twice"):
        induction_score(induction, torch.arange(T)[None])
    with pytest.raises(ValueError, match="tokens must be integer ids"):
        induction_score(induction, tokens[:, :4])


def test_head_scores_labels_format_and_errors():
    T = 8
    tokens = torch.tensor([[5, 6, 7, 8, 5, 6, 7, 8]])
    prev = one_hot_pattern(T, lambda t: max(t - 1, 0))
    diag = one_hot_pattern(T, lambda t: t)
    layer0 = torch.cat([prev, diag], dim=1)  # (1, 2, T, T): head 0 previous-token, head 1 self
    layer1 = torch.cat([one_hot_pattern(T, lambda t: t - 3 if t >= 4 else 0), diag], dim=1)
    scores = head_scores([layer0, layer1], tokens)
    assert list(scores) == ["previous_token", "induction", "self", "first_token"]
    assert all(s.shape == (2, 2) for s in scores.values())
    assert scores["previous_token"][0, 0] == 1 and scores["induction"][1, 0] == 1
    assert label_heads(scores) == [["previous_token 1.00", "self 1.00"], ["induction 1.00", "self 1.00"]]
    assert "induction" not in head_scores(layer0)
    table = format_head_scores(scores).splitlines()
    assert len(table) == 5 and table[0].split() == ["layer", "head", "previous_token", "induction", "self", "first_token"]
    with pytest.raises(ValueError, match=r"\(B, H, T, T\)"):
        previous_token_score(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="torch tensor or numpy"):
        self_score([[0.0]])
    with pytest.raises(ValueError, match="threshold"):
        label_heads(scores, threshold=0)


def test_ablate_heads_removes_their_contribution_and_copies():
    torch.manual_seed(0)
    model = TinyTransformer(9, 16, 2, 2, 10, positional="rope", mlp=False).eval()
    x = torch.randint(9, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)
        every_head = ablate_heads(model, [(layer, head) for layer in range(2) for head in range(2)])
        out = every_head(x)
        # with every head silenced an attention-only model sees only the current token
        same_token = x == x[0, 0]
        assert torch.allclose(out[same_token], out[same_token][0].expand_as(out[same_token]), atol=1e-5)
        one = ablate_heads(model, [(1, 0)])
        assert not torch.allclose(one(x), before, atol=1e-4)
        torch.testing.assert_close(model(x), before)  # the original is untouched
    assert one.blocks[1].attn.w_o.weight[:, :8].abs().sum() == 0 and one.blocks[1].attn.w_o.weight[:, 8:].abs().sum() > 0
    with pytest.raises(ValueError, match="head must lie in 0..1"):
        ablate_heads(model, [(0, 2)])
    with pytest.raises(TypeError, match="pairs"):
        ablate_heads(model, [0])
    with pytest.raises(TypeError, match="TinyTransformer"):
        ablate_heads(torch.nn.Linear(2, 2), [(0, 0)])


# --- issue 8 ---------------------------------------------------------------------------------

def test_smoothed_recovers_after_a_nan():
    h = History(loss=[1.0, float("nan"), 2.0, 4.0, 6.0])
    s = h.smoothed("loss", window=2)
    assert s[0] == 1.0 and np.isnan(s[1]) and np.isnan(s[2])  # windows that hold the nan
    assert s[3:] == [3.0, 5.0]  # and then it recovers
    assert History(loss=[1.0, 2.0, 3.0]).smoothed("loss", window=5) == [1.0, 1.5, 2.0]


def test_who_did_what_takes_lists_of_words():
    task = WhoDidWhatTask(nouns=["dog", "cat"], verbs=["sees"])
    assert task.nouns == ("dog", "cat") and task.vocab_size == 5
