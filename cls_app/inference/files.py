"""Predict files of any size, and lines of text, chunk by chunk, keeping every row in order.

:func:`predict_file` streams its input (see :mod:`cls_app.io.table_stream`) and writes every
input row, in order, with all its columns plus the prediction columns; the output appears
under its name only when complete. :func:`predict_chunks` is the loop behind it, for any
stream of rows (``--text`` values, standard input) and any :class:`~cls_app.models.TextClassifier`.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bars import progress_bar
from ..errors import UserError, where
from ..fileio import atomic_open
from ..io.pairs import join_pair
from ..io.records import ReadOptions, as_text
from ..io.table_stream import RowChunk, TableReader, TableWriter, output_format
from ..models.base import Outputs, TextClassifier
from ..models.options import DEFAULT_CHUNK_ROWS
from ..runtime.distributed import gather_to_main, rank_world
from ..tasks import check_top_k

log = logging.getLogger(__name__)

WARN_EMPTY_ROWS = 10  # empty rows named one by one; the rest are counted


def output_columns(clf: TextClassifier, top_k: int) -> list[str]:
    """The prediction columns ``clf`` writes (its task's)."""
    return clf.task.output_columns(clf.labels, top_k)


def output_values(clf: TextClassifier, scored: Outputs, top_k: int) -> list[list[Any]]:
    """The values of :func:`output_columns` per row (the task's, then whether the model abstains)."""
    return clf.task.output_values(scored.probs, clf.labels, top_k, clf.abstention(scored))


@dataclass
class PredictSummary:
    """What :func:`predict_file` did."""

    rows: int = 0
    empty_rows: int = 0
    abstained: int = 0
    seconds: float = 0.0
    empty_lines: list[int] = field(default_factory=list)  # the first few, for messages
    resumed_rows: int = 0  # rows an earlier, interrupted run had written (``--engine ray``)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _note_empty(chunk: RowChunk, probs: np.ndarray, source: str | os.PathLike, summary: PredictSummary) -> None:
    empty = np.flatnonzero(np.isnan(probs[:, 0])) if len(probs) else np.zeros(0, dtype=np.int64)
    for i in empty:
        line = chunk.lines[i]
        if summary.empty_rows < WARN_EMPTY_ROWS:
            log.warning("%s: empty text; writing an empty prediction for this row", where(source, line))
            summary.empty_lines.append(line)
        summary.empty_rows += 1


def _windows(chunks: Iterable[RowChunk], size: int) -> Iterator[RowChunk]:
    """Regroup a stream of chunks into chunks of exactly ``size`` rows (the last may be shorter).

    Length sorting happens within these windows, so the results do not depend on how the
    input was chunked when read.
    """
    rows: list[Any] = []
    texts: list[str | None] = []
    lines: list[int] = []
    for chunk in chunks:
        rows += chunk.rows
        texts += chunk.texts
        lines += chunk.lines
        while len(rows) >= size:
            yield RowChunk(rows[:size], texts[:size], lines[:size])
            rows, texts, lines = rows[size:], texts[size:], lines[size:]
    if rows:
        yield RowChunk(rows, texts, lines)


def _scored_windows(clf: TextClassifier, windows: Iterable[RowChunk]) -> Iterator[tuple[RowChunk, Outputs]]:
    """``(window, probabilities and ood scores)`` in input order.

    Under ``torchrun`` (a joined process group of N ranks) every rank reads the same windows and
    they are dealt out round-robin: in round r, rank k scores window ``r * N + k``, and rank 0
    gathers the round's probabilities and yields them in order; the other ranks yield nothing.
    Each window is scored exactly as one process would score it, so the output is identical.
    """
    rank, world = rank_world()
    if world == 1:
        for part in windows:
            yield part, clf.score([as_text(t) for t in part.texts])
        return
    group: list[RowChunk] = []
    for part in windows:
        group.append(part)
        if len(group) == world:
            yield from _score_round(clf, group, rank)
            group = []
    if group:
        yield from _score_round(clf, group, rank)


def _score_round(clf: TextClassifier, group: list[RowChunk], rank: int) -> Iterator[tuple[RowChunk, Outputs]]:
    mine = clf.score([as_text(t) for t in group[rank].texts]) if rank < len(group) else None
    gathered = gather_to_main(mine)
    if gathered is not None:
        yield from zip(group, gathered[: len(group)], strict=True)


def predict_chunks(
    clf: TextClassifier,
    chunks: Iterable[RowChunk],
    emit: Any,
    top_k: int = 1,
    source: str | os.PathLike = "input",
    progress: bool = False,
    window: int | None = None,
    prediction_log: Any = None,
) -> PredictSummary:
    """Predict the rows of ``chunks`` window by window and pass each window with its
    prediction values to ``emit(chunk, values)`` (``window`` rows at a time; default ``clf.window``);
    ``prediction_log``: a :class:`~.prediction_log.PredictionLog` that records every answer.

    Under ``torchrun`` the windows are shared among the processes (see :func:`_scored_windows`);
    only rank 0 emits, and its summary counts every row.
    """
    summary = PredictSummary()
    t0 = time.perf_counter()
    bar = progress_bar(enabled=progress and rank_world()[0] == 0, desc="predict", unit="row")
    try:
        for part, scored in _scored_windows(clf, _windows(chunks, window or clf.options.window)):
            _note_empty(part, scored.probs, source, summary)
            abstention = clf.abstention(scored)
            summary.abstained += int(abstention.abstained.sum())
            emit(part, clf.task.output_values(scored.probs, clf.labels, top_k, abstention))
            if prediction_log is not None:
                prediction_log.observe(part.texts, scored.probs, scored.ood, abstention)
            summary.rows += len(part)
            bar.update(len(part))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    if summary.empty_rows > WARN_EMPTY_ROWS:
        log.warning("%s: %d rows had an empty text in all (empty predictions); the first were rows %s",
                    source, summary.empty_rows, ", ".join(map(str, summary.empty_lines)))
    return summary


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: the same path once resolved, or hard links to it."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def predict_file(
    clf: TextClassifier,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    read: ReadOptions | None = None,
    *,
    top_k: int = 1,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
    shard: tuple[int, int] | None = None,
    prediction_log: Any = None,
) -> PredictSummary:
    """Classify every row of ``input_path`` into ``output_path`` (CSV/TSV/JSONL by extension).

    Every input row is written, in order, with all its original columns, plus
    :func:`prediction_columns`. Empty or missing texts get empty predictions and a warning
    naming their row. Memory stays flat: ``chunk_rows`` rows are held at a time, and the
    output appears under its name only when complete. Under ``torchrun`` every process reads the
    input, each scores its share of the windows, and rank 0 alone writes the output.

    ``shard=(k, n)`` scores only the k-th of n contiguous runs of whole windows (k from 1), for a
    scheduler's job array; :func:`merge_parts` joins the n outputs into what one run writes. ``prediction_log``: a
    :class:`~.prediction_log.PredictionLog` (rank 0 logs under torchrun).
    """
    read = read or ReadOptions(text_pair_col=clf.text_pair_col)
    top_k = check_top_k(top_k, clf.labels)
    input_path, output_path = Path(input_path), Path(output_path)
    output_format(output_path)  # a bad extension fails before any work
    if _same_file(input_path, output_path):
        raise UserError(f"{output_path}: the output would overwrite the input {input_path}; choose another file")
    reader = TableReader(input_path, text_col=read.text_col, encoding=read.encoding, fmt=read.fmt,
                         chunk_rows=chunk_rows)
    extra = output_columns(clf, top_k)
    chunks = reader.chunks()
    if shard is not None:
        window = clf.options.window
        start, stop = shard_rows(sum(len(c) for c in reader.chunks()), window, shard)
        log.info("%s: shard %d/%d, rows %d to %d", input_path, *shard, start + 1, stop)
        chunks = _row_slice(chunks, start, stop)
    if read.text_pair_col:
        chunks = pair_chunks(reader, chunks, read.text_pair_col)
    first = next(chunks, None)
    main = rank_world()[0] == 0
    if first is None:  # a header without rows
        if main:
            with TableWriter(output_path, reader.columns or [], extra, reader.row_kind, input_path):
                pass
        log.warning("%s: no data rows; wrote only the header to %s", input_path, output_path)
        return PredictSummary()
    log.info("%s: %s (%s), text column %r; writing %s", input_path, reader.fmt, reader.encoding,
             reader.text_col, output_path)

    def all_chunks() -> Iterable[RowChunk]:
        yield first
        yield from chunks

    if not main:  # under torchrun: score this rank's share, rank 0 writes
        return predict_chunks(clf, all_chunks(), lambda chunk, values: None, top_k=top_k, source=input_path)
    with TableWriter(output_path, reader.columns or [], extra, reader.row_kind, input_path) as writer:
        summary = predict_chunks(
            clf, all_chunks(), lambda chunk, values: writer.write(chunk, values, reader.columns),
            top_k=top_k, source=input_path, progress=progress, prediction_log=prediction_log,
        )
    return summary


def shard_rows(rows: int, window: int, shard: tuple[int, int]) -> tuple[int, int]:
    """``[start, stop)`` rows of shard ``k`` of ``n``: a contiguous run of whole windows."""
    k, n = shard
    windows = -(-rows // window)
    return min(rows, (k - 1) * windows // n * window), min(rows, k * windows // n * window)


def _row_slice(chunks: Iterable[RowChunk], start: int, stop: int) -> Iterator[RowChunk]:
    """Rows ``start`` to ``stop - 1`` (0-based, over the whole stream) of ``chunks``."""
    pos = 0
    for chunk in chunks:
        lo, hi = max(start - pos, 0), min(stop - pos, len(chunk))
        pos += len(chunk)
        if lo < hi:
            yield RowChunk(chunk.rows[lo:hi], chunk.texts[lo:hi], chunk.lines[lo:hi])
        if pos >= stop:
            return


def _header(fh: Any, delimiter: str) -> tuple[list[str] | None, str]:
    """The first CSV record of ``fh`` and its raw text (it may span lines when quoted)."""
    raw: list[str] = []

    def lines() -> Iterator[str]:
        for line in fh:
            raw.append(line)
            yield line

    header = next(csv.reader(lines(), delimiter=delimiter), None)
    return header, "".join(raw)


def merge_parts(parts: Sequence[str | os.PathLike], output: str | os.PathLike) -> int:
    """Join the outputs of ``predict --shard 1/N .. N/N`` (in that order) into ``output``; return the parts' count.

    CSV/TSV parts must have the same header, which is written once; JSONL parts are concatenated.
    """
    fmt = output_format(output)
    paths = [Path(p) for p in parts]
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: part file not found")
        if output_format(path) != fmt:
            raise UserError(f"{path}: a {output_format(path)} part cannot be merged into the {fmt} file {output}")
        if path.resolve() == Path(output).resolve():
            raise UserError(f"{output}: the output would overwrite a part; choose another file")
    first_header = None
    with atomic_open(output, "w", newline="") as out:
        for path in paths:
            with open(path, encoding="utf-8", newline="") as fh:
                if fmt != "jsonl":
                    header, raw = _header(fh, "," if fmt == "csv" else "\t")
                    if first_header is None:
                        first_header = header
                        out.write(raw)
                    elif header != first_header:
                        raise UserError(f"{path}: its columns differ from {paths[0]}'s; merge the parts of one run")
                shutil.copyfileobj(fh, out)
    return len(paths)


def pair_chunks(reader: TableReader, chunks: Iterable[RowChunk], name: str) -> Iterator[RowChunk]:
    """The chunks with each text replaced by the sentence pair (text, column ``name``); in a .txt
    file the pair is ``text<TAB>text_b`` on each line."""
    index: int | None = None
    for chunk in chunks:
        texts: list[str | None] = []
        for row, text in zip(chunk.rows, chunk.texts, strict=True):
            if isinstance(row, dict):
                b = as_text(row.get(name))
            elif reader.fmt in ("csv", "tsv"):
                if index is None:
                    folded = [str(c).lower() for c in reader.columns or []]
                    if name.lower() not in folded:
                        raise UserError(f"{reader.path}: no text-pair column {name!r}; the columns are "
                                        f"{', '.join(map(repr, reader.columns or []))}; pass one to --text-pair-col")
                    index = folded.index(name.lower())
                b = as_text(row[index])
            else:
                text, _, b = (text or "").partition("\t")
            texts.append(join_pair(as_text(text), b))
        yield RowChunk(chunk.rows, texts, chunk.lines)


# --------------------------------------------------------------------------- --text and stdin


def stdin_chunks(encoding: str | None, chunk_rows: int) -> Iterator[RowChunk]:
    """Lines of standard input as chunks of one-column rows (one line at a time on a terminal)."""
    enc = encoding or "utf-8"
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        return
    if sys.stdin.isatty():
        chunk_rows = 1  # answer each line as it is typed
    rows: list[list[str]] = []
    lines: list[int] = []
    number = 0
    for raw in iter(stream.readline, b""):
        number += 1
        try:
            line = raw.decode(enc)
        except UnicodeDecodeError as e:
            raise UserError(
                f"standard input, row {number}: not valid {enc} (bad byte 0x{raw[e.start]:02x}); "
                "pass the right encoding with --encoding NAME"
            ) from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        rows.append([line.rstrip("\n").removesuffix("\r")])
        lines.append(number)
        if len(rows) >= chunk_rows:
            yield RowChunk(rows, [r[0] for r in rows], lines)
            rows, lines = [], []
    if rows:
        yield RowChunk(rows, [r[0] for r in rows], lines)


def read_chunks(path: str | os.PathLike, options: ReadOptions, chunk_rows: int = DEFAULT_CHUNK_ROWS
                ) -> Iterator[RowChunk]:
    """The rows of an unlabeled file (any format ``predict`` reads), ``chunk_rows`` at a time."""
    return TableReader(path, options.text_col, options.encoding, options.fmt, chunk_rows).chunks()
