"""``run.py train``: files -> records -> token ids -> model -> saved folder + metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import LabeledData, load_labeled, stratified_split
from .errors import UserError
from .evaluate import write_evaluation
from .fileio import write_json
from .inference import predict_logits
from .metrics import compute_metrics, format_report
from .model import BertClassifier, freeze_layers, from_pretrained_encoder, scratch_config
from .model_dir import save_model_dir
from .tokenizer import CharTokenizer
from .trainer import TrainSettings, fit, set_seed, settings_dict

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
    threads: int | None = None


def _read(path: str, opts: DataOptions) -> LabeledData:
    return load_labeled(
        path, text_col=opts.text_col, label_col=opts.label_col, encoding=opts.encoding,
        fmt=opts.fmt, on_bad_row=opts.on_bad_row,
    )


def load_splits(opts: DataOptions, seed: int) -> tuple[LabeledData, LabeledData, LabeledData | None]:
    """Read train/dev/test; without ``dev``, hold out a stratified part of train."""
    train = _read(opts.train, opts)
    if opts.dev:
        dev = _read(opts.dev, opts)
    else:
        train, dev = stratified_split(train, opts.dev_fraction, seed)
        log.info("no --dev given: held out %d of the training rows (stratified) as dev", len(dev))
    test = _read(opts.test, opts) if opts.test else None
    return train, dev, test


def label_list(train: LabeledData) -> list[str]:
    """Label names in id order: numeric order when all look like integers, else sorted."""
    names = set(train.labels)
    if len(names) < 2:
        raise UserError(
            f"{train.source}: training data has a single class ({', '.join(names) or 'none'}); "
            "a classifier needs at least two"
        )
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def label_ids(data: LabeledData, label2id: dict[str, int]) -> list[int]:
    """Map label names to ids; a label train never saw is a user error."""
    unknown = sorted(set(data.labels) - set(label2id))
    if unknown:
        raise UserError(
            f"{data.source}: label(s) {', '.join(map(repr, unknown[:5]))} never appear in the "
            f"training data (known: {', '.join(label2id)})"
        )
    return [label2id[name] for name in data.labels]


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


def run_training(job: TrainJob) -> dict:
    """Train, keep the best model in ``job.out``, score test; return the metrics written."""
    if job.threads:
        torch.set_num_threads(job.threads)
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

    tokenizer = build_tokenizer(job.model, train)
    model = build_model(job.model, tokenizer, labels)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "model: %s, %d layers, hidden %d, %.1fM parameters",
        job.model.pretrained or "BERT from scratch", model.config.num_hidden_layers,
        model.config.hidden_size, n_params / 1e6,
    )
    max_len = job.model.max_len
    t_tok = time.perf_counter()
    train_ids = tokenizer.encode_batch(train.texts, max_len)
    dev_ids = tokenizer.encode_batch(dev.texts, max_len)
    log.info("tokenized %d texts in %.2fs", len(train_ids) + len(dev_ids), time.perf_counter() - t_tok)

    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"max_len": max_len}
    write_json(out / "training_args.json", {
        "data": vars(job.data), "model": vars(job.model), "train": settings_dict(job.train),
        "labels": labels,
    })

    def save_best(m: torch.nn.Module, dev_metrics: dict) -> None:
        save_model_dir(m, tokenizer, out, settings)

    result = fit(
        model, train_ids, train_y, dev_ids, dev_y, labels, tokenizer.pad_id, job.train,
        on_best=save_best, log_path=out / "train_log.csv",
    )
    metrics: dict = {
        "labels": labels,
        "train_rows": len(train),
        "dev_rows": len(dev),
        "best_epoch": result.best_epoch,
        "best_step": result.best_step,
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.seconds, 2),
        "train_samples_per_s": round(result.samples_per_s, 1),
        "train_tokens_per_s": round(result.tokens_per_s, 1),
        "dev": _headline(result.best_dev),
    }
    if test is not None:
        logits = predict_logits(model, tokenizer.encode_batch(test.texts, max_len), tokenizer.pad_id)
        test_metrics = compute_metrics(test_y, logits.argmax(axis=1), labels)
        write_evaluation(test_metrics, labels, out / "test_eval", title=f"{out.name} on {Path(test.source).name}")
        metrics["test"] = _headline(test_metrics)
        print(format_report(test_metrics, labels))
    metrics["total_seconds"] = round(time.perf_counter() - t0, 2)
    write_json(out / "metrics.json", metrics)
    log.info("saved the best model (dev %s %.4f at epoch %.2f) to %s",
             job.train.metric, result.best_dev.get(job.train.metric, 0.0), result.best_epoch, out)
    return metrics


def _headline(m: dict) -> dict:
    return {k: m[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1") if k in m}
