"""``run.py train``: files -> records -> token ids -> model -> saved folder + metrics.

Every input is read and checked before anything is written to the output folder, so a run
that stops on bad input leaves no folder that looks like a model. ``resume_training``
continues a killed run from ``OUT/checkpoint/`` with the settings in ``training_args.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig

from . import __version__, distributed
from .checkpoint import checkpoint_path, find_checkpoint, read_state
from .data import LabeledData, label_ids, load_labeled, stratified_split
from .device import configure_threads, resolve_device
from .errors import UserError
from .evaluate import write_evaluation
from .fileio import write_json
from .long_text import EncodedTexts, LongTextOptions, encode_texts, pool_logits
from .metrics import compute_metrics, format_report
from .model import BertClassifier, freeze_layers, from_pretrained_encoder, scratch_config
from .model_dir import MODEL_FILES, save_model_dir
from .token_cache import DEFAULT_CACHE_DIR, get_or_build
from .tokenizer import CharTokenizer
from .trainer import METRICS, TrainSettings, fit, set_seed, settings_dict

log = logging.getLogger(__name__)


@dataclass
class DataOptions:
    """Where the labeled data comes from and how to read it."""

    train: str
    dev: str | None = None
    test: str | None = None
    text_col: str | None = None
    label_col: str | None = None
    encoding: str | None = None
    fmt: str | None = None
    dev_fraction: float = 0.1
    on_bad_row: str = "error"


@dataclass
class ModelOptions:
    """Which model to build: a scratch config or a pretrained BERT."""

    pretrained: str | None = None
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int | None = None
    dropout: float = 0.1
    min_freq: int = 2
    max_vocab: int | None = 21128
    max_len: int = 128
    freeze_layers: int = 0  # freeze the embeddings and the first K encoder layers


@dataclass
class TrainJob:
    """One complete training run."""

    data: DataOptions
    model: ModelOptions = field(default_factory=ModelOptions)
    train: TrainSettings = field(default_factory=TrainSettings)
    out: str = "saved_models/default"
    threads: int | None = None  # torch CPU threads; default: the cores split among local processes
    cache_dir: str | None = str(DEFAULT_CACHE_DIR)  # token-id cache; None: tokenize every run
    long_text: LongTextOptions = field(default_factory=LongTextOptions)
    overwrite: bool = False  # replace an unfinished run (a checkpoint) in ``out``
    keep_checkpoint: bool = False  # keep ``out/checkpoint/`` after a successful run


def _read(path: str, opts: DataOptions) -> LabeledData:
    return load_labeled(
        path, text_col=opts.text_col, label_col=opts.label_col, encoding=opts.encoding,
        fmt=opts.fmt, on_bad_row=opts.on_bad_row,
    )


def load_splits(opts: DataOptions, seed: int) -> tuple[LabeledData, LabeledData, LabeledData | None]:
    """Read train/dev/test; without ``dev``, hold out a stratified part of train.

    The number of bad rows dropped from the training file stays in ``train.skipped``.
    """
    train = _read(opts.train, opts)
    if opts.dev:
        dev = _read(opts.dev, opts)
    else:
        skipped = train.skipped
        train, dev = stratified_split(train, opts.dev_fraction, seed)
        train.skipped = skipped
        log.info("no --dev given: held out %d of the training rows (stratified) as dev", len(dev))
    test = _read(opts.test, opts) if opts.test else None
    return train, dev, test


def label_list(train: LabeledData) -> list[str]:
    """Label names in id order: numeric order when all look like integers, else sorted."""
    names = set(train.labels)
    if len(names) < 2:
        raise UserError(
            f"{train.source}: training data has a single class ({', '.join(names) or 'none'}); "
            "a classifier needs at least two: add rows of another class"
        )
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def build_tokenizer(opts: ModelOptions, train: LabeledData) -> CharTokenizer:
    """The pretrained model's vocab, or a character vocab built from the training texts."""
    if opts.pretrained:
        return CharTokenizer.from_file(resolve_vocab(opts.pretrained))
    tok = CharTokenizer.build(train.texts, min_freq=opts.min_freq, max_vocab=opts.max_vocab)
    log.info("built a character vocabulary of %d tokens from %d training texts", len(tok), len(train))
    return tok


def resolve_vocab(source: str) -> Path:
    """``vocab.txt`` of a pretrained BERT: from its folder, or downloaded for a hub name."""
    path = Path(source)
    if path.is_dir():
        if not (path / "vocab.txt").is_file():
            raise UserError(f"pretrained folder {path} has no vocab.txt")
        return path / "vocab.txt"
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, "vocab.txt"))
    except Exception as exc:
        raise UserError(
            f"'{source}' is not a local folder and its vocab.txt could not be fetched from the "
            f"hub ({type(exc).__name__}); download the model with internet access first"
        ) from None


def build_model(opts: ModelOptions, tokenizer: CharTokenizer, labels: list[str]) -> BertClassifier:
    """A scratch BERT of the requested size, or a pretrained encoder with a fresh head."""
    if opts.pretrained:
        model = from_pretrained_encoder(opts.pretrained, labels)
        if model.config.vocab_size < len(tokenizer):
            raise UserError(
                f"{opts.pretrained}: vocab.txt has {len(tokenizer)} tokens, the model only "
                f"{model.config.vocab_size} embeddings"
            )
    else:
        config = scratch_config(
            len(tokenizer), labels, layers=opts.layers, hidden=opts.hidden, heads=opts.heads,
            intermediate=opts.intermediate, max_position=512,
            dropout=opts.dropout,
        )
        model = BertClassifier(config)
    limit = model.config.max_position_embeddings
    if opts.max_len > limit:
        raise UserError(f"--max-len {opts.max_len} is above the model's position limit of {limit}")
    if opts.freeze_layers:
        frozen = freeze_layers(model, opts.freeze_layers)
        log.info("froze the embeddings and the first %d encoder layers (%.1fM parameters)",
                 opts.freeze_layers, frozen / 1e6)
    return model


def check_job(job: TrainJob) -> LongTextOptions:
    """Reject impossible settings before any data is read; return the resolved long-text options."""
    t = job.train
    for name, value, low in (("--epochs", t.epochs, 1), ("--batch-size", t.batch_size, 1),
                             ("--eval-every", t.eval_every, 0), ("--patience", t.patience, 0),
                             ("--save-every", t.save_every, 0)):
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if not t.lr > 0:
        raise UserError(f"--lr must be positive, got {t.lr}")
    if t.metric not in METRICS:
        raise UserError(f"unknown --metric {t.metric!r}; choose one of {', '.join(METRICS)}")
    if t.class_weight not in ("none", "balanced"):
        raise UserError(f"unknown --class-weight {t.class_weight!r}; choose none or balanced")
    if t.class_weight == "balanced" and t.oversample:
        log.warning("--class-weight balanced and --oversample both correct for imbalance; together they "
                    "over-correct (the former majority class can collapse): usually pick one")
    if job.model.max_len > 512 and not job.model.pretrained:
        raise UserError(f"--max-len {job.model.max_len} is above the model's position limit of 512")
    return job.long_text.resolved(job.model.max_len)


def _fingerprint(*parts: LabeledData | list[str]) -> str:
    """A hash of the training data, to refuse resuming on changed files."""
    h = hashlib.sha256()
    for part in parts:
        items = part if isinstance(part, list) else [*part.texts, "\x01", *part.labels]
        for item in items:
            h.update(item.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        h.update(b"\x02")
    return h.hexdigest()


def _check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to clobber an unfinished run unless asked; say how to resume it."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose a folder for the model")
    ckpt = find_checkpoint(out)
    if ckpt is None or overwrite:
        return
    state = read_state(ckpt)
    if state.get("done") and (out / "metrics.json").is_file():
        return  # a finished run whose checkpoint was kept (--keep-checkpoint)
    raise UserError(
        f"{out} holds an unfinished run (checkpoint at epoch {state.get('epoch')}, step {state.get('step')}); "
        f"continue it with `train --resume {out}`, or pass --overwrite to start over, or choose another --out"
    )


_RUN_FILES = (*MODEL_FILES, "training_args.json", "metrics.json", "train_log.csv")
_RUN_DIRS = ("test_eval", "checkpoint", ".checkpoint.old")


def _remove_stale_temps(out: Path) -> None:
    """Temporary files and folders a killed run left behind (never visible under a final name)."""
    if not out.is_dir():
        return
    for path in out.iterdir():
        if path.name.startswith(".") and (path.name.endswith(".tmp") or path.name.startswith(".save.")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _clear_out_dir(out: Path) -> None:
    """Remove what an earlier run wrote to ``out`` (config.json first, so the folder stops looking like a model)."""
    _remove_stale_temps(out)
    old = [name for name in (*_RUN_FILES, *_RUN_DIRS) if (out / name).exists()]
    if not old:
        return
    log.warning("%s: replacing the earlier run's files (%s)", out, ", ".join(old))
    for name in ("config.json", *_RUN_FILES):
        (out / name).unlink(missing_ok=True)
    for name in _RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


def _encode(
    tokenizer: CharTokenizer, texts: list[str], max_len: int, lt: LongTextOptions, cache_dir: str | None
) -> EncodedTexts:
    """:func:`encode_texts`, through the token-id cache for truncated texts (chunks are not cached).

    Under torchrun rank 0 fills the cache while the other ranks wait, then they read it.
    """
    if cache_dir is None or lt.long_text != "truncate":
        return encode_texts(tokenizer, texts, max_len, lt)
    info = distributed.env_info()
    if info.enabled and not info.is_main:
        distributed.barrier()
    seqs = get_or_build(
        texts, tokenizer, max_len, cache_dir, settings=lt.to_settings(),
        encode=lambda batch: encode_texts(tokenizer, batch, max_len, lt).seqs,
    )
    if info.enabled and info.is_main:
        distributed.barrier()
    return EncodedTexts(seqs, None, len(texts))  # type: ignore[arg-type]


def _encode_train(
    tokenizer: CharTokenizer, data: LabeledData, y: list[int], max_len: int, lt: LongTextOptions,
    cache_dir: str | None = None,
) -> tuple[list[list[int]], list[int]]:
    """Training rows: one per text, or (chunks) one per window, each with its text's label."""
    enc = _encode(tokenizer, data.texts, max_len, lt, cache_dir)
    if enc.owners is None:
        return enc.seqs, y
    log.info("long texts: %d training texts make %d windows", len(data), len(enc.seqs))
    return enc.seqs, [y[i] for i in enc.owners]


def training_args(job: TrainJob, labels: list[str], lt: LongTextOptions) -> dict:
    """What ``training_args.json`` records (all a resume needs)."""
    data = dict(vars(job.data))
    for split in ("train", "dev", "test"):  # absolute, so that --resume works from any folder
        if data[split]:
            data[split] = str(Path(data[split]).resolve())
    return {
        "app_version": __version__,
        "data": data, "model": vars(job.model), "train": settings_dict(job.train),
        "long_text": lt.to_settings(), "threads": job.threads, "keep_checkpoint": job.keep_checkpoint,
        "labels": labels,
    }


def job_from_args(args: dict, out: str) -> TrainJob:
    """Rebuild a :class:`TrainJob` from ``training_args.json``."""
    try:
        return TrainJob(
            data=DataOptions(**args["data"]), model=ModelOptions(**args["model"]),
            train=TrainSettings(**args["train"]), out=out, threads=args.get("threads"),
            long_text=LongTextOptions(**args.get("long_text", {})),
            keep_checkpoint=bool(args.get("keep_checkpoint", False)),
        )
    except (KeyError, TypeError) as exc:
        raise UserError(f"{out}/training_args.json does not describe a run of this version ({exc})") from None


def resume_training(out: str | Path, threads: int | None = None) -> dict:
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


def run_training(job: TrainJob, resume: bool = False) -> dict:
    """Train, keep the best model in ``job.out``, score test; return the metrics written.

    Under ``torchrun`` every process runs this: they train together (data parallel, see
    :mod:`cls_app.distributed`) and only rank 0 writes files and prints reports.
    """
    info = distributed.env_info()
    device = resolve_device(job.train.device, info.local_rank)
    distributed.init(device, info)
    try:
        return _run_training(job, resume, info, device)
    finally:
        distributed.shutdown()


def _run_training(job: TrainJob, resume: bool, info: distributed.DistInfo, device: torch.device) -> dict:
    threads = configure_threads(job.threads, info.local_world_size)
    main = info.is_main
    lt = check_job(job)
    out = Path(job.out)
    if not resume:
        _check_out_dir(out, job.overwrite)
    set_seed(job.train.seed)
    t0 = time.perf_counter()
    train, dev, test = load_splits(job.data, job.train.seed)
    labels = label_list(train)
    label2id = {name: i for i, name in enumerate(labels)}
    train_y, dev_y = label_ids(train, label2id), label_ids(dev, label2id)
    test_y = label_ids(test, label2id) if test is not None else None
    log.info(
        "data: %d train, %d dev, %s test rows; %d classes: %s",
        len(train), len(dev), len(test) if test is not None else "no", len(labels), ", ".join(labels),
    )
    if len(train) < job.train.batch_size:
        log.warning(
            "only %d training rows, fewer than one batch (--batch-size %d): each epoch is a single step",
            len(train), job.train.batch_size,
        )
    fingerprint = _fingerprint(train, dev, labels)

    ckpt_dir = checkpoint_path(out)
    if resume:
        found = find_checkpoint(out)
        assert found is not None  # checked by resume_training
        if found != ckpt_dir and main:  # killed while swapping in a new checkpoint: the previous one is complete
            os.replace(found, ckpt_dir)
        found = ckpt_dir
        if main:
            _remove_stale_temps(out)
        distributed.barrier()
        run_info = _read_run_info(found)
        if run_info.get("fingerprint") != fingerprint:
            raise UserError(
                f"{out}: the training data differ from the run being resumed ({job.data.train}); "
                "resume needs the same files, or start again without --resume"
            )
        tokenizer = CharTokenizer.from_file(found / "vocab.txt")
        model = BertClassifier(BertConfig.from_pretrained(found))
    else:
        tokenizer = build_tokenizer(job.model, train)
        model = build_model(job.model, tokenizer, labels)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "model: %s, %d layers, hidden %d, %.1fM parameters; %s, %d CPU thread(s)%s",
        job.model.pretrained or "BERT from scratch", model.config.num_hidden_layers,
        model.config.hidden_size, n_params / 1e6, device, threads,
        f", process {info.rank + 1} of {info.world_size}" if info.enabled else "",
    )
    max_len = job.model.max_len
    t_tok = time.perf_counter()
    train_seqs, train_rows_y = _encode_train(tokenizer, train, train_y, max_len, lt, job.cache_dir)
    dev_enc = _encode(tokenizer, dev.texts, max_len, lt, job.cache_dir)
    log.info("tokenized %d texts in %.2fs", len(train) + len(dev), time.perf_counter() - t_tok)

    # Every input is valid: only now touch the output folder.
    if not resume and main:
        _clear_out_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "training_args.json", training_args(job, labels, lt))
    settings = {"max_len": max_len, **lt.to_settings()}

    def save_best(m: torch.nn.Module, dev_metrics: dict) -> None:
        save_model_dir(m, tokenizer, out, settings)

    def checkpoint_extra(folder: Path) -> None:
        tokenizer.save(folder)
        write_json(folder / "run.json", {"fingerprint": fingerprint})

    try:
        result = fit(
            model, train_seqs, train_rows_y, dev_enc.seqs, dev_y, labels, tokenizer.pad_id, job.train,
            on_best=save_best, log_path=out / "train_log.csv", dev_owners=dev_enc.owners, pool=lt.chunk_pool,
            checkpoint_dir=ckpt_dir, checkpoint_extra=checkpoint_extra, resume=resume,
        )
    except KeyboardInterrupt:
        if find_checkpoint(out) is not None:
            log.warning("interrupted: continue this run with `python run.py train --resume %s`", out)
        raise
    metrics: dict = {
        "labels": labels,
        "train_rows": len(train),
        "dev_rows": len(dev),
        "skipped_rows": {"train": train.skipped, "dev": dev.skipped,
                         "test": test.skipped if test is not None else 0},
        "best_epoch": result.best_epoch,
        "best_step": result.best_step,
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "resumed": resume,
        "train_seconds": round(result.seconds, 2),
        "train_samples_per_s": round(result.samples_per_s, 1),
        "train_tokens_per_s": round(result.tokens_per_s, 1),
        "device": str(device),
        "processes": info.world_size,
        "dev": _headline(result.best_dev),
    }
    if test is not None:
        test_enc = _encode(tokenizer, test.texts, max_len, lt, job.cache_dir)
        logits = _pooled(model, test_enc, tokenizer.pad_id, job.train.eval_batch_size, lt, device)
        test_metrics = compute_metrics(test_y, logits.argmax(axis=1), labels)
        metrics["test"] = _headline(test_metrics)
        if main:
            write_evaluation(test_metrics, labels, out / "test_eval", title=f"{out.name} on {Path(test.source).name}")
            print(f"test ({Path(test.source).name}):")
            print(format_report(test_metrics, labels))
            _warn_collapsed(test_metrics, "test")
    elif result.best_dev and main:
        print("dev (best evaluation):")
        print(format_report(result.best_dev, labels))
    if result.best_dev and main:
        _warn_collapsed(result.best_dev, "dev")
    metrics["total_seconds"] = round(time.perf_counter() - t0, 2)
    if not main:
        return metrics
    write_json(out / "metrics.json", metrics)
    if not job.keep_checkpoint:
        for name in ("checkpoint", ".checkpoint.old"):
            shutil.rmtree(out / name, ignore_errors=True)
    log.info("saved the best model (dev %s %.4f at epoch %.2f) to %s",
             job.train.metric, result.best_dev.get(job.train.metric, 0.0), result.best_epoch, out)
    return metrics


def _read_run_info(folder: Path) -> dict:
    try:
        return json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(
            f"{folder}: the checkpoint is incomplete (run.json); start the run again without --resume"
        ) from None


def _pooled(
    model: torch.nn.Module, enc: EncodedTexts, pad_id: int, batch_size: int, lt: LongTextOptions,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per-text logits; under torchrun the rows are scored by all ranks together."""
    logits = distributed.predict_sharded(model, enc.seqs, pad_id, batch_size, device)
    if enc.owners is None:
        return logits
    return pool_logits(logits, enc.owners, enc.n_texts, lt.chunk_pool)


def _warn_collapsed(m: dict, split: str) -> None:
    """Say loudly when a class is never predicted right (a minority class collapsing)."""
    dead = [name for name, row in m["per_class"].items() if row["support"] and row["recall"] == 0.0]
    if dead:
        log.warning(
            "%s: recall 0 for class(es) %s: the model never predicts them right; try --class-weight "
            "balanced or --oversample", split, ", ".join(dead),
        )


def _headline(m: dict) -> dict:
    head = {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1") if k in m}
    if "per_class" in m:
        head["per_class_recall"] = {name: round(float(row["recall"]), 5) for name, row in m["per_class"].items()}
    return head
