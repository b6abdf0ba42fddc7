"""What the readers of every format share: turning a parsed cell into text, JSON lines and arrays, and
choosing the text and label columns of a table (by name, or the only non-numeric column)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError, where

TEXT_COLUMNS = ("text", "sentence", "content", "review", "title", "headline")


LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "y")


def delimited_hint(fmt: str) -> str:
    if fmt == "csv":
        return "quote fields that contain commas or newlines with double quotes"
    return "fields must be separated by single tabs; quote fields that contain tabs"


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


def looks_like_header(text: str, label: str) -> bool:
    return text.strip().lower() in TEXT_COLUMNS and label.strip().lower() in LABEL_COLUMNS


def find_column(columns: list[str], wanted: str) -> str | None:
    if wanted in columns:
        return wanted
    folded = [c for c in columns if str(c).strip().lower() == wanted.strip().lower()]
    return folded[0] if len(folded) == 1 else None


def pick_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = find_column(columns, name)
        if found is not None:
            return found
    return None


def is_numeric(series: pd.Series) -> bool:
    values = series[series.notna()].astype(str).str.strip()
    values = values[values != ""]
    return bool(len(values)) and bool(pd.to_numeric(values, errors="coerce").notna().all())


def column_list(columns: list[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns) or "(none)"


def choose_columns(
    df: pd.DataFrame,
    path: Path,
    text_col: str | None,
    label_col: str | None,
    require_labels: bool,
) -> tuple[str, str | None]:
    columns = [str(c) for c in df.columns]
    header_hint = " (the first line is read as the header row)"
    if label_col is not None:
        label = find_column(columns, label_col)
        if label is None:
            raise UserError(
                f"{path}: no label column {label_col!r}; the columns are {column_list(columns)}; "
                "pass one of them to --label-col"
            )
    else:
        label = pick_column(columns, LABEL_COLUMNS)
        if label is None and require_labels:
            raise UserError(
                f"{path}: cannot tell which column holds the labels; the columns are "
                f"{column_list(columns)}{header_hint}; pass --label-col NAME"
            )
    if text_col is not None:
        text = find_column(columns, text_col)
        if text is None:
            raise UserError(
                f"{path}: no text column {text_col!r}; the columns are {column_list(columns)}; "
                "pass one of them to --text-col"
            )
    else:
        text = pick_column([c for c in columns if c != label], TEXT_COLUMNS)
        if text is None:
            strings = [c for c in columns if c != label and not is_numeric(df[c])]
            if len(strings) != 1:
                raise UserError(
                    f"{path}: cannot tell which column holds the text; the columns are "
                    f"{column_list(columns)}{header_hint}; pass --text-col NAME"
                )
            text = strings[0]
    if text == label:
        raise UserError(f"{path}: the text and label columns are the same column {text!r}")
    return text, label


def choose_text_column(sample: pd.DataFrame, path: str | os.PathLike, text_col: str | None) -> str:
    """The text column of a table whose first rows are ``sample`` (as :func:`read_table` picks it).

    A named ``text_col`` must exist (the error lists the columns); otherwise a common name, or
    the only non-numeric column that is not a label column.
    """
    sample = sample.copy()
    sample.columns = [str(c) for c in sample.columns]
    text, _ = choose_columns(sample, Path(path), text_col, None, require_labels=False)
    return text
