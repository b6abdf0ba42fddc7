"""``run.py compare``: score model folders (BERT and baselines) on one labeled file, with significance."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..inference.defaults import EVAL_BATCH_SIZE
from .options import add_reading_options, add_seed
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
    p.add_argument("--reference", help="model name to test against the best other model "
                   "(default: the first BERT model)")
    p.add_argument("--batch-size", type=int, default=EVAL_BATCH_SIZE, help="BERT prediction batch size")
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples")
    add_seed(p)
    add_reading_options(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..evaluation.compare_sets import compare_any

    if args.bootstrap < 1:
        raise UserError("--bootstrap must be at least 1")
    out = args.out or f"saved_models/comparison_{Path(args.data).stem}"
    print_comparison(compare_any(
        args.models, args.data, out, text_col=args.text_col, label_col=args.label_col,
        encoding=args.encoding, fmt=args.fmt, on_bad_row=args.on_bad_row,
        batch_size=args.batch_size, reference=args.reference, bootstrap=args.bootstrap, seed=args.seed,
        text_pair_col=args.text_pair_col,
    ))
