"""Speed of attn_core against PyTorch's own attention, measured in one run.

    python benchmarks/bench_attention.py            # full table (about a minute)
    python benchmarks/bench_attention.py --quick    # fewer repeats
    python benchmarks/bench_attention.py --threads 1   # one torch thread

Prints median milliseconds and ratios (ours / PyTorch; below 1.0 means faster):
- `MultiHeadAttention` vs `torch.nn.MultiheadAttention`, both returning per-head weights
  (`need_weights=True, average_attn_weights=False`), forward only, under `no_grad`.
- `scaled_dot_product_attention` (which returns the weights) vs PyTorch's fused
  `F.scaled_dot_product_attention` (which does not, and may skip materialising them).
- the numpy path vs the torch path of `scaled_dot_product_attention` (float32).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from attn_core import MultiHeadAttention, scaled_dot_product_attention
from attn_core.notebook import median_ms  # one timing function for the lessons and the benchmarks

SIZES = [  # (B, T, d_model, n_heads)
    (1, 16, 64, 4),  # a classroom example
    (4, 64, 128, 8),
    (8, 128, 256, 8),
    (8, 256, 512, 8),
    (8, 512, 512, 8),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice); "
                        "1 on a busy machine, where 2 threads wait on each other")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else 15
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, forward under no_grad\n")
    header = (f"{'B':>2} {'T':>4} {'d_model':>7} {'H':>2} | {'ours MHA':>9} {'nn.MHA':>9} {'ratio':>6} | "
              f"{'ours SDPA':>9} {'F.sdpa':>9} {'ratio':>6} | {'numpy':>9} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    worst = classroom = 0.0
    for B, T, d_model, H in SIZES:
        ref = nn.MultiheadAttention(d_model, H, batch_first=True).eval()
        ours = MultiHeadAttention.from_torch(ref).eval()
        x = torch.randn(B, T, d_model)
        q, k, v = (torch.randn(B, H, T, d_model // H) for _ in range(3))
        qn, kn, vn = q.numpy(), k.numpy(), v.numpy()
        with torch.no_grad():
            t_ours = median_ms(lambda: ours(x), repeats)
            t_ref = median_ms(lambda: ref(x, x, x, need_weights=True, average_attn_weights=False), repeats)
            t_sdpa = median_ms(lambda: scaled_dot_product_attention(q, k, v), repeats)
            t_fused = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), repeats)
            t_np = median_ms(lambda: scaled_dot_product_attention(qn, kn, vn), repeats)
        worst = max(worst, t_ours / t_ref)
        if (B, T, d_model, H) == SIZES[0]:
            classroom = t_ours / t_ref
        print(f"{B:>2} {T:>4} {d_model:>7} {H:>2} | {t_ours:9.3f} {t_ref:9.3f} {t_ours / t_ref:6.2f} | "
              f"{t_sdpa:9.3f} {t_fused:9.3f} {t_sdpa / t_fused:6.2f} | {t_np:9.3f} {t_np / t_sdpa:6.2f}")
    print(f"\nMultiHeadAttention / nn.MultiheadAttention at the classroom size (B=1, T=16, d_model=64, H=4): "
          f"{classroom:.2f} (issue 10's goal: within 1.30); worst over all sizes: {worst:.2f}")
    print("numpy ratio = numpy path / torch path of attn_core's scaled_dot_product_attention")


if __name__ == "__main__":
    main()
