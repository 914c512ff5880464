"""Solutions to the exercises of lesson 09, a real pretrained model.

Each function has the name of the learner's stub in `notebooks/09_real_model.ipynb` and is
checked by `attn_core.exercises.check_<name>`; `MY_PAIR` is checked by `check_control_pair`.
"""

from __future__ import annotations

import torch

SEP_ID = 102  # [SEP] in BERT's WordPiece vocabulary


def offset_score(weights, attention_mask, offset):
    """Mean weight of each head on the key `t + offset`, over the real queries whose key is real -> `(H,)`."""
    B, H, T, _ = weights.shape
    real = torch.as_tensor(attention_mask).bool()  # (B, T)
    t = torch.arange(T)
    key = t + offset  # (T,)
    exists = (key >= 0) & (key < T)  # (T,)
    key = key.clamp(0, T - 1)
    used = real & exists & real[:, key]  # (B, T): a real query whose key is a real token
    picked = weights[:, :, t, key]  # (B, H, T): weights[b, h, t, t + offset]
    used = used[:, None, :].to(picked.dtype)  # (B, T) -> (B, 1, T)
    return (picked * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))  # (H,)


def sep_weight(weights, token_ids, attention_mask):
    """Total weight of each head on the `[SEP]` keys, averaged over every real query -> `(H,)`."""
    sep = (token_ids == SEP_ID).to(weights.dtype)  # (B, T) key selector
    mass = (weights * sep[:, None, None, :]).sum(dim=-1)  # (B, H, T, T) -> (B, H, T)
    used = torch.as_tensor(attention_mask)[:, None, :].to(weights.dtype)  # (B, T) -> (B, 1, T)
    return (mass * used).sum(dim=(0, 2)) / used.sum(dim=(0, 2))  # (H,)


MY_PAIR = (
    "The dog chased the ball because it was hungry.",
    "The dog chased the ball because it was bouncing.",
    "dog",
    "ball",
)
