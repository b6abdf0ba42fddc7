"""A training run end to end: files -> records -> token ids -> model -> saved folder + metrics.

Every input is read and checked before anything is written to the output folder, so a run
that stops on bad input leaves no folder that looks like a model. ``resume_training``
continues a killed run from ``OUT/checkpoint/`` with the settings in ``training_args.json``.
Reports (the test evaluation, printed summaries) are the caller's: :class:`TrainOutcome`
carries what they need.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertConfig

from ..errors import UserError
from ..fileio import write_json
from ..interrupts import Interrupted
from ..io.labels import LabelSetData, indicator_matrix, label_vocabulary, load_label_set_splits
from ..io.records import LabeledData, label_ids, label_list, load_splits
from ..metrics import compute_metrics
from ..modeling.bert import BertClassifier
from ..modeling.folder import save_model_dir
from ..multilabel import MULTI_LABEL_HEADLINE, MULTI_TASKS
from ..runtime import distributed
from ..runtime.device import configure_threads, resolve_device
from ..runtime.engine import softmax
from ..text.long_text import LongTextOptions
from ..text.tokenizer import CharTokenizer
from .checkpoint import checkpoint_path, find_checkpoint
from .components import build_model, build_tokenizer, encode, encode_train, pooled_logits
from .multilabel import MultiLabelTrainer, folder_settings, score_test
from .outdir import check_out_dir, clear_out_dir, data_fingerprint, read_run_info, remove_stale_temps
from .settings import TrainJob, check_job, job_from_args, training_args
from .trainer import TrainData, Trainer, TrainHooks, TrainResult, set_seed

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What a finished run reports: ``metrics`` (as written to metrics.json), and the full best-dev
    and test metrics (per class, confusion matrix) for the reports of rank 0 (``is_main``)."""

    metrics: dict
    labels: list[str]
    out: Path
    best_dev: dict
    test: dict | None = None
    test_source: str | None = None
    test_data: LabeledData | None = None  # the test rows (texts, labels, file lines) ...
    test_y: list[int] | None = None  # ... their label ids (single-label runs; label sets have their own report)
    test_proba: np.ndarray | None = None  # ... and the best model's class probabilities for them
    is_main: bool = True


@dataclass
class _Splits:
    """Single-label: label-id lists; multi-label / hierarchical: (rows, labels) 0/1 matrices."""

    train: LabeledData | LabelSetData
    dev: LabeledData | LabelSetData
    test: LabeledData | LabelSetData | None
    labels: list[str]
    train_y: Any
    dev_y: Any
    test_y: Any


def resume_training(out: str | Path, threads: int | None = None) -> TrainOutcome:
    """Continue the killed run in ``out`` from its last checkpoint, with its recorded settings."""
    out = Path(out)
    args_file = out / "training_args.json"
    if not args_file.is_file():
        raise UserError(f"{out}: no training_args.json here, so nothing to resume; check the folder given to --resume")
    try:
        args = json.loads(args_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{args_file}: cannot read ({exc}); start the run again without --resume") from None
    if find_checkpoint(out) is None:
        done = (out / "metrics.json").is_file()
        raise UserError(
            f"{out}: no checkpoint to resume from ("
            + ("the run finished: metrics.json is there" if done else "the run stopped before its first save")
            + "); start it again without --resume"
        )
    job = job_from_args(args, str(out))
    if threads:
        job.threads = threads
    return run_training(job, resume=True)


def run_training(job: TrainJob, resume: bool = False) -> TrainOutcome:
    """Train, keep the best model in ``job.out``, score test; return the outcome.

    Under ``torchrun`` every process runs this: they train together (data parallel, see
    :mod:`cls_app.runtime.distributed`) and only rank 0 writes files.
    """
    info = distributed.env_info()
    device = resolve_device(job.train.device, info.local_rank)
    distributed.init(device, info)
    try:
        return _run_training(job, resume, info, device)
    finally:
        distributed.shutdown()


def _read_splits(job: TrainJob) -> _Splits:
    if job.data.task in MULTI_TASKS:
        return _read_label_set_splits(job)
    train, dev, test = load_splits(job.data, job.train.seed)
    labels = label_list(train)
    label2id = {name: i for i, name in enumerate(labels)}
    log.info(
        "data: %d train, %d dev, %s test rows; %d classes: %s",
        len(train), len(dev), len(test) if test is not None else "no", len(labels), ", ".join(labels),
    )
    if len(train) < job.train.batch_size:
        log.warning(
            "only %d training rows, fewer than one batch (--batch-size %d): each epoch is a single step",
            len(train), job.train.batch_size,
        )
    return _Splits(train, dev, test, labels, label_ids(train, label2id), label_ids(dev, label2id),
                   label_ids(test, label2id) if test is not None else None)


def _read_label_set_splits(job: TrainJob) -> _Splits:
    train, dev, test = load_label_set_splits(job.data, job.train.seed)
    labels = label_vocabulary(train)
    log.info("data (%s): %d train, %d dev, %s test rows; %d labels: %s", job.data.task, len(train), len(dev),
             len(test) if test is not None else "no", len(labels), ", ".join(labels))
    return _Splits(train, dev, test, labels, indicator_matrix(train, labels), indicator_matrix(dev, labels),
                   indicator_matrix(test, labels) if test is not None else None)


def _resumed_components(job: TrainJob, out: Path, fingerprint: str, main: bool) -> tuple[CharTokenizer, BertClassifier]:
    """Tokenizer and model config of the checkpoint being resumed (its weights load in the trainer)."""
    ckpt_dir = checkpoint_path(out)
    found = find_checkpoint(out)
    assert found is not None  # checked by resume_training
    if found != ckpt_dir and main:  # killed while swapping in a new checkpoint: the previous one is complete
        os.replace(found, ckpt_dir)
    if main:
        remove_stale_temps(out)
    distributed.barrier()
    if read_run_info(ckpt_dir).get("fingerprint") != fingerprint:
        raise UserError(
            f"{out}: the training data differ from the run being resumed ({job.data.train}); "
            "resume needs the same files, or start again without --resume"
        )
    return CharTokenizer.from_file(ckpt_dir / "vocab.txt"), BertClassifier(BertConfig.from_pretrained(ckpt_dir))


def _run_training(job: TrainJob, resume: bool, info: distributed.DistInfo, device: torch.device) -> TrainOutcome:
    threads = configure_threads(job.threads, info.local_world_size)
    lt = check_job(job)
    out = Path(job.out)
    if not resume:
        check_out_dir(out, job.overwrite)
    set_seed(job.train.seed)
    t0 = time.perf_counter()
    splits = _read_splits(job)
    fingerprint = data_fingerprint(splits.train, splits.dev, splits.labels)
    if resume:
        tokenizer, model = _resumed_components(job, out, fingerprint, info.is_main)
    else:
        tokenizer = build_tokenizer(job.model, splits.train)
        model = build_model(job.model, tokenizer, splits.train, splits.labels)
        if job.data.text_pair_col:  # segment ids 0/1 from the [SEP] in each row (modeling.bert.segment_ids)
            model.config.text_pairs, model.config.sep_token_id = True, tokenizer.sep_id
    log.info(
        "model: %s, %d layers, hidden %d, %.1fM parameters; %s, %d CPU thread(s)%s",
        job.model.pretrained or "BERT from scratch", model.config.num_hidden_layers, model.config.hidden_size,
        sum(p.numel() for p in model.parameters()) / 1e6, device, threads,
        f", process {info.rank + 1} of {info.world_size}" if info.enabled else "",
    )
    result = _fit(job, splits, tokenizer, model, lt, fingerprint, resume)
    return _finish(job, splits, result, model, tokenizer, lt, device, info, t0, resume)


def _fit(job: TrainJob, splits: _Splits, tokenizer: CharTokenizer, model: BertClassifier, lt: LongTextOptions,
         fingerprint: str, resume: bool) -> TrainResult:
    """Encode the inputs, prepare the output folder, and train."""
    out, max_len, main = Path(job.out), job.model.max_len, distributed.env_info().is_main
    t_tok = time.perf_counter()
    train_seqs, train_rows_y = encode_train(tokenizer, splits.train, splits.train_y, max_len, lt, job.cache_dir)
    dev_enc = encode(tokenizer, splits.dev.texts, max_len, lt, job.cache_dir)
    log.info("tokenized %d texts in %.2fs", len(splits.train) + len(splits.dev), time.perf_counter() - t_tok)
    # Every input is valid: only now touch the output folder.
    if not resume and main:
        clear_out_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "training_args.json", training_args(job, splits.labels, lt))
    settings = {"max_len": max_len, **lt.to_settings()}
    if job.data.text_pair_col:
        settings["text_pair_col"] = job.data.text_pair_col

    def checkpoint_extra(folder: Path) -> None:
        tokenizer.save(folder)
        write_json(folder / "run.json", {"fingerprint": fingerprint})

    d = job.data

    def on_best(m: torch.nn.Module, dev: dict) -> None:
        extra = folder_settings(d.task, dev, d.label_sep, d.path_sep) if d.task in MULTI_TASKS else {}
        save_model_dir(m, tokenizer, out, {**settings, **extra})

    hooks = TrainHooks(on_best=on_best,
                       log_path=out / "train_log.csv", checkpoint_dir=checkpoint_path(out),
                       checkpoint_extra=checkpoint_extra)
    data = TrainData(train_seqs, train_rows_y, dev_enc.seqs, splits.dev_y, splits.labels, tokenizer.pad_id,
                     dev_enc.owners, lt.chunk_pool)
    if d.task in MULTI_TASKS:
        trainer: Trainer = MultiLabelTrainer(model, data, job.train, hooks, task=d.task, path_sep=d.path_sep)
    else:
        trainer = Trainer(model, data, job.train, hooks)
    try:
        return trainer.run(resume)
    except KeyboardInterrupt as exc:
        if find_checkpoint(out) is not None:
            hint = f"continue this run with `python run.py train --resume {out}`"
        else:
            hint = f"no checkpoint was saved; {out} holds no finished model"
        if isinstance(exc, Interrupted):
            exc.hint = hint
        else:
            log.warning("interrupted: %s", hint)
        raise


def _finish(job: TrainJob, splits: _Splits, result: TrainResult, model: BertClassifier, tokenizer: CharTokenizer,
            lt: LongTextOptions, device: torch.device, info: distributed.DistInfo, t0: float,
            resume: bool) -> TrainOutcome:
    """Score test with the best model, write metrics.json, drop the checkpoint."""
    out, test = Path(job.out), splits.test
    metrics: dict = {
        "labels": splits.labels, "train_rows": len(splits.train), "dev_rows": len(splits.dev),
        "skipped_rows": {"train": splits.train.skipped, "dev": splits.dev.skipped,
                         "test": test.skipped if test is not None else 0},
        "best_epoch": result.best_epoch, "best_step": result.best_step, "steps": result.steps,
        "stopped_early": result.stopped_early, "resumed": resume,
        "train_seconds": round(result.seconds, 2), "train_samples_per_s": round(result.samples_per_s, 1),
        "train_tokens_per_s": round(result.tokens_per_s, 1), "device": str(device), "processes": info.world_size,
        "dev": headline(result.best_dev),
    }
    outcome = TrainOutcome(metrics, splits.labels, out, result.best_dev, is_main=info.is_main)
    if test is not None:
        test_enc = encode(tokenizer, test.texts, job.model.max_len, lt, job.cache_dir)
        logits = pooled_logits(model, test_enc, tokenizer.pad_id, job.train.eval_batch_size, lt, device)
        if job.data.task in MULTI_TASKS:
            outcome.test = score_test(job.data.task, splits.test_y, logits, splits.labels, result.best_dev,
                                      job.data.path_sep)
        else:
            outcome.test = compute_metrics(splits.test_y, np.asarray(logits).argmax(axis=1), splits.labels)
            outcome.test_data, outcome.test_y = test, splits.test_y
            outcome.test_proba = softmax(np.asarray(logits, dtype=np.float64))
        outcome.test_source = test.source
        metrics["test"] = headline(outcome.test)
        warn_collapsed(outcome.test, "test")
    if result.best_dev:
        warn_collapsed(result.best_dev, "dev")
    metrics["total_seconds"] = round(time.perf_counter() - t0, 2)
    if not info.is_main:
        return outcome
    write_json(out / "metrics.json", metrics)
    if not job.keep_checkpoint:
        for name in ("checkpoint", ".checkpoint.old"):
            shutil.rmtree(out / name, ignore_errors=True)
    log.info("saved the best model (dev %s %.4f at epoch %.2f) to %s",
             job.train.metric, result.best_dev.get(job.train.metric, 0.0), result.best_epoch, out)
    return outcome


def warn_collapsed(m: dict, split: str) -> None:
    """Say loudly when a class is never predicted right (a minority class collapsing)."""
    dead = [name for name, row in m["per_class"].items() if row["support"] and row["recall"] == 0.0]
    if dead:
        log.warning(
            "%s: recall 0 for class(es) %s: the model never predicts them right; try --class-weight "
            "balanced or --oversample", split, ", ".join(dead),
        )


def headline(m: dict) -> dict:
    """The figures of a metrics dict that metrics.json keeps (per class: recall only)."""
    head = {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1", *MULTI_LABEL_HEADLINE) if k in m}
    if "per_class" in m:
        head["per_class_recall"] = {name: round(float(row["recall"]), 5) for name, row in m["per_class"].items()}
    return head
