"""``run.py evaluate``: score a saved model (BERT, baseline or ensemble folder) on a labeled file."""

from __future__ import annotations

import argparse

from ..evaluation.analysis import ReportOptions
from ..inference.defaults import EVAL_BATCH_SIZE
from .options import (
    add_backend_option,
    add_long_text_options,
    add_model_option,
    add_reading_options,
    add_task_options,
    long_text_overrides,
)
from .report import print_metrics_report

NAME = "evaluate"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="score a saved model on a labeled file")
    add_model_option(p)
    p.add_argument("--data", required=True, help="labeled file to score")
    p.add_argument("--out", help="report folder (default: MODEL/eval_<data name>)")
    p.add_argument("--batch-size", type=int, default=EVAL_BATCH_SIZE,
                   help="texts per forward pass (default: %(default)s)")
    p.add_argument("--explain-errors", type=int, default=ReportOptions().explain_top, metavar="N",
                   help="report.html: highlight the characters of the N most confident errors with explain's "
                   "scores (0: none; default: %(default)s)")
    add_reading_options(p)
    add_task_options(p, training=False)
    add_long_text_options(p, training=False)
    add_backend_option(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..errors import UserError
    from ..evaluation.analysis import format_analysis
    from ..evaluation.report import evaluate_model

    if args.explain_errors < 0:
        raise UserError(f"--explain-errors must be 0 or more, got {args.explain_errors}")
    ev = evaluate_model(
        args.model, args.data, out_dir=args.out, text_col=args.text_col, label_col=args.label_col,
        encoding=args.encoding, fmt=args.fmt, batch_size=args.batch_size, on_bad_row=args.on_bad_row,
        long_text=long_text_overrides(args), backend=args.backend,
        options=ReportOptions(explain_top=args.explain_errors), follow=args.follow,
        label_sep=args.label_sep, path_sep=args.path_sep, text_pair_col=args.text_pair_col,
    )
    print_metrics_report("", ev.metrics, ev.labels)
    print("\n" + format_analysis(ev.metrics))
    print(f"\nreport written to {ev.out}/ ({', '.join(p.name for p in ev.paths.values())})")
