"""Lesson 09's head viewer: milliseconds per update for a sentence of 20 tokens.

    python benchmarks/bench_head_viewer.py [--threads N]

`--threads 1` is what lesson 09 sets (`torch.set_num_threads(1)`). The viewer now runs the
model on one thread whatever the setting (`attn_core._threads.one_torch_thread`: two threads on a
busy 2-core machine made the 13 ms forward take up to 0.4 s), so the option no longer changes
these figures; it is kept so that older command lines still work.

An update is what a learner waits for after changing a control: `Explorer.refresh`
(update the one figure in place, paste its static parts, encode the PNG at a device pixel
ratio of 2, set the Image widget's value). Prints the median and 95th percentile over every
layer, head and query word, in both modes, and the time for a new sentence (the model run,
new words' labels, the same figure), as wall time and as this process's CPU time (the
second is what the update itself costs when other jobs share the cores). Goal (issue 12):
median under 25 ms, p95 under 50 ms for layer, head and query changes.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCE_20 = "After the long meeting, the tired manager finally sent everyone a very short summary of it."


CPU_MS: list[float] = []  # CPU time of each `timed` call, in order


def timed(set_value) -> float:
    t0, c0 = time.perf_counter(), time.process_time()
    set_value()
    CPU_MS.append(1000 * (time.process_time() - c0))
    return 1000 * (time.perf_counter() - t0)


def summary(name: str, ms: list[float]) -> None:
    cpu = sorted(CPU_MS[-len(ms):])
    ms = sorted(ms)
    p95 = int(round(0.95 * (len(ms) - 1)))
    print(f"{name:34s} n={len(ms):3d}  median {statistics.median(ms):6.1f} ms   p95 {ms[p95]:6.1f} ms"
          f"   (CPU median {statistics.median(cpu):6.1f} ms, p95 {cpu[p95]:6.1f} ms)")


def main(argv: list[str]) -> None:
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from attn_core.pretrained import load_minilm
    from attn_core.widgets.pretrained import MODES, head_viewer

    print(f"torch threads: {torch.get_num_threads()}")
    model, tokenizer = load_minilm()
    ex = head_viewer(model, tokenizer, sentence=SENTENCE_20)
    print(f"sentence of {len(ex.viewer.cached_tokens)} tokens: {SENTENCE_20!r}")
    for mode in MODES:
        ex.controls["mode"].value = mode
        for name in ("layer", "head", "query"):
            control = ex.controls[name]
            values = [o[1] if isinstance(o, tuple) else o for o in control.options]
            ms = []
            for _ in range(3):
                for value in values:
                    if value != control.value:
                        ms.append(timed(lambda: setattr(control, "value", value)))
            summary(f"{mode}: change {name}", ms)
    ex.controls["mode"].value = MODES[0]
    sentences = [SENTENCE_20.replace("long", word) for word in ("short", "dull", "late", "final", "weekly", "big")]
    summary("new sentence (model + update)", [timed(lambda: setattr(ex.controls["sentence"], "value", s))
                                              for s in sentences])
    model_ms = []
    for s in sentences:
        ex.viewer.cached_sentence = None
        model_ms.append(timed(lambda: ex.viewer.tokens_and_weights(s)))
    summary("  of which the model run", model_ms)
    print(f"model runs: {ex.viewer.n_model_runs} (one per new sentence, none for the other controls)")


if __name__ == "__main__":
    main(sys.argv[1:])
