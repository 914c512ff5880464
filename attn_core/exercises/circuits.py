"""Exercises for lessons 07 and 08: build a previous-token head and an induction head by
hand, and predict which positional scheme wins before running it.

The hand-built heads live in a *readable* residual stream. For a sequence of `T` tokens
from a vocabulary of `V`, position `t` starts as three one-hot blocks side by side,

    x_t = [ onehot(token_t) | onehot(t) | 0 ]      widths V | T | V,  d = 2V + T

the last block empty until layer 0 writes "my previous token was ..." into it. A head is
given by its score matrix `qk` `(d, d)` (the product `W_q W_k^T`; no `1/sqrt(d)` scaling
here):

    scores[t, s] = x_t · qk · x_s ,   weights = softmax over the causal past

`hand_built_circuit` runs two such heads with fixed value/output maps: layer 0 copies the
token block of the key it attends to into the last block, layer 1 reads the token block of
the key it attends to as its prediction (logits over the `V` tokens). The learner writes
the two `qk` matrices; each is unique once the strength is given, so the checkers compare
with the right matrix, and name the typical slip (the wrong block, the wrong side, the
wrong offset) when the answer is wrong.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..attention import scaled_dot_product_attention
from ..masks import causal_mask
from ._check import Case, Mistake, Result, run_checks

__all__ = ["check_previous_token_qk", "check_induction_qk", "check_prediction"]


# --------------------------------------------------------------------------- the readable stream


def residual_stream(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """`(B, T)` token ids -> `(B, T, 2V + T)`: token one-hot, position one-hot, an empty block."""
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype.is_floating_point:
        raise TypeError(f"tokens must be an integer tensor (B, T), got {tokens!r:.60}")
    B, T = tokens.shape
    V = int(vocab_size)
    x = torch.zeros(B, T, 2 * V + T, dtype=torch.float64)  # (B, T, d)
    x[..., :V] = torch.nn.functional.one_hot(tokens, V).double()  # token block
    x[..., V:V + T] = torch.eye(T, dtype=torch.float64)  # position block
    return x


def _head(x: torch.Tensor, qk: torch.Tensor) -> torch.Tensor:
    """Causal attention weights `(B, T, T)` of a head with score matrix `qk (d, d)` on `x (B, T, d)`."""
    q = x @ qk.to(x.dtype)  # (B, T, d) x (d, d) -> (B, T, d)
    return scaled_dot_product_attention(q, x, x, mask=causal_mask(x.shape[1]), scale=1.0)[1]  # (B, T, T)


def hand_built_circuit(tokens: torch.Tensor, vocab_size: int, previous_qk: torch.Tensor, induction_qk: torch.Tensor):
    """Run the two hand-built heads on `tokens (B, T)`.

    Layer 0 (score matrix `previous_qk`) writes the token of the key it attends to into
    the empty block; layer 1 (score matrix `induction_qk`) predicts the token of the key it
    attends to. Returns `(logits (B, T, V), [weights_0, weights_1])`, each `(B, 1, T, T)`
    (one head), so `attn_core.heads.head_scores` can score them.
    """
    V = int(vocab_size)
    x = residual_stream(tokens, V)  # (B, T, d)
    w0 = _head(x, previous_qk)  # (B, T, T)
    x = x.clone()
    x[..., V + tokens.shape[1]:] = w0 @ x[..., :V]  # (B, T, T) x (B, T, V) -> (B, T, V): the previous token's identity
    w1 = _head(x, induction_qk)  # (B, T, T)
    logits = w1 @ x[..., :V]  # (B, T, T) x (B, T, V) -> (B, T, V)
    return logits, [w0[:, None], w1[:, None]]


# --------------------------------------------------------------------------- previous-token head


def _blank(V: int, T: int) -> torch.Tensor:
    return torch.zeros(2 * V + T, 2 * V + T)  # (d, d)


def _position_pairs(V, T, strength, offset, rows=None, cols=None):
    """`strength` at (rows + t, cols + t - offset) for every t with both in range."""
    qk = _blank(V, T)
    rows = V if rows is None else rows
    cols = V if cols is None else cols
    for t in range(T):
        if 0 <= t - offset < T:
            qk[rows + t, cols + t - offset] = strength
    return qk


MISTAKES_PREVIOUS_TOKEN_QK = (
    Mistake("next token instead of previous", lambda V, T, strength: _position_pairs(V, T, strength, -1),
            "your query at t matches the key at t + 1, the *next* token. Rows of qk are the query's features, "
            "columns the key's; under a causal mask the next token is never visible, so this head spreads its "
            "attention evenly."),
    Mistake("itself instead of the previous token", lambda V, T, strength: _position_pairs(V, T, strength, 0),
            "your query at t matches the key at t: a self head. The previous token is one position earlier."),
    Mistake("two tokens back", lambda V, T, strength: _position_pairs(V, T, strength, 2),
            "your query at t matches the key at t - 2. The previous token is one position back."),
    Mistake("the token block instead of the position block", lambda V, T, strength: _position_pairs(V, T, strength, 1, 0, 0),
            "you wrote into the first V rows and columns, the *token* block: that compares token ids, not "
            "positions. The position one-hots start at index V."),
    Mistake("the strength left out", lambda V, T, strength: _position_pairs(V, T, 1.0, 1),
            "your entries are 1, whatever the strength: the strength is the score the query gives the "
            "previous token, and it decides how sharp the head is."),
)


def check_previous_token_qk(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `previous_token_qk(V, T, strength)`: the `(d, d)` score matrix (`d = 2V + T`)
    of a head whose query at position `t` gives the score `strength` to the key at `t - 1`
    and 0 to every other key, reading only the position block (indices `V .. V + T - 1`)."""
    def case(name, V, T, strength):
        return Case(name, args=(V, T, strength), expected=lambda: _position_pairs(V, T, float(strength), 1))

    cases = [
        case("V=3 tokens, T=4 positions, strength 1", 3, 4, 1.0),
        case("V=5, T=7, strength 2.5", 5, 7, 2.5),
        case("V=2, T=2, strength 10", 2, 2, 10.0),
        case("V=4, T=6, strength -3 (a head that avoids its previous token)", 4, 6, -3.0),
    ]
    hint = ("qk has one row per feature of the query and one column per feature of the key; the positions are the "
            "one-hots at indices V .. V + T - 1. Put the strength where the query's position is t and the key's is "
            "t - 1, zeros elsewhere; shape (2V + T, 2V + T).")
    return run_checks("previous_token_qk", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_PREVIOUS_TOKEN_QK)


# --------------------------------------------------------------------------- induction head


def _block_pairs(V, T, strength, rows, cols):
    qk = _blank(V, T)
    for v in range(V):
        qk[rows + v, cols + v] = strength
    return qk


def _blocks(rows: str, cols: str, scale: float | None = None):
    where = {"token": lambda V, T: 0, "previous": lambda V, T: V + T}

    def wrong(V, T, strength):
        s = strength if scale is None else scale
        return _block_pairs(V, T, s, where[rows](V, T), where[cols](V, T))
    return wrong


MISTAKES_INDUCTION_QK = (
    Mistake("the key's own token", _blocks("token", "token"),
            "your query matches keys whose *own* token equals its token: that finds the earlier copy of the "
            "current token (a duplicate-token head), and copying it predicts the current token again. The key "
            "to find is the one *after* the earlier copy: the key whose previous token equals the query's token."),
    Mistake("query and key sides swapped", _blocks("previous", "token"),
            "your query reads its *previous* token and matches keys by their own token: that finds earlier copies "
            "of the previous token, not the successor of the current one. Rows are the query's features (its "
            "token block), columns the key's (the block layer 0 filled)."),
    Mistake("previous blocks on both sides", _blocks("previous", "previous"),
            "your query compares its previous token with the key's previous token. The query's own token is "
            "what must match: rows in the token block."),
    Mistake("the strength left out", _blocks("token", "previous", scale=1.0),
            "your entries are 1, whatever the strength: the strength is the score of a matching key, and it "
            "decides how sharp the head is."),
)


def check_induction_qk(fn: Callable, *, verbose: bool = True) -> Result:
    """Check `induction_qk(V, T, strength)`: the `(d, d)` score matrix of a head whose
    query gives the score `strength` to every key whose *previous* token (the last block,
    indices `V + T .. 2V + T - 1`, filled by layer 0) equals the query's own token (the
    first block, indices `0 .. V - 1`), and 0 otherwise."""
    def case(name, V, T, strength):
        return Case(name, args=(V, T, strength), expected=lambda: _block_pairs(V, T, float(strength), 0, V + T))

    cases = [
        case("V=3 tokens, T=4 positions, strength 1", 3, 4, 1.0),
        case("V=4, T=2, strength 5", 4, 2, 5.0),
        case("V=2, T=6, strength 0.5", 2, 6, 0.5),
    ]
    hint = ("rows are the query's features, columns the key's. The query's token is in the first V features; "
            "the key's previous token is in the last V features (from index V + T), written there by layer 0. "
            "Token v of the query should meet token v of the key's previous-token block with the strength.")
    return run_checks("induction_qk", fn, cases, hint, verbose=verbose, mistakes=MISTAKES_INDUCTION_QK)


# --------------------------------------------------------------------------- a prediction


def _score(value) -> float:
    """A measurement as a float; None or nan (an option that could not run) ranks last."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return float("-inf")
    return float("-inf") if np.isnan(value) else value


def check_prediction(prediction, outcomes: dict, *, question: str, seeds: Sequence[dict] = (),
                     verbose: bool = True) -> Result:
    """Compare a prediction made *before* running an experiment with what it found.

    Args:
        prediction: the learner's answer, one of `outcomes`' keys (None: not attempted).
        outcomes: this run's measurement per option, higher is better (e.g. accuracy at 4L
            per positional scheme); `nan` for an option that could not run.
        question: what was predicted, e.g. "the best scheme at 4L".
        seeds: the same measurement in other runs (one dict per seed), to say whether the
            winner of this run is also the winner there.

    Prints the winner, the predicted option's result and the verdict; returns a `Result`
    (`passed` when the prediction names the winner of this run).
    """
    options = [k for k in outcomes]
    if prediction is None:
        if verbose:
            print(f"○ prediction: not attempted yet. Set your prediction to one of {options} *before* running the "
                  f"experiment, then run this cell again.")
        return Result("prediction", False, 0, 1, message="not attempted yet")
    if not any(prediction is k or (isinstance(prediction, str) and prediction == k) for k in options):
        message = f"your prediction {prediction!r:.40} is not one of the options {options}"
        if verbose:
            print(f"✗ prediction: {message}")
        return Result("prediction", True, 0, 1, failed_case="options", message=message, verdict="wrong type")
    values = {k: _score(v) for k, v in outcomes.items()}
    best = max(values.values())
    winners = [k for k, v in values.items() if v == best]
    right = prediction in winners
    agree = 0
    for other in seeds:  # a seed counts when the prediction is among its best (ties included)
        scored = {k: _score(v) for k, v in other.items()}
        agree += scored.get(prediction, float("-inf")) == max(scored.values())
    mine = "could not run" if values[prediction] == float("-inf") else f"{values[prediction]:.2f}"
    message = f"{question}: {', '.join(winners)} ({best:.2f}); your choice {prediction!r} scored {mine}"
    if seeds:
        message += f"; it was (one of) the best in {agree} of {len(seeds)} seeds of the sweep"
    if verbose:
        print(("✓ prediction: right. " if right else "✗ prediction: not this time. ") + message + ".")
    return Result("prediction", True, int(right), 1, failed_case=None if right else "outcome", message=message)
