"""Small torch computations on one thread: an explorer's update, a training step of a small model."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["one_torch_thread"]


@contextlib.contextmanager
def one_torch_thread():
    """Run the block on one torch thread, then restore the thread count.

    An explorer's torch work is small (a (200, 128) table, one 20-token sentence through a
    6-layer encoder): on a busy 2-core machine torch's second intra-op thread mostly waits
    for a core, turning a 0.3 ms `sin` into 10-30 ms and a 14 ms forward pass into 400 ms
    (benchmarks/README). One thread has nothing to wait for.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)
