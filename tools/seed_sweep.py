"""Train lessons 07 and 08's models with several seeds and write what each run found to
`attn_core/data/seed_sweep.json`, the table the two lessons read their multi-seed claims from.

    python tools/seed_sweep.py                # every seed of SEEDS (about 5 minutes on 2 cores)
    python tools/seed_sweep.py --seeds 1 --output /tmp/one.json   # one seed, elsewhere

Each run is the lesson's own recipe with one seed for both the initial weights
(`torch.manual_seed(seed)`) and the training batches (`train(..., seed=seed)`); seed 0 is
the run the lessons show. Training runs on one thread (`attn_core.train`), so a run is
repeatable number for number on one machine; on another CPU or library build the float
round-off may differ, which is why `tests/test_seed_sweep.py` compares a re-run with the
table within a tolerance and the lessons assert only what holds in *every* seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from attn_core.heads import ablate_heads, head_scores
from attn_core.model import POSITIONAL_SCHEMES, TinyTransformer
from attn_core.tasks import InductionTask, WhoDidWhatTask
from attn_core.train import evaluate, train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "attn_core" / "data" / "seed_sweep.json"
SEEDS = (0, 1, 2, 3, 4)
THRESHOLD = 0.5
FACTORS = (1, 2, 4, 8)


def _r(x: float) -> float:
    return round(float(x), 3)


# --------------------------------------------------------------------------- lesson 07


def induction_task() -> InductionTask:
    return InductionTask(vocab_size=20, seq_len=24, min_period=5, max_period=10)


def induction_model(n_layers: int, seed: int, task: InductionTask) -> TinyTransformer:
    torch.manual_seed(seed)
    return TinyTransformer(vocab_size=task.vocab_size, d_model=32, n_heads=4, n_layers=n_layers, max_len=task.seq_len,
                           positional="rope", causal=True, mlp=False)


def lesson07(seed: int) -> dict:
    """One seed of lesson 07: a two-layer and a one-layer model, trained 300 steps."""
    task = induction_task()
    held_out = task.sample(256, torch.Generator().manual_seed(2024))
    model = induction_model(2, seed, task)
    history = train(model, task, steps=300, batch_size=64, lr=1e-2, seed=seed, progress=False)
    acc = history.smoothed("accuracy", window=10)
    with torch.no_grad():
        _, weights = model(held_out.tokens, return_weights=True)
    scores = head_scores(weights, held_out.tokens)
    P, I = scores["previous_token"], scores["induction"]
    prev = [(int(l), int(h)) for l, h in zip(*np.nonzero(P >= THRESHOLD))]
    ind = [(int(l), int(h)) for l, h in zip(*np.nonzero(I >= THRESHOLD))]
    named = set(prev) | set(ind)
    unnamed = [(l, h) for l in range(2) for h in range(4) if (l, h) not in named]
    other_layer0 = [(0, h) for h in range(4) if (0, h) not in prev]
    one_layer = induction_model(1, seed, task)
    train(one_layer, task, steps=300, batch_size=64, lr=1e-2, seed=seed, progress=False)
    longer = InductionTask(vocab_size=20, seq_len=48, min_period=11, max_period=20)
    return {
        "accuracy": _r(evaluate(model, task)),
        "first_loss": _r(history.loss[0]),
        "smoothed_accuracy_step_50": _r(acc[49]),
        "smoothed_accuracy_step_100": _r(acc[99]),
        "step_accuracy_passes_half": int(next((s for s, a in zip(history.steps, acc) if a > 0.5), -1)),
        "previous_token_heads": prev,
        "induction_heads": ind,
        "unnamed_heads": unnamed,
        "best_previous_token": _r(P.max()),
        "best_induction": _r(I.max()),
        "previous_token_scores": [[_r(x) for x in row] for row in P],
        "induction_scores": [[_r(x) for x in row] for row in I],
        "ablate_previous_token_heads": _r(evaluate(ablate_heads(model, prev), task)) if prev else None,
        "ablate_other_layer0": _r(evaluate(ablate_heads(model, other_layer0), task)) if other_layer0 else None,
        "ablate_all_induction_heads": _r(evaluate(ablate_heads(model, ind), task)) if ind else None,
        "ablate_one_induction_head_min": _r(min(evaluate(ablate_heads(model, [h]), task) for h in ind)) if ind else None,
        "accuracy_48_tokens": _r(evaluate(model, longer)),
        "one_layer_accuracy": _r(evaluate(one_layer, task)),
    }


# --------------------------------------------------------------------------- lesson 08


def who_task() -> WhoDidWhatTask:
    return WhoDidWhatTask(n_sentences=8)


def who_model(positional: str, seed: int, task: WhoDidWhatTask, window: int | None = None) -> TinyTransformer:
    torch.manual_seed(seed)
    return TinyTransformer(vocab_size=task.vocab_size, d_model=32, n_heads=4, n_layers=2, max_len=task.seq_len,
                           positional=positional, causal=True, mlp=False, window=window)


def windowed_copy(model: TinyTransformer, window: int) -> TinyTransformer:
    """The same weights, attention limited to the last `window` keys (a test-time intervention)."""
    copy = TinyTransformer(vocab_size=model.vocab_size, d_model=model.d_model, n_heads=model.n_heads,
                           n_layers=model.n_layers, max_len=model.max_len, positional=model.positional,
                           causal=True, mlp=model.has_mlp, window=window)
    copy.load_state_dict(model.state_dict())
    return copy.eval()


def accuracy_at(model, task, k: int) -> float:
    return evaluate(model, task, n_sequences=256 // k, n_sentences=8 * k)


def position_similarity(table: torch.Tensor) -> dict:
    """Cosine similarity of a learned position table's rows, summarised by offset."""
    unit = torch.nn.functional.normalize(table.detach(), dim=-1)  # (T, d_model)
    sim = unit @ unit.T  # (T, d_model) x (d_model, T) -> (T, T)
    T = sim.shape[0]
    i, j = torch.triu_indices(T, T, offset=1)
    d = j - i
    same_slot = (d % 4 == 0)
    return {
        "neighbours": _r(sim[i[d == 1], j[d == 1]].mean()),
        "same_slot": _r(sim[i[same_slot], j[same_slot]].mean()),
        "other_slot": _r(sim[i[~same_slot], j[~same_slot]].mean()),
    }


def where_layer1_looks(model, task) -> dict:
    """Lesson 08 section 5: the share of layer-1 attention at the questions that goes to the
    question's own sentence (best head; inside L and beyond it) and to keys L or more
    tokens back (the head that looks least far), on 128-token sequences."""
    L = task.seq_len
    probe = task.sample(128, torch.Generator().manual_seed(77), n_sentences=32)  # 128 tokens
    T = probe.tokens.shape[1]
    t = torch.arange(T)
    distance = t[:, None] - t[None, :]  # (T, T) query position minus key position
    own_sentence = (distance >= 0) & (distance < 4)
    far = distance >= L
    inside, beyond = torch.arange(3, L, 4), torch.arange(L + 3, T, 4)

    def share(w, queries, keys):
        return (w[:, :, queries] * keys[queries]).sum(-1).mean(dim=(0, 2))  # (B, H, Q, T) -> (H,)

    with torch.no_grad():
        _, weights = model(probe.tokens, return_weights=True)
    w = weights[1]  # layer 1, (B, H, T, T)
    return {"own_inside": _r(share(w, inside, own_sentence).max()), "own_beyond": _r(share(w, beyond, own_sentence).max()),
            "far": _r(share(w, beyond, far).min()), "closest_head": int(share(w, beyond, own_sentence).argmax())}


def lesson08(seed: int) -> dict:
    """One seed of lesson 08: the five schemes trained 200 steps, evaluated at L..8L, with
    and without a sliding window of L keys."""
    task = who_task()
    L = task.seq_len
    row: dict = {"accuracy": {}, "window_L": {}, "question_4L": {}, "looks": {}, "looks_window_L": {}}
    for positional in POSITIONAL_SCHEMES:
        model = who_model(positional, seed, task)
        untrained = model.position_embedding.table.weight.detach().clone() if positional == "learned" else None
        train(model, task, steps=200, batch_size=64, lr=1e-2, seed=seed, progress=False)
        if positional == "learned":
            row["accuracy"][positional] = [_r(accuracy_at(model, task, 1))] + [None] * (len(FACTORS) - 1)
            row["learned_similarity"] = position_similarity(model.position_embedding.table.weight)
            row["learned_similarity_untrained"] = position_similarity(untrained)
            by_q = evaluate(model, task, n_sequences=128, n_sentences=8, by_position=True)[3::4]
        else:
            row["accuracy"][positional] = [_r(accuracy_at(model, task, k)) for k in FACTORS]
            windowed = windowed_copy(model, L)
            row["window_L"][positional] = [_r(accuracy_at(windowed, task, k)) for k in FACTORS]
            row["looks"][positional] = where_layer1_looks(model, task)
            row["looks_window_L"][positional] = where_layer1_looks(windowed, task)
            by_q = evaluate(model, task, n_sequences=128, n_sentences=32, by_position=True)[3::4]
        row["question_4L"][positional] = [_r(a) for a in by_q]
    return row


# --------------------------------------------------------------------------- main


def sweep(seeds=SEEDS) -> dict:
    out = {"seeds": list(seeds), "lesson07": {}, "lesson08": {}}
    for seed in seeds:
        start = time.perf_counter()
        out["lesson07"][str(seed)] = lesson07(seed)
        out["lesson08"][str(seed)] = lesson08(seed)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    table = sweep(args.seeds)
    args.output.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
