"""The fine-tuning loop: AdamW + linear warm-up/decay, clipping, dynamic padding,
per-epoch shuffling, dev evaluation, early stopping on dev macro-F1, best-model keeping,
class weights / oversampling for imbalanced data, and resumable checkpoints."""

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

from . import distributed
from .batching import length_grouped_batches, oversampled_indices, pad_batch, shuffled_batches
from .checkpoint import restore_checkpoint, save_checkpoint
from .device import autocast, grad_scaler, resolve_device, resolve_precision
from .errors import UserError
from .fileio import atomic_open
from .long_text import pool_logits
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
    class_weight: str = "none"  # "balanced": loss weights inversely proportional to class frequency
    oversample: bool = False  # repeat examples of smaller classes in each epoch up to the largest
    save_every: int = 0  # write a resumable checkpoint every N steps (0: at the end of each epoch only)
    layer_lr_decay: float = 1.0  # < 1: lower learning rates for lower layers (see model.parameter_groups)
    device: str = "auto"  # auto: CUDA when present, else CPU
    precision: str = "auto"  # autocast: auto = bf16/fp16 on GPUs, fp32 on CPU; or fp32, bf16, fp16
    compile: bool = False  # torch.compile the model
    pad_to: int = 0  # 0: dynamic padding; N: pad every batch to N tokens (for measurements)


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


METRICS = ("macro_f1", "accuracy", "weighted_f1")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    group_by_length: bool,
    labels: Sequence[int] | None = None,
    oversample: bool = False,
) -> list[np.ndarray]:
    """The shuffled batches of one epoch; the same for the same seed and epoch.

    With ``oversample``, smaller classes (by ``labels``) are repeated up to the largest
    class's size first (:func:`oversampled_indices`), drawn anew each epoch.
    """
    rng = np.random.default_rng([seed, epoch])
    pool = np.arange(len(lengths))
    if oversample:
        if labels is None:
            raise ValueError("oversample needs labels")
        pool = oversampled_indices(labels, rng)
    if group_by_length:
        batches = length_grouped_batches(np.asarray(lengths, dtype=np.int64)[pool], batch_size, rng)
    else:
        batches = shuffled_batches(len(pool), batch_size, rng)
    return [pool[b] for b in batches]


def epoch_size(labels: Sequence[int], oversample: bool) -> int:
    """Examples per epoch: all of them, or (oversampled) classes x the largest class."""
    if not oversample or len(labels) == 0:
        return len(labels)
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    counts = counts[counts > 0]
    return int(len(counts) * counts.max())


def balanced_class_weights(train_y: Sequence[int], num_labels: int) -> torch.Tensor:
    """``n / (classes * count)`` per class (scikit-learn's "balanced"); 1.0 for an absent class."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(train_y, dtype=np.int64)
    present = np.unique(y)
    weights = np.ones(num_labels, dtype=np.float64)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.tensor(weights, dtype=torch.float32)


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
    dev_owners: Sequence[int] | None = None,
    pool: str = "mean",
    checkpoint_dir: str | Path | None = None,
    checkpoint_extra: Callable[[Path], None] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best dev evaluation.

    ``dev_ids`` may be the windows of long dev texts: ``dev_owners[k]`` is then the text of
    row ``k`` and window logits are pooled (``pool``) per text before scoring. With
    ``checkpoint_dir`` a resumable checkpoint is written every ``settings.save_every`` steps
    and at the end of each epoch; ``resume=True`` continues from it (same final result as a
    run that was never interrupted).

    Inside a ``torchrun`` process group (see :mod:`cls_app.distributed`) every rank takes its
    share of each global batch and DistributedDataParallel averages the gradients, so the
    optimizer sees the same batches and steps as a single process; dev is scored by all ranks
    together, so every rank takes the same early-stopping decision. ``on_best``, ``log_path``
    and checkpoints are written by rank 0 only.
    """
    if settings.metric not in METRICS:
        raise UserError(f"unknown model-selection metric {settings.metric!r}; choose one of {', '.join(METRICS)}")
    rank, world = distributed.rank_world()
    main = rank == 0
    device = resolve_device(settings.device, distributed.env_info().local_rank)
    amp_dtype = resolve_precision(settings.precision, device)
    set_seed(settings.seed)
    lengths = [len(s) for s in train_ids]
    y = torch.as_tensor(np.asarray(train_y, dtype=np.int64))
    steps_per_epoch = (epoch_size(train_y, settings.oversample) + settings.batch_size - 1) // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    model.to(device)
    net = _wrap(model, device, world, settings.compile)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, settings.weight_decay, settings.lr, settings.layer_lr_decay), lr=settings.lr
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(settings.warmup_ratio * total_steps), total_steps
    )
    if class_weights is None and settings.class_weight == "balanced":
        class_weights = balanced_class_weights(train_y, len(labels))
        log.info("class weights (balanced): %s", ", ".join(
            f"{name} {w:.3f}" for name, w in zip(labels, class_weights.tolist(), strict=True)))
    elif settings.class_weight not in ("none", "balanced"):
        raise UserError(f"unknown class weighting {settings.class_weight!r}; choose none or balanced")
    # Summed (class-weighted) losses, divided by the global batch's total weight below: the
    # mean over the whole batch whatever the number of processes it is split over.
    sample_weight = (class_weights if class_weights is not None else torch.ones(len(labels))).float()
    loss_fn = torch.nn.CrossEntropyLoss(weight=sample_weight.to(device), reduction="sum")
    scaler = grad_scaler(device, amp_dtype)
    dev_owners = None if dev_owners is None else np.asarray(dev_owners, dtype=np.int64)

    # Everything below that changes during training is saved in checkpoints.
    st = {
        "epoch": 0, "batch": 0, "step": 0, "best_value": -1.0, "best_dev": {}, "best_step": 0,
        "best_epoch": 0.0, "bad_evals": 0, "stopped_early": False, "done": False, "history": [],
        "seen": 0, "tokens": 0, "running_loss": 0.0, "running_n": 0, "elapsed": 0.0,
    }
    best_state: dict[str, torch.Tensor] | None = None
    if resume:
        if checkpoint_dir is None:
            raise ValueError("resume needs checkpoint_dir")
        restored = restore_checkpoint(checkpoint_dir, model, optimizer, scheduler)
        st.update({k: restored.state[k] for k in st})
        best_state = restored.best_state
        if best_state is None and restored.state.get("best_is_current"):
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if rank:  # the checkpoint holds the sums over all ranks (see save_checkpoint_now)
            st.update(running_loss=0.0, running_n=0, tokens=0)
    if rank:
        torch.manual_seed(settings.seed + rank)  # each rank its own dropout masks
    start = time.perf_counter() - st["elapsed"]

    def save_checkpoint_now() -> None:
        if checkpoint_dir is None:
            return
        if world > 1:  # rank 0 keeps the sums over all ranks, so the checkpoint has them all
            sums = distributed.all_reduce_sum([st["running_loss"], st["running_n"], st["tokens"]])
            st["running_loss"], st["running_n"], st["tokens"] = sums if main else (0.0, 0, 0)
        if not main:
            return
        st["elapsed"] = time.perf_counter() - start
        best_is_current = best_state is not None and st["best_step"] == st["step"]
        save_checkpoint(
            checkpoint_dir, model, optimizer, scheduler, {**st, "best_is_current": best_is_current},
            None if best_is_current else best_state, checkpoint_extra,
        )

    def evaluate(epoch_pos: float) -> bool:
        """Score dev, log it, keep the best; return True when training should stop."""
        nonlocal best_state
        with autocast(device, amp_dtype):
            logits = distributed.predict_sharded(model, dev_ids, pad_id, settings.eval_batch_size, device)
        if dev_owners is not None:
            logits = pool_logits(logits, dev_owners, len(dev_y), pool)
        dev = compute_metrics(dev_y, logits.argmax(axis=1), labels)
        loss_sum, loss_n = distributed.all_reduce_sum([st["running_loss"], st["running_n"]])
        elapsed = time.perf_counter() - start
        row = {
            "epoch": round(epoch_pos, 3),
            "step": st["step"],
            "train_loss": round(loss_sum / max(loss_n, 1e-12), 5),
            "dev_accuracy": round(dev["accuracy"], 5),
            "dev_macro_f1": round(dev["macro_f1"], 5),
            "lr": scheduler.get_last_lr()[0],
            "samples_per_s": round(st["seen"] / elapsed, 1) if elapsed else 0.0,
            "elapsed_s": round(elapsed, 1),
        }
        st["history"].append(row)
        if log_path is not None and main:
            _write_log(log_path, st["history"])
        st["running_loss"], st["running_n"] = 0.0, 0
        value = dev[settings.metric]
        improved = value > st["best_value"]
        log.info(
            "epoch %.2f step %d: train_loss %.4f dev accuracy %.4f macro_f1 %.4f%s",
            epoch_pos, st["step"], row["train_loss"], dev["accuracy"], dev["macro_f1"],
            " (best so far)" if improved else "",
        )
        if improved:
            st.update(best_value=value, best_dev=dev, best_step=st["step"], best_epoch=epoch_pos, bad_evals=0)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if on_best is not None and main:
                on_best(model, dev)
            return False
        st["bad_evals"] += 1
        return settings.patience > 0 and st["bad_evals"] >= settings.patience

    model.train()
    while not st["done"] and st["epoch"] < settings.epochs:
        epoch = st["epoch"]
        batches = epoch_batches(
            lengths, settings.batch_size, settings.seed, epoch, settings.group_by_length,
            labels=train_y, oversample=settings.oversample,
        )
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch", leave=False,
                   initial=st["batch"], **({} if main else {"disable": True}))
        stop = False
        for i in range(st["batch"], len(batches)):
            idx = batches[i]
            # this rank's share of the global batch; the loss is divided by the global batch's
            # weight / world, and DDP's gradient averaging (/ world) completes the batch mean
            denom = float(sample_weight[y[idx]].sum()) / world
            mine, scale = (distributed.shard(idx, rank, world), 1.0) if world > 1 else (idx, 1.0)
            if len(mine) == 0:  # a last batch smaller than the world: take part with zero weight
                mine, scale = idx[:1], 0.0
            ids, mask = pad_batch([train_ids[j] for j in mine], pad_id, settings.pad_to)
            ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
            with autocast(device, amp_dtype):
                logits = net(ids, attention_mask=mask)
            loss = loss_fn(logits.float(), y[mine].to(device)) * scale
            scaler.scale(loss / denom).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            st["step"] += 1
            st["batch"] = i + 1
            st["seen"] += len(idx)
            st["tokens"] += int(mask.sum()) if scale else 0
            st["running_loss"] += loss.item()
            st["running_n"] += float(sample_weight[y[mine]].sum()) * scale
            elapsed = time.perf_counter() - start
            bar.update(1)
            if main:
                bar.set_postfix(loss=f"{st['running_loss'] / max(st['running_n'], 1e-12):.4f}",
                                samples_s=f"{st['seen'] / elapsed:.0f}", refresh=False)
            if i + 1 == len(batches):
                break
            step = st["step"]
            if settings.eval_every and step % settings.eval_every == 0:
                stop = evaluate(epoch + (i + 1) / len(batches))
                model.train()
            if stop:
                break
            if settings.save_every and step % settings.save_every == 0:
                save_checkpoint_now()
        bar.close()
        if stop or evaluate(epoch + 1.0):
            st.update(stopped_early=True, done=True)
        else:
            st["epoch"], st["batch"] = epoch + 1, 0
            st["done"] = st["epoch"] >= settings.epochs
        model.train()
        save_checkpoint_now()

    seconds = time.perf_counter() - start
    (tokens,) = distributed.all_reduce_sum([st["tokens"]])
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if st["stopped_early"]:
        log.info("early stopping: no dev %s improvement in %d evaluations", settings.metric, settings.patience)
    return TrainResult(
        best_dev=st["best_dev"],
        best_step=st["best_step"],
        best_epoch=st["best_epoch"],
        steps=st["step"],
        seconds=seconds,
        samples_per_s=st["seen"] / seconds if seconds else 0.0,
        tokens_per_s=tokens / seconds if seconds else 0.0,
        stopped_early=st["stopped_early"],
        history=st["history"],
    )


def _wrap(model: torch.nn.Module, device: torch.device, world: int, compile_model: bool) -> torch.nn.Module:
    """The module the training steps call: DDP across ranks, then ``torch.compile`` if asked."""
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if compile_model:
        net = torch.compile(net, dynamic=True)
    return net


def _write_log(path: str | Path, history: list[dict]) -> None:
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def settings_dict(settings: TrainSettings) -> dict:
    """Settings as a plain dict (for training_args.json)."""
    return asdict(settings)
