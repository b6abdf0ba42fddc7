"""``run.py drift``: are new texts (a file, or a prediction log) still like the ones the model was checked on?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserError
from .flags import add_inference, add_model, add_reading, add_settings, inference_options, read_options, settings_from

NAME = "drift"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..evaluation.drift import DriftOptions

    p = sub.add_parser(
        NAME, help="compare new texts (a file or a prediction log) with the model's dev reference; exit 1 on drift",
        description="Scores the --data texts with the model (or reads a prediction log folder written by "
        "--log-predictions) and compares them with the reference the model folder keeps (its dev rows): the "
        "out-of-domain score distribution and tail, the predicted-label mix, lengths, scripts and unknown "
        "characters. Prints a verdict per signal, writes OUT/drift.json and OUT/report.html, and exits with "
        "status 1 when any signal drifts (for cron). See docs/monitoring.md.",
    )
    add_model(p)
    p.add_argument("--data", required=True, help="the new texts: a file predict reads, or a prediction log (a "
                   "folder of predictions-*.jsonl, or one such file)")
    add_settings(p, DriftOptions)
    p.add_argument("--out", help="report folder (default: MODEL/drift_<data name>)")
    add_reading(p, labels=False)
    add_inference(p, only=("batch_size", "threads", "script"))
    return p


def run(args: argparse.Namespace) -> int:
    from ..evaluation.drift import DriftOptions, DriftReport, compare, write_drift_report
    from ..models.base import load
    from ..models.folders import model_version

    options = settings_from(args, DriftOptions).check()
    model = load(args.model, follow=args.follow, prefer=args.prefer, options=inference_options(args))
    version = model_version(model.path) if model.path is not None else ""
    reference = model.reference
    if options.reference:
        from ..models.reference import Reference

        texts = [t for chunk in _chunks(options.reference, args) for t in chunk.texts]
        chars = reference.char_set if reference is not None else set()
        reference = Reference.measure(model, texts, chars, source=str(options.reference))
    if reference is None:
        raise UserError(f"{model.path} keeps no drift reference (made before there was one): give --reference FILE, "
                        "a file of texts like those the model was checked on (its dev file)")
    from ..evaluation.drift import stats_of_records

    records = list(_records(model, args, version))
    overall = compare(reference, stats_of_records(records), options.alpha)
    windows: list[DriftReport] = []
    if options.every:
        windows = [compare(reference, stats_of_records(records[i: i + options.every]), options.alpha)
                   for i in range(0, len(records), options.every)]
    out = Path(args.out) if args.out else Path(str(model.path)) / f"drift_{Path(args.data).stem}"
    about = {"model": str(model.path), "model_version": version, "data": str(args.data),
             "reference": reference.source, "reference_texts": reference.stats.texts}
    paths = write_drift_report(out, reference, stats_of_records(records), overall, windows, about)
    _print(overall, windows, args, reference)
    print(f"written: {', '.join(str(p) for p in paths)}")
    return 1 if overall.drift or any(w.drift for w in windows) else 0


def _chunks(path: str, args: argparse.Namespace) -> Any:
    from ..inference.files import read_chunks

    return read_chunks(path, read_options(args))


def _is_log(path: Path) -> bool:
    """A prediction-log folder or file (its first record has the log's fields)."""
    import json

    from ..inference.prediction_log import PATTERN

    if path.is_dir():
        return any(path.glob(PATTERN))
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "model_version" in record and "ood" in record


def _records(model: Any, args: argparse.Namespace, version: str) -> Any:
    """One record per text, as the prediction log keeps them (a log: its records of this model version when it
    has any; a file: scored here, in order)."""
    import logging

    from ..inference.prediction_log import log_records, read_log

    path = Path(args.data)
    if _is_log(path):
        records = list(read_log(path))
        mine = [r for r in records if r.get("model_version") == version]
        if records and not mine:
            logging.getLogger(__name__).warning("%s: no record of model version %s; comparing all %d records",
                                                path, version, len(records))
            mine = records
        yield from mine
        return
    for chunk in _chunks(args.data, args):
        scored = model.score(chunk.texts)
        yield from log_records(model, chunk.texts, scored.probs, scored.ood, model.abstention(scored), "none",
                               version)


def _print(overall: Any, windows: list[Any], args: argparse.Namespace, reference: Any) -> None:
    verdict = "DRIFT" if overall.drift else ("no verdict" if overall.reason else "no drift")
    print(f"drift of {args.data} against {reference.source} ({reference.stats.texts} texts): {verdict} on "
          f"{overall.texts} texts (alpha {overall.alpha:g}, split among {len(overall.signals)} signals)")
    if overall.reason:
        print(f"  {overall.reason}")
    for s in overall.signals:
        print(f"  {s.name:<14} {'DRIFT' if s.drift else 'ok':<6} p {s.p_value:<10.3g} statistic {s.statistic:.4g}")
    if windows:
        flagged = [i + 1 for i, w in enumerate(windows) if w.drift]
        print(f"  windows of {windows[0].texts if len(windows) > 1 else overall.texts}: {len(flagged)} of "
              f"{len(windows)} drift"
              + (f" ({', '.join(map(str, flagged[:20]))}{' ...' if len(flagged) > 20 else ''})" if flagged else ""))
