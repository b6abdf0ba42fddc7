"""Settings of a fine-tuning run, their defaults (one place each) and their checks (once).

The CLI takes its defaults from these dataclasses (:func:`default`), ``training_args.json``
records them, and ``--resume`` rebuilds a :class:`TrainJob` from that file.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from ..errors import UserError
from ..io.labels import check_task
from ..io.records import DataOptions
from ..text.long_text import LongTextOptions
from ..text.token_cache import DEFAULT_CACHE_DIR
from ..version import __version__

log = logging.getLogger(__name__)

METRICS = ("macro_f1", "accuracy", "weighted_f1", "micro_f1", "samples_f1")
LABEL_SET_METRICS = ("micro_f1", "samples_f1")  # multi-label / hierarchical tasks only
# the model-selection metric when --metric is not given; TrainSettings.metric is the single-label one
TASK_METRICS = {"single-label": "macro_f1", "multi-label": "micro_f1", "hierarchical": "micro_f1"}
CLASS_WEIGHTS = ("none", "balanced")
PRETRAINED_LR = 3e-5  # default peak learning rate when starting from a pretrained BERT
DEFAULT_OUT = "saved_models/default"
# The embedded default data (product reviews, ~3x longer than headlines) trains a 2-layer model
# with shorter windows and fewer epochs, so that `python run.py train` (baselines, ensemble and
# recommendation included: --with-baselines is on there) ends within 8 minutes on 2 CPU cores of
# either kind measured (docs/ensembles.md, "The default job").
EMBEDDED_DATA_DEFAULTS = {"max_len": 64, "epochs": 2, "layers": 2, "with_baselines": True}


@dataclass
class TrainSettings:
    """Hyper-parameters of one fine-tuning run."""

    epochs: int = 4
    batch_size: int = 32
    lr: float = 5e-4  # the from-scratch default; PRETRAINED_LR when starting from a pretrained BERT
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 0  # evaluate every N optimizer steps; 0 = once per epoch
    patience: int = 2  # evaluations without dev improvement before stopping; 0 = never stop early
    metric: str = "macro_f1"  # model selection metric on dev (one of METRICS)
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


SCRATCH_BIGRAM_MIN_COUNT = 2  # measured in docs/ensembles.md ("Character bigram embeddings")


@dataclass
class ModelOptions:
    """Which model to build: a scratch config or a pretrained BERT."""

    pretrained: str | None = None  # BERT folder or hub name; None: a scratch BERT of the size below
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int | None = None  # feed-forward size; None: 4 x hidden
    dropout: float = 0.1
    min_freq: int = 2  # min character count for the built vocabulary
    max_vocab: int | None = 21128  # max vocabulary size incl. specials
    max_len: int = 128  # max tokens per text incl. [CLS]/[SEP]
    freeze_layers: int = 0  # freeze the embeddings and the first K encoder layers
    bigrams: int | None = None  # min count of a character bigram for its own embedding (0: off); None: see below
    max_bigrams: int = 100_000  # keep at most this many (the most frequent) bigrams

    @property
    def bigram_min_count(self) -> int:
        """``bigrams``, or by default 2 for a scratch BERT and 0 (off) for a pretrained one."""
        if self.bigrams is not None:
            return self.bigrams
        return 0 if self.pretrained else SCRATCH_BIGRAM_MIN_COUNT


@dataclass
class TrainJob:
    """One complete training run."""

    data: DataOptions
    model: ModelOptions = field(default_factory=ModelOptions)
    train: TrainSettings = field(default_factory=TrainSettings)
    out: str = DEFAULT_OUT
    threads: int | None = None  # torch CPU threads; default: the cores split among local processes
    cache_dir: str | None = str(DEFAULT_CACHE_DIR)  # token-id cache; None: tokenize every run
    long_text: LongTextOptions = field(default_factory=LongTextOptions)
    overwrite: bool = False  # replace an unfinished run (a checkpoint) in ``out``
    keep_checkpoint: bool = False  # keep ``out/checkpoint/`` after a successful run


def default(cls: type, name: str):
    """The default of field ``name`` of dataclass ``cls`` (what the CLI shows and uses)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def check_settings(t: TrainSettings) -> None:
    """Reject impossible training settings (a :class:`UserError` naming the flag)."""
    for name, value, low in (("--epochs", t.epochs, 1), ("--batch-size", t.batch_size, 1),
                             ("--eval-every", t.eval_every, 0), ("--patience", t.patience, 0),
                             ("--save-every", t.save_every, 0)):
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if not t.lr > 0:
        raise UserError(f"--lr must be positive, got {t.lr}")
    if t.metric not in METRICS:
        raise UserError(f"unknown --metric {t.metric!r}; choose one of {', '.join(METRICS)}")
    if t.class_weight not in CLASS_WEIGHTS:
        raise UserError(f"unknown --class-weight {t.class_weight!r}; choose one of {', '.join(CLASS_WEIGHTS)}")


def check_job(job: TrainJob) -> LongTextOptions:
    """Reject impossible settings before any data is read; return the resolved long-text options."""
    t = job.train
    check_settings(t)
    if t.class_weight == "balanced" and t.oversample:
        log.warning("--class-weight balanced and --oversample both correct for imbalance; together they "
                    "over-correct (the former majority class can collapse): usually pick one")
    check_task(job.data.task)
    if job.data.task == "single-label" and t.metric in LABEL_SET_METRICS:
        raise UserError(f"--metric {t.metric} is for --task multi-label / hierarchical; single-label tasks pick "
                        "macro_f1, accuracy or weighted_f1")
    if job.model.max_len > 512 and not job.model.pretrained:
        raise UserError(f"--max-len {job.model.max_len} is above the model's position limit of 512")
    return job.long_text.resolved(job.model.max_len)


def training_args(job: TrainJob, labels: list[str], lt: LongTextOptions) -> dict:
    """What ``training_args.json`` records (all a resume needs)."""
    data = asdict(job.data)
    for split in ("train", "dev", "test"):  # absolute, so that --resume works from any folder
        if data[split]:
            data[split] = str(Path(data[split]).resolve())
    return {
        "app_version": __version__,
        "data": data, "model": asdict(job.model), "train": asdict(job.train),
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
