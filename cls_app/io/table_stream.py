"""Read and write row files chunk by chunk, so memory stays flat however large the file.

:class:`TableReader` reads CSV, TSV, JSONL (or a JSON array), THUCNews-style ``text<TAB>label``
and plain text (one text per line) files, as :mod:`cls_app.io.formats` detects them (encoding and
format), in chunks of rows. Each chunk keeps every row's **original values** (CSV cells as
strings, JSON objects as they were parsed), the text to classify (None when missing) and the
1-based line the row starts on in the file, for messages.

* CSV/TSV: the first non-blank record is the header; blank lines are not rows; a short row
  is padded with empty cells; a row with more cells than the header is an error; quoting is
  strict (a quote must close before the next separator), so a stray quote is an error naming
  its line instead of silently swallowing the rest of the file.
* JSONL: blank lines are not rows; every other line must hold a JSON object.
* ``.txt`` (plain or THUCNews): **every** line is a row, blank lines included, so output line
  *i* matches input line *i*.

:class:`TableWriter` writes rows plus extra columns as CSV, TSV or JSONL (chosen by the
output file's extension), chunk by chunk, under a temporary name renamed into place at the end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError, where
from ..fileio import atomic_open
from .encoding import detect_encoding, iter_lines
from .formats import (
    cell_text,
    choose_text_column,
    column_list,
    delimited_hint,
    json_array_objects,
    json_line_object,
    looks_like_header,
    scalar_text,
    sniff_format,
)

log = logging.getLogger(__name__)

OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
MAX_FIELD_CHARS = 64 * 1024 * 1024  # a longer CSV cell is almost surely an unclosed quote


@dataclass
class RowChunk:
    """Consecutive rows of a file: original values, the texts to classify, their lines."""

    rows: list[Any]  # list[str] cells (CSV/TSV/txt) or dict (JSON)
    texts: list[str | None]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.rows)


def _strip_eol(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


_AFTER_BARE_CR = re.compile(r"(?<=\r)(?!\n)")


def _cr_lines(lines: Iterable[str]) -> Iterator[str]:
    """Lines as ``open(newline="")`` gives them to the csv module: also split after a bare CR
    (classic Mac line ends), ends kept, so a quoted CR stays in its cell. Without this a CR-only
    CSV, which ``train`` reads, was one long line here and refused (found by fuzzing)."""
    for line in lines:
        if "\r" in line.removesuffix("\n").removesuffix("\r"):
            yield from (part for part in _AFTER_BARE_CR.split(line) if part)
        else:
            yield line


class TableReader:
    """Stream the rows of ``path`` in chunks of ``chunk_rows``.

    The encoding is detected by reading the file once block by block (see
    :func:`cls_app.io.encoding.detect_encoding`); the format from the extension and the first lines.
    ``columns`` (the file's column names, in order) and ``text_col`` are known once the first
    chunk has been read.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        text_col: str | None = None,
        encoding: str | None = None,
        fmt: str | None = None,
        chunk_rows: int = 8192,
    ) -> None:
        if chunk_rows < 1:
            raise UserError(f"the chunk size must be at least 1 row, got {chunk_rows}")
        self.path = Path(path)
        self.requested_text_col = text_col
        self.chunk_rows = chunk_rows
        self.encoding = detect_encoding(self.path, encoding)
        self.fmt = sniff_format(self.path, fmt, self.encoding)
        self.columns: list[str] | None = None
        self.text_col: str | None = None
        self.row_kind = "dict" if self.fmt == "jsonl" else "list"
        if self.fmt in ("txt", "thucnews") and text_col not in (None, "text"):
            log.warning("%s: %s files have no named columns; ignoring --text-col %r", self.path, self.fmt, text_col)

    # ----- public -----

    def chunks(self) -> Iterator[RowChunk]:
        """Yield the file's rows in order, ``chunk_rows`` at a time."""
        if self.fmt in ("csv", "tsv"):
            yield from self._delimited()
        elif self.fmt == "jsonl":
            yield from self._jsonl()
        else:
            yield from self._lines_as_rows()

    # ----- CSV / TSV -----

    def _delimited(self) -> Iterator[RowChunk]:
        sep = "," if self.fmt == "csv" else "\t"
        previous_limit = csv.field_size_limit(MAX_FIELD_CHARS)
        try:
            records = self._records(sep)
            header = next(records, None)
            if header is None:
                raise UserError(f"{self.path}: the file is empty")
            _, cells = header
            self.columns = list(cells)
            width = len(self.columns)
            text_index: int | None = None
            for batch in _batched(records, self.chunk_rows):
                rows, lines = [], []
                for line, cells in batch:
                    if len(cells) > width:
                        raise UserError(
                            f"{where(self.path, line)}: cannot parse as {self.fmt.upper()}: expected {width} "
                            f"fields as in the header, saw {len(cells)} ({delimited_hint(self.fmt)})"
                        )
                    if len(cells) < width:
                        cells = cells + [""] * (width - len(cells))
                    rows.append(cells)
                    lines.append(line)
                if text_index is None:
                    sample = pd.DataFrame(rows, columns=range(width), dtype=object)
                    sample.columns = self.columns
                    sample = sample.loc[:, ~sample.columns.duplicated()]
                    self.text_col = choose_text_column(sample, self.path, self.requested_text_col)
                    text_index = self.columns.index(self.text_col)
                yield RowChunk(rows, [r[text_index] for r in rows], lines)
            if text_index is None:  # header only: still check the column the user named
                empty = pd.DataFrame(columns=self.columns).loc[:, lambda d: ~d.columns.duplicated()]
                if self.requested_text_col is not None:
                    self.text_col = choose_text_column(empty, self.path, self.requested_text_col)
        finally:
            csv.field_size_limit(previous_limit)

    def _records(self, sep: str) -> Iterator[tuple[int, list[str]]]:
        """(start line, cells) of each non-blank record."""
        lines = _cr_lines(iter_lines(self.path, self.encoding))
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
                    f"{where(self.path, line)}: cannot parse as {self.fmt.upper()}: {message} "
                    f"({delimited_hint(self.fmt)})"
                ) from None
            end = reader.line_num
            if cells:
                yield start, cells

    # ----- JSONL -----

    def _json_objects(self) -> Iterator[tuple[int, dict]]:
        lines = iter_lines(self.path, self.encoding)
        first = True
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if first and stripped.startswith("["):
                yield from self._json_array("\n" * (number - 1) + line, lines)
                return
            first = False
            yield number, json_line_object(self.path, number, line, '{"text": ...}')

    def _json_array(self, first: str, rest: Iterator[str]) -> Iterator[tuple[int, dict]]:
        """A ``.json`` file holding one array of objects: parsed whole (it cannot be streamed)."""
        log.info("%s: a JSON array is read whole; use JSONL (one object per line) for files larger than memory",
                 self.path)
        yield from json_array_objects(self.path, first + "".join(rest))

    def _jsonl(self) -> Iterator[RowChunk]:
        key: str | None = None
        seen: dict[str, None] = {}
        for batch in _batched(self._json_objects(), self.chunk_rows):
            for _, item in batch:
                for k in item:
                    seen.setdefault(str(k), None)
            if key is None:
                self.columns = list(seen)
                sample = pd.DataFrame.from_records([item for _, item in batch])
                key = choose_text_column(sample.astype(object).where(sample.notna(), None), self.path,
                                         self.requested_text_col)
                self.text_col = key
            else:
                self.columns = list(seen)
            texts = [_json_text(item.get(key), self.path, line, key) for line, item in batch]
            yield RowChunk([item for _, item in batch], texts, [line for line, _ in batch])
        if key is None:
            raise UserError(f"{self.path}: the file is empty")

    # ----- .txt: plain or THUCNews -----

    def _lines_as_rows(self) -> Iterator[RowChunk]:
        thucnews = self.fmt == "thucnews"
        self.columns = ["text", "label"] if thucnews else ["text"]
        self.text_col = "text"
        any_rows = False
        numbered = enumerate(iter_lines(self.path, self.encoding), start=1)
        for batch in _batched(numbered, self.chunk_rows):
            rows, lines = [], []
            for number, raw in batch:
                line = _strip_eol(raw)
                if thucnews:
                    body, label = line.rsplit("\t", 1) if "\t" in line else (line, "")
                    if number == 1 and looks_like_header(body, label):
                        log.warning("%s: line 1 looks like a header row (%r); not a row", self.path, line)
                        continue
                    rows.append([body, label])
                else:
                    rows.append([line])
                lines.append(number)
            if rows:
                any_rows = True
                yield RowChunk(rows, [r[0] for r in rows], lines)
        if not any_rows:
            raise UserError(f"{self.path}: the file is empty")


def _json_text(value: Any, path: Path, line: int, key: str) -> str | None:
    if isinstance(value, float) and math.isnan(value):  # Python's json reads a bare NaN
        return None
    return cell_text(value, path, line, key)


# --------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike) -> str:
    """csv, tsv or jsonl, from the output file's extension (a clear error otherwise)."""
    ext = Path(path).suffix.lower()
    if ext not in OUTPUT_FORMATS:
        raise UserError(
            f"{path}: cannot tell the output format from the extension {ext or '(none)'!r}; "
            f"name the output file with one of {', '.join(OUTPUT_FORMATS)}"
        )
    return OUTPUT_FORMATS[ext]


def _cell(value: Any) -> str:
    """A JSON value as one CSV cell: scalars as :func:`cls_app.io.formats.scalar_text` spells them,
    null empty, lists and objects as JSON."""
    if value is None:
        return ""
    text = scalar_text(value)
    return json.dumps(value, ensure_ascii=False) if text is None else text


def _json_value(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


class TableWriter:
    """Write rows (original values + ``extra`` columns) to CSV/TSV/JSONL, atomically.

    ``columns`` are the input's column names; ``row_kind`` says whether rows are lists of
    cells (``"list"``) or JSON objects (``"dict"``). Use as a context manager: the file
    appears under its name only when the block ends without an error.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], extra: Sequence[str], row_kind: str,
                 source: str | os.PathLike = "the input") -> None:
        self.path = Path(path)
        self.fmt = output_format(self.path)
        self.columns = list(columns)
        self.extra = list(extra)
        self.row_kind = row_kind
        self.source = source
        clash = [c for c in self.extra if c in self.columns]
        if clash:
            raise UserError(
                f"{source} already has column(s) {column_list(clash)}, which predict adds; "
                "rename them (or predict from the file that has no predictions yet)"
            )
        if self.fmt == "jsonl" and row_kind == "list" and len(set(self.columns)) < len(self.columns):
            dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise UserError(
                f"{source} has duplicate column names ({column_list(dupes)}), which JSON objects cannot hold; "
                "write CSV/TSV output or rename the columns"
            )
        self._stack = contextlib.ExitStack()
        self._writer: Any = None
        self._fh: Any = None

    def __enter__(self) -> TableWriter:
        self._fh = self._stack.enter_context(atomic_open(self.path, "w", newline=""))
        if self.fmt in ("csv", "tsv"):
            self._writer = csv.writer(self._fh, delimiter="," if self.fmt == "csv" else "\t", lineterminator="\n")
            self._writer.writerow(self.columns + self.extra)
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)

    def write(self, chunk: RowChunk, extra_values: Sequence[Sequence[Any]], columns: Sequence[str] | None = None
              ) -> None:
        """Write one chunk; ``extra_values[i]`` holds row i's values of the extra columns."""
        if columns is not None and self.fmt != "jsonl" and self.row_kind == "dict":
            new = [c for c in columns if c not in self.columns]
            if new:
                line = next((ln for row, ln in zip(chunk.rows, chunk.lines, strict=True)
                             if any(c in row for c in new)), None)
                raise UserError(
                    f"{where(self.source, line)}: field(s) {column_list(new)} do not appear in the first rows, "
                    f"so the {self.fmt.upper()} header has no column for them; write JSONL output instead"
                )
        if self.fmt == "jsonl":
            dump = json.dumps
            lines = []
            for row, values in zip(chunk.rows, extra_values, strict=True):
                obj = dict(row) if self.row_kind == "dict" else dict(zip(self.columns, row, strict=True))
                obj.update((k, _json_value(v)) for k, v in zip(self.extra, values, strict=True))
                lines.append(dump(obj, ensure_ascii=False))
            self._fh.write(_escape_line_breaks("\n".join(lines)) + "\n")
            return
        if self.row_kind == "dict":
            cols = self.columns
            rows = ([_cell(row.get(c)) for c in cols] + [_cell_extra(v) for v in values]
                    for row, values in zip(chunk.rows, extra_values, strict=True))
        else:
            rows = (list(row) + [_cell_extra(v) for v in values]
                    for row, values in zip(chunk.rows, extra_values, strict=True))
        _write_rows(self._writer, self._fh, list(rows))


_JSON_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _escape_line_breaks(text: str) -> str:
    """JSON lines with NEL / LINE SEPARATOR / PARAGRAPH SEPARATOR escaped (valid JSON either way;
    raw, they end the line for ``str.splitlines`` and many editors, so a JSONL row would seem to
    break in two -- found by fuzzing)."""
    if "\x85" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_JSON_LINE_BREAKS)
    return text


def _write_rows(writer: Any, fh: Any, rows: list[list[str]]) -> None:
    """``writer.writerows(rows)``, quoting cells that hold a bare carriage return too.

    The csv module quotes a cell only for the characters of its line terminator ("\n" here),
    so a cell with a lone "\r" would go out unquoted, and every CSV reader would split the row
    there (found by fuzzing: a row of the input became two of the output). Such rows are
    written by a writer whose terminator holds "\r", then ended with "\n" like the others.
    """
    if not any("\r" in cell for row in rows for cell in row):
        writer.writerows(rows)
        return
    import io

    for row in rows:
        if not any("\r" in cell for cell in row):
            writer.writerow(row)
            continue
        buf = io.StringIO()
        csv.writer(buf, dialect=writer.dialect, lineterminator="\r\n").writerow(row)
        fh.write(buf.getvalue()[:-2] + "\n")


def _cell_extra(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)
