"""Sentence pairs: the second text of a row (``--text-pair-col``), carried with the first as one string.

Inside the pipeline a pair travels as ``A + PAIR_SEP + B`` (U+001E, the ASCII record separator,
which the tokenizer never sees in a text: it is a control character), so reading, splitting,
caching and batching treat a pair as one text; :mod:`cls_app.text.pairs` encodes it as
``[CLS] A [SEP] B [SEP]`` with segment ids 0/1. A THUCNews-style ``.txt`` file holds pairs as
``text<TAB>text_b<TAB>label``.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ..errors import UserError, where

PAIR_SEP = "\x1e"


def join_pair(a: str | None, b: str | None) -> str | None:
    """One pipeline text for the pair (A, B); None when either is missing or blank."""
    if a is None or b is None or not a.strip() or not b.strip():
        return None
    return f"{a.replace(PAIR_SEP, ' ')}{PAIR_SEP}{b.replace(PAIR_SEP, ' ')}"


def split_pair(text: str) -> tuple[str, str | None]:
    """(A, B) of a pipeline text; B is None for a single text."""
    a, sep, b = text.partition(PAIR_SEP)
    return (a, b) if sep else (text, None)


def pair_column(df: pd.DataFrame, path: str | os.PathLike, name: str) -> tuple[list[str | None], list[Any]]:
    """(first texts, second texts) of a table read by :func:`~cls_app.io.formats.read_table`.

    A named column of a CSV/TSV/JSONL file; in a THUCNews-style file (columns ``text`` and
    ``label`` only) the text cell ``A<TAB>B`` is split at its first tab.
    """
    from .formats import cell_text, column_list

    texts = list(df["text"])
    if name in df.columns or any(str(c).lower() == name.lower() for c in df.columns):
        col = name if name in df.columns else next(c for c in df.columns if str(c).lower() == name.lower())
        second = [None if v is None or (isinstance(v, float) and pd.isna(v)) else cell_text(v, path, int(line), col)
                  for line, v in df[col].items()]
        return texts, second
    if set(df.columns) <= {"text", "label"}:
        firsts, seconds = [], []
        for line, text in zip(df.index, texts, strict=True):
            a, tab, b = (text or "").partition("\t")
            if not tab:
                raise UserError(f"{where(path, int(line))}: expected text<TAB>text_b<TAB>label for a sentence pair")
            firsts.append(a)
            seconds.append(b)
        return firsts, seconds
    raise UserError(f"{path}: no text-pair column {name!r}; the columns are "
                    f"{column_list([str(c) for c in df.columns])}; pass one of them to --text-pair-col")


def join_columns(df: pd.DataFrame, path: str | os.PathLike, name: str | None) -> list[str | None]:
    """The text of each row: the pair joined when ``name`` names a second text column, else ``text``."""
    if not name:
        return list(df["text"])
    firsts, seconds = pair_column(df, path, name)
    return [join_pair(a, b) if a is not None and b is not None else None
            for a, b in zip(firsts, seconds, strict=True)]
