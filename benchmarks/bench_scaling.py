"""The articles' claims "parallel computation" and "scales efficiently", measured (issue 10, lesson 10 section 5).

    python benchmarks/bench_scaling.py              # full tables (a few minutes, up to about 1 GB)
    python benchmarks/bench_scaling.py --quick      # smaller sizes, fewer repeats
    python benchmarks/bench_scaling.py --threads 1  # one torch thread (on a busy machine)

Prints, for float32 on the CPU (median ms from `attn_core.notebook.median_ms`; speed is
measured, never asserted, and depends on the machine's load):

1. Training: one causal self-attention layer vs `nn.GRU` of the same width, one training
   step (forward and backward over the whole sequence, batch 8) as T grows. Attention is
   attn_core's `MultiHeadAttention` (it returns the `(B, H, T, T)` weights) and the same
   projections around PyTorch's fused `F.scaled_dot_product_attention`. The GRU must walk
   the sequence one position after another: T sequential steps; attention computes every
   position at once (a few matrix products, whatever T).
2. Generation: one new token, attention with a KV cache of S tokens (its work grows with S)
   vs one GRU step (constant work). Both are one sequential step per token: generation is
   sequential for either.
3. Wall time against the number of heads at fixed d_model (d_model=768): the matrix-product
   FLOPs (`attn_core.multihead.matmul_flops`) are the same for every H, the time is not
   (H small matrix products of width d_head, and a softmax over H * T * S scores).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from attn_core import MultiHeadAttention, causal_mask, merge_heads, split_heads
from attn_core.multihead import matmul_flops
from attn_core.notebook import median_ms  # one timing function for the lessons and the benchmarks


def fused_attention(layer: MultiHeadAttention, x, is_causal: bool = True):
    """`layer`'s projections around PyTorch's fused SDPA (no weights returned): the same function as `layer(x)[0]`."""
    q = split_heads(layer.w_q(x), layer.n_heads)  # (B, T, d_model) -> (B, H, T, d_head)
    k = split_heads(layer.w_k(x), layer.n_heads)  # (B, T, d_model) -> (B, H, T, d_head)
    v = split_heads(layer.w_v(x), layer.n_heads)  # (B, T, d_model) -> (B, H, T, d_head)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)  # (B, H, T, d_head)
    return layer.w_o(merge_heads(out))  # (B, H, T, d_head) -> (B, T, d_model)


def training_ms(fn, params, repeats: int) -> float:
    """Median ms of one training step: `fn()` forward over the whole sequence, then the gradients of all `params`."""
    return median_ms(lambda: torch.autograd.grad(fn().square().mean(), params), repeats, 0.1)


def bench_training(d_model: int, n_heads: int, quick: bool) -> None:
    B = 8
    print(f"1. Training step (forward + backward over the whole sequence), B={B}, d_model={d_model}, causal:\n"
          f"   self-attention layer (H={n_heads}) vs nn.GRU({d_model}, {d_model}), median ms\n")
    header = (f"{'T':>5} | {'attn_core MHA':>13} {'fused SDPA':>10} {'nn.GRU':>8} | {'GRU / MHA':>9} {'GRU / SDPA':>10} | "
              f"{'sequential steps: attention':>27} {'GRU':>5}")
    print(header)
    print("-" * len(header))
    torch.manual_seed(0)
    layer = MultiHeadAttention(d_model, n_heads)
    gru = nn.GRU(d_model, d_model, batch_first=True)
    attn_params, gru_params = list(layer.parameters()), list(gru.parameters())
    for T in ((64, 128, 256) if quick else (64, 128, 256, 512, 1024)):
        x = torch.randn(B, T, d_model)
        mask = causal_mask(T)
        repeats = 3 if T >= 512 else 5
        with torch.no_grad():  # the two attention paths compute the same function
            torch.testing.assert_close(layer(x, mask=mask)[0], fused_attention(layer, x), atol=1e-5, rtol=1e-4)
        t_mha = training_ms(lambda: layer(x, mask=mask)[0], attn_params, repeats)
        t_sdpa = training_ms(lambda: fused_attention(layer, x), attn_params, repeats)
        t_gru = training_ms(lambda: gru(x)[0], gru_params, repeats)
        print(f"{T:>5} | {t_mha:>13.2f} {t_sdpa:>10.2f} {t_gru:>8.2f} | {t_gru / t_mha:>9.2f} {t_gru / t_sdpa:>10.2f} | "
              f"{1:>27} {T:>5}")
    print()


def bench_generation(d_model: int, n_heads: int, quick: bool) -> None:
    print(f"2. Generation: one new token after a context of S tokens (B=1, d_model={d_model}), median ms, no_grad:\n"
          f"   attention step with a KV cache (H={n_heads}) vs one nn.GRU step (hidden state carried)\n")
    header = (f"{'S':>5} | {'attn_core MHA':>13} {'fused SDPA':>10} {'nn.GRU':>8} | {'keys read: attention':>20} {'GRU':>4} | "
              f"{'sequential steps per token':>26}")
    print(header)
    print("-" * len(header))
    torch.manual_seed(0)
    layer = MultiHeadAttention(d_model, n_heads).eval()
    gru = nn.GRU(d_model, d_model, batch_first=True).eval()
    H, d_head = n_heads, d_model // n_heads
    for S in ((64, 256, 1024) if quick else (64, 128, 256, 512, 1024, 2048)):
        context, new = torch.randn(1, S - 1, d_model), torch.randn(1, 1, d_model)
        with torch.no_grad():
            _, _, cache = layer(context, mask=causal_mask(S - 1), cache=layer.empty_cache(1))  # (1, H, S - 1, d_head)
            _, h = gru(context)  # (1, 1, d_model): everything the GRU keeps of the context
            mask = causal_mask(1, S)  # (1, S): the new token sees every cached one

            def fused_step():
                q = split_heads(layer.w_q(new), H)  # (1, 1, d_model) -> (1, H, 1, d_head)
                k = torch.cat([cache.k, split_heads(layer.w_k(new), H)], dim=2)  # (1, H, S, d_head)
                v = torch.cat([cache.v, split_heads(layer.w_v(new), H)], dim=2)  # (1, H, S, d_head)
                return layer.w_o(merge_heads(F.scaled_dot_product_attention(q, k, v)))  # (1, 1, d_model)

            torch.testing.assert_close(layer(new, mask=mask, cache=cache)[0], fused_step(), atol=1e-5, rtol=1e-4)
            t_mha = median_ms(lambda: layer(new, mask=mask, cache=cache), 7, 0.1)
            t_sdpa = median_ms(fused_step, 7, 0.1)
            t_gru = median_ms(lambda: gru(new, h), 7, 0.1)
        assert cache.k.shape == (1, H, S - 1, d_head)
        print(f"{S:>5} | {t_mha:>13.3f} {t_sdpa:>10.3f} {t_gru:>8.3f} | {S:>20} {1:>4} | {1:>26}")
    print()


def bench_heads(d_model: int, T: int, quick: bool, max_weights_mb: float) -> None:
    print(f"3. Heads at fixed d_model={d_model}, T={T}, B=1: forward, no_grad, median ms "
          f"(matmul FLOPs from attn_core.multihead.matmul_flops)\n")
    heads = [h for h in ((1, 12, 96) if quick else (1, 12, 96, 768)) if d_model % h == 0]
    threads_default = torch.get_num_threads()
    header = f"{'H':>4} {'d_head':>6} | {'matmul GFLOP':>12} | {'threads':>7} | {'attn_core MHA':>13} {'fused SDPA':>10}"
    print(header)
    print("-" * len(header))
    torch.manual_seed(0)
    x = torch.randn(1, T, d_model)
    flops = {}
    for H in heads:
        layer = MultiHeadAttention(d_model, H).eval()
        flops[H] = matmul_flops(T, d_model, H)
        weights_mb = H * T * T * 4 / 2**20  # the (1, H, T, T) float32 weights attn_core returns
        for threads in sorted({1, threads_default}):
            torch.set_num_threads(threads)
            with torch.no_grad():
                if weights_mb <= max_weights_mb:
                    t_mha = f"{median_ms(lambda: layer(x), 3, 0.0):>13.1f}"
                else:
                    t_mha = f"{'(skipped)':>13}"
                t_sdpa = median_ms(lambda: fused_attention(layer, x, is_causal=False), 3, 0.0)
            print(f"{H:>4} {d_model // H:>6} | {flops[H] / 1e9:>12.3f} | {threads:>7} | {t_mha} {t_sdpa:>10.1f}")
        torch.set_num_threads(threads_default)
    same = len(set(flops.values())) == 1
    print(f"\n   matmul FLOPs equal for every H: {same}. '(skipped)': attn_core's returned weights (1, H, T, T) would "
          f"exceed {max_weights_mb:.0f} MB (--max-weights-mb)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--max-weights-mb", type=float, default=400.0,
                        help="section 3: skip attn_core's layer when its (1, H, T, T) weights exceed this (default 400)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32\n")
    bench_training(64, 4, args.quick)
    bench_generation(64, 4, args.quick)
    bench_heads(768, 256 if args.quick else 512, args.quick, args.max_weights_mb)


if __name__ == "__main__":
    main()
