"""Training and evaluating the tiny transformer on a toy task, on the CPU, deterministically.

`train` draws every batch from a `torch.Generator` seeded with `seed` and runs on one
thread (so the order of floating-point sums, and hence every number, is the same on each
run); the model's initial weights come from whatever seeded it (call `torch.manual_seed`
before building it). Same seed, same model, same task: the same history, bit for bit.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._arrays import check_flag, check_positive_finite, check_positive_int
from ._threads import one_torch_thread
from .tasks import IGNORE_INDEX, Seq2SeqBatch

__all__ = ["History", "accuracy", "train", "evaluate"]


@dataclass
class History:
    """What happened during training, one entry per step: the batch's loss and accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return list(range(1, len(self.loss) + 1))

    def smoothed(self, name: str = "accuracy", window: int = 25) -> list[float]:
        """A running mean of `loss` or `accuracy` over the last `window` steps (for plots).

        Each mean is taken over its own window, so a `nan` step makes only the windows
        that hold it `nan` (a running total would stay `nan` for ever after).
        """
        if name not in ("loss", "accuracy"):
            raise ValueError(f"name must be 'loss' or 'accuracy', got {name!r}")
        values = getattr(self, name)
        window = check_positive_int(window, "window")
        return [math.fsum(values[max(0, i + 1 - window) : i + 1]) / min(i + 1, window) for i in range(len(values))]


def accuracy(logits, targets) -> float:
    """Fraction of the asked positions (`targets != IGNORE_INDEX`) where the arg-max is right.

    Args:
        logits: `(B, T, vocab_size)`; targets: integer `(B, T)`.
    """
    for name, x in (("logits", logits), ("targets", targets)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must hold floating-point scores (B, T, vocab_size), got dtype {logits.dtype}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise TypeError(f"targets must hold integer token ids (B, T), got dtype {targets.dtype}")
    if logits.ndim < 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits (B, T, vocab_size) and targets (B, T) disagree: {tuple(logits.shape)} vs {tuple(targets.shape)}")
    asked = targets != IGNORE_INDEX  # (B, T)
    if not asked.any():
        raise ValueError("targets asks for nothing: every entry is IGNORE_INDEX")
    correct = logits.argmax(dim=-1) == targets  # (B, T)
    return correct[asked].sum().item() / asked.sum().item()  # exact: no float32 mean



def _lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then a cosine decay to a tenth of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(model: nn.Module, task, *, steps: int, batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 0.0,
          warmup: int | None = None, seed: int = 0, progress: bool = True, desc: str | None = None, **sample_kwargs) -> History:
    r"""Train `model` on fresh batches of `task` with AdamW and cross-entropy on the asked positions.

    .. math:: \mathcal{L} = -\frac{1}{|A|} \sum_{(b,t) \in A} \log p_\theta(\mathrm{target}_{b,t} \mid \mathrm{tokens}_{b, \le t})

    over the asked positions `A` (targets that are not `IGNORE_INDEX`). The learning rate
    warms up linearly over `warmup` steps (default 5 % of `steps`) and then decays along a
    cosine to `lr / 10`. A loss that becomes `nan` or infinite stops training with a
    `FloatingPointError` naming the step (usually: the learning rate is too high); the
    error's `history` attribute holds the steps before it.

    Args:
        model: maps `tokens (B, T)` to `logits (B, T, vocab_size)` (e.g. `TinyTransformer`),
            or, for a task whose batches are `Seq2SeqBatch`es (e.g. `ReversalTask`),
            `(source, target_in)` to `logits (B, T, vocab_size)` (e.g. `EncoderDecoder`).
        task: has `sample(batch_size, generator=..., **sample_kwargs) -> Batch` (or
            `Seq2SeqBatch`: the loss is then on `target`, with teacher forcing).
        steps: number of optimisation steps, one fresh batch each.
        lr: peak learning rate, finite and > 0; weight_decay: AdamW's, finite and >= 0.
        seed: seeds the batches' generator, a whole number >= 0.
        progress: show a `tqdm` progress bar (`desc` labels it).
        **sample_kwargs: passed on to `task.sample` (e.g. `n_sentences=4`).

    Returns:
        A `History` of the per-step loss and accuracy. `model` is trained in place and left
        in eval mode.
    """
    _check_model(model)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    progress = check_flag(progress, "progress")
    lr = check_positive_finite(lr, "lr")
    weight_decay = check_positive_finite(weight_decay, "weight_decay", allow_zero=True)
    seed = _check_seed(seed)
    _check_task(task)
    warmup = max(1, steps // 20) if warmup is None else check_positive_int(warmup, "warmup")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, steps, warmup))
    history = History()
    model.train()
    with one_torch_thread():
        bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=0.5)
        for _ in bar:
            batch = task.sample(batch_size, generator=generator, **sample_kwargs)
            logits, targets = _logits_and_targets(model, batch)  # (B, T, vocab_size), (B, T)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
            if not torch.isfinite(loss):
                model.eval()
                step = len(history.loss) + 1
                error = FloatingPointError(
                    f"training stopped: the loss became {loss.item()} at step {step} of {steps} (learning rate "
                    f"{scheduler.get_last_lr()[0]:.3g}). The weights have blown up; lower the learning rate (e.g. "
                    f"lr={lr / 10:.3g}) or use a longer warmup, then rebuild the model and train again. The "
                    f"history of the steps before is in this error's .history"
                )
                error.history = history
                raise error
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            history.loss.append(loss.item())
            history.accuracy.append(accuracy(logits.detach(), targets))
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}", acc=f"{history.accuracy[-1]:.2f}", refresh=False)
    model.eval()
    return history


def _logits_and_targets(model: nn.Module, batch):
    """Run `model` on a batch: `model(tokens)` for a `Batch`, `model(source, target_in)` for a `Seq2SeqBatch`."""
    if isinstance(batch, Seq2SeqBatch):
        return model(batch.source, batch.target_in), batch.target  # teacher forcing
    return model(batch.tokens), batch.targets


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module mapping tokens (B, T) to logits (B, T, vocab_size), "
                        f"got {type(model).__name__}")


def _check_task(task) -> None:
    if not callable(getattr(task, "sample", None)):
        raise TypeError(f"task must have a sample(batch_size, generator=...) method, got {type(task).__name__}")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a whole number >= 0, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


@torch.no_grad()
def evaluate(model: nn.Module, task, *, n_sequences: int = 512, batch_size: int = 256, seed: int = 1234,
             by_position: bool = False, **sample_kwargs):
    """Accuracy of `model` on `n_sequences` fresh sequences of `task` (held out by `seed`).

    Extra keyword arguments go to `task.sample`, e.g. `n_sentences=16` to test a
    `WhoDidWhatTask` model on sequences twice as long as it was trained on. A task whose
    batches are `Seq2SeqBatch`es (`ReversalTask`) is scored with teacher forcing:
    `model(source, target_in)` against `target`, as in `train`.

    Returns:
        The fraction of asked positions answered right (a float), or with
        `by_position=True` a numpy array `(T,)` of the accuracy at each position (`nan`
        where nothing is asked).
    """
    _check_model(model)
    _check_task(task)
    n_sequences = check_positive_int(n_sequences, "n_sequences")
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = _check_seed(seed)
    by_position = check_flag(by_position, "by_position")
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    correct = asked = 0
    with one_torch_thread():
        for start in range(0, n_sequences, batch_size):
            batch = task.sample(min(batch_size, n_sequences - start), generator=generator, **sample_kwargs)
            logits, targets = _logits_and_targets(model, batch)  # (B, T, vocab_size), (B, T)
            mask = targets != IGNORE_INDEX  # (B, T)
            right = (logits.argmax(dim=-1) == targets) & mask  # (B, T)
            correct = correct + right.sum(dim=0)  # (T,)
            asked = asked + mask.sum(dim=0)  # (T,)
    model.train(was_training)
    if by_position:
        return (correct.double() / asked.double()).numpy()  # (T,), nan where asked == 0
    return correct.sum().item() / asked.sum().item()
