"""Solutions to lesson 06's exercises (masked attention)."""

import torch


def build_causal_mask(T, S=None):
    """Boolean (T, S): query i may attend to key j when j <= i + (S - T)."""
    S = T if S is None else S
    i = torch.arange(T)[:, None]  # (T, 1) query positions
    j = torch.arange(S)[None, :]  # (1, S) key positions
    return j <= i + (S - T)  # (T, S)


def build_padding_mask(lengths, S):
    """Boolean (B, 1, 1, S): key j of sequence b is real when j < lengths[b]."""
    lengths = torch.as_tensor(lengths)  # (B,)
    j = torch.arange(S)  # (S,)
    return (j[None, :] < lengths[:, None])[:, None, None, :]  # (B, S) -> (B, 1, 1, S)


def masked_softmax(scores, mask):
    """Softmax over the last axis; blocked keys get 0, fully blocked rows all zeros."""
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # nan in fully blocked rows
    return torch.where(mask, weights, 0.0)  # blocked -> exactly 0, which also clears those nan rows
