"""The formats' streaming parsers: a file's rows in chunks, memory flat however large the file.

Each parser takes a :class:`StreamSource` (the file, its encoding, the chunk size, the text column
asked for) and yields :class:`RowChunk` objects; it sets ``source.columns`` and ``source.text_col``
once the first chunk is read. The format registry (:mod:`.formats`) names which parser streams which
format; :class:`~cls_app.io.table_stream.TableReader` drives them.

* CSV/TSV: the first non-blank record is the header; blank lines are not rows; a short row
  is padded with empty cells; a row with more cells than the header is an error; quoting is
  strict (a quote must close before the next separator), so a stray quote is an error naming
  its line instead of silently swallowing the rest of the file.
* JSONL: blank lines are not rows; every other line must hold a JSON object (a ``.json`` file
  holding one array of objects is read whole).
* ``.txt`` (plain or THUCNews): **every** line is a row, blank lines included, so output line
  *i* matches input line *i*.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError, where
from .cells import (
    cell_text,
    choose_text_column,
    delimited_hint,
    json_array_objects,
    json_line_object,
    looks_like_header,
)
from .encoding import iter_lines, open_binary

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 64 * 1024 * 1024  # a longer CSV cell is almost surely an unclosed quote


@dataclass
class RowChunk:
    """Consecutive rows of a file: original values, the texts to classify, their lines."""

    rows: list[Any]  # list[str] cells (CSV/TSV/txt) or dict (JSON)
    texts: list[str | None]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class StreamSource:
    """A file being streamed: what the parser reads, and the columns it found."""

    path: Path
    encoding: str
    fmt: str
    chunk_rows: int
    requested_text_col: str | None = None
    columns: list[str] | None = field(default=None)
    text_col: str | None = field(default=None)


def strip_eol(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


_AFTER_BARE_CR = re.compile(r"(?<=\r)(?!\n)")


def cr_lines(lines: Iterable[str]) -> Iterator[str]:
    """Lines as ``open(newline="")`` gives them to the csv module: also split after a bare CR
    (classic Mac line ends), ends kept, so a quoted CR stays in its cell. Without this a CR-only
    CSV, which ``train`` reads, was one long line here and refused (found by fuzzing)."""
    for line in lines:
        if "\r" in line.removesuffix("\n").removesuffix("\r"):
            yield from (part for part in _AFTER_BARE_CR.split(line) if part)
        else:
            yield line


# --------------------------------------------------------------------------- CSV / TSV


def delimited_chunks(src: StreamSource, sep: str) -> Iterator[RowChunk]:
    """A CSV (``sep`` ",") or TSV ("\\t") file's rows."""
    previous_limit = csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        records = _records(src, sep)
        header = next(records, None)
        if header is None:
            raise UserError(f"{src.path}: the file is empty")
        _, cells = header
        src.columns = list(cells)
        width = len(src.columns)
        text_index: int | None = None
        for batch in batched(records, src.chunk_rows):
            rows, lines = [], []
            for line, cells in batch:
                if len(cells) > width:
                    raise UserError(
                        f"{where(src.path, line)}: cannot parse as {src.fmt.upper()}: expected {width} "
                        f"fields as in the header, saw {len(cells)} ({delimited_hint(src.fmt)})"
                    )
                if len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                rows.append(cells)
                lines.append(line)
            if text_index is None:
                sample = pd.DataFrame(rows, columns=range(width), dtype=object)
                sample.columns = src.columns
                sample = sample.loc[:, ~sample.columns.duplicated()]
                src.text_col = choose_text_column(sample, src.path, src.requested_text_col)
                text_index = src.columns.index(src.text_col)
            yield RowChunk(rows, [r[text_index] for r in rows], lines)
        if text_index is None:  # header only: still check the column the user named
            empty = pd.DataFrame(columns=src.columns).loc[:, lambda d: ~d.columns.duplicated()]
            if src.requested_text_col is not None:
                src.text_col = choose_text_column(empty, src.path, src.requested_text_col)
    finally:
        csv.field_size_limit(previous_limit)


def csv_chunks(src: StreamSource) -> Iterator[RowChunk]:
    return delimited_chunks(src, ",")


def tsv_chunks(src: StreamSource) -> Iterator[RowChunk]:
    return delimited_chunks(src, "\t")


def _records(src: StreamSource, sep: str) -> Iterator[tuple[int, list[str]]]:
    """(start line, cells) of each non-blank record."""
    lines = cr_lines(iter_lines(src.path, src.encoding))
    reader = csv.reader(lines, delimiter=sep, quotechar='"', strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            message = str(e)
            if "unexpected end of data" in message:
                message, line = "the file ends inside a quoted field that starts here", start
            elif "field larger than field limit" in message:
                message = f"a field longer than {MAX_FIELD_CHARS} characters starts here (an unclosed quote?)"
                line = start
            else:
                line = reader.line_num
            raise UserError(
                f"{where(src.path, line)}: cannot parse as {src.fmt.upper()}: {message} "
                f"({delimited_hint(src.fmt)})"
            ) from None
        end = reader.line_num
        if cells:
            yield start, cells


# --------------------------------------------------------------------------- JSONL


def _json_objects(src: StreamSource) -> Iterator[tuple[int, dict]]:
    lines = iter_lines(src.path, src.encoding)
    first = True
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if first and stripped.startswith("["):  # a .json file holding one array of objects: parsed whole
            log.info("%s: a JSON array is read whole; use JSONL (one object per line) for files larger than "
                     "memory", src.path)
            yield from json_array_objects(src.path, "\n" * (number - 1) + line + "".join(lines))
            return
        first = False
        yield number, json_line_object(src.path, number, line, '{"text": ...}')


def jsonl_chunks(src: StreamSource) -> Iterator[RowChunk]:
    """A JSONL file's objects (or a JSON array's)."""
    key: str | None = None
    seen: dict[str, None] = {}
    for batch in batched(_json_objects(src), src.chunk_rows):
        for _, item in batch:
            for k in item:
                seen.setdefault(str(k), None)
        src.columns = list(seen)
        if key is None:
            sample = pd.DataFrame.from_records([item for _, item in batch])
            key = choose_text_column(sample.astype(object).where(sample.notna(), None), src.path,
                                     src.requested_text_col)
            src.text_col = key
        texts = [_json_text(item.get(key), src.path, line, key) for line, item in batch]
        yield RowChunk([item for _, item in batch], texts, [line for line, _ in batch])
    if key is None:
        raise UserError(f"{src.path}: the file is empty")


def _json_text(value: Any, path: Path, line: int, key: str) -> str | None:
    if isinstance(value, float) and math.isnan(value):  # Python's json reads a bare NaN
        return None
    return cell_text(value, path, line, key)


# --------------------------------------------------------------------------- .txt: plain or THUCNews


def line_chunks(src: StreamSource, thucnews: bool) -> Iterator[RowChunk]:
    """One row per line: the text (and with ``thucnews`` the label after the last tab)."""
    src.columns = ["text", "label"] if thucnews else ["text"]
    src.text_col = "text"
    any_rows = False
    numbered = enumerate(iter_lines(src.path, src.encoding), start=1)
    for batch in batched(numbered, src.chunk_rows):
        rows, lines = [], []
        for number, raw in batch:
            line = strip_eol(raw)
            if thucnews:
                body, label = line.rsplit("\t", 1) if "\t" in line else (line, "")
                if number == 1 and looks_like_header(body, label):
                    log.warning("%s: line 1 looks like a header row (%r); not a row", src.path, line)
                    continue
                rows.append([body, label])
            else:
                rows.append([line])
            lines.append(number)
        if rows:
            any_rows = True
            yield RowChunk(rows, [r[0] for r in rows], lines)
    if not any_rows:
        raise UserError(f"{src.path}: the file is empty")


def thucnews_chunks(src: StreamSource) -> Iterator[RowChunk]:
    return line_chunks(src, thucnews=True)


def txt_chunks(src: StreamSource) -> Iterator[RowChunk]:
    return line_chunks(src, thucnews=False)


# --------------------------------------------------------------------------- Parquet


def parquet_table(path: Path) -> Any:
    """The whole Parquet file as a pyarrow Table (a clear error for a file that is not Parquet)."""
    return _parquet_file(path).read()


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    open_binary(path).close()  # a missing file, a folder, no permission: the usual messages
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: not a readable Parquet file ({exc}); pass --format to read it as another format"
                        ) from None


def parquet_chunks(src: StreamSource) -> Iterator[RowChunk]:
    """A Parquet file's rows as objects (column name -> value), ``chunk_rows`` at a time."""
    pf = _parquet_file(src.path)
    src.columns = [str(n) for n in pf.schema_arrow.names]
    key: str | None = None
    line = 0
    for batch in pf.iter_batches(batch_size=src.chunk_rows):
        rows = batch.to_pylist()
        if key is None:
            sample = pd.DataFrame.from_records(rows, columns=src.columns)
            key = choose_text_column(sample.astype(object).where(sample.notna(), None), src.path,
                                     src.requested_text_col)
            src.text_col = key
        lines = list(range(line + 1, line + len(rows) + 1))
        line += len(rows)
        texts = [_json_text(row.get(key), src.path, n, key) for n, row in zip(lines, rows, strict=True)]
        yield RowChunk(rows, texts, lines)
    if key is None:
        raise UserError(f"{src.path}: the Parquet file has no rows")
