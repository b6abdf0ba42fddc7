"""``run.py baseline``: train the classical TF-IDF baselines on the same split as ``train``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tasks.abstain import AbstainSettings
from ..training.settings import OptimizerSettings
from .flags import add_abstain, add_settings, add_split, output_lock, settings_from
from .train import use_default_data_if_needed

NAME = "baseline"
DEFAULT_OUT = "saved_models/baselines"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..baselines.pipelines import BASELINE_NAMES

    p = sub.add_parser(NAME, help="train classical TF-IDF baselines on the same split as BERT",
                       description="Train TF-IDF (character 1-2 grams, or jieba words) + LogisticRegression"
                       " / LinearSVC / MultinomialNB, and a majority-class floor, each into its own "
                       "folder OUT/NAME usable by evaluate and compare. The split is the one `train` "
                       "uses (same files; without --dev the same held-out part for the same --seed).")
    add_split(p, "labeled training file (default: the embedded default data)")
    p.add_argument("--out", default=DEFAULT_OUT, help="parent folder (default: %(default)s)")
    p.add_argument("--models", nargs="+", choices=BASELINE_NAMES, metavar="NAME",
                   help=f"which baselines (default: all of {', '.join(BASELINE_NAMES)})")
    add_settings(p, OptimizerSettings, only=("seed",))
    add_abstain(p)
    p.add_argument("--unlabeled", nargs="+", default=[], metavar="FILE",
                   help="unlabeled texts each baseline self-trains on while its dev score improves (docs/labeling.md)")
    return p


def run(args: argparse.Namespace) -> None:
    from ..inference.files import read_chunks
    from ..io.records import DataOptions
    from ..training.settings import BertSettings, TrainJob, TrainSettings
    from ..workflow.distill import read_unlabeled
    from ..workflow.main_job import Splits, fit_baselines

    use_default_data_if_needed(args)
    job = TrainJob(data=settings_from(args, DataOptions), bert=BertSettings(train=TrainSettings(seed=args.seed)))
    with output_lock(args.out):
        unlabeled = read_unlabeled(args.unlabeled, lambda path: read_chunks(path, job.data))
        done = fit_baselines(Splits.read(job), args.models, args.seed, args.text_pair_col, Path(args.out),
                             abstain=settings_from(args, AbstainSettings).check(), unlabeled=unlabeled)
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
