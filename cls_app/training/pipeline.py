"""Fine-tune a BERT on records held in memory: records -> token ids -> trained model.

:func:`train_bert` takes the training and dev records (read once by the caller) and returns a
:class:`TrainedBert`: the model with the weights of its best dev evaluation, its tokenizer,
labels, task (with any decision settings tuned on dev) and the run's figures. With a
:class:`RunFolder` it also writes as it goes, so a killed run can be continued: the best model
(``config.json``, ``vocab.txt``, ``model.safetensors``), ``training_args.json``,
``train_log.csv`` and the resumable ``checkpoint/``. Nothing is written before every input has
been checked, so a run that stops on bad input leaves no folder that looks like a model.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig

from ..errors import UserError
from ..fileio import write_json
from ..interrupts import Interrupted
from ..modeling.bert import BertClassifier
from ..modeling.folder import save_model_dir
from ..runtime import distributed
from ..runtime.device import configure_threads, resolve_device
from ..tasks import Task, headline
from ..text.long_text import LongTextOptions
from ..text.tokenizer import CharTokenizer
from .checkpoint import checkpoint_path, find_checkpoint
from .components import build_model, build_tokenizer, encode, encode_train
from .outdir import check_out_dir, clear_out_dir, data_fingerprint, read_run_info, remove_stale_temps
from .settings import BertSettings, check_bert_settings
from .trainer import TrainData, Trainer, TrainHooks, TrainResult, set_seed

log = logging.getLogger(__name__)


@dataclass
class RunFolder:
    """Where a training run writes as it goes; ``args`` is what ``training_args.json`` records."""

    out: Path
    args: dict = field(default_factory=dict)
    overwrite: bool = False
    keep_checkpoint: bool = False
    resume: bool = False
    prepared: bool = False

    def prepare(self, labels: list[str]) -> None:
        """Make ``out`` this run's, once every input has been checked: refuse an unfinished run (unless
        ``overwrite``), clear an earlier run's files, write ``training_args.json``. Once; nothing on resume."""
        if self.prepared or self.resume:
            return
        check_out_dir(self.out, self.overwrite)
        clear_out_dir(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "training_args.json", {**self.args, "labels": labels})
        self.prepared = True


@dataclass
class TrainedBert:
    """A finished run: the best model (eval mode), what it needs to predict, and the run's figures."""

    model: BertClassifier
    tokenizer: CharTokenizer
    labels: list[str]
    task: Task
    settings: dict  # what config.json records under cls_app (max_len, long text, task fields, pairs)
    result: TrainResult
    summary: dict  # metrics.json without the test figures (rows, steps, speed, dev)
    is_main: bool = True
    device: str = "cpu"


def estimate_seconds(train: Any, dev: Any, task: Task, settings: BertSettings, sample: int = 512
                     ) -> tuple[float, float]:
    """Seconds fine-tuning on ``train`` / ``dev`` is expected to take on this machine: the model these settings
    build (tokenizer and bigrams from the training texts) timed on a few real optimizer steps and a dev pass
    over up to ``sample`` texts, scaled to the epochs' steps and evaluations, plus what follows the training (the
    out-of-domain detector scores the training and dev rows once). Returns (all of it, that last part)."""
    import random

    s = settings
    t0 = time.perf_counter()
    check_bert_settings(s, task)
    configure_threads(s.threads)
    lt = s.long_text.resolved(s.model.max_len)
    labels = task.vocabulary(train)
    tokenizer = build_tokenizer(s.model, train)
    model = build_model(s.model, tokenizer, train, labels)
    rng = random.Random(s.train.seed)
    rows = rng.sample(range(len(train)), min(len(train), 4 * s.train.batch_size))
    part = train.subset(rows)
    held = dev.subset(rng.sample(range(len(dev)), min(len(dev), sample)))
    seqs, y = encode_train(tokenizer, part, list(task.encode(part, labels)), s.model.max_len, lt)
    dev_enc = encode(tokenizer, held.texts, s.model.max_len, lt, None)
    data = TrainData(seqs, y, dev_enc.seqs, task.encode(held, labels), labels, tokenizer.pad_id, dev_enc.owners,
                     lt.chunk_pool, task)
    trainer = Trainer(model, data, replace(s.train, epochs=1, progress=False, time_limit=None))
    per_step, per_dev_text = trainer.time_steps()
    setup = time.perf_counter() - t0
    steps = -(-len(train) // s.train.batch_size) * s.train.epochs
    evals = s.train.epochs * (max(1, len(train) // max(1, s.train.eval_every * s.train.batch_size))
                              if s.train.eval_every else 1)
    after = (len(train) + len(dev)) * per_dev_text
    return setup + steps * per_step + evals * len(dev) * per_dev_text + after, after


def train_bert(train: Any, dev: Any, task: Task, settings: BertSettings, run: RunFolder | None = None,
               text_pair_col: str | None = None) -> TrainedBert:
    """Fine-tune on ``train``, pick the best dev evaluation; see the module docstring.

    Under ``torchrun`` every process runs this: they train together (data parallel, see
    :mod:`cls_app.runtime.distributed`) and only rank 0 writes files.
    """
    info = distributed.env_info()
    device = resolve_device(settings.train.device, info.local_rank)
    distributed.init(device, info)
    try:
        return _train(_Run(train, dev, task, settings, run, text_pair_col, info, device))
    finally:
        distributed.shutdown()


@dataclass
class _Run:
    train: Any
    dev: Any
    task: Task
    settings: BertSettings
    folder: RunFolder | None
    text_pair_col: str | None
    info: distributed.DistInfo
    device: torch.device
    labels: list[str] = field(default_factory=list)
    lt: LongTextOptions = field(default_factory=LongTextOptions)


def _train(r: _Run) -> TrainedBert:
    s, folder = r.settings, r.folder
    threads = configure_threads(s.threads, r.info.local_world_size)
    r.lt = check_bert_settings(s, r.task)
    if folder is not None and not folder.resume and not folder.prepared:
        check_out_dir(folder.out, folder.overwrite)
    set_seed(s.train.seed)
    t0 = time.perf_counter()
    r.labels = r.task.vocabulary(r.train)
    train_y, dev_y = r.task.encode(r.train, r.labels), r.task.encode(r.dev, r.labels)
    log.info("data (%s): %d train, %d dev rows; %d labels: %s", r.task.name, len(r.train), len(r.dev),
             len(r.labels), ", ".join(r.labels))
    if len(r.train) < s.train.batch_size:
        log.warning("only %d training rows, fewer than one batch (--batch-size %d): each epoch is a single step",
                    len(r.train), s.train.batch_size)
    fingerprint = data_fingerprint(r.train, r.dev, r.labels)
    if folder is not None and folder.resume:
        tokenizer, model = _resumed_components(folder.out, fingerprint, r.info.is_main)
    else:
        tokenizer = build_tokenizer(s.model, r.train)
        model = build_model(s.model, tokenizer, r.train, r.labels)
        if r.text_pair_col:  # segment ids 0/1 from the [SEP] in each row (modeling.bert.segment_ids)
            model.config.text_pairs, model.config.sep_token_id = True, tokenizer.sep_id
    log.info(
        "model: %s, %d layers, hidden %d, %.1fM parameters; %s, %d CPU thread(s)%s",
        s.model.pretrained or "BERT from scratch", model.config.num_hidden_layers, model.config.hidden_size,
        sum(p.numel() for p in model.parameters()) / 1e6, r.device, threads,
        f", process {r.info.rank + 1} of {r.info.world_size}" if r.info.enabled else "",
    )
    result = _fit(r, tokenizer, model, train_y, dev_y, fingerprint)
    folder_settings = _folder_settings(r)
    fitted = r.task.fitted(result.best_dev)
    summary: dict = {
        "labels": r.labels, "train_rows": len(r.train), "dev_rows": len(r.dev),
        "skipped_rows": {"train": r.train.skipped, "dev": r.dev.skipped},
        "best_epoch": result.best_epoch, "best_step": result.best_step, "steps": result.steps,
        "stopped_early": result.stopped_early, "stopped_by_time": result.stopped_by_time,
        "resumed": bool(folder and folder.resume),
        "train_seconds": round(result.seconds, 2), "train_samples_per_s": round(result.samples_per_s, 1),
        "train_tokens_per_s": round(result.tokens_per_s, 1), "device": str(r.device),
        "processes": r.info.world_size, "dev": headline(result.best_dev),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    if result.best_dev:
        warn_collapsed(result.best_dev, "dev")
    if folder is not None and r.info.is_main and not folder.keep_checkpoint:
        for name in ("checkpoint", ".checkpoint.old"):
            shutil.rmtree(folder.out / name, ignore_errors=True)
    log.info("best dev %s %.4f at epoch %.2f", s.train.metric, result.best_dev.get(s.train.metric, 0.0),
             result.best_epoch)
    return TrainedBert(model, tokenizer, r.labels, fitted, {**folder_settings, **fitted.folder_fields()}, result,
                       summary, r.info.is_main, str(r.device))


def _folder_settings(r: _Run) -> dict:
    out: dict = {"max_len": r.settings.model.max_len, **r.lt.to_settings()}
    if r.text_pair_col:
        out["text_pair_col"] = r.text_pair_col
    return out


def _resumed_components(out: Path, fingerprint: str, main: bool) -> tuple[CharTokenizer, BertClassifier]:
    """Tokenizer and model config of the checkpoint being resumed (its weights load in the trainer)."""
    ckpt_dir = checkpoint_path(out)
    found = find_checkpoint(out)
    if found is None:
        raise UserError(f"{out}: no checkpoint to resume from; start the run again without --resume")
    if found != ckpt_dir and main:  # killed while swapping in a new checkpoint: the previous one is complete
        os.replace(found, ckpt_dir)
    if main:
        remove_stale_temps(out)
    distributed.barrier()
    if read_run_info(ckpt_dir).get("fingerprint") != fingerprint:
        raise UserError(f"{out}: the training data differ from the run being resumed; resume needs the same files, "
                        "or start again without --resume")
    return CharTokenizer.from_file(ckpt_dir / "vocab.txt"), BertClassifier(BertConfig.from_pretrained(ckpt_dir))


def _fit(r: _Run, tokenizer: CharTokenizer, model: BertClassifier, train_y: Any, dev_y: Any,
         fingerprint: str) -> TrainResult:
    """Encode the inputs, prepare the output folder, and train."""
    s, folder, main = r.settings, r.folder, r.info.is_main
    max_len = s.model.max_len
    t_tok = time.perf_counter()
    train_seqs, train_rows_y = encode_train(tokenizer, r.train, train_y, max_len, r.lt, s.cache_dir)
    dev_enc = encode(tokenizer, r.dev.texts, max_len, r.lt, s.cache_dir)
    log.info("tokenized %d texts in %.2fs", len(r.train) + len(r.dev), time.perf_counter() - t_tok)
    hooks = TrainHooks()
    if folder is not None:
        out = folder.out
        # Every input is valid: only now touch the output folder.
        if main:
            folder.prepare(r.labels)
        settings = _folder_settings(r)

        def checkpoint_extra(path: Path) -> None:
            tokenizer.save(path)
            write_json(path / "run.json", {"fingerprint": fingerprint})

        def on_best(m: torch.nn.Module, dev: dict) -> None:
            save_model_dir(m, tokenizer, out, {**settings, **r.task.fitted(dev).folder_fields()})  # type: ignore[arg-type]

        hooks = TrainHooks(on_best=on_best, log_path=out / "train_log.csv", checkpoint_dir=checkpoint_path(out),
                           checkpoint_extra=checkpoint_extra)
    data = TrainData(train_seqs, train_rows_y, dev_enc.seqs, dev_y, r.labels, tokenizer.pad_id, dev_enc.owners,
                     r.lt.chunk_pool, r.task)
    trainer = Trainer(model, data, s.train, hooks)
    try:
        return trainer.run(folder is not None and folder.resume)
    except KeyboardInterrupt as exc:
        if folder is None:
            raise
        if find_checkpoint(folder.out) is not None:
            hint = f"continue this run with `python run.py train --resume {folder.out}`"
        else:
            hint = f"no checkpoint was saved; {folder.out} holds no finished model"
        if isinstance(exc, Interrupted):
            exc.hint = hint
        else:
            log.warning("interrupted: %s", hint)
        raise


def warn_collapsed(m: dict, split: str) -> None:
    """Say loudly when a class is never predicted right (a minority class collapsing)."""
    dead = [name for name, row in m.get("per_class", {}).items() if row["support"] and row["recall"] == 0.0]
    if dead:
        log.warning(
            "%s: recall 0 for class(es) %s: the model never predicts them right; try --class-weight "
            "balanced or --oversample", split, ", ".join(dead),
        )
