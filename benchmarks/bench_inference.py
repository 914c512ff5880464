"""Attention at inference time (issue 10): what the KV cache, grouped-query and tiled attention buy.

    python benchmarks/bench_inference.py            # full tables (a few minutes)
    python benchmarks/bench_inference.py --quick    # smaller sizes, fewer repeats
    python benchmarks/bench_inference.py --threads 1   # on a busy machine: 2 threads then wait on each other

Prints, for float32 on the CPU:
1. median ms per `MultiHeadAttention` forward vs `torch.nn.MultiheadAttention` (both
   returning per-head weights), at the classroom size (B=1, T=16, d_model=64, H=4), for a
   single decoding step (T=1 against a cache of S keys), and larger;
2. tokens per second of `TinyTransformer.generate` with and without the KV cache;
3. KV-cache memory for multi-head, grouped-query and multi-query attention, measured on the
   real cache tensors and by `kv_cache_bytes` (and on paper for a 7B-class model);
4. peak memory and time of `tiled_attention` vs `scaled_dot_product_attention` (numpy,
   measured with tracemalloc, which sees numpy's allocations).
Speed is measured, never asserted; the numbers depend on the machine's load.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import torch
from torch import nn

from bench_attention import median_ms  # the same timing as the attention benchmark (this folder is on sys.path)

from attn_core import KVCache, MultiHeadAttention, TinyTransformer, causal_mask, kv_cache_bytes, scaled_dot_product_attention, tiled_attention


def bench_mha(repeats: int, quick: bool) -> None:
    print("1. MultiHeadAttention forward vs nn.MultiheadAttention (median ms, no_grad, per-head weights)\n")
    sizes = [(1, 16, 16, 64, 4, "classroom"), (1, 1, 128, 64, 4, "one decoding step, S=128"),
             (4, 64, 64, 128, 8, ""), (8, 256, 256, 512, 8, "")]
    if quick:
        sizes = sizes[:3]
    header = f"{'B':>2} {'T':>4} {'S':>4} {'d_model':>7} {'H':>2} | {'ours':>8} {'nn.MHA':>8} {'ratio':>6} | {'ours GQA H_kv=H/4':>17}"
    print(header)
    print("-" * len(header))
    for B, T, S, d_model, H, note in sizes:
        ref = nn.MultiheadAttention(d_model, H, batch_first=True).eval()
        ours = MultiHeadAttention.from_torch(ref).eval()
        gqa = MultiHeadAttention(d_model, H, n_kv_heads=max(1, H // 4)).eval()
        query, key = torch.randn(B, T, d_model), torch.randn(B, S, d_model)
        with torch.no_grad():
            t_ours = median_ms(lambda: ours(query, key, key), repeats)
            t_ref = median_ms(lambda: ref(query, key, key, need_weights=True, average_attn_weights=False), repeats)
            t_gqa = median_ms(lambda: gqa(query, key, key), repeats)
        print(f"{B:>2} {T:>4} {S:>4} {d_model:>7} {H:>2} | {t_ours:>8.3f} {t_ref:>8.3f} {t_ours / t_ref:>6.2f} | {t_gqa:>17.3f}  {note}")
    print()


def bench_generate(quick: bool) -> None:
    print("2. TinyTransformer.generate (d_model=64, H=4, 2 layers, RoPE, prompt of 16, greedy, B=1): tokens per second\n")
    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=64, d_model=64, n_heads=4, n_layers=2, max_len=64, positional="rope").eval()
    prompt = torch.randint(0, 64, (1, 16))
    totals = (128, 256) if quick else (128, 512, 1024)
    header = f"{'final T':>7} | {'cached tok/s':>12} {'uncached tok/s':>14} {'speed-up':>8} | same tokens"
    print(header)
    print("-" * len(header))
    for total in totals:
        n = total - 16
        t0 = time.perf_counter()
        cached = model.generate(prompt, n, use_cache=True)
        t_cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        plain = model.generate(prompt, n, use_cache=False)
        t_plain = time.perf_counter() - t0
        print(f"{total:>7} | {n / t_cached:>12.0f} {n / t_plain:>14.0f} {t_plain / t_cached:>8.1f} | {torch.equal(cached, plain)}")
    print()


def bench_cache_memory() -> None:
    print("3. KV-cache memory: TinyTransformer(d_model=64, H=4, 2 layers), B=1, T=1024, float32, measured vs formula\n")
    header = f"{'attention':<18} {'n_kv_heads':>10} | {'measured':>10} {'formula':>10} | {'vs MHA':>6}"
    print(header)
    print("-" * len(header))
    base = None
    for name, n_kv in (("multi-head", 4), ("grouped-query", 2), ("multi-query", 1)):
        torch.manual_seed(0)
        model = TinyTransformer(64, 64, 4, 2, 2048, positional="rope", n_kv_heads=n_kv).eval()
        with torch.no_grad():
            _, cache = model(torch.randint(0, 64, (1, 1024)), cache=model.empty_cache(1))
        measured = sum(c.nbytes for c in cache)
        formula = kv_cache_bytes(2, n_kv, 16, 1024, bytes_per_value=4)
        base = base or measured
        print(f"{name:<18} {n_kv:>10} | {measured / 1024:>8.0f} KiB {formula / 1024:>6.0f} KiB | {measured / base:>6.2f}")
    print("\n   On paper, a 7B-class model (32 layers, 32 heads of d_head=128, float16), per sequence:")
    for T in (4096, 131072):
        row = ", ".join(f"{name} {kv_cache_bytes(32, n_kv, 128, T, bytes_per_value=2) / 2**30:.2f} GiB"
                        for name, n_kv in (("MHA (32 kv heads)", 32), ("GQA (8)", 8), ("MQA (1)", 1)))
        print(f"   T={T:>6}: {row}")
    print()


def _peak_bytes(fn) -> int:
    fn()  # warm-up: first-call allocations (imports, caches) are not the algorithm's
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bench_tiled(quick: bool) -> None:
    print("4. tiled_attention (block 128) vs scaled_dot_product_attention, numpy float32, one head, d=64, causal mask\n")
    header = f"{'T = S':>6} | {'plain MiB':>9} {'tiled MiB':>9} | {'plain ms':>9} {'tiled ms':>9} {'ratio':>6} | {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for T in ((256, 1024) if quick else (256, 1024, 2048, 4096)):
        q, k, v = (rng.standard_normal((T, 64)).astype(np.float32) for _ in range(3))
        mask = causal_mask(T).numpy()  # the caller's mask, allocated before measuring
        plain_peak = _peak_bytes(lambda: scaled_dot_product_attention(q, k, v, mask=mask))
        tiled_peak = _peak_bytes(lambda: tiled_attention(q, k, v, mask=mask, block_size=128))
        repeats = 3 if T >= 2048 else 5
        t_plain = median_ms(lambda: scaled_dot_product_attention(q, k, v, mask=mask), repeats, 0.0)
        t_tiled = median_ms(lambda: tiled_attention(q, k, v, mask=mask, block_size=128), repeats, 0.0)
        diff = np.abs(scaled_dot_product_attention(q, k, v, mask=mask)[0] - tiled_attention(q, k, v, mask=mask, block_size=128)).max()
        print(f"{T:>6} | {plain_peak / 2**20:>9.1f} {tiled_peak / 2**20:>9.1f} | {t_plain:>9.1f} {t_tiled:>9.1f} "
              f"{t_tiled / t_plain:>6.2f} | {diff:>10.1e}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32\n")
    bench_mha(5 if args.quick else 15, args.quick)
    bench_generate(args.quick)
    bench_cache_memory()
    bench_tiled(args.quick)


if __name__ == "__main__":
    main()
