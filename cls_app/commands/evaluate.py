"""``run.py evaluate``: score a saved model (any kind of folder) on a labeled file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.analysis import ReportOptions
from ..models.options import EVAL_BATCH_SIZE
from ..text.long_text import LongTextOptions
from .flags import (
    AS_TRAINED,
    add_abstain,
    add_inference,
    add_model,
    add_reading,
    add_settings,
    inference_options,
    read_options,
)
from .report import print_metrics_report

NAME = "evaluate"
LONG_TEXT = ("truncation", "head_tokens", "long_text", "chunk_stride", "chunk_pool")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="score a saved model on a labeled file")
    add_model(p)
    p.add_argument("--data", required=True, help="labeled file to score")
    p.add_argument("--out", help="report folder (default: MODEL/eval_<data name>)")
    add_inference(p, only=("batch_size", "precision", "script"), batch_size=EVAL_BATCH_SIZE)
    add_settings(p, ReportOptions, only=("explain_top",))
    add_reading(p, task="model")
    fields = LongTextOptions.__dataclass_fields__
    add_settings(p.add_argument_group("long texts"), LongTextOptions, defaults=dict.fromkeys(LONG_TEXT),
                 helps={n: fields[n].metadata["help"] + AS_TRAINED for n in LONG_TEXT})
    add_inference(p, only=("backend",))
    add_abstain(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..errors import UserError
    from ..evaluation.analysis import format_analysis
    from ..evaluation.report import evaluate
    from ..evaluation.selective import format_selective
    from ..models.base import load

    if args.explain_top < 0:
        raise UserError(f"--explain-errors must be 0 or more, got {args.explain_top}")
    overrides = {k: getattr(args, k) for k in LONG_TEXT if getattr(args, k) is not None} or None
    model = load(args.model, follow=args.follow, prefer=args.prefer,
                 options=inference_options(args, long_text=overrides, progress=True))
    task = model.task.with_separators(args.label_sep, args.path_sep)  # the model's separators unless given
    data = task.read(args.data, read_options(args, text_pair_col=args.text_pair_col or model.text_pair_col,
                                             label_sep=",", path_sep="##"))
    out = Path(args.out) if args.out else Path(str(model.path)) / f"eval_{Path(args.data).stem}"
    ev = evaluate(model, data, out, ReportOptions(explain_top=args.explain_top))
    print_metrics_report("", ev.metrics, ev.labels, model.task)
    analysis = format_analysis(ev.metrics)  # single-label reports: errors and calibration
    if analysis:
        print("\n" + analysis)
    if "selective" in ev.metrics:
        print("\n" + format_selective(ev.metrics["selective"]))
    print(f"\nreport written to {ev.out}/ ({', '.join(p.name for p in ev.paths.values())})")
