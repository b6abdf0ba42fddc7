"""``run.py baseline``: train the classical TF-IDF baselines on the same split as ``train``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tasks.abstain import AbstainSettings
from ..training.settings import OptimizerSettings
from ..workflow.settings import JobSettings
from .flags import add_abstain, add_kind_settings, add_settings, add_split, add_unlabeled, output_lock, settings_from
from .train import use_default_data_if_needed

NAME = "baseline"
DEFAULT_OUT = "saved_models/baselines"


def baseline_kinds() -> list[str]:
    """The classical baseline kinds (those stored in baseline folders), by name."""
    from ..models.base import all_kinds
    from ..models.tfidf import BaselineClassifier

    return sorted(name for name, cls in all_kinds().items() if issubclass(cls, BaselineClassifier))


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="train classical TF-IDF baselines on the same split as BERT",
                       description="Train TF-IDF (character n-grams, or jieba words) + LogisticRegression"
                       " / LinearSVC / MultinomialNB, and a majority-class floor, each into its own "
                       "folder OUT/NAME usable by evaluate and compare. The split is the one `train` "
                       "uses (same files; without --dev the same held-out part for the same --seed).")
    add_split(p, "labeled training file (default: the embedded default data)")
    p.add_argument("--out", default=DEFAULT_OUT, help="parent folder (default: %(default)s)")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="which baselines: char_lr, char_svm, char_nb, word_lr, word_svm, word_nb, majority, or another "
                   "kind stored in baseline folders (default: all that fit the task)")
    add_kind_settings(p, "a setting of one of them (repeatable), e.g. --set char_svm.C=0.5")
    add_settings(p, OptimizerSettings, only=("seed",))
    add_settings(p, JobSettings, only=("script",))
    add_abstain(p)
    add_unlabeled(p, "unlabeled texts each baseline self-trains on while its dev score improves (docs/labeling.md)")
    return p


def run(args: argparse.Namespace) -> None:
    from ..errors import UserError
    from ..io.records import DataOptions
    from ..models.base import TextClassifier, kind_class
    from ..tasks import task_named
    from ..training.settings import BertSettings, TrainJob, TrainSettings
    from ..workflow.main_job import Splits, fit_kind, read_job_unlabeled
    from ..workflow.settings import parse_assignments

    use_default_data_if_needed(args)
    run_ = TrainJob(data=settings_from(args, DataOptions), bert=BertSettings(train=TrainSettings(seed=args.seed)))
    job = JobSettings(run=run_, unlabeled=tuple(args.unlabeled))
    task = task_named(args.task, args.label_sep, args.path_sep)
    known = baseline_kinds()
    unknown = [n for n in args.models or [] if n not in known]
    if unknown:
        raise UserError(f"--models {' '.join(unknown)}: not a baseline kind; choose from {', '.join(known)}")
    names = args.models or [n for n in known if task.name in kind_class(n).tasks]
    for name in names:
        kind_class(name).check_task(task, args.text_pair_col)
    given = parse_assignments(args.kind_settings)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(f"--set names {', '.join(unknown)}, which is not among --models ({', '.join(names)})")
    abstain = settings_from(args, AbstainSettings).check()
    models = [TextClassifier(kind=n, seed=args.seed, metric=job.metric, abstain=abstain, script=args.script,
                             **given.get(n, {})) for n in names]
    with output_lock(args.out):
        splits = Splits.read(run_)
        unlabeled = read_job_unlabeled(job) if job.unlabeled else []
        done = [fit_kind(splits, m, Path(args.out) / m.kind, unlabeled, job.metric, args.text_pair_col)
                for m in models]
    split = "test" if args.test else "dev"
    micro = args.task != "single-label"
    head = f"{'baseline':<12}{'train s':>9}{split + ' acc':>11}{'macro-F1':>10}"
    print(head + (f"{'micro-F1':>10}" if micro else ""))
    for d in done:
        m = d.model.meta  # type: ignore[attr-defined]
        s = m.get(split, {})
        line = (f"{m['name']:<12}{m['train_seconds']:>9.2f}{s.get('accuracy', float('nan')):>11.4f}"
                f"{s.get('macro_f1', float('nan')):>10.4f}")
        print(line + (f"{s.get('micro_f1', float('nan')):>10.4f}" if micro else ""))
    print(f"baselines saved to {args.out}/ (one folder each)")
