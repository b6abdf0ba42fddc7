"""File formats: sniff the format of a file and parse it into a table of rows.

Supported formats (see :data:`FORMATS`):

* ``csv`` / ``tsv`` -- a header row, then one record per row; quoted fields may contain the
  separator and newlines (parsed by pandas).
* ``jsonl`` -- one JSON object per line (a ``.json`` file holding one JSON array of objects
  is read too).
* ``thucnews`` -- no header, one ``text<TAB>label`` per line, as in THUCNews and the
  Bert-Chinese-Text-Classification-Pytorch project. Integer labels are replaced by the class
  names of a ``class.txt`` (one name per line) in the same folder when there is one.
* ``txt`` -- one text per line, no labels (for prediction).

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError, where
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

FORMATS = ("csv", "tsv", "jsonl", "thucnews", "txt")

TEXT_COLUMNS = ("text", "sentence", "content", "review", "title", "headline")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "y")

_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": None}
_SNIFF_LINES = 50
_MAX_LABEL_CHARS = 64  # a THUCNews-style label is a short name or an index


def _check_format(fmt: str) -> str:
    name = str(fmt).strip().lower()
    if name not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return name


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


def _detect_format(path: Path, fmt: str | None, text: str | None) -> str:
    if fmt is not None:
        return _check_format(fmt)
    ext = path.suffix.lower()
    if ext not in _EXTENSIONS:
        raise UserError(
            f"{path}: cannot tell the file format from the extension {ext or '(none)'!r}; "
            f"pass --format, one of {', '.join(FORMATS)}"
        )
    known = _EXTENSIONS[ext]
    if known is not None:
        return known
    if text is None:
        text = head_text(path, detect_encoding(path))
    return "thucnews" if _looks_like_thucnews(text) else "txt"



def detect_format(path: str | os.PathLike, fmt: str | None = None, *, encoding: str | None = None) -> str:
    """Return the format of ``path``: an explicit ``fmt`` (checked), else by extension.

    ``.csv`` -> csv, ``.tsv`` -> tsv, ``.jsonl``/``.json`` -> jsonl. A ``.txt`` file is
    ``thucnews`` when every non-empty line among the first 50 has a tab followed by a short
    label, else ``txt`` (one text per line, no labels). Only the start of a ``.txt`` file is
    parsed (its encoding is detected block by block), so this works on files of any size.
    """
    path = Path(path)
    if fmt is None and path.suffix.lower() == ".txt":
        return _detect_format(path, None, head_text(path, detect_encoding(path, encoding)))
    return _detect_format(path, fmt, None)


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


def delimited_hint(fmt: str) -> str:
    if fmt == "csv":
        return "quote fields that contain commas or newlines with double quotes"
    return "fields must be separated by single tabs; quote fields that contain tabs"


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


def scalar_text(value: Any) -> str | None:
    """A JSON scalar as text: strings as they are, booleans ``true``/``false``, numbers spelled
    out; None for anything else (null, lists, objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def cell_text(value: Any, path: str | os.PathLike, line: int, key: str) -> str | None:
    """A JSON field as text: strings as they are, numbers and booleans spelled out, null as None;
    a list or object is a :class:`UserError` naming the file, line and key."""
    if value is None:
        return None
    text = scalar_text(value)
    if text is None:
        raise UserError(f"{where(path, line)}: field {key!r} must be a string or a number, not {type(value).__name__}")
    return text


def json_limit(exc: BaseException) -> str:
    """Why well-formed JSON could not be read: Python's limits on nesting depth and integer length."""
    if isinstance(exc, RecursionError):
        return "cannot read this JSON: it is nested too deeply (thousands of brackets); is it really the data file?"
    return f"cannot read this JSON: {str(exc).split(';')[0]}; write such numbers as strings"


def json_array_objects(path: str | os.PathLike, text: str) -> Iterator[tuple[int, dict]]:
    """``(item number, object)`` for a ``.json`` file holding one array of objects."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{where(path, e.lineno)}: bad JSON: {e.msg} (column {e.colno})") from None
    except (RecursionError, ValueError) as e:
        raise UserError(f"{path}: {json_limit(e)}") from None
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise UserError(f"{where(path, i)}: array item {i} is not a JSON object")
        yield i, item


def json_line_object(path: str | os.PathLike, number: int, line: str, example: str) -> dict:
    """The JSON object on line ``number`` of a JSONL file (``example`` shows the expected keys)."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{where(path, number)}: bad JSON: {e.msg} (column {e.colno}); "
            "a JSONL file needs one JSON object per line"
        ) from None
    except (RecursionError, ValueError) as e:
        raise UserError(f"{where(path, number)}: {json_limit(e)}") from None
    if not isinstance(item, dict):
        raise UserError(f"{where(path, number)}: expected a JSON object like {example}, got {type(item).__name__}")
    return item


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


def looks_like_header(text: str, label: str) -> bool:
    return text.strip().lower() in TEXT_COLUMNS and label.strip().lower() in LABEL_COLUMNS


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


def _find_column(columns: list[str], wanted: str) -> str | None:
    if wanted in columns:
        return wanted
    folded = [c for c in columns if str(c).strip().lower() == wanted.strip().lower()]
    return folded[0] if len(folded) == 1 else None


def _pick(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = _find_column(columns, name)
        if found is not None:
            return found
    return None


def _is_numeric(series: pd.Series) -> bool:
    values = series[series.notna()].astype(str).str.strip()
    values = values[values != ""]
    return bool(len(values)) and bool(pd.to_numeric(values, errors="coerce").notna().all())


def column_list(columns: list[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns) or "(none)"


def _choose_columns(
    df: pd.DataFrame,
    path: Path,
    text_col: str | None,
    label_col: str | None,
    require_labels: bool,
) -> tuple[str, str | None]:
    columns = [str(c) for c in df.columns]
    header_hint = " (the first line is read as the header row)"
    if label_col is not None:
        label = _find_column(columns, label_col)
        if label is None:
            raise UserError(
                f"{path}: no label column {label_col!r}; the columns are {column_list(columns)}; "
                "pass one of them to --label-col"
            )
    else:
        label = _pick(columns, LABEL_COLUMNS)
        if label is None and require_labels:
            raise UserError(
                f"{path}: cannot tell which column holds the labels; the columns are "
                f"{column_list(columns)}{header_hint}; pass --label-col NAME"
            )
    if text_col is not None:
        text = _find_column(columns, text_col)
        if text is None:
            raise UserError(
                f"{path}: no text column {text_col!r}; the columns are {column_list(columns)}; "
                "pass one of them to --text-col"
            )
    else:
        text = _pick([c for c in columns if c != label], TEXT_COLUMNS)
        if text is None:
            strings = [c for c in columns if c != label and not _is_numeric(df[c])]
            if len(strings) != 1:
                raise UserError(
                    f"{path}: cannot tell which column holds the text; the columns are "
                    f"{column_list(columns)}{header_hint}; pass --text-col NAME"
                )
            text = strings[0]
    if text == label:
        raise UserError(f"{path}: the text and label columns are the same column {text!r}")
    return text, label


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


def _parse(path: Path, text: str, fmt: str, labels_needed: bool) -> pd.DataFrame:
    """The rows of ``text`` as a DataFrame indexed by line, in the file's own columns."""
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, text, fmt)
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    if fmt == "thucnews":
        return _read_thucnews(path, text)
    if labels_needed:
        raise UserError(
            f"{path}: this file has no labels (one text per line); labelled data must be "
            "CSV/TSV/JSONL with a label column, or THUCNews-style text<TAB>label lines "
            "(for a tab-separated file with a header row, pass --format tsv)"
        )
    return _read_txt(path, text)


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
        fmt = _check_format(fmt)
    raw = read_bytes(path)
    enc = detect_bytes_encoding(raw, path, encoding)
    text = decode_bytes(raw, path, enc)
    if not text.strip():
        raise UserError(f"{path}: the file is empty; give a file with a header row and data rows")
    fmt = _detect_format(path, fmt, text)
    df = _parse(path, text, fmt, require_labels or label_col is not None)
    if df.empty:
        raise UserError(
            f"{path}: no data rows (only a header line {column_list([str(c) for c in df.columns])}); "
            "add rows below the header"
        )
    df.columns = [str(c) for c in df.columns]

    if fmt in ("thucnews", "txt"):
        text_name = "text"
        label_name = "label" if "label" in df.columns else None
        for wanted in (text_col, label_col):
            if wanted is not None and wanted not in ("text", "label"):
                log.warning("%s: %s files have no named columns; ignoring %r", path, fmt, wanted)
    else:
        text_name, label_name = _choose_columns(df, path, text_col, label_col, require_labels)

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
        fmt,
        enc,
        text_name,
        label_name,
    )
    return df


def sniff_format(path: str | os.PathLike, fmt: str | None, encoding: str) -> str:
    """:func:`detect_format` for a file whose encoding is already known (reads only its start)."""
    path = Path(path)
    if fmt is not None:
        return _check_format(fmt)
    if path.suffix.lower() == ".txt":
        return _detect_format(path, None, head_text(path, encoding))
    return _detect_format(path, None, None)


def choose_text_column(sample: pd.DataFrame, path: str | os.PathLike, text_col: str | None) -> str:
    """The text column of a table whose first rows are ``sample`` (as :func:`read_table` picks it).

    A named ``text_col`` must exist (the error lists the columns); otherwise a common name, or
    the only non-numeric column that is not a label column.
    """
    sample = sample.copy()
    sample.columns = [str(c) for c in sample.columns]
    text, _ = _choose_columns(sample, Path(path), text_col, None, require_labels=False)
    return text
