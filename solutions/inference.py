"""Solutions to lesson 10's exercises (attention at inference time)."""

import math

import torch


def online_softmax_step(m, l, scores):
    """One block of the online softmax: (m, l) of each row (R,), the next block of scores (R, b)."""
    m_new = torch.maximum(m, scores.max(dim=-1).values)  # (R,) the maximum of everything seen so far
    safe = torch.where(m_new == float("-inf"), torch.zeros_like(m_new), m_new)  # a row still all -inf: use 0, no nan
    l_new = l * torch.exp(m - safe) + torch.exp(scores - safe[:, None]).sum(dim=-1)  # (R,) old sum rescaled + block
    return m_new, l_new


def cached_attention_step(q, k_new, v_new, k_cache, v_cache):
    """Append the new token's key and value on the S axis, then attend with its query to all S + 1 keys."""
    k_cache = torch.cat([k_cache, k_new], dim=2)  # (B, H, S, D) -> (B, H, S + 1, D)
    v_cache = torch.cat([v_cache, v_new], dim=2)  # (B, H, S, D) -> (B, H, S + 1, D)
    scores = q @ k_cache.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, 1, D) x (B, H, D, S + 1) -> (B, H, 1, S + 1)
    weights = torch.softmax(scores, dim=-1)  # over the keys
    out = weights @ v_cache  # (B, H, 1, S + 1) x (B, H, S + 1, D) -> (B, H, 1, D)
    return out, k_cache, v_cache


def kv_cache_memory(n_layers, n_kv_heads, d_head, T, bytes_per_value, batch_size=1):
    """Bytes of a key/value cache: a key and a value per token, head, layer and sequence."""
    return 2 * n_layers * batch_size * n_kv_heads * d_head * T * bytes_per_value


# the checkers' names for the same functions (check_cached_step, check_cache_memory)
cached_step = cached_attention_step
cache_memory = kv_cache_memory
