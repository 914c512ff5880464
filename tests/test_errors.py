"""Every bad input gets a clear error naming the argument, what was received and what was expected."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from attn_core import (
    History,
    InductionTask,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    alibi_bias,
    alibi_slopes,
    apply_rope,
    causal_mask,
    mask_to_bias,
    merge_heads,
    padding_mask,
    rope_angles,
    scaled_dot_product_attention,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
    sliding_window_mask,
    softmax,
    split_heads,
    TinyTransformer,
    WhoDidWhatTask,
)

q = torch.zeros(2, 3, 5, 8)
k = torch.zeros(2, 3, 7, 8)
v = torch.zeros(2, 3, 7, 4)


@pytest.mark.parametrize(
    "call,err,pattern",
    [
        (lambda: scaled_dot_product_attention(q, torch.zeros(2, 3, 7, 6), v), ValueError,
         r"q and k must have the same last dimension d_k: q has shape \(2, 3, 5, 8\) \(d_k=8\), k has shape \(2, 3, 7, 6\) \(d_k=6\)"),
        (lambda: scaled_dot_product_attention(q, k, torch.zeros(2, 3, 6, 4)), ValueError,
         r"k and v must have the same length S.*k has shape \(2, 3, 7, 8\) \(S=7\), v has shape \(2, 3, 6, 4\) \(S=6\)"),
        (lambda: scaled_dot_product_attention(torch.zeros(8), k, v), ValueError,
         r"q must have at least 2 dimensions, shape \(\.\.\., T, d_k\), got shape \(8,\)"),
        (lambda: scaled_dot_product_attention([[1.0]], k, v), TypeError, r"q must be a numpy array or a torch tensor.*got list"),
        (lambda: scaled_dot_product_attention(q, k.numpy(), v), TypeError, r"q, k and v must be the same kind"),
        (lambda: scaled_dot_product_attention(q, torch.zeros(4, 3, 7, 8), torch.zeros(4, 3, 7, 4)), ValueError,
         r"leading \(batch, head\) dimensions of q, k and v must match or broadcast"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 7)), TypeError,
         r"mask must be boolean \(True = may attend\), got dtype torch.float32"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=np.ones((5, 7), dtype=np.int64)), TypeError,
         r"mask must be boolean \(True = may attend\), got dtype int64"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=causal_mask(5)), ValueError,
         r"mask of shape \(5, 5\) is not broadcastable to the scores' shape \(2, 3, 5, 7\)"),
        (lambda: scaled_dot_product_attention(q, k, v, mask=padding_mask([7, 7, 7], 7)), ValueError,
         r"mask of shape \(3, 1, 1, 7\) is not broadcastable to the scores' shape \(2, 3, 5, 7\)"),
        (lambda: scaled_dot_product_attention(q, k, v, bias=torch.zeros(4, 5, 7)), ValueError,
         r"bias of shape \(4, 5, 7\) is not broadcastable to the scores' shape \(2, 3, 5, 7\)"),
        (lambda: scaled_dot_product_attention(q, k, v, bias=causal_mask(5, 7)), TypeError, r"bias must be a float array.*mask="),
        (lambda: softmax([1.0, 2.0]), TypeError, r"x must be a numpy array or a torch tensor, got list"),
        (lambda: mask_to_bias(torch.ones(2, 2)), TypeError, r"mask must be boolean.*got dtype torch.float32"),
        (lambda: causal_mask(0), ValueError, r"T must be >= 1, got 0"),
        (lambda: causal_mask(3, 2.5), TypeError, r"S must be a whole number"),
        (lambda: padding_mask([1, 5], 4), ValueError, r"lengths must lie in 0\.\.S = 0\.\.4, got \[1, 5\]"),
        (lambda: padding_mask([[1, 2]], 4), ValueError, r"lengths must be one length per sequence, shape \(B,\), got shape \(1, 2\)"),
        (lambda: padding_mask([1.5], 4), TypeError, r"lengths must hold whole numbers"),
        (lambda: split_heads(torch.zeros(2, 5, 10), 3), ValueError,
         r"d_model=10 is not divisible by n_heads=3.*Choose n_heads from \[1, 2, 5, 10\]"),
        (lambda: split_heads(torch.zeros(10), 2), ValueError, r"x must have at least 2 dimensions, shape \(B, T, d_model\), got shape \(10,\)"),
        (lambda: merge_heads(torch.zeros(5, 4)), ValueError, r"x must have at least 3 dimensions, shape \(B, H, T, d_head\), got shape \(5, 4\)"),
        (lambda: MultiHeadAttention(10, 4), ValueError, r"d_model=10 is not divisible by n_heads=4"),
        (lambda: MultiHeadAttention(12, 0), ValueError, r"n_heads must be >= 1, got 0"),
        (lambda: MultiHeadAttention(12, 4, rope=True), ValueError, r"d_head = d_model / n_heads must be even, got 3"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 12)), ValueError, r"query must have shape \(B, T, d_model=16\), got shape \(2, 5, 12\)"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(5, 16)), ValueError, r"query must have shape \(B, T, d_model=16\), got shape \(5, 16\)"),
        (lambda: MultiHeadAttention(16, 4)(np.zeros((1, 5, 16))), TypeError, r"query must be a torch tensor"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 16), torch.zeros(2, 6, 16), torch.zeros(2, 7, 16)), ValueError,
         r"key and value S"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 16), mask=torch.ones(5, 5)), TypeError, r"mask must be boolean"),
        (lambda: MultiHeadAttention(16, 4)(torch.zeros(2, 5, 16), mask=causal_mask(4)), ValueError,
         r"mask of shape \(4, 4\) is not broadcastable to the scores' shape \(2, 4, 5, 5\)"),
        (lambda: MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2)), ValueError, r"batch_first=True"),
        (lambda: MultiHeadAttention.from_torch(nn.Linear(2, 2)), TypeError, r"expects a torch.nn.MultiheadAttention, got Linear"),
        (lambda: apply_rope(torch.zeros(2, 5, 7)), ValueError, r"last axis of x must be even, got x of shape \(2, 5, 7\) \(D=7\)"),
        (lambda: apply_rope(torch.zeros(5, 8), positions=torch.arange(4)), ValueError,
         r"positions must have shape \(T,\) = \(5,\) or \(\.\.\., 5\) to match x of shape \(5, 8\), got shape \(4,\)"),
        (lambda: sinusoidal_encoding(10, 0), ValueError, r"d_model must be >= 1, got 0"),
        (lambda: sinusoidal_encoding(10, 4, base=0), ValueError, r"base must be a finite number > 0, got 0"),
        (lambda: sinusoidal_shift_matrix(1, 5), ValueError, r"needs an even d_model"),
        (lambda: LearnedPositionalEmbedding(4, 8)(torch.tensor([0.5])), TypeError, r"positions must be an int or an integer torch tensor"),
        (lambda: LearnedPositionalEmbedding(4, 8)(5), ValueError, r"sequence length 5 exceeds max_len=4"),
        (lambda: alibi_slopes(0), ValueError, r"n_heads must be >= 1, got 0"),
        (lambda: alibi_bias(4, -1), ValueError, r"T must be >= 1, got -1"),
    ],
)
def test_bad_input_is_named_with_received_and_expected(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call()


def test_errors_are_raised_before_torch_sees_the_input():
    """The message comes from attn_core, not from a matmul deep inside torch."""
    with pytest.raises(ValueError) as info:
        scaled_dot_product_attention(q, torch.zeros(2, 3, 7, 6), v)
    assert info.traceback[-1].path.name == "attention.py"


# --- issue 8, section 2: inputs that used to give a silently wrong answer -------------------
# Each of these returned something (zeros, nan, an inverted mask, a grown output) or raised
# an exception from deep inside torch; now each is a ValueError/TypeError naming the argument.

x16 = torch.zeros(2, 5, 16)


@pytest.mark.parametrize(
    "call,err,pattern",
    [
        # flags must be real booleans
        (lambda: MultiHeadAttention(16, 4, rope="no"), TypeError, r"rope must be True or False, got 'no' \(str\)"),
        (lambda: MultiHeadAttention(16, 4, bias="yes"), TypeError, r"bias must be True or False, got 'yes' \(str\)"),
        (lambda: MultiHeadAttention(16, 4, rope=1), TypeError, r"rope must be True or False, got 1 \(int\)"),
        (lambda: apply_rope(torch.zeros(3, 4), interleaved="no"), TypeError, r"interleaved must be True or False, got 'no'"),
        (lambda: apply_rope(torch.zeros(3, 4), interleaved=0), TypeError, r"interleaved must be True or False, got 0"),
        # bases must be positive and finite
        (lambda: MultiHeadAttention(16, 4, rope=True, rope_base=0), ValueError, r"rope_base must be a finite number > 0, got 0"),
        (lambda: MultiHeadAttention(16, 4, rope=True, rope_base=float("inf")), ValueError, r"rope_base must be a finite number > 0"),
        (lambda: MultiHeadAttention(16, 4, rope=True, rope_base="10000"), TypeError, r"rope_base must be a number"),
        (lambda: apply_rope(torch.zeros(3, 4), base=0), ValueError, r"base must be a finite number > 0, got 0"),
        (lambda: apply_rope(torch.zeros(3, 4), base=-2.0), ValueError, r"base must be a finite number > 0, got -2.0"),
        (lambda: rope_angles(torch.arange(3), 4, base=float("nan")), ValueError, r"base must be a finite number > 0, got nan"),
        (lambda: sinusoidal_shift_matrix(1, 4, base=0), ValueError, r"base must be a finite number > 0, got 0"),
        (lambda: sinusoidal_encoding(4, 4, base=float("inf")), ValueError, r"base must be a finite number > 0, got inf"),
        (lambda: sinusoidal_shift_matrix(float("nan"), 4), ValueError, r"offset must be a finite number, got nan"),
        # sizes
        (lambda: rope_angles(torch.arange(3), -4), ValueError, r"d must be >= 1, got -4"),
        (lambda: rope_angles(torch.arange(3), 5), ValueError, r"d must be even"),
        (lambda: rope_angles([0, 1, 2], 4), TypeError, r"positions must be a numpy array or a torch tensor"),
        (lambda: causal_mask(4, 2), ValueError, r"S=2 < T=4.*first 2 queries"),
        (lambda: sliding_window_mask(4, 2, S=3), ValueError, r"S=3 < T=4"),
        (lambda: alibi_bias(2, 4, 3), ValueError, r"S=3 < T=4"),
        (lambda: padding_mask([], 3), ValueError, r"lengths is empty"),
        (lambda: padding_mask("23", 3), TypeError, r"lengths must be"),
        (lambda: LearnedPositionalEmbedding(4, 8)(-1), ValueError, r"sequence length must be >= 0, got -1"),
        (lambda: scaled_dot_product_attention(torch.zeros(2, 0), torch.zeros(3, 0), torch.zeros(3, 4)), ValueError,
         r"d_k must be >= 1.*q has shape \(2, 0\)"),
        (lambda: scaled_dot_product_attention(np.zeros((2, 0)), np.zeros((3, 0)), np.zeros((3, 4))), ValueError, r"d_k must be >= 1"),
        (lambda: softmax(torch.zeros(3), axis=1), ValueError, r"axis=1 is out of range for x of shape \(3,\)"),
        (lambda: softmax(np.zeros(3), axis=1), ValueError, r"axis=1 is out of range for x of shape \(3,\)"),
        (lambda: softmax(np.zeros(3), axis=0.5), TypeError, r"axis must be an int"),
        # float-producing functions take float inputs and float dtypes (one rule for the package)
        (lambda: mask_to_bias(causal_mask(2), dtype=torch.bool), TypeError, r"dtype must be a floating dtype.*got torch.bool"),
        (lambda: mask_to_bias(causal_mask(2), dtype=torch.int64), TypeError, r"dtype must be a floating dtype.*got torch.int64"),
        (lambda: mask_to_bias(causal_mask(2).numpy(), dtype=np.int32), TypeError, r"dtype must be a floating dtype.*got int32"),
        (lambda: alibi_bias(2, 3, dtype=torch.int64), TypeError, r"dtype must be a floating dtype.*got torch.int64"),
        (lambda: alibi_slopes(2, dtype=torch.int32), TypeError, r"dtype must be a floating dtype.*got torch.int32"),
        (lambda: sinusoidal_encoding(3, 4, dtype=torch.int64), TypeError, r"dtype must be a floating dtype.*got torch.int64"),
        (lambda: sinusoidal_shift_matrix(1, 4, dtype=torch.bool), TypeError, r"dtype must be a floating dtype.*got torch.bool"),
        (lambda: apply_rope(torch.ones(3, 4, dtype=torch.int64)), TypeError, r"x must hold floating-point numbers, got dtype torch.int64.*\.float\(\)"),
        (lambda: apply_rope(torch.ones(3, 4), positions=torch.ones(3, dtype=torch.bool)), TypeError, r"positions must hold numbers.*got dtype torch.bool"),
        (lambda: softmax(torch.tensor([1, 2])), TypeError, r"x must hold floating-point numbers, got dtype torch.int64"),
        (lambda: softmax(np.array([1, 2])), TypeError, r"x must hold floating-point numbers, got dtype int64"),
        (lambda: scaled_dot_product_attention(q.long(), k, v), TypeError, r"q must hold floating-point numbers, got dtype torch.int64"),
        (lambda: scaled_dot_product_attention(q, k, v, bias=torch.zeros(5, 7, dtype=torch.int64)), TypeError,
         r"bias must be a float array.*torch.int64"),
        (lambda: scaled_dot_product_attention(q, k, v, scale="0.5"), TypeError, r"scale must be a number"),
        (lambda: scaled_dot_product_attention(q, k, v, scale=float("nan")), ValueError, r"scale must be a finite number, got nan"),
        # apply_rope: positions must not add dimensions to x
        (lambda: apply_rope(torch.ones(3, 4), positions=torch.arange(3).expand(2, 3)), ValueError,
         r"positions of shape \(2, 3\) would change the shape of x \(3, 4\)"),
        # mixed float32 / float64: the course's message, not torch's `mat1 and mat2`
        (lambda: scaled_dot_product_attention(q, k.double(), v), TypeError,
         r"q, k and v must have the same dtype, got q torch.float32, k torch.float64, v torch.float32.*\.float\(\).*\.double\(\)"),
        (lambda: scaled_dot_product_attention(q.numpy(), k.numpy().astype(np.float64), v.numpy()), TypeError,
         r"q, k and v must have the same dtype, got q float32, k float64, v float32.*astype"),
        (lambda: MultiHeadAttention(16, 4)(x16.double()), TypeError,
         r"query has dtype torch.float64 but the module's weights are torch.float32.*\.float\(\).*\.double\(\)"),
        (lambda: MultiHeadAttention(16, 4)(x16, x16.double()), TypeError, r"key has dtype torch.float64 but the module's weights are torch.float32"),
        (lambda: MultiHeadAttention(16, 4)(x16.long()), TypeError, r"query has dtype torch.int64"),
        # MultiHeadAttention: a 3-D mask or bias means (B, T, S); other ranks are refused
        (lambda: MultiHeadAttention(16, 4)(x16, mask=torch.ones(5, dtype=torch.bool)), ValueError,
         r"mask of shape \(5,\).*accepted shapes: \(T, S\), \(B, T, S\), \(B\|1, H\|1, T, S\)"),
        (lambda: MultiHeadAttention(16, 4)(x16, mask=torch.ones(4, 5, 5, dtype=torch.bool)), ValueError,
         r"mask of shape \(4, 5, 5\).*\(B, T, S\) = \(2, 5, 5\)"),
        (lambda: MultiHeadAttention(16, 4)(x16, bias=torch.zeros(4, 5, 5)), ValueError,
         r"bias of shape \(4, 5, 5\).*\(B, T, S\) = \(2, 5, 5\).*\(1, H, T, S\)"),
        (lambda: MultiHeadAttention(16, 4)(x16, mask=torch.ones(1, 1, 1, 5, 5, dtype=torch.bool)), ValueError,
         r"mask of shape \(1, 1, 1, 5, 5\)"),
        # RoPE positions: explicit, and never silently ignored
        (lambda: MultiHeadAttention(16, 4)(x16, positions=torch.arange(5)), ValueError,
         r"positions= only applies with rope=True.*MultiHeadAttention\(16, 4\) has rope=False"),
        (lambda: MultiHeadAttention(16, 4)(x16, key_positions=torch.arange(5)), ValueError, r"key_positions= only applies with rope=True"),
        (lambda: MultiHeadAttention(16, 4, rope=True)(x16, positions=torch.arange(4)), ValueError,
         r"positions must have shape \(T,\) = \(5,\) or \(B, T\) = \(2, 5\), got shape \(4,\)"),
        (lambda: MultiHeadAttention(16, 4, rope=True)(x16, positions=[0, 1, 2, 3, 4]), TypeError, r"positions must be a torch tensor"),
        (lambda: MultiHeadAttention(16, 4, rope=True)(x16, torch.zeros(2, 3, 16), key_positions=torch.arange(5)), ValueError,
         r"key_positions must have shape \(S,\) = \(3,\) or \(B, S\) = \(2, 3\), got shape \(5,\)"),
        # tasks and training
        (lambda: WhoDidWhatTask(nouns="dogcat"), TypeError, r"nouns must be a list or tuple of words, got the string 'dogcat'"),
        (lambda: WhoDidWhatTask(verbs="bites"), TypeError, r"verbs must be a list or tuple of words, got the string 'bites'"),
        (lambda: History(loss=[1.0]).smoothed("los"), ValueError, r"name must be 'loss' or 'accuracy', got 'los'"),
    ],
)
def test_silently_wrong_inputs_now_raise(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call()


def _train_tiny(**kwargs):
    from attn_core.train import train

    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=12, d_model=8, n_heads=2, n_layers=1, max_len=16)
    return model, train(model, InductionTask(vocab_size=12, seq_len=12, min_period=3, max_period=5),
                        steps=kwargs.pop("steps", 3), batch_size=4, progress=False, **kwargs)


@pytest.mark.parametrize(
    "kwargs,err,pattern",
    [
        ({"lr": float("inf")}, ValueError, r"lr must be a finite number > 0, got inf"),
        ({"lr": float("nan")}, ValueError, r"lr must be a finite number > 0, got nan"),
        ({"lr": "0.01"}, TypeError, r"lr must be a number"),
        ({"weight_decay": -0.1}, ValueError, r"weight_decay must be a finite number >= 0, got -0.1"),
        ({"seed": 1.5}, TypeError, r"seed must be a whole number >= 0, got 1.5 \(float\)"),
        ({"seed": -1}, ValueError, r"seed must be >= 0, got -1"),
        ({"seed": True}, TypeError, r"seed must be a whole number"),
    ],
)
def test_train_rejects_bad_settings(kwargs, err, pattern):
    with pytest.raises(err, match=pattern):
        _train_tiny(**kwargs)


def test_train_stops_at_a_nan_loss_naming_the_step_and_what_to_try():
    with pytest.raises(FloatingPointError, match=r"the loss became (nan|inf) at step \d+ of 20.*lower the learning rate") as info:
        _train_tiny(steps=20, lr=1e30)
    assert info.value.history.loss and all(math.isfinite(x) for x in info.value.history.loss)  # the steps before it


@pytest.mark.parametrize(
    "call,err,pattern",
    [
        (lambda: InductionTask().decode(torch.tensor([0.5, 1.0])), TypeError, r"ids must be integer token ids, got dtype torch.float32"),
        (lambda: InductionTask().decode("AB"), TypeError, r"ids must be"),
        (lambda: WhoDidWhatTask().encode(3), TypeError, r"words must be a list of words or a space-separated string, got int"),
        (lambda: __import__("attn_core.train").train.train(nn.Linear(2, 2), InductionTask(), steps=2, progress="no"), TypeError,
         r"progress must be True or False"),
        (lambda: __import__("attn_core.train").train.train(lambda t: t, InductionTask(), steps=2), TypeError,
         r"model must be a torch.nn.Module"),
        (lambda: __import__("attn_core.train").train.evaluate("model", InductionTask()), TypeError, r"model must be a torch.nn.Module"),
    ],
)
def test_tasks_and_training_name_the_bad_argument(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call()
