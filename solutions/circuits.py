"""Solutions to lesson 07's exercises (hand-built heads)."""

import torch


def previous_token_qk(V, T, strength):
    """(2V + T, 2V + T): the query at position t gives `strength` to the key at t - 1."""
    qk = torch.zeros(2 * V + T, 2 * V + T)  # (d, d): rows = query features, columns = key features
    t = torch.arange(1, T)  # queries that have a previous token
    qk[V + t, V + t - 1] = strength  # position block: query position t, key position t - 1
    return qk


def induction_qk(V, T, strength):
    """(2V + T, 2V + T): the query's token v meets the key's previous-token block at v."""
    qk = torch.zeros(2 * V + T, 2 * V + T)  # (d, d)
    v = torch.arange(V)
    qk[v, V + T + v] = strength  # query's token block -> key's previous-token block
    return qk
