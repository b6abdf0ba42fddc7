"""The fine-tuning loop: AdamW + linear warm-up/decay, clipping, dynamic padding,
per-epoch shuffling, dev evaluation, early stopping on dev macro-F1, best-model keeping."""

from __future__ import annotations

import csv
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from .batching import length_grouped_batches, pad_batch, shuffled_batches
from .fileio import atomic_open
from .inference import predict_logits
from .metrics import compute_metrics
from .model import parameter_groups

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Hyper-parameters of one fine-tuning run."""

    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 0  # evaluate every N optimizer steps; 0 = once per epoch
    patience: int = 2  # evaluations without dev improvement before stopping; 0 = never stop early
    metric: str = "macro_f1"  # model selection metric on dev
    seed: int = 42
    eval_batch_size: int = 128
    group_by_length: bool = True  # batch texts of similar length together (less padding)
    layer_lr_decay: float = 1.0  # < 1: lower learning rates for lower layers (see model.parameter_groups)


@dataclass
class TrainResult:
    """What a run achieved: the best dev metrics and where they happened."""

    best_dev: dict
    best_step: int
    best_epoch: float
    steps: int
    seconds: float
    samples_per_s: float
    tokens_per_s: float
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[np.ndarray]:
    """The shuffled batches of one epoch; the same for the same seed and epoch."""
    rng = np.random.default_rng([seed, epoch])
    if group_by_length:
        return length_grouped_batches(lengths, batch_size, rng)
    return shuffled_batches(len(lengths), batch_size, rng)


def fit(
    model: torch.nn.Module,
    train_ids: Sequence[Sequence[int]],
    train_y: Sequence[int],
    dev_ids: Sequence[Sequence[int]],
    dev_y: Sequence[int],
    labels: list[str],
    pad_id: int,
    settings: TrainSettings,
    on_best: Callable[[torch.nn.Module, dict], None] | None = None,
    log_path: str | Path | None = None,
    class_weights: torch.Tensor | None = None,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best dev evaluation."""
    set_seed(settings.seed)
    n = len(train_ids)
    lengths = [len(s) for s in train_ids]
    y = torch.as_tensor(np.asarray(train_y, dtype=np.int64))
    steps_per_epoch = (n + settings.batch_size - 1) // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    optimizer = torch.optim.AdamW(
        parameter_groups(model, settings.weight_decay, settings.lr, settings.layer_lr_decay), lr=settings.lr
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(settings.warmup_ratio * total_steps), total_steps
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights)

    best_value, best_state, best_dev, best_step, best_epoch = -1.0, None, {}, 0, 0.0
    bad_evals, stopped_early, step = 0, False, 0
    history: list[dict] = []
    seen = tokens = 0
    start = time.perf_counter()
    running_loss, running_n = 0.0, 0

    def evaluate(epoch_pos: float) -> bool:
        """Score dev, log it, keep the best; return True when training should stop."""
        nonlocal best_value, best_state, best_dev, best_step, best_epoch, bad_evals, running_loss, running_n
        logits = predict_logits(model, dev_ids, pad_id, settings.eval_batch_size)
        dev = compute_metrics(dev_y, logits.argmax(axis=1), labels)
        elapsed = time.perf_counter() - start
        row = {
            "epoch": round(epoch_pos, 3),
            "step": step,
            "train_loss": round(running_loss / max(running_n, 1), 5),
            "dev_accuracy": round(dev["accuracy"], 5),
            "dev_macro_f1": round(dev["macro_f1"], 5),
            "lr": scheduler.get_last_lr()[0],
            "samples_per_s": round(seen / elapsed, 1),
            "elapsed_s": round(elapsed, 1),
        }
        history.append(row)
        if log_path is not None:
            _write_log(log_path, history)
        running_loss, running_n = 0.0, 0
        value = dev[settings.metric]
        improved = value > best_value
        log.info(
            "epoch %.2f step %d: train_loss %.4f dev accuracy %.4f macro_f1 %.4f%s",
            epoch_pos, step, row["train_loss"], dev["accuracy"], dev["macro_f1"],
            " (best so far)" if improved else "",
        )
        if improved:
            best_value, best_dev, best_step, best_epoch, bad_evals = value, dev, step, epoch_pos, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if on_best is not None:
                on_best(model, dev)
            return False
        bad_evals += 1
        return settings.patience > 0 and bad_evals >= settings.patience

    model.train()
    for epoch in range(settings.epochs):
        batches = epoch_batches(lengths, settings.batch_size, settings.seed, epoch, settings.group_by_length)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch", leave=False)
        for i, idx in enumerate(bar):
            seqs = [train_ids[j] for j in idx]
            ids, mask = pad_batch(seqs, pad_id)
            loss = loss_fn(model(ids, attention_mask=mask), y[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(idx)
            tokens += int(mask.sum())
            running_loss += loss.item() * len(idx)
            running_n += len(idx)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{running_loss / running_n:.4f}", samples_s=f"{seen / elapsed:.0f}")
            if settings.eval_every and step % settings.eval_every == 0 and i + 1 < len(batches):
                if evaluate(epoch + (i + 1) / len(batches)):
                    stopped_early = True
                    break
                model.train()
        bar.close()
        if stopped_early or evaluate(epoch + 1.0):
            stopped_early = True
            break
        model.train()

    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if stopped_early:
        log.info("early stopping: no dev %s improvement in %d evaluations", settings.metric, settings.patience)
    return TrainResult(
        best_dev=best_dev,
        best_step=best_step,
        best_epoch=best_epoch,
        steps=step,
        seconds=seconds,
        samples_per_s=seen / seconds if seconds else 0.0,
        tokens_per_s=tokens / seconds if seconds else 0.0,
        stopped_early=stopped_early,
        history=history,
    )


def _write_log(path: str | Path, history: list[dict]) -> None:
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def settings_dict(settings: TrainSettings) -> dict:
    """Settings as a plain dict (for training_args.json)."""
    return asdict(settings)
