"""``run.py predict``: classify a file of any size, ``--text`` values, or lines of standard input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from .flags import add_abstain, add_inference, add_model, add_reading, inference_options, output_lock, read_options

NAME = "predict"
log = logging.getLogger("cls_app")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME, help="classify texts with a saved model (files of any size, --text, or stdin)",
        description="Classify a file (CSV, TSV, JSONL, THUCNews txt or one text per line) chunk by chunk, "
        "keeping every row and column and adding pred_label and pred_prob; or classify --text values or "
        "lines read from standard input and print label and probability.",
    )
    add_model(p, required=False)  # not needed with --merge
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", help="file to classify (CSV, TSV, JSONL, .txt)")
    src.add_argument("--text", action="append", help="a text to classify (repeatable); without --input "
                     "or --text, texts are read from standard input, one per line")
    src.add_argument("--merge", nargs="+", metavar="PART",
                     help="join the outputs of --shard 1/N ... N/N (in that order) into --output; needs no model")
    p.add_argument("--text-pair", action="append", metavar="TEXT_B",
                   help="sentence-pair models: the second text of each --text (repeat as often as --text)")
    p.add_argument("--output", help="output file; .csv, .tsv or .jsonl picks the format (required with --input)")
    p.add_argument("--shard", metavar="K/N", help="score only the K-th of N equal runs of rows (whole "
                   "--chunk-size windows) of --input, e.g. for a job array; join the N outputs with --merge")
    add_reading(p, labels=False)
    p.add_argument("--top-k", type=int, default=1, help="also output the K most likely labels (default 1)")
    add_inference(p, only=("batch_size", "window", "threads", "quantize", "backend", "precision"))
    add_abstain(p)
    return p


def run(args: argparse.Namespace) -> None:
    from ..io.table_stream import output_format

    if (args.input or args.merge) and not args.output:
        raise UserError(f"{'--input' if args.input else '--merge'} needs --output FILE (.csv, .tsv or .jsonl)")
    if args.output:
        output_format(args.output)
    with output_lock(args.output, "--output"):  # None (printing to stdout): no lock
        _run_locked(args)


def _run_locked(args: argparse.Namespace) -> None:
    from ..models.base import load_folder
    from ..models.folders import folder_text_pair_col, follow_best
    from ..runtime.distributed import env_info

    if args.merge:
        from ..inference.files import merge_parts

        print(f"merged {merge_parts(args.merge, args.output)} parts into {args.output}")
        return
    if not args.model:
        raise UserError("--model is required (the model folder written by train or baseline)")
    args.shard = _parse_shard(args.shard, args.input)
    folder = follow_best(args.model) if args.follow else Path(args.model)
    args.text_pair_col = args.text_pair_col or folder_text_pair_col(folder)
    if args.text_pair and len(args.text_pair) != len(args.text or []):
        raise UserError(f"--text-pair given {len(args.text_pair)} time(s) but --text {len(args.text or [])}: "
                        "give one --text-pair per --text")
    info = env_info()
    if info.enabled:
        _run_distributed(args, info)
        return
    clf = load_folder(_model_folder(folder), inference_options(args))
    if args.input:
        _predict_input(clf, args)
        return
    texts = args.text
    if args.text_pair:
        from ..io.pairs import join_pair

        texts = [join_pair(a, b) or "" for a, b in zip(args.text, args.text_pair, strict=True)]
    elif args.text_pair_col and texts:
        raise UserError(f"{args.model} classifies sentence pairs: give each --text a --text-pair")
    _predict_texts(clf, texts, output=args.output, top_k=args.top_k, encoding=args.encoding,
                   chunk_rows=args.window, pairs=bool(args.text_pair_col))


def _model_folder(path: Path) -> Path:
    if not path.is_dir():
        raise UserError(f"model folder not found: {path}")
    return path


def _parse_shard(value: str | None, has_input: bool) -> tuple[int, int] | None:
    """``K/N`` -> ``(K, N)`` with 1 <= K <= N."""
    if value is None:
        return None
    if not has_input:
        raise UserError("--shard splits an --input file; give --input and --output")
    k, _, n = value.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise UserError(f"--shard {value!r}: give K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(k), int(n)


def _predict_input(clf: Any, args: argparse.Namespace) -> None:
    from ..inference.files import predict_file
    from ..runtime.distributed import rank_world

    summary = predict_file(clf, args.input, args.output, read_options(args), top_k=args.top_k,
                           chunk_rows=args.window, progress=True, shard=args.shard)
    rank, world = rank_world()
    if rank != 0:
        return
    empty = f"; {summary.empty_rows} with an empty text got an empty prediction" if summary.empty_rows else ""
    if summary.abstained:
        empty += f"; the model abstained on {summary.abstained} (abstained=true)"
    procs = f" with {world} processes" if world > 1 else ""
    print(f"wrote {summary.rows} rows to {args.output} in {summary.seconds:.1f}s "
          f"({summary.rows_per_s:.0f} rows/s{procs}){empty}")


def _run_distributed(args: argparse.Namespace, info: Any) -> None:
    """Under torchrun: every process scores a share of the --input file's windows; rank 0 writes the output."""
    import torch

    from ..models.base import load
    from ..runtime import distributed
    from ..runtime.cores import default_threads

    if args.shard:
        raise UserError("--shard is for separate jobs; under torchrun the processes already share the file")
    if not args.input:
        raise UserError("under torchrun, predict shares an --input file among the processes: give --input and "
                        "--output (for --text or standard input run one process)")
    threads = args.threads or default_threads(info.local_world_size)
    clf = load(args.model, follow=args.follow, prefer=args.prefer, options=inference_options(args, threads=threads))
    distributed.init(torch.device("cpu"), info)
    try:
        _predict_input(clf, args)
    finally:
        distributed.shutdown()


def _print_chunk(chunk: Any, values: Sequence[Sequence[Any]]) -> None:
    """``label<TAB>prob[<TAB>label2<TAB>prob2...]<TAB>text`` per text, flushed per chunk."""
    out = []
    for row, vals in zip(chunk.rows, values, strict=True):
        cells = ["" if v is None else v if isinstance(v, str) else f"{v:.4f}" for v in vals]
        text = " ".join(row[0].split("\n")).replace("\t", " ").replace("\x1e", "\t")
        out.append("\t".join([*cells, text]))
    print("\n".join(out), flush=True)


def _predict_texts(clf: Any, texts: Sequence[str] | None, *, output: str | None, top_k: int,
                   encoding: str | None, chunk_rows: int, pairs: bool = False) -> None:
    """Classify ``texts`` (or standard input's lines when None); print them or write ``output``.

    ``pairs``: each line of standard input is ``text<TAB>text_b``.
    """
    from ..inference.files import output_columns, predict_chunks, stdin_chunks
    from ..io.table_stream import RowChunk, TableWriter
    from ..tasks import check_top_k

    top_k = check_top_k(top_k, clf.labels)
    window = None
    if texts is not None:
        source = "--text"
        chunks: Iterable[RowChunk] = [RowChunk([[t] for t in texts], list(texts), list(range(1, len(texts) + 1)))]
    else:
        source = "standard input"
        if sys.stdin is not None and sys.stdin.isatty():
            print("type one text per line; end with Ctrl-D", file=sys.stderr)
            window = 1  # answer each line as it is typed
        chunks = stdin_chunks(encoding, chunk_rows)
        if pairs:
            from ..io.pairs import join_pair

            chunks = (RowChunk(c.rows, [join_pair(*t.split("\t", 1)) if t and "\t" in t else None for t in c.texts],
                               c.lines) for c in chunks)
    if output is None:
        summary = predict_chunks(clf, chunks, _print_chunk, top_k=top_k, source=source, window=window)
    else:
        with TableWriter(output, ["text"], output_columns(clf, top_k), "list", source) as writer:
            summary = predict_chunks(clf, chunks, writer.write, top_k=top_k, source=source, window=window)
        print(f"wrote {summary.rows} rows to {output}", file=sys.stderr)
    if summary.rows == 0:
        log.warning("%s: no texts to classify", source)
