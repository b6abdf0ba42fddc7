"""Flag groups shared by several commands, with their defaults taken from the settings dataclasses."""

from __future__ import annotations

import argparse
import logging

from ..errors import UserError
from ..io.formats import FORMATS
from ..io.records import ON_BAD_ROW, DataOptions
from ..text.long_text import LONG_TEXT_MODES, POOLS, TRUNCATIONS, LongTextOptions
from ..training.settings import ModelOptions, TrainSettings, default

log = logging.getLogger("cls_app")

LONG_TEXT_KEYS = ("truncation", "head_tokens", "long_text", "chunk_stride", "chunk_pool")


def add_reading_options(p: argparse.ArgumentParser, labels: bool = True) -> None:
    """--text-col, --label-col, --encoding, --format (and --on-bad-row for labeled files)."""
    p.add_argument("--text-col", help="name of the text column (CSV/TSV/JSONL; default: guessed from common names)")
    p.add_argument("--text-pair-col", metavar="NAME",
                   help="sentence pairs: the column of the second text (THUCNews-style .txt: text<TAB>text_b"
                   "<TAB>label, any NAME)" + ("" if labels else "; default: as the model was trained"))
    if labels:
        p.add_argument("--label-col", help="name of the label column (CSV/TSV/JSONL)")
    p.add_argument("--encoding", help="file encoding (default: detect utf-8, utf-8-sig, utf-16, gb18030)")
    p.add_argument("--format", dest="fmt", choices=FORMATS,
                   help="file format (default: from the extension and content)")
    if labels:
        p.add_argument("--on-bad-row", choices=ON_BAD_ROW, default=default(DataOptions, "on_bad_row"),
                       help="what to do with rows missing text or label (default: %(default)s)")


def add_backend_option(p: argparse.ArgumentParser) -> None:
    """--backend torch|onnx (BERT folders; onnx runs the model.onnx that `run.py export` wrote)."""
    from ..inference.defaults import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                   help="torch (default), or onnx: run the folder's model.onnx (with --quantize: model.int8.onnx, "
                   "where the command has --quantize) in ONNX Runtime; write it first with `run.py export`")


def add_split_options(p: argparse.ArgumentParser, train_help: str) -> None:
    """--train/--dev/--test/--dev-fraction and the reading options: the split train and baseline share."""
    p.add_argument("--train", help=train_help)
    p.add_argument("--dev", help="labeled dev file (default: hold out --dev-fraction of train)")
    p.add_argument("--test", help="labeled test file, scored at the end")
    p.add_argument("--dev-fraction", type=float, default=default(DataOptions, "dev_fraction"),
                   help="share of train held out as dev when there is no --dev (default: %(default)s)")
    add_reading_options(p)
    add_task_options(p)


def add_task_options(p: argparse.ArgumentParser, training: bool = True) -> None:
    """--task (training only), --label-sep and --path-sep: how a label cell reads (docs/tasks.md)."""
    from ..io.labels import TASKS

    g = p.add_argument_group("label sets (docs/tasks.md)")
    dflt = (lambda name: default(DataOptions, name)) if training else (lambda name: None)
    suffix = " (default: %(default)s)" if training else " (default: as the model was trained)"
    if training:
        g.add_argument("--task", choices=TASKS, default=dflt("task"),
                       help="single-label (one class per row), multi-label (a set of labels per row, maybe "
                       "empty) or hierarchical (label paths such as 体育##足球)" + suffix)
    g.add_argument("--label-sep", default=dflt("label_sep"),
                   help="multi-label / hierarchical: separator between the labels of a cell (JSONL may hold "
                   "a JSON list instead)" + suffix)
    g.add_argument("--path-sep", default=dflt("path_sep"),
                   help="hierarchical: separator between the levels of a label path" + suffix)


MODEL_HELP = ("model folder written by train, baseline or ensemble; a train folder holding best.json "
              "(train --with-baselines) means the model it recommends")


def add_model_option(p: argparse.ArgumentParser, required: bool = True) -> None:
    """--model, and --no-follow to use a train folder's own BERT instead of its best.json recommendation."""
    p.add_argument("--model", required=required, help=MODEL_HELP)
    p.add_argument("--no-follow", dest="follow", action="store_false",
                   help="use the BERT in --model itself, not the model its best.json recommends")


def add_seed(p: argparse.ArgumentParser, help: str = "random seed (default: %(default)s)") -> None:
    p.add_argument("--seed", type=int, default=default(TrainSettings, "seed"), help=help)


def add_model_size_options(g: argparse._ArgumentGroup, embedded: dict | None = None) -> None:
    """--layers/--hidden/--heads/--intermediate/--dropout/--min-freq/--max-vocab of a scratch BERT.

    ``embedded``: train's defaults for the embedded default data; a flag named there defaults to
    None (resolved by the command) and its help gives both defaults.
    """
    embedded = embedded or {}
    layers = default(ModelOptions, "layers")
    g.add_argument("--layers", type=int, default=None if "layers" in embedded else layers,
                   help=f"encoder layers (default: {layers}"
                   + (f"; {embedded['layers']} on the embedded default data)" if "layers" in embedded else ")"))
    g.add_argument("--hidden", type=int, default=default(ModelOptions, "hidden"),
                   help="hidden size (default: %(default)s)")
    g.add_argument("--heads", type=int, default=default(ModelOptions, "heads"),
                   help="attention heads (default: %(default)s)")
    g.add_argument("--intermediate", type=int, help="feed-forward size (default 4 x hidden)")
    g.add_argument("--dropout", type=float, default=default(ModelOptions, "dropout"), help="(default: %(default)s)")
    g.add_argument("--min-freq", type=int, default=default(ModelOptions, "min_freq"),
                   help="min character count for the vocab (default: %(default)s)")
    g.add_argument("--max-vocab", type=int, default=default(ModelOptions, "max_vocab"),
                   help="max vocab size incl. specials (default: %(default)s)")


def data_options(args: argparse.Namespace) -> DataOptions:
    """The :class:`DataOptions` of parsed split flags."""
    return DataOptions(
        train=args.train, dev=args.dev, test=args.test, text_col=args.text_col, label_col=args.label_col,
        encoding=args.encoding, fmt=args.fmt, dev_fraction=args.dev_fraction, on_bad_row=args.on_bad_row,
        task=args.task, label_sep=args.label_sep, path_sep=args.path_sep, text_pair_col=args.text_pair_col,
    )


def add_long_text_options(p: argparse.ArgumentParser, training: bool) -> None:
    """Flags for texts longer than --max-len; evaluate defaults to what the model was trained with."""
    opts = LongTextOptions()

    def dflt(name: str):
        return getattr(opts, name) if training else None

    suffix = "" if training else " (default: as the model was trained)"
    g = p.add_argument_group("long texts")
    g.add_argument("--truncation", choices=TRUNCATIONS, default=dflt("truncation"),
                   help="which tokens a long text keeps: the first, the last, or both ends "
                   "(head+tail: --head-tokens from the start, the rest from the end)" + suffix)
    g.add_argument("--head-tokens", type=int, help="head+tail: tokens kept from the start "
                   "(default: a quarter of --max-len, as 128 of 510 in Sun et al. 2019)" + suffix)
    g.add_argument("--long-text", choices=LONG_TEXT_MODES, default=dflt("long_text"),
                   help="truncate (one window) or chunks: overlapping windows whose logits are pooled"
                   + (" (training: every window is an example)" if training else suffix))
    g.add_argument("--chunk-stride", type=int, help="chunks: tokens between window starts "
                   "(default: 3/4 of the window, so windows overlap by a quarter)" + suffix)
    g.add_argument("--chunk-pool", choices=POOLS, default=dflt("chunk_pool"),
                   help="chunks: pool the window logits by mean or max" + suffix)


def long_text_options(args: argparse.Namespace) -> LongTextOptions:
    return LongTextOptions(**{k: getattr(args, k) for k in LONG_TEXT_KEYS})


def long_text_overrides(args: argparse.Namespace) -> dict | None:
    """The long-text flags given on the command line (evaluate: the rest come from the model folder)."""
    given = {k: getattr(args, k) for k in LONG_TEXT_KEYS if getattr(args, k) is not None}
    return given or None


def use_default_data_if_needed(args: argparse.Namespace) -> bool:
    """No --train: use the embedded default data (written to data/ on first use); True when it did."""
    from ..io.default_data import prepare_default_data

    if args.train is not None:
        return False
    if args.dev or args.test:
        raise UserError("--dev/--test given without --train")
    paths = prepare_default_data()
    args.train, args.dev, args.test = (str(paths[k]) for k in ("train", "dev", "test"))
    args.text_col, args.label_col = "text", "label"
    log.info("no --train given: using the embedded default data in %s", paths["train"].parent)
    return True


def output_lock(path: str | None, flag: str = "--out"):
    """The one-run-per-output lock on ``path`` (see :mod:`cls_app.locks`), as a context manager;
    under torchrun only rank 0 writes, so only rank 0 locks."""
    from ..locks import run_lock
    from ..runtime.distributed import env_info

    return run_lock(path if env_info().is_main else None, flag)
