"""Read and write row files chunk by chunk, so memory stays flat however large the file.

:class:`TableReader` reads any registered format (:data:`cls_app.io.formats.FORMATS`: CSV, TSV,
JSONL or a JSON array, THUCNews-style ``text<TAB>label``, plain text), as
:func:`~cls_app.io.formats.detect_format` detects it, in chunks of rows (the format's streaming
parser, :mod:`cls_app.io.streams`). Each chunk keeps every row's **original values** (CSV cells as
strings, JSON objects as they were parsed), the text to classify (None when missing) and the
1-based line the row starts on in the file, for messages.

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError, where
from ..fileio import atomic_open
from .cells import column_list, scalar_text
from .encoding import detect_encoding
from .formats import FORMATS, binary_format, detect_format
from .streams import RowChunk, StreamSource

log = logging.getLogger(__name__)

OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}

__all__ = ["OUTPUT_FORMATS", "RowChunk", "TableReader", "TableWriter", "output_format"]


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
        binary = binary_format(self.path, fmt)
        self.encoding = "binary" if binary is not None else detect_encoding(self.path, encoding)
        self.format = binary or FORMATS[detect_format(self.path, fmt, encoding=self.encoding)]
        self.fmt = self.format.name
        self.source = StreamSource(self.path, self.encoding, self.fmt, chunk_rows, text_col)
        self.row_kind = "dict" if self.format.dict_rows else "list"
        if not self.format.named_columns and text_col not in (None, "text"):
            log.warning("%s: %s files have no named columns; ignoring --text-col %r", self.path, self.fmt, text_col)

    @property
    def columns(self) -> list[str] | None:
        """The file's column names, in order (known once the first chunk is read)."""
        return self.source.columns

    @property
    def text_col(self) -> str | None:
        """The column holding the texts (known once the first chunk is read)."""
        return self.source.text_col

    def chunks(self) -> Iterator[RowChunk]:
        """Yield the file's rows in order, ``chunk_rows`` at a time."""
        yield from self.format.stream(self.source)


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
        self._stream: Any = None  # appending to an open binary file (see :meth:`appending`)
        self._header = True

    @classmethod
    def appending(cls, stream: Any, columns: Sequence[str], extra: Sequence[str], row_kind: str,
                  source: str | os.PathLike = "the input", *, header: bool, name: str | os.PathLike | None = None
                  ) -> TableWriter:
        """A writer appending to ``stream`` (a binary file open for appending, whose name says the format, or
        ``name``), with the header row only when ``header``; the caller makes the file durable and visible (a
        resumable job). Each :meth:`write` reaches ``stream`` before it returns."""
        path = Path(name if name is not None else stream.name)
        if path.suffix.lower() not in OUTPUT_FORMATS:  # OUTPUT.csv.partial: the format of OUTPUT.csv
            path = path.with_suffix("")
        writer = cls(path, columns, extra, row_kind, source)
        writer._stream, writer._header = stream, header
        return writer

    def __enter__(self) -> TableWriter:
        if self._stream is not None:
            import io

            self._fh = io.TextIOWrapper(self._stream, encoding="utf-8", newline="", write_through=True)
            self._stack.callback(self._fh.detach)  # flushed, and the caller's file left open
        else:
            self._fh = self._stack.enter_context(atomic_open(self.path, "w", newline=""))
        if self.fmt in ("csv", "tsv"):
            self._writer = csv.writer(self._fh, delimiter="," if self.fmt == "csv" else "\t", lineterminator="\n")
            if self._header:
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
