"""Settings of a fine-tuning run, their defaults (one place each) and their checks (once).

The CLI takes its defaults from these dataclasses (:func:`default`), ``training_args.json``
records them, and ``--resume`` rebuilds a :class:`TrainJob` from that file.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io.records import DataOptions
from ..runtime.precisions import PRECISIONS
from ..settings import setting
from ..tasks import Task, default_metrics, task_named
from ..tasks.abstain import AbstainSettings
from ..text.long_text import LongTextOptions
from ..text.token_cache import DEFAULT_CACHE_DIR
from ..version import __version__

log = logging.getLogger(__name__)

METRICS = ("macro_f1", "accuracy", "weighted_f1", "micro_f1", "samples_f1")
LABEL_SET_METRICS = ("micro_f1", "samples_f1")  # multi-label / hierarchical tasks only
# the model-selection metric when --metric is not given; TrainSettings.metric is the single-label one
CLASS_WEIGHTS = ("none", "balanced")
PRETRAINED_LR = 3e-5  # default peak learning rate when starting from a pretrained BERT
DEFAULT_OUT = "saved_models/default"
# The embedded default data (product reviews, ~3x longer than headlines) trains a 2-layer model
# with shorter windows and fewer epochs, so that `python run.py train` (baselines, ensemble and
# recommendation included: --with-baselines is on there) ends within 8 minutes on 2 CPU cores of
# either kind measured (docs/ensembles.md, "The default job").
EMBEDDED_DATA_DEFAULTS = {"max_len": 64, "epochs": 2, "layers": 2, "with_baselines": True}


@dataclass(kw_only=True)
class ModelSize:
    """The size of a scratch BERT and its character vocabulary (fine-tuning and pre-training share these)."""

    layers: int = setting(4, "encoder layers (default: %(default)s)")
    hidden: int = setting(256, "hidden size (default: %(default)s)")
    heads: int = setting(4, "attention heads (default: %(default)s)")
    intermediate: int | None = setting(None, "feed-forward size (default 4 x hidden)")
    dropout: float = setting(0.1, "(default: %(default)s)")
    min_freq: int = setting(2, "min character count for the vocab (default: %(default)s)")
    max_vocab: int | None = setting(21128, "max vocab size incl. specials (default: %(default)s)")


@dataclass(kw_only=True)
class OptimizerSettings:
    """AdamW with linear warm-up and decay (fine-tuning and pre-training share these)."""

    lr: float = setting(5e-4, f"peak learning rate (default %(default)s scratch, {PRETRAINED_LR} pretrained)")
    weight_decay: float = setting(0.01, "(default: %(default)s)")
    warmup_ratio: float = setting(0.1, "(default: %(default)s)")
    max_grad_norm: float = setting(1.0, "(default: %(default)s)")
    seed: int = setting(42, "random seed (default: %(default)s)")


@dataclass(kw_only=True)
class TrainSettings(OptimizerSettings):
    """Hyper-parameters of one fine-tuning run."""

    epochs: int = setting(4, "passes over the training data (default: %(default)s)")
    batch_size: int = setting(32, "(default: %(default)s)")
    eval_every: int = setting(0, "evaluate every N steps (0: each epoch)")
    patience: int = setting(2, "early-stopping patience in evaluations (0: off; default: %(default)s)")
    time_limit: float | None = setting(None, "stop fine-tuning after this many minutes of training: dev is scored "
                                       "where it stops and the best model so far is kept; the rest of the job "
                                       "(baselines, ensemble) still runs", metavar="MINUTES")
    metric: str | None = setting(None, "dev metric that picks the best model and drives early stopping (default: "
                                 + ", ".join(f"{m} for {task}" for task, m in default_metrics().items()) + ")",
                                 choices=METRICS)
    eval_batch_size: int = setting(128, cli=False)
    group_by_length: bool = setting(True, "batch texts of similar length together (default: on)", toggle=True)
    class_weight: str = setting("none", "balanced: weight the loss by n / (classes x class count)",
                                choices=CLASS_WEIGHTS)
    oversample: bool = setting(False, "repeat examples of smaller classes each epoch up to the largest class's size")
    save_every: int = setting(0, "write a resumable checkpoint every N steps (default 0: at the end of each epoch)",
                              metavar="N")
    layer_lr_decay: float = setting(1.0, "layer-wise LR decay: layer i of L gets lr x decay^(L+1-i), embeddings "
                                    "the lowest (1: off)")
    device: str = setting("auto", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    precision: str = setting("auto", "autocast precision (default auto: bf16, or fp16 where unsupported, on a GPU; "
                             "fp32 on the CPU)", choices=PRECISIONS)
    compile: bool = setting(False, "torch.compile the model (needs a C++ compiler)")
    sparse_embeddings: bool = setting(True, cli=False)  # row-sparse embedding gradients (off: dense, to measure)
    pad_to: int = setting(0, cli=False)  # 0: dynamic padding; N: pad every batch to N tokens (for measurements)
    progress: bool = setting(True, cli=False)  # a progress bar per epoch (the CLI's; off from the Python API)


SCRATCH_BIGRAM_MIN_COUNT = 2  # measured in docs/ensembles.md ("Character bigram embeddings")


@dataclass(kw_only=True)
class ModelOptions(ModelSize):
    """Which model to build: a scratch config of :class:`ModelSize` or a pretrained BERT."""

    pretrained: str | None = setting(None, "BERT folder or hub name to start from (default: scratch)")
    max_len: int = setting(128, "max tokens per text incl. [CLS]/[SEP] (default: %(default)s)")
    freeze_layers: int = setting(0, "freeze the embeddings and the first K encoder layers (default 0)", metavar="K")
    bigrams: int | None = setting(None, "character bigram embeddings for every bigram seen >= MIN_COUNT times in the "
                                  "training texts, added to BERT's input (0: off; default "
                                  f"{SCRATCH_BIGRAM_MIN_COUNT} scratch, 0 --pretrained)", metavar="MIN_COUNT")
    max_bigrams: int = setting(100_000, "keep at most the N most frequent bigrams (default: %(default)s)",
                               metavar="N")

    @property
    def bigram_min_count(self) -> int:
        """``bigrams``, or by default 2 for a scratch BERT and 0 (off) for a pretrained one."""
        if self.bigrams is not None:
            return self.bigrams
        return 0 if self.pretrained else SCRATCH_BIGRAM_MIN_COUNT


@dataclass
class BertSettings:
    """Everything that decides a fine-tuned BERT: the model, the training, long texts, where it runs."""

    model: ModelOptions = field(default_factory=ModelOptions)
    train: TrainSettings = field(default_factory=TrainSettings)
    long_text: LongTextOptions = field(default_factory=LongTextOptions)
    threads: int | None = setting(None, "torch CPU threads per process (default: the cores split among local "
                                  "processes)")
    cache_dir: str | None = setting(str(DEFAULT_CACHE_DIR), "token-id cache folder, reused across runs (default: "
                                    "%(default)s)")

    @staticmethod
    def owners() -> dict[str, str]:
        """Each flat setting name -> the part that holds it (``model``, ``train``, ``long_text`` or ``top``)."""
        return {**{f.name: "long_text" for f in fields(LongTextOptions)},
                **{f.name: "train" for f in fields(TrainSettings)},
                **{f.name: "model" for f in fields(ModelOptions)}, "threads": "top", "cache_dir": "top"}

    @classmethod
    def annotations(cls) -> dict[str, object]:
        """Each flat setting name -> its type (for :func:`~cls_app.settings.check_settings`)."""
        import typing

        parts = {"model": ModelOptions, "train": TrainSettings, "long_text": LongTextOptions, "top": cls}
        hints = {part: typing.get_type_hints(c) for part, c in parts.items()}
        return {name: hints[part][name] for name, part in cls.owners().items()}

    @classmethod
    def from_kwargs(cls, **values: object) -> BertSettings:
        """Settings from flat names (``layers=2, epochs=3, truncation="tail"``), each routed to the
        dataclass that has it; an unknown or ill-typed one is a :class:`UserError` naming it. No
        token-id cache unless ``cache_dir`` is given (a Python caller's folder stays clean), and no
        progress bars unless ``progress=True``."""
        from ..settings import check_settings

        values = check_settings(cls, "a bert model", dict(values), known=cls.annotations())
        owners = cls.owners()
        parts: dict[str, dict] = {"model": {}, "train": {"progress": False}, "long_text": {},
                                  "top": {"cache_dir": None}}
        for name, value in values.items():
            parts[owners[name]][name] = value
        settings = cls(model=ModelOptions(**parts["model"]), train=TrainSettings(**parts["train"]),
                       long_text=LongTextOptions(**parts["long_text"]), **parts["top"])
        if "lr" not in values and settings.model.pretrained:
            settings.train.lr = PRETRAINED_LR
        return settings

    def to_kwargs(self) -> dict[str, Any]:
        """The flat names and values :meth:`from_kwargs` takes back."""
        parts = {"model": self.model, "train": self.train, "long_text": self.long_text, "top": self}
        return {name: getattr(parts[part], name) for name, part in self.owners().items()}


@dataclass
class TrainJob:
    """One complete training run of ``run.py train``."""

    data: DataOptions
    bert: BertSettings = field(default_factory=BertSettings)
    out: str = setting(DEFAULT_OUT, "model folder to write (default: %(default)s)")
    overwrite: bool = setting(False, "start over in an --out that holds an unfinished run")
    keep_checkpoint: bool = setting(False, "keep OUT/checkpoint/ after the run finishes")
    abstain: AbstainSettings = field(default_factory=AbstainSettings)  # when every model of the run abstains

    @property
    def metric(self) -> str:
        """The dev metric that picks models (``--metric``, else the task's default)."""
        return self.bert.train.metric or task_named(self.data.task).default_metric


def check_settings(t: TrainSettings) -> None:
    """Reject impossible training settings (a :class:`UserError` naming the flag)."""
    for name, value, low in (("--epochs", t.epochs, 1), ("--batch-size", t.batch_size, 1),
                             ("--eval-every", t.eval_every, 0), ("--patience", t.patience, 0),
                             ("--save-every", t.save_every, 0)):
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if not t.lr > 0:
        raise UserError(f"--lr must be positive, got {t.lr}")
    if t.time_limit is not None and not t.time_limit > 0:
        raise UserError(f"--time-limit must be a positive number of minutes, got {t.time_limit}")
    if t.metric not in METRICS:
        raise UserError(f"unknown --metric {t.metric!r}; choose one of {', '.join(METRICS)}")
    if t.class_weight not in CLASS_WEIGHTS:
        raise UserError(f"unknown --class-weight {t.class_weight!r}; choose one of {', '.join(CLASS_WEIGHTS)}")


def check_bert_settings(s: BertSettings, task: Task) -> LongTextOptions:
    """Reject impossible settings before anything is trained; return the resolved long-text options."""
    t = s.train
    if t.metric is None:
        t.metric = task.default_metric
    check_settings(t)
    if t.class_weight == "balanced" and t.oversample:
        log.warning("--class-weight balanced and --oversample both correct for imbalance; together they "
                    "over-correct (the former majority class can collapse): usually pick one")
    task.check_training(t.oversample, t.metric)
    if s.model.max_len > 512 and not s.model.pretrained:
        raise UserError(f"--max-len {s.model.max_len} is above the model's position limit of 512")
    if s.model.bigram_min_count < 0:
        raise UserError(f"--bigrams must be 0 (off) or a minimum count of at least 1, got {s.model.bigram_min_count}")
    if s.model.bigram_min_count and s.model.max_bigrams < 1:
        raise UserError(f"--max-bigrams must be at least 1, got {s.model.max_bigrams} (use --bigrams 0 for none)")
    return s.long_text.resolved(s.model.max_len)


def training_args(job: TrainJob) -> dict:
    """What ``training_args.json`` records (all a resume needs; the labels are added by the run)."""
    data = asdict(job.data)
    for split in ("train", "dev", "test"):  # absolute, so that --resume works from any folder
        if data[split]:
            data[split] = str(Path(data[split]).resolve())
    b = job.bert
    return {
        "app_version": __version__,
        "data": data, "model": asdict(b.model), "train": asdict(b.train),
        "long_text": b.long_text.resolved(b.model.max_len).to_settings(), "threads": b.threads,
        "keep_checkpoint": job.keep_checkpoint, "abstain": asdict(job.abstain),
    }


def job_from_args(args: dict, out: str) -> TrainJob:
    """Rebuild a :class:`TrainJob` from ``training_args.json``."""
    try:
        bert = BertSettings(model=ModelOptions(**args["model"]), train=TrainSettings(**args["train"]),
                            long_text=LongTextOptions(**args.get("long_text", {})), threads=args.get("threads"))
        return TrainJob(data=DataOptions(**args["data"]), bert=bert, out=out,
                        keep_checkpoint=bool(args.get("keep_checkpoint", False)),
                        abstain=AbstainSettings(**(args.get("abstain") or {})))
    except (KeyError, TypeError) as exc:
        raise UserError(f"{out}/training_args.json does not describe a run of this version ({exc})") from None
