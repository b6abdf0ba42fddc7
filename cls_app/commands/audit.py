"""``run.py audit``: rows whose label is probably wrong, duplicates, conflicts and leakage."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

NAME = "audit"
BERT_MODEL = ("layers", "hidden", "heads", "intermediate", "dropout", "min_freq", "max_vocab", "max_len")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..evaluation.audit import AuditOptions
    from ..training.settings import BertSettings, ModelOptions, TrainSettings
    from .flags import add_reading, add_settings

    p = sub.add_parser(
        NAME, help="find probably wrong labels, duplicates and dev/test leakage in a labeled file",
        description="Confident learning (cleanlab find_label_issues) on out-of-fold probabilities of a "
        "K-fold TF-IDF + LogisticRegression, exact and near duplicates, identical texts with different labels, "
        "and copies of train rows in --dev/--test. Writes OUT/label_issues.csv (ranked) and prints a summary.",
    )
    p.add_argument("--train", required=True, help="the labeled file to audit")
    p.add_argument("--dev", help="labeled dev file: train rows copied into it are reported as leakage")
    p.add_argument("--test", help="labeled test file: train rows copied into it are reported as leakage")
    add_settings(p, AuditOptions, only=("folds", "model_kind", "near_threshold", "seed"))
    p.add_argument("--out", help="folder for label_issues.csv and audit.json (default: audit_<train file name>)")
    add_reading(p)
    g = p.add_argument_group("--model-kind bert", "the BERT fine-tuned on each fold (train's defaults)")
    add_settings(g, ModelOptions, only=BERT_MODEL)
    add_settings(g, TrainSettings, only=("epochs", "lr"))
    add_settings(g, BertSettings, only=("threads",))
    return p


def run(args: argparse.Namespace) -> None:
    from ..evaluation.audit import REASONS, AuditOptions, audit, write_audit
    from ..training.settings import BertSettings, ModelOptions, TrainSettings
    from .flags import read_options, settings_from

    if not 0 < args.near_threshold <= 1:
        raise UserError(f"--near-threshold must be in (0, 1], got {args.near_threshold}")
    read = read_options(args)
    train = read.read(args.train)
    others = [read.read(path) for path in (args.dev, args.test) if path]
    # the BERT of each fold (with --model-kind bert), from the flags
    bert = BertSettings(model=settings_from(args, ModelOptions), train=settings_from(args, TrainSettings),
                        threads=args.threads)
    options = settings_from(args, AuditOptions, bert=bert)
    result = audit(train, others, options, progress=True)
    out = Path(args.out) if args.out else Path(f"audit_{Path(args.train).stem}")
    paths = write_audit(result, out, options, train)
    counts = result.counts()
    print(f"audit of {args.train}: {len(train)} rows, {len(result.labels)} classes, {options.folds}-fold "
          f"out-of-fold accuracy {result.oof_accuracy():.4f}")
    for reason in REASONS:
        print(f"  {reason:<20}{counts[reason]:>7}")
    for note in result.script_notes():
        print(f"  note: {note}")
    top = result.issues.head(10)
    if len(top):
        print("\nmost suspicious rows:")
        for r in top.itertuples():
            hint = f" -> {r.suggested_label}?" if r.suggested_label else ""
            text = r.text if len(r.text) <= 40 else r.text[:39] + "…"
            print(f"  row {r.row:<7} {r.reason:<19} {r.given_label}{hint}  {text}  {r.related}")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}")
