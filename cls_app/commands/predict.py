"""``run.py predict``: classify a file of any size, ``--text`` values, or lines of standard input."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from .flags import add_abstain, add_inference, add_model, add_reading, inference_options, output_lock, read_options

NAME = "predict"
log = logging.getLogger("cls_app")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..inference.prediction_log import LogSettings
    from ..inference.ray_batch import RaySettings
    from .flags import add_settings, add_text_io

    p = sub.add_parser(
        NAME, help="classify texts with a saved model (files of any size, --text, or stdin)",
        description="Classify a file (CSV, TSV, JSONL, Parquet, THUCNews txt or one text per line) chunk by chunk, "
        "keeping every row and column and adding pred_label and pred_prob; or classify --text values or "
        "lines read from standard input and print label and probability. With --engine ray, a file or a folder "
        "of files is scored on Ray Data by a pool of model replicas (resumable; docs/ray.md).",
    )
    add_model(p, required=False)  # not needed with --merge
    src = p.add_mutually_exclusive_group()
    add_text_io(p, "file to classify (CSV, TSV, JSONL, Parquet, .txt); with --engine ray also a folder of them",
                "output file; .csv, .tsv or .jsonl picks the format (required with --input)", texts=src)
    src.add_argument("--merge", nargs="+", metavar="PART",
                     help="join the outputs of --shard 1/N ... N/N (in that order) into --output; needs no model")
    p.add_argument("--text-pair", action="append", metavar="TEXT_B",
                   help="sentence-pair models: the second text of each --text (repeat as often as --text)")
    p.add_argument("--shard", metavar="K/N", help="score only the K-th of N equal runs of rows (whole "
                   "--chunk-size windows) of --input, e.g. for a job array; join the N outputs with --merge")
    add_reading(p, labels=False)
    p.add_argument("--top-k", type=int, default=1, help="also output the K most likely labels (default 1)")
    add_inference(p, only=("batch_size", "window", "threads", "quantize", "backend", "precision", "script"))
    add_abstain(p)
    add_settings(p, RaySettings)
    add_settings(p, LogSettings)
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
    if args.engine == "ray":
        _run_ray(args, folder, info.enabled)
        return
    if info.enabled:
        _run_distributed(args, info)
        return
    clf = load_folder(_model_folder(folder), inference_options(args))
    with prediction_log(args, clf) as log_to:
        if args.input:
            _predict_input(clf, args, log_to)
            return
        _predict_given(clf, args, log_to)


@contextlib.contextmanager
def prediction_log(args: argparse.Namespace, clf: Any) -> Iterator[Any]:
    """The --log-predictions log of ``clf`` (None without the flag), closed (synced) at the end."""
    from ..inference.prediction_log import LogSettings, PredictionLog
    from .flags import settings_from

    log_to = PredictionLog.for_model(settings_from(args, LogSettings), clf)
    try:
        yield log_to
    finally:
        if log_to is not None:
            log_to.close()


def _predict_given(clf: Any, args: argparse.Namespace, log_to: Any) -> None:
    """``--text`` values or standard input."""
    texts = args.text
    if args.text_pair:
        from ..io.pairs import join_pair

        texts = [join_pair(a, b) or "" for a, b in zip(args.text, args.text_pair, strict=True)]
    elif args.text_pair_col and texts:
        raise UserError(f"{args.model} classifies sentence pairs: give each --text a --text-pair")
    _predict_texts(clf, texts, output=args.output, top_k=args.top_k, encoding=args.encoding,
                   chunk_rows=args.window, pairs=bool(args.text_pair_col), log=log_to)


def _run_ray(args: argparse.Namespace, folder: Path, distributed: bool) -> None:
    from ..inference.prediction_log import LogSettings
    from ..inference.ray_batch import RaySettings, predict_dataset
    from .flags import settings_from

    if not args.input:
        raise UserError("--engine ray scores an --input file or folder into --output; give both")
    if args.shard or distributed:
        raise UserError("--engine ray spreads the work itself: drop --shard / torchrun")
    summary = predict_dataset(_model_folder(folder), args.input, args.output, read_options(args), top_k=args.top_k,
                              options=inference_options(args), settings=settings_from(args, RaySettings),
                              progress=True, log_settings=settings_from(args, LogSettings))
    resumed = f" (resumed after {summary.resumed_rows})" if summary.resumed_rows else ""
    empty = f"; {summary.empty_rows} with an empty text got an empty prediction" if summary.empty_rows else ""
    if summary.abstained:
        empty += f"; the model abstained on {summary.abstained} (abstained=true)"
    print(f"wrote {summary.rows} rows to {args.output}{resumed} in {summary.seconds:.1f}s on Ray{empty}")


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


def _predict_input(clf: Any, args: argparse.Namespace, log_to: Any = None) -> None:
    from ..inference.files import predict_file
    from ..runtime.distributed import rank_world

    summary = predict_file(clf, args.input, args.output, read_options(args), top_k=args.top_k,
                           chunk_rows=args.window, progress=True, shard=args.shard, prediction_log=log_to)
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
        with prediction_log(args, clf) as log_to:
            _predict_input(clf, args, log_to)
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
                   encoding: str | None, chunk_rows: int, pairs: bool = False, log: Any = None) -> None:
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
        summary = predict_chunks(clf, chunks, _print_chunk, top_k=top_k, source=source, window=window,
                                 prediction_log=log)
    else:
        with TableWriter(output, ["text"], output_columns(clf, top_k), "list", source) as writer:
            summary = predict_chunks(clf, chunks, writer.write, top_k=top_k, source=source, window=window,
                                     prediction_log=log)
        print(f"wrote {summary.rows} rows to {output}", file=sys.stderr)
    if summary.rows == 0:
        log.warning("%s: no texts to classify", source)
