"""Predict files of any size, and lines of text, chunk by chunk, keeping every row in order.

:func:`predict_file` streams its input (see :mod:`cls_app.io.table_stream`) and writes every
input row, in order, with all its columns plus the prediction columns; the output appears
under its name only when complete. :func:`predict_chunks` is the loop behind it, for any
stream of rows (``--text`` values, standard input) and any :class:`Predictor`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import UserError, where
from ..io.pairs import join_pair
from ..io.records import as_text
from ..io.table_stream import RowChunk, TableReader, TableWriter, output_format
from .classifier import check_top_k, top_classes
from .defaults import DEFAULT_CHUNK_ROWS
from .multilabel import label_set_columns, label_set_values, task_of
from .predictor import Predictor

log = logging.getLogger(__name__)

WARN_EMPTY_ROWS = 10  # empty rows named one by one; the rest are counted


def prediction_columns(top_k: int) -> list[str]:
    """Output columns: pred_label, pred_prob, then top2_label, top2_prob, ... topK_prob."""
    cols = ["pred_label", "pred_prob"]
    for k in range(2, top_k + 1):
        cols += [f"top{k}_label", f"top{k}_prob"]
    return cols


def _extra_values(probs: np.ndarray, labels: Sequence[str], top_k: int) -> list[list[Any]]:
    order, best = top_classes(probs, top_k)
    rows: list[list[Any]] = []
    for row in range(len(probs)):
        if best[row, 0] < 0:
            rows.append([None] * (2 * top_k))
            continue
        values: list[Any] = []
        for j, p in zip(order[row], best[row], strict=True):
            values += [labels[j], float(p)]
        rows.append(values)
    return rows


def output_columns(clf: Predictor, top_k: int) -> list[str]:
    """The prediction columns ``clf`` writes: :func:`prediction_columns`, or a label-set model's."""
    task = task_of(clf)
    return label_set_columns(clf.labels, top_k) if task.multi else prediction_columns(top_k)


def output_values(clf: Predictor, probs: np.ndarray, top_k: int) -> list[list[Any]]:
    """The values of :func:`output_columns` per row."""
    task = task_of(clf)
    if task.multi:
        return label_set_values(probs, clf.labels, task, top_k)
    return _extra_values(probs, clf.labels, top_k)


@dataclass
class PredictSummary:
    """What :func:`predict_file` did."""

    rows: int = 0
    empty_rows: int = 0
    seconds: float = 0.0
    empty_lines: list[int] = field(default_factory=list)  # the first few, for messages

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _note_empty(chunk: RowChunk, probs: np.ndarray, source: str | os.PathLike, summary: PredictSummary) -> None:
    empty = np.flatnonzero(np.isnan(probs[:, 0])) if len(probs) else []
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


def predict_chunks(
    clf: Predictor,
    chunks: Iterable[RowChunk],
    emit: Any,
    top_k: int = 1,
    source: str | os.PathLike = "input",
    progress: bool = False,
    window: int | None = None,
) -> PredictSummary:
    """Predict the rows of ``chunks`` window by window and pass each window with its
    prediction values to ``emit(chunk, values)`` (``window`` rows at a time; default ``clf.window``)."""
    summary = PredictSummary()
    t0 = time.perf_counter()
    bar = tqdm(desc="predict", unit="row", disable=not progress, leave=False)
    try:
        for part in _windows(chunks, window or getattr(clf, "window", DEFAULT_CHUNK_ROWS)):
            probs = clf.predict_proba([as_text(t) for t in part.texts])
            _note_empty(part, probs, source, summary)
            emit(part, output_values(clf, probs, top_k))
            summary.rows += len(part)
            bar.update(len(part))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - t0
    if summary.empty_rows > WARN_EMPTY_ROWS:
        log.warning("%s: %d rows had an empty text in all (empty predictions); the first were rows %s",
                    source, summary.empty_rows, ", ".join(map(str, summary.empty_lines)))
    return summary


def predict_file(
    clf: Predictor,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    text_col: str | None = None,
    encoding: str | None = None,
    fmt: str | None = None,
    top_k: int = 1,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
    text_pair_col: str | None = None,
) -> PredictSummary:
    """Classify every row of ``input_path`` into ``output_path`` (CSV/TSV/JSONL by extension).

    Every input row is written, in order, with all its original columns, plus
    :func:`prediction_columns`. Empty or missing texts get empty predictions and a warning
    naming their row. Memory stays flat: ``chunk_rows`` rows are held at a time, and the
    output appears under its name only when complete.
    """
    top_k = check_top_k(top_k, clf.labels)
    input_path, output_path = Path(input_path), Path(output_path)
    output_format(output_path)  # a bad extension fails before any work
    if output_path.resolve() == input_path.resolve():
        raise UserError(f"{output_path}: the output would overwrite the input; choose another file")
    reader = TableReader(input_path, text_col=text_col, encoding=encoding, fmt=fmt, chunk_rows=chunk_rows)
    extra = output_columns(clf, top_k)
    chunks = reader.chunks()
    if text_pair_col:
        chunks = pair_chunks(reader, chunks, text_pair_col)
    first = next(chunks, None)
    if first is None:  # a header without rows
        with TableWriter(output_path, reader.columns or [], extra, reader.row_kind, input_path):
            pass
        log.warning("%s: no data rows; wrote only the header to %s", input_path, output_path)
        return PredictSummary()
    log.info("%s: %s (%s), text column %r; writing %s", input_path, reader.fmt, reader.encoding,
             reader.text_col, output_path)

    def all_chunks() -> Iterable[RowChunk]:
        yield first
        yield from chunks

    with TableWriter(output_path, reader.columns or [], extra, reader.row_kind, input_path) as writer:
        summary = predict_chunks(
            clf, all_chunks(), lambda chunk, values: writer.write(chunk, values, reader.columns),
            top_k=top_k, source=input_path, progress=progress,
        )
    return summary


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
