"""The fine-tuning loop: AdamW + linear warm-up/decay, clipping, dynamic padding,
per-epoch shuffling, dev evaluation, early stopping on dev macro-F1, best-model keeping,
class weights / oversampling for imbalanced data, and resumable checkpoints."""

from __future__ import annotations

import csv
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from transformers import get_linear_schedule_with_warmup

from ..bars import progress_bar
from ..fileio import atomic_open
from ..interrupts import deferred
from ..modeling.bert import embedding_tables, parameter_groups
from ..runtime import distributed
from ..runtime.device import adamw, autocast, clip_grad_norm, grad_scaler, resolve_device, resolve_precision
from ..tasks import SingleLabel, Task
from ..text.batching import length_grouped_batches, oversampled_indices, pad_batch, shuffled_batches
from ..text.long_text import pool_logits
from .checkpoint import restore_checkpoint, save_checkpoint
from .settings import TrainSettings, check_settings

log = logging.getLogger(__name__)


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
    best_dev_probs: np.ndarray | None = None  # the best evaluation's dev probabilities (None after a resume)
    stopped_by_time: bool = False  # --time-limit was reached (dev scored there, the best model so far kept)



def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_batches(
    lengths: npt.ArrayLike,
    batch_size: int,
    seed: int,
    epoch: int,
    group_by_length: bool,
    labels: npt.ArrayLike | None = None,
    oversample: bool = False,
) -> list[np.ndarray]:
    """The shuffled batches of one epoch; the same for the same seed and epoch.

    With ``oversample``, smaller classes (by ``labels``) are repeated up to the largest
    class's size first (:func:`oversampled_indices`), drawn anew each epoch.
    """
    rng = np.random.default_rng([seed, epoch])
    sizes = np.asarray(lengths, dtype=np.int64)
    pool = np.arange(len(sizes))
    if oversample:
        if labels is None:
            raise ValueError("oversample needs labels")
        pool = oversampled_indices(labels, rng)
    if group_by_length:
        batches = length_grouped_batches(sizes[pool], batch_size, rng)
    else:
        batches = shuffled_batches(len(pool), batch_size, rng)
    return [pool[b] for b in batches]


def epoch_size(labels: npt.ArrayLike, oversample: bool) -> int:
    """Examples per epoch: all of them, or (oversampled) classes x the largest class."""
    ids = np.asarray(labels)
    if not oversample or len(ids) == 0:
        return len(ids)
    counts = np.bincount(ids.astype(np.int64))
    counts = counts[counts > 0]
    return int(len(counts) * counts.max())


@dataclass
class TrainData:
    """Token ids and targets of the training and dev rows, and the task that reads the targets
    (class ids, or 0/1 label matrices for label-set tasks).

    ``dev_ids`` may be the windows of long dev texts: ``dev_owners[k]`` is then the text of
    row ``k`` and window logits are pooled (``pool``) per text before scoring.
    """

    train_ids: Sequence[Sequence[int]]
    train_y: Any
    dev_ids: Sequence[Sequence[int]]
    dev_y: Any
    labels: list[str]
    pad_id: int
    dev_owners: npt.ArrayLike | None = None
    pool: str = "mean"
    task: Task = field(default_factory=SingleLabel)


@dataclass
class TrainHooks:
    """Where a run reports: the best model, the log, resumable checkpoints (rank 0 only)."""

    on_best: Callable[[torch.nn.Module, dict], None] | None = None
    log_path: str | Path | None = None
    checkpoint_dir: str | Path | None = None
    checkpoint_extra: Callable[[Path], None] | None = None


@dataclass
class TrainState:
    """Everything that changes during training; saved in checkpoints, so a resumed run goes on
    exactly where the killed one was."""

    epoch: int = 0
    batch: int = 0  # batches of ``epoch`` already done
    step: int = 0
    best_value: float = -1.0
    best_dev: dict = field(default_factory=dict)
    best_step: int = 0
    best_epoch: float = 0.0
    bad_evals: int = 0
    stopped_early: bool = False
    stopped_by_time: bool = False
    done: bool = False
    history: list = field(default_factory=list)
    seen: int = 0
    tokens: int = 0
    running_loss: float = 0.0
    running_n: float = 0
    elapsed: float = 0.0
    pending_eval: float | None = None  # an evaluation due at this epoch position has not been done yet


class Trainer:
    """Fine-tunes ``model`` in place; after :meth:`run` it holds the weights of the best dev evaluation.

    With ``hooks.checkpoint_dir`` a resumable checkpoint is written every ``settings.save_every``
    steps and at the end of each epoch; ``run(resume=True)`` continues from it (same final
    result as a run that was never interrupted).

    Inside a ``torchrun`` process group (see :mod:`cls_app.runtime.distributed`) every rank takes
    its share of each global batch and DistributedDataParallel averages the gradients, so the
    optimizer sees the same batches and steps as a single process; dev is scored by all ranks
    together, so every rank takes the same early-stopping decision. ``on_best``, the log and
    checkpoints are written by rank 0 only.
    """

    def __init__(self, model: torch.nn.Module, data: TrainData, settings: TrainSettings,
                 hooks: TrainHooks | None = None) -> None:
        if settings.metric is None:  # the task's own selection metric
            settings = replace(settings, metric=data.task.default_metric)
        check_settings(settings)
        data.task.check_training(settings.oversample, str(settings.metric))
        self.model, self.data, self.settings, self.hooks = model, data, settings, hooks or TrainHooks()
        self.rank, self.world = distributed.rank_world()
        self.main = self.rank == 0
        self.device = resolve_device(settings.device, distributed.env_info().local_rank)
        self.amp_dtype = resolve_precision(settings.precision, self.device)
        set_seed(settings.seed)
        steps_per_epoch = -(-epoch_size(data.train_y, settings.oversample) // settings.batch_size)
        total_steps = steps_per_epoch * settings.epochs
        model.to(self.device)
        # Row-sparse embedding gradients (not under torch.compile, nor across GPUs: NCCL reduces no
        # sparse tensors; set before DDP wraps the model, so gloo reduces them as sparse): the backward
        # pass builds no dense gradient of the whole bigram table, and the optimizer's update is
        # AdamW's all the same (until run() ends).
        across_gpus = self.world > 1 and self.device.type == "cuda"
        sparse = settings.sparse_embeddings and not settings.compile and not across_gpus
        self.sparse_tables = embedding_tables(model) if sparse else []
        for table in self.sparse_tables:
            table.sparse = True
        self.net = _wrap(model, self.device, self.world, settings.compile)
        groups = parameter_groups(model, settings.weight_decay, settings.lr, settings.layer_lr_decay)
        self.optimizer = adamw(groups, settings.lr, self.device)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(settings.warmup_ratio * total_steps), total_steps
        )
        # Summed (class-weighted) losses, divided by the global batch's total weight below: the
        # mean over the whole batch whatever the number of processes it is split over.
        self.loss = data.task.loss(np.asarray(data.train_y), data.labels, settings.class_weight).to(self.device)
        weights = self.loss.describe(data.labels)
        if weights:
            log.info("loss weights (%s): %s", settings.class_weight, weights)
        self.scaler = grad_scaler(self.device, self.amp_dtype)
        self.dev_owners = None if data.dev_owners is None else np.asarray(data.dev_owners, dtype=np.int64)
        self.state = TrainState()
        self.best_state: dict[str, torch.Tensor] | None = None
        self.dev_probs: np.ndarray | None = None  # of the latest evaluation
        self.best_dev_probs: np.ndarray | None = None  # of the best evaluation in this process
        self.start = 0.0

    def run(self, resume: bool = False) -> TrainResult:
        """Train to the end (or early stop); restore the best weights; return what was achieved."""
        if resume:
            self._restore()
        if self.rank:
            torch.manual_seed(self.settings.seed + self.rank)  # each rank its own dropout masks
        self.start = time.perf_counter() - self.state.elapsed
        self.model.train()
        st = self.state
        try:
            while not st.done and st.epoch < self.settings.epochs:
                self._run_epoch(st.epoch)
                if not st.done and st.pending_eval is not None:  # the epoch's closing evaluation
                    self._evaluate(st.pending_eval)
                with deferred():
                    if not st.done:
                        st.epoch, st.batch = st.epoch + 1, 0
                        st.done = st.epoch >= self.settings.epochs
                        if not st.done and self._out_of_time():
                            st.stopped_by_time, st.done = True, True
                self.model.train()
                self._save_checkpoint()
        except KeyboardInterrupt:
            self._save_on_interrupt()
            raise
        finally:
            for table in self.sparse_tables:
                table.sparse = False
        return self._finish()

    def _save_on_interrupt(self) -> None:
        """Ctrl-C / SIGTERM: keep a checkpoint of the exact position, so ``--resume`` goes on from there.

        Steps and evaluations change the state only under :func:`~cls_app.interrupts.deferred`, so
        the state is consistent whenever the interrupt arrives (an evaluation it cut short is done
        first on resume). A second signal while saving abandons the save (the previous checkpoint
        stays as it was). Under torchrun the ranks cannot agree on a position: no save.
        """
        if self.hooks.checkpoint_dir is None or self.world > 1:
            return
        log.info("interrupted at epoch %d, batch %d (step %d): saving a checkpoint", self.state.epoch,
                 self.state.batch, self.state.step)
        self._save_checkpoint()

    def _restore(self) -> None:
        if self.hooks.checkpoint_dir is None:
            raise ValueError("resume needs checkpoint_dir")
        restored = restore_checkpoint(self.hooks.checkpoint_dir, self.model, self.optimizer, self.scheduler)
        defaults = TrainState()
        self.state = TrainState(**{f.name: restored.state.get(f.name, getattr(defaults, f.name))
                                   for f in fields(TrainState)})
        self.best_state = restored.best_state
        if self.best_state is None and restored.state.get("best_is_current"):
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.rank:  # the checkpoint holds the sums over all ranks (see _save_checkpoint)
            self.state.running_loss, self.state.running_n, self.state.tokens = 0.0, 0, 0

    def _run_epoch(self, epoch: int) -> None:
        """The batches of ``epoch`` from where the state says (``state.done`` when early stopping hit).

        A step and the note that an evaluation is due after it change the state together
        (:func:`~cls_app.interrupts.deferred`), so an interrupt never falls between them.
        """
        s, st = self.settings, self.state
        batches = epoch_batches([len(x) for x in self.data.train_ids], s.batch_size, s.seed, epoch,
                                s.group_by_length, labels=self.data.train_y, oversample=s.oversample)
        bar = progress_bar(batches, enabled=self.main and s.progress, desc=f"epoch {epoch + 1}/{s.epochs}",
                           unit="batch", initial=st.batch)
        try:
            for i in range(st.batch, len(batches)):
                if st.pending_eval is not None and self._evaluate_now():  # resumed inside an evaluation
                    return
                last = i + 1 == len(batches)
                with deferred():
                    self._step(batches[i])
                    st.batch = i + 1
                    if last:
                        st.pending_eval = epoch + 1.0
                    elif s.eval_every and st.step % s.eval_every == 0:
                        st.pending_eval = epoch + (i + 1) / len(batches)
                bar.update(1)
                if self.main:
                    elapsed = time.perf_counter() - self.start
                    bar.set_postfix(loss=f"{st.running_loss / max(st.running_n, 1e-12):.4f}",
                                    samples_s=f"{st.seen / elapsed:.0f}", refresh=False)
                if last:
                    break
                if self._out_of_time():
                    st.pending_eval = st.pending_eval or epoch + (i + 1) / len(batches)
                    self._evaluate_now()
                    with deferred():
                        st.stopped_by_time, st.done = True, True
                    return
                if st.pending_eval is not None and self._evaluate_now():
                    return
                if s.save_every and st.step % s.save_every == 0:
                    self._save_checkpoint()
        finally:
            bar.close()

    def _out_of_time(self) -> bool:
        """``--time-limit`` reached (all ranks agree: any rank out of time stops them all)."""
        limit = self.settings.time_limit
        if limit is None:
            return False
        late = float(time.perf_counter() - self.start >= limit * 60.0)
        return distributed.all_reduce_sum([late])[0] > 0 if self.world > 1 else bool(late)

    def _evaluate_now(self) -> bool:
        """The mid-epoch evaluation that is due; True when training should stop."""
        stop = self._evaluate(float(self.state.pending_eval or 0.0))
        self.model.train()
        return stop

    def _step(self, idx: np.ndarray) -> None:
        """One optimizer step on the global batch ``idx`` (this rank computes its share)."""
        st, world, device = self.state, self.world, self.device
        # this rank's share of the global batch; the loss is divided by the global batch's
        # weight / world, and DDP's gradient averaging (/ world) completes the batch mean
        denom = self.batch_weight(idx) / world
        mine, scale = (distributed.shard(idx, self.rank, world), 1.0) if world > 1 else (idx, 1.0)
        if len(mine) == 0:  # a last batch smaller than the world: take part with zero weight
            mine, scale = idx[:1], 0.0
        ids, mask = pad_batch([self.data.train_ids[j] for j in mine], self.data.pad_id, self.settings.pad_to)
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        with autocast(device, self.amp_dtype):
            logits = self.net(ids, attention_mask=mask)
        loss = self.batch_loss(logits.float(), mine) * scale
        self.scaler.scale(loss / denom).backward()
        self.scaler.unscale_(self.optimizer)
        clip_grad_norm(self.model.parameters(), self.settings.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        st.step += 1
        st.seen += len(idx)
        st.tokens += int(mask.sum()) if scale else 0
        st.running_loss += loss.item()
        st.running_n += self.batch_weight(mine) * scale

    def time_steps(self, steps: int = 3) -> tuple[float, float]:
        """Seconds per optimizer step on this data's first batches (the first step warms up, not counted) and
        per dev text scored: the planner's measure of this model on this machine. The model is trained by
        those steps: a probe's trainer is thrown away."""
        s = self.settings
        batches = epoch_batches([len(x) for x in self.data.train_ids], s.batch_size, s.seed, 0, s.group_by_length)
        self.model.train()
        start = time.perf_counter()
        for i in range(min(steps + 1, len(batches))):
            if i == 1:
                start = time.perf_counter()
            self._step(batches[i % len(batches)])
        per_step = (time.perf_counter() - start) / max(1, min(steps, len(batches) - 1))
        self.model.eval()
        start = time.perf_counter()
        with torch.inference_mode():
            self.dev_logits(len(self.data.dev_y))
        per_dev_text = (time.perf_counter() - start) / max(1, len(self.data.dev_y))
        return per_step, per_dev_text

    def batch_weight(self, rows: np.ndarray) -> float:
        """The total loss weight of training ``rows`` (the divisor of their summed loss)."""
        return self.loss.weight(rows)

    def batch_loss(self, logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        """The summed loss of training ``rows`` given their ``logits``."""
        return self.loss(logits, rows)

    def dev_logits(self, n_texts: int) -> np.ndarray:
        """Logits of the ``n_texts`` dev texts (long texts' windows pooled), scored by all ranks together."""
        d = self.data
        with autocast(self.device, self.amp_dtype):
            logits = distributed.predict_sharded(self.model, d.dev_ids, d.pad_id, self.settings.eval_batch_size,
                                                 self.device)
        if self.dev_owners is not None:
            logits = pool_logits(logits, self.dev_owners, n_texts, d.pool)
        return logits

    def _dev_metrics(self) -> dict:
        """The task's dev metrics (label sets: thresholds tuned on these rows first)."""
        d = self.data
        self.dev_probs = d.task.probabilities(self.dev_logits(len(d.dev_y)))
        return d.task.dev_metrics(np.asarray(d.dev_y), self.dev_probs, d.labels)

    def _evaluate(self, epoch_pos: float) -> bool:
        """Score dev, log it, keep the best; return True when training should stop (then ``state.done``).

        The state changes at the end, all at once (:func:`~cls_app.interrupts.deferred`): an
        interrupt while dev is scored leaves ``pending_eval`` set, and a resumed run scores it again.
        """
        dev = self._dev_metrics()
        with deferred():
            return self._commit_evaluation(epoch_pos, dev)

    def _commit_evaluation(self, epoch_pos: float, dev: dict) -> bool:
        st, s = self.state, self.settings
        loss_sum, loss_n = distributed.all_reduce_sum([st.running_loss, st.running_n])
        elapsed = time.perf_counter() - self.start
        row = {
            "epoch": round(epoch_pos, 3),
            "step": st.step,
            "train_loss": round(loss_sum / max(loss_n, 1e-12), 5),
            "dev_accuracy": round(dev["accuracy"], 5),
            "dev_macro_f1": round(dev["macro_f1"], 5),
            "lr": self.scheduler.get_last_lr()[0],
            "samples_per_s": round(st.seen / elapsed, 1) if elapsed else 0.0,
            "elapsed_s": round(elapsed, 1),
        }
        st.history.append(row)
        if self.hooks.log_path is not None and self.main:
            _write_log(self.hooks.log_path, st.history)
        st.running_loss, st.running_n = 0.0, 0
        value = dev[s.metric]
        improved = value > st.best_value
        log.info("epoch %.2f step %d: train_loss %.4f dev accuracy %.4f macro_f1 %.4f%s", epoch_pos, st.step,
                 row["train_loss"], dev["accuracy"], dev["macro_f1"], " (best so far)" if improved else "")
        st.pending_eval = None
        if improved:
            st.best_value, st.best_dev, st.best_step, st.best_epoch, st.bad_evals = value, dev, st.step, epoch_pos, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best_dev_probs = self.dev_probs
            if self.hooks.on_best is not None and self.main:
                self.hooks.on_best(self.model, dev)
            return False
        st.bad_evals += 1
        stop = s.patience > 0 and st.bad_evals >= s.patience
        if stop:
            st.stopped_early, st.done = True, True
        return stop

    def _save_checkpoint(self) -> None:
        st = self.state
        if self.hooks.checkpoint_dir is None:
            return
        if self.world > 1:  # rank 0 keeps the sums over all ranks, so the checkpoint has them all
            sums = distributed.all_reduce_sum([st.running_loss, st.running_n, st.tokens])
            st.running_loss, st.running_n, st.tokens = (sums[0], sums[1], int(sums[2])) if self.main else (0.0, 0, 0)
        if not self.main:
            return
        st.elapsed = time.perf_counter() - self.start
        best_is_current = self.best_state is not None and st.best_step == st.step
        save_checkpoint(
            self.hooks.checkpoint_dir, self.model, self.optimizer, self.scheduler,
            {**asdict(st), "best_is_current": best_is_current},
            None if best_is_current else self.best_state, self.hooks.checkpoint_extra,
        )

    def _finish(self) -> TrainResult:
        st = self.state
        seconds = time.perf_counter() - self.start
        (tokens,) = distributed.all_reduce_sum([st.tokens])
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        if st.stopped_early:
            log.info("early stopping: no dev %s improvement in %d evaluations", self.settings.metric,
                     self.settings.patience)
        if st.stopped_by_time:
            log.warning("--time-limit %g min reached at epoch %d, step %d: kept the best dev model so far (epoch "
                        "%.2f)", self.settings.time_limit, st.epoch + 1, st.step, st.best_epoch)
        return TrainResult(
            best_dev=st.best_dev, best_step=st.best_step, best_epoch=st.best_epoch, steps=st.step, seconds=seconds,
            samples_per_s=st.seen / seconds if seconds else 0.0, tokens_per_s=tokens / seconds if seconds else 0.0,
            stopped_early=st.stopped_early, history=st.history, best_dev_probs=self.best_dev_probs,
            stopped_by_time=st.stopped_by_time,
        )


def _wrap(model: torch.nn.Module, device: torch.device, world: int, compile_model: bool) -> Any:
    """The module the training steps call: DDP across ranks, then ``torch.compile`` if asked."""
    net: Any = model
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
