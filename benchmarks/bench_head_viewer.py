"""Lesson 09's head viewer: milliseconds per update for a sentence of 20 tokens.

    python benchmarks/bench_head_viewer.py [--threads N]

`--threads 1` is what lesson 09 sets (`torch.set_num_threads(1)`); it matters only for the
model run on a new sentence.

An update is what a learner waits for after changing a control: `Explorer.refresh`
(re-render in place, blit, encode the PNG, set the Image widget's value). Prints the
median and 95th percentile over every layer, head and query word, in both modes, and the
time for a new sentence (model run and a full draw of the new layout). Goal: median under
100 ms for layer, head and query changes.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCE_20 = "After the long meeting, the tired manager finally sent everyone a very short summary of it."


def timed(set_value) -> float:
    t0 = time.perf_counter()
    set_value()
    return 1000 * (time.perf_counter() - t0)


def summary(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    print(f"{name:34s} n={len(ms):3d}  median {statistics.median(ms):6.1f} ms   p95 {ms[int(0.95 * (len(ms) - 1))]:6.1f} ms")


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
    summary("new sentence (model + full draw)", [timed(lambda: setattr(ex.controls["sentence"], "value", s))
                                                 for s in sentences])
    model_ms = []
    for s in sentences:
        ex.viewer.cached_sentence = None
        model_ms.append(timed(lambda: ex.viewer.tokens_and_weights(s)))
    summary("  of which the model run", model_ms)
    print(f"model runs: {ex.viewer.n_model_runs} (one per new sentence, none for the other controls)")


if __name__ == "__main__":
    main(sys.argv[1:])
