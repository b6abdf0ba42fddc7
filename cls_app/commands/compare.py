"""``run.py compare``: score model folders (any kinds) on one labeled file, with significance."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.compare import CompareOptions
from ..models.options import EVAL_BATCH_SIZE
from .flags import add_abstain, add_inference, add_reading, add_settings, inference_options, read_options, settings_from
from .report import print_comparison

NAME = "compare"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="compare model folders (BERT and baselines) on one test file",
                       description="Score every model on the same labeled file; write comparison.md, "
                       ".csv, .json and a bar chart .png, with McNemar's test of BERT against the best "
                       "baseline.")
    p.add_argument("--models", nargs="+", required=True, metavar="DIR",
                   help="model folders; a folder of model folders (e.g. saved_models/baselines) expands")
    p.add_argument("--data", required=True, help="labeled file all models are scored on")
    p.add_argument("--out", help="report folder (default: saved_models/comparison_<data name>)")
    add_settings(p, CompareOptions, only=("reference",))
    add_inference(p, only=("batch_size", "precision", "script"), batch_size=EVAL_BATCH_SIZE)
    add_abstain(p)
    add_settings(p, CompareOptions, only=("bootstrap", "seed"))
    add_reading(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..evaluation.compare import compare, expand_model_dirs
    from ..models.base import load_folder, score_timed

    options = settings_from(args, CompareOptions)
    models = [load_folder(d, inference_options(args, progress=True)) for d in expand_model_dirs(args.models)]
    first = models[0]
    data = first.task.read(args.data, read_options(args, text_pair_col=args.text_pair_col or first.text_pair_col))
    out = args.out or f"saved_models/comparison_{Path(args.data).stem}"
    print_comparison(compare(score_timed(models, data.texts), data, out, options))
