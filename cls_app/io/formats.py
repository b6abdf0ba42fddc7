"""File formats: the one registry of input formats, the one detection function, the in-memory reader.

Each :class:`Format` in :data:`FORMATS` names the extensions it claims, how to tell it apart from
a format sharing its extension (``sniff`` on the start of the file), how to parse a whole file into
a table (``parse``: :func:`read_table`, which ``train``, ``evaluate``, ``audit``, ``select`` and
``import-labels`` read through) and how to stream it in chunks (``stream``: :mod:`.streams`,
which ``predict`` and ``explain`` read through), and how to write a small file of it (``render``,
for tests and examples). A format added with :func:`register_format` works in both readers.

Built in:

* ``csv`` / ``tsv`` -- a header row, then one record per row; quoted fields may contain the
  separator and newlines (parsed by pandas).
* ``jsonl`` -- one JSON object per line (a ``.json`` file holding one JSON array of objects
  is read too).
* ``thucnews`` -- no header, one ``text<TAB>label`` per line, as in THUCNews and the
  Bert-Chinese-Text-Classification-Pytorch project. Integer labels are replaced by the class
  names of a ``class.txt`` (one name per line) in the same folder when there is one.
* ``txt`` -- one text per line, no labels (for prediction).
* ``parquet`` -- an Apache Parquet file (a binary format: no encoding to detect; read with pyarrow, row
  group by row group when streamed). Its columns keep their types; "row N" in messages is the N-th row.

Row numbers in messages are 1-based line numbers in the file, as an editor shows them (for a
CSV record that spans several lines, the line it starts on). :func:`read_table` returns them
as the DataFrame's index (named ``line``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError, where
from . import streams
from .cells import (
    cell_text,
    choose_columns,
    column_list,
    delimited_hint,
    json_array_objects,
    json_line_object,
    looks_like_header,
)
from .encoding import (
    HEAD_CHARS,
    check_codec,
    decode_bytes,
    detect_bytes_encoding,
    detect_encoding,
    head_text,
    read_bytes,
    split_lines,
)

log = logging.getLogger(__name__)

_SNIFF_LINES = 50
_MAX_LABEL_CHARS = 64  # a THUCNews-style label is a short name or an index


@dataclass(frozen=True)
class Format:
    """One input format (see the module docstring)."""

    name: str
    extensions: tuple[str, ...]  # lower case, with the dot
    parse: Callable[[Path, str], pd.DataFrame]  # a whole decoded file -> rows (index ``line``)
    stream: Callable[[streams.StreamSource], Iterator[streams.RowChunk]]  # the same rows, chunk by chunk
    render: Callable[[Sequence[str], Sequence[str] | None], str | bytes]  # texts (and labels) -> a file's content
    named_columns: bool = True  # a header of column names (else: a text, and a label after a tab)
    labeled: bool = True  # can hold labels
    dict_rows: bool = False  # the streamed rows are JSON objects (else lists of cells)
    sniff: Callable[[str], bool] | None = None  # on the start of a file: this format (for a shared extension)
    binary: bool = False  # not text: no encoding is detected, ``parse`` gets "" and reads the path itself


FORMATS: dict[str, Format] = {}
"""Every registered format by name, in registration order (``--format`` takes these names)."""


def register_format(fmt: Format) -> Format:
    """Add ``fmt`` to :data:`FORMATS` (both readers and :func:`detect_format` see it from then on)."""
    FORMATS[fmt.name] = fmt
    return fmt


def format_named(name: str) -> Format:
    """The registered format ``name`` (a :class:`UserError` listing them for an unknown one)."""
    key = str(name).strip().lower()
    if key not in FORMATS:
        raise UserError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[key]


def binary_format(path: str | os.PathLike, fmt: str | None = None) -> Format | None:
    """The binary format ``path`` is in (``fmt`` or its extension), None for a text format."""
    if fmt is not None:
        found = format_named(fmt)
        return found if found.binary else None
    ext = Path(path).suffix.lower()
    return next((f for f in FORMATS.values() if f.binary and ext in f.extensions), None)


def _looks_like_thucnews(text: str) -> bool:
    sample = [line for line in split_lines(text[:HEAD_CHARS]) if line.strip()][:_SNIFF_LINES]
    if not sample:
        return False
    for line in sample:
        if "\t" not in line:
            return False
        label = line.rsplit("\t", 1)[1].strip()
        if not label or len(label) > _MAX_LABEL_CHARS:
            return False
    return True


def detect_format(path: str | os.PathLike, fmt: str | None = None, *, encoding: str | None = None,
                  text: str | None = None) -> str:
    """The format of ``path``: an explicit ``fmt`` (checked), else the one its extension names; where
    formats share an extension (``.txt``: thucnews, else txt), the first whose ``sniff`` accepts the start of
    the file (``text`` when the caller has it; else its first characters, read in its ``encoding``, so this
    works on files of any size)."""
    path = Path(path)
    if fmt is not None:
        return format_named(fmt).name
    ext = path.suffix.lower()
    claiming = [f for f in FORMATS.values() if ext in f.extensions]
    if not claiming:
        raise UserError(
            f"{path}: cannot tell the file format from the extension {ext or '(none)'!r}; "
            f"pass --format, one of {', '.join(FORMATS)}"
        )
    if len(claiming) == 1:
        return claiming[0].name
    head = text if text is not None else head_text(path, detect_encoding(path, encoding))
    for candidate in claiming:
        if candidate.sniff is None or candidate.sniff(head):
            return candidate.name
    return claiming[-1].name


# --------------------------------------------------------------------------- parsers


def _scan_records(text: str, sep: str) -> tuple[list[tuple[int, bool, int]], int | None]:
    """Walk the records of a CSV/TSV text the way pandas' parser splits them.

    Returns ``(start line, blank?, number of fields)`` per record (blank lines included, as
    pandas counts them) and the start line of a record the csv module could not finish
    (an unclosed quote), else None. Used to report the lines a user sees in an editor when
    quoted fields span several lines.
    """
    records: list[tuple[int, bool, int]] = []
    previous_limit = csv.field_size_limit(sys.maxsize)  # no limit on field length
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=False)
        previous_end = 0
        for record in reader:
            blank = not record or (len(record) == 1 and not record[0].strip(" \t"))
            records.append((previous_end + 1, blank, len(record)))
            previous_end = reader.line_num
    except csv.Error:
        return records, previous_end + 1
    finally:
        csv.field_size_limit(previous_limit)
    return records, None


def _data_row_lines(text: str, sep: str, df: pd.DataFrame) -> list[int]:
    """Line numbers where each data row of ``df`` starts."""
    records, failed = _scan_records(text, sep)
    rows = [start for start, blank, _ in records if not blank]
    if failed is None and len(rows) == len(df) + 1:  # header + data rows, as pandas saw them
        return rows[1:]
    # Fallback: assume no blank lines; a row spans 1 + its embedded newlines.
    lines, line = [], 2
    for values in df.itertuples(index=False):
        lines.append(line)
        line += 1 + sum(str(v).count("\n") for v in values if isinstance(v, str))
    return lines


_PANDAS_LINE = re.compile(r" in line (\d+)")
_PANDAS_ROW = re.compile(r"starting at row (\d+)")


def _parser_error(path: Path, text: str, sep: str, fmt: str, err: Exception) -> UserError:
    message = str(err).strip().replace("Error tokenizing data. C error: ", "")
    message = message.splitlines()[0] if message else type(err).__name__
    line = None
    match_line = _PANDAS_LINE.search(message)
    match_row = _PANDAS_ROW.search(message)
    index = None
    if match_line:
        index = int(match_line.group(1)) - 1
    elif match_row:
        index = int(match_row.group(1))
    if index is not None:
        records, failed = _scan_records(text, sep)
        starts = [start for start, _, _ in records] + ([failed] if failed is not None else [])
        line = starts[index] if 0 <= index < len(starts) else index + 1
        message = " ".join(_PANDAS_LINE.sub("", _PANDAS_ROW.sub("", message)).split())
        message = message.replace("EOF inside string", "the file ends inside a quoted field")
    return UserError(f"{where(path, line)}: cannot parse as {fmt.upper()}: {message} ({delimited_hint(fmt)})")




def _width_error(path: Path, text: str, sep: str, fmt: str) -> UserError:
    """The first row with more fields than the header."""
    records, _ = _scan_records(text, sep)
    width = None
    for start, blank, n_fields in records:
        if blank:
            continue
        if width is None:
            width = n_fields
        elif n_fields > width:
            return UserError(
                f"{where(path, start)}: cannot parse as {fmt.upper()}: expected {width} fields "
                f"as in the header, saw {n_fields} ({delimited_hint(fmt)})"
            )
    return UserError(
        f"{path}: cannot parse as {fmt.upper()}: rows have more fields than the header ({delimited_hint(fmt)})"
    )


def _read_delimited(path: Path, text: str, fmt: str) -> pd.DataFrame:
    sep = "," if fmt == "csv" else "\t"
    try:
        with warnings.catch_warnings():
            # index_col=False: a first data row with more fields than the header would otherwise
            # silently become an index column (shifting every column); pandas warns instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                io.StringIO(text, newline=""),
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[],
                on_bad_lines="error",
                skip_blank_lines=True,
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty") from None
    except pd.errors.ParserWarning:
        raise _width_error(path, text, sep, fmt) from None
    except (pd.errors.ParserError, ValueError) as e:
        raise _parser_error(path, text, sep, fmt, e) from None
    df = df.fillna("")  # short rows: missing trailing fields
    df.index = pd.Index(_data_row_lines(text, sep, df), name="line")
    return df












def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    records: list[dict] = []
    lines: list[int] = []
    if text.lstrip().startswith("["):  # a .json file holding one array of objects
        for i, item in json_array_objects(path, text):
            records.append(item)
            lines.append(i)
    else:
        for number, line in enumerate(split_lines(text), start=1):
            if line.strip():
                records.append(json_line_object(path, number, line, '{"text": ..., "label": ...}'))
                lines.append(number)
    if not records:
        raise UserError(f"{path}: the file is empty")
    df = pd.DataFrame.from_records(records)
    df = df.astype(object).where(df.notna(), None)
    df.index = pd.Index(lines, name="line")
    return df


def _read_class_names(folder: Path) -> list[str] | None:
    class_file = folder / "class.txt"
    if not class_file.is_file():
        return None
    raw = read_bytes(class_file)
    text = decode_bytes(raw, class_file, detect_bytes_encoding(raw, class_file, None))
    names = [line.strip() for line in split_lines(text)]
    while names and not names[-1]:
        names.pop()
    for number, name in enumerate(names, start=1):
        if not name:
            raise UserError(f"{where(class_file, number)}: empty class name (one name per line)")
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise UserError(f"{class_file}: class names appear twice: {', '.join(duplicates)}")
    return names or None




def _read_thucnews(path: Path, text: str) -> pd.DataFrame:
    texts: list[str] = []
    labels: list[str | None] = []
    lines: list[int] = []
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        if "\t" in line:
            body, label = line.rsplit("\t", 1)
        else:
            body, label = line, None
        if not lines and label is not None and looks_like_header(body, label):
            log.warning("%s: line %d looks like a header row (%r); skipped", path, number, line)
            continue
        texts.append(body)
        labels.append(label)
        lines.append(number)
    if not lines:
        raise UserError(f"{path}: the file is empty")
    names = _read_class_names(path.parent)
    if names is not None:
        mapped: list[str | None] = []
        for label, number in zip(labels, lines, strict=True):
            value = None if label is None else label.strip()
            if value is not None and value.isdigit():
                index = int(value)
                if index >= len(names):
                    raise UserError(
                        f"{where(path, number)}: label {index} is out of range: "
                        f"{path.parent / 'class.txt'} names {len(names)} classes (0..{len(names) - 1})"
                    )
                value = names[index]
            mapped.append(value)
        labels = mapped
    return pd.DataFrame({"text": texts, "label": labels}, index=pd.Index(lines, name="line"), dtype=object)


def _read_txt(path: Path, text: str) -> pd.DataFrame:
    pairs = [(n, line) for n, line in enumerate(split_lines(text), start=1) if line.strip()]
    if not pairs:
        raise UserError(f"{path}: the file is empty")
    return pd.DataFrame(
        {"text": [line for _, line in pairs]},
        index=pd.Index([n for n, _ in pairs], name="line"),
        dtype=object,
    )


# --------------------------------------------------------------------------- columns












def _read_parquet(path: Path, _text: str) -> pd.DataFrame:
    df = streams.parquet_table(path).to_pandas()
    if not len(df.columns):
        raise UserError(f"{path}: the Parquet file has no columns")
    df.index = pd.RangeIndex(1, len(df) + 1, name="line")
    return df


def _parquet_bytes(texts: Sequence[str], labels: Sequence[str] | None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"text": list(texts), **({"label": list(labels)} if labels is not None else {})}
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink)
    return bytes(sink.getvalue().to_pybytes())


def _as_optional_str(series: pd.Series, path: Path, lists: bool = False) -> list[Any]:
    """Cells as text (None when empty); with ``lists``, a JSON list stays a list of texts."""
    out: list[Any] = []
    for line, value in series.items():
        if value is None or (isinstance(value, float) and pd.isna(value)):
            out.append(None)
            continue
        if lists and isinstance(value, list):
            out.append([cell_text(v, path, int(line), str(series.name)) for v in value])
            continue
        value = cell_text(value, path, int(line), str(series.name))
        out.append(None if value == "" else value)
    return out


def read_table(
    path: str | os.PathLike,
    text_col: str | None = None,
    label_col: str | None = None,
    encoding: str | None = None,
    fmt: str | None = None,
    require_labels: bool = True,
    label_lists: bool = False,
) -> pd.DataFrame:
    """Read ``path`` into a DataFrame with a ``text`` column and, when present, ``label``.

    ``text`` and ``label`` hold strings, or None for a truly empty cell; the file's own
    columns are kept as well (a file column named ``text`` or ``label`` is replaced by the
    chosen column). The index (``line``) is the 1-based line each row starts on in the file.
    Without ``text_col``/``label_col`` the columns are guessed from common names
    (:data:`TEXT_COLUMNS`, :data:`LABEL_COLUMNS`); the text column may also be the only
    non-numeric column. ``require_labels=False`` allows files without labels; ``label_lists=True``
    keeps a JSON list in the label column as a list of texts (multi-label data).
    """
    path = Path(path)
    if encoding is not None:
        check_codec(encoding)
    if fmt is not None:
        fmt = format_named(fmt).name
    binary = binary_format(path, fmt)
    if binary is not None:
        spec, enc, text = binary, "binary", ""
    else:
        raw = read_bytes(path)
        enc = detect_bytes_encoding(raw, path, encoding)
        text = decode_bytes(raw, path, enc)
        if not text.strip():
            raise UserError(f"{path}: the file is empty; give a file with a header row and data rows")
        spec = FORMATS[detect_format(path, fmt, text=text)]
    if (require_labels or label_col is not None) and not spec.labeled:
        raise UserError(
            f"{path}: this file has no labels (one text per line); labelled data must be "
            "CSV/TSV/JSONL with a label column, or THUCNews-style text<TAB>label lines "
            "(for a tab-separated file with a header row, pass --format tsv)"
        )
    df = spec.parse(path, text)
    if df.empty:
        raise UserError(
            f"{path}: no data rows (only a header line {column_list([str(c) for c in df.columns])}); "
            "add rows below the header"
        )
    df.columns = [str(c) for c in df.columns]

    if not spec.named_columns:
        text_name = "text"
        label_name = "label" if "label" in df.columns else None
        for wanted in (text_col, label_col):
            if wanted is not None and wanted not in ("text", "label"):
                log.warning("%s: %s files have no named columns; ignoring %r", path, spec.name, wanted)
    else:
        text_name, label_name = choose_columns(df, path, text_col, label_col, require_labels)

    texts = _as_optional_str(df[text_name], path)
    labels = _as_optional_str(df[label_name], path, label_lists) if label_name is not None else None
    if text_name != "text" and "text" in df.columns:
        log.info("%s: column 'text' is replaced by the text column %r", path, text_name)
    df["text"] = pd.Series(texts, index=df.index, dtype=object)
    if labels is not None:
        if label_name != "label" and "label" in df.columns:
            log.info("%s: column 'label' is replaced by the label column %r", path, label_name)
        df["label"] = pd.Series(labels, index=df.index, dtype=object)
    log.debug(
        "%s: read %d rows as %s (%s), text column %r, label column %r",
        path,
        len(df),
        spec.name,
        enc,
        text_name,
        label_name,
    )
    return df


# --------------------------------------------------------------------------- the built-in formats


def _delimited_text(sep: str) -> Callable[[Sequence[str], Sequence[str] | None], str]:
    def render(texts: Sequence[str], labels: Sequence[str] | None) -> str:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=sep, lineterminator="\n")
        writer.writerow(["text", "label"] if labels is not None else ["text"])
        for i, t in enumerate(texts):
            writer.writerow([t, labels[i]] if labels is not None else [t])
        return out.getvalue()

    return render


def _jsonl_text(texts: Sequence[str], labels: Sequence[str] | None) -> str:
    return "".join(json.dumps({"text": t, **({"label": labels[i]} if labels is not None else {})},
                              ensure_ascii=False) + "\n" for i, t in enumerate(texts))


def _lines_text(texts: Sequence[str], labels: Sequence[str] | None) -> str:
    return "".join(f"{t}\t{labels[i]}\n" if labels is not None else f"{t}\n" for i, t in enumerate(texts))


register_format(Format("csv", (".csv",), lambda p, t: _read_delimited(p, t, "csv"), streams.csv_chunks,
                       _delimited_text(",")))
register_format(Format("tsv", (".tsv",), lambda p, t: _read_delimited(p, t, "tsv"), streams.tsv_chunks,
                       _delimited_text("\t")))
register_format(Format("jsonl", (".jsonl", ".json"), lambda p, t: _read_jsonl(p, t), streams.jsonl_chunks,
                       _jsonl_text, dict_rows=True))
register_format(Format("thucnews", (".txt",), lambda p, t: _read_thucnews(p, t), streams.thucnews_chunks,
                       _lines_text, named_columns=False, sniff=_looks_like_thucnews))
register_format(Format("txt", (".txt",), lambda p, t: _read_txt(p, t), streams.txt_chunks,
                       lambda texts, _labels: _lines_text(texts, None), named_columns=False, labeled=False))
register_format(Format("parquet", (".parquet", ".pq"), _read_parquet, streams.parquet_chunks, _parquet_bytes,
                       dict_rows=True, binary=True))
